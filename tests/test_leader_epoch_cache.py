"""LeaderEpochFileCache: where each leader epoch began, Kafka's answers to OffsetForLeaderEpoch,
truncation at both ends, and the checkpoint file across restarts and damage."""

import os

from engine.records import SimpleRecord, build_batch
from engine.storage import Log
from engine.storage.leader_epoch_cache import (
    LEADER_EPOCH_CHECKPOINT,
    UNDEFINED,
    LeaderEpochFileCache,
)


def _cache(tmp_path, *entries: tuple[int, int]) -> LeaderEpochFileCache:
    cache = LeaderEpochFileCache(str(tmp_path))
    for epoch, start in entries:
        cache.assign(epoch, start)
    return cache


def test_assign_keeps_epochs_and_starts_increasing(tmp_path):
    cache = _cache(tmp_path, (0, 0), (0, 5), (2, 10), (3, 20))
    assert cache.entries == [(0, 0), (2, 10), (3, 20)]  # (0, 5): epoch 0 already began at 0
    cache.assign(2, 15)  # an older epoch again: every entry of it or newer goes, as in Kafka
    assert cache.entries == [(0, 0), (2, 15)]
    cache.assign(4, 12)  # a start before epoch 2's would break the order: epoch 2 goes too
    assert cache.entries == [(0, 0), (4, 12)]
    cache.assign(-1, 30)  # no epoch (an old message format): nothing recorded
    assert cache.latest_epoch == 4


def test_end_offset_for_answers_as_kafka(tmp_path):
    cache = _cache(tmp_path, (1, 0), (3, 100), (5, 250))
    log_end = 400
    assert cache.end_offset_for(5, log_end) == (5, 400)  # the latest: ends at the log end
    assert cache.end_offset_for(3, log_end) == (3, 250)  # ends where epoch 5 began
    assert cache.end_offset_for(4, log_end) == (3, 250)  # never led here: the epoch below
    assert cache.end_offset_for(0, log_end) == (0, 0)  # before every known epoch
    assert cache.end_offset_for(7, log_end) == (UNDEFINED, UNDEFINED)  # newer than any
    assert cache.end_offset_for(UNDEFINED, log_end) == (UNDEFINED, UNDEFINED)
    assert _cache(tmp_path / "x").end_offset_for(1, 5) == (UNDEFINED, UNDEFINED)


def test_truncation_at_either_end(tmp_path):
    cache = _cache(tmp_path, (1, 0), (3, 100), (5, 250))
    cache.truncate_from_end(250)  # the log cut at 250: epoch 5 never began
    assert cache.entries == [(1, 0), (3, 100)]
    cache.truncate_from_start(120)  # retention: the log begins inside epoch 3
    assert cache.entries == [(3, 120)]
    cache.truncate_from_start(50)  # before it: nothing to change
    assert cache.entries == [(3, 120)]


def test_the_file_is_kafkas_format_and_survives_a_restart(tmp_path):
    _cache(tmp_path, (0, 0), (2, 40))
    with open(tmp_path / LEADER_EPOCH_CHECKPOINT) as f:
        assert f.read() == "0\n2\n0 0\n2 40\n"
    assert LeaderEpochFileCache(str(tmp_path)).entries == [(0, 0), (2, 40)]
    assert not os.path.exists(tmp_path / (LEADER_EPOCH_CHECKPOINT + ".tmp"))


def test_a_damaged_file_is_dropped_not_fatal(tmp_path):
    for text in ("0\n3\n0 0\n", "1\n1\n0 0\n", "0\n2\n2 0\n1 5\n", "garbage"):
        (tmp_path / LEADER_EPOCH_CHECKPOINT).write_text(text)
        assert LeaderEpochFileCache(str(tmp_path)).entries == []


def test_the_log_records_each_epoch_where_its_first_batch_lands(tmp_path):
    directory = str(tmp_path / "t-0")
    log = Log(directory)
    for epoch, count in ((0, 3), (0, 2), (4, 1), (7, 2)):
        for _ in range(count):
            log.append_as_leader(build_batch([SimpleRecord(b"v")] * 2), leader_epoch=epoch)
    assert log.leader_epoch_cache.entries == [(0, 0), (4, 10), (7, 12)]
    assert log.leader_epoch_cache.end_offset_for(4, log.log_end_offset) == (4, 12)
    log.close()
    assert Log(directory, had_clean_shutdown=True).leader_epoch_cache.entries == [
        (0, 0),
        (4, 10),
        (7, 12),
    ]
