"""Idempotent producers: retries answered with the original offsets, gaps and fenced epochs
refused, and the state kept across clean and unclean restarts."""

import os

import pytest

from engine.errors import InvalidProducerEpochError, OutOfOrderSequenceError
from engine.records import SimpleRecord, build_batch
from engine.storage import Log, LogConfig


def batch(producer_id: int, epoch: int, sequence: int, count: int = 3) -> bytearray:
    records = [SimpleRecord(b"v%d" % (sequence + i), timestamp=1_000) for i in range(count)]
    return build_batch(
        records, producer_id=producer_id, producer_epoch=epoch, base_sequence=sequence
    )


def test_a_retried_batch_gets_its_original_offsets_and_is_not_appended(tmp_path):
    log = Log(str(tmp_path / "t-0"))
    log.append_as_leader(batch(7, 0, 0))
    first = log.append_as_leader(batch(7, 0, 3))
    size = log.size
    retry = log.append_as_leader(batch(7, 0, 3))
    assert retry.duplicate
    assert (retry.first_offset, retry.last_offset) == (first.first_offset, first.last_offset)
    assert (log.size, log.log_end_offset) == (size, 6)


def test_a_sequence_gap_is_refused(tmp_path):
    log = Log(str(tmp_path / "t-0"))
    log.append_as_leader(batch(7, 0, 0))
    with pytest.raises(OutOfOrderSequenceError, match="expected 3"):
        log.append_as_leader(batch(7, 0, 4))
    assert log.log_end_offset == 3


def test_epochs_fence_old_producers_and_restart_sequences(tmp_path):
    log = Log(str(tmp_path / "t-0"))
    log.append_as_leader(batch(7, 1, 0))
    with pytest.raises(InvalidProducerEpochError):
        log.append_as_leader(batch(7, 0, 3))
    with pytest.raises(OutOfOrderSequenceError, match="new epoch"):
        log.append_as_leader(batch(7, 2, 5))
    assert log.append_as_leader(batch(7, 2, 0)).first_offset == 3


def test_an_unknown_producer_is_accepted_at_any_sequence(tmp_path):
    log = Log(str(tmp_path / "t-0"))
    assert log.append_as_leader(batch(9, 0, 40)).first_offset == 0
    assert log.append_as_leader(batch(-1, -1, -1)).first_offset == 3  # not idempotent


def test_batches_of_one_producer_in_one_request_must_follow_each_other(tmp_path):
    log = Log(str(tmp_path / "t-0"))
    assert log.append_as_leader(batch(7, 0, 0) + batch(7, 0, 3)).last_offset == 5
    with pytest.raises(OutOfOrderSequenceError):
        log.append_as_leader(batch(7, 0, 6) + batch(7, 0, 10))
    assert log.log_end_offset == 6


@pytest.mark.parametrize("shutdown", ["clean", "crash", "corrupt-snapshot"])
def test_producer_state_survives_a_restart(tmp_path, shutdown):
    config = LogConfig(segment_bytes=len(batch(7, 0, 0)) * 2)
    log = Log(str(tmp_path / "t-0"), config)
    for sequence in range(0, 30, 3):  # rolls every two batches: a snapshot per roll
        log.append_as_leader(batch(7, 0, sequence))
    last = log.append_as_leader(batch(7, 0, 30))
    if shutdown == "clean":
        log.close()
    else:
        log.close_handlers()
    if shutdown == "corrupt-snapshot":
        for name in os.listdir(log.directory):
            if name.endswith(".snapshot"):
                with open(os.path.join(log.directory, name), "r+b") as f:
                    f.seek(10)
                    f.write(b"\xff")
    reopened = Log(str(tmp_path / "t-0"), config, had_clean_shutdown=shutdown == "clean")
    retry = reopened.append_as_leader(batch(7, 0, 30))
    assert retry.duplicate and retry.first_offset == last.first_offset
    with pytest.raises(OutOfOrderSequenceError):
        reopened.append_as_leader(batch(7, 0, 40))
    assert reopened.append_as_leader(batch(7, 0, 33)).first_offset == 33
