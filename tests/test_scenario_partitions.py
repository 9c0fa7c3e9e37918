"""partitions: the smoke profile through the runner on the cluster the scenario starts itself
(three brokers and a controller), and against a separate one-broker cluster as if it were a
user's (--bootstrap).

Physics counted, not timed: a group member beyond the partition count is given no partition and
reads no record (the assignor has nothing left for it: deterministic), and the group as a whole
reads every record written exactly once (their count and the sum of their ids), its members
holding each partition once; every broker and client process is metered by role; against a
cluster that is not kbench's own the flush part is left out with a note and every topic created
is deleted. No test says how fast anything is, nor whether more partitions or members are
faster: that is the scenario's verdict to give, from intervals.
"""

import copy
import math

import pytest

from scenarios.catalog.partitions import (
    MORE_THROUGHPUT,
    NO_FURTHER,
    RULE_GAIN,
    SCALES,
    SCATTERED,
    Partitions,
    group_variant,
)
from scenarios.catalog.registry import SCENARIOS
from scenarios.clients.cluster import probe
from scenarios.clients.local_broker import LocalCluster
from scenarios.harness.claims import CLAIMS
from scenarios.harness.runner import run_scenario
from scenarios.harness.scenario import RunContext

S = Partitions()
PREFIX = "kbench-testrun-"


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """One smoke run, the scenario's own cluster: (result, context)."""
    ctx = RunContext(
        work_dir=str(tmp_path_factory.mktemp("partitions")),
        params=copy.deepcopy(dict(S.profiles["smoke"])),
        topic_prefix=PREFIX,
    )
    return run_scenario(S, ctx, "smoke"), ctx


@pytest.fixture(scope="module")
def external(tmp_path_factory):
    """A smaller smoke run against a separate one-broker cluster, as --bootstrap runs it (a
    group of two on one partition: one member idle): (result, context, the topics left on
    the cluster)."""
    directory = tmp_path_factory.mktemp("partitions-external")
    params = copy.deepcopy(dict(S.profiles["smoke"]))
    params.update(produce=[], disk=[], group=[[1, 2]], group_records=1000)
    # a group's first join waits group.initial.rebalance.delay.ms (Kafka's default 3 s) for more
    # members: a user's setting, shortened here as kbench's own cluster has it
    settings = {"group.initial.rebalance.delay.ms": "100"}
    with LocalCluster(str(directory / "cluster"), 1, settings) as cluster:
        ctx = RunContext(
            work_dir=str(directory),
            params=params,
            bootstrap=cluster.bootstrap,
            engine=False,
            topic_prefix=PREFIX,
        )
        result = run_scenario(S, ctx, "smoke")
        left = [t for t in probe(cluster.bootstrap).topics if t.startswith(PREFIX)]
    return result, ctx, left


def test_smoke_runs_every_variant_every_round_with_each_process_metered(smoke):
    result, _ = smoke
    assert result.skipped is None and result.error is None, result.error
    names = [v["name"] for v in result.variants]
    assert names == [
        "produce-p1-m1",
        "produce-p3-m1",
        "disk-p1",
        "disk-p16",
        "group-p2-k1",
        "group-p2-k3",
    ]
    assert len(result.samples) == (S.profiles["smoke"]["rounds"] + 1) * len(names)
    for sample in result.samples:
        for name, value in sample.values.items():
            assert math.isfinite(value) and value >= 0, (sample.variant, name, value)
        assert sample.values["records_per_s"] > 0
        assert {"broker_cpu_cores", "client_cpu_cores"} <= set(sample.values)
        roles = set(sample.resources["processes"])
        assert {"broker-1", "broker-2", "broker-3", "controller", "disk-producer"} <= roles
        assert {f"member-{k}" for k in (1, 2, 3)} <= roles
        # a producer process per leader: the three brokers each lead a partition
        assert {f"producer-{i}" for i in range(1, 4)} <= roles
    for sample in result.samples:  # the engine's flush and the device under it, every P
        if sample.variant.startswith("disk-"):
            assert sample.values["flush_ms"] > 0
            assert "device_writes_per_mb" in sample.values
    # one note: the CPU each variant's steps used, to read a flat curve by
    (note,) = result.notes
    assert note.startswith("CPU in cores") and all(name in note for name in names)
    # the machine's busy time is counted in 10 ms ticks: a step of a smoke run may be shorter
    # than one, but not the whole run
    assert any(sample.values["machine_cpu_cores"] > 0 for sample in result.samples)


def test_members_beyond_the_partition_count_get_no_partition_and_read_nothing(smoke):
    result, ctx = smoke
    extra = [e for e in ctx.state["checked"] if len(e["members"]) > e["partitions"]]
    assert extra, "no group larger than its topic's partition count ran"
    for entry in ctx.state["checked"]:
        p, members = entry["partitions"], entry["members"]
        idle = [i for i, held in enumerate(members) if not held]
        # exactly the members beyond the partition count idle, and they read nothing
        assert len(idle) == max(len(members) - p, 0), entry
        assert all(entry["records"][i] == 0 for i in idle), entry
        assert all(entry["records"][i] > 0 for i in range(len(members)) if i not in idle), entry
    for sample in result.samples:
        if sample.variant == group_variant(2, 3):
            assert sample.values["idle_members"] == 1
            assert sample.values["idle_records"] == 0
        elif sample.variant.startswith("group-"):
            assert sample.values["idle_members"] == 0


def test_the_group_reads_every_record_exactly_once(smoke):
    _, ctx = smoke
    checked = ctx.state["checked"]
    groups = [v for v in S.variants(S.profiles["smoke"]) if v.params["kind"] == "group"]
    assert len(checked) == len(groups) * (S.profiles["smoke"]["rounds"] + 1)
    for entry in checked:
        assert entry["written"] == S.profiles["smoke"]["group_records"]
        assert entry["read"] == entry["written"] == sum(entry["records"]), entry
        assert entry["id_sum"] == entry["written_id_sum"], entry
        held = sorted(p for parts in entry["members"] for p in parts)
        assert held == list(range(entry["partitions"])), entry


def test_against_a_users_cluster_the_flush_is_left_out_and_topics_deleted(external):
    result, ctx, left = external
    assert result.error is None, result.error
    assert "flush and device counters left out" in " ".join(result.notes)
    assert result.notes[-1].startswith("CPU in cores")
    for sample in result.samples:
        assert "flush_ms" not in sample.values
        assert "broker_cpu_cores" not in sample.values  # no broker process of its own
    assert [v["name"] for v in result.variants] == ["group-p1-k2"]
    for entry in ctx.state["checked"]:
        assert entry["read"] == entry["written"] and entry["id_sum"] == entry["written_id_sum"]
        assert sorted(entry["records"]) == [0, entry["written"]]  # the second member idle
    assert ctx.state["topics"] and all(t.startswith(PREFIX) for t in ctx.state["topics"])
    assert left == []


def test_claims_are_decided_on_the_variants_they_are_about():
    params = S.profiles["quick"]
    variants = {v.name for v in S.variants(params)}
    contrasts = {c.name: c for c in S.contrasts(params)}
    for contrast in contrasts.values():
        assert {contrast.numerator, contrast.denominator} <= variants, contrast
    checks = {(c.claim, c.contrast): c.threshold for c in S.claim_checks(params)}
    assert checks == {
        ("partitions", "partitions-throughput"): MORE_THROUGHPUT,
        ("partitions", "disk-scattered"): SCATTERED,
        ("consumer-group-parallel", "group-scales"): SCALES,
        ("consumer-group-parallel", "group-no-further"): NO_FURTHER,
        ("consumers-x2", "consumers-x2"): RULE_GAIN,
    }
    assert (contrasts["group-no-further"].numerator, contrasts["group-no-further"].denominator) == (
        "group-p2-k2",
        "group-p2-k3",
    )
    assert (contrasts["consumers-x2"].numerator, contrasts["consumers-x2"].denominator) == (
        "group-p2-k1",
        "group-p1-k1",
    )
    for claim in ("partitions", "consumer-group-parallel", "consumers-x2"):
        assert CLAIMS[claim].scenario == S.name
    assert list(SCENARIOS).index(S.name) > list(SCENARIOS).index("failover")


def test_profiles_and_cluster_writes():
    for profile in ("smoke", "quick", "full"):
        params = S.profiles[profile]
        assert params["brokers"] == 3
        writes = S.cluster_writes(params)
        assert all(w.bytes > 0 for w in writes)
        assert {w.topic for w in writes} >= {f"grp-p{p}" for p, _ in params["group"]}
        assert params["rounds"] >= (6 if profile != "smoke" else 1)
        # the group part has a group larger than its topic's partition count
        assert any(k > p for p, k in params["group"])
