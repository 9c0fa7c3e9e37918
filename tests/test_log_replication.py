"""The follower side of a Log: leader batches appended verbatim, and truncation of a diverged tail
(KIP-101), as replication uses them."""

import os

import pytest

from engine.errors import InvalidRecordError
from engine.records import build_batch, iter_batches
from engine.records.record import SimpleRecord
from engine.storage import Log, LogConfig
from engine.storage.leader_epoch_cache import LeaderEpochFileCache
from tests.conftest import make_batch


def open_log(path, **settings) -> Log:
    return Log(str(path), LogConfig.from_properties(settings))


def segment_bytes(log: Log) -> bytes:
    return b"".join(s.log.read(0, s.size) for s in log.segments)


def leader_with(tmp_path, epochs_and_counts) -> Log:
    """A leader log whose batches were appended in the given epochs (3 records each)."""
    leader = open_log(tmp_path / "leader", **{"segment.bytes": "2000"})
    for epoch, count in epochs_and_counts:
        for _ in range(count):
            leader.append_as_leader(make_batch(3, 100, tag=count), leader_epoch=epoch)
    return leader


def test_a_follower_copy_is_byte_identical_to_the_leader(tmp_path):
    leader = leader_with(tmp_path, [(0, 4), (2, 5)])
    follower = open_log(tmp_path / "follower", **{"segment.bytes": "2000"})
    data = b"".join(s.read() for s in leader.read(0, 1 << 20).slices)
    for batch in iter_batches(data):  # one fetch response per batch, as a slow follower sees
        follower.append_as_follower(
            bytes(batch.buffer[batch.position : batch.position + batch.size_in_bytes])
        )
    assert follower.log_end_offset == leader.log_end_offset == 27
    assert segment_bytes(follower) == segment_bytes(leader)
    assert [s.base_offset for s in follower.segments] == [s.base_offset for s in leader.segments]
    assert (
        follower.leader_epoch_cache.entries
        == leader.leader_epoch_cache.entries
        == [
            (0, 0),
            (2, 12),
        ]
    )


def test_a_follower_append_that_does_not_continue_the_log_is_refused(tmp_path):
    leader = leader_with(tmp_path, [(0, 2)])
    follower = open_log(tmp_path / "follower")
    second = list(iter_batches(b"".join(s.read() for s in leader.read(0, 1 << 20).slices)))[1]
    with pytest.raises(InvalidRecordError, match="the log ends at 0"):
        follower.append_as_follower(
            bytes(second.buffer[second.position : second.position + second.size_in_bytes])
        )
    assert follower.log_end_offset == 0


def test_truncation_cuts_whole_batches_and_what_depends_on_them(tmp_path):
    log = leader_with(tmp_path, [(0, 3), (1, 3), (4, 3)])  # 27 offsets over several segments
    producer = build_batch(
        [SimpleRecord(b"v", None)], producer_id=7, producer_epoch=0, base_sequence=0
    )
    log.append_as_leader(producer, leader_epoch=4)
    log.update_high_watermark(log.log_end_offset)
    assert 7 in log.producer_state.producers
    assert log.truncate_to(10)
    # the batch holding offset 10 (9-11) goes whole
    assert log.log_end_offset == 9
    assert log.high_watermark == 9
    assert log.leader_epoch_cache.entries == [(0, 0), (1, 9)][:1]
    assert 7 not in log.producer_state.producers
    assert [b.base_offset for s in log.read(0, 1 << 20).slices for b in iter_batches(s.read())] == [
        0,
        3,
        6,
    ]
    log.append_as_leader(make_batch(2), leader_epoch=5)  # the log goes on from the cut
    assert log.log_end_offset == 11
    assert not log.truncate_to(11)


def test_truncation_survives_a_restart(tmp_path):
    log = leader_with(tmp_path, [(0, 3), (3, 3)])
    log.truncate_to(6)
    log.close()
    reopened = open_log(tmp_path / "leader")
    assert reopened.log_end_offset == 6
    assert LeaderEpochFileCache(str(tmp_path / "leader")).entries == [(0, 0)]
    assert not [n for n in os.listdir(tmp_path / "leader") if n.endswith(".deleted")]


def test_truncate_fully_starts_an_empty_log_at_an_offset(tmp_path):
    log = leader_with(tmp_path, [(0, 3)])
    log.truncate_fully_and_start_at(500)
    assert (log.log_start_offset, log.log_end_offset, log.high_watermark) == (500, 500, 500)
    assert log.leader_epoch_cache.entries == []
    log.append_as_follower(build_batch([SimpleRecord(b"x", None)], base_offset=500))
    assert log.log_end_offset == 501
