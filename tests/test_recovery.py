"""Crash behaviour: torn and corrupt tails, lost indexes, checkpoints, shutdown, write errors."""

import errno
import io
import json
import logging
import os
import pathlib
import resource
import shutil
import signal
import struct
import subprocess
import sys
import textwrap

import pytest

from engine.broker.config import KafkaConfig
from engine.common import TopicPartition
from engine.errors import KAFKA_STORAGE_ERROR, NONE
from engine.records import CompressionType, decode_records, iter_batches
from engine.server.broker import run_broker
from engine.server.socket_server import SocketServer
from engine.storage import Log, LogConfig, LogManager
from engine.storage.log_manager import CLEAN_SHUTDOWN_FILE, RECOVERY_POINT_CHECKPOINT
from engine.tools.dump_log import dump_log
from tests.conftest import broker_process, make_batch
from tests.test_many_partitions import Client, LimitedBroker, log_since

BATCH = len(make_batch(3))
CONFIG = LogConfig(segment_bytes=BATCH * 4, index_interval_bytes=BATCH)


def build_log(directory: str, batches: int = 10, compression=CompressionType.NONE) -> Log:
    log = Log(directory, CONFIG)
    for i in range(batches):
        log.append_as_leader(make_batch(3, tag=i, compression=compression, timestamp=1000 + i))
    return log


def assert_consistent(log: Log, expected_end: int) -> None:
    """The log ends at expected_end, every offset reads back, and the indexes agree with it."""
    assert log.log_end_offset == expected_end
    assert log.active_segment.next_offset == expected_end
    offsets = [
        r.offset for b in iter_batches(log.read(0, 1 << 30).read()) for r in decode_records(b)
    ]
    assert offsets == list(range(expected_end))
    for segment in log.segments:
        for i in range(segment.offset_index.entries):
            offset, position = segment.offset_index.entry(i)
            header = segment.translate_offset(offset)
            assert (header.position, header.last_offset) == (position, offset)
    log.close()
    report = io.StringIO()
    assert dump_log(log.directory, index=True, verify=True, out=report) == 0, report.getvalue()


def snapshot(directory: str) -> dict[str, bytes]:
    return {n: pathlib.Path(directory, n).read_bytes() for n in os.listdir(directory)}


def restore(directory: str, files: dict[str, bytes]) -> None:
    shutil.rmtree(directory)
    os.makedirs(directory)
    for name, data in files.items():
        with open(os.path.join(directory, name), "wb") as f:
            f.write(data)


@pytest.mark.parametrize("compression", [CompressionType.NONE, CompressionType.LZ4])
def test_a_tail_cut_at_every_byte_of_the_last_batch_is_truncated(tmp_path, compression):
    directory = str(tmp_path / "t-0")
    log = build_log(directory, compression=compression)
    last_batch_start = max(h.position for h in log.active_segment.batches())
    log.close()  # indexes on disk include the last batch: recovery must drop that entry too
    files = snapshot(directory)
    active = max(n for n in files if n.endswith(".log"))
    for cut in range(last_batch_start, len(files[active])):
        restore(directory, files)
        with open(os.path.join(directory, active), "r+b") as f:
            f.truncate(cut)
        recovered = Log(directory, CONFIG, recovery_point=0)
        assert recovered.recovered_bytes_truncated == cut - last_batch_start
        assert_consistent(recovered, expected_end=27)


def test_a_flipped_byte_anywhere_in_the_last_batch_is_truncated(tmp_path):
    directory = str(tmp_path / "t-0")
    build_log(directory).close()
    files = snapshot(directory)
    active = max(n for n in files if n.endswith(".log"))
    start = len(files[active]) - BATCH
    for position in range(start, len(files[active])):
        restore(directory, files)
        with open(os.path.join(directory, active), "r+b") as f:
            f.seek(position)
            byte = f.read(1)[0]
            f.seek(position)
            f.write(bytes([byte ^ 0xFF]))
        recovered = Log(directory, CONFIG, recovery_point=0)
        # partitionLeaderEpoch (bytes 12-15) is outside the CRC, in Kafka's format too:
        # a flip there cannot be detected and the batch stays.
        kept = 12 <= position - start < 16
        assert_consistent(recovered, expected_end=30 if kept else 27)


def test_recovery_starts_at_the_recovery_point_and_drops_later_segments(tmp_path):
    directory = str(tmp_path / "t-0")
    log = build_log(directory)
    assert [s.base_offset for s in log.segments] == [0, 12, 24]
    log.close()
    middle = os.path.join(directory, "00000000000000000012.log")
    with open(middle, "r+b") as f:
        f.seek(BATCH + 30)
        f.write(b"\xde\xad")
    recovered = Log(directory, CONFIG, recovery_point=12)
    assert [s.base_offset for s in recovered.segments] == [0, 12]
    assert_consistent(recovered, expected_end=15)


def test_missing_and_corrupt_indexes_are_rebuilt(tmp_path):
    directory = str(tmp_path / "t-0")
    build_log(directory).close()
    os.unlink(os.path.join(directory, "00000000000000000000.index"))
    with open(os.path.join(directory, "00000000000000000012.index"), "ab") as f:
        f.write(b"\x00\x00\x00")  # not a whole entry
    with open(os.path.join(directory, "00000000000000000024.timeindex"), "wb") as f:
        f.write(struct.pack(">qi", 5_000, 1) + struct.pack(">qi", 4_000, 2))  # goes backwards
    # even when the shutdown was clean, a broken index is rebuilt
    log = Log(directory, CONFIG, recovery_point=30, had_clean_shutdown=True)
    # one entry per full segment (the third batch: more than one batch's bytes since the last)
    assert [s.offset_index.entries for s in log.segments] == [1, 1, 0]
    assert [s.offset_index.entry(0) for s in log.segments[:2]] == [(8, 2 * BATCH), (20, 2 * BATCH)]
    rebuilt = log.segments[2]
    assert (rebuilt.time_index.entries, rebuilt.max_timestamp) == (0, 1011)
    assert_consistent(log, expected_end=30)


def test_lost_index_entries_after_a_crash_are_rebuilt(tmp_path):
    directory = str(tmp_path / "t-0")
    log = build_log(directory, batches=11)
    assert log.active_segment.offset_index.entries == 1
    log.close_handlers()  # a crash: pending index entries never reach the files
    assert os.path.getsize(os.path.join(directory, "00000000000000000024.index")) == 0
    recovered = Log(directory, CONFIG, recovery_point=log.recovery_point)
    assert recovered.active_segment.offset_index.entry(0) == (32, 2 * BATCH)
    assert_consistent(recovered, expected_end=33)


def test_a_segment_in_kafkas_own_layout_loads(tmp_path):
    """Kafka preallocates the active .index and .timeindex, so after a crash they end in zeros."""
    directory = str(tmp_path / "t-0")
    log = build_log(directory, batches=3)
    log.close()
    for name in ("00000000000000000000.index", "00000000000000000000.timeindex"):
        with open(os.path.join(directory, name), "ab") as f:
            f.write(bytes(120))
    recovered = Log(directory, CONFIG, recovery_point=0)
    assert_consistent(recovered, expected_end=9)


def test_log_manager_clean_shutdown_trusts_checkpoints(tmp_path):
    tp = TopicPartition("orders", 2)
    manager = LogManager(str(tmp_path), CONFIG)
    log = manager.get_or_create_log(tp)
    for i in range(7):
        log.append_as_leader(make_batch(3, tag=i))
    log.update_high_watermark(15)
    manager.shutdown()
    assert os.path.exists(tmp_path / CLEAN_SHUTDOWN_FILE)
    checkpoint = (tmp_path / RECOVERY_POINT_CHECKPOINT).read_text().split("\n")
    assert checkpoint[:3] == ["0", "1", "orders 2 21"]

    again = LogManager(str(tmp_path), CONFIG)
    assert again.had_clean_shutdown
    assert not os.path.exists(tmp_path / CLEAN_SHUTDOWN_FILE)  # a crash from now on is detected
    reopened = again.get_log(tp)
    assert (reopened.log_end_offset, reopened.recovery_point, reopened.high_watermark) == (
        21,
        21,
        15,
    )
    again.shutdown()


def test_log_manager_after_a_crash_recovers_from_the_checkpoint(tmp_path):
    tp = TopicPartition("orders", 0)
    manager = LogManager(str(tmp_path), CONFIG)
    log = manager.get_or_create_log(tp)
    for i in range(10):
        log.append_as_leader(make_batch(3, tag=i))
    manager.checkpoint()
    log.close_handlers()  # crash: no clean-shutdown marker, no final flush
    active = os.path.join(log.directory, "00000000000000000024.log")
    with open(active, "r+b") as f:
        f.truncate(os.path.getsize(active) - 7)  # the torn write
    os.close(manager._lock_fd)

    again = LogManager(str(tmp_path), CONFIG)
    assert not again.had_clean_shutdown
    assert again.get_log(tp).log_end_offset == 27
    assert_consistent(again.get_log(tp), expected_end=27)


def test_a_log_directory_is_owned_by_one_process(tmp_path):
    manager = LogManager(str(tmp_path))
    code = f"from engine.storage import LogManager; LogManager({str(tmp_path)!r})"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode != 0 and "in use by another process" in result.stderr
    manager.shutdown()


def test_a_failed_write_is_truncated_and_the_log_stays_consistent(tmp_path):
    """A real write error: RLIMIT_FSIZE makes the kernel cut the append short, then fail (EFBIG),
    as a full disk does with ENOSPC."""
    script = textwrap.dedent(
        f"""
        import json, os, resource, signal, sys
        sys.path.insert(0, {os.path.dirname(os.path.dirname(__file__))!r})
        from engine.errors import KafkaStorageError
        from engine.storage import Log, LogConfig
        from tests.conftest import make_batch

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        log = Log({str(tmp_path / "t-0")!r}, LogConfig())
        for i in range(3):
            log.append_as_leader(make_batch(3, tag=i))
        size, end = log.size, log.log_end_offset
        resource.setrlimit(resource.RLIMIT_FSIZE, (size + 100, resource.RLIM_INFINITY))
        try:
            log.append_as_leader(make_batch(3) + make_batch(3))
            error = None
        except KafkaStorageError as exc:
            error = str(exc)
        on_disk = os.path.getsize(log.active_segment.log.path)
        after = (log.size, log.log_end_offset)
        resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        retry = log.append_as_leader(make_batch(3, tag=9)).first_offset
        log.close()
        print(json.dumps(dict(size=size, end=end, error=error, on_disk=on_disk,
                              after=after, retry=retry)))
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout)
    assert "partially written bytes truncated" in outcome["error"]
    assert outcome["on_disk"] == outcome["size"]
    assert outcome["after"] == [outcome["size"], outcome["end"]]
    assert outcome["retry"] == outcome["end"]
    reopened = Log(str(tmp_path / "t-0"), LogConfig(), recovery_point=0)
    assert reopened.recovered_bytes_truncated == 0
    assert_consistent(reopened, expected_end=12)


def test_log_manager_applies_retention_and_flush_ms_to_every_log(tmp_path):
    now = [1_000_000]
    config = LogConfig(segment_bytes=BATCH, retention_bytes=BATCH, flush_ms=500)
    manager = LogManager(str(tmp_path), config, time_ms=lambda: now[0])
    logs = [manager.get_or_create_log(TopicPartition("t", p)) for p in range(2)]
    for log in logs:
        for _ in range(3):
            log.append_as_leader(make_batch(3))
        log.update_high_watermark(log.log_end_offset)
    assert manager.cleanup_logs() == 4  # two closed segments each, keeping retention.bytes
    assert [log.log_start_offset for log in logs] == [6, 6]
    for log in logs:
        log.append_as_leader(make_batch(1))
    now[0] += 500
    assert manager.flush_dirty_logs() == 2
    assert [log.recovery_point for log in logs] == [10, 10]
    manager.delete_log(TopicPartition("t", 1))
    assert not os.path.exists(tmp_path / "t-1")
    with pytest.raises(ValueError, match="illegal topic name"):
        manager.get_or_create_log(TopicPartition("no/slashes", 0))
    manager.shutdown()


def test_after_a_kill_the_broker_logs_which_partitions_recovery_truncated(tmp_path):
    """kill -9, then a torn batch on one partition and a batch failing its CRC on another (as a
    power loss leaves them): the restart says it is recovering, what it cut from each partition
    (bytes, and offsets by the batch headers) and a summary; every acknowledged record stays."""
    data_dir = str(tmp_path / "data")
    broker = broker_process(data_dir).start()
    client = Client(broker)
    assert client.create_topics({"torn": 2}) == {"torn": (NONE, None)}
    for i in range(10):
        assert client.produce("torn", 0, b"zero %d" % i) == (NONE, i)
    for i in range(5):
        assert client.produce("torn", 1, b"one %d" % i) == (NONE, i)
    client.close()
    broker.stop(signal.SIGKILL)

    torn = bytearray(make_batch(2, tag=7))
    torn[:8] = (10).to_bytes(8, "big")
    with open(os.path.join(data_dir, "torn-0", "00000000000000000000.log"), "ab") as f:
        f.write(torn[:40])  # the header up to lastOffsetDelta and a little more
    corrupt = bytearray(make_batch(3, tag=8))
    corrupt[:8] = (5).to_bytes(8, "big")
    corrupt[-1] ^= 0xFF
    with open(os.path.join(data_dir, "torn-1", "00000000000000000000.log"), "ab") as f:
        f.write(corrupt)

    mark = os.path.getsize(broker.log_path)
    broker.start()
    client = Client(broker)
    try:
        assert client.fetch("torn", 0) == [b"zero %d" % i for i in range(10)]
        assert client.fetch("torn", 1) == [b"one %d" % i for i in range(5)]
        assert client.produce("torn", 0, b"next") == (NONE, 10)
    finally:
        client.close()
        broker.stop()
    logged = log_since(broker.log_path, mark)
    assert "was not shut down cleanly: recovering 3 partitions" in logged
    assert "torn-0: truncated 40 bytes of 00000000000000000000.log at position " in logged.replace(
        os.path.join(data_dir, ""), ""
    )
    lines = {
        name: [line for line in logged.splitlines() if f"{name}: truncated" in line]
        for name in ("torn-0", "torn-1")
    }
    assert (
        "(1 batch claiming 2 offsets by their headers); the log now ends at offset 10"
        in (lines["torn-0"][0])
    )
    assert f"truncated {len(corrupt)} bytes" in lines["torn-1"][0]
    assert "(1 batch claiming 3 offsets" in lines["torn-1"][0] and "CRC" in lines["torn-1"][0]
    assert f"2 of 3 partitions truncated ({40 + len(corrupt)} bytes)" in logged


def test_a_failing_write_is_logged_once_per_partition_with_its_path(tmp_path):
    """Appends that fail (EFBIG here, under RLIMIT_FSIZE; ENOSPC and EIO take the same path)
    answer KAFKA_STORAGE_ERROR each time, but are logged once per partition, naming the file."""
    data_dir = str(tmp_path / "data")
    limit = 64 * 1024
    broker = LimitedBroker(
        data_dir,
        {resource.RLIMIT_FSIZE: (limit, limit)},
        ignore=(signal.SIGXFSZ,),
    ).start()
    client = Client(broker)
    value = b"v" * 4000
    try:
        assert client.create_topics({"full": 2}) == {"full": (NONE, None)}
        acked = {}
        for p in range(2):
            results = [client.produce("full", p, value)[0] for _ in range(25)]
            acked[p] = results.count(NONE)
            assert results[acked[p] :] == [KAFKA_STORAGE_ERROR] * (25 - acked[p])
            assert 10 < acked[p] < 20
        assert len(client.fetch("full", 1)) == acked[1]  # what was written stays readable
    finally:
        client.close()
        assert broker.stop() == 0
    logged = log_since(broker.log_path, 0)
    for p in range(2):
        failures = [line for line in logged.splitlines() if f"full-{p} failed" in line]
        assert len(failures) == 1, failures
        assert os.path.join(data_dir, f"full-{p}") in failures[0]
        assert "00000000000000000000.log" in failures[0] and "File too large" in failures[0]


@pytest.fixture
def signal_handlers():
    """run_broker installs SIGTERM and SIGINT handlers: give pytest its own back."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)


def test_stopped_cleanly_is_logged_only_after_a_clean_stop(
    tmp_path, monkeypatch, caplog, signal_handlers
):
    """`kbench broker` used to log "stopped cleanly" even when serve() raised (issue 9: EMFILE
    from the checkpoint), and to raise out of a shutdown that failed."""
    data_dir = tmp_path / "data"
    config = KafkaConfig(log_dir=str(data_dir), listen_port=0)

    def stop_listening(server: SocketServer) -> None:  # what serve() does on its way out
        server.listener.close()
        server.selector.close()

    def failing_loop(self):
        stop_listening(self)
        raise OSError(errno.EMFILE, "Too many open files")

    monkeypatch.setattr(SocketServer, "serve", failing_loop)
    with caplog.at_level(logging.INFO):
        assert run_broker(config) == 1
    assert "the event loop failed" in caplog.text and "stopped cleanly" not in caplog.text
    assert not (data_dir / CLEAN_SHUTDOWN_FILE).exists()

    caplog.clear()
    monkeypatch.setattr(SocketServer, "serve", stop_listening)
    with caplog.at_level(logging.INFO):
        assert run_broker(config) == 0  # the directory was released; this stop is clean
    assert "was not shut down cleanly" in caplog.text and "stopped cleanly" in caplog.text
    assert (data_dir / CLEAN_SHUTDOWN_FILE).exists()

    caplog.clear()

    def no_space(self):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(LogManager, "_write_checkpoints", no_space)
    with caplog.at_level(logging.INFO):
        assert run_broker(config) == 1
    assert "the shutdown was not clean" in caplog.text and "stopped cleanly" not in caplog.text
    assert not (data_dir / CLEAN_SHUTDOWN_FILE).exists()
