"""failover: a partition leader killed under acks=all load on the scenario's own LocalCluster,
smoke sizes, through the real runner; and against an external cluster (--bootstrap), where the
kills are left out.

Physics counted, not timed: with unclean.leader.election.enable=false no acknowledged record is
lost, whether the leader dies with the ISR whole or as its last live member; with it on and the
ISR left without a live member, the records only the dead leader had are lost. Every broker's
CPU is metered by role, the restarted ones too. No test says how fast anything is.
"""

import array
import copy

import pytest

from scenarios.catalog.failover import VARIANTS, Failover
from scenarios.catalog.registry import SCENARIOS
from scenarios.clients.failover import Kill, Produced
from scenarios.clients.local_broker import LocalCluster
from scenarios.clients.topics import TopicAdmin
from scenarios.harness.runner import run_scenario
from scenarios.harness.scenario import RunContext

S = Failover()
PREFIX = "kbench-testrun-"


def _run(tmp_path, params: dict, bootstrap: str | None = None):
    ctx = RunContext(
        work_dir=str(tmp_path),
        params=params,
        bootstrap=bootstrap,
        topic_prefix=PREFIX,
        engine=bootstrap is None,
    )
    return run_scenario(S, ctx, "smoke"), ctx


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """One smoke run on the scenario's own cluster: (result, context)."""
    return _run(tmp_path_factory.mktemp("failover"), copy.deepcopy(dict(S.profiles["smoke"])))


def _measured(result):
    return [s for s in result.samples if not s.warmup]


def test_it_is_registered_after_replication():
    names = list(SCENARIOS)
    assert names.index("failover") == names.index("replication") + 1


def test_smoke_kills_once_per_variant_and_every_round_is_kept(smoke):
    result, _ = smoke
    assert result.skipped is None and result.error is None, result.error
    names = [v["name"] for v in result.variants]
    assert names == S.profiles["smoke"]["variants"]
    assert len(result.samples) == (S.profiles["smoke"]["rounds"] + 1) * len(names)
    for sample in result.samples:  # the warm-up writes and reads back without a kill
        assert ("unavailability_ms" in sample.values) == (not sample.warmup), sample


def test_no_acknowledged_record_is_lost_with_unclean_election_off(smoke):
    """Every record acknowledged is read back, the leader killed with the ISR whole and as
    the ISR's last live member alike; nothing failed to deliver."""
    result, _ = smoke
    for sample in result.samples:
        assert not VARIANTS[sample.variant]["unclean"]
        assert sample.values["acked"] > 0, sample
        assert sample.values["lost"] == 0, sample
        assert sample.values["delivery_errors"] == 0, sample
    assert any(
        "finding: acknowledged-then-lost" in note and " 0 of " in note for note in result.notes
    )


def test_every_broker_is_metered_by_role_and_the_clients_are_processes_of_their_own(smoke):
    result, _ = smoke
    for sample in result.samples:
        roles = set(sample.resources["processes"])
        assert {"broker-1", "broker-2", "broker-3", "controller", "producer", "consumer"} <= roles


def test_the_samples_say_whether_the_producer_kept_its_rate(smoke):
    result, _ = smoke
    for sample in result.samples:
        assert 0 < sample.values["achieved_fraction"] <= 1


def test_unclean_election_loses_what_only_the_dead_leader_had(tmp_path):
    """The ISR left without a live member and unclean election on: the stale follower leads,
    and the records the dead leader acknowledged alone are gone (counted, here asserted as
    physics: min.insync.replicas=1 let the lone leader acknowledge them)."""
    params = copy.deepcopy(dict(S.profiles["smoke"]))
    params["variants"] = ["isr-of-one-unclean"]
    result, _ = _run(tmp_path, params)
    assert result.error is None, result.error
    [sample] = _measured(result)
    assert 0 < sample.values["lost"] < sample.values["acked"]
    assert sample.values["delivery_errors"] == 0


def test_against_an_external_cluster_the_kills_are_left_out_with_a_note(tmp_path):
    cluster = LocalCluster(str(tmp_path / "cluster"), 3).start()
    try:
        result, _ = _run(
            tmp_path, copy.deepcopy(dict(S.profiles["smoke"])), bootstrap=cluster.bootstrap
        )
        left = TopicAdmin(cluster.bootstrap).client.list_topics(timeout=10).topics
    finally:
        cluster.stop()
    assert result.error is None, result.error
    assert any("kills left out" in note for note in result.notes)
    assert [v["name"] for v in result.variants] == ["leader-non-idempotent"]
    assert result.contrasts == []
    for sample in result.samples:
        assert "unavailability_ms" not in sample.values
        assert sample.values["acked"] > 0 and sample.values["lost"] == 0
        assert sample.values["duplicates"] == 0  # nothing killed, nothing sent twice
    assert not [t for t in left if t.startswith(PREFIX)]


def test_unavailability_is_the_longest_pause_from_the_last_ack_before_the_kill():
    produced = Produced(
        sent=5,
        seconds=1.0,
        acked=array.array("q", [0, 1, 2, 3, 4]),
        sent_at=array.array("d", [0.0, 0.1, 0.2, 0.3, 1.5]),
        acked_at=array.array("d", [0.05, 0.15, 0.9, 2.0, 2.1]),
    )
    # killed at 0.5: the last ack before it at 0.15, record 4 (sent after) acknowledged at 2.1;
    # record 2's late acknowledgement splits the pause, the longest part is 0.9 -> 2.0
    assert Kill((1,), 1, 0.5).unavailable_s(produced) == pytest.approx(1.1)
    with pytest.raises(ValueError):
        Kill((1,), 1, 1.9).unavailable_s(produced)


def test_the_contrasts_name_their_variants_and_need_both():
    params = dict(S.profiles["quick"])
    assert [(c.numerator, c.denominator) for c in S.contrasts(params)] == [
        ("leader-non-idempotent", "leader-idempotent"),
        ("isr-of-one-clean", "isr-of-one-unclean"),
    ]
    assert S.contrasts({**params, "variants": ["leader-idempotent", "isr-of-one-clean"]}) == []
