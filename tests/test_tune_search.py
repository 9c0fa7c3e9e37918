"""kbench tune end to end against a real engine broker, in smoke mode: every trial a pipeline
measurement, the study kept in SQLite and continued by --resume, a planted slow setting never
recommended, the durability floor never crossed, the proof interleaved, and properties files
holding only what differs from Kafka's defaults. Behaviour, not timing: the SLO (100 ms) is
loose enough that any setting but the planted one meets it on a loaded test machine: linger.ms
500 waits until a batch of 16 KiB fills, about 160 ms at 1,000 records/s."""

import os
import signal
import subprocess
import sys

import optuna
import pytest
from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType

from scenarios.cli import main
from scenarios.clients.local_broker import LocalCluster
from scenarios.clients.topics import TopicAdmin
from scenarios.harness import results
from scenarios.tuning import space as spaces
from scenarios.tuning import workload as workloads
from scenarios.tuning.measure import Measurer, Target, target
from scenarios.tuning.objective import parse_slo
from tests.conftest import broker_process

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

WORKLOAD = """\
name: tune smoke
topics: 1
partitionsPerTopic: 1
messageSize: 100
subscriptionsPerTopic: 1
consumerPerSubscription: 1
producersPerTopic: 1
producerRate: 1000
testDurationMinutes: 1
warmupDurationMinutes: 0
"""
# linger.ms 500 is the planted slow setting: every record waits up to half a second, far past
# the SLO; the rest is fixed, so the recommendation can only be linger.ms=0
SPACE = """\
linger.ms: [0, 500]
batch.size: 16384
compression.type: none
fetch.min.bytes: 1
fetch.max.wait.ms: 500
max.partition.fetch.bytes: 1048576
max.in.flight.requests.per.connection: 5
"""
SEED = 8  # TPE's first trials are random: with this seed the first two try 500, then 0


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    running = broker_process(str(tmp_path_factory.mktemp("tune") / "data")).start()
    yield running
    running.stop()


def _trials(storage: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name="kbench-tune", storage=f"sqlite:///{storage}").trials


def _settings(path: str) -> list[str]:
    with open(path) as file:
        return [line.strip() for line in file if line.strip() and not line.startswith("#")]


def test_a_search_resumes_never_recommends_the_planted_setting_and_proves_interleaved(
    engine, tmp_path, capsys
):
    workload, space = tmp_path / "workload.yaml", tmp_path / "space.yaml"
    workload.write_text(WORKLOAD)
    space.write_text(SPACE)
    output = tmp_path / "out"
    storage = str(output / "study.db")
    argv = ["tune", str(workload), "--smoke", "--slo", "p99<=100ms", "--space", str(space)]
    argv += ["--require", "acks=all", "--output", str(output), "--bootstrap", engine.bootstrap]
    argv += ["--seed", str(SEED)]

    assert main([*argv, "--trials", "2"]) == 0
    printed = capsys.readouterr().out
    first = _trials(storage)
    assert len(first) == 2
    lingers = {t.user_attrs["settings"]["linger.ms"]: t for t in first}
    assert set(lingers) == {0, 500}  # the planted setting was tried
    assert lingers[500].user_attrs["feasible"] is False
    assert lingers[500].user_attrs["latency_ms"] > 100
    assert lingers[0].user_attrs["feasible"] is True
    assert "smoke mode" in printed and "floor acks=all" in printed

    # the proof: the search's best re-measured against Kafka's defaults, in rounds that
    # alternate (the planted setting, infeasible, is not a candidate)
    best = f"trial {lingers[0].number}"
    assert f"proof: Kafka's defaults, {best}; 2 rounds interleaved" in printed
    taken = [line.split(":")[0].strip() for line in printed.splitlines() if "  round " in line]
    assert taken == [
        "round 1, Kafka's defaults",
        f"round 1, {best}",
        f"round 2, {best}",
        "round 2, Kafka's defaults",
    ]
    assert "SLO p99<=100ms:" in printed
    # only what differs from Kafka's defaults (linger.ms 5): the producer's linger.ms, and only
    # if the proof found it faster than the defaults (two smoke rounds rarely can)
    recommended = ["linger.ms=0"] if f"recommended: {best}" in printed else []
    assert (recommended == []) == ("keep them" in printed)
    assert _settings(output / "producer.properties") == recommended
    assert _settings(output / "consumer.properties") == []
    # the page beside the study, and the proof as a results file (tests/test_tune_report.py
    # checks what they hold)
    written = dict(line.split(": ", 1) for line in printed.splitlines()[-2:])
    assert written["report"] == str(output / "report.html")
    assert 'data-trial="1"' in (output / "report.html").read_text()
    (scenario,) = results.load(written["results"])["scenarios"]
    assert len(scenario["samples"]) == 4 and scenario["skipped"] is None

    assert main([*argv, "--trials", "1", "--resume"]) == 0
    resumed = _trials(storage)
    assert len(resumed) == 3
    assert [(t.number, t.params, t.user_attrs) for t in resumed[:2]] == [
        (t.number, t.params, t.user_attrs) for t in first
    ]
    printed = capsys.readouterr().out
    assert "resumed, 2 trials before this run" in printed
    recommended = ["linger.ms=0"] if "recommended: trial" in printed else []
    assert _settings(output / "producer.properties") == recommended
    # the floor: every trial measured with acks=all
    assert {t.user_attrs["settings"]["acks"] for t in resumed} == {"all"}


def test_ctrl_c_keeps_what_was_measured_and_says_so_in_one_line(engine, tmp_path):
    workload, space = tmp_path / "workload.yaml", tmp_path / "space.yaml"
    workload.write_text(WORKLOAD)
    space.write_text(SPACE.replace("linger.ms: [0, 500]", "linger.ms: 0"))
    storage = str(tmp_path / "study.db")
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "engine.cli", "tune", str(workload), "--smoke"),
            *("--slo", "p99<=50ms", "--trials", "20", "--space", str(space)),
            *("--storage", storage, "--output", str(tmp_path), "--bootstrap", engine.bootstrap),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # Ctrl-C reaches the command's process group, as in a terminal
    )
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("trial 0:"):
            break
    os.killpg(process.pid, signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130
    assert err.strip().splitlines() == [
        f"kbench tune: interrupted; the study in {storage} keeps 1 completed trial (--resume "
        "continues the search)"
    ]
    states = [t.state for t in _trials(storage)]
    assert states[0] == optuna.trial.TrialState.COMPLETE


def test_a_throughput_search_finds_rates_keeps_a_pareto_front_and_proves_against_current(
    tmp_path, capsys
):
    workload, space = tmp_path / "workload.yaml", tmp_path / "space.yaml"
    workload.write_text(WORKLOAD.replace("producerRate: 1000", "producerRate: 0"))
    space.write_text(SPACE)
    current = tmp_path / "producer.properties"
    current.write_text("bootstrap.servers=kafka:9092\nlinger.ms=0\n")
    output = tmp_path / "out"
    argv = ["tune", str(workload), "--smoke", "--slo", "p99<=100ms", "--space", str(space)]
    # no --bootstrap: the engine broker kbench tune starts itself, on a new directory
    argv += ["--output", str(output), "--seed", str(SEED)]
    argv += ["--trials", "2", "--top", "1", "--current", str(current), "--require", "acks=all"]

    assert main(argv) == 0  # producerRate 0: the throughput objective
    captured = capsys.readouterr()
    printed = captured.out
    assert "--current: not searched, left out: bootstrap.servers" in captured.err
    assert "\ntarget: engine broker 127.0.0.1:" in printed
    study = optuna.load_study(study_name="kbench-tune", storage=f"sqlite:///{output}/study.db")
    assert study.directions == [
        optuna.study.StudyDirection.MAXIMIZE,
        optuna.study.StudyDirection.MINIMIZE,
    ]
    lingers = {t.user_attrs["settings"]["linger.ms"]: t for t in study.trials}
    planted, fast = lingers[500], lingers[0]
    # the planted setting keeps no rate within the bound, however low the search went
    assert planted.user_attrs["feasible"] is False
    assert planted.user_attrs["throughput_rps"] == 0
    assert all(not step["kept"] for step in planted.user_attrs["steps"])
    # linger.ms 0 keeps a rate: the highest kept step, within the SLO, is its value
    kept = [s for s in fast.user_attrs["steps"] if s["kept"]]
    assert fast.user_attrs["feasible"] is True
    assert fast.values[0] == max(s["offered_per_s"] for s in kept) > 0
    assert all(s["latency_ms"] <= 100 for s in kept)
    assert [t.number for t in study.best_trials] == [fast.number]
    assert f"Pareto front (records/s against p99): trial {fast.number}:" in printed
    # the proof: the defaults and the current settings (the best trial's twin, measured once)
    assert "proof: Kafka's defaults, current; 2 rounds interleaved" in printed
    recommended = _settings(output / "producer.properties")
    assert recommended in ([], ["linger.ms=0"])  # never the planted 500
    assert (recommended == []) == ("keep them" in printed)


def test_a_min_insync_floor_runs_on_a_cluster_and_no_trial_goes_below_it(tmp_path, capsys):
    """The space file lists min.insync.replicas 1, the floor removes it; the topic gets 3
    replicas, so the engine is a cluster of 3 brokers."""
    workload, space = tmp_path / "workload.yaml", tmp_path / "space.yaml"
    workload.write_text(WORKLOAD)
    space.write_text(
        SPACE.replace("linger.ms: [0, 500]", "linger.ms: 5") + "min.insync.replicas: [1, 2]\n"
    )
    output = tmp_path / "out"
    # the floor is what is checked: an SLO no loaded machine misses, so the best is feasible
    argv = ["tune", str(workload), "--smoke", "--slo", "p99<=5s", "--space", str(space)]
    argv += ["--require", "min.insync.replicas>=2", "--output", str(output), "--trials", "2"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "target: engine cluster of 3 brokers" in printed
    assert "floor min.insync.replicas>=2, acks=all (min.insync.replicas acts only on it)" in printed
    trials = _trials(str(output / "study.db"))
    assert len(trials) == 2 and all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    assert {
        (s["min.insync.replicas"], s["replication.factor"], s["acks"])
        for s in (t.user_attrs["settings"] for t in trials)
    } == {(2, 3, "all")}
    assert _settings(output / "topic.properties") == [
        "min.insync.replicas=2",
        "replication.factor=3",
    ]
    assert _settings(output / "broker.properties") == []


def _pids(running: Target) -> set[int]:
    assert isinstance(running.engine, LocalCluster)
    return {b.pid for b in running.engine.brokers.values()}


def _cmdline(pid: int) -> list[str]:
    with open(f"/proc/{pid}/cmdline") as file:
        return file.read().split("\0")


def test_topic_configs_reach_the_topic_and_a_broker_setting_restarts_the_engine(tmp_path):
    """On an engine cluster of 2: a topic created with configs has them (DescribeConfigs); a
    trial whose broker setting differs starts every broker again with it."""
    path = tmp_path / "space.yaml"
    path.write_text("replication.factor: 2\nreplica.fetch.wait.max.ms: [100, 500]\n")
    space = spaces.require(spaces.load_space(str(path)), [])
    (tmp_path / "workload.yaml").write_text(WORKLOAD)
    workload = workloads.load(str(tmp_path / "workload.yaml"))
    with target(None, space, brokers=2) as running:
        assert "restarted (about 1 s a broker)" in running.describe()
        configs = {"min.insync.replicas": "2", "flush.messages": "100", "segment.bytes": "1048576"}
        admin = TopicAdmin(running.bootstrap)
        admin.create("configured", replication_factor=2, configs=configs)
        resource = ConfigResource(ResourceType.TOPIC, "configured")
        client = AdminClient({"bootstrap.servers": running.bootstrap})
        described = client.describe_configs([resource])[resource].result(timeout=30)
        assert {name: described[name].value for name in configs} == configs
        leader = admin.leader("configured")
        assert running.pid(leader) in _pids(running)
        del admin, client  # before their brokers stop
        before = _pids(running)
        assert not any("replica.fetch.wait.max.ms=100" in _cmdline(pid) for pid in before)

        measure = Measurer(
            running,
            workload,
            workloads.trial_durations(workload, smoke=True),
            parse_slo("p99<=50ms"),
            "kbench-tune-test-",
        )
        settings = dict(space.baseline(), **{"replica.fetch.wait.max.ms": 100})
        assert running.differs(spaces.scoped(settings, "broker"))
        measure(settings, workload.producer_rate)
        after = _pids(running)
        assert after.isdisjoint(before)
        assert all("replica.fetch.wait.max.ms=100" in _cmdline(pid) for pid in after)
        assert not running.differs(spaces.scoped(settings, "broker"))
        measure.close()
