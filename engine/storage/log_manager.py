"""LogManager: every partition log in one log directory, with the directory's checkpoints.

Layout of the directory (log.dirs), as Kafka's:
    <topic>-<partition>/                one Log each
    recovery-point-offset-checkpoint    offsets below which each log is fsynced
    log-start-offset-checkpoint         each log's start offset
    replication-offset-checkpoint       each log's high watermark
    .kafka_cleanshutdown                written last by a clean shutdown, removed at start
    .lock                               flock'd while a process owns the directory

Crash behaviour: without the clean-shutdown marker every log is recovered from its checkpointed
recovery point (from offset 0 if the checkpoint is missing or unreadable).
"""

import fcntl
import logging
import os
import re
from collections.abc import Callable

from engine.common import TopicPartition
from engine.storage.checkpoint import CheckpointError, OffsetCheckpointFile
from engine.storage.config import LogConfig
from engine.storage.log import Log, wall_clock_ms

RECOVERY_POINT_CHECKPOINT = "recovery-point-offset-checkpoint"
LOG_START_OFFSET_CHECKPOINT = "log-start-offset-checkpoint"
HIGH_WATERMARK_CHECKPOINT = "replication-offset-checkpoint"
CLEAN_SHUTDOWN_FILE = ".kafka_cleanshutdown"
LOCK_FILE = ".lock"

_LEGAL_TOPIC = re.compile(r"[a-zA-Z0-9._-]{1,249}")
_PARTITION_DIR = re.compile(r"(.+)-(\d+)")

log = logging.getLogger(__name__)


def validate_topic_name(topic: str) -> None:
    if not _LEGAL_TOPIC.fullmatch(topic) or topic in (".", ".."):
        raise ValueError(
            f"illegal topic name {topic!r}: use 1 to 249 of the characters a-z A-Z 0-9 . _ -"
        )


def parse_partition_dir(name: str) -> TopicPartition | None:
    match = _PARTITION_DIR.fullmatch(name)
    if match is None:
        return None
    return TopicPartition(match.group(1), int(match.group(2)))


class LogManager:
    def __init__(
        self,
        log_dir: str,
        config: LogConfig | None = None,
        *,
        time_ms: Callable[[], int] = wall_clock_ms,
    ) -> None:
        self.log_dir = log_dir
        self.config = config or LogConfig()
        self._time_ms = time_ms
        os.makedirs(log_dir, exist_ok=True)
        self._lock_fd = os.open(os.path.join(log_dir, LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            raise RuntimeError(f"log directory {log_dir} is in use by another process") from None
        self._recovery_points = self._checkpoint(RECOVERY_POINT_CHECKPOINT)
        self._log_starts = self._checkpoint(LOG_START_OFFSET_CHECKPOINT)
        self._high_watermarks = self._checkpoint(HIGH_WATERMARK_CHECKPOINT)
        marker = os.path.join(log_dir, CLEAN_SHUTDOWN_FILE)
        self.had_clean_shutdown = os.path.exists(marker)
        self._logs: dict[TopicPartition, Log] = {}
        recovery_points = self._read(self._recovery_points)
        log_starts = self._read(self._log_starts)
        high_watermarks = self._read(self._high_watermarks)
        clean = self.had_clean_shutdown and recovery_points is not None
        for name in sorted(os.listdir(log_dir)):
            tp = parse_partition_dir(name)
            if tp is None or not os.path.isdir(os.path.join(log_dir, name)):
                continue
            self._logs[tp] = Log(
                os.path.join(log_dir, name),
                self.config,
                recovery_point=(recovery_points or {}).get(tp, 0),
                log_start_offset=(log_starts or {}).get(tp, 0),
                high_watermark=(high_watermarks or {}).get(tp, 0),
                had_clean_shutdown=clean,
                time_ms=time_ms,
            )
        if self.had_clean_shutdown:
            os.unlink(marker)  # from here on a crash must be detectable

    def _checkpoint(self, name: str) -> OffsetCheckpointFile:
        return OffsetCheckpointFile(os.path.join(self.log_dir, name))

    @staticmethod
    def _read(checkpoint: OffsetCheckpointFile) -> dict[TopicPartition, int] | None:
        try:
            return checkpoint.read()
        except CheckpointError as exc:
            log.warning("%s; recovering as after a crash", exc)
            return None

    # -- logs -----------------------------------------------------------------------------------
    @property
    def logs(self) -> dict[TopicPartition, Log]:
        return dict(self._logs)

    def get_log(self, tp: TopicPartition) -> Log | None:
        return self._logs.get(tp)

    def get_or_create_log(self, tp: TopicPartition, config: LogConfig | None = None) -> Log:
        existing = self._logs.get(tp)
        if existing is not None:
            return existing
        validate_topic_name(tp.topic)
        if tp.partition < 0:
            raise ValueError(f"partition must be >= 0, got {tp.partition}")
        created = Log(
            os.path.join(self.log_dir, str(tp)),
            config or self.config,
            had_clean_shutdown=True,  # a new directory has nothing to recover
            time_ms=self._time_ms,
        )
        self._logs[tp] = created
        return created

    def delete_log(self, tp: TopicPartition) -> None:
        removed = self._logs.pop(tp, None)
        if removed is None:
            return
        removed.close()
        for name in os.listdir(removed.directory):
            os.unlink(os.path.join(removed.directory, name))
        os.rmdir(removed.directory)

    # -- periodic work --------------------------------------------------------------------------
    def cleanup_logs(self) -> int:
        """Retention over every log; returns the number of segments deleted."""
        return sum(log.delete_old_segments() for log in self._logs.values())

    def flush_dirty_logs(self) -> int:
        """flush.ms over every log; returns how many were flushed."""
        return sum(log.maybe_flush() for log in self._logs.values())

    def checkpoint(self) -> None:
        """Write the three checkpoint files from the logs' current offsets."""
        self._recovery_points.write({tp: log.recovery_point for tp, log in self._logs.items()})
        self._log_starts.write({tp: log.log_start_offset for tp, log in self._logs.items()})
        self._high_watermarks.write({tp: log.high_watermark for tp, log in self._logs.items()})

    def shutdown(self) -> None:
        """Flush and close every log, checkpoint, then mark the shutdown clean."""
        for partition_log in self._logs.values():
            partition_log.close()
        self.checkpoint()
        with open(os.path.join(self.log_dir, CLEAN_SHUTDOWN_FILE), "w") as marker:
            marker.flush()
            os.fsync(marker.fileno())
        os.close(self._lock_fd)
        self._logs.clear()
