"""follower-fetch: consumers reading from a follower in their rack (KIP-392) against reading
from the leader, smoke sizes, through the real runner: on the scenario's own LocalCluster (a rack
per broker, RackAwareReplicaSelector), and against an external cluster (--bootstrap) whose racks
and selector it reads from Metadata and DescribeConfigs.

Physics counted, not timed: a consumer whose client.rack is a follower's gets its records from
that follower, and the leader's byte counter does not move for it after the redirect; every
record produced is read once, none past the high watermark of the response that carried it. No
test says how fast anything is.
"""

import copy
import json
import urllib.request
from types import SimpleNamespace

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from engine.broker.partition import Partition
from engine.broker.replica_manager import FetchParams, FetchPartition, ReplicaManager
from engine.common import TopicPartition as EngineTopicPartition
from engine.metadata import PartitionRegistration
from engine.storage import Log, LogConfig
from scenarios.catalog.follower_fetch import (
    FOLLOWER,
    LEADER_RACK,
    NO_RACK,
    RACK_AWARE,
    FollowerFetch,
    broker_racks,
    left_out,
    pick_follower,
    rack,
)
from scenarios.catalog.registry import SCENARIOS
from scenarios.clients.cluster import partition_views
from scenarios.clients.failover import in_sync, partition_state, quiet_admin
from scenarios.clients.local_broker import LocalCluster
from scenarios.harness.claims import CLAIMS
from scenarios.harness.runner import run_scenario
from scenarios.harness.scenario import RunContext
from tests.cluster_support import CLUSTER_SETTINGS, wait_until
from tests.conftest import make_batch

S = FollowerFetch()
PREFIX = "kbench-testrun-"
CHECKS = ("missing", "duplicates", "beyond_hw")


def _run(tmp_path, params: dict, bootstrap: str | None = None):
    ctx = RunContext(
        work_dir=str(tmp_path),
        params=params,
        bootstrap=bootstrap,
        topic_prefix=PREFIX,
        engine=bootstrap is None,
    )
    return run_scenario(S, ctx, "smoke")


def _measured(result, variant: str) -> list:
    return [s for s in result.samples if s.variant == variant and not s.warmup]


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """One smoke run on the scenario's own cluster."""
    return _run(tmp_path_factory.mktemp("follower-fetch"), copy.deepcopy(dict(S.profiles["smoke"])))


@pytest.fixture(scope="module")
def racked(tmp_path_factory):
    """A cluster of three brokers in racks a, b, c with the rack-aware selector: what a
    --bootstrap user would point kbench at."""
    settings = {**CLUSTER_SETTINGS, "replica.selector.class": RACK_AWARE}
    directory = str(tmp_path_factory.mktemp("racked"))
    with LocalCluster(directory, 3, settings, racks=["a", "b", "c"]) as cluster:
        yield cluster


def test_it_is_registered_after_the_first_cluster_scenarios_and_its_claim_is_known():
    names = list(SCENARIOS)
    assert names.index("follower-fetch") > names.index("failover")
    assert CLAIMS["follower-fetch"].scenario == "follower-fetch"


def test_smoke_runs_every_variant_and_meters_each_process_by_role(smoke):
    assert smoke.skipped is None and smoke.error is None, smoke.error
    assert [v["name"] for v in smoke.variants] == [FOLLOWER, LEADER_RACK, NO_RACK]
    assert len(smoke.samples) == (S.profiles["smoke"]["rounds"] + 1) * 3
    for sample in smoke.samples:
        roles = set(sample.resources["processes"])
        assert {"broker-1", "broker-2", "broker-3", "controller", "producer"} <= roles
        assert "consumer-1" in roles
        assert 0 < sample.values["achieved_fraction"] <= 1
    assert [c["id"] for c in smoke.claims] == ["follower-fetch"]


def test_reading_from_the_follower_moves_the_consumers_bytes_to_it(smoke):
    """The consumers' own count says the follower sent them what they read; the follower's
    byte counter moves with it only when they read from it."""
    for sample in _measured(smoke, FOLLOWER):
        assert sample.values["follower_share"] >= 0.9, sample.values
    for variant in (LEADER_RACK, NO_RACK):  # the selector keeps them on the leader
        for sample in _measured(smoke, variant):
            assert sample.values["follower_share"] < 0.1, (variant, sample.values)
    served = min(s.values["follower_mb_out_per_s"] for s in _measured(smoke, FOLLOWER))
    idle = max(s.values["follower_mb_out_per_s"] for s in _measured(smoke, NO_RACK))
    assert served > 10 * idle


def test_every_record_is_read_once_and_none_beyond_the_high_watermark(smoke):
    for sample in smoke.samples:
        for check in CHECKS:
            assert sample.values[check] == 0, (sample.variant, check, sample.values)
    assert any("read twice 0" in note and "high watermark" in note for note in smoke.notes)


def test_the_follower_serves_a_backlog_and_the_leader_sends_none_of_it(racked):
    """A consumer in a follower's rack reads a backlog every replica holds: the leader answers
    its first fetch with preferred_read_replica and no records, and sends none of the records
    (its sendfile counter does not move); the follower sends them all; what is read is exactly
    what was produced."""
    admin = quiet_admin(racked.bootstrap)
    topic = "backlog"
    admin.create(topic, 1, replication_factor=3)
    in_sync(admin, topic)
    leader, replicas, _ = partition_state(admin, topic)
    racks = broker_racks(racked.bootstrap.split(",")[0]).racks
    follower = pick_follower(racks, leader, replicas)
    assert follower is not None and racks[follower] != racks[leader]
    producer = Producer({"bootstrap.servers": racked.bootstrap, "acks": "all", "linger.ms": 5})
    values = [b"%06d" % i + bytes(994) for i in range(2000)]
    for value in values:
        producer.produce(topic, value)
    assert producer.flush(30) == 0
    wait_until(  # every replica has it all, so no replica fetch moves a byte while we read
        lambda: all(
            partition_views(racked.brokers[n].bootstrap)[f"{topic}-0"]["log_end_offset"]
            == len(values)
            for n in replicas
        ),
        what="every replica holding the backlog",
    )
    before = {n: _sendfile(racked, n) for n in racked.brokers}
    consumer = Consumer(
        {
            "bootstrap.servers": racked.bootstrap,
            "group.id": "backlog",
            "client.rack": racks[follower],
            "enable.auto.commit": False,
        }
    )
    consumer.assign([TopicPartition(topic, 0, 0)])
    read: list[bytes] = []
    wait_until(
        lambda: (
            read.extend(m.value() for m in consumer.consume(1000, 0.2))
            or (len(read) >= len(values))
        ),
        what="the backlog read",
    )
    consumer.close()
    sent = {n: _sendfile(racked, n) - before[n] for n in racked.brokers}
    assert read == values
    assert sent[follower] >= sum(map(len, values))
    assert sent[leader] == 0
    assert all(sent[n] == 0 for n in racked.brokers if n not in (leader, follower))
    admin.delete(topic)


def _sendfile(cluster: LocalCluster, node: int) -> int:
    with urllib.request.urlopen(f"http://{cluster.brokers[node].bootstrap}/stats") as f:
        return json.loads(f.read())["bytes_sendfile"]


def test_against_a_cluster_with_racks_it_reads_them_and_the_selector(tmp_path, racked):
    params = {**copy.deepcopy(dict(S.profiles["smoke"])), "variants": [FOLLOWER, NO_RACK]}
    result = _run(tmp_path, params, bootstrap=racked.bootstrap)
    assert result.error is None, result.error
    assert [v["name"] for v in result.variants] == [FOLLOWER, NO_RACK]
    assert any("context switches and bytes sent left out" in note for note in result.notes)
    for sample in _measured(result, FOLLOWER):
        assert sample.values["follower_share"] >= 0.9
        assert "leader_cpu_ms_per_s" not in sample.values  # the brokers are not ours
    for sample in result.samples:
        assert all(sample.values[check] == 0 for check in CHECKS), sample.values
    left = quiet_admin(racked.bootstrap).client.list_topics(timeout=10).topics
    assert not [t for t in left if t.startswith(PREFIX)]


def test_what_a_cluster_cannot_run_is_left_out_with_the_reason():
    racks = {1: rack(1), 2: rack(2), 3: rack(3)}
    assert left_out(racks, 1, [1, 2, 3], RACK_AWARE) == {}
    assert pick_follower(racks, 1, [1, 2, 3]) == 2
    assert "not " + RACK_AWARE in left_out(racks, 1, [1, 2, 3], "")[FOLLOWER]
    assert "could not be read" in left_out(racks, 1, [1, 2, 3], None)[FOLLOWER]
    same = {1: "a", 2: "a", 3: None}  # no follower in a rack of its own
    assert "no follower" in left_out(same, 1, [1, 2, 3], RACK_AWARE)[FOLLOWER]
    none = {1: None, 2: None, 3: None}
    assert set(left_out(none, 1, [1, 2, 3], RACK_AWARE)) == {FOLLOWER, LEADER_RACK}


def test_the_contrasts_need_their_variants_and_the_engines_counters():
    params = dict(S.profiles["quick"])
    names = {c.name for c in S.contrasts(params)}
    assert {"follower-share", "leader-cpu", "leader-bytes", "p99", "leader-rack"} <= names
    external = {c.name for c in S.contrasts({**params, "broker_stats": False})}
    assert external == {"follower-share", "p50", "p99", "records"}
    assert S.contrasts({**params, "variants": [NO_RACK]}) == []
    assert S.claim_checks({**params, "variants": [LEADER_RACK, NO_RACK]}) == []


def test_the_leader_tells_a_consumer_of_its_replica_at_once(tmp_path):
    """The leader's answer that sends a consumer to a follower (preferred_read_replica, no
    records) goes out at once, as Kafka's fetchMessages answers it, not after the consumer's
    fetch.max.wait.ms in the purgatory: the answer carries no bytes, so fetch.min.bytes never
    counts it ready."""
    tp = EngineTopicPartition("t", 0)
    partition = Partition(tp, Log(str(tmp_path / "t-0"), LogConfig()), leader_id=-1, local_id=1)
    partition.make_leader(PartitionRegistration((1, 2, 3), (1, 2, 3), 1, 0, 0), now_ms=0)
    end = partition.append_records_to_leader(make_batch(5), 1, 0).last_offset + 1
    for follower in (2, 3):
        partition.update_follower_fetch_state(follower, end, 0, now_ms=1)
    manager = ReplicaManager(SimpleNamespace(partition={tp: partition}.get), lambda: 1)
    manager.rack_of = {1: "a", 2: "b", 3: "c"}.get
    answers: list = []
    params = FetchParams(max_wait_ms=500, min_bytes=1, max_bytes=1 << 20, client_rack="b")
    manager.fetch_messages(params, [FetchPartition(tp, 0, 1 << 20)], answers.append)
    [[answer]] = answers  # answered now, before any tick of the purgatory
    assert answer.preferred_read_replica == 2 and answer.records == []
    answers.clear()
    same = FetchParams(max_wait_ms=500, min_bytes=1, max_bytes=1 << 20, client_rack="a")
    manager.fetch_messages(same, [FetchPartition(tp, 0, 1 << 20)], answers.append)
    [[answer]] = answers  # in the leader's rack: read here
    assert answer.preferred_read_replica == -1 and answer.size > 0
