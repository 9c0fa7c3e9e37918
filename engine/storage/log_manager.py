"""LogManager: every partition log in one log directory, with the directory's checkpoints.

Layout of the directory (log.dirs), as Kafka's:
    <topic>-<partition>/                one Log each
    recovery-point-offset-checkpoint    offsets below which each log is fsynced
    log-start-offset-checkpoint         each log's start offset (moved by retention and
                                        DeleteRecords)
    replication-offset-checkpoint       each log's high watermark
    .kafka_cleanshutdown                written last by a clean shutdown, removed at start
    .lock                               flock'd while a process owns the directory

Crash behaviour: without the clean-shutdown marker every log is recovered from its checkpointed
recovery point (from offset 0 if the checkpoint is missing or unreadable); the manager logs that
it is recovering, each log what it truncated, and the manager a summary. The marker is written
only when every log closed and the checkpoints were written; a shutdown that failed leaves the
next start to recover. The checkpoints are written on a timer and at shutdown, and at once when
a DeleteRecords has moved a log start offset (before it is answered), so deleted records do not
come back after a crash; a log start offset moved by retention alone may go back to the first
segment's base offset, which holds the same records.

Segment files are opened when used and at most `file_handles.capacity` stay open (see
file_handles.py), so a directory with more partitions than descriptors still loads and serves.
Periodic work (retention, flush.ms, checkpoints) that fails for an OSError is logged, once per
partition or file until it succeeds again, and retried on the next round instead of stopping
the broker.
"""

import fcntl
import logging
import os
import re
import time
from collections.abc import Callable

from engine.common import TopicPartition
from engine.errors import KafkaStorageError
from engine.storage.checkpoint import CheckpointError, OffsetCheckpointFile
from engine.storage.config import LogConfig
from engine.storage.file_handles import FileHandleCache, default_file_handles
from engine.storage.log import Log, wall_clock_ms
from engine.storage.log_flusher import LogFlusher

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
    """Every log of one log directory. Not thread-safe: the event loop's thread alone uses it; its
    LogFlusher's thread works on paths and hands completions back (apply_completed_flushes)."""

    def __init__(
        self,
        log_dir: str,
        config: LogConfig | None = None,
        *,
        time_ms: Callable[[], int] = wall_clock_ms,
        file_handles: FileHandleCache | None = None,
    ) -> None:
        self.log_dir = log_dir
        self.config = config or LogConfig()
        self._time_ms = time_ms
        self.file_handles = file_handles if file_handles is not None else default_file_handles()
        self.flusher = LogFlusher(f"log-flusher {log_dir}")  # rolled segments, off the loop
        self._failures: dict[str, str] = {}  # periodic work that failed -> the error last logged
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
        partitions = []
        for entry in sorted(os.scandir(log_dir), key=lambda e: e.name):
            tp = parse_partition_dir(entry.name)
            if tp is not None and entry.is_dir():
                partitions.append((tp, entry.path))
        started = time.monotonic()
        if not clean and partitions:
            log.warning(
                "%s was not shut down cleanly: recovering %d partitions from their recovery points",
                log_dir,
                len(partitions),
            )
        for tp, path in partitions:
            self._logs[tp] = Log(
                path,
                self.config,
                recovery_point=(recovery_points or {}).get(tp, 0),
                log_start_offset=(log_starts or {}).get(tp, 0),
                high_watermark=(high_watermarks or {}).get(tp, 0),
                had_clean_shutdown=clean,
                time_ms=time_ms,
                file_handles=self.file_handles,
                flusher=self.flusher,
            )
        truncated = [p for p in self._logs.values() if p.recoveries]
        if not clean and partitions:
            log.warning(
                "recovery of %s done in %.1f s: %d of %d partitions truncated (%d bytes)%s",
                log_dir,
                time.monotonic() - started,
                len(truncated),
                len(partitions),
                sum(partition_log.recovered_bytes_truncated for partition_log in truncated),
                ": " + ", ".join(os.path.basename(p.directory) for p in truncated[:20])
                if truncated
                else "",
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
        # No file is made until the first append, and nothing is fsynced here: see sync_log_dir.
        directory = os.path.join(self.log_dir, str(tp))
        try:
            os.mkdir(directory)
            new = True
        except FileExistsError:  # left by a delete that did not finish: load what it holds
            new = False
        created = Log(
            directory,
            config or self.config,
            had_clean_shutdown=True,  # a new directory has nothing to recover
            time_ms=self._time_ms,
            file_handles=self.file_handles,
            flusher=self.flusher,
            new=new,
        )
        self._logs[tp] = created
        return created

    def sync_log_dir(self) -> None:
        """fsync the log directory: the entries of partition directories made since the last
        call survive a power loss (one fsync for a whole CreateTopics, not one per partition)."""
        fd = os.open(self.log_dir, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    @property
    def segment_count(self) -> int:
        return sum(len(partition_log.segments) for partition_log in self._logs.values())

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
        """Retention over every log; returns the number of segments deleted. A log whose files
        cannot be renamed or deleted is logged (once until it succeeds) and skipped."""
        deleted = 0
        for partition_log in self._logs.values():
            try:
                deleted += partition_log.delete_old_segments()
            except OSError as exc:
                self._failed(f"retention of {partition_log.directory}", exc)
            else:
                self._succeeded(f"retention of {partition_log.directory}")
        return deleted

    def apply_completed_flushes(self) -> None:
        """Advance the recovery points of logs whose rolled segments the flusher has synced
        (on the loop thread, which alone touches the logs)."""
        for result in self.flusher.completed():
            result.on_done(result.ok)

    def flush_dirty_logs(self) -> int:
        """flush.ms over every log; returns how many were flushed. A failed fsync is logged once
        per partition until one succeeds; the recovery point stays where it was."""
        self.apply_completed_flushes()
        flushed = 0
        for partition_log in self._logs.values():
            try:
                flushed += partition_log.maybe_flush()
            except OSError as exc:
                self._failed(f"flush of {partition_log.directory}", exc)
            else:
                self._succeeded(f"flush of {partition_log.directory}")
        return flushed

    def checkpoint(self) -> bool:
        """Write the three checkpoint files from the logs' current offsets. For the timer: a
        failure is logged (once until it succeeds) and left to the next round, so it returns
        False; recovery after a crash starts from the older recovery points meanwhile."""
        self.apply_completed_flushes()
        try:
            self._write_checkpoints()
        except OSError as exc:
            self._failed(f"checkpoint of {self.log_dir}", exc)
            return False
        self._succeeded(f"checkpoint of {self.log_dir}")
        return True

    def _write_checkpoints(self) -> None:
        self._recovery_points.write({tp: log.recovery_point for tp, log in self._logs.items()})
        self._log_starts.write({tp: log.log_start_offset for tp, log in self._logs.items()})
        self._high_watermarks.write({tp: log.high_watermark for tp, log in self._logs.items()})

    def _failed(self, what: str, exc: OSError) -> None:
        if what not in self._failures:
            log.error("%s failed: %s; retrying, further failures are not logged", what, exc)
        self._failures[what] = str(exc)

    def _succeeded(self, what: str) -> None:
        if self._failures.pop(what, None) is not None:
            log.warning("%s succeeds again", what)

    def close_unclean(self) -> None:
        """Close every file without flushing, checkpointing or the marker, and release the
        directory: what a crash leaves (after a failure of unknown extent), so the next start
        recovers."""
        for partition_log in self._logs.values():
            partition_log.close_handlers()
        self.flusher.close()  # fsyncs already asked for still run, as they would before a crash
        os.close(self._lock_fd)
        self._logs.clear()

    def shutdown(self) -> None:
        """Flush and close every log, checkpoint, then mark the shutdown clean.

        A log that fails to close does not stop the others; the checkpoints are still written,
        but not the marker, and the first error is raised: the next start recovers.
        """
        errors: list[Exception] = []
        self.flusher.close()
        self.apply_completed_flushes()
        for partition_log in self._logs.values():
            try:
                partition_log.close()
            except (OSError, KafkaStorageError) as exc:
                log.error("closing %s failed: %s", partition_log.directory, exc)
                errors.append(exc)
        try:
            self._write_checkpoints()
            if not errors:
                with open(os.path.join(self.log_dir, CLEAN_SHUTDOWN_FILE), "w") as marker:
                    marker.flush()
                    os.fsync(marker.fileno())
        except OSError as exc:
            errors.append(exc)
        finally:
            os.close(self._lock_fd)
            self._logs.clear()
        if errors:
            raise errors[0]
