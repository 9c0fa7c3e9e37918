"""consumer-fetch: what do a consumer's fetch settings buy, reading a backlog and tailing a
live producer, and what does the long poll of Kafka's pull model save over short polling?

Kafka's consumers pull: each Fetch names an offset, and the broker answers when
fetch.min.bytes have arrived or fetch.max.wait.ms have passed (the long poll: Kafka's delayed
fetch purgatory, the engine's DelayedFetch), with up to max.partition.fetch.bytes of whole
record batches per partition. Two parts, three consumers: confluent-kafka's Consumer
(librdkafka), kafka-python's KafkaConsumer, and the raw FetchClient
(scenarios/clients/fetch_client.py, no library: what the broker does alone).

- backlog: a topic of one partition holding `backlog_bytes` of 100-byte records in ~64 KiB
  batches (BatchProducer, produced once in setup) is read from offset 0 to its end, over
  max.partition.fetch.bytes and, for the real clients, max.poll.records (kafka-python's
  max_poll_records; librdkafka has none, so confluent-kafka's consume(num_messages) stands in
  for it). A real client is created per sample, and timed from assign() to its last record,
  its start included; FetchClient (one connection, kept) reads the backlog again and again
  until `backlog_sample_seconds` have passed, so that a sample outlasts short bursts of noise.
  Every read must return every record, or the run stops. Records/s, MB/s of record batches,
  fetch requests per second (confluent-kafka: librdkafka's statistics, the few fetches of its
  start and of the 150 ms after the end included; kafka-python: the fetch responses it
  handled; FetchClient: its own), and the broker's CPU-seconds per GB read (10^9 bytes; the
  scheduler's run time, /proc/<pid>/task/*/schedstat, over the read).
- tail: a BatchProducer offers one record per request at a fixed low rate (`tail_rate`, 200
  records/s: a trickle, a record every 5 ms), open loop, to a fresh one-partition topic per
  sample, and a consumer of the variant's client tails it with one of `tail_settings`
  ([fetch.min.bytes, fetch.max.wait.ms]), both in processes of their own
  (scenarios/clients/pipeline.py). The producer is the light loadgen one in every variant, so
  what differs is the consumer. Delivery latency runs from each record's intended send time to
  its delivery to the application (HdrHistogram; the first `tail_warmup` records are offered
  and not timed): p50 and p99. Fetch requests per second over the span the consumer counted
  them (confluent-kafka: between two of librdkafka's statistics reports; the others: from the
  start to their last record); the broker's CPU-seconds per second (cores) over the whole
  run (schedstat); and achieved_fraction, the rate delivered over the rate offered (below 95 %
  the sample is saturated: scenarios/harness/saturation.py). A consumer whose fetch.min.bytes
  is more than a trickle brings (fetch.min.bytes > 1) has its last record held by the broker
  for up to fetch.max.wait.ms by design: that wait is not counted as lateness in the rate
  delivered (records/s) nor in the achieved fraction (capped at 1).

  Long poll: fetch.min.bytes 1, fetch.max.wait.ms 500, so the broker answers as soon as a
  record arrives, or after 500 ms of nothing. Short polling: fetch.max.wait.ms 0, the broker
  answering at once, empty or not, and the client asking again at once, in a tight loop (each
  client's own loop: librdkafka refetches as soon as a response is in, kafka-python's
  I/O thread likewise, FetchClient back to back). A throughput-leaning consumer:
  fetch.min.bytes 64 KiB with fetch.max.wait.ms 100, settings for large batches, which at a
  trickle (about 34 KB/s) are never met, so every fetch waits its 100 ms.

Claims decided, thresholds chosen before the scenario's first run and not moved after (see
the constants below); one part per tail client in the profile:
- consumer-latency ("tuning the consumer drops consume latency, 100 ms -> 10 ms, 10x"): a
  consumer "tuned" for latency is fetch.min.bytes 1 with long poll; the untuned one is the
  throughput-leaning consumer above. Delivery p50 untuned/tuned >= 10 at the stated rate. The
  verdict tests what these settings do at 200 records/s, not the quoted 100 ms or 10 ms: with
  a fetch.min.bytes that fills faster than fetch.max.wait.ms (a high rate), the two settings
  deliver alike and the ratio falls towards 1.
- pull-model ("pulling with long polls avoids the load swings of push and wasted requests";
  "pull avoids message pile-up and lowers latency"), at the same trickle, long poll against
  short polling: (1) fetch requests/s short/long >= 10, an order of magnitude of requests
  that bring nothing; (2) the broker's CPU-s per second short/long >= 2, those requests
  costing the broker at least as much again as the useful work (its produce and long-poll
  fetch handling) at this rate; (3) delivery p50 short/long >= 0.8: long poll's latency no
  worse than short polling's beyond 25 %, since the broker answers a waiting fetch as soon
  as a record is appended. Push, and the load swings it would cause, are not measured: no
  push consumer exists to set against it. Part (2) needs the engine's broker (its pid): with
  --bootstrap it is left out, with the broker CPU metrics, and a note says so.

A saturated tail sample (achieved_fraction below 95 %) decides no claim (`undecided`).

What bounds short polling is the client's own loop (on 2 cores, near 10,000 requests/s for
librdkafka, 4,000 for FetchClient, 1,000 for kafka-python, whose I/O thread is Python), while
a long poll sends about one request per record a trickle brings: pull-model's ratios are of
that client at that rate, and shrink as the rate grows.

Works against any Kafka-protocol broker (kbench's engine or `--bootstrap`): topics are created
and deleted with confluent-kafka's AdminClient, and BatchProducer, FetchClient and the
pipeline's clients talk to the partition's leader, looked up in the cluster's metadata.
"""

import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

from scenarios.clients import pipeline
from scenarios.clients.fetch_client import FetchClient
from scenarios.clients.loadgen import BatchProducer
from scenarios.clients.producers import CONFLUENT, KAFKA_PYTHON
from scenarios.clients.topics import TopicAdmin
from scenarios.harness.resources import cpu_seconds
from scenarios.harness.saturation import ACHIEVED_FRACTION, saturation_reason
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

FETCH_CLIENT = "fetch-client"
CLIENTS = (CONFLUENT, KAFKA_PYTHON, FETCH_CLIENT)
_PIPELINE_CLIENT = {CONFLUENT: "confluent", KAFKA_PYTHON: "kafka-python", FETCH_CLIENT: "loadgen"}
_KIB = 1024
_MIB = 1 << 20
_GB = 1e9
# [fetch.min.bytes, fetch.max.wait.ms] of the tail variants the claims compare
LONG_POLL = (1, 500)
SHORT_POLL = (1, 0)
THROUGHPUT = (64 * _KIB, 100)
# thresholds, chosen before the scenario's first run (see the module's docstring)
LATENCY_UNTUNED_OVER_TUNED = 10.0  # consumer-latency: p50, 100 ms -> 10 ms
REQUESTS_SHORT_OVER_LONG = 10.0  # pull-model (1): fetch requests/s
BROKER_CPU_SHORT_OVER_LONG = 2.0  # pull-model (2): broker CPU-s per second
LATENCY_SHORT_OVER_LONG = 0.8  # pull-model (3): p50, long poll no worse than short beyond 25 %
OFFERED = "offered_records_per_s"  # recorded with every tail sample (and in its variant)
_BATCH_BYTES_PER_RECORD = 170  # a one-record batch of a 100-byte value, as the tail produces
_CLAIM_SETTINGS = [list(LONG_POLL), list(SHORT_POLL), list(THROUGHPUT)]


def _token(n: int) -> str:
    """64KiB, 1B: a size in a variant's name."""
    return size_label(n).replace(" ", "")


def tail_name(client: str, min_bytes: int, max_wait_ms: int) -> str:
    return f"tail-{client}-min{_token(min_bytes)}-wait{max_wait_ms}ms"


def backlog_name(client: str, fetch_bytes: int, poll_records: int | None) -> str:
    poll = "" if poll_records is None else f"-poll{poll_records}"
    return f"backlog-{client}-{_token(fetch_bytes)}{poll}"


def _settings(params: Mapping[str, Any]) -> list[tuple[int, int]]:
    return [(int(m), int(w)) for m, w in params["tail_settings"]]


def _poll_records(params: Mapping[str, Any], client: str) -> list[int | None]:
    """max.poll.records values of a backlog client: none for FetchClient, which hands over
    every record of each response."""
    return [None] if client == FETCH_CLIENT else list(params["backlog_poll_records"])


class ConsumerFetch(Scenario):
    name = "consumer-fetch"
    title = "Consumer fetch: batch fetch, long poll vs short polling"
    question = (
        "What do fetch.min.bytes, fetch.max.wait.ms, max.partition.fetch.bytes and "
        "max.poll.records do to a consumer reading a backlog and one tailing a producer, and "
        "what does the long poll save over short polling?"
    )
    parameters = {
        "backlog_bytes": "bytes of the backlog produced once and read per measurement "
        "(0: no backlog part)",
        "backlog_clients": "clients that read the backlog (confluent-kafka, kafka-python, "
        "fetch-client)",
        "backlog_fetch_bytes": "max.partition.fetch.bytes of the backlog reads",
        "backlog_poll_records": "max.poll.records of the real clients' backlog reads "
        "(confluent-kafka: consume(num_messages))",
        "backlog_sample_seconds": "FetchClient reads the backlog again until this long",
        "tail_clients": "clients that tail the producer (none: no tail part)",
        "tail_settings": "[fetch.min.bytes, fetch.max.wait.ms] of the tailing consumers",
        "tail_rate": "records/s the producer offers, open loop, one record per request",
        "tail_records": "records offered per tail measurement, after the warm-up",
        "tail_warmup": "records offered first and not timed",
        "rounds": "interleaved repeats of every variant",
    }
    quick_seconds = 38  # measured: `kbench run`, 2-core VM, 2026-11-29 (8 min 27 s for all)
    profiles = {
        "smoke": {
            "backlog_bytes": 2 * _MIB,
            "backlog_clients": list(CLIENTS),
            "backlog_fetch_bytes": [64 * _KIB, _MIB],
            "backlog_poll_records": [500],
            "backlog_sample_seconds": 0,
            "tail_clients": [CONFLUENT, KAFKA_PYTHON],
            "tail_settings": _CLAIM_SETTINGS,
            "tail_rate": 200,
            "tail_records": 50,
            "tail_warmup": 10,
            "rounds": 1,
        },
        "quick": {
            # 45 s on 2 cores: the claims' three tail settings with librdkafka (~1.5 s a
            # sample, most of it starting the pipeline's processes) and the raw backlog read
            # at two fetch sizes; six rounds, the fewest whose median has a 95 % interval
            "backlog_bytes": 32 * _MIB,
            "backlog_clients": [FETCH_CLIENT],
            "backlog_fetch_bytes": [64 * _KIB, _MIB],
            "backlog_poll_records": [500],
            "backlog_sample_seconds": 0.3,
            "tail_clients": [CONFLUENT],
            "tail_settings": _CLAIM_SETTINGS,
            "tail_rate": 200,
            "tail_records": 100,
            "tail_warmup": 10,
            "rounds": 6,
        },
        "full": {
            # about 15 minutes here: kafka-python reads ~45,000 records/s, so its backlog
            # samples take ~3.5 s each, and a tail sample ~3 s
            "backlog_bytes": 16 * _MIB,
            "backlog_clients": list(CLIENTS),
            "backlog_fetch_bytes": [16 * _KIB, 64 * _KIB, 256 * _KIB, _MIB, 4 * _MIB],
            "backlog_poll_records": [500, 10_000],
            "backlog_sample_seconds": 1.0,
            "tail_clients": list(CLIENTS),
            "tail_settings": [
                *_CLAIM_SETTINGS,
                [1, 10],
                [1, 100],
                [16 * _KIB, 100],
                [16 * _KIB, 500],
                [64 * _KIB, 500],
            ],
            "tail_rate": 200,
            "tail_records": 300,
            "tail_warmup": 20,
            "rounds": 6,
        },
    }
    metrics = (
        Metric(
            "records_per_s",
            "records/s",
            "higher",
            "backlog: records read / time from assign() (FetchClient: the first fetch) to the "
            "last record; tail: records delivered per second (the broker's designed wait for "
            "fetch.min.bytes at the end left out)",
        ),
        Metric("mb_per_s", "MB/s", "higher", "backlog: record batch bytes read / time"),
        Metric(
            "fetches_per_s",
            "requests/s",
            "lower",
            "the consumer's fetch requests per second (tail: over the span it counted them)",
        ),
        Metric(
            "broker_cpu_s_per_gb",
            "CPU-s/GB",
            "lower",
            "backlog: the broker's CPU-seconds (schedstat) per GB read",
        ),
        Metric(
            "broker_cpu_s_per_s",
            "CPU-s/s",
            "lower",
            "tail: the broker's CPU-seconds per second of the run (cores), producing included",
        ),
        Metric(
            "p50_latency_ms",
            "ms",
            "lower",
            "tail: median delivery latency, from each record's intended send time to its "
            "delivery to the application",
        ),
        Metric("p99_latency_ms", "ms", "lower", "tail: 99th percentile delivery latency"),
        Metric(
            ACHIEVED_FRACTION,
            "fraction",
            "higher",
            "tail: records delivered per second / offered (below 0.95: saturated)",
        ),
    )
    charts = (
        SweepChart(
            "tail: latency, fetch requests and broker CPU vs fetch.max.wait.ms",
            "fetch.max.wait.ms",
            ("p50_latency_ms", "fetches_per_s", "broker_cpu_s_per_s"),
            xlabel="fetch.max.wait.ms (0: short polling)",
        ),
        SweepChart(
            "backlog: records/s, fetch requests and broker CPU vs max.partition.fetch.bytes",
            "max.partition.fetch.bytes",
            ("records_per_s", "fetches_per_s", "broker_cpu_s_per_gb"),
            xlabel="max.partition.fetch.bytes",
            x_is_bytes=True,
        ),
    )

    # -- declaration ----------------------------------------------------------------------------
    def variants(self, params: Mapping[str, Any]) -> list[Variant]:
        variants = []
        if params["backlog_bytes"]:
            for client in params["backlog_clients"]:
                for poll_records in _poll_records(params, client):
                    for size in params["backlog_fetch_bytes"]:
                        variant_params: dict[str, Any] = {
                            "part": "backlog",
                            "client": client,
                            "max.partition.fetch.bytes": size,
                        }
                        if poll_records is not None:
                            variant_params["max.poll.records"] = poll_records
                        variants.append(
                            Variant(backlog_name(client, size, poll_records), variant_params)
                        )
        for client in params["tail_clients"]:
            for min_bytes, max_wait_ms in _settings(params):
                variants.append(
                    Variant(
                        tail_name(client, min_bytes, max_wait_ms),
                        {
                            "part": "tail",
                            "client": client,
                            "fetch.min.bytes": min_bytes,
                            "fetch.max.wait.ms": max_wait_ms,
                            OFFERED: params["tail_rate"],
                        },
                    )
                )
        return variants

    def _claim_clients(self, params: Mapping[str, Any]) -> list[str]:
        """Tail clients that ran all three settings the claims compare."""
        settings = set(_settings(params))
        needed = {LONG_POLL, SHORT_POLL, THROUGHPUT}
        return [c for c in params["tail_clients"] if needed <= settings]

    def contrasts(self, params: Mapping[str, Any]) -> list[Contrast]:
        contrasts = []
        if params["backlog_bytes"] and len(params["backlog_fetch_bytes"]) >= 2:
            small, large = min(params["backlog_fetch_bytes"]), max(params["backlog_fetch_bytes"])
            for client in params["backlog_clients"]:
                for poll_records in _poll_records(params, client):
                    big = backlog_name(client, large, poll_records)
                    little = backlog_name(client, small, poll_records)
                    suffix = "" if poll_records is None else f"-poll{poll_records}"
                    what = client if poll_records is None else f"{client}, poll {poll_records}"
                    contrasts.append(
                        Contrast(
                            f"backlog-{client}-records{suffix}",
                            "records_per_s",
                            big,
                            little,
                            f"backlog records/s, max.partition.fetch.bytes "
                            f"{size_label(large)}/{size_label(small)} ({what})",
                        )
                    )
                    if params.get("broker_cpu", True):
                        contrasts.append(
                            Contrast(
                                f"backlog-{client}-broker-cpu{suffix}",
                                "broker_cpu_s_per_gb",
                                little,
                                big,
                                f"backlog broker CPU-s per GB, max.partition.fetch.bytes "
                                f"{size_label(small)}/{size_label(large)} ({what})",
                            )
                        )
        rate = f"{params['tail_rate']:,} records/s"
        for client in self._claim_clients(params):
            tuned, short = tail_name(client, *LONG_POLL), tail_name(client, *SHORT_POLL)
            untuned = tail_name(client, *THROUGHPUT)
            contrasts += [
                Contrast(
                    f"{client}-latency-untuned-vs-tuned",
                    "p50_latency_ms",
                    untuned,
                    tuned,
                    f"delivery p50, fetch.min.bytes 64 KiB + fetch.max.wait.ms 100 / "
                    f"fetch.min.bytes 1 + long poll ({client}, {rate})",
                ),
                Contrast(
                    f"{client}-requests-short-vs-long",
                    "fetches_per_s",
                    short,
                    tuned,
                    f"fetch requests/s, short polling / long poll ({client}, {rate})",
                ),
                Contrast(
                    f"{client}-latency-short-vs-long",
                    "p50_latency_ms",
                    short,
                    tuned,
                    f"delivery p50, short polling / long poll ({client}, {rate})",
                ),
                Contrast(
                    f"{client}-p99-short-vs-long",
                    "p99_latency_ms",
                    short,
                    tuned,
                    f"delivery p99, short polling / long poll ({client}, {rate})",
                ),
            ]
            if params.get("broker_cpu", True):
                contrasts.append(
                    Contrast(
                        f"{client}-broker-cpu-short-vs-long",
                        "broker_cpu_s_per_s",
                        short,
                        tuned,
                        f"broker CPU-s per second, short polling / long poll ({client}, {rate})",
                    )
                )
        return contrasts

    def claim_checks(self, params: Mapping[str, Any]) -> list[ClaimCheck]:
        checks = []
        for client in self._claim_clients(params):
            checks += [
                ClaimCheck(
                    "consumer-latency",
                    f"{client}-latency-untuned-vs-tuned",
                    LATENCY_UNTUNED_OVER_TUNED,
                    part=f"{client}: delivery p50 untuned/tuned >= {LATENCY_UNTUNED_OVER_TUNED:g}",
                ),
                ClaimCheck(
                    "pull-model",
                    f"{client}-requests-short-vs-long",
                    REQUESTS_SHORT_OVER_LONG,
                    part=f"{client}: fetch requests/s short/long poll "
                    f">= {REQUESTS_SHORT_OVER_LONG:g}",
                ),
            ]
            if params.get("broker_cpu", True):
                checks.append(
                    ClaimCheck(
                        "pull-model",
                        f"{client}-broker-cpu-short-vs-long",
                        BROKER_CPU_SHORT_OVER_LONG,
                        part=f"{client}: broker CPU-s/s short/long poll "
                        f">= {BROKER_CPU_SHORT_OVER_LONG:g}",
                    )
                )
            checks.append(
                ClaimCheck(
                    "pull-model",
                    f"{client}-latency-short-vs-long",
                    LATENCY_SHORT_OVER_LONG,
                    part=f"{client}: delivery p50 short/long poll >= {LATENCY_SHORT_OVER_LONG:g}",
                )
            )
        return checks

    def undecided(
        self, check: ClaimCheck, samples: Mapping[str, Sequence[Mapping[str, float]]]
    ) -> str | None:
        """A tail sample that could not keep the offered rate measured saturation, not the
        consumer's settings: it decides no part of either claim."""
        return saturation_reason(samples)

    def cluster_writes(self, params: Mapping[str, Any]) -> list[TopicWrite]:
        """The backlog topic (cf-backlog), and one topic per tail measurement (cf-tail-<n>),
        each deleted after it; one partition each."""
        writes = []
        if params["backlog_bytes"]:
            writes.append(TopicWrite("cf-backlog", 1, int(params["backlog_bytes"])))
        tails = len(params["tail_clients"]) * len(params["tail_settings"])
        if tails:
            records = params["tail_records"] + params["tail_warmup"] + 1  # and the warm-up
            total = tails * (params["rounds"] + 1) * records * _BATCH_BYTES_PER_RECORD
            writes.append(TopicWrite("cf-tail-<n>", 1, total))
        return writes

    # -- setup ----------------------------------------------------------------------------------
    def setup(self, ctx: RunContext) -> None:
        if ctx.bootstrap is None:
            raise Skip("no broker to consume from")
        params = ctx.params
        unknown = {*params["backlog_clients"], *params["tail_clients"]} - set(CLIENTS)
        if unknown:
            raise ValueError(f"unknown clients {sorted(unknown)}; choose from {list(CLIENTS)}")
        for setting in _settings(params):
            if setting[0] < 1 or setting[1] < 0:
                raise ValueError(f"tail setting {list(setting)}: fetch.min.bytes >= 1, wait >= 0")
        try:
            import confluent_kafka.admin  # noqa: F401 - the install holds it
        except ImportError as error:  # a runtime dependency: only a broken install gets here
            raise Skip(f"confluent-kafka cannot be imported: {error}") from error
        params["broker_cpu"] = (
            ctx.broker_pid is not None and cpu_seconds(ctx.broker_pid) is not None
        )
        if not params["broker_cpu"]:
            ctx.notes.append(
                "broker CPU left out (broker_cpu_s_per_gb, broker_cpu_s_per_s and pull-model's "
                "CPU part): only the engine's own broker process can be metered, and its "
                "scheduler statistics read (an external cluster, --bootstrap, is neither)"
            )
        ctx.state.update(
            admin=TopicAdmin(ctx.bootstrap),
            topics=0,
            tails=[],  # per tail measurement: its topic, counts and span
            backlog_reads=[],  # per backlog measurement: what it read
            created=[],  # every topic this scenario created
        )
        try:
            if params["backlog_bytes"]:
                self._setup_backlog(ctx)
            elif params["tail_clients"]:  # every tail sample creates and deletes a topic
                probe = ctx.topic("cf-probe")
                self._create_topic(ctx, probe, timeout_s=15)
                self._delete_topic(ctx, probe, timeout_s=15)
        except Exception as error:
            self.teardown(ctx)
            raise Skip(
                f"the broker at {ctx.bootstrap} did not create, fill and delete a topic "
                f"({error!r}): this scenario needs CreateTopics, Produce, Fetch, DeleteTopics"
            ) from error

    def _setup_backlog(self, ctx: RunContext) -> None:
        topic = ctx.topic("cf-backlog")
        leader = self._create_topic(ctx, topic)
        producer = BatchProducer(leader)
        try:
            producer.produce(topic, 1, int(ctx.params["backlog_bytes"]))
        finally:
            producer.close()
        with FetchClient(leader, "kbench-consumer-fetch") as client:
            read = client.read_all(topic, 0, _MIB)  # what every read must return
        ctx.state.update(
            backlog_topic=topic,
            backlog_leader=leader,
            backlog_records=read.records,
            backlog_end=read.next_offset,
            backlog_batch_bytes=read.batch_bytes,
        )
        if FETCH_CLIENT in ctx.params["backlog_clients"]:
            ctx.state["fetch_client"] = FetchClient(leader, "kbench-consumer-fetch")

    def teardown(self, ctx: RunContext) -> None:
        client = ctx.state.pop("fetch_client", None)
        if client is not None:
            client.close()
        if ctx.state.get("backlog_topic") and ctx.state.get("admin") is not None:
            try:
                self._delete_topic(ctx, ctx.state["backlog_topic"])
            except Exception as error:  # the run deletes every topic of its prefix anyway
                ctx.notes.append(f"the backlog topic was not deleted: {error!r}")
            ctx.state["backlog_topic"] = None
        ctx.state.pop("admin", None)  # the client's threads end with it

    # -- measure --------------------------------------------------------------------------------
    def measure(self, ctx: RunContext, variant: Variant) -> dict[str, float]:
        if variant.params["part"] == "backlog":
            return self._measure_backlog(ctx, variant)
        return self._measure_tail(ctx, variant)

    def _broker_cpu(self, ctx: RunContext) -> float | None:
        if not ctx.params["broker_cpu"] or ctx.broker_pid is None:
            return None
        return cpu_seconds(ctx.broker_pid)

    def _measure_backlog(self, ctx: RunContext, variant: Variant) -> dict[str, float]:
        client = variant.params["client"]
        size = int(variant.params["max.partition.fetch.bytes"])
        topic, leader = ctx.state["backlog_topic"], ctx.state["backlog_leader"]
        end, expected = ctx.state["backlog_end"], ctx.state["backlog_records"]
        cpu_before = self._broker_cpu(ctx)
        if client == FETCH_CLIENT:
            fetch_client: FetchClient = ctx.state["fetch_client"]
            records = fetches = batch_bytes = passes = 0
            seconds = 0.0
            while True:
                read = fetch_client.read_all(topic, 0, size)
                passes += 1
                if read.records != expected:
                    raise RuntimeError(f"{variant.name}: read {read.records} of {expected} records")
                records, fetches = records + read.records, fetches + read.requests
                batch_bytes += read.batch_bytes
                seconds += read.seconds
                if seconds >= float(ctx.params["backlog_sample_seconds"]):
                    break
        else:
            reader = _confluent_read if client == CONFLUENT else _kafka_python_read
            poll_records = int(variant.params["max.poll.records"])
            records, fetches, seconds = reader(leader, topic, end, size, poll_records)
            if records != expected:
                raise RuntimeError(f"{variant.name}: read {records} of {expected} records")
            batch_bytes, passes = ctx.state["backlog_batch_bytes"], 1
        cpu_after = self._broker_cpu(ctx)
        ctx.state["backlog_reads"].append(
            {"variant": variant.name, "records": records, "passes": passes, "fetches": fetches}
        )
        values = {
            "records_per_s": records / seconds,
            "mb_per_s": batch_bytes / seconds / 1e6,
            "fetches_per_s": fetches / seconds,
        }
        if cpu_before is not None and cpu_after is not None:
            values["broker_cpu_s_per_gb"] = (cpu_after - cpu_before) / (batch_bytes / _GB)
        return values

    def _measure_tail(self, ctx: RunContext, variant: Variant) -> dict[str, float]:
        params = ctx.params
        client = variant.params["client"]
        min_bytes = int(variant.params["fetch.min.bytes"])
        max_wait_ms = int(variant.params["fetch.max.wait.ms"])
        rate = float(params["tail_rate"])
        ctx.state["topics"] += 1
        topic = ctx.topic(f"cf-tail-{ctx.state['topics']}")
        leader = self._create_topic(ctx, topic)
        try:
            load = pipeline.Load(
                topic,
                rate=rate,
                count=int(params["tail_records"]) + int(params["tail_warmup"]),
                warmup=int(params["tail_warmup"]),
                consumer={"fetch.min.bytes": min_bytes, "fetch.wait.max.ms": max_wait_ms},
            )
            run = pipeline.run(
                leader,
                load,
                clients="loadgen",  # the light producer in every variant: the consumer differs
                consumer_clients=_PIPELINE_CLIENT[client],
                broker_pid=ctx.broker_pid if params["broker_cpu"] else None,
            )
        finally:
            self._delete_topic(ctx, topic)
        measured = run.histogram.get_total_count()
        span_s = measured / run.delivered if run.delivered > 0 else float("inf")
        # the broker holds the last fetch up to fetch.max.wait.ms by design when a trickle does
        # not fill fetch.min.bytes: not lateness. Taken off the span, but never below the span
        # the records were offered over: none is delivered before it is due
        if min_bytes > 1:
            span_s = max(span_s - max_wait_ms / 1e3, measured / rate)
        delivered = measured / span_s
        ctx.state["tails"].append(
            {
                "variant": variant.name,
                "topic": topic,
                "measured": measured,
                "expected": load.count - load.warmup,
                "fetches": run.fetches,
                "fetch_seconds": run.fetch_seconds,
            }
        )
        values = {
            "records_per_s": delivered,
            "fetches_per_s": run.fetches_per_s,
            "p50_latency_ms": run.percentile_ms(50),
            "p99_latency_ms": run.percentile_ms(99),
            ACHIEVED_FRACTION: min(delivered / rate, 1.0),
            OFFERED: rate,
        }
        if params["broker_cpu"] and run.wall_s > 0:
            broker = run.broker_cpu_s if run.broker_cpu_s is not None else run.cpu_s["broker"]
            values["broker_cpu_s_per_s"] = broker / run.wall_s
        return values

    # -- topics ---------------------------------------------------------------------------------
    def _create_topic(self, ctx: RunContext, topic: str, timeout_s: float = 60) -> str:
        """Create a one-partition topic; the address of its partition's leader, once there is
        one."""
        admin = ctx.state["admin"]
        admin.create(topic, timeout_s=timeout_s)
        ctx.state["created"].append(topic)
        return admin.leader(topic, timeout_s=timeout_s)

    def _delete_topic(self, ctx: RunContext, topic: str, timeout_s: float = 60) -> None:
        ctx.state["admin"].delete(topic, timeout_s=timeout_s)


# -- the real clients' backlog reads -----------------------------------------------------------
def _confluent_read(
    bootstrap: str, topic: str, end: int, fetch_bytes: int, poll_records: int
) -> tuple[int, int, float]:
    """confluent-kafka's Consumer reads partition 0 from offset 0 to `end`: (records, fetch
    requests, seconds from assign() to the last record)."""
    from confluent_kafka import Consumer, KafkaException, TopicPartition

    fetches = [0]

    def statistics(report: str) -> None:
        brokers = json.loads(report).get("brokers", {}).values()
        fetches[0] = sum(b.get("req", {}).get("Fetch", 0) for b in brokers)

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "kbench-consumer-fetch",  # required; assign() uses no group
            "enable.auto.commit": False,
            "max.partition.fetch.bytes": fetch_bytes,
            "statistics.interval.ms": 100,
            "stats_cb": statistics,
        }
    )
    try:
        started = time.perf_counter()
        consumer.assign([TopicPartition(topic, 0, 0)])
        records = position = 0  # the next offset to read
        deadline = time.monotonic() + 300
        while position < end and time.monotonic() < deadline:
            # consume(n) waits for n records or the timeout: never ask for more than are left
            messages = consumer.consume(min(poll_records, end - position), 1.0)
            for message in messages:
                if message.error() is not None:
                    raise KafkaException(message.error())
            if messages:
                records += len(messages)
                position = (messages[-1].offset() or 0) + 1
        seconds = time.perf_counter() - started
        consumer.poll(0.15)  # one more statistics report, covering the last fetches
    finally:
        consumer.close()
    return records, fetches[0], seconds


def _kafka_python_read(
    bootstrap: str, topic: str, end: int, fetch_bytes: int, poll_records: int
) -> tuple[int, int, float]:
    """kafka-python's KafkaConsumer reads partition 0 from offset 0 to `end`: (records, fetch
    requests, seconds from assign() to the last record)."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        client_id="kbench-consumer-fetch",
        group_id=None,
        enable_auto_commit=False,
        max_partition_fetch_bytes=fetch_bytes,
        max_poll_records=poll_records,
    )
    try:
        fetches = pipeline.count_kafka_python_fetches(consumer)
        partition = TopicPartition(topic, 0)
        started = time.perf_counter()
        consumer.assign([partition])
        consumer.seek(partition, 0)
        records = position = 0  # the next offset to read
        deadline = time.monotonic() + 300
        while position < end and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=1000).values():  # as soon as records came
                records += len(batch)
                position = batch[-1].offset + 1
        seconds = time.perf_counter() - started
    finally:
        consumer.close()
    return records, fetches[0], seconds
