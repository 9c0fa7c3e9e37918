"""Property-based: random appends, reads, rolls, retention and reopens against a model."""

import itertools
import shutil
import tempfile

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from engine.errors import RecordListTooLargeError
from engine.records import CompressionType, SimpleRecord, build_batch, decode_records, iter_batches
from engine.storage import Log, LogConfig

CONFIG = LogConfig(segment_bytes=2_000, index_interval_bytes=300, retention_bytes=3_000)


class LogMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.directory = tempfile.mkdtemp(prefix="kbench-prop-")
        self.log = Log(self.directory, CONFIG, time_ms=lambda: 10_000)
        self.values: dict[int, bytes] = {}  # offset -> value: the model
        self.start = 0
        self.end = 0

    def teardown(self) -> None:
        self.log.close()
        shutil.rmtree(self.directory)

    @rule(
        counts=st.lists(st.integers(1, 6), min_size=1, max_size=4),
        size=st.integers(0, 400),
        codec=st.sampled_from([CompressionType.NONE, CompressionType.LZ4, CompressionType.ZSTD]),
    )
    def append(self, counts, size, codec):
        data = bytearray()
        expected = []
        for count in counts:
            first = self.end + len(expected)
            values = [f"{first + i}|".encode().ljust(size, b".") for i in range(count)]
            expected += values
            records = [SimpleRecord(v, timestamp=1_000) for v in values]
            data += build_batch(records, compression=codec)
        if len(data) > CONFIG.segment_bytes:  # Kafka refuses, and appends nothing
            with pytest.raises(RecordListTooLargeError):
                self.log.append_as_leader(data)
            return
        info = self.log.append_as_leader(data)
        assert (info.first_offset, info.last_offset) == (self.end, self.end + len(expected) - 1)
        for value in expected:
            self.values[self.end] = value
            self.end += 1

    @precondition(lambda self: self.end > self.start)
    @rule(data=st.data(), max_bytes=st.integers(1, 5_000))
    def read(self, data, max_bytes):
        offset = data.draw(st.integers(self.start, self.end - 1))
        fetch = self.log.read(offset, max_bytes)
        assert fetch.slices, "at least one batch is returned"
        batches = []
        for file_slice in fetch.slices:
            chunk = file_slice.read()
            found = list(iter_batches(chunk))  # raises if a slice splits a batch
            assert sum(b.size_in_bytes for b in found) == len(chunk)
            batches += found
        assert batches[0].base_offset <= offset <= batches[0].last_offset
        assert len(batches) == 1 or fetch.size <= max_bytes
        records = [r for b in batches for r in decode_records(b)]
        assert [r.offset for r in records] == list(range(records[0].offset, records[-1].offset + 1))
        assert all(r.value == self.values[r.offset] for r in records)

    @rule()
    def roll(self):
        self.log.roll()

    @rule()
    def commit_and_retain(self):
        self.log.update_high_watermark(self.log.log_end_offset)
        self.log.delete_old_segments()
        assert self.log.log_start_offset >= self.start
        assert self.log.log_start_offset == self.log.segments[0].base_offset
        self.start = self.log.log_start_offset
        assert self.log.size >= min(CONFIG.retention_bytes, self.log.size)

    @rule(clean=st.booleans())
    def reopen(self, clean):
        log = self.log
        checkpoint = dict(
            recovery_point=log.recovery_point,
            log_start_offset=log.log_start_offset,
            high_watermark=log.high_watermark,
        )
        if clean:
            log.close()
        else:
            log.close_handlers()  # a process crash: the page cache keeps what was written
        self.log = Log(
            self.directory, CONFIG, had_clean_shutdown=clean, time_ms=lambda: 10_000, **checkpoint
        )
        assert self.log.recovered_bytes_truncated == 0
        assert self.log.high_watermark == checkpoint["high_watermark"]

    @invariant()
    def offsets_match_the_model(self):
        assert (self.log.log_start_offset, self.log.log_end_offset) == (self.start, self.end)
        segments = self.log.segments
        assert [s.base_offset for s in segments] == sorted(s.base_offset for s in segments)
        for before, after in itertools.pairwise(segments):
            assert before.next_offset == after.base_offset


TestLogAgainstModel = LogMachine.TestCase
TestLogAgainstModel.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
