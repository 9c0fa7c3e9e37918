"""A roll's fsync runs on the flusher thread, not the caller's; the recovery point advances only
once it is done, and a segment deleted meanwhile is skipped."""

import os
import threading
from unittest import mock

from engine.common import TopicPartition
from engine.records import SimpleRecord, build_batch
from engine.storage import LogConfig, LogManager
from engine.storage.log_flusher import LogFlusher

_real_fsync = os.fsync


def _fill(partition_log, batches: int) -> None:
    for i in range(batches):
        partition_log.append_as_leader(build_batch([SimpleRecord(b"%d" % i * 100)]))


def test_a_roll_is_fsynced_by_the_flusher_and_then_moves_the_recovery_point(tmp_path):
    manager = LogManager(str(tmp_path), LogConfig(segment_bytes=1024))
    partition_log = manager.get_or_create_log(TopicPartition("t", 0))
    synced: list[tuple[str, int]] = []  # (path, thread) of every fsync

    def fsync(fd: int) -> None:
        synced.append((os.readlink(f"/proc/self/fd/{fd}"), threading.get_ident()))
        _real_fsync(fd)

    manager.flusher.wait_idle()
    with mock.patch("os.fsync", fsync):
        _fill(partition_log, 30)  # 30 batches of ~170 bytes: several rolls
        rolled = [s for s in partition_log.segments if s is not partition_log.active_segment]
        assert rolled
        assert partition_log.recovery_point == 0  # not before the flusher is done
        on_caller = {path for path, thread in synced if thread == threading.get_ident()}
        # only the epoch checkpoint, when epoch 0 began at the first append; no segment file
        assert {os.path.basename(path) for path in on_caller} <= {"leader-epoch-checkpoint.tmp"}
        assert manager.flusher.wait_idle(30)
    manager.apply_completed_flushes()
    assert partition_log.recovery_point == partition_log.active_segment.base_offset
    for segment in rolled:
        assert {segment.log.path, segment.offset_index.path} <= {path for path, _ in synced}
    manager.shutdown()


def test_a_flush_of_a_segment_deleted_meanwhile_is_skipped(tmp_path):
    flusher = LogFlusher()
    kept = tmp_path / "kept.log"
    kept.write_bytes(b"x")
    results: list[bool] = []
    flusher.submit([str(tmp_path / "gone.log"), str(kept)], results.append)
    assert flusher.wait_idle(30)
    for result in flusher.completed():
        result.on_done(result.ok)
    assert results == [True]
    flusher.close()


def test_a_failed_fsync_leaves_the_recovery_point(tmp_path):
    manager = LogManager(str(tmp_path), LogConfig(segment_bytes=1024))
    partition_log = manager.get_or_create_log(TopicPartition("t", 0))

    def failing(fd: int) -> None:
        raise OSError(5, "Input/output error")

    with mock.patch("os.fsync", failing):
        _fill(partition_log, 30)
        assert manager.flusher.wait_idle(30)
        manager.apply_completed_flushes()
    assert partition_log.recovery_point == 0
    manager.close_unclean()
