"""`kbench dump-log`, run as a user runs it."""

import io
import os
import struct
import uuid

import pytest

from engine.controller.metadata_log import MetadataLog
from engine.metadata.records import TopicRecord
from engine.records import CompressionType, RecordBatch
from engine.storage import Log, LogConfig
from engine.tools.dump_log import dump_log
from tests.conftest import make_batch


def write_log(directory: str) -> Log:
    log = Log(directory, LogConfig(segment_bytes=2_000, index_interval_bytes=200))
    for i in range(8):
        log.append_as_leader(
            make_batch(3, tag=i, timestamp=5_000 + 10 * i, compression=CompressionType.GZIP)
        )
    log.close()
    return log


def test_prints_batches_records_and_indexes(tmp_path, run_kbench):
    directory = str(tmp_path / "events-0")
    write_log(directory)
    result = run_kbench("dump-log", directory, "--records", "--index")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    batch_lines = [line for line in lines if line.startswith("baseOffset:")]
    assert len(batch_lines) == 8
    assert batch_lines[0].startswith("baseOffset: 0 lastOffset: 2 count: 3 ")
    assert "compresscodec: gzip" in batch_lines[0] and "isvalid: true" in batch_lines[0]
    assert "CreateTime: 5002 baseTimestamp: 5000" in batch_lines[0]
    records = [line for line in lines if line.startswith("| offset:")]
    assert len(records) == 24
    assert "key: k1 payload: 0:1:xxx" in records[1]
    assert any(line.startswith("offset: ") and "position: " in line for line in lines)
    assert any(line.startswith("timestamp: ") for line in lines)


def test_verify_passes_a_sound_log(tmp_path, run_kbench):
    directory = str(tmp_path / "events-0")
    write_log(directory)
    result = run_kbench("dump-log", directory, "--index", "--verify")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ERROR" not in result.stdout


def test_verify_names_the_first_corrupt_batch(tmp_path, run_kbench):
    directory = str(tmp_path / "events-0")
    write_log(directory)
    segment = os.path.join(directory, "00000000000000000000.log")
    size = len(make_batch(3, compression=CompressionType.GZIP))
    with open(segment, "r+b") as f:
        f.seek(size + 70)  # inside the second batch's records
        f.write(b"\xff\xfe")
    result = run_kbench("dump-log", segment, "--verify")
    assert result.returncode == 1
    assert f"offset 3 position {size}" in result.stderr
    assert "CRC" in result.stderr
    assert "isvalid: false" in result.stdout
    assert run_kbench("dump-log", segment).returncode == 0  # without --verify it only reports


def test_verify_reports_a_torn_tail(tmp_path, run_kbench):
    directory = str(tmp_path / "events-0")
    write_log(directory)
    segment = os.path.join(directory, "00000000000000000000.log")
    with open(segment, "r+b") as f:
        f.truncate(os.path.getsize(segment) - 5)
    result = run_kbench("dump-log", segment, "--verify")
    assert result.returncode == 1
    assert "invalid bytes at the end of the file" in result.stderr


def test_verify_cross_checks_index_entries(tmp_path, run_kbench):
    directory = str(tmp_path / "events-0")
    write_log(directory)
    index = os.path.join(directory, "00000000000000000000.index")
    with open(index, "r+b") as f:
        f.seek(4)
        f.write((7).to_bytes(4, "big"))  # the first entry's position: not a batch start
    result = run_kbench("dump-log", index, "--verify")
    assert result.returncode == 1
    assert "no batch starts at that position" in result.stderr


def test_a_wrong_path_says_what_was_expected(tmp_path, run_kbench):
    result = run_kbench("dump-log", str(tmp_path / "nope"))
    assert result.returncode == 2
    assert "expected a segment file or partition directory" in result.stderr
    stray = tmp_path / "notes.txt"
    stray.write_text("x")
    result = run_kbench("dump-log", str(stray))
    assert result.returncode == 2
    assert "<20-digit base offset>.log" in result.stderr


def test_an_unknown_option_prints_the_usage(run_kbench):
    result = run_kbench("dump-log", "--bogus", "x")
    assert result.returncode == 2
    assert "usage: kbench dump-log" in result.stderr


def write_control_log(directory: str, key: bytes, value: bytes) -> None:
    from engine.records import SimpleRecord, build_batch

    log = Log(directory, LogConfig())
    log.append_as_leader(make_batch(3))
    marker = build_batch(
        [SimpleRecord(value, key=key)],
        producer_id=7,
        producer_epoch=0,
        is_transactional=True,
        is_control=True,
    )
    log.append_as_leader(marker)
    log.close()


def test_verify_passes_a_commit_marker(tmp_path, run_kbench):
    directory = str(tmp_path / "events-0")
    write_control_log(directory, struct.pack(">hh", 0, 1), struct.pack(">hi", 0, 3))
    result = run_kbench("dump-log", directory, "--verify")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "isControl: true" in result.stdout


@pytest.mark.parametrize(
    ("key", "value", "said"),
    [
        (struct.pack(">hh", 0, 7), struct.pack(">hi", 0, 3), "control record type 7"),
        (struct.pack(">hh", 1, 1), struct.pack(">hi", 0, 3), "control record key version 1"),
        (b"ab", struct.pack(">hi", 0, 3), "control record key of 2 bytes"),
        (struct.pack(">hh", 0, 0), b"", "end transaction marker of 0 bytes"),
    ],
)
def test_verify_flags_a_control_batch_that_is_not_a_transaction_marker(
    tmp_path, run_kbench, key, value, said
):
    directory = str(tmp_path / "events-0")
    write_control_log(directory, key, value)
    result = run_kbench("dump-log", directory, "--verify")
    assert result.returncode == 1
    assert "offset 3 position" in result.stderr and said in result.stderr


def test_verify_flags_records_that_do_not_parse(tmp_path, run_kbench):
    directory = str(tmp_path / "events-0")
    log = Log(directory, LogConfig())
    garbage = bytearray(make_batch(3)[:61]) + b"not records" * 10
    garbage[8:12] = (len(garbage) - 12).to_bytes(4, "big")
    RecordBatch(memoryview(garbage)).update_crc()  # CRC-valid garbage, as brokers stored it
    log.append_as_leader(make_batch(2))  # before issue 9
    log.append_as_leader(garbage)
    log.close()
    result = run_kbench("dump-log", directory, "--verify")
    assert result.returncode == 1
    assert "offset 2 position" in result.stderr and "record headers" in result.stderr


def test_a_metadata_log_prints_its_records_decoded(tmp_path):
    metadata_log = MetadataLog(str(tmp_path), node_id=3000)
    topic_id = uuid.uuid4()
    metadata_log.append([TopicRecord(version=0, name="orders", topic_id=topic_id)])
    metadata_log.close()
    out = io.StringIO()
    directory = str(tmp_path / "__cluster_metadata-0")
    assert dump_log(directory, records=True, verify=True, out=out) == 0
    printed = out.getvalue()
    assert f"record: TopicRecord(version=0, name='orders', topic_id=UUID('{topic_id}'))" in printed
    assert "isControl: true" in printed  # the controller's LeaderChange batch, left raw
