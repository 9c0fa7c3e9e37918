"""batch-compression: what do batching and compression buy a real producer?

Real clients batch and compress by themselves; their knobs are the subject: batch.size x
linger.ms x compression.type, over three payloads (random bytes, JSON-like text, a repeated log
line; see scenarios/clients/payloads.py), with two clients (scenarios/clients/producers.py):
confluent-kafka's Producer (librdkafka, C threads; the default, whose variants carry no client
in their names) and kafka-python's KafkaProducer (pure Python: records appended and batches
built in Python, compressed by the codec libraries' C code, sent by one Python thread; variants
named "kafka-python-..."), so that the same batching can be seen in two implementations. Each
measurement:

1. creates a fresh one-partition topic (bc-<variant>-<n> behind the run's prefix) and a fresh
   producer of the variant's client with the variant's settings, and sends one warm-up record
   (connection, metadata) that is left out of everything below;
2. closed loop (most variants): produces `records` values of 100-300 bytes (a client may have
   its own count, see `clients`) as fast as the client takes them; open loop (variants named
   "-open<rate>", confluent-kafka only): offers record i at start + i/rate (`open_loop_s`
   seconds' worth), whatever the broker does. Either way one delivery callback per record, then
   flush(): records/s
   and MB/s of values (before compression) over that interval; the process's CPU time over it
   (this process is the client: librdkafka's threads or kafka-python's sender thread compress
   and send, Python calls produce()/send() and runs the callbacks) per MB of values; the latency
   of every record to its delivery report into an HdrHistogram: in closed loop from its
   produce()/send() call (confluent-kafka: librdkafka's own clock, Message.latency();
   kafka-python: perf_counter() at send() to the future's callback, run on the sender thread),
   in open loop from its intended send time (its lag behind the schedule + Message.latency(),
   so a stall counts in every record it held up: coordinated omission, see clients/loadgen.py), and
   the rate achieved: records over the span of their deliveries / the offered rate;
3. fetches the topic back raw (Fetch v11 from the partition leader, no decompression) and sums
   the sizes of the record batches stored, headers included: the bytes on the broker's disk.
   MB/s after compression is that over the same interval, the compression ratio is value bytes /
   stored bytes (below 1 when framing outweighs compression: small batches, random bytes), and
   records per batch shows the batching the client really did. Every record must be delivered
   without error and stored, or the measurement fails;
4. deletes the topic.

What the figures mean:
- In closed loop the load is closed only by the client's own queue
  (queue.buffering.max.messages, 100,000 by default): records are offered as fast as Python can
  call produce(). When the broker takes them more slowly (small batches, gzip), the queue fills
  and latency is mostly the wait in it, so those percentiles are saturation latency (so
  labelled), and they grow with `records`; they decide no claim.
- Latency is compared only in open loop, at a stated offered rate below saturation. An
  open-loop sample that delivered less than 95 % of the offered rate (achieved_fraction) is
  saturated: a claim check on it is inconclusive, with the reason (`undecided`). Closed loop
  hides what linger.ms 0 does under a steady load: with a full queue batches grow by
  themselves, while at a fixed rate each record goes out in a request of its own (about 1
  record per batch at 3,000 records/s here), and the engine saturates near 6,000 records/s.
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
  profile gives kafka-python fewer records (quick: 10,000 against 50,000), records/s is still
  a rate over the whole loop; what differs is the tail (the last batch's linger and round trip)
  spread over fewer records, a few per cent against ratios near 10, and the latency
  percentiles, which grow with `records` at saturation and do not compare across clients there.

The full grid is large (5 sizes x 5 lingers x 5 codecs x 3 payloads); a profile lists sweeps,
each the cross product of its own lists (the client and the offered rate among them), and runs
their union. The quick profile takes one factor at a time around JSON-like text, 64 KiB,
linger.ms 5, adds linger.ms 0 and 5 in open loop at 3,000 records/s, and runs kafka-python at
the two ends of the batch.size sweep only (it is about 10x slower per record).

Claims decided: batching (records/s, the largest batch.size over the smallest, >= 5x); linger
in two parts, both in open loop at the offered rate: bigger batches (records per batch 5/0 >=
1) and similar or lower latency (p99 0/5 >= 0.8); compression-tradeoff, one part for every
pair of codecs whose order it states (ratio: zstd > gzip > snappy, lz4; CPU-s/MB: gzip > zstd
> snappy > lz4), each the higher over the lower >= 1 at 64 KiB, linger.ms 5, JSON-like.

Works against any Kafka-protocol broker (kbench's engine or `--bootstrap`): it needs only
CreateTopics, DeleteTopics, Produce, Metadata and Fetch (topics are created, deleted and looked
up with confluent-kafka's AdminClient, a dependency of kbench, for either client).
The claim "single-producer" (821,557 records/s, Kreps 2014) is deliberately not checked here:
that was a Java client on other hardware with 100-byte values and no delivery callbacks;
records/s here is reported as is.
"""

import itertools
import time
from collections.abc import Mapping, Sequence
from typing import Any

from engine.records import HEADER_SIZE, RecordBatch, read_batch_prefix
from scenarios.clients import payloads
from scenarios.clients.fetch_client import FetchClient
from scenarios.clients.producers import CONFLUENT, DRIVERS, KAFKA_PYTHON, latency_histogram_us
from scenarios.clients.topics import TopicAdmin
from scenarios.harness.saturation import ACHIEVED_FRACTION, SATURATED_BELOW, saturation_reason
from scenarios.harness.scenario import (
    ClaimCheck,
    CodecScatter,
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

_KIB = 1024
_MIB = 1 << 20
CODECS = ("none", "gzip", "snappy", "lz4", "zstd")

# where the contrasts are taken: the other knobs held at these values (the client's batching
# is taken for every client, the rest for the default client); closed loop unless named
RATE = "offered_records_per_s"  # open loop: records offered per second; None: closed loop
_BATCHING_AT: dict[str, Any] = {
    "payload": "json",
    "compression.type": "lz4",
    "linger.ms": 5,
    RATE: None,
}
_LINGER_AT: dict[str, Any] = {
    "client": CONFLUENT,
    "payload": "json",
    "compression.type": "none",
    "batch.size": 64 * _KIB,
}
_CODECS_AT: dict[str, Any] = {
    "client": CONFLUENT,
    "payload": "json",
    "batch.size": 64 * _KIB,
    "linger.ms": 5,
    RATE: None,
}
_PAYLOADS_AT: dict[str, Any] = {
    "client": CONFLUENT,
    "compression.type": "zstd",
    "batch.size": 64 * _KIB,
    "linger.ms": 5,
    RATE: None,
}
# "similar" latency in the linger claim: p99(linger 0)/p99(linger 5) at or above this (see
# claim_checks)
LINGER_SIMILAR = 0.8

# compression-tradeoff's ordering: ratio zstd (highest) > gzip (high) > snappy, lz4 (medium);
# CPU gzip (high) > zstd (medium) > snappy (low) > lz4 (lowest); every ordered pair, higher first
_RATIO_ORDER = (
    ("zstd", "gzip"),
    ("zstd", "snappy"),
    ("zstd", "lz4"),
    ("gzip", "snappy"),
    ("gzip", "lz4"),
)
_CPU_ORDER = (
    ("gzip", "zstd"),
    ("gzip", "snappy"),
    ("gzip", "lz4"),
    ("zstd", "snappy"),
    ("zstd", "lz4"),
    ("snappy", "lz4"),
)
# the claim's statements, each tested on the pairs it orders (every pair once)
_ORDERING_PARTS = (
    ("zstd has the highest ratio", "ratio-zstd-vs-gzip"),
    ("zstd has the highest ratio", "ratio-zstd-vs-snappy"),
    ("zstd has the highest ratio", "ratio-zstd-vs-lz4"),
    ("gzip's ratio is high, above the medium snappy's and lz4's", "ratio-gzip-vs-snappy"),
    ("gzip's ratio is high, above the medium snappy's and lz4's", "ratio-gzip-vs-lz4"),
    ("lz4 has the lowest CPU", "cpu-snappy-vs-lz4"),
    ("lz4 has the lowest CPU", "cpu-zstd-vs-lz4"),
    ("lz4 has the lowest CPU", "cpu-gzip-vs-lz4"),
    ("snappy's CPU is low, below zstd's medium", "cpu-zstd-vs-snappy"),
    ("gzip's CPU is high, above snappy's and zstd's", "cpu-gzip-vs-snappy"),
    ("gzip's CPU is high, above snappy's and zstd's", "cpu-gzip-vs-zstd"),
)
_METRIC_WORDS = {
    "compression_ratio": "compression ratio",
    "library_cpu_s_per_mb": "client-library CPU-s/MB",
    "cpu": "client-library CPU-s/MB",
}
_PAYLOAD_LABELS = {"json": "JSON-like", "random": "random bytes", "repetitive": "repetitive"}


def _variant_name(
    payload: str,
    codec: str,
    batch_size: int,
    linger_ms: int,
    client: str = CONFLUENT,
    rate: int | None = None,
) -> str:
    """E.g. json-lz4-64KiB-linger5 (closed loop), json-none-64KiB-linger0-open3000 (open loop
    at 3,000 records/s offered), kafka-python-json-lz4-1KiB-linger5 (the other client)."""
    prefix = "" if client == CONFLUENT else f"{client}-"
    size = size_label(batch_size).replace(" ", "")
    suffix = "" if rate is None else f"-open{rate}"
    return f"{prefix}{payload}-{codec}-{size}-linger{linger_ms}{suffix}"


def _rate_label(rate: int) -> str:
    return f"{rate:,} records/s offered (open loop)"


def _clients(params: Mapping[str, Any]) -> Mapping[str, Mapping[str, Any]]:
    """The clients the profile runs, each with its own settings (confluent-kafka alone when
    the profile names none)."""
    return params.get("clients", {CONFLUENT: {}})


def _records(params: Mapping[str, Any], client: str, rate: int | None = None) -> int:
    """Records per measurement: the client's own count in closed loop, `open_loop_s` seconds'
    worth at the offered rate in open loop."""
    if rate is not None:
        return max(round(rate * params["open_loop_s"]), 2)
    return _clients(params)[client].get("records", params["records"])


def _grid(params: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The union of the profile's sweeps, in order, each combination once; a sweep's clients
    that the profile does not run (or setup left out) are left out."""
    clients = _clients(params)
    combos: dict[str, dict[str, Any]] = {}
    for sweep in params["sweeps"]:
        for client, payload, codec, size, linger, rate in itertools.product(
            sweep.get("client", [CONFLUENT]),
            sweep["payload"],
            sweep["compression.type"],
            sweep["batch.size"],
            sweep["linger.ms"],
            sweep.get(RATE, [None]),
        ):
            if client not in clients:
                continue
            name = _variant_name(payload, codec, size, linger, client, rate)
            combos.setdefault(
                name,
                {
                    "client": client,
                    "payload": payload,
                    "compression.type": codec,
                    "batch.size": size,
                    "linger.ms": linger,
                    RATE: rate,
                },
            )
    return [{"name": name, **combo} for name, combo in combos.items()]


def _open_loop_rates(params: Mapping[str, Any]) -> list[int]:
    """The offered rates of the default client's open-loop variants, lowest first."""
    return sorted({c[RATE] for c in _matching(params, {"client": CONFLUENT})} - {None})


def _matching(params: Mapping[str, Any], fixed: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [c for c in _grid(params) if all(c[k] == v for k, v in fixed.items())]


def _sweep(
    name: str,
    payload: list[str],
    codecs: list[str],
    sizes: list[int],
    lingers: list[int],
    clients: Sequence[str] = (CONFLUENT,),
    rates: Sequence[int | None] = (None,),
) -> dict[str, Any]:
    return {
        "name": name,
        "client": list(clients),
        "payload": payload,
        "compression.type": codecs,
        "batch.size": sizes,
        "linger.ms": lingers,
        RATE: list(rates),
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
        "sweeps": "lists of clients, payloads, compression.type, batch.size (bytes), linger.ms "
        f"(ms) and {RATE} (records/s offered in open loop; null: closed loop, as fast as the "
        "client takes them); each sweep runs the cross product of its lists, the profile the "
        "union of its sweeps",
        "open_loop_s": "seconds of records offered per open-loop measurement (rate x seconds)",
        "clients": "the clients run (confluent-kafka, kafka-python), each with the settings it "
        "has of its own: records (kafka-python is ~10x slower per record); a sweep's clients not "
        "named here are not run",
        "rounds": "interleaved repeats of every variant",
    }
    quick_seconds = 109  # measured: `kbench run`, 2-core VM, 2026-11-29 (8 min 27 s for all)
    profiles = {
        "smoke": {
            "records": 2000,
            "value_bytes": [100, 300],
            "sweeps": [
                _sweep("batch.size", ["json"], ["lz4"], [_KIB, 64 * _KIB], [5]),
                _sweep("linger.ms", ["json"], ["none"], [64 * _KIB], [0, 5]),
                _sweep(
                    "linger.ms under load", ["json"], ["none"], [64 * _KIB], [0, 5], rates=[4000]
                ),
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
            "open_loop_s": 0.25,
            "rounds": 2,
        },
        "quick": {
            "records": 30_000,
            "value_bytes": [100, 300],
            "sweeps": [
                _sweep("batch.size", ["json"], ["lz4"], [_KIB, 64 * _KIB, _MIB], [5]),
                _sweep("codecs", ["json"], list(CODECS), [64 * _KIB], [5]),
                _sweep("linger.ms", ["json"], ["none"], [64 * _KIB], [0, 5, 50]),
                # the linger claim's own case: a load below saturation. With linger.ms 0 each
                # record goes out in a request of its own, so the engine saturates near 6,000
                # records/s here (closed loop hides this: the queue fills and batches grow);
                # 3,000 records/s, about half of that, is a load below saturation
                _sweep(
                    "linger.ms under load", ["json"], ["none"], [64 * _KIB], [0, 5], rates=[3000]
                ),
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
            # kafka-python takes ~1.2 s for 10,000 records at 1 KiB batches: fewer records keep
            # the profile near two minutes; records/s is a rate, so the clients still compare
            "clients": {CONFLUENT: {}, KAFKA_PYTHON: {"records": 6_000}},
            # p99 at 3,000 records/s is set by the machine's occasional stalls (15-40 ms); 3 s
            # samples (9,000 records) hold about as many as not, and hit both linger settings
            # alike, since they alternate; full's 5 s samples hold more
            "open_loop_s": 3,
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
                    "linger.ms under load",
                    ["json"],
                    ["none"],
                    [64 * _KIB],
                    [0, 5, 20],
                    rates=[1000, 3000],
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
            "open_loop_s": 5,
            "rounds": 7,
        },
    }
    metrics = (
        Metric(
            "records_per_s",
            "records/s",
            "higher",
            "records / (first produce() to flush()); in open loop, about the offered rate",
        ),
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
        Metric(
            "library_cpu_s_per_mb",
            "CPU-s/MB",
            "lower",
            "CPU seconds of the client library's own threads (librdkafka's, kafka-python's "
            "sender: where batches are built, compressed and sent) per MB of values: "
            "cpu_s_per_mb without the calling thread's produce()/send() loop and callbacks, "
            "which is the same work for every codec",
        ),
        Metric("records_per_batch", "records", "higher", "mean records per stored batch"),
        Metric(
            "p50_latency_us",
            "µs",
            "lower",
            "median latency. Closed loop: saturation latency, produce()/send() to delivery "
            "report, mostly the wait in the client's full queue. Open loop (-open<rate>): from "
            "the record's intended send time to its delivery report",
        ),
        Metric(
            "p99_latency_us",
            "µs",
            "lower",
            "99th percentile latency; saturation latency in closed loop, from the intended send "
            "time at the offered rate in open loop (as p50)",
        ),
        Metric(
            "p999_latency_us",
            "µs",
            "lower",
            "99.9th percentile latency; saturation latency in closed loop, from the intended "
            "send time at the offered rate in open loop (as p50)",
        ),
        Metric(
            ACHIEVED_FRACTION,
            "x",
            "higher",
            "open loop only: records/s delivered (over the span from the first delivery to the "
            f"last) / records/s offered; below {SATURATED_BELOW} the sample is saturated and "
            "decides no claim",
        ),
    )
    charts = (
        SweepChart(
            "throughput and latency vs batch.size",
            "batch.size",
            ("records_per_s", "mb_per_s", "p99_latency_us"),
            xlabel="batch.size (bytes)",
            x_is_bytes=True,
        ),
        SweepChart(
            "throughput and latency vs linger.ms",
            "linger.ms",
            ("records_per_s", "records_per_batch", "p99_latency_us"),
            xlabel="linger.ms (ms)",
        ),
        CodecScatter(),
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
            pair = f"batch.size {size_label(sizes[-1])}/{size_label(sizes[0])}"
            add("batching", "records_per_s", big, small, f"records/s, {pair} ({held})")
            add(
                "batching-cpu",
                "cpu_s_per_mb",
                small,
                big,
                f"CPU-s/MB, batch.size {size_label(sizes[0])}/{size_label(sizes[-1])} ({held})",
            )
            add(
                "batching-latency-p99",
                "p99_latency_us",
                big,
                small,
                f"p99 saturation latency (closed loop), {pair} ({held})",
            )

        # linger, closed loop: 5 ms against 0 (Kafka 4.0's new default against the old), then
        # 50 against 5. The client's queue is full, so batches grow with either setting and the
        # latency is saturation latency: what the claim is about is measured in open loop below.
        at = _LINGER_AT
        lingers = {c["linger.ms"] for c in _matching(params, {**at, RATE: None})}
        name = {
            ms: _variant_name(at["payload"], at["compression.type"], at["batch.size"], ms)
            for ms in lingers
        }
        held = f"{at['compression.type']}, batch.size {size_label(at['batch.size'])}, JSON-like"
        if {0, 5} <= lingers:
            add("linger", "records_per_s", name[5], name[0], f"records/s, linger.ms 5/0 ({held})")
            add(
                "linger-batch",
                "records_per_batch",
                name[5],
                name[0],
                f"records per batch at saturation (closed loop), linger.ms 5/0 ({held})",
            )
            add(
                "linger-latency-p99",
                "p99_latency_us",
                name[5],
                name[0],
                f"p99 saturation latency (closed loop), linger.ms 5/0 ({held})",
            )
        if {5, 50} <= lingers:
            add(
                "linger-50",
                "records_per_s",
                name[50],
                name[5],
                f"records/s, linger.ms 50/5 ({held})",
            )

        # linger under load, open loop at each offered rate: batches 5/0, latency 0/5 (so that
        # at or above 1 reads "linger.ms 5 is no worse")
        for rate in _open_loop_rates(params):
            lingers = {c["linger.ms"] for c in _matching(params, {**at, RATE: rate})}
            name = {
                ms: _variant_name(
                    at["payload"], at["compression.type"], at["batch.size"], ms, rate=rate
                )
                for ms in lingers
            }
            under = f"at {_rate_label(rate)}; {held}"
            if {0, 5} <= lingers:
                add(
                    f"linger-open{rate}-batch",
                    "records_per_batch",
                    name[5],
                    name[0],
                    f"records per batch, linger.ms 5/0, {under}",
                )
                for percentile in ("p50", "p99"):
                    add(
                        f"linger-open{rate}-{percentile}",
                        f"{percentile}_latency_us",
                        name[0],
                        name[5],
                        f"{percentile} latency from intended send, linger.ms 0/5, {under}",
                    )

        # compression-tradeoff: every pair of codecs whose order the claim states, as the
        # higher/the lower (ratio: zstd > gzip > snappy, lz4; CPU: gzip > zstd > snappy > lz4),
        # and what compression buys in throughput against none. CPU is the client library's
        # threads', where the codec runs: the Python loop around produce() costs as much for
        # every codec (more than lz4 or snappy themselves) and would only dilute the order.
        at = _CODECS_AT
        codecs = {c["compression.type"] for c in _matching(params, at)}
        name = {
            codec: _variant_name(at["payload"], codec, at["batch.size"], at["linger.ms"])
            for codec in codecs
        }
        held = f"batch.size {size_label(at['batch.size'])}, linger.ms {at['linger.ms']}, JSON-like"
        for metric, pairs in (
            ("compression_ratio", _RATIO_ORDER),
            ("library_cpu_s_per_mb", _CPU_ORDER),
        ):
            kind = "ratio" if metric == "compression_ratio" else "cpu"
            for higher, lower in pairs:
                if {higher, lower} <= codecs:
                    add(
                        f"{kind}-{higher}-vs-{lower}",
                        metric,
                        name[higher],
                        name[lower],
                        f"{_METRIC_WORDS[metric]}, {higher}/{lower} ({held})",
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
            f"{at['compression.type']}, batch.size {size_label(at['batch.size'])}, "
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
                    f"records/s, {client}, batch.size {size_label(sizes[-1])}/"
                    f"{size_label(sizes[0])} ({at['compression.type']}, linger.ms "
                    f"{at['linger.ms']}, JSON-like)",
                )
            for combo in _matching(params, {"client": client, RATE: None}):
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
                    f"{size_label(combo['batch.size'])}, linger.ms {combo['linger.ms']}, "
                    f"{_PAYLOAD_LABELS[combo['payload']]})",
                )
        return contrasts

    def claim_checks(self, params: Mapping[str, Any]) -> list[ClaimCheck]:
        checks = [
            # "100k -> 500k msgs/s with batching": 5x more records/s from the largest batches
            # than from the smallest, the rest held
            ClaimCheck("batching", "batching", 5.0),
        ]
        # linger (KIP-1030) is about a producer under load, not a saturated one: decided in open
        # loop at the offered rate, in two parts. "Bigger batches": records per batch 5/0 at or
        # above 1. "Similar or lower latency": p99(linger 0)/p99(linger 5) at or above 0.8, i.e.
        # linger 5's p99 at most 25 % above linger 0's. A p99 varies by about 10 % between runs
        # here, so a bound of 0.9 would call equal latencies "not similar" in many runs, while
        # 0.8 still refuses what nobody calls similar (1.5x, or linger's own 5 ms added to a p99
        # of a few ms). Records/s 5/0 in closed loop stays a contrast: the claim is not about it.
        for rate in _open_loop_rates(params):
            under = f"at {_rate_label(rate)}"
            checks += [
                ClaimCheck(
                    "linger",
                    f"linger-open{rate}-batch",
                    1.0,
                    part=f"bigger batches: records per batch, linger.ms 5/0 >= 1, {under}",
                ),
                ClaimCheck(
                    "linger",
                    f"linger-open{rate}-p99",
                    LINGER_SIMILAR,
                    part=f"similar or lower latency: p99 latency, linger.ms 0/5 >= "
                    f"{LINGER_SIMILAR:g} (linger 5's at most 25 % higher), {under}",
                ),
            ]
        # compression-tradeoff is an ordering, not a magnitude: every pair of codecs whose order
        # it states is one part, the higher over the lower at or above 1.0. Snappy's and lz4's
        # ratios are both "medium": no order between them is stated, so none is tested.
        for statement, contrast in _ORDERING_PARTS:
            higher, lower = contrast.split("-")[1::2]
            words = _METRIC_WORDS["compression_ratio" if contrast.startswith("ratio") else "cpu"]
            checks.append(
                ClaimCheck(
                    "compression-tradeoff",
                    contrast,
                    1.0,
                    part=f"{statement}: {words} {higher}/{lower} >= 1",
                )
            )
        # single-producer (821,557 records/s, Java client, 2014): deliberately not checked
        names = {c.name for c in self.contrasts(params)}
        return [c for c in checks if c.contrast in names]

    def undecided(
        self, check: ClaimCheck, samples: Mapping[str, Sequence[Mapping[str, float]]]
    ) -> str | None:
        """An open-loop sample that delivered less than SATURATED_BELOW of the offered rate
        measured saturation, not the load it names (scenarios/harness/saturation.py)."""
        return saturation_reason(samples)

    def cluster_writes(self, params: Mapping[str, Any]) -> list[TopicWrite]:
        """One topic per measurement (every variant's warm-up and rounds), created, written
        and deleted in turn: bc-<variant>-<n>, one partition, the values of every measurement
        (before compression; what is stored is smaller, or a few % larger for random bytes)."""
        low, high = params["value_bytes"]
        records = sum(
            _records(params, c["client"], c[RATE]) + 1  # and the warm-up record
            for c in _grid(params)
        )
        total = records * (low + high) // 2 * (params["rounds"] + 1)
        return [TopicWrite("bc-<variant>-<n>", 1, total)] if total else []

    # -- setup ----------------------------------------------------------------------------------
    def setup(self, ctx: RunContext) -> None:
        if ctx.bootstrap is None:
            raise Skip("no broker to produce to")
        try:
            import confluent_kafka.admin  # noqa: F401 - the install holds it
        except ImportError as error:  # a runtime dependency: only a broken install gets here
            raise Skip(
                "confluent-kafka (a dependency of kbench: the default client, and the admin "
                f"client for either) cannot be imported: {error}"
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
        closed_only = {c["client"] for c in _grid(ctx.params) if c[RATE] is not None} - {
            client for client, driver in DRIVERS.items() if driver.open_loop
        }
        if closed_only:
            raise ValueError(f"no open-loop driver for {sorted(closed_only)}")
        low, high = ctx.params["value_bytes"]
        largest = max(c["batch.size"] for c in _grid(ctx.params))
        # enough values that the largest batch never repeats one (see clients/payloads.py)
        count = max(payloads.DEFAULT_COUNT, 2 * largest // low + 1)
        ctx.state["values"] = {
            kind: payloads.values(kind, count, low, high)
            for kind in sorted({c["payload"] for c in _grid(ctx.params)})
        }
        ctx.state["admin"] = TopicAdmin(ctx.bootstrap)
        ctx.state["topics"] = 0
        ctx.state["deliveries"] = []  # per measurement: what was produced, delivered and stored
        # every measurement creates and deletes a topic: find out now if that works
        reason = ctx.state["admin"].probe(ctx.topic("bc-probe"))
        if reason is not None:
            ctx.state.pop("admin")
            raise Skip(reason)

    def teardown(self, ctx: RunContext) -> None:
        ctx.state.pop("admin", None)  # the client's threads end with it
        ctx.state.pop("values", None)

    # -- measure --------------------------------------------------------------------------------
    def measure(self, ctx: RunContext, variant: Variant) -> dict[str, float]:
        ctx.state["topics"] += 1
        with ctx.state["admin"].fresh(
            ctx.topic(f"bc-{variant.name}-{ctx.state['topics']}")
        ) as topic:
            return self._produce_and_read_back(ctx, variant, topic)

    def _produce_and_read_back(
        self, ctx: RunContext, variant: Variant, topic: str
    ) -> dict[str, float]:
        client, rate = variant.params["client"], variant.params[RATE]
        count = _records(ctx.params, client, rate)
        pool = ctx.state["values"][variant.params["payload"]]
        values = list(itertools.islice(itertools.cycle(pool), count))
        assert ctx.bootstrap is not None  # setup skips without one
        driver = DRIVERS[client](
            ctx.bootstrap,
            batch_size=variant.params["batch.size"],
            linger_ms=variant.params["linger.ms"],
            codec=variant.params["compression.type"],
        )
        try:
            driver.warm_up(topic, pool[0])  # connection, metadata; offset 0
            run = driver.produce(topic, values, rate)
        finally:
            driver.close()
        value_bytes = sum(map(len, values))
        stored_bytes, batches, stored_records = _stored(ctx, topic, first_offset=1, records=count)
        ctx.state["deliveries"].append(
            {
                "variant": variant.name,
                "topic": topic,
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
        histogram = latency_histogram_us(run.latencies_s)
        open_loop = {}
        if rate is not None:  # delivered over the span of deliveries against offered
            assert run.delivered_span_s is not None
            achieved = (count - 1) / max(run.delivered_span_s, 1e-9)
            open_loop[ACHIEVED_FRACTION] = achieved / rate
        return {
            "records_per_s": count / run.seconds,
            "mb_per_s": value_bytes / run.seconds / 1e6,
            "stored_mb_per_s": stored_bytes / run.seconds / 1e6,
            "compression_ratio": value_bytes / stored_bytes,
            "cpu_s_per_mb": max(run.cpu_s, 1e-6) / (value_bytes / 1e6),
            "library_cpu_s_per_mb": max(run.library_cpu_s, 1e-6) / (value_bytes / 1e6),
            "records_per_batch": stored_records / batches,
            "p50_latency_us": float(histogram.get_value_at_percentile(50)),
            "p99_latency_us": float(histogram.get_value_at_percentile(99)),
            "p999_latency_us": float(histogram.get_value_at_percentile(99.9)),
            **open_loop,
        }


# -- reading back what was stored ---------------------------------------------------------------
_FETCH_MAX_BYTES = 64 * _MIB


def _stored(ctx: RunContext, topic: str, first_offset: int, records: int) -> tuple[int, int, int]:
    """(bytes, batches, records) of the record batches stored in partition 0 of topic holding
    offsets first_offset .. first_offset + records - 1, read raw from the partition leader."""
    leader = ctx.state["admin"].leader(topic)
    end = first_offset + records
    offset, total, batches, stored = first_offset, 0, 0, 0
    deadline = time.monotonic() + 60
    with FetchClient(leader, "kbench-batch-compression") as client:
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
