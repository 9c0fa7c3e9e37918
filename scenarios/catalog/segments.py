"""segments: what does splitting a partition's log into segment files cost and buy?

Kafka writes a partition as a series of segment files, a new one rolled once the active one
would pass segment.bytes (1 GiB by default), and retention (retention.bytes, retention.ms)
deletes whole closed segments from the front. The claim: segments keep files small and make
cleanup cheap. This scenario measures the cleanup against a log kept in one large file, and what
segment.bytes costs and buys in the engine.

- raw (files, the question as people state it): a log of `raw_log_bytes` kept after every
  retention pass, laid out four ways, each pass dropping the oldest `raw_drop_bytes`:
  - delete-segments: files of `raw_segment_bytes`; the pass unlinks the oldest (Kafka);
  - rewrite: one file; the pass copies what is kept to a new file (1 MiB reads and writes),
    fsyncs it and renames it over the old one: what a single-file log must do without help
    from the filesystem (a rename over the only copy of the data needs the new file durable
    first, or a crash loses the partition);
  - punch-hole: one file; the pass frees the dropped range with
    fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE): no data moves, the file keeps its
    length (positions stay valid; it grows by every pass's appends) and the range reads as
    zeros, taking no blocks;
  - collapse-range: one file; fallocate(FALLOC_FL_COLLAPSE_RANGE) removes the range and shifts
    the rest down (ext4 and XFS; positions change, so an index would need rewriting too). ext4
    writes back and drops the page cache of the file from the range on, so what is kept must
    be read from the disk again: kept_resident_pct shows it.
  The filesystems that refuse punch-hole or collapse-range (tmpfs refuses collapse-range; a
  probe in setup finds out) leave that layout out, with a note. Before each pass the producer's
  share is appended, `raw_drop_bytes`, and fsynced, untimed, so the log holds the same bytes
  before every pass and no writeback runs under the timing. A sample is the median of `passes`
  passes: ms per pass, the data bytes the pass itself wrote, and the share of the kept bytes in
  the page cache afterwards. The data is a stream of 1 MiB blocks, each starting with its
  number: after every pass the first kept byte must be the oldest kept block's, or the run stops.
  What the segmented layout unlinks is only the .log files: their index files are the engine's
  part below.
- log (the engine, engine.storage's LogManager and Log, as the broker runs them: a LogFlusher
  fsyncs a rolled segment in the background): one log for each segment.bytes in
  `segment_sizes`, holding `log_bytes` (at least two segments) of ~64 KiB batches (600 records
  of 100 bytes) in closed segments, plus an active segment half full (where it is, on average,
  when a broker dies). A sample runs one cycle of a partition's life and times each step:
  1. roll: the active segment filled to segment.bytes, untimed; then Log.roll() (the closed
     segment's indexes written, the new segment's files created, the producer snapshot), µs;
     then the background fsync of the closed segment it starts, waited for, ms;
  2. retention: half a segment appended, so the log is one segment over retention.bytes (set
     to the log's size after setup); Log.delete_old_segments() + delete_pending_segments()
     (file.delete.delay.ms=0: renamed *.deleted, then unlinked), ms; exactly the oldest segment
     must go, or the run stops;
  3. recovery after an unclean shutdown: the checkpoints written (as the broker's timer does),
     then LogManager.close_unclean() (what kill -9 leaves: no clean-shutdown marker) and a new
     LogManager over the directory, ms: every segment's files opened and indexes loaded, and
     the active segment (from the checkpointed recovery point) re-read, validated and its
     indexes rebuilt. Hot: the page cache kept the files (a process crash); cold: the same
     after evicting every file of the partition (a machine crash), where the filesystem lets
     pages go (not tmpfs: left out, with a note). The log end offset must be what it was,
     nothing truncated and the last offset readable, or the run stops;
  4. restart after a clean shutdown (LogManager.shutdown(), then a new LogManager), ms;
  5. open files: a walk over every segment's batch headers (as a consumer catching up from the
     start touches them all), which must find the offsets contiguous from the log start offset
     to the end: every record appended before the crashes is there. Then the descriptors this
     process holds on the partition's .log files: the engine opens a segment file on first use
     and keeps it (at most half of RLIMIT_NOFILE, least recently used closed first), as Kafka
     keeps one per segment.
  Under --bootstrap this part is left out with a note: it measures the engine's own storage
  layer, not the cluster's.

Claim decided (segments, "cleanup is cheap"): rewrite/delete-segments ms per pass >= 10, on
the raw part (see _CHEAP below for why 10). Punching holes and collapsing ranges are contrasts
only: they are what lets a single file be cleaned without rewriting it, on filesystems that have
them, and no claim speaks of them. "Files stay small" holds by construction (segment.bytes caps
every file); what it buys and costs is in the log part's sweep: bigger segments mean fewer files
and rolls per GB, and more to re-read after a crash; smaller ones more segments to open at every
start; and retention works in steps of a segment (retention.bytes is honoured in whole segments:
a log keeps up to one segment more).

Profiles: quick (13-18 s on 2 cores) keeps 64 MiB raw logs, drops 8 MiB a pass (one 8 MiB
segment: a log keeping 8x what it drops), 3 passes a sample, and sweeps segment.bytes 1, 8 and
64 MiB over 128 MiB logs, 6 rounds. full (about 5 minutes; it writes ~60 GiB, half of it the
rewrites) keeps 512 MiB and drops 32 MiB a pass (16x), 5 passes, and sweeps 1 MiB to 1 GiB
over 1 GiB logs (2 GiB for 1 GiB segments), 10 rounds.
"""

import contextlib
import ctypes
import logging
import os
import shutil
import statistics
import struct
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import psutil

from engine.common import TopicPartition
from engine.records import SimpleRecord, build_batch
from engine.storage import Log, LogConfig, LogManager
from scenarios.harness.resources import (
    PageCacheStateError,
    directory_files,
    evict,
    page_cache_residency,
)
from scenarios.harness.scenario import (
    ClaimCheck,
    Contrast,
    Metric,
    RunContext,
    Scenario,
    SweepChart,
    Variant,
    size_label,
)

_KIB = 1 << 10
_MIB = 1 << 20
_GIB = 1 << 30
SEGMENT_BYTES = "segment.bytes"  # the log part's variant parameter, as Kafka's topic config
DELETE, REWRITE, PUNCH, COLLAPSE = "delete-segments", "rewrite", "punch-hole", "collapse-range"
METHODS = (DELETE, REWRITE, PUNCH, COLLAPSE)
REWRITE_OVER_DELETE = "rewrite-over-delete"
# The claim's threshold, chosen before the scenario's first run and not moved after (a one-off
# probe of the magnitudes here had come first: an unlink of 16 MiB ~5 ms, a 64 MiB rewrite
# ~85-150 ms): "cheap" as an order of magnitude below what a single-file log must do without
# filesystem help. A rewrite's cost grows with the bytes kept and a deletion's with the bytes
# dropped, so the ratio grows with kept/dropped; quick keeps 8x what it drops (a retention pass
# of a real log drops one segment of many), so 10 is earned by the layout, not handed to it by a
# huge log.
_CHEAP = 10.0
_BLOCK = _MIB  # the raw logs' unit: each block starts with its number, big-endian
_MARK = struct.Struct(">Q")
_TOPIC_PARTITION = TopicPartition("segments", 0)
_APPEND_BATCHES = 16  # batches per Log.append (~1 MiB): a producer request's worth

# fallocate(2) modes, from linux/falloc.h
FALLOC_FL_KEEP_SIZE = 0x01
FALLOC_FL_PUNCH_HOLE = 0x02
FALLOC_FL_COLLAPSE_RANGE = 0x08


def _libc_fallocate() -> Any:
    try:
        function = ctypes.CDLL(None, use_errno=True).fallocate
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
    function.restype = ctypes.c_int
    return function


_FALLOCATE = _libc_fallocate()


def fallocate(fd: int, mode: int, offset: int, length: int) -> None:
    """fallocate(2) with a mode (os.posix_fallocate has none); OSError when refused."""
    if _FALLOCATE is None:
        raise OSError(38, "fallocate(2) is not available here")  # ENOSYS
    if _FALLOCATE(fd, mode, offset, length) != 0:
        error = ctypes.get_errno()
        raise OSError(error, os.strerror(error))


def size_token(n: int) -> str:
    """1MiB, 256KiB: a size in a variant's or contrast's name."""
    return size_label(n).replace(" ", "")


# -- the raw logs ---------------------------------------------------------------------------------


class _RawLog:
    """A log of 1 MiB blocks in files under `directory`: blocks [first, end) are kept."""

    method = ""

    def __init__(self, directory: str, filler: bytes) -> None:
        self.directory = directory
        self.filler = filler
        self.first = self.end = 0  # kept blocks, by number
        # after each pass, for tests: (data bytes it wrote, bytes the kept files take on the
        # filesystem, their length)
        self.passes: list[tuple[int, int, int]] = []
        os.makedirs(directory, exist_ok=True)

    def _write_blocks(self, fd: int, blocks: int) -> None:
        for _ in range(blocks):
            written = os.writev(fd, [_MARK.pack(self.end), self.filler])
            if written != _BLOCK:
                raise OSError(f"short write of block {self.end} in {self.directory}: {written}")
            self.end += 1

    def append(self, blocks: int) -> None:
        """Append blocks at the end and fsync them (the producer's share, untimed)."""
        raise NotImplementedError

    def drop_front(self, blocks: int) -> int:
        """Drop the oldest blocks (the timed pass); returns the data bytes it wrote."""
        raise NotImplementedError

    def first_kept_mark(self) -> int:
        """The number the first kept byte's block carries, read from the files."""
        raise NotImplementedError

    def kept_files(self) -> list[tuple[str, int]]:
        """(path, bytes of kept data it holds) for the files holding the kept blocks."""
        raise NotImplementedError

    def resident_bytes(self) -> float:
        """Bytes of the layout's files in the page cache (holes are never resident)."""
        total = 0.0
        for path, _ in self.kept_files():
            total += page_cache_residency(path) * os.path.getsize(path)
        return total

    def allocated_bytes(self) -> int:
        """What the kept files take on the filesystem (st_blocks): holes take nothing."""
        return sum(os.stat(path).st_blocks * 512 for path, _ in self.kept_files())

    def check(self) -> None:
        mark, kept = self.first_kept_mark(), sum(size for _, size in self.kept_files())
        if mark != self.first or kept != (self.end - self.first) * _BLOCK:
            raise RuntimeError(
                f"{self.method} at {self.directory}: the log starts with block {mark} and keeps "
                f"{kept} bytes; it should start with block {self.first} and keep "
                f"{(self.end - self.first) * _BLOCK}"
            )


class _SegmentFiles(_RawLog):
    method = DELETE

    def __init__(self, directory: str, filler: bytes, segment_blocks: int) -> None:
        super().__init__(directory, filler)
        self.segment_blocks = segment_blocks
        self.segments: list[tuple[int, str]] = []  # (first block, path), oldest first

    def append(self, blocks: int) -> None:
        for _ in range(blocks // self.segment_blocks):
            path = os.path.join(self.directory, f"{self.end:020d}.log")
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                self.segments.append((self.end, path))
                self._write_blocks(fd, self.segment_blocks)
                os.fsync(fd)
            finally:
                os.close(fd)

    def drop_front(self, blocks: int) -> int:
        for _ in range(blocks // self.segment_blocks):
            _, path = self.segments.pop(0)
            os.unlink(path)
        self.first += blocks
        return 0

    def first_kept_mark(self) -> int:
        with open(self.segments[0][1], "rb") as f:
            return _MARK.unpack(f.read(_MARK.size))[0]

    def kept_files(self) -> list[tuple[str, int]]:
        return [(path, os.path.getsize(path)) for _, path in self.segments]


class _OneFile(_RawLog):
    """The log in one file, `log`, whose kept blocks start at byte `start`."""

    def __init__(self, directory: str, filler: bytes) -> None:
        super().__init__(directory, filler)
        self.path = os.path.join(directory, "log")
        self.start = 0
        os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644))

    def append(self, blocks: int) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        try:
            self._write_blocks(fd, blocks)
            os.fsync(fd)
        finally:
            os.close(fd)

    def first_kept_mark(self) -> int:
        with open(self.path, "rb") as f:
            f.seek(self.start)
            return _MARK.unpack(f.read(_MARK.size))[0]

    def kept_files(self) -> list[tuple[str, int]]:
        return [(self.path, os.path.getsize(self.path) - self.start)]


class _RewrittenFile(_OneFile):
    method = REWRITE

    def __init__(self, directory: str, filler: bytes) -> None:
        super().__init__(directory, filler)
        self.buffer = bytearray(_MIB)

    def drop_front(self, blocks: int) -> int:
        drop = blocks * _BLOCK
        cleaned = self.path + ".cleaned"
        written = 0
        view = memoryview(self.buffer)
        source = os.open(self.path, os.O_RDONLY)
        target = os.open(cleaned, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            position = drop
            while n := os.preadv(source, [self.buffer], position):
                done = 0
                while done < n:
                    done += os.write(target, view[done:n])
                position += n
                written += n
            os.fsync(target)  # durable before it replaces the only copy of the data
        finally:
            os.close(source)
            os.close(target)
        os.replace(cleaned, self.path)
        self.first += blocks
        return written


class _PunchedFile(_OneFile):
    method = PUNCH

    def drop_front(self, blocks: int) -> int:
        fd = os.open(self.path, os.O_WRONLY)
        try:
            fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, self.start, blocks * _BLOCK)
        finally:
            os.close(fd)
        self.start += blocks * _BLOCK
        self.first += blocks
        return 0


class _CollapsedFile(_OneFile):
    method = COLLAPSE

    def drop_front(self, blocks: int) -> int:
        fd = os.open(self.path, os.O_WRONLY)
        try:
            fallocate(fd, FALLOC_FL_COLLAPSE_RANGE, 0, blocks * _BLOCK)
        finally:
            os.close(fd)
        self.first += blocks
        return 0


def _probe(directory: str, mode: int) -> str | None:
    """Why fallocate with `mode` on this filesystem fails over 1 MiB of a 2 MiB file, or None."""
    path = os.path.join(directory, "probe")
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, bytes(2 * _MIB))
        fallocate(fd, mode, 0, _MIB)
    except OSError as exc:
        return exc.strerror or str(exc)
    finally:
        os.close(fd)
        os.unlink(path)
    return None


# -- the engine's log -----------------------------------------------------------------------------


@dataclass
class _EngineLog:
    """One partition under a LogManager of its own, for one segment.bytes."""

    directory: str  # the log directory (log.dirs)
    config: LogConfig
    batch: bytes
    per_segment: int  # batches in a full segment
    half: int  # batches in the active segment between samples
    manager: LogManager
    open: bool = True  # False between a shutdown (clean or not) and the next LogManager
    cycles: list[dict] = field(default_factory=list)  # what each sample saw, for tests

    @property
    def log(self) -> Log:
        log = self.manager.get_log(_TOPIC_PARTITION)
        assert log is not None
        return log

    @property
    def partition(self) -> str:
        return os.path.join(self.directory, str(_TOPIC_PARTITION))

    def append(self, batches: int) -> None:
        log = self.log
        while batches:
            n = min(batches, _APPEND_BATCHES)
            log.append_as_leader(bytearray(self.batch * n))
            batches -= n
        log.update_high_watermark(log.log_end_offset)  # acknowledged: retention may pass it

    def settle(self) -> None:
        """Wait for the flusher, advance the recovery point, write the checkpoints."""
        self.manager.flusher.wait_idle()
        self.manager.apply_completed_flushes()
        self.manager.checkpoint()

    def crash(self) -> None:
        """What kill -9 leaves: files closed unflushed, no checkpoints, no clean-shutdown mark."""
        self.open = False
        self.manager.close_unclean()

    def shutdown(self) -> None:
        self.open = False
        self.manager.shutdown()

    def reopen(self) -> float:
        """A new LogManager over the directory (the old one closed); seconds it took."""
        before = time.perf_counter_ns()
        with _quiet_recovery():
            self.manager = LogManager(self.directory, self.config)
        elapsed_ns = time.perf_counter_ns() - before
        self.open = True
        return elapsed_ns / 1e9


@contextlib.contextmanager
def _quiet_recovery() -> Iterator[None]:
    """The engine warns of every unclean start and recovery (it should, in a broker); here
    they are the experiment, hundreds a run, so only errors get through."""
    logger = logging.getLogger("engine.storage")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _segment_open_files(directory: str) -> int:
    """Descriptors this process holds on .log files in directory."""
    prefix = os.path.realpath(directory) + os.sep
    return sum(
        1
        for f in psutil.Process().open_files()
        if f.path.startswith(prefix) and f.path.endswith(".log")
    )


def _contiguous_offsets(log: Log) -> int:
    """Walk every batch header of every segment: the offsets must run without a gap from the
    log start offset to the log end offset. Returns the batches walked."""
    expected, batches = log.log_start_offset, 0
    for segment in log.segments:
        for header in segment.batches():
            if header.base_offset != expected:
                raise RuntimeError(
                    f"{log.directory}: batch at {header.position} of segment "
                    f"{segment.base_offset} starts at offset {header.base_offset}, expected "
                    f"{expected}"
                )
            expected = header.last_offset + 1
            batches += 1
    if expected != log.log_end_offset:
        raise RuntimeError(f"{log.directory}: batches end at {expected}, the log at {log}")
    return batches


class Segments(Scenario):
    name = "segments"
    title = "Log segments: retention by deleting whole segments, and segment.bytes"
    question = (
        "How much cheaper is dropping the oldest data by deleting whole segment files than "
        "cleaning one large file, and what do rolls, retention, open files and recovery after "
        "an unclean shutdown cost as segment.bytes grows, here?"
    )
    parameters = {
        "raw_methods": "how the raw logs drop their oldest bytes: delete-segments, rewrite, "
        "punch-hole, collapse-range",
        "raw_log_bytes": "bytes each raw log keeps after every pass",
        "raw_drop_bytes": "bytes each pass drops from the front (appended before it, untimed)",
        "raw_segment_bytes": "size of the segmented raw log's files",
        "passes": "retention passes per raw sample (the sample is their median)",
        "segment_sizes": "segment.bytes of the engine's logs, one log each",
        "log_bytes": "bytes of closed segments each engine log holds (at least two segments)",
        "record_size": "bytes per record value",
        "records_per_batch": "records per batch (~64 KiB batches with 600 of 100 bytes)",
        "cold_recovery": "also recover with the partition evicted from the page cache",
        "rounds": "interleaved repeats of every variant",
    }
    # measured: `kbench run` quick on a 2-core VM, 2026-11-29 (13.1, 14.3 and 17.9 s in three runs)
    quick_seconds = 13  # measured: `kbench run`, 2-core VM, 2026-11-29 (8 min 27 s for all)
    profiles = {
        "smoke": {
            "raw_methods": list(METHODS),
            "raw_log_bytes": 4 * _MIB,
            "raw_drop_bytes": 2 * _MIB,
            "raw_segment_bytes": _MIB,
            "passes": 2,
            "segment_sizes": [256 * _KIB, _MIB],
            "log_bytes": 2 * _MIB,
            "record_size": 100,
            "records_per_batch": 600,
            "cold_recovery": True,
            "rounds": 2,
        },
        "quick": {
            "raw_methods": list(METHODS),
            "raw_log_bytes": 64 * _MIB,
            "raw_drop_bytes": 8 * _MIB,
            "raw_segment_bytes": 8 * _MIB,
            "passes": 3,
            "segment_sizes": [_MIB, 8 * _MIB, 64 * _MIB],
            "log_bytes": 128 * _MIB,
            "record_size": 100,
            "records_per_batch": 600,
            "cold_recovery": True,
            "rounds": 6,
        },
        "full": {
            "raw_methods": list(METHODS),
            "raw_log_bytes": 512 * _MIB,
            "raw_drop_bytes": 32 * _MIB,
            "raw_segment_bytes": 32 * _MIB,
            "passes": 5,
            "segment_sizes": [_MIB, 4 * _MIB, 16 * _MIB, 64 * _MIB, 256 * _MIB, _GIB],
            "log_bytes": _GIB,
            "record_size": 100,
            "records_per_batch": 600,
            "cold_recovery": True,
            "rounds": 10,
        },
    }
    metrics = (
        Metric(
            "cleanup_ms",
            "ms",
            "lower",
            "one retention pass dropping raw_drop_bytes from the front of a raw log, median of "
            "the sample's passes",
        ),
        Metric(
            "written_mib",
            "MiB",
            "lower",
            "data bytes a raw retention pass wrote (the rewrite's copy; 0 for the others)",
        ),
        Metric(
            "kept_resident_pct",
            "%",
            "higher",
            "share of the raw log's kept bytes in the page cache after the sample's last pass",
        ),
        Metric("roll_us", "µs", "lower", "Log.roll() of a full active segment"),
        Metric(
            "roll_fsync_ms",
            "ms",
            "lower",
            "the background fsync of the closed segment a roll starts, waited for",
        ),
        Metric(
            "retention_ms",
            "ms",
            "lower",
            "Log.delete_old_segments() + delete_pending_segments() removing the oldest segment "
            "to honour retention.bytes",
        ),
        Metric(
            "recovery_ms",
            "ms",
            "lower",
            "a new LogManager after an unclean shutdown, the files in the page cache: segments "
            "loaded, the active one re-read and its indexes rebuilt",
        ),
        Metric(
            "recovery_cold_ms",
            "ms",
            "lower",
            "the same with the partition's files evicted from the page cache first",
        ),
        Metric("restart_ms", "ms", "lower", "a new LogManager after a clean shutdown"),
        Metric(
            "recovered_mib",
            "MiB",
            "lower",
            "bytes of the active segment that recovery re-read (half a segment's batches)",
        ),
        Metric(
            "open_files",
            "files",
            "lower",
            "descriptors held on the partition's .log files once every segment was read",
        ),
    )
    charts = (
        SweepChart(
            "cost of a roll and of a retention pass vs segment.bytes",
            SEGMENT_BYTES,
            ("roll_us", "roll_fsync_ms", "retention_ms"),
            xlabel=SEGMENT_BYTES,
            x_is_bytes=True,
        ),
        SweepChart(
            "recovery after an unclean shutdown vs segment.bytes",
            SEGMENT_BYTES,
            ("recovery_ms", "recovery_cold_ms", "restart_ms"),
            xlabel=SEGMENT_BYTES,
            x_is_bytes=True,
        ),
        SweepChart(
            "open segment files vs segment.bytes",
            SEGMENT_BYTES,
            ("open_files",),
            xlabel=SEGMENT_BYTES,
            x_is_bytes=True,
        ),
    )

    # -- declaration ----------------------------------------------------------------------------
    def variants(self, params: Mapping[str, Any]) -> list[Variant]:
        variants = [
            Variant(f"raw-{method}", {"part": "raw", "method": method})
            for method in METHODS
            if method in params["raw_methods"]
        ]
        variants += [
            Variant(f"log-{size_token(size)}", {"part": "log", SEGMENT_BYTES: size})
            for size in params["segment_sizes"]
        ]
        return variants

    def contrasts(self, params: Mapping[str, Any]) -> list[Contrast]:
        methods = params["raw_methods"]
        contrasts = []
        if DELETE in methods:
            for method in (REWRITE, PUNCH, COLLAPSE):
                if method in methods:
                    contrasts.append(
                        Contrast(
                            f"{method}-over-delete",
                            "cleanup_ms",
                            f"raw-{method}",
                            f"raw-{DELETE}",
                            f"{method}/delete-segments: ms per retention pass dropping "
                            f"{size_label(params['raw_drop_bytes'])} of "
                            f"{size_label(params['raw_log_bytes'] + params['raw_drop_bytes'])}",
                        )
                    )
        sizes = sorted(params["segment_sizes"])
        if len(sizes) >= 2:
            small, big = sizes[0], sizes[-1]
            what = [
                ("roll", "roll_us", "µs per roll"),
                ("roll-fsync", "roll_fsync_ms", "background fsync after a roll"),
                ("retention", "retention_ms", "ms per retention pass (one segment)"),
                ("recovery", "recovery_ms", "recovery after an unclean shutdown, hot"),
                ("restart", "restart_ms", "restart after a clean shutdown"),
                ("open-files", "open_files", "open segment files"),
            ]
            if params["cold_recovery"]:
                what.insert(4, ("recovery-cold", "recovery_cold_ms", "recovery, cold"))
            contrasts += [
                Contrast(
                    f"{key}-{size_token(big)}-over-{size_token(small)}",
                    metric,
                    f"log-{size_token(big)}",
                    f"log-{size_token(small)}",
                    f"segment.bytes {size_label(big)}/{size_label(small)}: {label}",
                )
                for key, metric, label in what
            ]
        return contrasts

    def claim_checks(self, params: Mapping[str, Any]) -> list[ClaimCheck]:
        if not {DELETE, REWRITE} <= set(params["raw_methods"]):
            return []
        return [
            ClaimCheck(
                "segments",
                REWRITE_OVER_DELETE,
                _CHEAP,
                part=f"cleanup is cheap: rewriting a single-file log's kept bytes takes at least "
                f"{_CHEAP:g}x as long as deleting whole segments",
            )
        ]

    # -- setup ----------------------------------------------------------------------------------
    def setup(self, ctx: RunContext) -> None:
        params = ctx.params
        for key in ("raw_log_bytes", "raw_drop_bytes"):
            if params[key] % params["raw_segment_bytes"] or params["raw_segment_bytes"] % _BLOCK:
                raise ValueError(
                    f"{key} and raw_segment_bytes must be multiples of raw_segment_bytes and of "
                    f"1 MiB: {params[key]}, {params['raw_segment_bytes']}"
                )
        root = os.path.join(ctx.work_dir, "segments")
        os.makedirs(root, exist_ok=True)
        ctx.state.update(root=root, raw={}, logs={})
        try:
            self._setup_raw(ctx)
            if params["segment_sizes"] and not ctx.engine:
                params["segment_sizes"] = []
                ctx.notes.append(
                    "log part left out: the run targets an external cluster (--bootstrap); the "
                    "log part measures the engine's own storage layer (rolls, retention, "
                    "recovery), which says nothing of that cluster's"
                )
            for size in params["segment_sizes"]:
                self._setup_log(ctx, size)
            if params["segment_sizes"] and params["cold_recovery"] and not self._can_evict(ctx):
                params["cold_recovery"] = False
                ctx.notes.append(
                    "cold recovery left out: the page cache keeps this filesystem's files after "
                    "POSIX_FADV_DONTNEED (tmpfs or similar)"
                )
        except BaseException:
            self.teardown(ctx)  # the runner tears down only what set up completely
            raise

    def _setup_raw(self, ctx: RunContext) -> None:
        params = ctx.params
        filler = os.urandom(_BLOCK - _MARK.size)  # incompressible, for filesystems that compress
        refused = []
        for method, mode in (
            (PUNCH, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE),
            (COLLAPSE, FALLOC_FL_COLLAPSE_RANGE),
        ):
            if method in params["raw_methods"]:
                reason = _probe(ctx.state["root"], mode)
                if reason is not None:
                    params["raw_methods"] = [m for m in params["raw_methods"] if m != method]
                    refused.append(f"{method} ({reason})")
        if refused:
            ctx.notes.append(
                f"this filesystem refuses fallocate for {', '.join(refused)}: left out"
            )
        kept = params["raw_log_bytes"] // _BLOCK
        for method in params["raw_methods"]:
            directory = os.path.join(ctx.state["root"], f"raw-{method}")
            layout: _RawLog
            if method == DELETE:
                layout = _SegmentFiles(directory, filler, params["raw_segment_bytes"] // _BLOCK)
            elif method == REWRITE:
                layout = _RewrittenFile(directory, filler)
            elif method == PUNCH:
                layout = _PunchedFile(directory, filler)
            else:
                layout = _CollapsedFile(directory, filler)
            layout.append(kept)
            ctx.state["raw"][method] = layout
            ctx.watched.append(directory)

    def _setup_log(self, ctx: RunContext, size: int) -> None:
        params = ctx.params
        batch = bytes(
            build_batch(
                [SimpleRecord(bytes(params["record_size"]))] * params["records_per_batch"],
                timestamp=time.time_ns() // 1_000_000,
            )
        )
        per_segment = size // len(batch)  # a segment rolls when its next batch would not fit
        if per_segment < 2:
            raise ValueError(
                f"segment.bytes {size} holds {per_segment} batch(es) of {len(batch)} bytes; the "
                "log part needs two or more"
            )
        closed = max(2, round(params["log_bytes"] / size))
        half = per_segment // 2
        directory = os.path.join(ctx.state["root"], f"log-{size_token(size)}")
        # retention.bytes: the log's size after setup, so each sample's one segment of appends
        # puts it exactly one (the oldest) segment over
        retention = (closed * per_segment + half) * len(batch)
        config = LogConfig.from_properties(
            {
                SEGMENT_BYTES: size,
                "retention.bytes": retention,
                "file.delete.delay.ms": 0,
            }
        )
        entry = _EngineLog(
            directory, config, batch, per_segment, half, LogManager(directory, config)
        )
        ctx.state["logs"][size] = entry
        entry.manager.get_or_create_log(_TOPIC_PARTITION)
        for _ in range(closed):
            entry.append(per_segment)
            entry.log.roll()
        entry.append(half)
        entry.settle()
        if entry.log.size != retention or len(entry.log.segments) != closed + 1:
            raise RuntimeError(
                f"{directory}: {entry.log.size} bytes in {len(entry.log.segments)} segments, "
                f"expected {retention} in {closed + 1}"
            )
        ctx.watched.append(entry.partition)

    def _can_evict(self, ctx: RunContext) -> bool:
        entry = ctx.state["logs"][ctx.params["segment_sizes"][0]]
        try:
            evict(directory_files(entry.partition, ".log"), timeout_s=1.0)
        except PageCacheStateError:
            return False
        return True

    def teardown(self, ctx: RunContext) -> None:
        for entry in ctx.state.get("logs", {}).values():
            if entry.open:
                with contextlib.suppress(Exception):  # the files go below either way
                    entry.shutdown()
        if ctx.state.get("root"):
            shutil.rmtree(ctx.state["root"], ignore_errors=True)

    # -- measure --------------------------------------------------------------------------------
    def measure(self, ctx: RunContext, variant: Variant) -> dict[str, float]:
        if variant.params["part"] == "raw":
            return self._measure_raw(ctx, variant)
        return self._measure_log(ctx, variant)

    def _measure_raw(self, ctx: RunContext, variant: Variant) -> dict[str, float]:
        layout: _RawLog = ctx.state["raw"][variant.params["method"]]
        drop = ctx.params["raw_drop_bytes"] // _BLOCK
        times_ns, written = [], []
        for _ in range(ctx.params["passes"]):
            layout.append(drop)
            before = time.perf_counter_ns()
            written.append(layout.drop_front(drop))
            times_ns.append(time.perf_counter_ns() - before)
            layout.check()
            length = sum(os.path.getsize(path) for path, _ in layout.kept_files())
            layout.passes.append((written[-1], layout.allocated_bytes(), length))
        kept = (layout.end - layout.first) * _BLOCK
        return {
            "cleanup_ms": statistics.median(times_ns) / 1e6,
            "written_mib": statistics.median(written) / _MIB,
            "kept_resident_pct": 100.0 * min(1.0, layout.resident_bytes() / kept),
        }

    def _measure_log(self, ctx: RunContext, variant: Variant) -> dict[str, float]:
        entry: _EngineLog = ctx.state["logs"][variant.params[SEGMENT_BYTES]]
        values: dict[str, float] = {}
        # 1. a roll of a full segment, and the fsync it starts in the background
        entry.append(entry.per_segment - entry.half)
        before = time.perf_counter_ns()
        entry.log.roll()
        values["roll_us"] = (time.perf_counter_ns() - before) / 1e3
        before = time.perf_counter_ns()
        entry.manager.flusher.wait_idle()
        values["roll_fsync_ms"] = (time.perf_counter_ns() - before) / 1e6
        entry.settle()
        # 2. retention: one segment over retention.bytes
        entry.append(entry.half)
        log = entry.log
        oldest, following = log.segments[0].base_offset, log.segments[1].base_offset
        before = time.perf_counter_ns()
        deleted = log.delete_old_segments()
        log.delete_pending_segments()
        values["retention_ms"] = (time.perf_counter_ns() - before) / 1e6
        left = [n for n in os.listdir(entry.partition) if n.endswith(".deleted")]
        if deleted != 1 or log.log_start_offset != following or left:
            raise RuntimeError(
                f"{variant.name}: retention deleted {deleted} segments (expected 1, the one at "
                f"offset {oldest}); the log starts at {log.log_start_offset}, expected "
                f"{following}; left behind: {left}"
            )
        cycle = {
            "deleted": oldest,
            "segments": len(log.segments),
            "end": log.log_end_offset,
            "active_bytes": log.active_segment.size,
        }
        # 3. an unclean shutdown, then recovery: hot, and cold where the page cache lets go
        entry.settle()
        values["recovered_mib"] = log.active_segment.size / _MIB
        values["recovery_ms"] = self._crash_and_recover(entry, variant, cycle, cold=False)
        if ctx.params["cold_recovery"]:
            values["recovery_cold_ms"] = self._crash_and_recover(entry, variant, cycle, cold=True)
        # 4. a clean shutdown and restart
        entry.shutdown()
        values["restart_ms"] = entry.reopen() * 1e3
        self._check_recovered(entry, variant, cycle)
        # 5. every segment read once (the offsets checked), then the descriptors held
        cycle["batches"] = _contiguous_offsets(entry.log)
        values["open_files"] = cycle["open_files"] = _segment_open_files(entry.partition)
        entry.cycles.append(cycle)
        return values

    def _crash_and_recover(
        self, entry: _EngineLog, variant: Variant, cycle: dict, *, cold: bool
    ) -> float:
        entry.manager.checkpoint()
        entry.crash()
        if cold:
            evict(directory_files(entry.partition), label=entry.partition)
        elapsed_s = entry.reopen()
        if entry.manager.had_clean_shutdown:
            raise RuntimeError(f"{variant.name}: the log directory was marked clean")
        self._check_recovered(entry, variant, cycle)
        return elapsed_s * 1e3

    @staticmethod
    def _check_recovered(entry: _EngineLog, variant: Variant, cycle: dict) -> None:
        log = entry.log
        if log.log_end_offset != cycle["end"] or log.recovered_bytes_truncated:
            raise RuntimeError(
                f"{variant.name}: after recovery the log ends at {log.log_end_offset} (was "
                f"{cycle['end']}), {log.recovered_bytes_truncated} bytes truncated"
            )
        read = log.read(log.log_end_offset - 1, 1)  # the last record acknowledged is readable
        if not read.slices:
            raise RuntimeError(f"{variant.name}: offset {log.log_end_offset - 1} reads nothing")
