"""sparse-index: what does an offset index entry every index.interval.bytes cost and buy?

Kafka indexes a segment sparsely: an entry (8 bytes: relative offset, file position) for a batch
once more than index.interval.bytes (4096 by default) were appended since the last entry. A read
at an offset finds the last entry at or below it by binary search, then walks batch headers from
that entry's position to the batch holding the offset. A denser index walks fewer headers and
costs more bytes; a sparser one the opposite. This scenario measures both sides, for each value
of index.interval.bytes in `intervals`, over the same batches:

- read: a log of `log_bytes` (`segment_bytes` segments) of small batches (`records_per_batch`
  records of `record_size` bytes, ~1.1 KiB in every profile, so that intervals from 4 KiB up
  differ: any interval below the batch size gives an entry per batch), written once per interval
  with the engine's own Log (engine.storage; LogConfig `index.interval.bytes`), byte for byte the
  same. A sample is `Log.read(offset, max_bytes)` at `reads` random offsets (the same offsets for
  every interval in a round), timed one by one: the sample's median µs per read (a burst of other
  work on the machine moves a few reads, not the median). "hot": every file of the log is in
  the page cache (checked); "cold": before each read every file of the partition (.log, .index,
  .timeindex) is evicted from the page cache (fsync, POSIX_FADV_DONTNEED) and the .log files'
  residency checked to be 0, on the first `cold_reads` of the offsets. The engine reads an
  index file whole when it opens a segment and keeps its entries in memory (Kafka maps it), so
  while the log is open an evicted .index file costs a lookup nothing: what a cold read pays for
  is the log, the headers it walks and the batches it ends on. For each read the headers the
  lookup walks are counted from the index itself: the entry OffsetIndex.lookup gives (as
  LogSegment.translate_offset uses it) to the batch holding the offset, from a table of the
  segment's batch headers; the batch the engine's read starts at must be that batch, or the run
  stops. Log.read also finds where its last whole batch within max_bytes ends, jumping to the
  last index entry below that limit and walking the headers after it, so a sparse index costs at
  both ends of a read; the headers counted are the lookup's.
- no index at all: index.interval.bytes = 2147483647, the most the setting allows, so no batch of
  a segment under 2 GiB ever gets an entry. The offset index stays empty and every lookup falls
  back to position 0: a linear scan of batch headers from the segment start, done by the
  engine's own read path (the same Log.read, its FileRecords header scan). Charts show it at
  x = 2 GiB.
- rebuild: the log closed cleanly, its .index and .timeindex files deleted, its files evicted
  (a restart with a cold page cache; hot where eviction is impossible), then reopened: every
  segment finds its index missing and recovers (LogSegment.recover re-reads and validates every
  batch and rebuilds both indexes as appends built them). The rebuilt index must be as large as
  the one the appends wrote, or the run stops. Index bytes per GB of log are the .index files'
  bytes over the .log files', per 10^9 bytes of log.
- fetch: a broker of this scenario's own (`kbench broker`), one topic per interval in
  `broker_intervals` (topic configs index.interval.bytes and segment.bytes), `broker_bytes` of
  the same small batches produced once (BatchProducer); a raw FetchClient then fetches one
  partition at random offsets, max_bytes per Fetch, one request in flight: µs per Fetch round
  trip, hot (partition resident, one connection per sample) or cold (its files evicted before
  each Fetch, which goes out on a fresh connection: an open connection holds the pages it just
  carried by sendfile until TCP lets go of them, and no eviction drops a page in use; eviction
  waits for them, and past 2 s up to 5 % of the partition may stay resident, recorded as
  residency_pct). The broker part needs the engine (its files are evicted): under --bootstrap it
  is left out with a note.

The claim (sparse-index: an entry every ~4 KiB keeps indexes tiny while lookups stay fast) is
judged part by part, each on the raw reads, where nothing dilutes the index's cost: the 4 KiB
index adds at most 1 % to what a partition stores (no index / 4 KiB bytes stored per GB of log
at or above 0.99), and a read at a random offset with it takes at most 1.25 times as long as with
an entry for every batch (128 B / 4 KiB µs at or above 0.8), hot and cold. Through the broker the
same ratios are recorded, diluted by the protocol and the network.

Profiles: quick (about a minute on 2 cores) reads 32 MiB logs in 8 MiB segments at six
intervals (128 B, 4, 16, 64 KiB, 1 MiB, none) and fetches from four topics (128 B, 4 KiB,
1 MiB, none), 9 rounds. full adds the 1 KiB and 256 KiB intervals and the 64 KiB topic, logs of
128 MiB in 32 MiB segments (so a scan without an index walks four times as far), twice the reads
per sample and 11 rounds.
"""

import bisect
import contextlib
import os
import random
import shutil
import statistics
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.records import HEADER_SIZE, RecordBatch, SimpleRecord, build_batch
from engine.storage import Log, LogConfig, LogSegment
from scenarios.clients.fetch_client import FetchClient
from scenarios.clients.loadgen import BatchProducer
from scenarios.clients.local_broker import LocalBroker
from scenarios.harness.resources import (
    PageCacheStateError,
    ResourceMeter,
    directory_files,
    evict,
    make_hot,
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
_GB = 1e9
NO_INDEX = (1 << 31) - 1  # index.interval.bytes at its maximum: no entry in a segment < 2 GiB
INTERVAL = "index.interval.bytes"  # the variant parameter, as Kafka's topic config names it
_DENSE, _DEFAULT = 128, 4096  # the intervals the claim compares (128 B: an entry per batch)
_TOPIC = "kbench-sparse-index-{}"
# Pages the broker sent with sendfile stay referenced by the socket that carried them (segments
# TCP keeps until acknowledged), and no eviction drops a page in use: a cold Fetch goes out on a
# fresh connection, opened once the partition is evicted, and eviction waits for the last one's
# pages; they are gone within ~30 ms here. Past the patience, up to the tolerance may stay.
_EVICTION_PATIENCE_S = 2.0
_EVICTION_TIMEOUT_S = 30.0
_BROKER_EVICTION_TOLERANCE = 0.05
_SEED = 12_000


def interval_token(interval: int) -> str:
    """4KiB, 128B, no-index: an interval in a variant's or contrast's name."""
    return "no-index" if interval == NO_INDEX else size_label(interval).replace(" ", "")


def interval_label(interval: int) -> str:
    return "no index" if interval == NO_INDEX else size_label(interval)


@dataclass(frozen=True, slots=True)
class Lookup:
    """One read at a random offset, as the index served it: the entry OffsetIndex.lookup gave
    and the batch holding the offset, in the segment starting at segment_base."""

    offset: int
    segment_base: int
    entry_position: int  # 0 when no entry is at or below the offset (or there is no index)
    batch_position: int  # where the batch holding the offset starts
    headers: int  # batch headers walked from entry_position to that batch, both counted

    @property
    def scan_bytes(self) -> int:
        return self.batch_position - self.entry_position


class _Segment:
    """A segment's batch headers in file order: positions and last offsets, for bisecting."""

    def __init__(self, segment: LogSegment) -> None:
        self.segment = segment
        self.positions: list[int] = []
        self.last_offsets: list[int] = []
        for header in segment.batches():
            self.positions.append(header.position)
            self.last_offsets.append(header.last_offset)

    def lookup(self, offset: int) -> Lookup:
        _, entry_position = self.segment.offset_index.lookup(offset)
        first = bisect.bisect_left(self.positions, entry_position)
        if first == len(self.positions) or self.positions[first] != entry_position:
            raise RuntimeError(
                f"index entry at position {entry_position} of {self.segment.log.path} is not a "
                "batch start"
            )
        target = bisect.bisect_left(self.last_offsets, offset)
        return Lookup(
            offset,
            self.segment.base_offset,
            entry_position,
            self.positions[target],
            target - first + 1,
        )


class SparseIndex(Scenario):
    name = "sparse-index"
    title = "Sparse offset index: index.interval.bytes from an entry per batch to none"
    question = (
        "What do index.interval.bytes from 128 B to 1 MiB, and no index at all, cost in index "
        "bytes, reads at random offsets (hot and cold) and index rebuilds, here?"
    )
    parameters = {
        "intervals": "index.interval.bytes of the raw logs, one log each (2147483647: no index)",
        "log_bytes": "bytes of batches appended to each raw log",
        "segment_bytes": "segment.bytes of every log, raw and broker (a no-index lookup scans "
        "from its segment's start)",
        "record_size": "bytes per record value",
        "records_per_batch": "records per batch (~1.1 KiB batches with 10 of 100 bytes)",
        "max_bytes": "max_bytes of each Log.read, and max.partition.fetch.bytes = fetch.max.bytes "
        "of each Fetch",
        "reads": "Log.reads per hot sample, at random offsets (the same for every interval)",
        "cold_reads": "Log.reads per cold sample, each after evicting the log (the first of the "
        "hot sample's offsets)",
        "states": "hot (log in the page cache) and/or cold (evicted before each read)",
        "broker_bytes": "bytes produced once to each broker topic (0: no broker part)",
        "broker_intervals": "index.interval.bytes of the broker topics, one topic each",
        "fetches": "Fetches per hot sample, at random offsets (the same for every topic)",
        "cold_fetches": "Fetches per cold sample, each after evicting the partition",
        "rounds": "interleaved repeats of every variant",
    }
    quick_seconds = 64  # measured: `kbench run`, 2-core VM, 2026-11-29 (8 min 27 s for all)
    profiles = {
        "smoke": {
            "intervals": [128, 4096, 65536, NO_INDEX],
            "log_bytes": 2 * _MIB,
            "segment_bytes": _MIB,
            "record_size": 100,
            "records_per_batch": 10,
            "max_bytes": 64 * _KIB,
            "reads": 20,
            "cold_reads": 4,
            "states": ["hot", "cold"],
            "broker_bytes": _MIB,
            "broker_intervals": [128, 4096, NO_INDEX],
            "fetches": 5,
            "cold_fetches": 2,
            "rounds": 2,
        },
        "quick": {
            "intervals": [128, 4096, 16384, 65536, _MIB, NO_INDEX],
            "log_bytes": 32 * _MIB,
            "segment_bytes": 8 * _MIB,
            "record_size": 100,
            "records_per_batch": 10,
            "max_bytes": _MIB,
            "reads": 100,
            "cold_reads": 40,
            "states": ["hot", "cold"],
            "broker_bytes": 16 * _MIB,
            "broker_intervals": [128, 4096, _MIB, NO_INDEX],
            "fetches": 50,
            "cold_fetches": 20,
            "rounds": 9,
        },
        "full": {
            "intervals": [128, 1024, 4096, 16384, 65536, 262144, _MIB, NO_INDEX],
            "log_bytes": 128 * _MIB,
            "segment_bytes": 32 * _MIB,
            "record_size": 100,
            "records_per_batch": 10,
            "max_bytes": _MIB,
            "reads": 200,
            "cold_reads": 80,
            "states": ["hot", "cold"],
            "broker_bytes": 64 * _MIB,
            "broker_intervals": [128, 4096, 65536, _MIB, NO_INDEX],
            "fetches": 100,
            "cold_fetches": 40,
            "rounds": 11,
        },
    }
    metrics = (
        Metric(
            "read_us",
            "µs",
            "lower",
            "median time of one Log.read (read) or one Fetch round trip (fetch) at a random "
            "offset, over the sample's reads",
        ),
        Metric(
            "headers_per_lookup",
            "headers",
            "lower",
            "batch headers a lookup walks, from the index entry at or below the offset to the "
            "batch holding it (both counted), mean per read",
        ),
        Metric(
            "scan_kib_per_lookup",
            "KiB",
            "lower",
            "log bytes from the index entry's position to the batch holding the offset, mean "
            "per read",
        ),
        Metric(
            "disk_kib_per_read",
            "KiB",
            "lower",
            "bytes the reading process (this one for Log.read, the broker for Fetch) had the "
            "storage read, per read; 0 when the page cache served it all",
        ),
        Metric(
            "residency_pct",
            "%",
            "higher",
            "share of the partition's bytes in the page cache right before the reads (mean over "
            "a cold sample's reads): 100 for hot, 0 for cold",
        ),
        Metric(
            "index_bytes_per_gb",
            "bytes/GB",
            "lower",
            "offset index (.index files) bytes per 10^9 bytes of log",
        ),
        Metric(
            "stored_bytes_per_gb",
            "bytes/GB",
            "lower",
            "log plus offset index bytes per 10^9 bytes of log: 10^9 plus what the index adds",
        ),
        Metric(
            "rebuild_ms",
            "ms",
            "lower",
            "opening the log with its index files missing: every batch re-read and validated, "
            "the indexes rebuilt",
        ),
    )
    charts = (
        SweepChart(
            "µs per read at a random offset vs index.interval.bytes",
            INTERVAL,
            ("read_us",),
            xlabel="index.interval.bytes (2 GiB: no index)",
            x_is_bytes=True,
        ),
        SweepChart(
            "headers a lookup walks vs index.interval.bytes",
            INTERVAL,
            ("headers_per_lookup",),
            xlabel="index.interval.bytes (2 GiB: no index)",
            x_is_bytes=True,
        ),
        SweepChart(
            "index size and rebuild time vs index.interval.bytes",
            INTERVAL,
            ("index_bytes_per_gb", "rebuild_ms"),
            xlabel="index.interval.bytes (2 GiB: no index)",
            x_is_bytes=True,
        ),
    )

    # -- declaration ----------------------------------------------------------------------------
    def variants(self, params: Mapping[str, Any]) -> list[Variant]:
        states = params["states"]
        variants = [
            Variant(
                f"read-{interval_token(i)}-{state}", {"part": "read", INTERVAL: i, "state": state}
            )
            for state in states
            for i in params["intervals"]
        ]
        rebuild_state = "cold" if "cold" in states else "hot"
        variants += [
            Variant(
                f"rebuild-{interval_token(i)}",
                {"part": "rebuild", INTERVAL: i, "state": rebuild_state},
            )
            for i in params["intervals"]
        ]
        if params["broker_bytes"]:
            variants += [
                Variant(
                    f"fetch-{interval_token(i)}-{state}",
                    {"part": "fetch", INTERVAL: i, "state": state},
                )
                for state in states
                for i in params["broker_intervals"]
            ]
        return variants

    def contrasts(self, params: Mapping[str, Any]) -> list[Contrast]:
        contrasts = []
        raw = params["intervals"]
        if _DENSE in raw and _DEFAULT in raw:
            contrasts += [
                Contrast(
                    "index-bytes-dense",
                    "index_bytes_per_gb",
                    "rebuild-128B",
                    "rebuild-4KiB",
                    "128 B/4 KiB interval: offset index bytes per GB of log",
                ),
                Contrast(
                    "rebuild-dense",
                    "rebuild_ms",
                    "rebuild-128B",
                    "rebuild-4KiB",
                    "128 B/4 KiB interval: index rebuild time in recovery",
                ),
            ]
        if NO_INDEX in raw and _DEFAULT in raw:
            contrasts.append(
                Contrast(
                    "stored-no-index",
                    "stored_bytes_per_gb",
                    "rebuild-no-index",
                    "rebuild-4KiB",
                    "no index/4 KiB interval: bytes stored per GB of log (log + offset index)",
                )
            )
        parts = [("read", "Log.read", raw)]
        if params["broker_bytes"]:
            parts.append(("fetch", "Fetch", params["broker_intervals"]))
        for part, what, intervals in parts:
            if _DEFAULT not in intervals:
                continue
            for state in params["states"]:
                others = [i for i in (_DENSE, _MIB, NO_INDEX) if i in intervals]
                contrasts += [
                    Contrast(
                        f"{part}-{interval_token(i)}-{state}",
                        "read_us",
                        f"{part}-{interval_token(i)}-{state}",
                        f"{part}-4KiB-{state}",
                        f"{interval_label(i)}/4 KiB interval: µs per {what} at a random offset, "
                        f"{state}",
                    )
                    for i in others
                ]
        return contrasts

    def claim_checks(self, params: Mapping[str, Any]) -> list[ClaimCheck]:
        raw = params["intervals"]
        checks = []
        if NO_INDEX in raw and _DEFAULT in raw:
            # "tiny": the index adds at most 1 % to the bytes a partition stores (Kafka's 8-byte
            # entry per 4 KiB is about 0.2 %); measured against the same log with no index
            checks.append(
                ClaimCheck(
                    "sparse-index",
                    "stored-no-index",
                    0.99,
                    part="indexes stay tiny: a 4 KiB index adds at most 1 % to the log",
                )
            )
        if _DENSE in raw and _DEFAULT in raw:
            # "lookups stay fast": at most a quarter slower than with an entry for every batch
            for state in params["states"]:
                checks.append(
                    ClaimCheck(
                        "sparse-index",
                        f"read-128B-{state}",
                        0.8,
                        part=f"lookups stay fast, {state}: a read with a 4 KiB index takes at "
                        "most 1.25x as long as with an entry per batch",
                    )
                )
        return checks

    # -- setup ----------------------------------------------------------------------------------
    def setup(self, ctx: RunContext) -> None:
        params = ctx.params
        root = os.path.join(ctx.work_dir, "sparse-index")
        os.makedirs(root, exist_ok=True)
        ctx.state.update(
            root=root,
            logs={},  # interval -> the open Log
            tables={},  # interval -> {segment base offset: _Segment}
            draws={},  # variant -> samples taken so far (each sample's offsets are seeded by it)
            lookups={},  # variant -> [Lookup] of every read, for tests
            broker=None,
            fetcher=None,
            topics={},  # interval -> (topic, partition directory, end offset)
        )
        try:
            self._setup_logs(ctx)
            if "cold" in params["states"] and not self._can_evict(ctx):
                params["states"] = [s for s in params["states"] if s != "cold"]
                ctx.notes.append(
                    "the page cache keeps this filesystem's files after POSIX_FADV_DONTNEED "
                    "(tmpfs or similar): cold reads left out, rebuilds read a hot log"
                )
            if params["broker_bytes"] and not ctx.engine:
                params["broker_bytes"] = 0
                ctx.notes.append(
                    "fetch part left out: the run targets an external cluster (--bootstrap), "
                    "whose segment files this scenario cannot evict; it needs a broker of the "
                    "engine on a data directory of its own"
                )
            if params["broker_bytes"]:
                self._setup_broker(ctx)
        except BaseException:
            self.teardown(ctx)  # the runner tears down only what set up completely
            raise

    def _setup_logs(self, ctx: RunContext) -> None:
        params = ctx.params
        batch = bytes(
            build_batch(
                [SimpleRecord(bytes(params["record_size"]))] * params["records_per_batch"],
                timestamp=1,
            )
        )
        per_append = max(1, (256 * _KIB) // len(batch))  # one write call per ~256 KiB
        count = max(1, params["log_bytes"] // len(batch))
        ends = set()
        for interval in params["intervals"]:
            directory = os.path.join(ctx.state["root"], f"raw-{interval_token(interval)}-0")
            log = Log(directory, self._config(ctx, interval))
            ctx.state["logs"][interval] = log
            appended = 0
            while appended < count:
                n = min(per_append, count - appended)
                log.append_as_leader(bytearray(batch * n))
                appended += n
            log.flush()  # on disk now, so no writeback runs under a measurement
            ends.add((log.log_end_offset, log.size))
            ctx.state["tables"][interval] = _tables(log)
            ctx.watched.append(directory)
        if len(ends) != 1:
            raise RuntimeError(f"the raw logs should hold the same batches: {sorted(ends)}")
        ((ctx.state["end"], ctx.state["log_bytes"]),) = ends

    @staticmethod
    def _config(ctx: RunContext, interval: int) -> LogConfig:
        return LogConfig.from_properties(
            {INTERVAL: interval, "segment.bytes": ctx.params["segment_bytes"]}
        )

    def _can_evict(self, ctx: RunContext) -> bool:
        directory = ctx.state["logs"][ctx.params["intervals"][0]].directory
        try:
            _evict(directory, tolerance=0.0, patience_s=1.0, timeout_s=1.0)
        except PageCacheStateError:
            return False
        return True

    def _setup_broker(self, ctx: RunContext) -> None:
        params = ctx.params
        root = os.path.join(ctx.state["root"], "broker")
        os.makedirs(root, exist_ok=True)
        broker = ctx.state["broker"] = LocalBroker(os.path.join(root, "data")).start()
        ctx.processes["broker"] = broker.pid  # this scenario's broker serves the fetches
        producer = BatchProducer(
            broker.bootstrap,
            record_size=params["record_size"],
            records_per_batch=params["records_per_batch"],
        )
        try:
            for interval in params["broker_intervals"]:
                topic = _TOPIC.format(interval_token(interval))
                producer.create_topic(
                    topic,
                    1,
                    configs={
                        INTERVAL: str(interval),
                        "segment.bytes": str(params["segment_bytes"]),
                    },
                )
                stats = producer.produce(topic, 1, params["broker_bytes"])
                partition = os.path.join(broker.data_dir, f"{topic}-0")
                # written back now, not while measured
                for path in directory_files(partition, ".log"):
                    fd = os.open(path, os.O_RDONLY)
                    try:
                        os.fsync(fd)
                    finally:
                        os.close(fd)
                end = stats.requests * params["records_per_batch"]
                ctx.state["topics"][interval] = (topic, partition, end)
                ctx.watched.append(partition)
        finally:
            producer.close()
        ctx.state["fetcher"] = FetchClient(broker.bootstrap)

    def teardown(self, ctx: RunContext) -> None:
        for log in ctx.state.get("logs", {}).values():
            with contextlib.suppress(Exception):
                log.close()
        ctx.state["logs"] = {}
        if ctx.state.get("fetcher") is not None:
            ctx.state["fetcher"].close()
            ctx.state["fetcher"] = None
        broker = ctx.state.get("broker")
        if broker is not None:
            broker.stop()
            ctx.state["broker"] = None
        if ctx.state.get("root"):
            # the data goes; the broker's own log (broker/broker.log) stays, for a post-mortem
            for name in os.listdir(ctx.state["root"]):
                path = os.path.join(ctx.state["root"], name)
                if name.startswith("raw-"):
                    shutil.rmtree(path, ignore_errors=True)
            shutil.rmtree(os.path.join(ctx.state["root"], "broker", "data"), ignore_errors=True)

    # -- measure --------------------------------------------------------------------------------
    def measure(self, ctx: RunContext, variant: Variant) -> dict[str, float]:
        part = variant.params["part"]
        if part == "read":
            return self._measure_read(ctx, variant)
        if part == "rebuild":
            return self._measure_rebuild(ctx, variant)
        return self._measure_fetch(ctx, variant)

    def _offsets(self, ctx: RunContext, variant: Variant, end: int, count: int) -> list[int]:
        """The sample's random offsets: the k-th sample of every variant draws the same ones, so
        the variants of one round read the same offsets."""
        k = ctx.state["draws"].get(variant.name, 0)
        ctx.state["draws"][variant.name] = k + 1
        rng = random.Random(_SEED + k)
        return [rng.randrange(end) for _ in range(count)]

    def _measure_read(self, ctx: RunContext, variant: Variant) -> dict[str, float]:
        interval, hot = variant.params[INTERVAL], variant.params["state"] == "hot"
        log: Log = ctx.state["logs"][interval]
        count = ctx.params["reads"] if hot else ctx.params["cold_reads"]
        drawn = max(ctx.params["reads"], ctx.params["cold_reads"])
        offsets = self._offsets(ctx, variant, ctx.state["end"], drawn)[:count]
        max_bytes = ctx.params["max_bytes"]
        residencies = []
        if hot:
            residencies.append(_make_hot(log.directory))
        times_ns = []
        starts = []
        with ResourceMeter({"reader": os.getpid()}, interval_s=None) as meter:
            for offset in offsets:
                if not hot:
                    residencies.append(_evict(log.directory, tolerance=0.0))
                before = time.perf_counter_ns()
                info = log.read(offset, max_bytes)
                times_ns.append(time.perf_counter_ns() - before)
                first = info.slices[0]
                starts.append((first.file, first.position))
        lookups = [_lookup(ctx.state["tables"][interval], offset) for offset in offsets]
        for lookup, (file, position) in zip(lookups, starts, strict=True):
            segment = ctx.state["tables"][interval][lookup.segment_base].segment
            if file is not segment.log or position != lookup.batch_position:
                raise RuntimeError(
                    f"{variant.name}: Log.read({lookup.offset}) started at {file.path}:{position}, "
                    f"the batch holding it is at {segment.log.path}:{lookup.batch_position}"
                )
        ctx.state["lookups"].setdefault(variant.name, []).extend(lookups)
        values = {
            "read_us": statistics.median(times_ns) / 1e3,
            "headers_per_lookup": sum(x.headers for x in lookups) / len(lookups),
            "scan_kib_per_lookup": sum(x.scan_bytes for x in lookups) / len(lookups) / _KIB,
            "residency_pct": 100.0 * sum(residencies) / len(residencies),
        }
        read_bytes = meter.usage.processes["reader"].read_bytes
        if read_bytes is not None:
            values["disk_kib_per_read"] = read_bytes / len(offsets) / _KIB
        return values

    def _measure_rebuild(self, ctx: RunContext, variant: Variant) -> dict[str, float]:
        interval = variant.params[INTERVAL]
        log: Log = ctx.state["logs"].pop(interval)
        directory, end = log.directory, log.log_end_offset
        log.close()  # a clean shutdown: every index entry is in its file
        written = 0
        for path in directory_files(directory, ".index") + directory_files(directory, ".timeindex"):
            if path.endswith(".index"):
                written += os.path.getsize(path)
            os.unlink(path)
        if variant.params["state"] == "cold":
            residency = _evict(directory, tolerance=0.0)
        else:
            residency = _make_hot(directory)
        before = time.perf_counter_ns()
        log = Log(
            directory, self._config(ctx, interval), recovery_point=end, had_clean_shutdown=True
        )
        elapsed_ns = time.perf_counter_ns() - before
        ctx.state["logs"][interval] = log
        ctx.state["tables"][interval] = _tables(log)
        rebuilt = sum(segment.offset_index.size_in_bytes for segment in log.segments)
        if log.log_end_offset != end or log.recovered_bytes_truncated:
            raise RuntimeError(
                f"{variant.name}: recovery changed the log: end offset {log.log_end_offset} "
                f"(was {end}), {log.recovered_bytes_truncated} bytes truncated"
            )
        if rebuilt != written:
            raise RuntimeError(
                f"{variant.name}: the rebuilt offset index holds {rebuilt} bytes, the appends "
                f"wrote {written}"
            )
        per_gb = _GB / ctx.state["log_bytes"]
        return {
            "rebuild_ms": elapsed_ns / 1e6,
            "index_bytes_per_gb": rebuilt * per_gb,
            "stored_bytes_per_gb": (ctx.state["log_bytes"] + rebuilt) * per_gb,
            "residency_pct": 100.0 * residency,
        }

    def _measure_fetch(self, ctx: RunContext, variant: Variant) -> dict[str, float]:
        interval, hot = variant.params[INTERVAL], variant.params["state"] == "hot"
        topic, partition, end = ctx.state["topics"][interval]
        fetcher: FetchClient = ctx.state["fetcher"]
        count = ctx.params["fetches"] if hot else ctx.params["cold_fetches"]
        drawn = max(ctx.params["fetches"], ctx.params["cold_fetches"])
        offsets = self._offsets(ctx, variant, end, drawn)[:count]
        max_bytes = ctx.params["max_bytes"]
        residencies = []
        if hot:
            residencies.append(_make_hot(partition))
        times_ns = []
        broker: LocalBroker = ctx.state["broker"]
        with ResourceMeter({"broker": broker.pid}, interval_s=None) as meter:
            for offset in offsets:
                if not hot:
                    fetcher.close()  # lets go of the pages it carried (see _EVICTION_PATIENCE_S)
                    residencies.append(_evict(partition, tolerance=_BROKER_EVICTION_TOLERANCE))
                    fetcher = ctx.state["fetcher"] = FetchClient(broker.bootstrap)
                before = time.perf_counter_ns()
                _, records = fetcher.fetch(topic, 0, offset, max_bytes)
                times_ns.append(time.perf_counter_ns() - before)
                if len(records) < HEADER_SIZE:
                    raise RuntimeError(f"{variant.name}: no batch fetched at offset {offset}")
                batch = RecordBatch(records)
                if not batch.base_offset <= offset <= batch.base_offset + batch.last_offset_delta:
                    raise RuntimeError(
                        f"{variant.name}: a Fetch at offset {offset} began with the batch of "
                        f"offsets {batch.base_offset}-{batch.base_offset + batch.last_offset_delta}"
                    )
        values = {
            "read_us": statistics.median(times_ns) / 1e3,
            "residency_pct": 100.0 * sum(residencies) / len(residencies),
        }
        read_bytes = meter.usage.processes["broker"].read_bytes
        if read_bytes is not None:
            values["disk_kib_per_read"] = read_bytes / len(offsets) / _KIB
        return values


# -- the index's work, counted ------------------------------------------------------------------


def _tables(log: Log) -> dict[int, _Segment]:
    return {segment.base_offset: _Segment(segment) for segment in log.segments}


def _lookup(tables: dict[int, _Segment], offset: int) -> Lookup:
    """How the index serves a read at offset: the segment holding it, then its index entry."""
    bases = sorted(tables)
    return tables[bases[bisect.bisect_right(bases, offset) - 1]].lookup(offset)


# -- page-cache state ---------------------------------------------------------------------------


def _make_hot(directory: str) -> float:
    """Every file of the partition in the page cache; its residency then, or an error."""
    return make_hot(directory_files(directory), label=directory)


def _evict(
    directory: str,
    tolerance: float,
    patience_s: float = _EVICTION_PATIENCE_S,
    timeout_s: float = _EVICTION_TIMEOUT_S,
) -> float:
    """Evict every file of the partition until none of its .log bytes is resident, or, after
    patience_s, at most `tolerance` of them (pages a socket still holds go later); the .log
    files' residency then, or PageCacheStateError once timeout_s has passed."""
    return evict(
        directory_files(directory),
        weigh=directory_files(directory, ".log"),
        tolerance=tolerance,
        patience_s=patience_s,
        timeout_s=timeout_s,
        label=directory,
    )
