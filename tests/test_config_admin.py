"""The rules of altering configs (engine/broker/config_admin.py), as Kafka's: each refusal with
its error code, and what SET, DELETE and a whole-set AlterConfigs leave."""

import pytest

from engine.broker.config import KafkaConfig
from engine.broker.config_admin import (
    APPEND,
    DELETE,
    SET,
    SUBTRACT,
    ConfigAlterError,
    altered_configs,
)
from engine.errors import INVALID_CONFIG, INVALID_REQUEST

TOPIC, BROKER, BROKER_LOGGER = 2, 4, 8
STATIC = KafkaConfig()


def _alter(kind: int, name: str, ops, current=None, incremental=True):
    return altered_configs(kind, name, current or {}, ops, incremental, STATIC, {})


@pytest.mark.parametrize(
    ("kind", "name", "ops", "code"),
    [
        pytest.param(
            TOPIC,
            "t",
            [("retention.ms", SET, "1"), ("retention.ms", DELETE, None)],
            INVALID_REQUEST,
            id="named-twice",
        ),
        pytest.param(TOPIC, "t", [("no.such.config", SET, "1")], INVALID_CONFIG, id="unknown"),
        pytest.param(TOPIC, "t", [("segment.bytes", SET, "1")], INVALID_CONFIG, id="bad-value"),
        pytest.param(TOPIC, "t", [("retention.ms", APPEND, "1")], INVALID_CONFIG, id="append"),
        pytest.param(TOPIC, "t", [("retention.ms", SUBTRACT, "1")], INVALID_CONFIG, id="subtract"),
        pytest.param(TOPIC, "t", [("retention.ms", 9, "1")], INVALID_REQUEST, id="unknown-op"),
        pytest.param(BROKER, "0", [("num.partitions", SET, "3")], INVALID_REQUEST, id="read-only"),
        pytest.param(BROKER, "0", [("retention.ms", SET, "3")], INVALID_CONFIG, id="topic-name"),
        pytest.param(
            BROKER, "x", [("log.retention.ms", SET, "3")], INVALID_REQUEST, id="broker-name"
        ),
        pytest.param(
            BROKER,
            "",
            [("min.insync.replicas", SET, "2")],
            INVALID_CONFIG,
            id="breaks-a-broker-rule",
        ),  # above default.replication.factor (1)
        pytest.param(
            BROKER_LOGGER, "0", [("root", SET, "DEBUG")], INVALID_REQUEST, id="resource-type"
        ),
    ],
)
def test_refusals_carry_kafkas_codes(kind, name, ops, code):
    with pytest.raises(ConfigAlterError) as refused:
        _alter(kind, name, ops)
    assert refused.value.error_code == code


def test_incremental_changes_named_configs_and_alter_replaces_the_set():
    current = {"retention.ms": "1000", "segment.bytes": "4096"}
    ops = [("retention.ms", DELETE, None), ("flush.ms", SET, "10")]
    assert _alter(TOPIC, "t", ops, current) == {"segment.bytes": "4096", "flush.ms": "10"}
    replaced = _alter(TOPIC, "t", [("flush.ms", SET, "10")], current, incremental=False)
    assert replaced == {"flush.ms": "10"}
    hours = _alter(BROKER, "", [("log.retention.hours", SET, "2")])
    assert hours == {"log.retention.hours": "2"}
