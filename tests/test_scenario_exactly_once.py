"""exactly-once: an idempotent and a transactional producer on one engine broker (as the runner
starts it), smoke sizes, through the real runner.

Physics counted, not timed: every read_committed consumer gets exactly the records committed
(count and index sum; the scenario fails a sample otherwise) and none before its transaction's
commit began, while a read_uncommitted one gets records of open transactions; a transactional
run of R records committed every N is R // N + 1 transactions (the end mark closes the last).
No test says how fast anything is.
"""

import array
import copy

import pytest

from scenarios.catalog.exactly_once import (
    CONDUKTOR_RATIO,
    CONFLUENT_RATIO,
    ExactlyOnce,
    _check,
    interval_of,
    verdicts,
)
from scenarios.catalog.registry import SCENARIOS
from scenarios.clients.local_broker import LocalBroker
from scenarios.clients.topics import TopicAdmin
from scenarios.clients.transactional import Consumed, Produced, Run
from scenarios.harness.claims import CLAIMS
from scenarios.harness.runner import run_scenario
from scenarios.harness.scenario import RunContext

S = ExactlyOnce()
PREFIX = "kbench-testrun-"


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """One smoke run on one broker, as the runner starts it: (result, bootstrap)."""
    directory = tmp_path_factory.mktemp("exactly-once")
    with LocalBroker(str(directory / "data")) as broker:
        ctx = RunContext(
            work_dir=str(directory),
            params=copy.deepcopy(dict(S.profiles["smoke"])),
            bootstrap=broker.bootstrap,
            broker_pid=broker.pid,
            topic_prefix=PREFIX,
        )
        result = run_scenario(S, ctx, "smoke")
        left = TopicAdmin(broker.bootstrap).client.list_topics(timeout=10).topics
    return result, left


def _measured(result):
    return [s for s in result.samples if not s.warmup]


def test_it_is_registered_last_and_decides_eos_cost():
    assert list(SCENARIOS)[-1] == "exactly-once"
    assert CLAIMS["eos-cost"].scenario == S.name
    assert {c.claim for c in S.claim_checks(S.profiles["quick"])} == {"eos-cost"}


def test_read_committed_gets_exactly_the_committed_records(smoke):
    """The scenario checks it in every run and fails the sample otherwise: no error means every
    read_committed consumer got the committed records, none before its commit began."""
    result, _ = smoke
    assert result.skipped is None and result.error is None, result.error
    names = [v["name"] for v in result.variants]
    assert names == ["idempotent", "txn-100"]
    assert len(result.samples) == (S.profiles["smoke"]["rounds"] + 1) * len(names)


def test_a_transaction_commits_every_n_records(smoke):
    result, _ = smoke
    for sample in result.samples:
        n = interval_of(sample.variant)
        records, transactions = sample.values["records"], sample.values["transactions"]
        assert records > 0, sample
        assert transactions == (records // n + 1 if n else 0), sample


def test_read_uncommitted_sees_open_transactions(smoke):
    """With 50 ms transactions (100 records at 2,000/s) a read_uncommitted consumer gets records
    before their transaction's commit is even sent; read_committed never does (checked above)."""
    result, _ = smoke
    early = {s.variant: s.values["uncommitted_before_commit"] for s in _measured(result)}
    assert early["idempotent"] == 0  # no transactions, nothing to be early for
    assert early["txn-100"] > 0


def test_every_client_is_a_process_of_its_own_and_metered(smoke):
    result, _ = smoke
    for sample in result.samples:
        roles = set(sample.resources["processes"])
        assert {
            "broker",
            "producer",
            "consumer-read_committed",
            "consumer-read_uncommitted",
        } <= roles


def test_the_verdict_names_each_interval_in_records_and_ms_and_topics_are_deleted(smoke):
    result, left = smoke
    notes = [n for n in result.notes if n.startswith("eos-cost")]
    assert len(notes) == 1
    assert "every 100 records (" in notes[0] and " ms at the transactional rate" in notes[0]
    assert [c["id"] for c in result.claims] == ["eos-cost"]
    assert not [t for t in left if t.startswith(PREFIX)]


def test_the_rule_says_which_source_each_interval_agrees_with():
    params = {"intervals": [10, 100, 1000, 10000]}
    samples = {
        "idempotent": [100.0] * 6,
        "txn-10": [10.0] * 6,  # 10x: Conduktor's side
        "txn-100": [80.0] * 6,  # 1.25x: between the two
        "txn-1000": [99.0] * 6,  # 1.01x: a few percent
        "txn-10000": [40.0, 99.0, 70.0, 95.0, 50.0, 98.0],  # spans both
    }
    notes = verdicts(params, samples)
    assert "agrees with Conduktor" in notes[0]
    assert "agrees with neither" in notes[1]
    assert "agrees with Confluent" in notes[2]
    assert "spans both" in notes[3]
    assert CONFLUENT_RATIO < 1.06 and pytest.approx(1 / 0.6) == CONDUKTOR_RATIO
    assert "too few rounds" in verdicts(params, {k: v[:2] for k, v in samples.items()})[0]


def test_a_read_committed_consumer_that_differs_fails_the_sample():
    produced = Produced(records=3, id_sum=3, transactions=2, seconds=1.0, sending_seconds=1.0)
    produced.commit_ns = array.array("q", [100, 200])
    right = Consumed("read_committed", 3, 3, {0: 150, 1: 150, 2: 250}, {})
    _check("txn-2", "saturation", Run(produced, {"read_committed": right}), 2)
    missing = Consumed("read_committed", 2, 1, {0: 150, 1: 150}, {})
    with pytest.raises(RuntimeError, match="got 2 records"):
        _check("txn-2", "saturation", Run(produced, {"read_committed": missing}), 2)
    early = Consumed("read_committed", 3, 3, {0: 150, 1: 150, 2: 150}, {})
    with pytest.raises(RuntimeError, match="before their transaction's commit"):
        _check("txn-2", "saturation", Run(produced, {"read_committed": early}), 2)
