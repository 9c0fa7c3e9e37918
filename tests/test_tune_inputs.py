"""kbench tune's inputs, without a broker: the OMB workload file and its errors, the SLO, the
search space (a user's ranges, the durability floor, Kafka's and librdkafka's names), the
properties files, and the order of the proof's measurements."""

import os

import optuna
import pytest

from engine.broker.config import kafka_config
from scenarios.cli import main
from scenarios.tuning import space as spaces
from scenarios.tuning import workload
from scenarios.tuning.objective import SloError, parse_slo
from scenarios.tuning.space import SpaceError, load_space, require
from scenarios.tuning.workload import WorkloadError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKLOADS = os.path.join(ROOT, "scenarios", "tuning", "workloads")  # the examples that ship
TOPIC_AND_BROKER = [p.name for p in spaces.PROPERTIES if p.scope in ("topic", "broker")]
EXAMPLES = sorted(
    os.path.join(WORKLOADS, name) for name in os.listdir(WORKLOADS) if name.endswith(".yaml")
)

OMB_100B = """\
name: 1 topic / 1 partition / 100b
topics: 1
partitionsPerTopic: 1
messageSize: 100
payloadFile: "payload/payload-100b.data"
subscriptionsPerTopic: 1
consumerPerSubscription: 1
producersPerTopic: 1
producerRate: 50000
consumerBacklogSizeGB: 0
testDurationMinutes: 15
"""


def write(tmp_path, text: str, name: str = "workload.yaml") -> str:
    """The workload file, its payload file beside it (as in OMB's checkout)."""
    path = tmp_path / name
    path.write_text(text)
    (tmp_path / "payload").mkdir(exist_ok=True)
    (tmp_path / "payload" / "payload-100b.data").write_bytes(bytes(range(100)))
    return str(path)


def test_the_shipped_workloads_are_read_and_measurable():
    assert len(EXAMPLES) >= 2
    for path in EXAMPLES:
        read = workload.load(path)
        assert read.unsupported() == [], path
        assert read.payload_file is not None
        assert os.path.getsize(read.payload_file) == read.message_size
    assert {workload.load(path).producer_rate for path in EXAMPLES} >= {0, 1000}  # both objectives
    assert any(workload.load(path).partitions_per_topic > 1 for path in EXAMPLES)


def test_an_omb_workload_runs_unchanged(tmp_path):
    read = workload.load(write(tmp_path, OMB_100B))
    assert read.name == "1 topic / 1 partition / 100b"
    assert read.producer_rate == 50000 and read.test_duration_minutes == 15
    assert read.warmup_duration_minutes == 1  # OMB's default when absent
    assert read.key_distributor == "NO_KEY"
    assert read.unsupported() == []
    assert read.payload_file == str(tmp_path / "payload" / "payload-100b.data")
    assert any("first 8 bytes of each value are the record's index" in n for n in read.notes())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("producerRate: fast", "producerRate must be a whole number of at least 0, got 'fast'"),
        ("topics: 0", "topics must be a whole number of at least 1, got 0"),
        ("testDurationMinutes: 0.5", "testDurationMinutes must be a whole number"),
        ("keyDistributor: ROUND", "keyDistributor must be one of NO_KEY, KEY_ROUND_ROBIN"),
        ("useRandomizedPayloads: 3", "useRandomizedPayloads must be true or false"),
        ("producerRat: 5", "unknown field producerRat: did you mean producerRate?"),
        ("colour: red", "unknown field colour (not an OMB workload field)"),
    ],
)
def test_a_bad_field_is_named_in_one_line(tmp_path, change, message):
    text = "\n".join(
        line for line in OMB_100B.splitlines() if line.split(":")[0] != change.split(":")[0]
    )
    path = write(tmp_path, f"{text}\n{change}\n")
    with pytest.raises(WorkloadError) as error:
        workload.load(path)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_a_missing_field_a_non_mapping_and_bad_yaml_are_one_line(tmp_path):
    missing = OMB_100B.replace("messageSize: 100\n", "")
    with pytest.raises(WorkloadError, match="messageSize is missing"):
        workload.load(write(tmp_path, missing))
    with pytest.raises(WorkloadError, match="expected an OMB workload"):
        workload.load(write(tmp_path, "- 1\n- 2\n"))
    with pytest.raises(WorkloadError, match="not valid YAML"):
        workload.load(write(tmp_path, "topics: [1\n"))
    with pytest.raises(WorkloadError, match="cannot read it"):
        workload.load(str(tmp_path / "absent.yaml"))


def test_what_cannot_be_measured_yet_is_refused_each_in_one_line(tmp_path):
    many = OMB_100B.replace("producersPerTopic: 1", "producersPerTopic: 5").replace(
        "consumerPerSubscription: 1", "consumerPerSubscription: 4"
    )
    reasons = workload.load(write(tmp_path, many)).unsupported()
    assert len(reasons) == 1 and "\n" not in reasons[0]
    assert "9 client processes, but this machine measures at most 8" in reasons[0]


def test_durations_are_scaled_and_say_so(tmp_path):
    read = workload.load(write(tmp_path, OMB_100B))
    scaled = workload.trial_durations(read, 0.01)
    assert (scaled.warmup_s, scaled.test_s) == pytest.approx((0.6, 9.0))
    assert "scaled by 0.01" in scaled.how
    assert "numbers meaningless" in workload.trial_durations(read, smoke=True).how
    assert workload.trial_durations(read).test_s == 15 * 60
    with pytest.raises(WorkloadError, match="fewer than 100 records"):
        workload.trial_durations(read, 1e-6)
    with pytest.raises(WorkloadError, match="--minutes-scale must be a positive number"):
        workload.trial_durations(read, -1)


def test_the_slo_is_parsed_or_refused_in_one_line():
    slo = parse_slo("p99.9<=50ms")
    assert (slo.percentile, slo.bound_ms, slo.label) == (99.9, 50.0, "p99.9")
    assert parse_slo("p50 <= 500us").bound_ms == pytest.approx(0.5)
    assert parse_slo("p99<=1s").bound_ms == 1000
    assert parse_slo("p99<=1s").latency == parse_slo("e2e:p99<=1s").latency == "e2e"
    publish = parse_slo("publish:p99<=10ms")
    assert (publish.latency, publish.label, publish.bound_ms) == ("publish", "publish p99", 10)
    for bad, message in [
        ("99<=20ms", r"expected \[e2e:\|publish:\]PERCENTILE<=BOUND"),
        ("ack:p99<=20ms", r"expected \[e2e:\|publish:\]PERCENTILE<=BOUND"),
        ("p100<=20ms", "between 0 and 100"),
        ("p99<=20min", "the unit must be one of"),
        ("p99<=0ms", "above 0"),
    ]:
        with pytest.raises(SloError, match=message):
            parse_slo(bad)


def test_a_space_file_narrows_widens_and_fixes(tmp_path):
    path = write(
        tmp_path,
        "linger.ms: {low: 0, high: 1000}\ncompression.type: [none, lz4]\nacks: all\n",
        "space.yaml",
    )
    space = {p.name: p for p in load_space(path).properties}
    assert (space["linger.ms"].low, space["linger.ms"].high) == (0, 1000)  # widened
    assert space["compression.type"].choices == ("none", "lz4")  # narrowed
    assert space["acks"].choices == ("all",) and not space["acks"].searched  # fixed
    assert space["batch.size"] == spaces.BY_NAME["batch.size"]  # not named: the table's


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("linger.m: 5", "unknown property linger.m: did you mean linger.ms?"),
        ("fetch.wait.max.ms: 5", "librdkafka's name; kbench tune takes Kafka's, fetch.max.wait.ms"),
        ("linger.ms: {low: 9, high: 1}", "low 9 is above high 1"),
        ("linger.ms: {low: -1, high: 1}", "expected a whole number from 0 to 900000"),
        ("compression.type: [brotli]", "expected one of none, gzip, snappy, lz4, zstd"),
        ("batch.size: {low: 0, high: 10, log: true}", "expected a whole number from 1"),
        ("- acks", "expected a mapping of property names"),
    ],
)
def test_a_bad_space_is_named_in_one_line(tmp_path, text, message):
    with pytest.raises(SpaceError) as error:
        load_space(write(tmp_path, text + "\n", "space.yaml"))
    assert message in str(error.value)


def test_the_durability_floor_holds_whatever_the_search_tries(tmp_path):
    """--require acks=all removes acks 0 and 1 from the space, even where the space file lists
    them: no trial of a search ever gets them."""
    path = write(tmp_path, "acks: ['0', '1', all]\n", "space.yaml")
    floored = require(load_space(path), ["acks=all"])
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    tried = []
    study.optimize(lambda trial: tried.append(floored.suggest(trial)) or 0.0, n_trials=60)
    assert {settings["acks"] for settings in tried} == {"all"}
    assert {s["acks"] for s in _sampled(require(load_space(None), ["acks>=1"]))} == {"1", "all"}
    with pytest.raises(SpaceError, match="all below the floor"):
        require(load_space(write(tmp_path, "acks: '1'\n", "fixed.yaml")), ["acks=all"])
    with pytest.raises(SpaceError, match="does not decide durability"):
        require(load_space(None), ["linger.ms=5"])
    with pytest.raises(SpaceError, match="a floor bounds acks on its durable side: acks>=N"):
        require(load_space(None), ["acks<=1"])


def test_topic_and_broker_defaults_are_the_engines_and_fixed_unless_named(tmp_path):
    engine = kafka_config({})  # the engine's config table: Kafka's defaults
    assert {
        name: spaces.DEFAULTS[name] for name in spaces.DEFAULTS if name in TOPIC_AND_BROKER
    } == {
        "segment.bytes": engine.log.segment_bytes,
        "min.insync.replicas": engine.log.min_insync_replicas,
        "flush.messages": engine.log.flush_messages,
        "replication.factor": engine.default_replication_factor,
        "partitions": spaces.WORKLOADS,  # not the engine's num.partitions: the workload's
        "replica.fetch.min.bytes": engine.replica_fetch_min_bytes,
        "replica.fetch.wait.max.ms": engine.replica_fetch_wait_max_ms,
    }
    default = {p.name: p for p in load_space(None).properties}
    assert not any(default[name].searched for name in TOPIC_AND_BROKER)
    assert default["flush.messages"].describe() == "flush.messages=never"
    path = write(tmp_path, "segment.bytes: search\nflush.messages: [1, 1000, never]\n", "s.yaml")
    named = {p.name: p for p in load_space(path).properties}
    assert named["segment.bytes"] == spaces.BY_NAME["segment.bytes"]  # the table's range
    assert named["flush.messages"].choices == (1, 1000, spaces.NEVER)


def test_a_min_insync_floor_replicates_floors_acks_and_refuses_the_impossible(tmp_path):
    """min.insync.replicas>=2: every trial has it, with acks=all (it acts on nothing else) and
    3 replicas; the baseline the proof compares with is at the floor too."""
    floored = require(
        load_space(write(tmp_path, "min.insync.replicas: [1, 2]\n", "s.yaml")),
        ["min.insync.replicas>=2"],
    )
    assert {
        (s["min.insync.replicas"], s["replication.factor"], s["acks"]) for s in _sampled(floored)
    } == {(2, 3, "all")}
    assert floored.highest("replication.factor") == 3
    assert "acks=all (min.insync.replicas acts only on it)" in floored.floor
    assert spaces.differences(floored.baseline()) == {
        "min.insync.replicas": 2,
        "replication.factor": 3,
    }
    flushed = require(load_space(None), ["flush.messages<=100"])
    assert {s["flush.messages"] for s in _sampled(flushed)} == {100}
    for space, requirements, message in [
        (
            "replication.factor: 1",
            ["min.insync.replicas>=2"],
            "--require min.insync.replicas>=2: "
            "min.insync.replicas 2 is impossible with replication.factor=1",
        ),
        ("acks: '1'", ["min.insync.replicas>=2"], "min.insync.replicas acts only on acks=all"),
        ("", ["min.insync.replicas<=2"], "on its durable side: min.insync.replicas>=N"),
        ("", ["flush.messages>=5"], "on its durable side: flush.messages<=N"),
        ("flush.messages: [1000, never]", ["flush.messages<=100"], "none of it at the floor"),
        ("replica.fetch.wait.max.ms: search", [], "act only between a leader and its followers"),
    ]:
        with pytest.raises(SpaceError, match=message) as error:
            require(load_space(write(tmp_path, space + "\n", "bad.yaml")), requirements)
        assert "\n" not in str(error.value)


def test_a_bootstrap_cluster_keeps_its_own_broker_settings(tmp_path):
    assert not any(p.scope == "broker" for p in spaces.external(load_space(None)).properties)
    path = write(tmp_path, "replica.fetch.min.bytes: 1024\nreplication.factor: 3\n", "s.yaml")
    with pytest.raises(SpaceError) as error:
        spaces.external(require(load_space(path), []))
    assert "replica.fetch.min.bytes: broker settings cannot be set on a --bootstrap" in str(
        error.value
    )


def _sampled(space: spaces.Space) -> list[dict]:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=2))
    tried: list[dict] = []
    study.optimize(lambda trial: tried.append(space.suggest(trial)) or 0.0, n_trials=40)
    return tried


def test_kafka_names_map_to_librdkafka_names_in_one_place():
    settings = dict(spaces.DEFAULTS, **{"fetch.max.wait.ms": 100, "linger.ms": 0})
    producer, consumer = spaces.client_properties(settings)
    assert consumer["fetch.wait.max.ms"] == 100 and "fetch.max.wait.ms" not in consumer
    assert producer["linger.ms"] == 0 and producer["acks"] == "all"
    assert set(producer) | set(consumer) >= {"batch.size", "compression.type", "fetch.min.bytes"}
    # and units: librdkafka's producer buffer is in KiB; max.poll.records, the Java
    # consumer's, passes under its own name for the pipeline's consume() batch
    assert producer["queue.buffering.max.kbytes"] == 32 * 1024 and "buffer.memory" not in producer
    assert consumer["max.poll.records"] == 500
    bigger = spaces.properties_file(dict(settings, **{"buffer.memory": 64 << 20}), "producer", [])
    assert "# librdkafka (confluent-kafka, kcat): queue.buffering.max.kbytes=65536" in bigger
    assert "buffer.memory=67108864" in bigger.splitlines()
    # both are kept at their defaults unless a space file names them
    space = spaces.default_space()
    assert not any(
        p.searched for p in space.properties if p.name in ("buffer.memory", "max.poll.records")
    )


def test_the_properties_files_hold_only_what_differs_from_kafkas_defaults():
    settings = dict(spaces.DEFAULTS, **{"linger.ms": 0, "fetch.max.wait.ms": 100})
    producer = spaces.properties_file(settings, "producer", ["header"])
    consumer = spaces.properties_file(settings, "consumer", [])
    assert [line for line in producer.splitlines() if not line.startswith("#")] == ["linger.ms=0"]
    assert [line for line in consumer.splitlines() if not line.startswith("#")] == [
        "fetch.max.wait.ms=100"
    ]
    assert "# librdkafka (confluent-kafka, kcat): fetch.wait.max.ms=100" in consumer
    unchanged = spaces.properties_file(dict(spaces.DEFAULTS), "producer", [])
    assert [line for line in unchanged.splitlines() if not line.startswith("#")] == []


def test_topic_and_broker_files_hold_only_what_differs_and_how_to_create_the_topic():
    settings = dict(spaces.DEFAULTS, **{"min.insync.replicas": 2, "replication.factor": 3})
    topic = spaces.properties_file(settings, "topic", [], partitions=4)
    assert [line for line in topic.splitlines() if not line.startswith("#")] == [
        "min.insync.replicas=2",
        "replication.factor=3",
    ]
    assert "--partitions 4 --replication-factor 3 --config min.insync.replicas=2" in topic
    settings["replica.fetch.wait.max.ms"] = 100
    broker = spaces.properties_file(settings, "broker", [])
    assert [line for line in broker.splitlines() if not line.startswith("#")] == [
        "replica.fetch.wait.max.ms=100"
    ]
    producer, consumer = spaces.client_properties(settings)
    assert not (producer.keys() | consumer.keys()) & set(TOPIC_AND_BROKER)  # not the clients'


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--slo", "p99<20ms"], "--slo p99<20ms: expected [e2e:|publish:]PERCENTILE<=BOUND"),
        (["--slo", "p99<=20ms", "--require", "acks=2"], "--require acks=2: expected one of"),
        (["--slo", "p99<=20ms", "--trials", "-1"], "--trials must be 0 or more"),
        (["--slo", "p99<=20ms", "--proof-rounds", "1"], "--proof-rounds must be at least 2"),
        (["--slo", "p99<=20ms", "--bootstrap", "nowhere"], "--bootstrap"),
        (
            ["--slo", "p99<=20ms", "--require", "replication.factor>=3", "--brokers", "2"],
            "--brokers must be at least 3 for replication.factor 3, got 2",
        ),
        (
            ["--slo", "p99<=20ms", "--require", "min.insync.replicas<=2"],
            "--require min.insync.replicas<=2: a floor bounds",
        ),
        (["--slo", "p99<=20ms", "--top", "0"], "--top must be at least 1"),
        (["--slo", "p99<=20ms", "--current", "/nonexistent.properties"], "cannot read it"),
    ],
)
def test_the_command_refuses_bad_input_in_one_line(tmp_path, capsys, arguments, message):
    path = write(tmp_path, OMB_100B)
    argv = ["tune", path, "--trials", "1", "--output", str(tmp_path / "out"), *arguments]
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err


def test_latency_at_producer_rate_0_is_refused_in_one_line(tmp_path, capsys):
    path = write(tmp_path, OMB_100B.replace("producerRate: 50000", "producerRate: 0"))
    argv = ["tune", path, "--slo", "p99<=20ms", "--trials", "1", "--objective", "latency"]
    with pytest.raises(SystemExit) as exit_:
        main([*argv, "--output", str(tmp_path)])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "producerRate 0 asks for the highest rate: --objective latency needs a rate" in err
    assert "\n" not in err


def test_a_workload_it_cannot_measure_is_refused_before_any_broker(tmp_path, capsys):
    path = write(tmp_path, OMB_100B.replace("topics: 1", "topics: 10"))
    with pytest.raises(SystemExit):
        main(["tune", path, "--slo", "p99<=20ms", "--trials", "1", "--output", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert "not measurable yet: topics x (producersPerTopic + " in err
    assert "20 client processes" in err
    assert "\n" not in err


def test_a_new_search_does_not_overwrite_a_kept_study(tmp_path, capsys):
    """Refused before any broker starts: the kept study is what --resume continues."""
    storage = str(tmp_path / "study.db")
    optuna.create_study(storage=f"sqlite:///{storage}", study_name="kbench-tune")
    argv = ["tune", write(tmp_path, OMB_100B), "--slo", "p99<=20ms", "--trials", "1"]
    argv += ["--output", str(tmp_path)]
    with pytest.raises(SystemExit):
        main([*argv, "--storage", storage])
    assert "already holds a study: --resume continues it" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*argv, "--resume", "--storage", str(tmp_path / "other.db")])
    assert "holds no study to continue" in capsys.readouterr().err


def test_a_closed_bootstrap_is_refused_before_a_study_file_is_made(tmp_path, capsys):
    argv = ["tune", write(tmp_path, OMB_100B), "--slo", "p99<=20ms", "--trials", "1"]
    with pytest.raises(SystemExit) as exit_:
        main([*argv, "--output", str(tmp_path / "out"), "--bootstrap", "127.0.0.1:1"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("kbench tune: error: --bootstrap:") and "\n" not in err
    assert not (tmp_path / "out" / "study.db").exists()
