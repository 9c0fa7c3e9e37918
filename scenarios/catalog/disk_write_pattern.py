"""disk-write-pattern: how much faster is appending in order than writing at random positions?

On raw files, for each block size and three modes:
- buffered: write calls into the page cache, then one fsync (Kafka's default: no fsync per write);
- fsync: an fsync after every write (flush.messages=1);
- direct: O_DIRECT, queue depth 1, the device itself (skipped where the filesystem refuses it).
Sequential writes go to increasing offsets, random ones to the same offsets shuffled, both in a
file written once beforehand, so neither pays for allocating blocks. Through the broker, the
same bytes are produced (prebuilt batches, acks=1) to 1 partition, then round robin to 64.

The claim seq-write ("sequential is 12x random") is about the disk, so it is decided on the
writes that reach the device (O_DIRECT 4 KiB, or fsync per 4 KiB write where O_DIRECT is
refused); buffered writes decide page-cache-write against fsync per write.
"""

import mmap
import os
import random
import time
from collections.abc import Mapping
from typing import Any

from hdrh.histogram import HdrHistogram

from scenarios.clients.loadgen import BatchProducer
from scenarios.harness.scenario import (
    ClaimCheck,
    Contrast,
    Metric,
    RunContext,
    Scenario,
    Skip,
    SweepChart,
    TopicWrite,
    Variant,
    size_label,
)

_MIB = 1 << 20


class DiskWritePattern(Scenario):
    name = "disk-write-pattern"
    title = "Sequential vs random writes"
    question = "How much faster is appending in order than writing at random positions, here?"
    parameters = {
        "block_sizes": "bytes per write call",
        "file_bytes": "bytes written per buffered measurement",
        "fsync_writes": "writes per fsync-mode measurement (each fsynced)",
        "direct_bytes": "bytes written per O_DIRECT measurement",
        "broker_bytes": "bytes produced per broker measurement (0: no broker part)",
        "partitions": "partitions written round robin in the scattered broker variant",
        "rounds": "interleaved repeats of every variant",
        "modes": "buffered (page cache, one final fsync), fsync (per write), direct (O_DIRECT)",
    }
    quick_seconds = 44  # measured: `kbench run`, 2-core VM, 2026-11-29 (8 min 27 s for all)
    profiles = {
        "smoke": {
            "block_sizes": [4096, 65536],
            "file_bytes": 1 * _MIB,
            "fsync_writes": 8,
            "direct_bytes": 256 * 1024,
            "broker_bytes": 2 * _MIB,
            "partitions": 8,
            "rounds": 2,
            "modes": ["buffered", "fsync", "direct"],
        },
        "quick": {
            "block_sizes": [4096, 65536, _MIB],
            "file_bytes": 192 * _MIB,
            "fsync_writes": 500,
            "direct_bytes": 32 * _MIB,
            "broker_bytes": 128 * _MIB,
            "partitions": 64,
            "rounds": 9,
            "modes": ["buffered", "fsync", "direct"],
        },
        "full": {
            "block_sizes": [4096, 16384, 65536, 262144, _MIB],
            "file_bytes": 256 * _MIB,
            "fsync_writes": 1000,
            "direct_bytes": 64 * _MIB,
            "broker_bytes": 512 * _MIB,
            "partitions": 64,
            "rounds": 9,
            "modes": ["buffered", "fsync", "direct"],
        },
    }
    metrics = (
        Metric("mb_per_s", "MB/s", "higher", "bytes written / time, fsyncs included"),
        Metric("iops", "writes/s", "higher", "write calls (or produce requests) per second"),
        Metric("p99_write_us", "µs", "lower", "99th percentile of one write call or request"),
    )
    charts = (
        SweepChart(
            "MB/s vs block size",
            "block",
            ("mb_per_s",),
            xlabel="block size (bytes)",
            x_is_bytes=True,
            panel_by="mode",
        ),
    )

    def variants(self, params: Mapping[str, Any]) -> list[Variant]:
        variants = [
            Variant(
                f"{pattern}-{mode}-{size_label(size)}",
                {"pattern": pattern, "mode": mode, "block": size},
            )
            for mode in params["modes"]
            for size in params["block_sizes"]
            for pattern in ("sequential", "random")
        ]
        if params["broker_bytes"]:
            variants += [
                Variant("broker-1-partition", {"partitions": 1}),
                Variant(
                    f"broker-{params['partitions']}-partitions",
                    {"partitions": params["partitions"]},
                ),
            ]
        return variants

    def contrasts(self, params: Mapping[str, Any]) -> list[Contrast]:
        contrasts = [
            Contrast(
                f"seq-vs-random-{mode}-{size_label(size)}",
                "mb_per_s",
                f"sequential-{mode}-{size_label(size)}",
                f"random-{mode}-{size_label(size)}",
                f"sequential/random MB/s, {mode} {size_label(size)}"
                + (" (the page cache absorbs the order)" if mode == "buffered" else ""),
            )
            for mode in params["modes"]
            for size in params["block_sizes"]
        ]
        small = size_label(params["block_sizes"][0])
        contrasts.append(
            Contrast(
                f"buffered-vs-fsync-{small}",
                "mb_per_s",
                f"sequential-buffered-{small}",
                f"sequential-fsync-{small}",
                f"buffered/fsync-per-write MB/s, sequential {small}",
            )
        )
        if params["broker_bytes"]:
            contrasts.append(
                Contrast(
                    "one-vs-many-partitions",
                    "mb_per_s",
                    "broker-1-partition",
                    f"broker-{params['partitions']}-partitions",
                    f"1 partition/{params['partitions']} partitions MB/s through the broker",
                )
            )
        return contrasts

    def claim_checks(self, params: Mapping[str, Any]) -> list[ClaimCheck]:
        small = size_label(params["block_sizes"][0])
        checks = [
            # "basically memory writes": orders of magnitude over forcing each write to disk
            ClaimCheck("page-cache-write", f"buffered-vs-fsync-{small}", 10.0),
        ]
        # seq-write is about the disk, so it is decided on writes that reach the device:
        # O_DIRECT where the filesystem allows it, else an fsync after every write. Buffered
        # writes, which the page cache absorbs in any order, stay a contrast of their own.
        # The threshold is the popular restatement, 12x (the original 6000x was a 2007 RAID-5
        # of disks with heads).
        device_mode = next((m for m in ("direct", "fsync") if m in params["modes"]), None)
        if device_mode is not None:
            checks.insert(0, ClaimCheck("seq-write", f"seq-vs-random-{device_mode}-{small}", 12.0))
        return checks

    def cluster_writes(self, params: Mapping[str, Any]) -> list[TopicWrite]:
        if not params["broker_bytes"]:
            return []
        per_topic = params["broker_bytes"] * (params["rounds"] + 1)  # the warm-up too
        return [
            TopicWrite(_topic(partitions), partitions, per_topic)
            for partitions in (1, params["partitions"])
        ]

    # -- setup ----------------------------------------------------------------------------------
    def setup(self, ctx: RunContext) -> None:
        params = ctx.params
        path = os.path.join(ctx.work_dir, "disk-write-pattern.data")
        size = max(
            params["file_bytes"],
            params["direct_bytes"],
            params["fsync_writes"] * max(params["block_sizes"]),
        )
        block = bytes(random.Random(1).randbytes(_MIB))
        with open(path, "wb") as f:  # written once: later writes overwrite allocated blocks
            for _ in range(0, size, _MIB):
                f.write(block)
            f.flush()
            os.fsync(f.fileno())
        ctx.state["path"] = path
        ctx.watched.append(path)
        if "direct" in params["modes"] and not _direct_io_supported(path):
            params["modes"] = [m for m in params["modes"] if m != "direct"]
            ctx.notes.append("O_DIRECT refused by this filesystem: direct variants left out")
        ctx.state["producer"] = None
        if params["broker_bytes"]:
            if ctx.bootstrap is None:
                raise Skip("no broker to produce to")
            ctx.state["producer"] = BatchProducer(ctx.bootstrap)
            for variant in self.variants(params)[-2:]:
                partitions = variant.params["partitions"]
                ctx.state["producer"].create_topic(ctx.topic(_topic(partitions)), partitions)

    def teardown(self, ctx: RunContext) -> None:
        if ctx.state.get("producer") is not None:
            ctx.state["producer"].close()
        path = ctx.state.get("path")
        if path and os.path.exists(path):
            os.unlink(path)

    # -- measure --------------------------------------------------------------------------------
    def measure(self, ctx: RunContext, variant: Variant) -> dict[str, float]:
        if "partitions" in variant.params:
            return self._measure_broker(ctx, variant.params["partitions"])
        mode, block, pattern = (
            variant.params["mode"],
            variant.params["block"],
            variant.params["pattern"],
        )
        total = {
            "buffered": ctx.params["file_bytes"],
            "fsync": ctx.params["fsync_writes"] * block,
            "direct": ctx.params["direct_bytes"],
        }[mode]
        count = max(total // block, 1)
        offsets = [i * block for i in range(count)]
        if pattern == "random":
            random.Random(count).shuffle(offsets)
        return _write(ctx.state["path"], mode, block, offsets)

    def _measure_broker(self, ctx: RunContext, partitions: int) -> dict[str, float]:
        producer: BatchProducer = ctx.state["producer"]
        topic = ctx.topic(_topic(partitions))
        stats = producer.produce(topic, partitions, ctx.params["broker_bytes"])
        return {
            "mb_per_s": stats.bytes / stats.seconds / 1e6,
            "iops": stats.requests / stats.seconds,
            "p99_write_us": stats.p99_latency_us,
        }


def _topic(partitions: int) -> str:
    return f"dwp-{partitions}"


def _direct_io_supported(path: str) -> bool:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_DIRECT)
    except OSError:
        return False
    os.close(fd)
    return True


def _write(path: str, mode: str, block: int, offsets: list[int]) -> dict[str, float]:
    flags = os.O_WRONLY | (os.O_DIRECT if mode == "direct" else 0)
    buffer = mmap.mmap(-1, block)  # page-aligned, as O_DIRECT requires
    buffer.write(random.Random(block).randbytes(block))
    histogram = HdrHistogram(1, 60_000_000_000, 3)
    fd = os.open(path, flags)
    try:
        started = time.perf_counter_ns()
        for offset in offsets:
            before = time.perf_counter_ns()
            os.pwrite(fd, buffer, offset)
            if mode == "fsync":
                os.fsync(fd)
            histogram.record_value(max(time.perf_counter_ns() - before, 1))
        if mode == "buffered":
            os.fsync(fd)  # the page cache absorbs the writes; the disk still has to take them
        elapsed = (time.perf_counter_ns() - started) / 1e9
    finally:
        os.close(fd)
        buffer.close()
    return {
        "mb_per_s": len(offsets) * block / elapsed / 1e6,
        "iops": len(offsets) / elapsed,
        "p99_write_us": histogram.get_value_at_percentile(99) / 1000,
    }
