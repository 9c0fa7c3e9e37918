"""The partition log: appends, reads, rolls, indexes, timestamps, retention and flush policy."""

import errno
import os

import pytest

from engine.errors import (
    CorruptRecordError,
    InvalidRecordError,
    OffsetOutOfRangeError,
    RecordListTooLargeError,
    RecordTooLargeError,
    UnsupportedForMessageFormatError,
)
from engine.records import CompressionType, decode_records, iter_batches
from engine.storage import FetchIsolation, FileRecords, Log, LogConfig
from engine.storage.file_handles import FileHandleCache
from tests.conftest import make_batch


class Clock:
    def __init__(self, now: int = 1_000_000) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def open_log(tmp_path, clock=None, **settings) -> Log:
    return Log(str(tmp_path / "topic-0"), LogConfig(**settings), time_ms=clock or Clock())


def values(fetch) -> list[bytes]:
    return [r.value for b in iter_batches(fetch.read()) for r in decode_records(b)]


def test_offsets_are_assigned_in_order_across_appends(tmp_path):
    log = open_log(tmp_path)
    first = log.append_as_leader(make_batch(3), leader_epoch=4)
    second = log.append_as_leader(make_batch(2) + make_batch(4))
    assert (first.first_offset, first.last_offset) == (0, 2)
    assert (second.first_offset, second.last_offset, second.record_count) == (3, 8, 6)
    assert log.log_end_offset == 9
    batches = list(iter_batches(log.read(0, 1 << 20).read()))
    assert [b.base_offset for b in batches] == [0, 3, 5]
    assert [b.partition_leader_epoch for b in batches] == [4, 0, 0]
    assert all(b.is_valid() for b in batches)


def test_one_append_is_one_write_of_the_received_bytes(tmp_path):
    log = open_log(tmp_path)
    data = make_batch(2) + make_batch(3)
    log.append_as_leader(data)
    path = log.active_segment.log.path
    with open(path, "rb") as f:
        assert f.read() == bytes(data)  # patched in place: the caller's buffer is what was written


def test_a_corrupt_batch_in_a_multi_batch_append_appends_nothing(tmp_path):
    log = open_log(tmp_path)
    log.append_as_leader(make_batch(2))
    good, bad = make_batch(2), make_batch(2)
    bad[-1] ^= 0x01
    with pytest.raises(CorruptRecordError):
        log.append_as_leader(good + bad)
    assert log.log_end_offset == 2
    assert log.size == len(make_batch(2))
    assert log.append_as_leader(make_batch(1)).first_offset == 2


@pytest.mark.parametrize(
    ("mangle", "error"),
    [
        (lambda b: b[: len(b) - 3], CorruptRecordError),
        (lambda b: b[:8] + b"\x7f\xff\xff\xff" + b[12:], CorruptRecordError),
        (lambda b: b[:16] + b"\x01" + b[17:], UnsupportedForMessageFormatError),
        (lambda b: b"", InvalidRecordError),
    ],
    ids=["truncated", "length-past-end", "magic-1", "empty"],
)
def test_malformed_input_is_refused_and_nothing_is_appended(tmp_path, mangle, error):
    log = open_log(tmp_path)
    with pytest.raises(error):
        log.append_as_leader(bytes(mangle(make_batch(3))))
    assert (log.log_end_offset, log.size) == (0, 0)


def test_a_batch_over_max_message_bytes_is_refused(tmp_path):
    log = open_log(tmp_path, max_message_bytes=1000)
    with pytest.raises(RecordTooLargeError, match=r"max\.message\.bytes"):
        log.append_as_leader(make_batch(20))
    assert log.log_end_offset == 0


def test_count_and_offset_delta_must_agree(tmp_path):
    log = open_log(tmp_path)
    data = make_batch(3)
    data[57:61] = (5).to_bytes(4, "big")  # recordCount, inside the CRC: recompute it
    [batch] = iter_batches(data)
    batch.update_crc()
    with pytest.raises(InvalidRecordError):
        log.append_as_leader(data)


def test_read_returns_whole_batches_and_at_least_one(tmp_path):
    log = open_log(tmp_path)
    sizes = []
    for i in range(10):
        sizes.append(len(make_batch(4, tag=i)))
        log.append_as_leader(make_batch(4, tag=i))
    # an offset inside a batch starts the read at that batch
    fetch = log.read(6, 1 << 20)
    assert fetch.slices[0].position == sizes[0]
    assert values(fetch)[0] == b"1:0:".ljust(100, b"x")
    # a budget of one and a half batches returns one
    assert log.read(0, sizes[0] + sizes[1] // 2).size == sizes[0]
    # a budget below one batch still returns the first batch
    assert log.read(0, 10).size == sizes[0]
    assert log.read(0, 10, min_one_message=False).size == 0
    # the end of the log reads nothing; past it is out of range
    assert log.read(40, 100).slices == []
    with pytest.raises(OffsetOutOfRangeError):
        log.read(41, 100)


def test_a_batch_over_the_budget_is_never_skipped(tmp_path):
    small, big = len(make_batch(1)), len(make_batch(30))
    log = open_log(tmp_path, segment_bytes=big)
    log.append_as_leader(make_batch(1))
    log.append_as_leader(make_batch(30))  # rolls: offsets 1-30 alone in the second segment
    log.append_as_leader(make_batch(1))
    assert [s.base_offset for s in log.segments] == [0, 1, 31]
    fetch = log.read(0, small + big - 1, min_one_message=False)
    assert [s.length for s in fetch.slices] == [small]  # not the batch at offset 31


def test_reads_cross_segments_while_the_budget_lasts(tmp_path):
    batch_size = len(make_batch(4))
    log = open_log(tmp_path, segment_bytes=batch_size * 3)
    for i in range(10):
        log.append_as_leader(make_batch(4, tag=i))
    assert len(log.segments) == 4
    assert [s.base_offset for s in log.segments] == [0, 12, 24, 36]
    fetch = log.read(8, batch_size * 5)
    assert [s.length for s in fetch.slices] == [batch_size, batch_size * 3, batch_size]
    assert [int(v.split(b":")[0]) for v in values(fetch)[::4]] == [2, 3, 4, 5, 6]


def test_high_watermark_isolation_hides_uncommitted_batches(tmp_path):
    log = open_log(tmp_path)
    for i in range(5):
        log.append_as_leader(make_batch(2, tag=i))
    assert log.high_watermark == 0
    assert log.read(0, 1 << 20, FetchIsolation.HIGH_WATERMARK).slices == []
    log.update_high_watermark(6)
    assert len(values(log.read(0, 1 << 20, FetchIsolation.HIGH_WATERMARK))) == 6
    assert log.read(7, 1 << 20, FetchIsolation.HIGH_WATERMARK).slices == []
    assert len(values(log.read(0, 1 << 20))) == 10
    assert log.update_high_watermark(1_000) == 10  # clamped to the log end offset


def test_rolls_on_segment_bytes(tmp_path):
    batch_size = len(make_batch(4))
    log = open_log(tmp_path, segment_bytes=batch_size * 2 + 1)
    for _ in range(5):
        log.append_as_leader(make_batch(4))
    assert [s.base_offset for s in log.segments] == [0, 8, 16]
    assert all(s.size <= batch_size * 2 + 1 for s in log.segments)
    names = sorted(os.listdir(log.directory))
    assert "00000000000000000008.log" in names
    assert "00000000000000000016.timeindex" in names


def test_rolls_on_segment_ms_by_record_timestamps(tmp_path):
    log = open_log(tmp_path, segment_ms=1_000)
    log.append_as_leader(make_batch(1, timestamp=10_000))
    log.append_as_leader(make_batch(1, timestamp=10_900))
    log.append_as_leader(make_batch(1, timestamp=11_001))
    assert [s.base_offset for s in log.segments] == [0, 2]
    log.close()  # a reopened segment measures from its first batch too
    log = Log(log.directory, log.config, had_clean_shutdown=True, time_ms=Clock())
    log.append_as_leader(make_batch(1, timestamp=12_002))
    assert [s.base_offset for s in log.segments] == [0, 2, 3]


def test_rolls_when_the_offset_index_is_full(tmp_path):
    log = open_log(tmp_path, segment_index_bytes=16, index_interval_bytes=0)
    for _ in range(6):
        log.append_as_leader(make_batch(1))
    assert all(s.offset_index.entries <= 2 for s in log.segments)
    assert len(log.segments) >= 2


def test_index_entries_every_interval_map_last_offsets_to_positions(tmp_path):
    batch_size = len(make_batch(4))
    log = open_log(tmp_path, index_interval_bytes=batch_size * 2)
    for _ in range(12):
        log.append_as_leader(make_batch(4))
    index = log.active_segment.offset_index
    entries = [index.entry(i) for i in range(index.entries)]
    # Kafka's rule: an entry once more than the interval has been appended since the last one
    # (the batch at 3 * batch_size holds offsets 12-15: its last offset is the key)
    assert entries == [(15, 3 * batch_size), (27, 6 * batch_size), (39, 9 * batch_size)]
    assert index.lookup(26) == (15, 3 * batch_size)
    assert index.lookup(5) == (0, 0)


def test_offset_for_timestamp(tmp_path):
    log = open_log(tmp_path, segment_bytes=2_000, index_interval_bytes=300)
    for i in range(20):
        log.append_as_leader(make_batch(5, timestamp=10_000 + 100 * i))
    assert len(log.segments) > 2
    assert log.fetch_offset_by_timestamp(0) == (10_000, 0)
    assert log.fetch_offset_by_timestamp(10_703) == (10_703, 38)
    assert log.fetch_offset_by_timestamp(10_705) == (10_800, 40)
    assert log.fetch_offset_by_timestamp(20_000) is None


def test_log_append_time(tmp_path):
    clock = Clock(123_456)
    log = open_log(tmp_path, clock, message_timestamp_type="LogAppendTime")
    info = log.append_as_leader(make_batch(3, timestamp=5))
    assert info.log_append_time == 123_456
    [batch] = iter_batches(log.read(0, 1 << 20).read())
    assert batch.max_timestamp == 123_456 and batch.is_valid()


def test_retention_bytes_deletes_oldest_closed_segments_below_the_high_watermark(tmp_path):
    clock = Clock()
    batch_size = len(make_batch(4))
    log = open_log(tmp_path, clock, segment_bytes=batch_size * 2, retention_bytes=batch_size * 5)
    for _ in range(10):
        log.append_as_leader(make_batch(4))
    assert len(log.segments) == 5
    assert log.delete_old_segments() == 0  # nothing is committed yet
    log.update_high_watermark(log.log_end_offset)
    assert log.delete_old_segments() == 2
    assert log.log_start_offset == 16
    # Kafka deletes a segment only while the rest still holds retention.bytes
    assert batch_size * 5 <= log.size < batch_size * 5 + log.segments[0].size
    with pytest.raises(OffsetOutOfRangeError):
        log.read(0, 100)
    assert log.read(16, 100).size == batch_size


def test_retention_ms_by_largest_timestamp(tmp_path):
    clock = Clock(100_000)
    batch_size = len(make_batch(1))
    log = open_log(tmp_path, clock, segment_bytes=batch_size, retention_ms=10_000)
    for ts in (50_000, 60_000, 95_000, 99_000):
        log.append_as_leader(make_batch(1, timestamp=ts))
    log.update_high_watermark(log.log_end_offset)
    assert log.delete_old_segments() == 2
    assert [s.base_offset for s in log.segments] == [2, 3]


def test_deleted_segments_stay_readable_until_the_delete_delay(tmp_path):
    clock = Clock()
    batch_size = len(make_batch(2))
    log = open_log(
        tmp_path, clock, segment_bytes=batch_size, retention_bytes=0, file_delete_delay_ms=5_000
    )
    for i in range(3):
        log.append_as_leader(make_batch(2, tag=i))
    log.update_high_watermark(log.log_end_offset)
    in_flight = log.read(0, 1 << 20)
    assert log.delete_old_segments() == 2
    assert sorted(n for n in os.listdir(log.directory) if n.endswith(".deleted"))
    assert values(in_flight)[0].startswith(b"0:0:")  # a handed-out slice still reads
    clock.now += 5_000
    log.delete_old_segments()
    assert not [n for n in os.listdir(log.directory) if n.endswith(".deleted")]


def test_flush_messages_advances_the_recovery_point(tmp_path):
    log = open_log(tmp_path, flush_messages=10)
    log.append_as_leader(make_batch(6))
    assert log.recovery_point == 0
    log.append_as_leader(make_batch(6))
    assert log.recovery_point == 12


def test_flush_ms_is_applied_by_maybe_flush(tmp_path):
    clock = Clock()
    log = open_log(tmp_path, clock, flush_ms=1_000)
    log.append_as_leader(make_batch(3))
    assert not log.maybe_flush()
    clock.now += 1_000
    assert log.maybe_flush()
    assert log.recovery_point == 3


def test_by_default_appends_are_not_fsynced_but_rolls_are(tmp_path):
    batch_size = len(make_batch(2))
    log = open_log(tmp_path, segment_bytes=batch_size * 2)
    for _ in range(3):
        log.append_as_leader(make_batch(2))
    assert log.recovery_point == 4  # the rolled segment was flushed, the active one was not


def test_compressed_batches_are_stored_as_received(tmp_path):
    log = open_log(tmp_path)
    data = make_batch(50, compression=CompressionType.ZSTD)
    log.append_as_leader(bytes(data))
    stored = log.read(0, 1 << 20).read()
    # only baseOffset and partitionLeaderEpoch (bytes 0-15) are patched
    assert stored[16:] == bytes(data[16:])
    assert len(values(log.read(0, 1 << 20))) == 50


def test_config_from_kafka_property_names():
    config = LogConfig.from_properties(
        {
            "log.segment.bytes": "1048576",
            "log.retention.hours": "1",
            "log.retention.ms": "5000",
            "index.interval.bytes": 128,
            "unrelated.setting": "x",
        }
    )
    assert config.segment_bytes == 1 << 20
    assert config.retention_ms == 5_000  # .ms wins over .hours, as in Kafka
    assert config.index_interval_bytes == 128
    assert LogConfig.from_properties({"log.retention.hours": "2"}).retention_ms == 7_200_000
    with pytest.raises(ValueError, match=r"segment\.bytes"):
        LogConfig.from_properties({"log.segment.bytes": "abc"})
    with pytest.raises(ValueError, match=r"message\.timestamp\.type"):
        LogConfig.from_properties({"message.timestamp.type": "Wrong"})


def test_an_append_larger_than_a_segment_is_refused(tmp_path):
    batch_size = len(make_batch(2))
    log = open_log(tmp_path, segment_bytes=batch_size * 2)
    with pytest.raises(RecordListTooLargeError, match=r"segment\.bytes"):
        log.append_as_leader(make_batch(2) * 3)
    assert (log.log_end_offset, log.size) == (0, 0)
    with pytest.raises(ValueError, match=r"segment\.bytes must be between"):
        LogConfig(segment_bytes=1 << 31)


def test_batches_without_timestamps_add_no_time_index_entry(tmp_path):
    log = open_log(tmp_path, index_interval_bytes=0)
    for _ in range(3):
        log.append_as_leader(make_batch(1, timestamp=-1))
    assert log.active_segment.time_index.entries == 0
    assert log.active_segment.offset_index.entries == 2


def test_a_new_log_makes_no_file_until_its_first_append_and_a_roll_makes_all_three(tmp_path):
    log = open_log(tmp_path, segment_bytes=len(make_batch(2)))
    log.close()
    assert os.listdir(log.directory) == []  # an unused partition costs no file
    log = open_log(tmp_path, segment_bytes=len(make_batch(2)))
    log.append_as_leader(make_batch(2))
    # the segment, and the epoch the first batch began (as Kafka writes it)
    assert sorted(os.listdir(log.directory)) == [
        "00000000000000000000.log",
        "leader-epoch-checkpoint",
    ]
    log.append_as_leader(make_batch(2))  # rolls: the new segment's files exist at once
    assert {"00000000000000000002.log", "00000000000000000002.index"} <= set(
        os.listdir(log.directory)
    )
    log.close()
    reopened = Log(log.directory, log.config, had_clean_shutdown=True)
    assert reopened.log_end_offset == 4 and not reopened.active_segment.needs_recovery


def test_segment_files_past_the_handle_budget_are_closed_and_reopened_when_used(tmp_path):
    clock = Clock()
    handles = FileHandleCache(capacity=2)
    logs = [
        Log(str(tmp_path / f"t-{p}"), LogConfig(), time_ms=clock, file_handles=handles)
        for p in range(3)
    ]
    for p, log in enumerate(logs):
        log.append_as_leader(make_batch(2, tag=p))
    assert len(handles) == 2 and not logs[0].active_segment.log.is_open
    opens = handles.opens
    for _ in range(50):  # the partition being produced to keeps its descriptor
        logs[2].append_as_leader(make_batch(2, tag=2))
    assert handles.opens == opens
    in_flight = logs[0].read(0, 1 << 20)  # a fetch of a closed file: reopened, as sendfile does
    assert handles.opens == opens + 1
    logs[1].read(0, 1 << 20).read()
    logs[2].read(0, 1 << 20).read()
    assert not in_flight.slices[0].file.is_open  # closed again since it was handed out
    assert values(in_flight) == [b"0:0:".ljust(100, b"x"), b"0:1:".ljust(100, b"x")]

    batch_size = len(make_batch(2))
    config = LogConfig(segment_bytes=batch_size, retention_bytes=0, file_delete_delay_ms=5_000)
    rolling = Log(str(tmp_path / "r-0"), config, time_ms=clock, file_handles=handles)
    rolling.append_as_leader(make_batch(2, tag=7))
    rolling.append_as_leader(make_batch(2, tag=8))
    rolling.update_high_watermark(rolling.log_end_offset)
    deleted = rolling.read(0, 1 << 20)
    assert rolling.delete_old_segments() == 1
    logs[1].read(0, 1 << 20).read()
    logs[2].read(0, 1 << 20).read()  # closes the deleted segment's file...
    assert not deleted.slices[0].file.is_open
    assert values(deleted)[0].startswith(b"7:0:")  # ...which reopens until the delete delay
    for log in [*logs, rolling]:
        log.close()
    assert len(handles) == 0


def test_a_pinned_file_is_not_closed_and_emfile_gives_back_half(tmp_path, monkeypatch):
    handles = FileHandleCache(capacity=1)
    files = [FileRecords(str(tmp_path / f"{i}.log"), handles, create=False) for i in range(4)]
    with files[0].pinned() as fd:
        files[1].append(b"one")
        assert files[0].is_open and os.fstat(fd).st_ino == os.stat(files[0].path).st_ino
    files[2].append(b"two")
    assert [f.is_open for f in files] == [False, False, True, False]

    handles.capacity = 3
    files[0].append(b"zero")
    files[1].append(b"one")
    real_open, failures = os.open, []

    def emfile_once(*args):
        if not failures:
            failures.append(args[0])
            raise OSError(errno.EMFILE, "Too many open files")
        return real_open(*args)

    monkeypatch.setattr(os, "open", emfile_once)
    files[3].append(b"three")  # the process is out of descriptors: close some of ours, retry
    assert failures == [files[3].path] and files[3].is_open and len(handles) <= 2
    assert [f.read(0, f.size) for f in files] == [b"zero", b"oneone", b"two", b"three"]
    for f in files:
        f.close()
