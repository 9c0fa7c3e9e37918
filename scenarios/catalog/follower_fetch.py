"""follower-fetch: consumers that read from a follower in their rack (KIP-392) against consumers
that read from the partition's leader: what moves off the leader, and what the consumers pay.

KIP-392 ("Allow consumers to fetch from closest replica", Kafka 2.4) lets a consumer that names
its rack (client.rack) read from a replica in that rack: the leader, given
replica.selector.class=org.apache.kafka.common.replica.RackAwareReplicaSelector, answers the
consumer's first Fetch (v11+) with preferred_read_replica and no records, and the consumer
fetches from that follower from then on; a follower serves consumers only up to the high
watermark it knows, which it learns from its own next fetch from the leader. KIP-392's reason is
cross-zone traffic: in a cloud, bytes that cross availability zones are billed, and a consumer
reading from the replica in its own zone keeps them inside it. On one machine every byte goes
over loopback, so no traffic crosses anything here; what is measurable is the load that moves off
the leader (the bytes it sends, its CPU and context switches) onto the follower, and what the
consumers pay for it (throughput, end-to-end latency: the follower's high watermark lags the
leader's by a replica fetch).

Here: a kbench cluster of `brokers` broker processes and a controller on this machine
(scenarios/clients/local_broker.py LocalCluster, started in setup), broker N in rack
"rack-N" (one broker per rack, as one per availability zone), the selector set on every broker;
one topic of one partition and min(`brokers`, 3) replicas (min.insync.replicas 2). Or a --bootstrap
cluster: its brokers' racks are read from Metadata and its leader's replica.selector.class from
DescribeConfigs.

Each measurement: `consumers` consumer processes (confluent-kafka's Consumer, librdkafka, which
follows preferred_read_replica; fetch.min.bytes 1, fetch.wait.max.ms 500, librdkafka's defaults)
are assigned the partition at its end, with the variant's client.rack, and tail it; a producer
process (confluent-kafka, acks=all, linger.ms 1) sends mark records every 5 ms until every
consumer has one (the leader's redirect, if any, is behind them), then offers `rate` records/s
of RECORD_SIZE bytes for `load_s` seconds, open loop (record i due at start + i/rate; each
value carries its id and its due time on CLOCK_MONOTONIC, which every process shares), then end
marks on the same schedule until every consumer has had one: the stream goes on, as a
consumer's stream does (a follower learns the high watermark from the answer to its next
fetch, which a new record brings at once, else only replica.fetch.wait.max.ms later). Every
consumer reads until the end mark. The client processes start once, in setup, and are metered
by role. Variants (interleaved, the order reversed every other round):
- follower: client.rack = the rack of a follower of the partition (not the leader's): the leader
  redirects the consumers to it;
- leader-rack: client.rack = the leader's rack: the selector keeps them on the leader;
- no-rack: no client.rack: they read from the leader, as before KIP-392.

Metrics of the load window (from just before the load, whose first record is due 50 ms later,
until every consumer has had the end mark and the producer has flushed): each broker's CPU,
context switches and bytes sent (GET /stats' bytes_out, which counts fetch data sent by sendfile
too) per second, as `leader_...` and `follower_...` (the follower the follower variant reads
from); the share of the consumers' received bytes that came from brokers other than the leader
(librdkafka's per-broker rxbytes, the consumers' own count); the consumers' records/s and each
record's latency from its due time to its delivery (p50, p99, p99.9, HdrHistogram), with the
achieved fraction of the offered rate (below SATURATED_BELOW the sample is saturated: latency at
saturation is the queue's). The runner meters broker-1..N, the controller, the producer and each
consumer process apart, by role.

Checked every sample, counted as metrics and stated in the notes: every consumer got exactly the
records the producer had acknowledged (`missing`: acknowledged and not read, or read and never
produced; `duplicates`), and no record came at or beyond the high watermark of the fetch
response that carried it (`beyond_hw`: librdkafka's cached high watermark, which each fetch
response sets, against each record's offset): a follower serves only what the whole ISR has.

Claim decided (threshold written before the scenario's first run, not moved after):
- follower-fetch ("consumers may read from a follower replica"), on the follower variant: the
  share of the consumers' received bytes that a follower sent, over a level of 0.9 (a Bound):
  confirmed when the ratio's whole interval is at or above 1, i.e. the follower served at least
  90 % of what the consumers read. Why 0.9: the rest allows for what the leader still sends them
  (metadata, and the response that redirects); a client that ignored preferred_read_replica
  would get nearly 0 from the follower, so the verdict cannot be reached by chance.
Contrasts without a claim, each reading from the follower over reading from the leader (no-rack):
the leader's CPU, bytes sent and context switches per second (the load moved off the leader:
with `consumers` consumers and RF replicas the leader serves RF-1 follower fetchers in every
variant and the consumers only when they read from it, so its bytes sent go from about
(RF-1+consumers) to RF-1 times the produced bytes); the follower's CPU (where the load went); the
consumers' p50 and p99 latency and records/s (the follower's high watermark trails the
leader's by one replica fetch); and the leader's CPU, leader-rack over no-rack (both read from
the leader: about 1).

Against a --bootstrap cluster: the topic (ff behind the run's prefix) gets as many replicas as
the cluster has brokers, up to three, and is deleted in teardown. The follower variant is left
out, with the reason printed, when no follower of the partition has a rack other than the
leader's, or the leader's replica.selector.class is not the rack-aware selector (or cannot be
read); leader-rack when the leader has no rack. The brokers' CPU, context switches (their
processes are the engine's, started here) and bytes sent (the engine's /stats) are left out
there, with the contrasts on them; the consumers' own count of each broker's bytes remains.
"""

import contextlib
import json
import multiprocessing
import signal
import struct
import tempfile
import threading
import time
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event
from typing import TYPE_CHECKING, Any

from hdrh.histogram import HdrHistogram

from scenarios.harness.claims import CLAIMS
from scenarios.harness.saturation import ACHIEVED_FRACTION, SATURATED_BELOW
from scenarios.harness.scenario import (
    Bound,
    ClaimCheck,
    Contrast,
    Metric,
    RunContext,
    Scenario,
    Skip,
    TopicWrite,
    Variant,
)

# The client processes (multiprocessing's spawn) import this module: what only the scenario's
# own process uses (kafka-python's protocol classes, the cluster's clients) is loaded where used.
if TYPE_CHECKING:
    from scenarios.clients.local_broker import LocalCluster
    from scenarios.clients.topics import TopicAdmin

RECORD_SIZE = 100
_HEADER = struct.Struct(">qq")  # a value's record id and due time (CLOCK_MONOTONIC ns)
_WARMUP_MARK, _END_MARK = -1, -2  # ids of the records around the load
RACK_AWARE = "org.apache.kafka.common.replica.RackAwareReplicaSelector"
FOLLOWER, LEADER_RACK, NO_RACK = "follower", "leader-rack", "no-rack"
VARIANTS = (FOLLOWER, LEADER_RACK, NO_RACK)
# the follower variant's share of the consumers' bytes, over it: at least 90 % from the
# follower (chosen before the first run; see the module's doc)
FOLLOWER_SHARE = 0.9
_MAX_REPLICATION = 3
_TIMEOUT_S = 60.0
_METADATA_VERSION = 4  # brokers with their racks (v1+), as cluster.py's requests

CLAIM = CLAIMS["follower-fetch"]  # of the claims table, which this scenario decides


def histogram() -> HdrHistogram:
    """An empty latency histogram, as scenarios.clients.pipeline's: 1 ns to 60 s, 3 digits."""
    return HdrHistogram(1, 60_000_000_000, 3)


def rack(node_id: int) -> str:
    """The rack of broker `node_id` in the cluster this scenario starts."""
    return f"rack-{node_id}"


class FollowerFetch(Scenario):
    name = "follower-fetch"
    title = "Reading from the closest replica"
    question = (
        "When consumers read from a follower in their rack (KIP-392) instead of the leader, how "
        "much load (bytes sent, CPU, context switches) moves off the leader, and what do the "
        "consumers pay in throughput and end-to-end latency?"
    )
    parameters = {
        "brokers": "broker processes of the cluster kbench starts (one rack each)",
        "variants": "which variants run (follower, leader-rack, no-rack)",
        "consumers": "consumer processes, each reading every record",
        "rate": "records/s the producer offers",
        "load_s": "seconds of the offered load in each measurement",
        "rounds": "interleaved repeats of every variant",
    }
    _common: Mapping[str, Any] = {"brokers": 3, "variants": list(VARIANTS)}
    # measured: 24 s (`python3 -m scenarios.cli run follower-fetch` 31 s), 2-core VM, load
    # average 5 from other work, 2026-11-29 (28 s at load average 8, 36 s at 11)
    quick_seconds = 24
    profiles = {
        "smoke": {**_common, "consumers": 1, "rate": 2000, "load_s": 0.3, "rounds": 1},
        "quick": {**_common, "consumers": 2, "rate": 5000, "load_s": 0.5, "rounds": 6},
        "full": {**_common, "consumers": 2, "rate": 5000, "load_s": 5.0, "rounds": 10},
    }
    metrics = (
        Metric("records_per_s", "records/s", "higher", "records each consumer got per second"),
        Metric(
            ACHIEVED_FRACTION,
            "ratio",
            "higher",
            f"achieved / offered records/s (the producer's and the slowest consumer's); below "
            f"{SATURATED_BELOW} the sample is saturated",
        ),
        Metric("p50_latency_ms", "ms", "lower", "from a record's due time to its delivery"),
        Metric("p99_latency_ms", "ms", "lower", "99th percentile, as p50"),
        Metric("p999_latency_ms", "ms", "lower", "99.9th percentile, as p50"),
        Metric(
            "follower_share",
            "fraction",
            "higher",
            "of the bytes the consumers received, the share brokers other than the leader sent",
        ),
        Metric("leader_cpu_ms_per_s", "ms/s", "lower", "the leader's CPU-ms per second"),
        Metric(
            "leader_ctx_switches_per_s", "1/s", "lower", "the leader's context switches per second"
        ),
        Metric(
            "leader_mb_out_per_s", "MB/s", "lower", "bytes the leader sent (its /stats), 10^6/s"
        ),
        Metric(
            "follower_cpu_ms_per_s",
            "ms/s",
            "lower",
            "CPU-ms per second of the follower the follower variant reads from",
        ),
        Metric("follower_mb_out_per_s", "MB/s", "lower", "bytes that follower sent, 10^6/s"),
        Metric("missing", "records", "lower", "acknowledged and not read, or read, not produced"),
        Metric("duplicates", "records", "lower", "reads of a record beyond its first"),
        Metric(
            "beyond_hw",
            "records",
            "lower",
            "records at or beyond the high watermark of the response that carried them",
        ),
    )

    # -- declaration ----------------------------------------------------------------------------
    def variants(self, params: Mapping[str, Any]) -> list[Variant]:
        return [Variant(name, {"read": name}) for name in params["variants"]]

    def contrasts(self, params: Mapping[str, Any]) -> list[Contrast]:
        names = set(params["variants"])
        out: list[Contrast] = []
        if FOLLOWER in names:
            out.append(
                Contrast(
                    "follower-share",
                    "follower_share",
                    FOLLOWER,
                    Bound(FOLLOWER_SHARE, f"{FOLLOWER_SHARE:.0%} of the consumers' bytes"),
                    "consumers' bytes from a follower, reading from the follower",
                )
            )
        if {FOLLOWER, NO_RACK} <= names:
            # each reading from the follower over the same reading from the leader
            pairs = [
                ("p50", "p50_latency_ms", "consumers' p50"),
                ("p99", "p99_latency_ms", "consumers' p99"),
                ("records", "records_per_s", "consumers' records/s"),
            ]
            if params.get("broker_stats", True):  # the brokers' processes and /stats
                pairs[:0] = [
                    ("leader-cpu", "leader_cpu_ms_per_s", "leader CPU"),
                    ("leader-bytes", "leader_mb_out_per_s", "leader MB/s sent"),
                    ("leader-cs", "leader_ctx_switches_per_s", "leader context switches"),
                    ("follower-cpu", "follower_cpu_ms_per_s", "follower CPU"),
                ]
            out += [
                Contrast(name, metric, FOLLOWER, NO_RACK, f"{label}, from the follower/leader")
                for name, metric, label in pairs
            ]
        if {LEADER_RACK, NO_RACK} <= names and params.get("broker_stats", True):
            out.append(
                Contrast(
                    "leader-rack",
                    "leader_cpu_ms_per_s",
                    LEADER_RACK,
                    NO_RACK,
                    "leader CPU, the leader's rack/no rack (both read from the leader)",
                )
            )
        return out

    def claim_checks(self, params: Mapping[str, Any]) -> list[ClaimCheck]:
        if FOLLOWER not in params["variants"]:
            return []
        return [ClaimCheck(CLAIM.id, "follower-share", 1.0)]

    def cluster_writes(self, params: Mapping[str, Any]) -> list[TopicWrite]:
        records = params["rate"] * params["load_s"] + 2
        total = records * RECORD_SIZE * len(params["variants"]) * (params["rounds"] + 1)
        return [TopicWrite("ff", 1, int(total))]

    # -- setup ----------------------------------------------------------------------------------
    def setup(self, ctx: RunContext) -> None:
        from scenarios.clients.producers import ConfluentKafkaDriver

        if ConfluentKafkaDriver.unavailable() is not None:
            raise Skip(f"confluent-kafka: {ConfluentKafkaDriver.unavailable()}")
        if not ctx.engine and ctx.bootstrap is None:
            raise Skip("no cluster to read from")
        ctx.state.update(topic=None, found={"missing": 0, "duplicates": 0, "beyond_hw": 0})
        try:
            self._setup(ctx)
        except BaseException:
            self.teardown(ctx)
            raise

    def _setup(self, ctx: RunContext) -> None:
        from scenarios.clients.failover import in_sync, partition_state, quiet_admin
        from scenarios.clients.local_broker import LocalCluster

        params, state = ctx.params, ctx.state
        clients = state["clients"] = Clients(params["consumers"]).spawn()
        ctx.processes.update(clients.pids)
        if ctx.engine:  # a cluster of its own, a rack per broker, the selector on
            directory = tempfile.mkdtemp(prefix="follower-fetch-", dir=ctx.work_dir)
            settings = {
                "replica.selector.class": RACK_AWARE,
                "broker.heartbeat.interval.ms": "500",
                "group.initial.rebalance.delay.ms": "0",
            }
            racks = [rack(n) for n in range(1, params["brokers"] + 1)]
            cluster = LocalCluster(directory, params["brokers"], settings, racks=racks).start()
            state["cluster"] = cluster
            bootstrap = cluster.bootstrap
            for node_id, broker in cluster.brokers.items():
                ctx.processes[f"broker-{node_id}"] = broker.pid
            ctx.processes["controller"] = cluster.controller.pid
        else:
            assert ctx.bootstrap is not None
            bootstrap = ctx.bootstrap
        brokers = broker_racks(bootstrap.split(",")[0])
        admin = state["admin"] = quiet_admin(bootstrap)
        topic = ctx.topic("ff")
        rf = min(len(brokers.racks), _MAX_REPLICATION)
        admin.create(
            topic, 1, replication_factor=rf, configs={"min.insync.replicas": str(min(2, rf))}
        )
        state["topic"] = topic
        in_sync(admin, topic, _TIMEOUT_S)
        leader, replicas, _ = partition_state(admin, topic)
        selector = RACK_AWARE if ctx.engine else leader_selector(admin, leader)
        reasons = left_out(brokers.racks, leader, replicas, selector)
        for variant, reason in reasons.items():
            if variant in params["variants"]:
                params["variants"] = [v for v in params["variants"] if v != variant]
                ctx.notes.append(f"the {variant} variant left out: {reason}")
        if not params["variants"]:
            raise Skip("no variant can run on this cluster")
        follower = pick_follower(brokers.racks, leader, replicas)
        state.update(
            leader=leader,
            follower=follower,
            racks=brokers.racks,
            addresses=brokers.addresses,
            count=0,
        )
        if not ctx.engine:
            params["broker_stats"] = False
            ctx.notes.append(
                "the brokers' CPU, context switches and bytes sent left out: their processes "
                "are the engine's, started here, and bytes sent its /stats; the consumers' own "
                "count of the bytes each broker sent them remains"
            )
        ctx.notes.append(
            "KIP-392's reason is cross-zone traffic, which one machine cannot show (every byte "
            "goes over loopback); what is measured is the load moved off the leader onto the "
            "follower, and what the consumers pay for it"
        )
        clients.start(bootstrap)

    # -- measure --------------------------------------------------------------------------------
    def measure(self, ctx: RunContext, variant: Variant) -> dict[str, float]:
        params, state = ctx.params, ctx.state
        clients: Clients = state["clients"]
        leader, follower = state["leader"], state["follower"]
        client_rack = {
            FOLLOWER: state["racks"].get(follower) if follower is not None else None,
            LEADER_RACK: state["racks"].get(leader),
            NO_RACK: None,
        }[variant.params["read"]]
        cluster: LocalCluster | None = state.get("cluster")
        pids = {}
        if cluster is not None:
            pids = {n: b.pid for n, b in cluster.brokers.items()}
        watched = [n for n in (leader, follower) if n is not None]
        clients.tail(state["topic"], client_rack)
        before = _broker_readings(state, pids, watched)
        run = clients.offer(state["topic"], params["rate"], params["load_s"])
        after = _broker_readings(state, pids, watched)
        values = _values(run, params["rate"], leader, before, after)
        for key in state["found"]:
            state["found"][key] += values[key]
            if values[key]:
                ctx.notes.append(
                    f"check broken: {variant.name}, sample {state['count'] + 1}: "
                    f"{key} {values[key]:.0f} (the rule: 0)"
                )
        state["count"] += 1
        return values

    def teardown(self, ctx: RunContext) -> None:
        state = ctx.state
        if state.get("count"):
            found = state["found"]
            ctx.notes.append(
                f"checked in {state['count']} samples: records acknowledged and not read, or read "
                f"and not produced {found['missing']:.0f}, read twice {found['duplicates']:.0f}, "
                f"at or beyond the high watermark of their response {found['beyond_hw']:.0f} "
                "(the rule: 0 each)"
            )
            state["count"] = 0
        clients = state.pop("clients", None)
        if clients is not None:
            clients.close()
        admin: TopicAdmin | None = state.pop("admin", None)
        cluster = state.pop("cluster", None)
        if cluster is not None:
            cluster.stop()  # its topics go with it
        elif admin is not None and state.get("topic"):
            with contextlib.suppress(Exception):  # the run deletes by prefix too
                admin.delete(state["topic"], timeout_s=15)
        state["topic"] = None


# -- the cluster ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Brokers:
    racks: dict[int, str | None]  # node id -> rack (None: the broker has none)
    addresses: dict[int, str]  # node id -> host:port


def broker_racks(bootstrap: str, timeout_s: float = 10.0) -> Brokers:
    """The brokers and their racks, from Metadata."""
    from kafka.protocol.metadata.metadata import MetadataRequest, MetadataResponse

    from scenarios.clients.cluster import KafkaConnection

    with KafkaConnection(bootstrap, timeout_s=timeout_s) as connection:
        metadata = connection.request(
            MetadataRequest[_METADATA_VERSION](topics=[], allow_auto_topic_creation=False),
            MetadataResponse,
        )
    return Brokers(
        {b.node_id: b.rack or None for b in metadata.brokers},
        {b.node_id: f"{b.host}:{b.port}" for b in metadata.brokers},
    )


def leader_selector(admin: "TopicAdmin", leader: int) -> str | None:
    """The leader broker's replica.selector.class (DescribeConfigs); None when it cannot be
    read."""
    from confluent_kafka.admin import ConfigResource, ResourceType

    resource = ConfigResource(ResourceType.BROKER, str(leader))
    try:
        configs = admin.client.describe_configs([resource])[resource].result(timeout=15)
    except Exception:
        return None
    entry = configs.get("replica.selector.class")
    return entry.value if entry is not None and entry.value else ""


def pick_follower(
    racks: Mapping[int, str | None], leader: int, replicas: Sequence[int]
) -> int | None:
    """A follower of the partition in a rack other than the leader's (the lowest node id), or
    None."""
    mine = racks.get(leader)
    eligible = [r for r in replicas if r != leader and racks.get(r) and racks.get(r) != mine]
    return min(eligible) if eligible else None


def left_out(
    racks: Mapping[int, str | None], leader: int, replicas: Sequence[int], selector: str | None
) -> dict[str, str]:
    """The variants this cluster cannot run, each with why."""
    out = {}
    if selector is None:
        out[FOLLOWER] = "the leader's replica.selector.class could not be read (DescribeConfigs)"
    elif selector != RACK_AWARE:
        out[FOLLOWER] = (
            f"the leader's replica.selector.class is {selector or 'unset'}, not {RACK_AWARE}: "
            "every consumer reads from the leader"
        )
    elif pick_follower(racks, leader, replicas) is None:
        out[FOLLOWER] = (
            "no follower of the partition has a rack (broker.rack) other than the leader's"
        )
    if not racks.get(leader):
        out[LEADER_RACK] = "the leader has no rack (broker.rack)"
    return out


def _broker_readings(
    state: Mapping[str, Any], pids: Mapping[int, int], nodes: Sequence[int]
) -> dict[int, dict[str, float]]:
    """Each watched broker's CPU seconds, context switches (where its process is here) and
    bytes sent (the engine's /stats), now."""
    import psutil

    from scenarios.harness.resources import cpu_seconds

    out: dict[int, dict[str, float]] = {}
    for node in nodes:
        reading: dict[str, float] = {"at": time.monotonic()}
        if node in pids:
            cpu = cpu_seconds(pids[node])
            switches = psutil.Process(pids[node]).num_ctx_switches()
            reading["cpu_s"] = cpu if cpu is not None else 0.0
            reading["switches"] = switches.voluntary + switches.involuntary
            reading["bytes_out"] = _bytes_out(state["addresses"][node])
        out[node] = reading
    return out


def _bytes_out(address: str) -> float:
    with urllib.request.urlopen(f"http://{address}/stats", timeout=5) as response:
        return float(json.loads(response.read())["bytes_out"])


# -- the clients ------------------------------------------------------------------------------
@dataclass
class Offered:
    """One measurement's load: what the producer sent and had acknowledged, and what each
    consumer read."""

    start_ns: int  # the first record's due time (CLOCK_MONOTONIC)
    produced: dict[str, Any]
    consumed: list[dict[str, Any]]


def _value(record: int, due_ns: int, padding: bytes) -> bytes:
    return _HEADER.pack(record, due_ns) + padding


@dataclass
class _Acknowledged:
    """The producer's delivery reports of one load: records acknowledged, their ids' sum."""

    count: int = 0
    ids: int = 0
    errors: list[str] = field(default_factory=list)

    def delivered(self, error: Any, message: Any) -> None:
        if error is not None:
            self.errors.append(str(error))
            return
        (record, _) = _HEADER.unpack_from(message.value())
        if record >= 0:
            self.count += 1
            self.ids += record


def _produce(orders: Connection, done: Event) -> None:  # pragma: no cover - a child process
    with contextlib.suppress(EOFError, BrokenPipeError):  # the parent is gone (closed us)
        _produce_orders(orders, done)


def _produce_orders(orders: Connection, done: Event) -> None:  # pragma: no cover - as above
    """The producer process: per order, mark records every 5 ms until `done`, or `rate`
    records/s for `load_s` seconds from `start_ns`, then end marks at the same rate until
    `done`, answered with the acknowledged records' count and ids' sum, and the delivery
    errors."""
    from confluent_kafka import Producer

    bootstrap = orders.recv()  # the first order: where (the process starts before the cluster)
    producer = Producer(
        {"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 1, "log_level": 2}
    )
    padding = bytes(RECORD_SIZE - _HEADER.size)
    orders.send("ready")
    while (order := orders.recv()) is not None:
        try:
            if order[0] == "mark":  # until every consumer has one: see Clients.tail
                while not done.is_set():
                    producer.produce(order[1], _value(_WARMUP_MARK, 0, padding))
                    producer.poll(0.005)
                if producer.flush(30):
                    raise RuntimeError("the mark records were not delivered")
                orders.send("marked")
            else:
                _, topic, rate, load_s, start_ns = order
                orders.send(_offer(producer, topic, rate, load_s, start_ns, padding, done))
        except Exception as error:
            orders.send(f"{type(error).__name__}: {error}")


def _offer(
    producer: Any,
    topic: str,
    rate: float,
    load_s: float,
    start_ns: int,
    padding: bytes,
    done: Event,
) -> dict[str, Any]:  # pragma: no cover - runs in the producer process
    """Record i due at start_ns + i/rate, open loop; after the last, end marks on the same
    schedule until `done` (the stream goes on: a follower learns the high watermark from its
    next fetch, which new records answer at once, else only after replica.fetch.wait.max.ms);
    then a flush."""
    acknowledged = _Acknowledged()
    delivered = acknowledged.delivered
    count = max(int(rate * load_s), 1)
    sent = 0
    while sent < count:
        wait = start_ns + round(sent * 1e9 / rate) - time.monotonic_ns()
        if wait > 1_000_000:
            producer.poll((wait - 500_000) / 1e9)  # serves delivery reports meanwhile
            continue
        if wait > 0:
            time.sleep(wait / 1e9)
        now = time.monotonic_ns()
        while sent < count and (due := start_ns + round(sent * 1e9 / rate)) <= now:
            try:
                producer.produce(topic, _value(sent, due, padding), on_delivery=delivered)
            except BufferError:  # the client's queue is full: this record waits, late
                producer.poll(0.001)
                break
            sent += 1
        producer.poll(0)
    produced_ns = time.monotonic_ns()
    marks = 0
    while not done.is_set():
        producer.produce(topic, _value(_END_MARK, 0, padding), on_delivery=delivered)
        marks += 1
        wait = start_ns + round((count + marks) * 1e9 / rate) - time.monotonic_ns()
        producer.poll(max(wait, 0) / 1e9)
    left = producer.flush(60)
    return {
        "sent": sent,
        "seconds": (produced_ns - start_ns) / 1e9,
        "acked": acknowledged.count,
        "acked_sum": acknowledged.ids,
        "errors": acknowledged.errors[:5] + ([f"{left} not delivered"] if left else []),
    }


def _consume(orders: Connection) -> None:  # pragma: no cover - a child process
    with contextlib.suppress(EOFError, BrokenPipeError):  # as the producer's
        _consume_orders(orders)


def _consume_orders(orders: Connection) -> None:  # pragma: no cover - as above
    """A consumer process: per order, a new Consumer with the order's client.rack assigned the
    partition at the offset given, tailing it; "tailing" once it has the mark record, then
    every record until the end mark: what it read, its latencies, and the bytes each broker
    sent it (librdkafka's statistics)."""
    bootstrap = orders.recv()  # the first order, as the producer's
    orders.send("ready")
    while (order := orders.recv()) is not None:
        try:
            _, topic, client_rack, offset = order
            orders.send(_tail(bootstrap, topic, client_rack, offset, orders))
        except Exception as error:
            orders.send(f"{type(error).__name__}: {error}")


def _tail(
    bootstrap: str, topic: str, client_rack: str | None, offset: int, orders: Connection
) -> dict[str, Any]:  # pragma: no cover - runs in a consumer process
    from confluent_kafka import Consumer, KafkaException, TopicPartition

    rx: dict[int, int] = {}  # node id -> bytes received, librdkafka's latest report
    reports = [0]

    def statistics(report: str) -> None:
        brokers = json.loads(report).get("brokers", {}).values()
        for broker in brokers:
            if broker.get("nodeid", -1) >= 0:
                rx[broker["nodeid"]] = broker.get("rxbytes", 0)
        reports[0] += 1

    settings: dict[str, Any] = {
        "bootstrap.servers": bootstrap,
        "group.id": "kbench-follower-fetch",  # required; assign() uses no group
        "enable.auto.commit": False,
        "fetch.min.bytes": 1,
        "fetch.wait.max.ms": 500,
        "statistics.interval.ms": 50,
        "stats_cb": statistics,
        "log_level": 2,
    }
    if client_rack is not None:
        settings["client.rack"] = client_rack
    consumer = Consumer(settings)
    partition = TopicPartition(topic, 0, offset)
    try:
        consumer.assign([partition])
        deadline = time.monotonic() + _TIMEOUT_S
        while True:  # tailing once the mark came (after the leader's redirect, if any)
            if time.monotonic() > deadline:
                raise TimeoutError("the mark record did not come")
            message = consumer.poll(0.1)
            if message is not None and message.error() is None:
                break
        seen = reports[0]
        while reports[0] == seen:  # a report after the mark: where the byte counts start
            consumer.poll(0.02)
        rx_before = dict(rx)
        orders.send("tailing")
        latencies = histogram()
        read: set[int] = set()
        count = index_sum = duplicates = beyond = 0
        last_ns = 0
        ended = False
        tp = TopicPartition(topic, 0)
        deadline = time.monotonic() + _TIMEOUT_S
        while not ended:
            if time.monotonic() > deadline:
                raise TimeoutError("the end mark did not come")
            # what has arrived, without waiting: consume(n, timeout) waits for n records or the
            # timeout, which would add to every latency; poll() returns on the first
            messages = consumer.consume(1000, 0) or [m for m in (consumer.poll(0.1),) if m]
            if not messages:
                continue
            now = time.monotonic_ns()
            high = consumer.get_watermark_offsets(tp, cached=True)[1]
            for message in messages:
                if message.error() is not None:
                    raise KafkaException(message.error())
                if (message.offset() or 0) >= high:
                    beyond += 1
                record, due_ns = _HEADER.unpack_from(message.value() or b"")
                if record == _END_MARK:
                    ended = True
                    continue
                if record < 0:
                    continue
                if record in read:
                    duplicates += 1
                    continue
                read.add(record)
                count += 1
                index_sum += record
                latencies.record_value(max(now - due_ns, 1))
            last_ns = now
        seen = reports[0]
        while reports[0] == seen:  # one more report, covering the last fetches
            consumer.poll(0.02)
        return {
            "count": count,
            "sum": index_sum,
            "duplicates": duplicates,
            "beyond_hw": beyond,
            "last_ns": last_ns,
            "histogram": latencies.encode().decode("ascii"),
            "rx": {node: rx.get(node, 0) - rx_before.get(node, 0) for node in rx},
        }
    finally:
        consumer.close()


class Clients:
    """The producer and `consumers` consumer processes (multiprocessing's spawn), kept across
    measurements: process start-up is paid once, and the runner meters each by role."""

    def __init__(self, consumers: int) -> None:
        self.bootstrap = ""
        self._context = multiprocessing.get_context("spawn")
        self._roles: dict[str, tuple[Any, Connection]] = {}
        self._names = ["producer"] + [f"consumer-{k}" for k in range(1, consumers + 1)]
        self._watermarks: Any = None  # a Consumer of this process's, for the partition's end
        self._done: Event = self._context.Event()  # every consumer has had the mark awaited

    def spawn(self) -> "Clients":
        """Start the processes; they load their modules while the caller goes on (e.g. starts
        the cluster), and wait for start(). They ignore SIGINT from birth (a disposition
        inherited across exec, which Python keeps): Ctrl-C is the parent's, which closes them."""
        main = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
        try:
            for name in self._names:
                parent, child = self._context.Pipe()
                args: tuple[Any, ...] = (child, self._done) if name == "producer" else (child,)
                process = self._context.Process(
                    target=_produce if name == "producer" else _consume, args=args, daemon=True
                )
                process.start()
                child.close()
                self._roles[name] = (process, parent)
        except BaseException:
            self.close()
            raise
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
        return self

    def start(self, bootstrap: str) -> "Clients":
        """Tell the processes the cluster's address; once each is ready."""
        self.bootstrap = bootstrap
        try:
            for name in self._names:
                self._send(name, bootstrap)
            for name in self._names:
                self._reply(name, _TIMEOUT_S)
        except BaseException:
            self.close()
            raise
        return self

    @property
    def pids(self) -> dict[str, int]:
        return {name: process.pid for name, (process, _) in self._roles.items()}

    @property
    def consumers(self) -> list[str]:
        return self._names[1:]

    def _reply(self, name: str, timeout_s: float) -> Any:
        process, pipe = self._roles[name]
        deadline = time.monotonic() + timeout_s
        while not pipe.poll(0.05):
            if not process.is_alive():
                raise RuntimeError(f"the {name} process exited ({process.exitcode})")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the {name} process gave no answer in {timeout_s:g} s")
        try:
            reply = pipe.recv()
        except EOFError:
            raise RuntimeError(f"the {name} process exited") from None
        if isinstance(reply, str) and reply not in ("ready", "tailing", "marked"):
            raise RuntimeError(f"the {name} process failed: {reply}")
        return reply

    def _send(self, name: str, order: Any) -> None:
        self._roles[name][1].send(order)

    def tail(self, topic: str, client_rack: str | None) -> None:
        """Every consumer tails `topic` from its end with `client_rack`; returns once each has
        a mark record (the leader's redirect behind them). The producer sends marks until
        then: a follower learns that the high watermark covers a record from the answer to its
        next fetch, which only a newer record brings at once."""
        offset = self._end(topic)
        self._done.clear()
        for name in self.consumers:
            self._send(name, ("tail", topic, client_rack, offset))
        self._send("producer", ("mark", topic))
        try:
            for name in self.consumers:
                self._reply(name, _TIMEOUT_S)
        finally:
            self._done.set()
        self._reply("producer", _TIMEOUT_S)

    def _end(self, topic: str) -> int:
        from confluent_kafka import Consumer, TopicPartition

        if self._watermarks is None:
            self._watermarks = Consumer(
                {"bootstrap.servers": self.bootstrap, "group.id": "kbench-follower-fetch"}
            )
        end: int = self._watermarks.get_watermark_offsets(TopicPartition(topic, 0), timeout=30)[1]
        return end

    def offer(self, topic: str, rate: float, load_s: float) -> Offered:
        """`rate` records/s for `load_s` seconds, from 50 ms from now; once every consumer
        has had the end mark."""
        start_ns = time.monotonic_ns() + 50_000_000
        self._done.clear()
        self._send("producer", ("offer", topic, rate, load_s, start_ns))
        timeout_s = load_s * 4 + _TIMEOUT_S
        try:
            consumed = [self._reply(name, timeout_s) for name in self.consumers]
        finally:
            self._done.set()
        produced = self._reply("producer", timeout_s)
        return Offered(start_ns, produced, consumed)

    def close(self) -> None:
        self._done.set()
        if self._watermarks is not None:
            self._watermarks.close()
            self._watermarks = None
        for _, pipe in self._roles.values():
            with contextlib.suppress(OSError):
                pipe.send(None)
            pipe.close()
        for process, _ in self._roles.values():
            # one still in an order (a consumer waiting for records that will not come, after
            # Ctrl-C or a failure) reads no more orders: it is ended
            process.join(timeout=2)
            if process.exitcode is None:
                process.kill()
                process.join()
        self._roles.clear()


def _values(
    run: Offered,
    rate: float,
    leader: int,
    before: Mapping[int, Mapping[str, float]],
    after: Mapping[int, Mapping[str, float]],
) -> dict[str, float]:
    produced, consumed = run.produced, run.consumed
    if produced["errors"]:
        raise RuntimeError(f"delivery failed: {produced['errors']}")
    due = produced["seconds"] * rate
    latency = histogram()
    missing = duplicates = beyond = 0
    slowest = float("inf")
    total = from_others = 0
    for c in consumed:
        latency.add(HdrHistogram.decode(c["histogram"]))
        if (c["count"], c["sum"]) != (produced["acked"], produced["acked_sum"]):
            missing += abs(produced["acked"] - c["count"]) or 1
        duplicates += c["duplicates"]
        beyond += c["beyond_hw"]
        span = max((c["last_ns"] - run.start_ns) / 1e9, 1e-9)
        slowest = min(slowest, c["count"] / span)
        rx = {int(n): b for n, b in c["rx"].items()}
        total += sum(rx.values())
        from_others += sum(b for n, b in rx.items() if n != leader)
    values = {
        "records_per_s": slowest,
        ACHIEVED_FRACTION: min(produced["sent"] / due if due > 0 else 1.0, slowest / rate, 1.0),
        "p50_latency_ms": latency.get_value_at_percentile(50) / 1e6,
        "p99_latency_ms": latency.get_value_at_percentile(99) / 1e6,
        "p999_latency_ms": latency.get_value_at_percentile(99.9) / 1e6,
        "follower_share": from_others / total if total else 0.0,
        "missing": float(missing),
        "duplicates": float(duplicates),
        "beyond_hw": float(beyond),
    }
    for role, node in (("leader", leader), *(("follower", n) for n in after if n != leader)):
        first, last = before[node], after[node]
        seconds = max(last["at"] - first["at"], 1e-9)
        if "cpu_s" not in last:
            continue
        values[f"{role}_cpu_ms_per_s"] = (last["cpu_s"] - first["cpu_s"]) * 1000 / seconds
        values[f"{role}_mb_out_per_s"] = (last["bytes_out"] - first["bytes_out"]) / 1e6 / seconds
        if role == "leader":
            values["leader_ctx_switches_per_s"] = (last["switches"] - first["switches"]) / seconds
    return values
