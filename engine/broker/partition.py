"""Partition: one topic partition's log and its replication state, as Kafka's Partition.

The leader's high watermark is the smallest log end offset among the in-sync replicas. With a
single broker the ISR is the leader alone, so the high watermark follows every append; the state
is kept in the shape replication needs (leader, epoch, replicas, ISR) so followers can join it.
"""

from dataclasses import dataclass, field

from engine.common import TopicPartition
from engine.errors import NOT_ENOUGH_REPLICAS, KafkaError
from engine.records.batch import LOG_OVERHEAD, RecordBatch, iter_batches
from engine.records.validator import validate_client_batches
from engine.storage import Log, LogAppendInfo


class NotEnoughReplicasError(KafkaError):
    error_code = NOT_ENOUGH_REPLICAS


@dataclass(eq=False)
class Partition:
    """A partition this broker holds: its log, leader epoch and ISR. Not thread-safe: the event
    loop's thread alone uses it."""

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
        self._validate(records)
        info = self.log.append_as_leader(records, self.leader_epoch)
        self.maybe_increment_leader_high_watermark()
        return info

    def _validate(self, records: bytes | bytearray | memoryview) -> None:
        """A client's batches: their headers and every record in them (Kafka's LogValidator).

        Kafka checks framing, sizes and CRCs first (UnifiedLog.analyzeAndValidateRecords); the
        Log does those here, so when the contents fail and one of those fails too, the Log is
        left to answer with its error. Sound batches pay for no second CRC.
        """
        try:
            batches = list(iter_batches(records))
        except KafkaError:
            return  # malformed framing: the Log refuses it
        try:
            validate_client_batches(batches, str(self.tp))
        except KafkaError:
            if not _refused_before_contents(self.log, records, batches):
                raise

    def maybe_increment_leader_high_watermark(self) -> None:
        # Followers' log end offsets come with replication; until then the ISR is the leader.
        self.log.update_high_watermark(self.log.log_end_offset)

    @property
    def high_watermark(self) -> int:
        return self.log.high_watermark

    @property
    def log_start_offset(self) -> int:
        return self.log.log_start_offset


def _refused_before_contents(
    log: Log, records: bytes | bytearray | memoryview, batches: list[RecordBatch]
) -> bool:
    """Whether the Log refuses these batches before their contents would be looked at."""
    if not batches or len(records) > log.config.segment_bytes:
        return True
    max_batch_length = log.config.max_message_bytes - LOG_OVERHEAD
    return any(
        batch.batch_length > max_batch_length
        or batch.record_count <= 0
        or batch.record_count != batch.last_offset_delta + 1
        or batch.compute_crc() != batch.crc
        for batch in batches
    )
