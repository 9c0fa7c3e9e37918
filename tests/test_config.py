"""Broker and log settings: Kafka's rules refuse what would make the broker useless, at start,
in one line naming the setting; misspelt names are refused with a suggestion; Kafka settings
this broker does not have are only warned about."""

import re

import pytest

from engine.broker.broker_server import BrokerServer
from engine.broker.config import KafkaConfig, kafka_config, parse_properties
from engine.broker.topics import TopicAdminError
from engine.errors import INVALID_CONFIG
from engine.storage.config import TOPIC_CONFIG_NAMES, LogConfig, settings
from tests.conftest import broker_process

# Kafka 4.0's config/server.properties (the KRaft single-node example; comments left out)
KAFKA_4_SERVER_PROPERTIES = """\
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=localhost:9093
listeners=PLAINTEXT://:9092,CONTROLLER://:9093
inter.broker.listener.name=PLAINTEXT
advertised.listeners=PLAINTEXT://localhost:9092,CONTROLLER://localhost:9093
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL
num.network.threads=3
num.io.threads=8
socket.send.buffer.bytes=102400
socket.receive.buffer.bytes=102400
socket.request.max.bytes=104857600
log.dirs=/tmp/kraft-combined-logs
num.partitions=1
num.recovery.threads.per.data.dir=1
offsets.topic.replication.factor=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
log.retention.hours=168
log.segment.bytes=1073741824
log.retention.check.interval.ms=300000
"""

# Real Kafka settings that kbench does not have, some of them spelt much like kbench's own.
FOREIGN = [
    "zookeeper.connect",
    "num.network.threads",
    "listener.security.protocol.map",
    "queued.max.requests",
    "group.share.min.session.timeout.ms",
    "group.consumer.max.session.timeout.ms",
    "log.flush.start.offset.checkpoint.interval.ms",
    "offsets.retention.check.interval.ms",
    "log.local.retention.bytes",
    "log.roll.jitter.hours",
    "max.connections.per.ip.overrides",
]


def refused(properties: dict[str, str]) -> str:
    with pytest.raises(ValueError) as caught:
        kafka_config(properties)
    message = str(caught.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("socket.request.max.bytes", "-1", "socket.request.max.bytes must be at least 1, got -1"),
        ("message.max.bytes", "-1", "message.max.bytes must be at least 0, got -1"),
        ("min.insync.replicas", "0", "min.insync.replicas must be at least 1, got 0"),
        ("default.replication.factor", "0", "default.replication.factor must be at least 1"),
        ("node.id", "-1", "node.id must be at least 0, got -1"),
        ("broker.id", "-1", "broker.id must be at least 0, got -1"),
        ("log.retention.ms", "-5", "log.retention.ms must be -1 (unlimited) or at least 0, got -5"),
        ("log.retention.hours", "-5", "log.retention.hours must be -1 (unlimited) or at least 0"),
        ("retention.bytes", "-2", "retention.bytes must be -1 (unlimited) or at least 0, got -2"),
        ("log.flush.scheduler.interval.ms", "-1", "log.flush.scheduler.interval.ms must be at"),
        ("log.retention.check.interval.ms", "0", "log.retention.check.interval.ms must be at"),
        ("connections.max.idle.ms", "0", "connections.max.idle.ms must be -1 (never close) or"),
        ("max.connections", "0", "max.connections must be at least 1, got 0"),
        ("max.connections.per.ip", "0", "max.connections.per.ip must be at least 1, got 0"),
        ("queued.max.request.bytes", "0", "queued.max.request.bytes must be -1 (unbounded) or"),
        ("max.broker.partitions", "0", "max.broker.partitions must be at least 1, got 0"),
        ("num.partitions", "0", "num.partitions must be at least 1, got 0"),
        ("num.partitions", "2147483648", "num.partitions must be between 1 and 2147483647"),
        ("num.partitions", "many", "num.partitions must be an integer, got 'many'"),
        ("num.partitions", "1_000", "num.partitions must be an integer"),
        ("log.segment.bytes", "13", "log.segment.bytes must be at least 14, got 13"),
        ("segment.bytes", "2147483648", "segment.bytes must be between 14 and 2147483647"),
        ("log.roll.hours", "0", "log.roll.hours must be at least 1, got 0"),
        ("log.index.size.max.bytes", "4", "log.index.size.max.bytes must be at least 8"),
        ("flush.messages", "0", "flush.messages must be at least 1, got 0"),
        ("log.flush.interval.ms", "-1", "log.flush.interval.ms must be at least 0, got -1"),
        ("group.initial.rebalance.delay.ms", "-1", "group.initial.rebalance.delay.ms must be at"),
        ("log.message.timestamp.type", "Now", "must be CreateTime or LogAppendTime, got 'Now'"),
        ("auto.create.topics.enable", "yes", "auto.create.topics.enable must be true or false"),
        ("listeners", "localhost", "listeners must be HOST:PORT"),
        ("listeners", "PLAINTEXT://:99999", "listeners must be HOST:PORT"),
        ("log.dirs", ",", "log.dirs must be a directory"),
    ],
)
def test_a_value_kafka_does_not_allow_is_refused_naming_the_setting(key, value, expected):
    assert expected in refused({key: value})


def test_every_numeric_setting_is_checked():
    """No setting escapes its rule: -2 is nowhere allowed (Kafka's conventions stop at -1)."""
    for cls in (KafkaConfig, LogConfig):
        for f, setting in settings(cls):
            if type(f.default) is not int or setting.parse is not None:
                continue
            for name in setting.names:
                message = refused({name: "-2"})
                assert message.startswith(f"{name} must be "), message
                assert message.endswith("got -2"), message


@pytest.mark.parametrize(
    ("properties", "expected"),
    [
        (
            {"min.insync.replicas": "2"},
            "min.insync.replicas must be at most default.replication.factor (1), got 2",
        ),
        (
            {"queued.max.request.bytes": "1000", "socket.request.max.bytes": "1001"},
            "queued.max.request.bytes must be -1 (unbounded) or at least "
            "socket.request.max.bytes (1001), got 1000",
        ),
        (
            {"group.min.session.timeout.ms": "500", "group.max.session.timeout.ms": "400"},
            "group.max.session.timeout.ms must be at least group.min.session.timeout.ms (500)",
        ),
        ({"node.id": "1", "broker.id": "2"}, "node.id and broker.id must be equal, got 1 and 2"),
    ],
)
def test_settings_that_contradict_each_other_are_refused(properties, expected):
    assert expected in refused(properties)


@pytest.mark.parametrize(
    ("key", "value", "field", "expected"),
    [
        ("log.retention.ms", "-1", "retention_ms", -1),
        ("log.retention.ms", "0", "retention_ms", 0),
        ("log.retention.hours", "-1", "retention_ms", -1),
        ("log.retention.minutes", "2", "retention_ms", 120_000),
        ("retention.bytes", "-1", "retention_bytes", -1),
        ("log.retention.bytes", "0", "retention_bytes", 0),
        ("log.segment.bytes", "14", "segment_bytes", 14),
        ("log.segment.bytes", "2147483647", "segment_bytes", (1 << 31) - 1),
        ("log.roll.hours", "1", "segment_ms", 3_600_000),
        ("index.interval.bytes", "0", "index_interval_bytes", 0),
        ("log.flush.interval.ms", "0", "flush_ms", 0),
        ("log.flush.interval.messages", "1", "flush_messages", 1),
        ("message.max.bytes", "0", "max_message_bytes", 0),
        ("log.message.timestamp.type", "LogAppendTime", "message_timestamp_type", "LogAppendTime"),
    ],
)
def test_edge_values_kafka_allows_are_accepted_for_the_log(key, value, field, expected):
    assert getattr(kafka_config({key: value}).log, field) == expected


@pytest.mark.parametrize(
    ("properties", "field", "expected"),
    [
        ({"node.id": "0"}, "node_id", 0),
        ({"broker.id": "7"}, "node_id", 7),
        ({"node.id": "3", "broker.id": "3"}, "node_id", 3),
        ({"queued.max.request.bytes": "-1"}, "queued_max_request_bytes", -1),
        ({"queued.max.request.bytes": "104857600"}, "queued_max_request_bytes", 104_857_600),
        ({"connections.max.idle.ms": "-1"}, "connections_max_idle_ms", -1),
        (
            {"log.flush.offset.checkpoint.interval.ms": "0"},
            "log_flush_offset_checkpoint_interval_ms",
            0,
        ),
        ({"group.initial.rebalance.delay.ms": "0"}, "group_initial_rebalance_delay_ms", 0),
        ({"auto.create.topics.enable": " FALSE "}, "auto_create_topics_enable", False),
        (
            {"min.insync.replicas": "2", "default.replication.factor": "2"},
            "log",
            LogConfig(min_insync_replicas=2),
        ),
        ({"listeners": "PLAINTEXT://:9093"}, "listener", "127.0.0.1:9093"),
        ({"listeners": "PLAINTEXT://[::1]:0,CONTROLLER://:9093"}, "listener", "::1:0"),
        ({"log.dirs": "/data/a,/data/b", "log.dir": "/x"}, "log_dir", "/data/a"),
    ],
)
def test_edge_values_kafka_allows_are_accepted_for_the_broker(properties, field, expected):
    assert getattr(kafka_config(properties), field) == expected


@pytest.mark.parametrize(
    ("key", "suggestion"),
    [
        ("log.segment.byte", "log.segment.bytes"),
        ("num.partition", "num.partitions"),
        ("zero.copy.enabled", "zero.copy.enable"),
        ("listners", "listeners"),
        ("node.di", "node.id"),
        ("log.retention.hour", "log.retention.hours"),
    ],
)
def test_a_misspelt_setting_is_refused_with_a_suggestion(key, suggestion):
    assert refused({key: "1"}) == f"unknown setting {key}: did you mean {suggestion}?"


def test_kafka_settings_kbench_does_not_have_are_kept_for_a_warning():
    config = kafka_config(dict.fromkeys(FOREIGN, "1"))
    assert config.unknown == tuple(FOREIGN)
    assert config == KafkaConfig(unknown=tuple(FOREIGN))


def test_kafka_4_server_properties_loads_with_warnings_only():
    config = kafka_config(parse_properties(KAFKA_4_SERVER_PROPERTIES))
    assert (config.node_id, config.listener) == (1, "127.0.0.1:9092")
    assert config.log_dir == "/tmp/kraft-combined-logs"
    assert config.log.retention_ms == 168 * 3_600_000
    assert config.log.segment_bytes == 1 << 30
    assert set(config.unknown) == {
        "controller.quorum.bootstrap.servers",
        "inter.broker.listener.name",
        "controller.listener.names",
        "listener.security.protocol.map",
        "num.network.threads",
        "num.io.threads",
        "socket.send.buffer.bytes",
        "socket.receive.buffer.bytes",
        "num.recovery.threads.per.data.dir",
        "share.coordinator.state.topic.replication.factor",
        "share.coordinator.state.topic.min.isr",
        "transaction.state.log.replication.factor",
        "transaction.state.log.min.isr",
    }


def test_configs_built_in_code_follow_the_same_rules():
    with pytest.raises(ValueError, match=r"^retention\.ms must be -1 \(unlimited\) or at least 0"):
        LogConfig(retention_ms=-5)
    with pytest.raises(ValueError, match=r"^socket\.request\.max\.bytes must be at least 1"):
        KafkaConfig(socket_request_max_bytes=-1)
    with pytest.raises(ValueError, match=r"^node\.id must be at least 0"):
        KafkaConfig(node_id=-1)


def test_topic_configs_go_through_the_log_rules(tmp_path):
    assert sorted(TOPIC_CONFIG_NAMES) == [
        "file.delete.delay.ms",
        "flush.messages",
        "flush.ms",
        "index.interval.bytes",
        "max.message.bytes",
        "message.timestamp.type",
        "min.insync.replicas",
        "retention.bytes",
        "retention.ms",
        "segment.bytes",
        "segment.index.bytes",
        "segment.ms",
        "unclean.leader.election.enable",
    ]
    base = kafka_config({"log.retention.ms": "-1"}).log
    assert LogConfig.from_properties({"segment.bytes": "2048"}, base=base).retention_ms == -1
    broker = BrokerServer(KafkaConfig(log_dir=str(tmp_path)))
    try:
        for configs, expected in [
            ({"retention.ms": "-5"}, "retention.ms must be -1 (unlimited) or at least 0, got -5"),
            ({"segment.bytes": "13"}, "segment.bytes must be at least 14, got 13"),
            ({"max.message.bytes": "-1"}, "max.message.bytes must be at least 0, got -1"),
        ]:
            with pytest.raises(TopicAdminError) as caught:
                broker.topics.create_topic("t", 1, 1, configs)
            assert caught.value.error_code == INVALID_CONFIG
            assert str(caught.value) == expected
        assert "t" not in broker.topics.topics
        broker.topics.create_topic("t", 1, 1, {"retention.ms": "-1", "segment.bytes": "14"})
        assert broker.topics.log_config("t").retention_ms == -1
    finally:
        broker.shutdown()


def _one_line_error(completed, expected: str) -> None:
    assert completed.returncode == 2, (completed.stdout, completed.stderr)
    assert "Traceback" not in completed.stderr
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1, completed.stderr
    assert lines[0] == f"kbench broker: error: {expected}"


def test_kbench_broker_refuses_a_bad_setting_in_one_line(tmp_path, run_kbench):
    data = str(tmp_path / "data")
    completed = run_kbench(
        "broker", "--data-dir", data, "--listen", "127.0.0.1:0", "--set", "log.retention.ms=-5"
    )
    _one_line_error(completed, "log.retention.ms must be -1 (unlimited) or at least 0, got -5")
    completed = run_kbench(
        "broker", "--data-dir", data, "--listen", "127.0.0.1:0", "--set", "log.segment.byte=1"
    )
    _one_line_error(completed, "unknown setting log.segment.byte: did you mean log.segment.bytes?")


def test_kbench_broker_warns_about_foreign_settings_and_serves(tmp_path):
    broker = broker_process(str(tmp_path / "data"), **{"num.network.threads": "3"})
    broker.start()
    assert broker.stop() == 0
    with open(broker.log_path, encoding="utf-8") as log:
        warnings = [line for line in log if "WARNING" in line]
    assert len(warnings) == 1
    assert re.search(r"ignoring num\.network\.threads: not a setting this broker has", warnings[0])


def test_every_setting_has_documentation():
    """DescribeConfigs sends each setting's doc as its documentation: none may be missing."""
    for table in (KafkaConfig, LogConfig):
        for f, s in settings(table):
            assert s.doc.strip(), f"{table.__name__}.{f.name} ({s.names[0]}) has no doc"
            assert s.doc.strip().endswith("."), f"{s.names[0]}: a doc is a sentence"
