"""MetadataLog: the controller's log of metadata records, `__cluster_metadata-0`, as KRaft keeps it.

Files, in the controller's log directory (Kafka's layout for a single voter):
    __cluster_metadata-0/00000000000000000000.log ...   ordinary segments (engine/storage/log.py)
    __cluster_metadata-0/leader-epoch-checkpoint        where each controller epoch began
    __cluster_metadata-0/quorum-state                   {"leaderId", "leaderEpoch", "votedId",
                                                         ... "data_version": 0}, one JSON line
Each controller operation is one batch (atomic, as Raft's BatchBuilder writes it), its partition
leader epoch the controller's epoch; a new controller epoch begins with a LeaderChangeMessage
control batch. Every start is a new epoch: one voter elects itself.

Crash behaviour: an append is fsynced before it counts (the high watermark is the flushed end,
which is a single voter's commit rule), so whatever a broker or client was told survives; a torn
batch at the end is cut by the log's recovery at the next start. quorum-state is written to a
temporary file, fsynced and renamed.

Not thread-safe: the controller's event loop alone uses it.
"""

import json
import os
from collections.abc import Callable, Iterator
from typing import Any

from engine.common import TopicPartition
from engine.metadata.records import (
    build_leader_change_batch,
    build_metadata_batch,
    read_metadata_records,
)
from engine.records import iter_batches
from engine.storage import FetchIsolation, Log, LogConfig
from engine.storage.log import FetchDataInfo, wall_clock_ms

METADATA_TOPIC = "__cluster_metadata"
METADATA_PARTITION = TopicPartition(METADATA_TOPIC, 0)
QUORUM_STATE = "quorum-state"
_READ_BYTES = 8 << 20
# Kafka's metadata.log.segment.bytes default; metadata is small, so segments rarely roll
_SEGMENT_BYTES = 1 << 30


class MetadataLog:
    def __init__(
        self, log_dir: str, node_id: int, time_ms: Callable[[], int] = wall_clock_ms
    ) -> None:
        """Open (recovering) the metadata log and begin a new controller epoch."""
        self.node_id = node_id
        self._time_ms = time_ms
        self.directory = os.path.join(log_dir, str(METADATA_PARTITION))
        state = self._read_quorum_state()  # first: a bad file leaves no log open
        self.log = Log(
            self.directory,
            LogConfig(segment_bytes=_SEGMENT_BYTES, retention_ms=-1),
            time_ms=time_ms,
        )
        self.log.update_high_watermark(self.log.log_end_offset)  # all of it was flushed
        self.epoch = max(int(state.get("leaderEpoch", 0)), self.log.leader_epoch_cache.latest_epoch)
        self.epoch += 1
        self._write_quorum_state()
        batch = build_leader_change_batch(
            base_offset=self.log.log_end_offset,
            leader_epoch=self.epoch,
            leader_id=node_id,
            voters=[node_id],
            timestamp_ms=time_ms(),
        )
        self._append(batch)

    @property
    def end_offset(self) -> int:
        """The offset the next record gets (a new broker's epoch, as Kafka's)."""
        return self.log.log_end_offset

    def records(self) -> Iterator[tuple[int, Any]]:
        """Every metadata record in the log, in order, with its offset (control batches left
        out): what the controller replays at start."""
        offset = self.log.log_start_offset
        while offset < self.log.log_end_offset:
            data = self.log.read(offset, _READ_BYTES, FetchIsolation.LOG_END).read()
            if not data:
                break
            yield from read_metadata_records(data)
            for batch in iter_batches(data):
                offset = batch.next_offset

    def append(self, records: list[Any]) -> int:
        """Write the records as one batch, durably; returns the offset of the first."""
        base = self.log.log_end_offset
        self._append(
            build_metadata_batch(
                records, base_offset=base, leader_epoch=self.epoch, timestamp_ms=self._time_ms()
            )
        )
        return base

    def _append(self, batch: bytearray) -> None:
        self.log.append_as_leader(batch, self.epoch)
        self.log.flush()
        self.log.update_high_watermark(self.log.log_end_offset)

    def read(self, offset: int, max_bytes: int) -> FetchDataInfo:
        """Committed batches from offset (what brokers fetch). OffsetOutOfRangeError outside the
        log."""
        return self.log.read(offset, max_bytes, FetchIsolation.HIGH_WATERMARK)

    def _read_quorum_state(self) -> dict[str, Any]:
        path = os.path.join(self.directory, QUORUM_STATE)
        try:
            with open(path, encoding="utf-8") as f:
                state = json.load(f)
        except FileNotFoundError:
            return {}
        except ValueError as exc:
            raise RuntimeError(f"{path}: not JSON ({exc})") from None
        return state if isinstance(state, dict) else {}

    def _write_quorum_state(self) -> None:
        path = os.path.join(self.directory, QUORUM_STATE)
        state = {
            "clusterId": "",
            "leaderId": self.node_id,
            "leaderEpoch": self.epoch,
            "votedId": self.node_id,
            "appliedOffset": 0,
            "currentVoters": [{"voterId": self.node_id}],
            "data_version": 0,
        }
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            f.write(json.dumps(state, separators=(",", ":")))
            f.flush()
            os.fsync(f.fileno())
        os.replace(path + ".tmp", path)

    def close(self) -> None:
        self.log.close()
