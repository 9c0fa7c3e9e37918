"""durability: the smoke path on the scenario's own LocalCluster, through the real runner: the
three settings' costs, and one broker kill -9 watched by three topics.

Physics counted, not timed: after the kill -9 of the broker leading them, no record acks=all
acknowledged on RF=3 is lost (unclean election off), and none that the lone broker of an RF=1
topic acknowledged without any fsync is lost once it is restarted (a process crash leaves the
page cache to the kernel). acks=1's losses are counted, not asserted. No test says how fast
anything is.
"""

import copy

import pytest

from scenarios.catalog.durability import (
    ACKS_1,
    ACKS_ALL,
    CRASH,
    FSYNC,
    KILL,
    NEITHER,
    REPLICATION,
    Durability,
)
from scenarios.catalog.registry import SCENARIOS
from scenarios.harness.runner import run_scenario
from scenarios.harness.scenario import RunContext

S = Durability()


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """One smoke run on the scenario's own cluster."""
    ctx = RunContext(
        work_dir=str(tmp_path_factory.mktemp("durability")),
        params=copy.deepcopy(dict(S.profiles["smoke"])),
        topic_prefix="kbench-testrun-",
    )
    result = run_scenario(S, ctx, "smoke")
    assert result.skipped is None and result.error is None, result.error or result.skipped
    return result


def _kills(result):
    return [s for s in result.samples if s.variant == KILL and not s.warmup]


def test_it_is_registered_after_failover():
    names = list(SCENARIOS)
    assert names.index("durability") > names.index("failover")


def test_smoke_runs_every_variant_each_round_and_kills_once(smoke):
    names = [v["name"] for v in smoke.variants]
    assert names == [FSYNC, REPLICATION, NEITHER] + [
        f"{s}-at-20k" for s in (FSYNC, REPLICATION, NEITHER)
    ] + [KILL]
    assert len(smoke.samples) == (S.profiles["smoke"]["rounds"] + 1) * len(names)
    for sample in smoke.samples:  # the warm-up writes and reads back without a kill
        killed = any(k.endswith("unavailability_ms") for k in sample.values)
        assert killed == (sample.variant == KILL and not sample.warmup), sample
    assert len(_kills(smoke)) == 1


def test_acks_all_on_three_replicas_loses_nothing_acknowledged_to_a_leader_kill(smoke):
    for sample in _kills(smoke):
        values = sample.values
        assert values[f"{ACKS_ALL}_acked"] > 0, values
        assert values[f"{ACKS_ALL}_lost"] == 0, values
        assert values[f"{ACKS_ALL}_delivery_errors"] == 0, values
        assert values[f"{ACKS_ALL}_kept_fraction"] == 1.0
    assert any("RF=3 acks=all (leader killed) 0 of" in note for note in smoke.notes)


def test_a_process_crash_loses_nothing_from_the_page_cache_without_fsync(smoke):
    """The RF=1 topic (flush.messages unset) of the killed broker, read back once the broker
    is restarted: every record it acknowledged is there, though it never fsynced them."""
    for sample in _kills(smoke):
        values = sample.values
        assert values[f"{CRASH}_acked"] > 0, values
        assert values[f"{CRASH}_lost"] == 0, values
        assert values[f"{CRASH}_delivery_errors"] == 0, values
        # records sent while the broker was down were acknowledged once it was back
        assert values[f"{CRASH}_unavailability_ms"] > 0


def test_acks_1_losses_are_counted_not_asserted(smoke):
    for sample in _kills(smoke):
        values = sample.values
        acked, lost = values[f"{ACKS_1}_acked"], values[f"{ACKS_1}_lost"]
        assert acked > 0 and 0 <= lost <= acked
        assert values[f"{ACKS_1}_kept_fraction"] == pytest.approx((acked - lost) / acked)


def test_every_broker_and_client_is_metered_by_role(smoke):
    for sample in smoke.samples:
        roles = set(sample.resources["processes"])
        assert {"broker-1", "broker-2", "broker-3", "controller", "producer-1"} <= roles
        assert {f"{p}-producer" for p in (CRASH, ACKS_1, ACKS_ALL)} | {"reader"} <= roles


def test_the_cost_samples_record_achieved_against_offered(smoke):
    for sample in smoke.samples:
        if sample.variant != KILL:
            assert sample.values["records_per_s"] > 0
            assert 0 < sample.values["achieved_fraction"] <= 1.1, sample


def test_the_disk_what_each_setting_survives_and_what_is_not_staged_are_noted(smoke):
    assert any(note.startswith("the disk: fsync after a 64 KiB append") for note in smoke.notes)
    assert any(note.startswith("not staged: a power loss") for note in smoke.notes)
    [survives] = [n for n in smoke.notes if n.startswith("which failures each setting survives")]
    assert "replication with acks=all survived: 0 of" in survives
    assert "neither survived: 0 of" in survives


def test_the_claim_is_decided_only_with_the_kill():
    quick = dict(S.profiles["quick"])
    assert not quick["kill"] and S.claim_checks(quick) == []
    checks = S.claim_checks({**quick, "kill": True})
    assert [(c.claim, c.contrast) for c in checks] == [
        ("durability", "neither-vs-fsync"),
        ("durability", f"{ACKS_ALL}-kept"),
    ]
