"""disk-write-pattern decides each claim on the writes the claim is about."""

import pytest

from scenarios.catalog.disk_write_pattern import DiskWritePattern

SCENARIO = DiskWritePattern()


def _checks(modes: list[str]) -> dict[str, str]:
    params = {**SCENARIO.profiles["quick"], "modes": modes}
    contrasts = {c.name for c in SCENARIO.contrasts(params)}
    checks = {c.claim: c.contrast for c in SCENARIO.claim_checks(params)}
    assert set(checks.values()) <= contrasts
    return checks


@pytest.mark.parametrize(
    ("modes", "decided_on"),
    [
        (["buffered", "fsync", "direct"], "seq-vs-random-direct-4 KiB"),
        (["buffered", "fsync"], "seq-vs-random-fsync-4 KiB"),  # O_DIRECT refused here
    ],
)
def test_seq_write_is_decided_on_writes_that_reach_the_device(modes, decided_on):
    checks = _checks(modes)
    assert checks["seq-write"] == decided_on
    assert checks["page-cache-write"] == "buffered-vs-fsync-4 KiB"


def test_buffered_writes_alone_decide_no_seq_write_claim():
    assert "seq-write" not in _checks(["buffered"])


def test_cluster_writes_name_both_topics_with_every_round():
    params = SCENARIO.profiles["quick"]
    writes = {w.topic: w for w in SCENARIO.cluster_writes(params)}
    assert set(writes) == {"dwp-1", "dwp-64"}
    assert writes["dwp-64"].partitions == 64
    assert writes["dwp-1"].bytes == params["broker_bytes"] * (params["rounds"] + 1)
