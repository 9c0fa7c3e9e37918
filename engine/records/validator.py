"""The contents of a client's batches, checked before they are appended (Kafka's LogValidator).

A batch whose CRC is right may still hold records no consumer can read: garbage under a
recomputed CRC, a codec flag over a payload of another kind, an unknown codec, the control flag
on an ordinary batch. Kafka's broker refuses each before anything is appended, and so does this:

- batch header, as LogValidator.validateBatch for a client append: baseOffset 0, no control flag,
  a producer id only with a sequence (INVALID_RECORD); the record count against lastOffsetDelta
  is checked by the Log itself;
- codec: ids 5-7 are unknown (Kafka's CompressionType.forId throws IllegalArgumentException and
  ReplicaManager answers UNKNOWN_SERVER_ERROR); a payload the codec cannot inflate is
  "Failed to decompress record stream", a KafkaException, answered UNKNOWN_SERVER_ERROR too;
- every record, after inflating the records of a compressed batch (Kafka inflates every codec,
  zstd included): length, attributes, timestampDelta varlong, offsetDelta varint, key, value and
  headers within the length, varints of at most 5 (10 for varlongs) bytes, exactly recordCount
  records and no byte after the last (INVALID_RECORD, as DefaultRecord.readFrom);
- offsetDelta of record i is i. Kafka rewrites a compressed batch whose inner offsets are not
  consecutive and never looks at them in an uncompressed one; this broker stores batches as they
  arrive, so it refuses such a batch (INVALID_RECORD, Kafka's answer before 2.6, KAFKA-9669).

Cost: records are walked over the bytes, no object per record. A record is parsed in Python;
when the next one has the same length prefix, the rows that follow are checked all at once
(uniform_rows): a run of equal-sized records with the same layout is proved by comparing byte
columns (strided slices, C speed), so the usual batch of same-shaped records costs a few
Python-level parses and some tens of column compares instead of one parse per record. Faster
still, and what the broker uses when the C extension engine.records._walk was built at install
(it is optional: without a C compiler the install goes on and this walk is used), the same walk
in C: about 1 µs for such a batch against some tens of µs here. Both give the same verdict and
message for every input (tests/test_records.py compares them).
"""

import struct
from enum import IntEnum

from engine.errors import UNKNOWN_SERVER_ERROR, InvalidRecordError, KafkaError
from engine.records.batch import CONTROL_FLAG, RecordBatch
from engine.records.compression import decompress

try:
    from engine.records import _walk
except ImportError:  # not built: the Python walk below decides
    _walk = None  # type: ignore[assignment]

RECORD_WALK = "C" if _walk is not None else "Python"  # which walk validates, for the broker's log


class RecordStreamError(KafkaError):
    """A batch whose codec is unknown or whose payload its codec cannot inflate.

    Kafka raises IllegalArgumentException or KafkaException there, which its ReplicaManager
    maps to UNKNOWN_SERVER_ERROR; the code is Kafka's answer, not a fault of this broker.
    """

    error_code = UNKNOWN_SERVER_ERROR


class Problem(IntEnum):
    """Why a records section is refused; _walk.c returns these numbers with two values."""

    PREMATURE_EOF = 0
    TRAILING_BYTES = 1
    VARINT_TOO_LONG = 2
    VARLONG_TOO_LONG = 3
    SIZE_SHORT = 4
    SIZE_MISMATCH = 5
    OFFSET_DELTA = 6
    HEADERS_NEGATIVE = 7
    HEADERS_TOO_MANY = 8
    HEADER_KEY_NEGATIVE = 9


_MESSAGES = {  # Kafka's (DefaultRecord.readFrom, DefaultRecordBatch), but OFFSET_DELTA: ours
    Problem.PREMATURE_EOF: "Incorrect declared batch size, premature EOF reached",
    Problem.TRAILING_BYTES: "Incorrect declared batch size, records still remaining in file",
    Problem.VARINT_TOO_LONG: "Found invalid record structure: Varint is too long",
    Problem.VARLONG_TOO_LONG: "Found invalid record structure: Varlong is too long",
    Problem.SIZE_SHORT: "Invalid record size: expected {a} bytes in record payload, but instead "
    "the buffer has only {b} remaining bytes.",
    Problem.SIZE_MISMATCH: "Invalid record size: expected to read {a} bytes in record payload, "
    "but instead read {b}",
    Problem.OFFSET_DELTA: "Inner record at index {a} has offset delta {b}: offset deltas must "
    "run 0, 1, 2, ... in a batch",
    Problem.HEADERS_NEGATIVE: "Found invalid number of record headers {a}",
    Problem.HEADERS_TOO_MANY: "Found invalid number of record headers. {a} is larger than the "
    "remaining size of the buffer",
    Problem.HEADER_KEY_NEGATIVE: "Invalid negative header key size {a}",
}


def _invalid(problem: int, a: int = 0, b: int = 0) -> InvalidRecordError:
    return InvalidRecordError(_MESSAGES[Problem(problem)].format(a=a, b=b))


_MASK32 = 0xFFFFFFFF
_MASK64 = 0xFFFFFFFFFFFFFFFF
_MIN_RUN = 8  # rows worth checking column-wise; below that, parsing them is as cheap
_MAX_SHORT_RUNS = 3  # a batch whose runs keep breaking early is walked record by record


def validate_client_batches(batches: list[RecordBatch], where: object = "") -> None:
    """Raise unless every batch, and every record in it, is one a client may append.

    `where` names the partition in messages (made a string only for one). Nothing is modified.
    """
    for batch in batches:
        if batch.base_offset != 0:
            raise InvalidRecordError(
                f"The baseOffset of the record batch in the append{_in(where)} should be 0, "
                f"but it is {batch.base_offset}"
            )
        codec = batch.attributes & 0x07
        if codec > 4:
            raise RecordStreamError(f"Unknown compression type id: {codec}")
        if batch.attributes & CONTROL_FLAG:
            raise InvalidRecordError(
                f"Clients are not allowed to write control records{_in(where)}"
            )
        if batch.producer_id >= 0 and batch.base_sequence < 0:
            raise InvalidRecordError(
                f"Invalid sequence number {batch.base_sequence} in record batch with producerId "
                f"{batch.producer_id}{_in(where)}"
            )
        if codec == 0:
            data: bytes | memoryview = batch.records_view()
        else:
            try:
                data = decompress(codec, batch.records_view())
            except KafkaError as exc:
                raise RecordStreamError(f"Failed to decompress record stream: {exc}") from None
        try:
            validate_records(data, batch.record_count)
        except InvalidRecordError as exc:
            raise InvalidRecordError(f"{exc}{_in(where)}") from None


def _in(where: object) -> str:
    return f" in topic partition {where}" if where else ""


def first_batch_is_transactional(records: bytes | bytearray | memoryview | None) -> bool:
    """Whether the first batch of a partition's records has the transactional flag.

    Kafka's RequestUtils.hasTransactionalRecords looks at each partition's first batch only: a
    Produce request with such a batch and no transactional id is refused whole.
    """
    if records is None or len(records) < 23:
        return False
    return bool(records[22] & 0x10)  # low byte of attributes (bytes 21-22)


# -- the walk -------------------------------------------------------------------------------------
def _varint(data: bytes, pos: int, max_bytes: int, mask: int) -> tuple[int, int]:
    """Zigzag varint at pos of at most max_bytes, as Java's int or long; (value, next pos)."""
    raw = 0
    shift = 0
    limit = 7 * max_bytes
    while True:
        byte = data[pos]  # IndexError: the records end inside it
        pos += 1
        raw |= (byte & 0x7F) << shift
        if byte < 0x80:
            raw &= mask
            return (raw >> 1) ^ -(raw & 1), pos
        shift += 7
        if shift >= limit:
            raise _invalid(Problem.VARINT_TOO_LONG if max_bytes == 5 else Problem.VARLONG_TOO_LONG)


def _record_end(data: bytes, pos: int, end: int, offset_delta: int) -> int:
    """Parse the record at pos (DefaultRecord.readFrom); return where it ends.

    offset_delta is the delta the record must have, or -1 for any.
    """
    byte = data[pos]
    if byte < 0x80:
        length = (byte >> 1) ^ -(byte & 1)
        pos += 1
    else:
        length, pos = _varint(data, pos, 5, _MASK32)
    body = pos
    if end - pos < length:
        raise _invalid(Problem.SIZE_SHORT, length, end - pos)
    pos += 1  # attributes: unused in v2, not checked (as Kafka)
    byte = data[pos]  # timestampDelta varlong
    if byte < 0x80:
        pos += 1
    else:
        pos = _varint(data, pos, 10, _MASK64)[1]
    byte = data[pos]  # offsetDelta varint
    if byte < 0x80:
        delta = (byte >> 1) ^ -(byte & 1)
        pos += 1
    else:
        delta, pos = _varint(data, pos, 5, _MASK32)
    if delta != offset_delta and offset_delta >= 0:
        raise _invalid(Problem.OFFSET_DELTA, offset_delta, delta)
    byte = data[pos]  # key length, -1 (any negative) for null
    if byte < 0x80:
        size = (byte >> 1) ^ -(byte & 1)
        pos += 1
    else:
        size, pos = _varint(data, pos, 5, _MASK32)
    if size > 0:
        pos += size
    byte = data[pos]  # value length
    if byte < 0x80:
        size = (byte >> 1) ^ -(byte & 1)
        pos += 1
    else:
        size, pos = _varint(data, pos, 5, _MASK32)
    if size > 0:
        pos += size
    byte = data[pos]  # header count
    if byte < 0x80:
        headers = (byte >> 1) ^ -(byte & 1)
        pos += 1
    else:
        headers, pos = _varint(data, pos, 5, _MASK32)
    if headers:
        pos = _skip_headers(data, pos, end, headers)
    if pos - body != length:
        raise _invalid(Problem.SIZE_MISMATCH, length, pos - body)
    return pos


def _skip_headers(data: bytes, pos: int, end: int, count: int) -> int:
    if count < 0:
        raise _invalid(Problem.HEADERS_NEGATIVE, count)
    if count > end - pos:
        raise _invalid(Problem.HEADERS_TOO_MANY, count)
    for _ in range(count):
        size, pos = _varint(data, pos, 5, _MASK32)
        if size < 0:
            raise _invalid(Problem.HEADER_KEY_NEGATIVE, size)
        pos += size
        size, pos = _varint(data, pos, 5, _MASK32)
        if size > 0:
            pos += size
    return pos


def validate_records(
    data: bytes | bytearray | memoryview, count: int, *, offsets_in_sequence: bool = True
) -> None:
    """Walk the records section (inflated) of a batch that declares `count` records.

    Raises InvalidRecordError for a malformed record, one that runs past the end, fewer or
    more records than declared, or (offsets_in_sequence) an offsetDelta other than its index.
    A stored batch may have gaps in its deltas (Kafka's compaction leaves them): pass False.
    """
    if _walk is not None:
        problem = _walk.walk(data, count, offsets_in_sequence)
        if problem is not None:
            raise _invalid(*problem)
        return
    walk_records(bytes(data), count, offsets_in_sequence=offsets_in_sequence)


def walk_records(data: bytes, count: int, *, offsets_in_sequence: bool = True) -> None:
    """validate_records in Python: what decides when the C walk is not built, and its reference."""
    end = len(data)
    pos = 0
    index = 0
    short_runs = 0
    try:
        while index < count:
            start = pos
            pos = _record_end(data, pos, end, index if offsets_in_sequence else -1)
            index += 1
            if short_runs >= _MAX_SHORT_RUNS or count - index < _MIN_RUN:
                continue
            size = pos - start
            prefix = 1 if data[start] < 0x80 else 2  # the length varint (a longer one: no run)
            if data[pos : pos + prefix] != data[start : start + prefix]:
                continue  # the next record differs in size: no run here
            # the rows' offsetDeltas must be as wide as the template's (index - 1)
            rows = min(count - index, (end - pos) // size, _delta_width_limit(index - 1) - index)
            if rows < _MIN_RUN:
                continue
            good = uniform_rows(data, start, pos, rows, index if offsets_in_sequence else -1)
            pos += good * size
            index += good
            if good < _MIN_RUN:
                short_runs += 1
    except IndexError:
        raise _invalid(Problem.PREMATURE_EOF) from None
    if pos != end:
        raise _invalid(Problem.TRAILING_BYTES)


# -- runs of same-shaped records, checked column by column ----------------------------------------
# Records of the same size whose length fields (record, key, value, header count and header
# lengths) hold the same bytes, whose timestampDelta varlongs have the same width and whose
# offsetDeltas count up parse alike: only key, value and header bytes and the timestamp differ.

_DELTA_WIDTHS = ((64, 1), (8192, 2), (1 << 20, 3))  # offsetDelta i < limit: zigzag width


def _delta_width_limit(index: int) -> int:
    """The first offsetDelta past index whose varint is wider than index's (runs stop there)."""
    for limit, _ in _DELTA_WIDTHS:
        if index < limit:
            return limit
    return index  # no runs beyond a million records: walked one by one


_delta_columns: dict[tuple[int, int], bytes] = {}


def _delta_column(width: int, byte_index: int) -> bytes:
    """Byte byte_index of the zigzag varint of every offsetDelta of that width, in order."""
    key = (width, byte_index)
    column = _delta_columns.get(key)
    if column is None:
        low = 0 if width == 1 else _DELTA_WIDTHS[width - 2][0]
        high = _DELTA_WIDTHS[width - 1][0]
        out = bytearray()
        for delta in range(low, high):
            raw = (2 * delta) >> (7 * byte_index)
            out.append((raw & 0x7F) | (0x80 if byte_index < width - 1 else 0))
        column = _delta_columns[key] = bytes(out)
    return column


_HIGH = bytes(range(0x80, 0x100))  # deleted by translate: what remains had no continuation bit


def _layout(data: bytes, start: int) -> tuple[list[tuple[int, int]], int, int, int, int]:
    """Of the (valid) record at start: its length-field bytes [(offset, byte)], the offset and
    width of its timestampDelta varlong, and those of its offsetDelta varint."""
    fixed: list[tuple[int, int]] = []

    def length_field(pos: int) -> tuple[int, int]:
        value, after = _varint(data, pos, 5, _MASK32)
        for p in range(pos, after):
            fixed.append((p - start, data[p]))
        return value, after

    timestamp_at = length_field(start)[1] + 1  # after the attributes byte
    delta_at = _varint(data, timestamp_at, 10, _MASK64)[1]
    key_at = _varint(data, delta_at, 5, _MASK32)[1]
    size, pos = length_field(key_at)  # key
    pos += max(size, 0)
    size, pos = length_field(pos)  # value
    pos += max(size, 0)
    headers, pos = length_field(pos)
    for _ in range(headers):
        size, pos = length_field(pos)  # header key
        pos += size
        size, pos = length_field(pos)  # header value
        pos += max(size, 0)
    timestamp_width = delta_at - timestamp_at
    return fixed, timestamp_at - start, timestamp_width, delta_at - start, key_at - delta_at


def uniform_rows(data: bytes, template: int, first: int, rows: int, index: int) -> int:
    """How many of the `rows` records laid every `size` bytes from `first` (size: the record
    at `template`, just parsed) parse as it does, their offsetDeltas being index, index+1, ...
    (index -1: any offsetDeltas of the template's width).

    Each condition is a column of bytes, one per row (a strided slice), checked whole; when
    one fails, the longest good prefix of rows is found by halving.
    """
    size = first - template
    fixed, timestamp_at, timestamp_width, delta_at, delta_width = _layout(data, template)
    deltas: list[bytes] = []
    if index >= 0:  # the rows' deltas as wide as the template's (see validate_records)
        if delta_width > 3 or _delta_width_limit(index - 1) != _DELTA_WIDTHS[delta_width - 1][0]:
            return 0  # the template's delta is not in its shortest form: no run
        low = 0 if delta_width == 1 else _DELTA_WIDTHS[delta_width - 2][0]
        deltas = [_delta_column(delta_width, i)[index - low :] for i in range(delta_width)]
    varints = [(timestamp_at, timestamp_width)]
    if index < 0:
        varints.append((delta_at, delta_width))

    def good(rows: int) -> bool:
        stop = first + rows * size
        for offset, byte in fixed:
            if data[first + offset : stop : size].count(byte) != rows:
                return False
        for at, width in varints:  # of the template's width: continuation bits, then none
            last = first + at + width - 1
            for byte_at in range(first + at, last):
                if data[byte_at:stop:size].translate(None, _HIGH):
                    return False
            if not data[last:stop:size].isascii():
                return False
        for i, expected in enumerate(deltas):
            if data[first + delta_at + i : stop : size] != expected[:rows]:
                return False
        return True

    if good(rows):
        return rows
    low_rows, high_rows = 0, rows  # good(low_rows), not good(high_rows)
    while high_rows - low_rows > 1:
        middle = (low_rows + high_rows) // 2
        if good(middle):
            low_rows = middle
        else:
            high_rows = middle
    return low_rows


# -- control records (transaction markers) --------------------------------------------------------
CONTROL_TYPE_ABORT = 0
CONTROL_TYPE_COMMIT = 1
_CONTROL_KEY = struct.Struct(">hh")  # version (0), type: Kafka's ControlRecordType key
_END_TXN_MARKER = struct.Struct(">hi")  # version (0), coordinatorEpoch: EndTransactionMarker


def control_record_problem(key: bytes | None, value: bytes | None) -> str | None:
    """Why a control batch's record is not a transaction marker, or None if it is one.

    Key: version 0 and type ABORT (0) or COMMIT (1), as ControlRecordType; value: an
    EndTransactionMarker (version, coordinatorEpoch), whose version may not be negative.
    """
    if key is None or len(key) < _CONTROL_KEY.size:
        size = -1 if key is None else len(key)
        return f"control record key of {size} bytes: it holds version and type, 4 bytes"
    version, control_type = _CONTROL_KEY.unpack_from(key)
    if version != 0:
        return f"control record key version {version}, not 0"
    if control_type not in (CONTROL_TYPE_ABORT, CONTROL_TYPE_COMMIT):
        return f"control record type {control_type}: neither ABORT (0) nor COMMIT (1)"
    if value is None or len(value) < _END_TXN_MARKER.size:
        size = -1 if value is None else len(value)
        return f"end transaction marker of {size} bytes: it holds version and epoch, 6 bytes"
    marker_version, _ = _END_TXN_MARKER.unpack_from(value)
    if marker_version < 0:
        return f"end transaction marker version {marker_version}"
    return None
