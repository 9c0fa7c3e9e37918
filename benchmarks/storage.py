"""The partition log on disk: append, the offset index's floor lookup, and a fetch's read."""

import itertools
import os
import random
import shutil
import time

from engine.storage import Log, LogConfig
from engine.storage.offset_index import OffsetIndex

from ._common import BATCH_BYTES, GIB, MIB, ROUNDS, batches, median

APPEND_BYTES = 16 * MIB  # per sample: 1024 appends of one 16 KiB batch
INDEX_BYTES = 10 * MIB  # segment.index.bytes default: a full index of 1,310,720 entries
READ_LOG_BYTES = 64 * MIB
READ_BYTES = MIB  # a 1 MiB fetch


class LogAppend:
    """Log.append_as_leader of one 16 KiB batch per call (validate, patch offsets, one write,
    sparse index entry) next to a plain os.write of the same 16 KiB to a file in the same
    directory: 16 MiB per sample, the two interleaved over 15 rounds after a warm-up round.
    Each sample writes a new log or file after an os.sync(), and deletes it afterwards, so the
    page cache pages are reused rather than freshly taken from the (virtual) machine.

    Both figures come from the same rounds, so setup_cache measures them once (in the
    temporary directory asv runs it in) and the track_ methods report them."""

    def setup_cache(self):
        directory = os.path.abspath("log-append")
        os.makedirs(directory)
        batch = batches(BATCH_BYTES)
        count = APPEND_BYTES // BATCH_BYTES

        def append() -> float:
            path = os.path.join(directory, "bench-0")
            log = Log(path, LogConfig())
            try:
                os.sync()  # no dirty pages left to write back during the sample
                started = time.perf_counter()
                for _ in range(count):
                    log.append_as_leader(batch)
                return time.perf_counter() - started
            finally:
                log.close()
                shutil.rmtree(path)

        def write() -> float:
            path = os.path.join(directory, "plain.log")
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
            try:
                os.sync()
                started = time.perf_counter()
                for _ in range(count):
                    os.write(fd, batch)
                return time.perf_counter() - started
            finally:
                os.close(fd)
                os.unlink(path)

        append_s, ratios = [], []
        for round_number in range(-1, ROUNDS):
            if round_number % 2 == 0:
                appended, written = append(), write()
            else:
                written, appended = write(), append()
            if round_number >= 0:  # round -1 is the warm-up
                append_s.append(appended)
                ratios.append(appended / written)
        return {
            "seconds_per_gib_append": median(append_s) * GIB / APPEND_BYTES,
            "append_over_plain_write_time": median(ratios),
        }

    setup_cache.timeout = 300

    def track_seconds_per_gib_append(self, measured):
        return measured["seconds_per_gib_append"]

    track_seconds_per_gib_append.unit = "seconds/GiB"

    def track_append_over_plain_write_time(self, measured):
        return measured["append_over_plain_write_time"]

    track_append_over_plain_write_time.unit = "ratio"


class _Reopened:
    """A fixture returned by setup_cache and pickled as its constructor's arguments, so that
    asv's unpickling of it in each benchmark process opens its files again, before any timing."""

    _args: tuple

    def __reduce__(self):
        return (type(self), self._args)


class _FullOffsetIndex(_Reopened):
    def __init__(self, path: str, targets: list[int]) -> None:
        self._args = (path, targets)
        self.index = OffsetIndex(path, 0, INDEX_BYTES)
        self.next_target = itertools.cycle(targets).__next__


class OffsetIndexLookup:
    """OffsetIndex.lookup (the floor entry of an offset, by bisection) on a full index, as a
    1 GiB segment's: 1,310,720 entries, 40 offsets and 800 bytes apart; random targets."""

    def setup_cache(self):
        path = os.path.abspath("00000000000000000000.index")
        index = OffsetIndex(path, 0, INDEX_BYTES)
        entries = index.max_entries
        for i in range(entries):
            index.append(i * 40 + 39, i * 800)
        index.close()
        rng = random.Random(1)
        return _FullOffsetIndex(path, [rng.randrange(entries * 40) for _ in range(4096)])

    setup_cache.timeout = 300

    def time_offset_index_lookup(self, fixture):
        fixture.index.lookup(fixture.next_target())


class _ReadableLog(_Reopened):
    def __init__(self, directory: str, targets: list[int]) -> None:
        self._args = (directory, targets)
        self.log = Log(directory, LogConfig(), had_clean_shutdown=True)
        self.next_target = itertools.cycle(targets).__next__


class LogRead:
    """Log.read of a 1 MiB fetch at a random offset of a 64 MiB log of 16 KiB batches: index
    floor lookup, batch headers scanned forward to the offset, file slices up to 1 MiB."""

    def setup_cache(self):
        directory = os.path.abspath("read-0")
        log = Log(directory, LogConfig())
        data = batches(MIB)
        for _ in range(READ_LOG_BYTES // MIB):
            log.append_as_leader(data)
        end = log.log_end_offset
        log.close()
        rng = random.Random(2)
        return _ReadableLog(directory, [rng.randrange(end) for _ in range(4096)])

    setup_cache.timeout = 300

    def time_log_read_1mib(self, fixture):
        fixture.log.read(fixture.next_target(), READ_BYTES)
