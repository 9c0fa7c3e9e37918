"""`kbench dump-log`: print the batches and indexes of segments, like Kafka's kafka-dump-log.

Reads files read-only and never repairs them: it is the tool for looking at a damaged log before
recovery touches it. With verify, the first problem found makes the exit status non-zero. In a
controller's metadata log (`__cluster_metadata-0`) records are printed decoded, as Kafka's tool
prints them with --cluster-metadata-decoder.
"""

import os
import struct
import sys
from dataclasses import dataclass, field
from typing import TextIO

from engine.errors import InvalidRecordError, KafkaError
from engine.metadata.records import MetadataRecordError, decode_record
from engine.records.batch import RecordBatch
from engine.records.compression import CompressionType, decompress
from engine.records.record import decode_records
from engine.records.validator import control_record_problem, validate_records
from engine.storage.file_records import read_batches
from engine.storage.log_segment import (
    INDEX_SUFFIX,
    LOG_SUFFIX,
    TIME_INDEX_SUFFIX,
    validate_stored_batch,
)

_OFFSET_ENTRY = struct.Struct(">ii")
_TIME_ENTRY = struct.Struct(">qi")
_SUFFIXES = (LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX)
METADATA_DIRECTORY = "__cluster_metadata-0"


@dataclass
class _Segment:
    """What the dump learned of one .log file, for cross-checking its indexes."""

    base_offset: int
    size: int = 0
    last_offsets: dict[int, int] = field(default_factory=dict)  # file position -> last offset
    max_timestamps: dict[int, int] = field(default_factory=dict)  # last offset -> max timestamp


class DumpLog:
    def __init__(
        self, out: TextIO, *, records: bool, index: bool, verify: bool, metadata: bool = False
    ) -> None:
        self.out = out
        self.metadata = metadata  # records are KRaft metadata records
        self.records = records
        self.index = index
        self.verify = verify
        self.first_problem: str | None = None

    def problem(self, message: str) -> None:
        print(f"ERROR: {message}", file=self.out)
        if self.first_problem is None:
            self.first_problem = message

    # -- .log -----------------------------------------------------------------------------------
    def dump_segment(self, path: str) -> _Segment:
        base_offset = int(os.path.basename(path).split(".")[0])
        segment = _Segment(base_offset)
        print(f"Dumping {path}", file=self.out)
        print(f"Log starting offset: {base_offset}", file=self.out)
        fd = os.open(path, os.O_RDONLY)
        try:
            segment.size = os.fstat(fd).st_size
            expected = base_offset
            valid_bytes = 0
            try:
                for position, batch in read_batches(fd, segment.size):
                    self._print_batch(batch, position)
                    try:
                        validate_stored_batch(batch, position, expected)
                        if self.verify:
                            _verify_records(batch, raft=self.metadata)
                    except KafkaError as exc:
                        self.problem(
                            f"{path}: offset {batch.base_offset} position {position}: {exc}"
                        )
                    segment.last_offsets[position] = batch.last_offset
                    segment.max_timestamps[batch.last_offset] = batch.max_timestamp
                    expected = batch.next_offset
                    valid_bytes = position + batch.size_in_bytes
            except KafkaError as exc:
                self.problem(
                    f"{path}: offset {expected} position {valid_bytes}: "
                    f"{segment.size - valid_bytes} invalid bytes at the end of the file ({exc})"
                )
        finally:
            os.close(fd)
        return segment

    def _print_batch(self, batch: RecordBatch, position: int) -> None:
        timestamp_type = "LogAppendTime" if batch.timestamp_type else "CreateTime"
        try:
            codec = CompressionType(batch.compression).name.lower()
        except ValueError:
            codec = f"unknown({batch.compression})"
        print(
            f"baseOffset: {batch.base_offset} lastOffset: {batch.last_offset} "
            f"count: {batch.record_count} baseSequence: {batch.base_sequence} "
            f"lastSequence: {batch.last_sequence} producerId: {batch.producer_id} "
            f"producerEpoch: {batch.producer_epoch} "
            f"partitionLeaderEpoch: {batch.partition_leader_epoch} "
            f"isTransactional: {str(batch.is_transactional).lower()} "
            f"isControl: {str(batch.is_control).lower()} position: {position} "
            f"{timestamp_type}: {batch.max_timestamp} baseTimestamp: {batch.base_timestamp} "
            f"size: {batch.size_in_bytes} magic: {batch.magic} compresscodec: {codec} "
            f"crc: {batch.crc} isvalid: {str(batch.is_valid()).lower()}",
            file=self.out,
        )
        if not self.records:
            return
        try:
            for record in decode_records(batch):
                sequence = (
                    -1
                    if batch.base_sequence < 0
                    else batch.base_sequence + record.offset - batch.base_offset
                )
                key_size = -1 if record.key is None else len(record.key)
                value_size = -1 if record.value is None else len(record.value)
                if self.metadata and not batch.is_control and record.value is not None:
                    try:
                        decoded = repr(decode_record(record.value))
                    except MetadataRecordError as exc:
                        self.problem(f"metadata record at offset {record.offset}: {exc}")
                        decoded = _show(record.value)
                    print(f"| offset: {record.offset} record: {decoded}", file=self.out)
                    continue
                print(
                    f"| offset: {record.offset} {timestamp_type}: {record.timestamp} "
                    f"keySize: {key_size} valueSize: {value_size} sequence: {sequence} "
                    f"headerKeys: [{','.join(k for k, _ in record.headers)}] "
                    f"key: {_show(record.key)} payload: {_show(record.value)}",
                    file=self.out,
                )
        except KafkaError as exc:
            self.problem(f"records of batch {batch.base_offset} at position {position}: {exc}")

    # -- indexes --------------------------------------------------------------------------------
    def dump_offset_index(self, path: str, segment: _Segment | None) -> None:
        print(f"Dumping {path}", file=self.out)
        data = _read_index(path, _OFFSET_ENTRY.size, self)
        base_offset = int(os.path.basename(path).split(".")[0])
        previous = (-1, -1)
        for relative, position in _OFFSET_ENTRY.iter_unpack(data):
            offset = base_offset + relative
            print(f"offset: {offset} position: {position}", file=self.out)
            if offset <= previous[0] or position <= previous[1]:
                self.problem(f"{path}: entry ({offset}, {position}) does not follow {previous}")
            previous = (offset, position)
            if segment is None:
                continue
            last_offset = segment.last_offsets.get(position)
            if last_offset is None:
                self.problem(
                    f"{path}: offset {offset} position {position}: no batch starts at that position"
                )
            elif last_offset != offset:
                self.problem(
                    f"{path}: offset {offset} position {position}: index offset {offset}, "
                    f"log offset {last_offset} mismatch"
                )

    def dump_time_index(self, path: str, segment: _Segment | None) -> None:
        print(f"Dumping {path}", file=self.out)
        data = _read_index(path, _TIME_ENTRY.size, self)
        base_offset = int(os.path.basename(path).split(".")[0])
        previous_timestamp = None
        for timestamp, relative in _TIME_ENTRY.iter_unpack(data):
            offset = base_offset + relative
            print(f"timestamp: {timestamp} offset: {offset}", file=self.out)
            if previous_timestamp is not None and timestamp <= previous_timestamp:
                self.problem(f"{path}: timestamp {timestamp} does not follow {previous_timestamp}")
            previous_timestamp = timestamp
            if segment is None:
                continue
            max_timestamp = segment.max_timestamps.get(offset)
            if max_timestamp is None:
                self.problem(f"{path}: offset {offset}: no batch ends at that offset")
            elif max_timestamp != timestamp:
                self.problem(
                    f"{path}: offset {offset}: index timestamp {timestamp}, "
                    f"log max timestamp {max_timestamp} mismatch"
                )


def _verify_records(batch: RecordBatch, raft: bool = False) -> None:
    """Raise unless every record of the batch parses (inflated first) and, in a control batch,
    its one record is a transaction marker (ControlRecordType, EndTransactionMarker), or in a
    metadata log (raft) one of Raft's control records: LEADER_CHANGE, SNAPSHOT_HEADER,
    SNAPSHOT_FOOTER, KRAFT_VERSION, KRAFT_VOTERS (types 2-6).

    Offset deltas may have gaps in a stored batch (compaction), so they are not checked.
    """
    data = decompress(batch.compression, batch.records_view())
    validate_records(data, batch.record_count, offsets_in_sequence=False)
    if not batch.is_control:
        return
    if batch.record_count != 1:
        raise InvalidRecordError(f"control batch of {batch.record_count} records, not 1")
    for record in decode_records(batch):
        if raft:
            key = record.key or b""
            if len(key) != 4 or struct.unpack(">hh", key) not in {(0, t) for t in range(2, 7)}:
                raise InvalidRecordError(f"control record key {key.hex()}: not a Raft control")
            continue
        problem = control_record_problem(record.key, record.value)
        if problem is not None:
            raise InvalidRecordError(f"control batch: {problem}")


def _read_index(path: str, entry_size: int, dump: DumpLog) -> bytes:
    with open(path, "rb") as f:
        data = f.read()
    if len(data) % entry_size:
        dump.problem(f"{path}: size {len(data)} is not a multiple of {entry_size} bytes")
        data = data[: len(data) - len(data) % entry_size]
    return data


def _show(value: bytes | None) -> str:
    if value is None:
        return "null"
    try:
        return value.decode()
    except UnicodeDecodeError:
        return value.hex()


def segment_files(path: str) -> list[str]:
    """The segment files a dump covers: the file itself, or a directory's files in order."""
    if not os.path.exists(path):
        raise ValueError(
            f"{path}: no such file or directory; expected a segment file or partition directory"
        )
    if os.path.isdir(path):
        names = [n for n in os.listdir(path) if n.endswith(_SUFFIXES) and n.split(".")[0].isdigit()]
        order = {suffix: i for i, suffix in enumerate(_SUFFIXES)}
        names.sort(key=lambda n: (int(n.split(".")[0]), order["." + n.split(".", 1)[1]]))
        return [os.path.join(path, n) for n in names]
    if os.path.isfile(path) and path.endswith(_SUFFIXES) and os.path.basename(path)[:20].isdigit():
        return [path]
    raise ValueError(
        f"{path}: expected a segment file (<20-digit base offset>.log, .index or .timeindex) "
        "or a partition directory holding them"
    )


def dump_log(
    path: str,
    *,
    records: bool = False,
    index: bool = False,
    verify: bool = False,
    out: TextIO = sys.stdout,
) -> int:
    """Dump path; returns the exit status: 1 if verify found a problem, else 0."""
    files = segment_files(path)
    metadata = bool(files) and os.path.basename(os.path.dirname(os.path.abspath(files[0]))) == (
        METADATA_DIRECTORY
    )
    dump = DumpLog(out, records=records, index=index, verify=verify, metadata=metadata)
    explicit_index = len(files) == 1 and not files[0].endswith(LOG_SUFFIX)
    segments: dict[int, _Segment] = {}
    for file in files:
        base_offset = int(os.path.basename(file).split(".")[0])
        if file.endswith(LOG_SUFFIX):
            segments[base_offset] = dump.dump_segment(file)
            continue
        if not (index or explicit_index):
            continue
        segment = segments.get(base_offset)
        if segment is None:  # an index named on its own: read its log to cross-check it
            log_path = file[: file.rindex(".")] + LOG_SUFFIX
            if os.path.exists(log_path):
                with open(os.devnull, "w") as devnull:
                    quiet = DumpLog(devnull, records=False, index=False, verify=False)
                    segment = quiet.dump_segment(log_path)
        if file.endswith(TIME_INDEX_SUFFIX):
            dump.dump_time_index(file, segment)
        else:
            dump.dump_offset_index(file, segment)
    if verify and dump.first_problem is not None:
        print(f"verify failed: {dump.first_problem}", file=sys.stderr)
        return 1
    return 0
