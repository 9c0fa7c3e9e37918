"""batch-compression: what do batching and compression buy a real producer?

Real clients batch and compress by themselves; their knobs are the subject: batch.size x
linger.ms x compression.type, over three payloads (random bytes, JSON-like text, a repeated log
line; see scenarios/payloads.py), with two clients: confluent-kafka's Producer (librdkafka, C
threads; the default, whose variants carry no client in their names) and kafka-python's
KafkaProducer (pure Python: records appended and batches built in Python, compressed by the
codec libraries' C code, sent by one Python thread; variants named "kafka-python-..."), so that
the same batching can be seen in two implementations. Each measurement:

1. creates a fresh one-partition topic and a fresh producer of the variant's client with the
   variant's settings, and sends one warm-up record (connection, metadata) that is left out of
   everything below;
2. produces `records` values of 100-300 bytes (a client may have its own count, see `clients`)
   as fast as the client takes them, one delivery callback per record, then flush(): records/s
   and MB/s of values (before compression) over that interval; the process's CPU time over it
   (this process is the client: librdkafka's threads or kafka-python's sender thread compress
   and send, Python calls produce()/send() and runs the callbacks) per MB of values; the latency
   of every record from its produce()/send() call to its delivery report into an HdrHistogram
   (confluent-kafka: librdkafka's own clock, Message.latency(); kafka-python: perf_counter() at
   send() to the future's callback, run on the sender thread);
3. fetches the topic back raw (Fetch v11 from the partition leader, no decompression) and sums
   the sizes of the record batches stored, headers included: the bytes on the broker's disk.
   MB/s after compression is that over the same interval, the compression ratio is value bytes /
   stored bytes (below 1 when framing outweighs compression: small batches, random bytes), and
   records per batch shows the batching the client really did. Every record must be delivered
   without error and stored, or the measurement fails;
4. deletes the topic.

What the figures mean:
- The load is closed only by the client's own queue (queue.buffering.max.messages, 100,000 by
  default): records are offered as fast as Python can call produce(). When the broker takes them
  more slowly (small batches, gzip), the queue fills and latency is mostly the wait in it, so the
  percentiles are latency at saturation, and they grow with `records`; they are not the latency
  of a producer at a moderate, fixed rate.
- Python costs about 1 µs of CPU per record here (produce(), poll(), the delivery callback):
  most of the client's CPU when nothing is compressed. It bounds records/s below about a
  million and is part of every CPU-s/MB figure, so codec differences in CPU appear diluted:
  they are librdkafka's codecs on top of a (minimal) Python application's own work.
- Knobs not named stay at the clients' defaults, but for three set alike in both: acks=all
  (librdkafka's default; kafka-python's too), no idempotence (librdkafka's default; kafka-python
  3 enables it by default, so it is switched off) and a request size that a full batch always
  fits (librdkafka's batch.num.messages and message.max.bytes, kafka-python's max_request_size).
  The topics have one replica, so acks=all waits for the leader's append only, as acks=1 would.
- kafka-python 3 has no buffer.memory: its queue is unbounded, so send() never blocks and every
  record waits in memory when the sender falls behind; its latency percentiles are latency at
  saturation too, more so than librdkafka's (whose queue stops at 100,000 records). It does
  everything for a record in Python (send(), the record's bytes, its future and callback) on
  the one interpreter whose lock its sender thread shares, so its records/s is bounded an
  order of magnitude below librdkafka's: the client-vs-client contrasts show how much. Where a
  profile gives kafka-python fewer records (quick: 20,000 against 50,000), records/s is still
  a rate over the whole loop; what differs is the tail (the last batch's linger and round trip)
  spread over fewer records, a few per cent against ratios near 10, and the latency
  percentiles, which grow with `records` at saturation and do not compare across clients there.

The full grid is large (5 sizes x 5 lingers x 5 codecs x 3 payloads); a profile lists sweeps,
each the cross product of its own lists (the client among them), and runs their union. The
quick profile takes one factor at a time around JSON-like text, 64 KiB, linger.ms 5, and runs
kafka-python at the two ends of the batch.size sweep only (it is about 10x slower per record).

Works against any Kafka-protocol broker (kbench's engine or `--bootstrap`): it needs only
CreateTopics, DeleteTopics, Produce, Metadata and Fetch (topics are created, deleted and looked
up with confluent-kafka's AdminClient, so the scenario needs confluent-kafka for either client).
The claim "single-producer" (821,557 records/s, Kreps 2014) is deliberately not checked here:
that was a Java client on other hardware with 100-byte values and no delivery callbacks;
records/s here is reported as is.
"""

import contextlib
import gc
import itertools
import os
import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from hdrh.histogram import HdrHistogram

from engine.records import HEADER_SIZE, RecordBatch, read_batch_prefix
from scenarios import payloads
from scenarios.fetch_client import FetchClient
from scenarios.scenario import (
    ClaimCheck,
    Contrast,
    Metric,
    RunContext,
    Scenario,
    Skip,
    Variant,
)

_KIB = 1024
_MIB = 1 << 20
CODECS = ("none", "gzip", "snappy", "lz4", "zstd")
CONFLUENT = "confluent-kafka"  # the default client: its variants' names carry no client
KAFKA_PYTHON = "kafka-python"
_ACKS = "all"  # both clients alike: librdkafka's default, and kafka-python's

# where the contrasts are taken: the other knobs held at these values (the client's batching
# is taken for every client, the rest for the default client)
_BATCHING_AT = {"payload": "json", "compression.type": "lz4", "linger.ms": 5}
_LINGER_AT = {
    "client": CONFLUENT,
    "payload": "json",
    "compression.type": "none",
    "batch.size": 64 * _KIB,
}
_CODECS_AT = {"client": CONFLUENT, "payload": "json", "batch.size": 64 * _KIB, "linger.ms": 5}
_PAYLOADS_AT = {
    "client": CONFLUENT,
    "compression.type": "zstd",
    "batch.size": 64 * _KIB,
    "linger.ms": 5,
}
_PAYLOAD_LABELS = {"json": "JSON-like", "random": "random bytes", "repetitive": "repetitive"}


def _size_label(size: int) -> str:
    return f"{size // _MIB} MiB" if size >= _MIB else f"{size // _KIB} KiB"


def _variant_name(
    payload: str, codec: str, batch_size: int, linger_ms: int, client: str = CONFLUENT
) -> str:
    prefix = "" if client == CONFLUENT else f"{client}-"
    size = _size_label(batch_size).replace(" ", "")
    return f"{prefix}{payload}-{codec}-{size}-linger{linger_ms}"


def _clients(params: Mapping[str, Any]) -> Mapping[str, Mapping[str, Any]]:
    """The clients the profile runs, each with its own settings (confluent-kafka alone when
    the profile names none)."""
    return params.get("clients", {CONFLUENT: {}})


def _records(params: Mapping[str, Any], client: str) -> int:
    return _clients(params)[client].get("records", params["records"])


def _grid(params: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The union of the profile's sweeps, in order, each combination once; a sweep's clients
    that the profile does not run (or setup left out) are left out."""
    clients = _clients(params)
    combos: dict[str, dict[str, Any]] = {}
    for sweep in params["sweeps"]:
        for client, payload, codec, size, linger in itertools.product(
            sweep.get("client", [CONFLUENT]),
            sweep["payload"],
            sweep["compression.type"],
            sweep["batch.size"],
            sweep["linger.ms"],
        ):
            if client not in clients:
                continue
            name = _variant_name(payload, codec, size, linger, client)
            combos.setdefault(
                name,
                {
                    "client": client,
                    "payload": payload,
                    "compression.type": codec,
                    "batch.size": size,
                    "linger.ms": linger,
                },
            )
    return [{"name": name, **combo} for name, combo in combos.items()]


def _matching(params: Mapping[str, Any], fixed: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [c for c in _grid(params) if all(c[k] == v for k, v in fixed.items())]


def _sweep(
    name: str,
    payload: list[str],
    codecs: list[str],
    sizes: list[int],
    lingers: list[int],
    clients: Sequence[str] = (CONFLUENT,),
) -> dict[str, Any]:
    return {
        "name": name,
        "client": list(clients),
        "payload": payload,
        "compression.type": codecs,
        "batch.size": sizes,
        "linger.ms": lingers,
    }


class BatchCompression(Scenario):
    name = "batch-compression"
    title = "Producer batching and compression"
    question = (
        "What do batch.size, linger.ms and compression.type buy a real producer (librdkafka, "
        "and kafka-python for comparison): throughput, bytes on disk, CPU and latency?"
    )
    parameters = {
        "records": "records produced per measurement (values of value_bytes, one partition)",
        "value_bytes": "[low, high]: value sizes, drawn uniformly per record",
        "sweeps": "lists of clients, payloads, compression.type, batch.size (bytes) and linger.ms "
        "(ms); each sweep runs the cross product of its lists, the profile the union of its sweeps",
        "clients": "the clients run (confluent-kafka, kafka-python), each with the settings it "
        "has of its own: records (kafka-python is ~10x slower per record); a sweep's clients not "
        "named here are not run",
        "rounds": "interleaved repeats of every variant",
    }
    profiles = {
        "smoke": {
            "records": 2000,
            "value_bytes": [100, 300],
            "sweeps": [
                _sweep("batch.size", ["json"], ["lz4"], [_KIB, 64 * _KIB], [5]),
                _sweep("linger.ms", ["json"], ["none"], [64 * _KIB], [0, 5]),
                _sweep("codecs", ["json"], list(CODECS), [64 * _KIB], [5]),
                _sweep("payloads", ["random", "repetitive"], ["zstd", "lz4"], [64 * _KIB], [5]),
                _sweep(
                    "kafka-python batch.size",
                    ["json"],
                    ["lz4"],
                    [_KIB, 64 * _KIB],
                    [5],
                    clients=[KAFKA_PYTHON],
                ),
                _sweep(
                    "kafka-python payloads",
                    ["random", "repetitive"],
                    ["zstd"],
                    [64 * _KIB],
                    [5],
                    clients=[KAFKA_PYTHON],
                ),
            ],
            "clients": {CONFLUENT: {}, KAFKA_PYTHON: {}},
            "rounds": 2,
        },
        "quick": {
            "records": 50_000,
            "value_bytes": [100, 300],
            "sweeps": [
                _sweep("batch.size", ["json"], ["lz4"], [_KIB, 64 * _KIB, _MIB], [5]),
                _sweep("codecs", ["json"], list(CODECS), [64 * _KIB], [5]),
                _sweep("linger.ms", ["json"], ["none"], [64 * _KIB], [0, 5, 50]),
                _sweep("payloads", ["random", "repetitive"], ["zstd"], [64 * _KIB], [5]),
                _sweep(
                    "kafka-python batch.size",
                    ["json"],
                    ["lz4"],
                    [_KIB, _MIB],
                    [5],
                    clients=[KAFKA_PYTHON],
                ),
            ],
            # kafka-python takes ~2.3 s for 20,000 records at 1 KiB batches: fewer records keep
            # the profile near a minute; records/s is a rate, so the clients still compare
            "clients": {CONFLUENT: {}, KAFKA_PYTHON: {"records": 20_000}},
            "rounds": 9,  # 9, not 6-8: the median's 95 % interval drops the extreme rounds
        },
        "full": {
            "records": 100_000,
            "value_bytes": [100, 300],
            "sweeps": [
                _sweep(
                    "batch.size x codec x payload",
                    list(payloads.PAYLOADS),
                    list(CODECS),
                    [_KIB, 16 * _KIB, 64 * _KIB, 256 * _KIB, _MIB],
                    [5],
                ),
                _sweep(
                    "linger.ms x batch.size",
                    ["json"],
                    ["none", "lz4"],
                    [16 * _KIB, 64 * _KIB, _MIB],
                    [0, 1, 5, 20, 50],
                ),
                _sweep(
                    "kafka-python batch.size",
                    ["json"],
                    ["lz4"],
                    [_KIB, 16 * _KIB, 64 * _KIB, 256 * _KIB, _MIB],
                    [5],
                    clients=[KAFKA_PYTHON],
                ),
            ],
            "clients": {CONFLUENT: {}, KAFKA_PYTHON: {}},
            "rounds": 7,
        },
    }
    metrics = (
        Metric("records_per_s", "records/s", "higher", "records / (first produce() to flush())"),
        Metric("mb_per_s", "MB/s", "higher", "value bytes (before compression) per second"),
        Metric(
            "stored_mb_per_s",
            "MB/s",
            "higher",
            "record-batch bytes stored by the broker (after compression, headers included) "
            "per second of producing",
        ),
        Metric(
            "compression_ratio",
            "x",
            "higher",
            "value bytes / stored batch bytes; below 1 when batch and record framing outweigh "
            "what the codec saves",
        ),
        Metric(
            "cpu_s_per_mb",
            "CPU-s/MB",
            "lower",
            "CPU seconds of the client process (librdkafka's threads or kafka-python's sender "
            "thread, and the Python loop with its callbacks) per MB of values",
        ),
        Metric("records_per_batch", "records", "higher", "mean records per stored batch"),
        Metric("p50_latency_us", "µs", "lower", "median produce()/send() to delivery report"),
        Metric(
            "p99_latency_us", "µs", "lower", "99th percentile produce()/send() to delivery report"
        ),
        Metric(
            "p999_latency_us",
            "µs",
            "lower",
            "99.9th percentile produce()/send() to delivery report",
        ),
    )

    def variants(self, params: Mapping[str, Any]) -> list[Variant]:
        return [
            Variant(c["name"], {k: v for k, v in c.items() if k != "name"}) for c in _grid(params)
        ]

    def contrasts(self, params: Mapping[str, Any]) -> list[Contrast]:
        contrasts: list[Contrast] = []
        names = {c["name"] for c in _grid(params)}

        def add(name: str, metric: str, numerator: str, denominator: str, label: str) -> None:
            if numerator in names and denominator in names and numerator != denominator:
                contrasts.append(Contrast(name, metric, numerator, denominator, label))

        # batching: the largest batch.size against the smallest, codec and linger held
        at = _BATCHING_AT
        sizes = sorted({c["batch.size"] for c in _matching(params, {**at, "client": CONFLUENT})})
        if len(sizes) >= 2:
            big, small = (
                _variant_name(at["payload"], at["compression.type"], s, at["linger.ms"])
                for s in (sizes[-1], sizes[0])
            )
            held = f"{at['compression.type']}, linger.ms {at['linger.ms']}, JSON-like"
            pair = f"batch.size {_size_label(sizes[-1])}/{_size_label(sizes[0])}"
            add("batching", "records_per_s", big, small, f"records/s, {pair} ({held})")
            add(
                "batching-cpu",
                "cpu_s_per_mb",
                small,
                big,
                f"CPU-s/MB, batch.size {_size_label(sizes[0])}/{_size_label(sizes[-1])} ({held})",
            )
            add(
                "batching-latency-p99",
                "p99_latency_us",
                big,
                small,
                f"p99 latency, {pair} ({held})",
            )

        # linger: 5 ms against 0 (Kafka 4.0's new default against the old), then 50 against 5
        at = _LINGER_AT
        lingers = {c["linger.ms"] for c in _matching(params, at)}
        name = {
            ms: _variant_name(at["payload"], at["compression.type"], at["batch.size"], ms)
            for ms in lingers
        }
        held = f"{at['compression.type']}, batch.size {_size_label(at['batch.size'])}, JSON-like"
        if {0, 5} <= lingers:
            add("linger", "records_per_s", name[5], name[0], f"records/s, linger.ms 5/0 ({held})")
            add(
                "linger-batch",
                "records_per_batch",
                name[5],
                name[0],
                f"records per batch, linger.ms 5/0 ({held})",
            )
            add(
                "linger-latency-p99",
                "p99_latency_us",
                name[5],
                name[0],
                f"p99 latency, linger.ms 5/0 ({held})",
            )
        if {5, 50} <= lingers:
            add(
                "linger-50",
                "records_per_s",
                name[50],
                name[5],
                f"records/s, linger.ms 50/5 ({held})",
            )

        # compression-tradeoff: every codec against lz4 (the claim's "lowest CPU"), and what
        # compression buys in throughput against none
        at = _CODECS_AT
        codecs = {c["compression.type"] for c in _matching(params, at)}
        name = {
            codec: _variant_name(at["payload"], codec, at["batch.size"], at["linger.ms"])
            for codec in codecs
        }
        held = f"batch.size {_size_label(at['batch.size'])}, linger.ms {at['linger.ms']}, JSON-like"
        if "lz4" in codecs:
            for codec in ("zstd", "gzip", "snappy"):
                if codec in codecs:
                    add(
                        f"ratio-{codec}-vs-lz4",
                        "compression_ratio",
                        name[codec],
                        name["lz4"],
                        f"compression ratio, {codec}/lz4 ({held})",
                    )
                    add(
                        f"cpu-{codec}-vs-lz4",
                        "cpu_s_per_mb",
                        name[codec],
                        name["lz4"],
                        f"CPU-s/MB, {codec}/lz4 ({held})",
                    )
        if "none" in codecs:
            for codec in ("lz4", "zstd"):
                if codec in codecs:
                    add(
                        f"throughput-{codec}-vs-none",
                        "records_per_s",
                        name[codec],
                        name["none"],
                        f"records/s, {codec}/none ({held})",
                    )

        # payload: how much the data itself decides (zstd, 64 KiB, linger.ms 5)
        at = _PAYLOADS_AT
        kinds = {c["payload"] for c in _matching(params, at)}
        name = {
            kind: _variant_name(kind, at["compression.type"], at["batch.size"], at["linger.ms"])
            for kind in kinds
        }
        held = (
            f"{at['compression.type']}, batch.size {_size_label(at['batch.size'])}, "
            f"linger.ms {at['linger.ms']}"
        )
        if "random" in kinds:
            for kind in ("json", "repetitive"):
                if kind in kinds:
                    add(
                        f"ratio-{kind}-vs-random",
                        "compression_ratio",
                        name[kind],
                        name["random"],
                        f"compression ratio, {kind}/random payload ({held})",
                    )

        # the other clients: the same batching effect, then the default client against each at
        # the same settings
        at = _BATCHING_AT
        for client in (c for c in _clients(params) if c != CONFLUENT):
            sizes = sorted({c["batch.size"] for c in _matching(params, {**at, "client": client})})
            if len(sizes) >= 2:
                big, small = (
                    _variant_name(at["payload"], at["compression.type"], s, at["linger.ms"], client)
                    for s in (sizes[-1], sizes[0])
                )
                add(
                    f"{client}-batching",
                    "records_per_s",
                    big,
                    small,
                    f"records/s, {client}, batch.size {_size_label(sizes[-1])}/"
                    f"{_size_label(sizes[0])} ({at['compression.type']}, linger.ms "
                    f"{at['linger.ms']}, JSON-like)",
                )
            for combo in _matching(params, {"client": client}):
                settings = (
                    combo["payload"],
                    combo["compression.type"],
                    combo["batch.size"],
                    combo["linger.ms"],
                )
                ours = _variant_name(*settings)
                add(
                    f"{CONFLUENT}-vs-{combo['name']}",
                    "records_per_s",
                    ours,
                    combo["name"],
                    f"records/s, {CONFLUENT}/{client} ({combo['compression.type']}, batch.size "
                    f"{_size_label(combo['batch.size'])}, linger.ms {combo['linger.ms']}, "
                    f"{_PAYLOAD_LABELS[combo['payload']]})",
                )
        return contrasts

    def claim_checks(self, params: Mapping[str, Any]) -> list[ClaimCheck]:
        names = {c.name for c in self.contrasts(params)}
        checks = [
            # "100k -> 500k msgs/s with batching": 5x more records/s from the largest batches
            # than from the smallest, the rest held
            ClaimCheck("batching", "batching", 5.0),
            # KIP-1030: linger.ms 5 gives "similar or better" throughput than 0, so the claim
            # holds when the whole interval of records/s 5/0 is at or above 1.0 (no gain needed,
            # only no loss)
            ClaimCheck("linger", "linger", 1.0),
            # compression-tradeoff is an ordering, not a magnitude: where it names two codecs'
            # order, 1.0 is the threshold that follows. zstd has "the highest ratio" (so at least
            # lz4's), and lz4 "the lowest CPU", gzip "high" (so gzip costs at least lz4's CPU per
            # MB). The rest of the ordering (snappy, gzip's ratio) is recorded as contrasts only.
            ClaimCheck("compression-tradeoff", "ratio-zstd-vs-lz4", 1.0),
            ClaimCheck("compression-tradeoff", "cpu-gzip-vs-lz4", 1.0),
            # single-producer (821,557 records/s, Java client, 2014): deliberately not checked
        ]
        return [c for c in checks if c.contrast in names]

    # -- setup ----------------------------------------------------------------------------------
    def setup(self, ctx: RunContext) -> None:
        if ctx.bootstrap is None:
            raise Skip("no broker to produce to")
        try:
            from confluent_kafka.admin import AdminClient
        except ImportError as error:  # a dev dependency, not a core one
            raise Skip(
                "needs confluent-kafka (the default client, and the admin client for either): "
                f"{error}"
            ) from error
        ctx.params.setdefault("clients", {CONFLUENT: {}})
        unknown = set(_clients(ctx.params)) - set(DRIVERS)
        if unknown:
            raise ValueError(f"unknown clients {sorted(unknown)}; choose from {sorted(DRIVERS)}")
        for client in list(_clients(ctx.params)):
            reason = DRIVERS[client].unavailable()
            if reason is not None:
                del ctx.params["clients"][client]
                ctx.notes.append(f"{client} variants left out: {reason}")
        if not _grid(ctx.params):
            raise Skip("no variant left to run: " + "; ".join(ctx.notes))
        low, high = ctx.params["value_bytes"]
        largest = max(c["batch.size"] for c in _grid(ctx.params))
        # enough values that the largest batch never repeats one (see payloads.py)
        count = max(payloads.DEFAULT_COUNT, 2 * largest // low + 1)
        ctx.state["values"] = {
            kind: payloads.values(kind, count, low, high)
            for kind in sorted({c["payload"] for c in _grid(ctx.params)})
        }
        ctx.state["admin"] = AdminClient({"bootstrap.servers": ctx.bootstrap})
        ctx.state["topics"] = 0
        ctx.state["deliveries"] = []  # per measurement: what was produced, delivered and stored
        probe = f"kbench-bc-{os.getpid()}-probe"
        try:  # every measurement creates and deletes a topic: find out now if that works
            _create_topic(ctx, probe, timeout_s=15)
            _delete_topic(ctx, probe, timeout_s=15)
        except Exception as error:
            ctx.state.pop("admin")
            raise Skip(
                f"the broker at {ctx.bootstrap} did not create and delete a topic ({error!r}): "
                "each measurement needs a fresh topic (CreateTopics, DeleteTopics)"
            ) from error

    def teardown(self, ctx: RunContext) -> None:
        ctx.state.pop("admin", None)  # the client's threads end with it
        ctx.state.pop("values", None)

    # -- measure --------------------------------------------------------------------------------
    def measure(self, ctx: RunContext, variant: Variant) -> dict[str, float]:
        ctx.state["topics"] += 1
        topic = f"kbench-bc-{os.getpid()}-{ctx.state['topics']}-{variant.name}"
        _create_topic(ctx, topic)
        try:
            return self._produce_and_read_back(ctx, variant, topic)
        finally:
            _delete_topic(ctx, topic)

    def _produce_and_read_back(
        self, ctx: RunContext, variant: Variant, topic: str
    ) -> dict[str, float]:
        client = variant.params["client"]
        count = _records(ctx.params, client)
        pool = ctx.state["values"][variant.params["payload"]]
        values = list(itertools.islice(itertools.cycle(pool), count))
        driver = DRIVERS[client](
            ctx.bootstrap,
            batch_size=variant.params["batch.size"],
            linger_ms=variant.params["linger.ms"],
            codec=variant.params["compression.type"],
        )
        try:
            driver.warm_up(topic, pool[0])  # connection, metadata; offset 0
            run = driver.produce(topic, values)
        finally:
            driver.close()
        value_bytes = sum(map(len, values))
        stored_bytes, batches, stored_records = _stored(ctx, topic, first_offset=1, records=count)
        ctx.state["deliveries"].append(
            {
                "variant": variant.name,
                "client": client,
                "produced": count,
                "delivered": run.delivered,
                "errors": len(run.errors),
                "stored": stored_records,
                "batches": batches,
            }
        )
        if (
            run.left
            or run.errors
            or run.delivered != count
            or stored_records != count
            or not run.latencies_s
        ):
            raise RuntimeError(
                f"{variant.name}: {count} produced, {run.delivered} delivered, {run.left} left "
                f"in the queue, {len(run.errors)} errors ({run.errors[:3]}), "
                f"{stored_records} stored"
            )
        histogram = _histogram_us(run.latencies_s)
        return {
            "records_per_s": count / run.seconds,
            "mb_per_s": value_bytes / run.seconds / 1e6,
            "stored_mb_per_s": stored_bytes / run.seconds / 1e6,
            "compression_ratio": value_bytes / stored_bytes,
            "cpu_s_per_mb": max(run.cpu_s, 1e-6) / (value_bytes / 1e6),
            "records_per_batch": stored_records / batches,
            "p50_latency_us": float(histogram.get_value_at_percentile(50)),
            "p99_latency_us": float(histogram.get_value_at_percentile(99)),
            "p999_latency_us": float(histogram.get_value_at_percentile(99.9)),
        }


# -- the clients --------------------------------------------------------------------------------
@dataclass
class ProduceRun:
    """What one timed produce loop did."""

    seconds: float  # first produce()/send() to the end of flush()
    cpu_s: float  # CPU time of this process (every thread) over the same interval
    delivered: int
    left: int  # records neither delivered nor failed when flush() gave up
    errors: list[str] = field(default_factory=list)
    latencies_s: list[float] = field(default_factory=list)  # produce()/send() to its report


class ProducerDriver(ABC):
    """One real client's producer with a variant's batch.size, linger.ms and compression.type.

    warm_up() sends one record and waits for it; produce() times sending `values` as fast as the
    client takes them, one delivery callback per record, and flush(); close() ends the client.
    A subclass sends (_send_all) and flushes (_flush); delivery callbacks append to
    self.latencies and self.errors (list.append is atomic, so a callback may run on the
    client's own thread)."""

    client: ClassVar[str]
    flush_timeout_s = 120

    def __init__(self, bootstrap: str, batch_size: int, linger_ms: int, codec: str) -> None:
        self.latencies: list[float] = []  # seconds, one per delivered record that has one
        self.errors: list[str] = []

    @classmethod
    def unavailable(cls) -> str | None:
        """Why the client cannot run here, or None."""
        return None

    @abstractmethod
    def warm_up(self, topic: str, value: bytes) -> None: ...

    @abstractmethod
    def _send_all(self, topic: str, values: list[bytes]) -> None: ...

    @abstractmethod
    def _flush(self) -> int:
        """Flush; the records still pending afterwards."""

    def _delivered(self) -> int:
        return len(self.latencies)

    def close(self) -> None:  # noqa: B027 - optional: a client with nothing to close
        pass

    def produce(self, topic: str, values: list[bytes]) -> ProduceRun:
        self.latencies.clear()
        self.errors.clear()
        gc.disable()  # as timeit does: no collector pauses inside the timed loop
        try:
            cpu_before = time.process_time()  # all threads of this process, the client's too
            started = time.perf_counter()
            self._send_all(topic, values)
            left = self._flush()
            seconds = time.perf_counter() - started
            cpu_s = time.process_time() - cpu_before
        finally:
            gc.enable()
        return ProduceRun(
            seconds, cpu_s, self._delivered(), left, list(self.errors), list(self.latencies)
        )


class ConfluentKafkaDriver(ProducerDriver):
    """confluent-kafka's Producer: librdkafka batches, compresses and sends on its own threads;
    delivery reports are served by poll() in this thread, latency is librdkafka's own clock."""

    client = CONFLUENT

    def __init__(self, bootstrap: str, batch_size: int, linger_ms: int, codec: str) -> None:
        from confluent_kafka import Producer

        super().__init__(bootstrap, batch_size, linger_ms, codec)
        self.delivered = 0
        self.producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "batch.size": batch_size,
                "linger.ms": linger_ms,
                "compression.type": codec,
                "acks": _ACKS,  # its default
                # librdkafka also caps a batch at 10,000 records and message.max.bytes
                # (1,000,000); lifted so that batch.size alone decides, as in Kafka's client
                "batch.num.messages": 1_000_000,
                "message.max.bytes": max(1_000_000, batch_size),
                "on_delivery": self._on_delivery,
            }
        )

    def _on_delivery(self, error, message) -> None:
        if error is not None:
            self.errors.append(str(error))
            return
        self.delivered += 1
        latency = message.latency()  # librdkafka's clock: produce() to this report
        if latency is not None:
            self.latencies.append(latency)

    def _delivered(self) -> int:
        return self.delivered

    def warm_up(self, topic: str, value: bytes) -> None:
        self.producer.produce(topic, value)
        if self.producer.flush(30) or self.errors:
            raise RuntimeError(f"{self.client}: warm-up record not delivered {self.errors}")

    def produce(self, topic: str, values: list[bytes]) -> ProduceRun:
        self.delivered = 0
        return super().produce(topic, values)

    def _send_all(self, topic: str, values: list[bytes]) -> None:
        produce, poll = self.producer.produce, self.producer.poll
        for value in values:
            while True:
                try:
                    produce(topic, value)
                    break
                except BufferError:  # the client's queue is full: serve it, then retry
                    poll(0.005)
            poll(0)  # serve delivery reports as they come

    def _flush(self) -> int:
        return self.producer.flush(self.flush_timeout_s)

    def close(self) -> None:
        del self.producer  # its threads end with it


class KafkaPythonDriver(ProducerDriver):
    """kafka-python's KafkaProducer: send() appends the record to a batch in Python and returns
    a future; one sender thread builds, compresses and sends the batches and completes the
    futures, running their callbacks. Latency is perf_counter() from just before send() to the
    callback."""

    client = KAFKA_PYTHON

    def __init__(self, bootstrap: str, batch_size: int, linger_ms: int, codec: str) -> None:
        from kafka import KafkaProducer

        super().__init__(bootstrap, batch_size, linger_ms, codec)
        self.producer = KafkaProducer(
            bootstrap_servers=bootstrap,
            client_id="kbench-batch-compression",
            batch_size=batch_size,
            linger_ms=linger_ms,
            compression_type=None if codec == "none" else codec,
            acks=_ACKS,
            enable_idempotence=False,  # on by default in kafka-python 3; off in librdkafka
            # a request holds at least one full batch (default 1 MiB); kafka-python 3 has no
            # buffer_memory: its queue is unbounded
            max_request_size=max(_MIB, 2 * batch_size),
        )
        self.sent = 0

    @classmethod
    def unavailable(cls) -> str | None:
        try:
            from kafka import KafkaProducer
        except ImportError as error:
            return f"kafka-python cannot be imported: {error}"
        if "enable_idempotence" not in KafkaProducer.DEFAULT_CONFIG:
            return "kafka-python is older than 3.0 (no enable_idempotence)"
        return None

    def warm_up(self, topic: str, value: bytes) -> None:
        self.producer.send(topic, value).get(timeout=30)

    def _send_all(self, topic: str, values: list[bytes]) -> None:
        send, clock = self.producer.send, time.perf_counter
        latencies, errors = self.latencies, self.errors

        def delivered(sent: float, _metadata) -> None:
            latencies.append(clock() - sent)

        def failed(error: Exception) -> None:
            errors.append(repr(error))

        for value in values:
            sent = clock()
            send(topic, value).add_callback(delivered, sent).add_errback(failed)
        self.sent = len(values)

    def _flush(self) -> int:
        from kafka.errors import KafkaTimeoutError

        with contextlib.suppress(KafkaTimeoutError):  # what is left is counted below
            self.producer.flush(self.flush_timeout_s)
        return self.sent - len(self.latencies) - len(self.errors)

    def close(self) -> None:
        self.producer.close(timeout=30)


DRIVERS: dict[str, type[ProducerDriver]] = {
    driver.client: driver for driver in (ConfluentKafkaDriver, KafkaPythonDriver)
}


def _histogram_us(latencies_s: list[float]) -> HdrHistogram:
    """An HdrHistogram (3 significant digits) of latencies given in seconds, in µs.

    hdrh records one value in ~4 µs of Python; each value is first cut to the histogram's own
    resolution (its top 11 bits: what the histogram keeps anyway) and equal ones recorded once
    with their count, which gives the same histogram a hundred times faster."""
    histogram = HdrHistogram(1, 600_000_000, 3)  # 1 µs to 10 min
    counts: Counter[int] = Counter()
    for latency in latencies_s:
        value = max(round(latency * 1e6), 1)
        shift = value.bit_length() - 11
        counts[value if shift <= 0 else (value >> shift) << shift] += 1
    for value, count in counts.items():
        histogram.record_value(value, count)
    return histogram


def _create_topic(ctx: RunContext, topic: str, timeout_s: float = 60) -> None:
    from confluent_kafka.admin import NewTopic

    new = NewTopic(topic, num_partitions=1, replication_factor=1)
    for future in ctx.state["admin"].create_topics([new], request_timeout=timeout_s).values():
        future.result(timeout=timeout_s)


def _delete_topic(ctx: RunContext, topic: str, timeout_s: float = 60) -> None:
    for future in ctx.state["admin"].delete_topics([topic], request_timeout=timeout_s).values():
        future.result(timeout=timeout_s)


# -- reading back what was stored ---------------------------------------------------------------
_FETCH_MAX_BYTES = 64 * _MIB


def _stored(ctx: RunContext, topic: str, first_offset: int, records: int) -> tuple[int, int, int]:
    """(bytes, batches, records) of the record batches stored in partition 0 of topic holding
    offsets first_offset .. first_offset + records - 1, read raw from the partition leader."""
    metadata = ctx.state["admin"].list_topics(topic, timeout=30)
    leader = metadata.brokers[metadata.topics[topic].partitions[0].leader]
    end = first_offset + records
    offset, total, batches, stored = first_offset, 0, 0, 0
    deadline = time.monotonic() + 60
    with FetchClient(f"{leader.host}:{leader.port}", "kbench-batch-compression") as client:
        while offset < end:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{topic}: only offsets up to {offset} could be fetched")
            _, data = client.fetch(topic, 0, offset, _FETCH_MAX_BYTES, max_wait_ms=100)
            position = 0
            while position + HEADER_SIZE <= len(data):
                _, size = read_batch_prefix(data, position)
                if position + size > len(data):
                    break  # cut short at the response's end: the next fetch returns it whole
                batch = RecordBatch(data, position)
                position += size
                if batch.last_offset < first_offset:  # the warm-up record's batch
                    continue
                total += size
                batches += 1
                stored += batch.record_count
                offset = batch.next_offset
    return total, batches, stored
