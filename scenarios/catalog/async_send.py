"""async-send: how much faster is sending with callbacks than waiting for each send?

The seeds' sync vs async send, with both real clients (scenarios/clients/producers.py):
confluent-kafka's Producer (librdkafka) and kafka-python's KafkaProducer, each in three modes:

- sync: one record at a time, each waited for before the next is sent (confluent-kafka:
  produce() then flush(); kafka-python: send().get()), acks=all. At most one record is ever in
  flight (counted by the driver: records sent and not yet reported, at every send);
- async: every record sent with a delivery callback, flush() at the end, acks=all;
- fire-and-forget: as async, with acks=0: the broker answers nothing, the client reports a
  record sent as soon as its request is written. confluent-kafka's reports then carry no
  offset (None), which the driver counts (unacknowledged); kafka-python 3 reports synthetic
  offsets (the record's index in its batch, as if the batch were at offset 0), so there the
  count says nothing.

Each measurement creates a fresh one-partition topic (as-<variant>-<n> behind the run's
prefix), a fresh producer of the variant's client and mode, sends one warm-up record
(connection, metadata) left out of everything below, then times `records` values of 100-300
bytes (JSON-like, scenarios/clients/payloads.py): records/s from the first send to the end of
flush(), and per-record latency p50/p99 in an HdrHistogram: async and fire-and-forget from the
send call to the delivery report (confluent-kafka: librdkafka's own clock; kafka-python:
perf_counter() at send() to the future's callback), sync the round trip of the send and its
wait. It then reads the partition's high watermark (ListOffsets): every record must be stored
(fire-and-forget included), every one delivered without error, or the measurement fails; and
deletes the topic.

Every mode uses the same producer settings: batch.size 64 KiB, no compression, and linger.ms
0, so that a synchronous send waits for its round trip and not for a linger timer (with
linger.ms 5, each sync record would wait 5 ms more); async sends still batch, since records
pile up while requests are in flight. The records per measurement differ by client and mode
(a sync send costs a round trip, a kafka-python send about 10x a librdkafka one) so that every
sample takes about the same time; records/s is a rate and compares across them.

In sync mode the latency is the round trip of one record alone; in the other modes records
are offered as fast as the client takes them (closed loop), so their latency is mostly the
wait in the client's queue behind the records sent before: latency at saturation, which grows
with `records` and decides nothing.

Claim decided: async-send, one part per client: records/s async/sync >= 5x (threshold chosen
before the scenario's first run, from the brief's suggestion, and not moved after).
Fire-and-forget/async is a contrast only: no claim states it.

Works against any Kafka-protocol broker (kbench's engine or `--bootstrap`): CreateTopics,
DeleteTopics, Produce, Metadata and ListOffsets (with confluent-kafka's AdminClient and
Consumer, dependencies of kbench).
"""

import itertools
import time
from collections.abc import Mapping
from typing import Any

from scenarios.clients import payloads
from scenarios.clients.producers import CONFLUENT, DRIVERS, KAFKA_PYTHON, latency_histogram_us
from scenarios.clients.topics import TopicAdmin
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
)

SYNC, ASYNC, FIRE_AND_FORGET = "sync", "async", "fire-and-forget"
MODES = (SYNC, ASYNC, FIRE_AND_FORGET)
# the chart's x axis: the modes in order of how little each waits for
MODE_STEP = {SYNC: 1, ASYNC: 2, FIRE_AND_FORGET: 3}
_ACKS = {SYNC: "all", ASYNC: "all", FIRE_AND_FORGET: "0"}
_BATCH_SIZE = 64 * 1024
_LINGER_MS = 0
_PAYLOAD = "json"
# async-send: records/s async/sync at or above this, per client (chosen before any run)
ASYNC_OVER_SYNC = 5.0


def _variant_name(client: str, mode: str) -> str:
    return f"{client}-{mode}"


def _records(params: Mapping[str, Any], client: str, mode: str) -> int:
    return int(params["records"][client][mode])


def _clients(params: Mapping[str, Any]) -> list[str]:
    return [c for c in params["clients"] if c in DRIVERS]


class AsyncSend(Scenario):
    name = "async-send"
    title = "Synchronous vs asynchronous sends"
    question = (
        "How much faster does a producer send with delivery callbacks than waiting for each "
        "record's acknowledgement, and what does acks=0 add (confluent-kafka, kafka-python)?"
    )
    parameters = {
        "clients": "the clients run (confluent-kafka, kafka-python)",
        "records": "records per measurement, by client and mode (sync, async, fire-and-forget), "
        "sized so that every sample takes about as long",
        "value_bytes": "[low, high]: value sizes, drawn uniformly per record (JSON-like)",
        "rounds": "interleaved repeats of every variant",
    }
    quick_seconds = 32  # measured: `kbench run`, 2-core VM, 2026-11-29 (8 min 27 s for all)
    profiles = {
        "smoke": {
            "clients": [CONFLUENT, KAFKA_PYTHON],
            "records": {
                CONFLUENT: {SYNC: 50, ASYNC: 2000, FIRE_AND_FORGET: 2000},
                KAFKA_PYTHON: {SYNC: 30, ASYNC: 1000, FIRE_AND_FORGET: 1000},
            },
            "value_bytes": [100, 300],
            "rounds": 1,
        },
        "quick": {
            "clients": [CONFLUENT, KAFKA_PYTHON],
            # about 0.5 s a sample here: confluent-kafka ~8,000 records/s sync, ~300,000
            # async; kafka-python ~1,000 sync, ~30,000 async. Six rounds, the fewest whose
            # median has a 95 % interval, keep the profile under 45 s on 2 cores
            "records": {
                CONFLUENT: {SYNC: 4000, ASYNC: 120_000, FIRE_AND_FORGET: 120_000},
                KAFKA_PYTHON: {SYNC: 500, ASYNC: 15_000, FIRE_AND_FORGET: 15_000},
            },
            "value_bytes": [100, 300],
            "rounds": 6,
        },
        "full": {
            "clients": [CONFLUENT, KAFKA_PYTHON],
            "records": {
                CONFLUENT: {SYNC: 20_000, ASYNC: 500_000, FIRE_AND_FORGET: 500_000},
                KAFKA_PYTHON: {SYNC: 2000, ASYNC: 60_000, FIRE_AND_FORGET: 60_000},
            },
            "value_bytes": [100, 300],
            "rounds": 9,
        },
    }
    metrics = (
        Metric(
            "records_per_s",
            "records/s",
            "higher",
            "records / (first send to the end of flush(), or of the last record's wait in sync)",
        ),
        Metric(
            "p50_latency_us",
            "µs",
            "lower",
            "median per-record latency: sync, the round trip of the send and its wait; async "
            "and fire-and-forget, send call to delivery report (saturation latency: records "
            "offered as fast as the client takes them)",
        ),
        Metric("p99_latency_us", "µs", "lower", "99th percentile latency, as p50"),
    )
    charts = (
        SweepChart(
            "records/s and latency per mode",
            "mode_step",
            ("records_per_s", "p50_latency_us"),
            xlabel="mode: 1 sync (wait for each), 2 async (callbacks), 3 fire-and-forget (acks=0)",
            along=("mode", "acks"),
        ),
    )

    def variants(self, params: Mapping[str, Any]) -> list[Variant]:
        return [
            Variant(
                _variant_name(client, mode),
                {
                    "client": client,
                    "mode": mode,
                    "mode_step": MODE_STEP[mode],
                    "acks": _ACKS[mode],
                },
            )
            for client, mode in itertools.product(_clients(params), MODES)
        ]

    def contrasts(self, params: Mapping[str, Any]) -> list[Contrast]:
        contrasts = []
        for client in _clients(params):
            contrasts += [
                Contrast(
                    f"{client}-async-vs-sync",
                    "records_per_s",
                    _variant_name(client, ASYNC),
                    _variant_name(client, SYNC),
                    f"records/s, async with callbacks / one at a time waiting for each ({client})",
                ),
                Contrast(
                    f"{client}-fire-and-forget-vs-async",
                    "records_per_s",
                    _variant_name(client, FIRE_AND_FORGET),
                    _variant_name(client, ASYNC),
                    f"records/s, fire-and-forget (acks=0) / async with acks=all ({client})",
                ),
            ]
        return contrasts

    def claim_checks(self, params: Mapping[str, Any]) -> list[ClaimCheck]:
        return [
            ClaimCheck(
                "async-send",
                f"{client}-async-vs-sync",
                ASYNC_OVER_SYNC,
                part=f"{client}: records/s async/sync >= {ASYNC_OVER_SYNC:g}",
            )
            for client in _clients(params)
        ]

    def cluster_writes(self, params: Mapping[str, Any]) -> list[TopicWrite]:
        """One topic per measurement, created, written and deleted in turn: as-<variant>-<n>,
        one partition."""
        low, high = params["value_bytes"]
        records = sum(
            _records(params, client, mode) + 1  # and the warm-up record
            for client, mode in itertools.product(_clients(params), MODES)
        )
        total = records * (low + high) // 2 * (params["rounds"] + 1)
        return [TopicWrite("as-<variant>-<n>", 1, total)] if total else []

    # -- setup ----------------------------------------------------------------------------------
    def setup(self, ctx: RunContext) -> None:
        if ctx.bootstrap is None:
            raise Skip("no broker to produce to")
        try:
            import confluent_kafka.admin  # noqa: F401 - the install holds it
            from confluent_kafka import Consumer
        except ImportError as error:  # a runtime dependency: only a broken install gets here
            raise Skip(f"confluent-kafka cannot be imported: {error}") from error
        unknown = set(ctx.params["clients"]) - set(DRIVERS)
        if unknown:
            raise ValueError(f"unknown clients {sorted(unknown)}; choose from {sorted(DRIVERS)}")
        for client in list(ctx.params["clients"]):
            reason = DRIVERS[client].unavailable()
            if reason is not None:
                ctx.params["clients"] = [c for c in ctx.params["clients"] if c != client]
                ctx.notes.append(f"{client} variants left out: {reason}")
        if not _clients(ctx.params):
            raise Skip("no client left to run: " + "; ".join(ctx.notes))
        low, high = ctx.params["value_bytes"]
        ctx.state["values"] = payloads.values(_PAYLOAD, payloads.DEFAULT_COUNT, low, high)
        ctx.state["admin"] = TopicAdmin(ctx.bootstrap)
        ctx.state["consumer"] = Consumer(
            {"bootstrap.servers": ctx.bootstrap, "group.id": "kbench-async-send"}
        )
        ctx.state["topics"] = 0
        ctx.state["deliveries"] = []  # per measurement: what was sent, reported and stored
        # every measurement creates and deletes a topic: find out now if that works
        reason = ctx.state["admin"].probe(ctx.topic("as-probe"))
        if reason is not None:
            self.teardown(ctx)
            raise Skip(reason)

    def teardown(self, ctx: RunContext) -> None:
        consumer = ctx.state.pop("consumer", None)
        if consumer is not None:
            consumer.close()
        ctx.state.pop("admin", None)  # the client's threads end with it
        ctx.state.pop("values", None)

    # -- measure --------------------------------------------------------------------------------
    def measure(self, ctx: RunContext, variant: Variant) -> dict[str, float]:
        ctx.state["topics"] += 1
        with ctx.state["admin"].fresh(
            ctx.topic(f"as-{variant.name}-{ctx.state['topics']}")
        ) as topic:
            return self._produce(ctx, variant, topic)

    def _produce(self, ctx: RunContext, variant: Variant, topic: str) -> dict[str, float]:
        client, mode = variant.params["client"], variant.params["mode"]
        count = _records(ctx.params, client, mode)
        pool = ctx.state["values"]
        values = list(itertools.islice(itertools.cycle(pool), count))
        assert ctx.bootstrap is not None  # setup skips without one
        driver = DRIVERS[client](
            ctx.bootstrap,
            batch_size=_BATCH_SIZE,
            linger_ms=_LINGER_MS,
            codec="none",
            acks=variant.params["acks"],
        )
        try:
            driver.warm_up(topic, pool[0])  # connection, metadata; offset 0
            run = driver.produce(topic, values, sync=mode == SYNC)
        finally:
            driver.close()
        stored = _high_watermark(ctx, topic, expected=count + 1) - 1  # less the warm-up
        ctx.state["deliveries"].append(
            {
                "variant": variant.name,
                "topic": topic,
                "client": client,
                "mode": mode,
                "produced": count,
                "delivered": run.delivered,
                "errors": len(run.errors),
                "left": run.left,
                "stored": stored,
                "unacknowledged": run.unacknowledged,
                "max_in_flight": run.max_in_flight,
                "latencies": len(run.latencies_s),
            }
        )
        if run.left or run.errors or run.delivered != count or stored != count:
            raise RuntimeError(
                f"{variant.name}: {count} produced, {run.delivered} delivered, {run.left} left "
                f"in the queue, {len(run.errors)} errors ({run.errors[:3]}), {stored} stored"
            )
        if not run.latencies_s:
            raise RuntimeError(f"{variant.name}: no delivery report carried a latency")
        histogram = latency_histogram_us(run.latencies_s)
        return {
            "records_per_s": count / run.seconds,
            "p50_latency_us": float(histogram.get_value_at_percentile(50)),
            "p99_latency_us": float(histogram.get_value_at_percentile(99)),
        }


def _high_watermark(ctx: RunContext, topic: str, expected: int, timeout_s: float = 10) -> int:
    """The partition's high watermark (ListOffsets), waited for up to timeout_s to reach
    `expected`: with acks=0 the last records may still be on their way when flush() returns."""
    from confluent_kafka import TopicPartition

    deadline = time.monotonic() + timeout_s
    while True:
        _, high = ctx.state["consumer"].get_watermark_offsets(
            TopicPartition(topic, 0), timeout=timeout_s, cached=False
        )
        if high >= expected or time.monotonic() > deadline:
            return int(high)
        time.sleep(0.02)
