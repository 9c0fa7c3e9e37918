"""The partition side of transactions on a Log, without a broker: the last stable offset, the
`.txnindex` entries a marker writes, producer snapshots that keep ongoing transactions, and the
rebuild of a torn `.txnindex` and of one left behind by a crash."""

import os

import pytest

from engine.broker.group_coordinator import CommittedOffset
from engine.broker.offset_store import LogOffsetStore, commit_records
from engine.broker.partition import Partition
from engine.broker.transaction_markers import build_marker
from engine.common import TopicPartition
from engine.errors import InvalidProducerEpochError
from engine.records import SimpleRecord, build_batch
from engine.storage import FetchIsolation, Log
from engine.storage.transaction_index import TXN_INDEX_SUFFIX, AbortedTxn, read_txn_index


def txn_batch(pid: int, seq: int, count: int = 2, epoch: int = 0) -> bytearray:
    return build_batch(
        [SimpleRecord(f"{pid}-{seq + i}".encode()) for i in range(count)],
        producer_id=pid,
        producer_epoch=epoch,
        base_sequence=seq,
        is_transactional=True,
    )


def append(log: Log, records: bytearray) -> int:
    info = log.append_as_leader(records)
    log.update_high_watermark(log.log_end_offset)
    return info.first_offset


def index_files(log: Log) -> list[str]:
    return sorted(n for n in os.listdir(log.directory) if n.endswith(TXN_INDEX_SUFFIX))


def test_the_lso_follows_open_transactions_and_an_abort_is_indexed(tmp_path):
    log = Log(str(tmp_path / "p-0"))
    append(log, build_batch([SimpleRecord(b"plain")]))  # 0
    first_a = append(log, txn_batch(1, 0))  # 1-2
    first_b = append(log, txn_batch(2, 0))  # 3-4
    assert log.last_stable_offset == first_a
    assert log.read(0, 1 << 20, FetchIsolation.TXN_COMMITTED).size > 0
    append(log, build_marker(1, 0, True, 0, 0))  # commit A @5: B still holds the LSO
    assert log.last_stable_offset == first_b
    abort_offset = append(log, build_marker(2, 0, False, 0, 0))  # abort B @6
    assert log.last_stable_offset == log.high_watermark == 7
    expected = AbortedTxn(2, first_b, abort_offset, 7)
    assert log.collect_aborted_transactions(0, 7) == [expected]
    assert log.collect_aborted_transactions(5, 7) == [expected]  # its marker is past 5
    [name] = index_files(log)
    assert read_txn_index(os.path.join(log.directory, name)) == ([expected], False)


def test_an_lso_waits_for_the_marker_to_be_replicated(tmp_path):
    log = Log(str(tmp_path / "p-0"))
    append(log, txn_batch(1, 0))
    log.append_as_leader(build_marker(1, 0, True, 0, 0))  # the HW stays at 2
    assert log.last_stable_offset == 0
    log.update_high_watermark(log.log_end_offset)
    assert log.last_stable_offset == 3


def test_a_marker_of_an_older_epoch_is_refused_and_a_newer_one_fences(tmp_path):
    log = Log(str(tmp_path / "p-0"))
    append(log, txn_batch(1, 0, epoch=3))
    with pytest.raises(InvalidProducerEpochError):
        log.append_as_leader(build_marker(1, 2, False, 0, 0))
    append(log, build_marker(1, 4, False, 0, 0))  # the coordinator's abort, epoch bumped
    with pytest.raises(InvalidProducerEpochError):  # the zombie's next batch
        log.append_as_leader(txn_batch(1, 2, epoch=3))


def test_snapshots_keep_open_transactions_across_a_clean_restart(tmp_path):
    directory = str(tmp_path / "p-0")
    log = Log(directory)
    first = append(log, txn_batch(5, 0))
    hw = log.high_watermark
    log.close()
    reopened = Log(directory, recovery_point=hw, high_watermark=hw, had_clean_shutdown=True)
    assert reopened.last_stable_offset == first  # the snapshot said producer 5 was open
    append(reopened, build_marker(5, 0, False, 0, 0))
    assert reopened.collect_aborted_transactions(0, 10) == [AbortedTxn(5, first, 2, 3)]
    reopened.close()


def test_a_torn_or_lost_txnindex_is_rebuilt_from_the_log(tmp_path):
    directory = str(tmp_path / "p-0")
    log = Log(directory)
    for pid in (1, 2):
        append(log, txn_batch(pid, 0))
        append(log, build_marker(pid, 0, False, 0, 0))
    entries = log.collect_aborted_transactions(0, 100)
    assert len(entries) == 2
    hw = log.high_watermark
    log.close()
    [name] = index_files(log)
    path = os.path.join(directory, name)
    with open(path, "r+b") as f:
        f.truncate(34 + 20)  # the second entry torn
    reopened = Log(directory, recovery_point=hw, high_watermark=hw, had_clean_shutdown=True)
    assert reopened.collect_aborted_transactions(0, 100) == entries
    assert read_txn_index(path) == (entries, False)
    reopened.close_handlers()
    os.unlink(path)  # a crash before the entries were written: rebuilt by recovery's replay
    for snapshot in [n for n in os.listdir(directory) if n.endswith(".snapshot")]:
        os.unlink(os.path.join(directory, snapshot))
    recovered = Log(directory, recovery_point=0, high_watermark=hw)
    assert recovered.collect_aborted_transactions(0, 100) == entries


def test_transactional_offset_commits_count_only_after_a_commit_marker(tmp_path):
    """TxnOffsetCommit's records in the offsets log, replayed as a new coordinator replays
    them: committed by a COMMIT marker, dropped by an ABORT, pending without one."""
    log = Log(str(tmp_path / "__consumer_offsets-0"))
    store = LogOffsetStore(Partition(TopicPartition("__consumer_offsets", 0), log, leader_id=0))

    def commit(pid: int, offset: int) -> None:
        records = commit_records("g", [CommittedOffset("in", pid, offset, -1, "", 0)])
        append(log, build_batch(records, producer_id=pid, producer_epoch=0, is_transactional=True))

    commit(1, 10)
    commit(2, 20)
    commit(3, 30)
    append(log, build_marker(1, 0, True, 0, 0))
    append(log, build_marker(2, 0, False, 0, 0))
    loaded = {(c.topic, c.partition): c.offset for _, c in store.load()}
    assert loaded == {("in", 1): 10}
    assert {
        pid: [c.offset for c in groups["g"]] for pid, groups in store.pending_txn_offsets.items()
    } == {3: [30]}
