"""Micro-benchmarks of the storage hot paths (pytest-benchmark; not part of the default run).

    pytest -m bench tests/benchmarks --benchmark-group-by=group

Groups: `batch-1MiB` (header parse + CRC + offset patch of 1 MiB in 16 KiB batches),
`append-1MiB` (Log.append_as_leader next to a plain os.write of the same bytes, same directory),
`index` (OffsetIndex.lookup on a full 1 GiB segment's index, Log.read of a 1 MiB fetch).
"""

import os
import random

import pytest

from engine.records import SimpleRecord, build_batch, iter_batches
from engine.storage import Log, LogConfig
from engine.storage.offset_index import OffsetIndex

pytestmark = pytest.mark.bench

BATCH_BYTES = 16 * 1024
APPEND_BYTES = 1 << 20
ROUNDS = 300  # 300 MiB per append benchmark: no segment roll inside a measurement


def one_mib_of_batches() -> bytearray:
    """64 uncompressed batches of 16 KiB, 16 records of ~1 KiB each."""
    unpadded = len(build_batch([SimpleRecord(bytes(1000), key=b"key")] * 16))
    values = [os.urandom(1000) for _ in range(16)]
    values[0] += os.urandom(BATCH_BYTES - unpadded)  # (varint lengths: same size up to 8 KiB)
    batch = build_batch([SimpleRecord(v, key=b"key") for v in values])
    assert len(batch) == BATCH_BYTES, len(batch)
    return batch * (APPEND_BYTES // BATCH_BYTES)


@pytest.mark.benchmark(group="batch-1MiB")
def test_parse_crc_and_patch_1mib(benchmark):
    data = one_mib_of_batches()
    view = memoryview(data)

    def validate_and_assign():
        offset = 0
        for batch in iter_batches(view):
            batch.ensure_valid()
            batch.set_offsets(offset, 0)
            offset = batch.next_offset

    benchmark(validate_and_assign)


@pytest.fixture
def clean_page_cache():
    """Start each write benchmark with no dirty pages left by the one before it."""
    os.sync()


@pytest.mark.benchmark(group="append-1MiB")
def test_log_append_1mib(benchmark, tmp_path, clean_page_cache):
    log = Log(str(tmp_path / "bench-0"), LogConfig())
    data = one_mib_of_batches()
    benchmark.pedantic(log.append_as_leader, args=(data,), rounds=ROUNDS, warmup_rounds=5)
    assert len(log.segments) == 1
    log.close()


@pytest.mark.benchmark(group="append-1MiB")
def test_plain_write_1mib(benchmark, tmp_path, clean_page_cache):
    fd = os.open(tmp_path / "plain.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    data = one_mib_of_batches()
    benchmark.pedantic(os.write, args=(fd, data), rounds=ROUNDS, warmup_rounds=5)
    os.close(fd)


@pytest.mark.benchmark(group="index")
def test_offset_index_lookup(benchmark, tmp_path):
    entries = (10 * 1024 * 1024) // 8  # a full index: segment.index.bytes default
    index = OffsetIndex(str(tmp_path / "0.index"), 0, 10 * 1024 * 1024)
    for i in range(entries):
        index.append(i * 40 + 39, i * 800)  # ~1 GiB of positions
    targets = [random.randrange(entries * 40) for _ in range(1024)]
    it = iter(targets * 1_000_000)
    benchmark(lambda: index.lookup(next(it)))
    index.close()


@pytest.mark.benchmark(group="index")
def test_log_read_1mib_at_random_offsets(benchmark, tmp_path):
    log = Log(str(tmp_path / "read-0"), LogConfig())
    data = one_mib_of_batches()
    for _ in range(64):
        log.append_as_leader(data)
    end = log.log_end_offset
    targets = iter([random.randrange(end) for _ in range(1024)] * 1_000_000)
    benchmark(lambda: log.read(next(targets), APPEND_BYTES))
    log.close()
