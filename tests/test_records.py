"""Record batch v2 over bytes: framing, CRC, in-place patching, records, codecs, interop."""

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder
from kafka.record.legacy_records import LegacyRecordBatchBuilder

from engine.errors import CorruptRecordError, UnsupportedForMessageFormatError
from engine.records import (
    HEADER_SIZE,
    CompressionType,
    RecordBatch,
    SimpleRecord,
    TimestampType,
    build_batch,
    compress,
    decode_records,
    decompress,
    iter_batches,
    validator,
)
from engine.records.record import read_varint, write_varint
from tests.conftest import make_batch


def test_header_fields_are_read_in_place():
    data = build_batch(
        [SimpleRecord(b"a", timestamp=10), SimpleRecord(b"bb", timestamp=30)],
        base_offset=7,
        producer_id=42,
        producer_epoch=3,
        base_sequence=100,
        partition_leader_epoch=5,
    )
    [batch] = iter_batches(data)
    assert (batch.base_offset, batch.last_offset, batch.next_offset) == (7, 8, 9)
    assert batch.record_count == 2
    assert batch.size_in_bytes == len(data)
    assert (batch.base_timestamp, batch.max_timestamp) == (10, 30)
    assert (batch.producer_id, batch.producer_epoch) == (42, 3)
    assert (batch.base_sequence, batch.last_sequence) == (100, 101)
    assert batch.partition_leader_epoch == 5
    assert batch.view().obj is data  # a view, not a copy
    assert batch.is_valid()


def test_several_batches_iterate_in_order():
    data = make_batch(3, tag=0) + make_batch(4, tag=1) + make_batch(1, tag=2)
    batches = list(iter_batches(data))
    assert [b.record_count for b in batches] == [3, 4, 1]
    assert [b.position for b in batches] == [0, batches[1].position, batches[2].position]
    assert batches[2].position + batches[2].size_in_bytes == len(data)


def test_offset_patch_keeps_the_crc_valid():
    data = make_batch(3)
    crc_before = bytes(data[17:21])
    [batch] = iter_batches(data)
    batch.set_offsets(1_000_000, 9)
    [again] = iter_batches(data)
    assert (again.base_offset, again.partition_leader_epoch) == (1_000_000, 9)
    assert bytes(data[17:21]) == crc_before
    assert again.is_valid()
    assert [r.offset for r in decode_records(again)] == [1_000_000, 1_000_001, 1_000_002]


def test_log_append_time_rewrites_max_timestamp_and_crc():
    data = make_batch(3, timestamp=500)
    [batch] = iter_batches(data)
    batch.set_log_append_time(99_999)
    [again] = iter_batches(data)
    assert again.timestamp_type == TimestampType.LOG_APPEND_TIME
    assert again.max_timestamp == 99_999
    assert again.is_valid()
    assert {r.timestamp for r in decode_records(again)} == {99_999}


@pytest.mark.parametrize("position", [0, 17, 21, 30, 61, -1])
def test_a_flipped_byte_inside_the_crc_range_is_caught(position):
    data = make_batch(3)
    data[position] ^= 0xFF
    [batch] = iter_batches(data)
    if position == 0:  # baseOffset lies outside the CRC, as in Kafka
        assert batch.is_valid()
    else:
        assert not batch.is_valid()
        with pytest.raises(CorruptRecordError, match="CRC"):
            batch.ensure_valid()


@pytest.mark.parametrize("cut", [1, 11, 12, 40, 60, 61, 100])
def test_a_truncated_buffer_is_corrupt(cut):
    data = make_batch(3)
    with pytest.raises(CorruptRecordError, match="truncated"):
        list(iter_batches(data[: len(data) - cut] if cut < len(data) else data[:1]))


def test_a_length_below_the_header_size_is_corrupt():
    data = make_batch(1)
    struct.pack_into(">i", data, 8, 20)
    with pytest.raises(CorruptRecordError, match="minimum"):
        list(iter_batches(data))


@pytest.mark.parametrize("magic", [0, 1])
def test_magic_0_and_1_message_sets_are_refused(magic):
    builder = LegacyRecordBatchBuilder(magic=magic, compression_type=0, batch_size=1 << 20)
    builder.append(0, timestamp=1 if magic else None, key=b"k", value=b"v")
    with pytest.raises(UnsupportedForMessageFormatError, match=f"magic {magic}"):
        list(iter_batches(bytes(builder.build())))


@pytest.mark.parametrize("codec", list(CompressionType))
def test_batches_built_here_parse_in_kafka_python(codec):
    records = [
        SimpleRecord(
            value=b"value-%d" % i * 20,
            key=None if i % 3 == 0 else b"key-%d" % i,
            headers=(("trace", b"t%d" % i), ("empty", None)),
            timestamp=1_700_000_000_000 + i,
        )
        for i in range(50)
    ]
    data = build_batch(
        records,
        compression=codec,
        base_offset=100,
        producer_id=9,
        producer_epoch=1,
        base_sequence=40,
    )
    theirs = DefaultRecordBatch(bytes(data))
    assert theirs.validate_crc()
    assert theirs.compression_type == codec
    assert (theirs.producer_id, theirs.producer_epoch, theirs.base_sequence) == (9, 1, 40)
    decoded = list(theirs)
    assert [r.offset for r in decoded] == list(range(100, 150))
    assert [r.value for r in decoded] == [r.value for r in records]
    assert [r.key for r in decoded] == [r.key for r in records]
    assert [r.timestamp for r in decoded] == [r.timestamp for r in records]
    assert [list(map(tuple, r.headers)) for r in decoded] == [list(r.headers) for r in records]


@pytest.mark.parametrize("codec", list(CompressionType))
def test_batches_built_by_kafka_python_parse_here(codec):
    builder = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=int(codec),
        is_transactional=False,
        producer_id=77,
        producer_epoch=2,
        base_sequence=5,
        batch_size=1 << 20,
    )
    expected = []
    for i in range(40):
        key = None if i % 4 == 0 else b"k%d" % i
        value = None if i == 7 else b"payload %d " % i * 30
        headers = [("h", b"%d" % i)] if i % 2 else []
        builder.append(i, timestamp=2_000 + 3 * i, key=key, value=value, headers=headers)
        expected.append((i, 2_000 + 3 * i, key, value, tuple(headers)))
    data = builder.build()
    [batch] = iter_batches(data)
    batch.ensure_valid()
    assert batch.compression == codec
    assert (batch.producer_id, batch.producer_epoch, batch.base_sequence) == (77, 2, 5)
    assert batch.record_count == 40
    got = [(r.offset, r.timestamp, r.key, r.value, r.headers) for r in decode_records(batch)]
    assert got == expected


def test_decoding_a_batch_with_a_lying_record_count_fails():
    data = make_batch(3)
    struct.pack_into(">i", data, 57, 4)  # recordCount
    [batch] = iter_batches(data)
    batch.update_crc()
    with pytest.raises(CorruptRecordError):
        list(decode_records(batch))


def test_undecompressable_records_are_corrupt():
    data = make_batch(3, compression=CompressionType.ZSTD)
    data[HEADER_SIZE + 5 : HEADER_SIZE + 15] = b"\x00" * 10
    [batch] = iter_batches(data)
    with pytest.raises(CorruptRecordError, match="zstd"):
        list(decode_records(batch))


def test_the_header_is_61_bytes_and_views_do_not_copy():
    data = make_batch(2)
    view = memoryview(data)
    batch = RecordBatch(view, 0)
    assert HEADER_SIZE == 61
    assert batch.records_view().obj is data


@given(st.integers(min_value=-(1 << 63), max_value=(1 << 63) - 1))
def test_varints_round_trip(value):
    out = bytearray()
    write_varint(value, out)
    assert read_varint(bytes(out), 0) == (value, len(out))


def test_a_header_key_that_is_not_utf8_is_replaced_as_java_does():
    data = build_batch([SimpleRecord(b"v", headers=(("k", b"x"),))])
    key_at = bytes(data).index(b"kx") if b"kx" in bytes(data) else bytes(data).rindex(b"k")
    data[key_at] = 0xFF
    [batch] = iter_batches(data)
    batch.update_crc()
    [record] = decode_records(batch)
    assert record.headers == (("\ufffd", b"x"),)


@pytest.mark.parametrize("codec", [CompressionType.SNAPPY, CompressionType.ZSTD])
def test_concatenated_streams_decode_and_truncated_ones_fail(codec):
    payload = b"kafka " * 5000
    once = compress(codec, payload)
    assert decompress(codec, once + once) == payload * 2
    with pytest.raises(CorruptRecordError):
        decompress(codec, once[:-3])


# -- validating a client's records (engine.records.validator) ------------------------------------
def _walk_one_by_one(data: bytes, count: int) -> None:
    """The reference: every record parsed on its own, no runs."""
    from engine.errors import InvalidRecordError
    from engine.records.validator import _record_end

    pos = 0
    try:
        for index in range(count):
            pos = _record_end(data, pos, len(data), index)
    except IndexError:
        raise InvalidRecordError("premature EOF") from None
    if pos != len(data):
        raise InvalidRecordError("records still remaining")


def _verdict(check, data: bytes, count: int) -> bool:
    from engine.errors import InvalidRecordError

    try:
        check(data, count)
    except InvalidRecordError:
        return False
    return True


_value_sizes = st.sampled_from([0, 1, 63, 64, 100, 200])
_records = st.lists(
    st.tuples(
        _value_sizes,
        st.sampled_from([None, b"k", b"key-0123"]),
        st.sampled_from([0, 1, 70, 9_000]),  # timestamp deltas of 1, 1, 2 and 3 bytes
        st.sampled_from([(), (("h", b"v"),)]),
    ),
    min_size=1,
    max_size=150,
)


@given(
    _records,
    st.integers(min_value=1, max_value=40),
    st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255)), max_size=3),
)
def test_runs_of_same_shaped_records_decide_as_a_walk_record_by_record(spec, repeat, flips):
    """Batches of repeated shapes take the column-wise path; with bytes flipped anywhere, it
    must accept and refuse exactly what parsing every record accepts and refuses."""
    from engine.records.validator import walk_records

    data, count = _flipped_batch(spec, repeat, flips)
    for n in (count - 1, count, count + 1):
        if n > 0:
            assert _verdict(walk_records, data, n) == _verdict(_walk_one_by_one, data, n)


def _flipped_batch(spec, repeat: int, flips) -> tuple[bytes, int]:
    """The records section of a batch of spec's records repeated, with bytes overwritten."""
    records = [
        SimpleRecord(bytes(size), key=key, headers=headers, timestamp=1_000 + delta)
        for size, key, delta, headers in spec
    ] * repeat
    records = records[:5_000]
    data = bytearray(build_batch(records, timestamp=1_000)[HEADER_SIZE:])
    for position, value in flips:
        data[position % len(data)] = value
    return bytes(data), len(records)


def _problem(check, data: bytes, count: int, in_sequence: bool) -> str | None:
    from engine.errors import InvalidRecordError

    try:
        check(data, count, offsets_in_sequence=in_sequence)
    except InvalidRecordError as exc:
        return str(exc)
    return None


_c_walk = pytest.mark.skipif(
    validator.RECORD_WALK != "C",
    reason="the C extension engine.records._walk was not built (no C compiler at install)",
)


@_c_walk
@given(
    _records,
    st.integers(min_value=1, max_value=40),
    st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255)), max_size=4),
    st.booleans(),
)
def test_the_c_walk_refuses_what_the_python_walk_refuses_with_its_message(
    spec, repeat, flips, in_sequence
):
    data, count = _flipped_batch(spec, repeat, flips)
    for n in (0, count - 1, count, count + 1):
        assert _problem(validator.validate_records, data, n, in_sequence) == _problem(
            validator.walk_records, data, n, in_sequence
        )


@_c_walk
@given(st.binary(max_size=300), st.integers(-2, 40), st.booleans())
def test_the_c_walk_agrees_with_the_python_walk_on_arbitrary_bytes(data, count, in_sequence):
    assert _problem(validator.validate_records, data, count, in_sequence) == _problem(
        validator.walk_records, data, count, in_sequence
    )


@_c_walk
@pytest.mark.parametrize(
    "data, count, problem",
    [
        (b"", 1, "Incorrect declared batch size, premature EOF reached"),
        (b"\x0c\x00\x00\x00\x01\x01\x00\x00", 1, "records still remaining in file"),
        (b"\xff\xff\xff\xff\xff\x01", 1, "Varint is too long"),
        (b"\x14\x00" + b"\xff" * 10, 1, "Varlong is too long"),
        (b"\x14\x00", 1, "expected 10 bytes in record payload, but instead the buffer has only 1"),
        (b"\x0c\x00\x00\x02\x01\x01\x00", 1, "Inner record at index 0 has offset delta 1"),
        (b"\x0c\x00\x00\x00\x01\x01\x01", 1, "Found invalid number of record headers -1"),
        (b"\x0c\x00\x00\x00\x01\x01\x02", 1, "1 is larger than the remaining size"),
        (b"\x0e\x00\x00\x00\x01\x01\x02\x01", 1, "Invalid negative header key size -1"),
        (b"\x0e\x00\x00\x00\x01\x01\x00\x00", 1, "expected to read 7 bytes in record payload, but"),
    ],
)
def test_each_problem_the_c_walk_reports(data, count, problem):
    message = _problem(validator.validate_records, data, count, True)
    assert message is not None and problem in message
    assert message == _problem(validator.walk_records, data, count, True)


def test_records_kafka_python_builds_validate():
    from engine.records.validator import validate_records

    builder = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=0,
        is_transactional=False,
        producer_id=-1,
        producer_epoch=-1,
        base_sequence=-1,
        batch_size=1 << 20,
    )
    for i in range(300):
        builder.append(i, timestamp=1_000 + i // 7, key=None, value=b"v" * (i % 3 + 90), headers=[])
    data = bytes(builder.build())
    validate_records(data[HEADER_SIZE:], 300)


def test_a_control_record_is_checked_as_kafka_reads_it():
    from engine.records.validator import control_record_problem

    assert control_record_problem(struct.pack(">hh", 0, 1), struct.pack(">hi", 0, 5)) is None
    assert control_record_problem(struct.pack(">hh", 0, 0), struct.pack(">hi", 0, 5)) is None
    assert "type 7" in control_record_problem(struct.pack(">hh", 0, 7), struct.pack(">hi", 0, 5))
    assert "version 3" in control_record_problem(struct.pack(">hh", 3, 1), b"\0" * 6)
    assert "key of -1 bytes" in control_record_problem(None, b"\0" * 6)
    assert "marker of 2 bytes" in control_record_problem(struct.pack(">hh", 0, 1), b"\0\0")
    assert "version -1" in control_record_problem(struct.pack(">hh", 0, 1), b"\xff\xff\0\0\0\0")
