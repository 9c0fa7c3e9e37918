"""Partition: one topic partition's log and its replication state, as Kafka's Partition.

The leader's high watermark is the smallest log end offset among the in-sync replicas. With a
single broker the ISR is the leader alone, so the high watermark follows every append; the state
is kept in the shape replication needs (leader, epoch, replicas, ISR) so followers can join it.
"""

from dataclasses import dataclass, field

from engine.common import TopicPartition
from engine.errors import NOT_ENOUGH_REPLICAS, KafkaError
from engine.storage import Log, LogAppendInfo


class NotEnoughReplicasError(KafkaError):
    error_code = NOT_ENOUGH_REPLICAS


@dataclass(eq=False)
class Partition:
    tp: TopicPartition
    log: Log
    leader_id: int
    leader_epoch: int = 0
    replicas: list[int] = field(default_factory=list)
    isr: list[int] = field(default_factory=list)

    def append_records_to_leader(
        self, records: bytes | bytearray | memoryview, required_acks: int, min_insync_replicas: int
    ) -> LogAppendInfo:
        if required_acks == -1 and len(self.isr) < min_insync_replicas:
            raise NotEnoughReplicasError(
                f"{self.tp}: {len(self.isr)} in-sync replicas, min.insync.replicas is "
                f"{min_insync_replicas}"
            )
        info = self.log.append_as_leader(records, self.leader_epoch)
        self.maybe_increment_leader_high_watermark()
        return info

    def maybe_increment_leader_high_watermark(self) -> None:
        # Followers' log end offsets come with replication; until then the ISR is the leader.
        self.log.update_high_watermark(self.log.log_end_offset)

    @property
    def high_watermark(self) -> int:
        return self.log.high_watermark

    @property
    def log_start_offset(self) -> int:
        return self.log.log_start_offset
