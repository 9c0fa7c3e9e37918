"""DescribeConfigs of the broker through a real admin client: host paths go out as Kafka sends
a sensitive value (null, is_sensitive) unless describe.configs.paths.enable says otherwise."""

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource, ConfigSource, NewTopic, ResourceType
from kafka import KafkaAdminClient
from kafka.admin import ConfigResource as KafkaConfigResource
from kafka.admin import ConfigResourceType
from kafka.protocol.admin.configs import DescribeConfigsRequest, DescribeConfigsResponse

from engine.broker.config import KafkaConfig
from engine.storage.config import LogConfig, settings
from scenarios.clients.cluster import KafkaConnection
from tests.conftest import broker_process


def _broker_configs(bootstrap: str) -> dict:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    resource = ConfigResource(ResourceType.BROKER, "0")
    return admin.describe_configs([resource])[resource].result(timeout=30)


@pytest.mark.parametrize("reveal", [False, True])
def test_log_dirs_is_shown_only_when_configured(tmp_path, reveal):
    data_dir = str(tmp_path / "data")
    settings = {"describe.configs.paths.enable": "true"} if reveal else {}
    broker = broker_process(data_dir, **settings).start()
    try:
        configs = _broker_configs(broker.bootstrap)
    finally:
        broker.stop()
    log_dirs = configs["log.dirs"]
    assert log_dirs.is_sensitive is not reveal
    assert log_dirs.value == (data_dir if reveal else None)
    assert configs["num.partitions"].value == "1"  # the rest as before


@pytest.fixture(scope="module")
def configured(tmp_path_factory):
    """One broker with two static settings, a topic with one override."""
    data_dir = str(tmp_path_factory.mktemp("describe") / "data")
    broker = broker_process(data_dir, **{"log.retention.hours": "24", "num.partitions": "2"})
    broker.start()
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    topic = NewTopic("described", 1, 1, config={"segment.bytes": "1048576"})
    admin.create_topics([topic])["described"].result(timeout=30)
    yield broker
    broker.stop()


def test_broker_configs_have_kafkas_sources_and_synonyms(configured):
    admin = AdminClient({"bootstrap.servers": configured.bootstrap})
    resource = ConfigResource(ResourceType.BROKER, "0")
    configs = admin.describe_configs([resource])[resource].result(30)
    retention = configs["log.retention.ms"]  # set as log.retention.hours, reported in ms
    assert retention.value == str(24 * 3_600_000)
    assert retention.source == ConfigSource.STATIC_BROKER_CONFIG.value
    assert not retention.is_read_only  # dynamic in Kafka
    assert [(s.name, s.value, s.source) for s in retention.synonyms.values()] == [
        ("log.retention.hours", "24", ConfigSource.STATIC_BROKER_CONFIG.value),
        ("log.retention.ms", str(7 * 24 * 3_600_000), ConfigSource.DEFAULT_CONFIG.value),
    ]
    assert configs["num.partitions"].source == ConfigSource.STATIC_BROKER_CONFIG.value
    assert configs["num.partitions"].is_read_only
    assert configs["log.segment.bytes"].source == ConfigSource.DEFAULT_CONFIG.value
    assert configs["log.segment.bytes"].is_default


def test_topic_configs_name_the_broker_settings_they_fall_back_on(configured):
    admin = KafkaAdminClient(bootstrap_servers=configured.bootstrap)
    try:
        resource = KafkaConfigResource(ConfigResourceType.TOPIC, "described")
        described = admin.describe_configs([resource], include_synonyms=True, config_filter="all")
    finally:
        admin.close()
    configs = described["topic"]["described"]
    segment = configs["segment.bytes"]
    assert segment["value"] == "1048576"
    assert segment["config_source"] == "DYNAMIC_TOPIC_CONFIG"
    assert [(s["name"], s["source"]) for s in segment["synonyms"]] == [
        ("segment.bytes", "DYNAMIC_TOPIC_CONFIG"),
        ("log.segment.bytes", "DEFAULT_CONFIG"),
    ]
    retention = configs["retention.ms"]  # no override: the broker's static setting
    assert retention["value"] == str(24 * 3_600_000)
    assert retention["config_source"] == "STATIC_BROKER_CONFIG"
    assert retention["config_type"] == "LONG"
    assert not retention["read_only"]


def test_a_missing_topic_and_the_broker_loggers(configured):
    admin = AdminClient({"bootstrap.servers": configured.bootstrap})
    missing = ConfigResource(ResourceType.TOPIC, "missing")
    with pytest.raises(KafkaException, match="UNKNOWN_TOPIC_OR_PART"):
        admin.describe_configs([missing])[missing].result(timeout=30)
    client = KafkaAdminClient(bootstrap_servers=configured.bootstrap)
    try:
        loggers = KafkaConfigResource(ConfigResourceType.BROKER_LOGGER, "0")
        described = client.describe_configs([loggers], config_filter="all")
    finally:
        client.close()
    levels = described["broker_logger"]["0"]
    assert levels["root"]["value"] in ("DEBUG", "INFO", "WARNING", "ERROR")


def _raw_describe(bootstrap: str, include_documentation: bool, version: int = 4) -> dict:
    """{(resource type, config name): documentation} of topic "described" and broker 0, from a
    raw DescribeConfigs; neither admin client lets its caller set include_documentation."""
    cls = DescribeConfigsRequest[version]
    resources = [
        cls.DescribeConfigsResource(resource_type=kind, resource_name=name, configuration_keys=None)
        for kind, name in (
            (ConfigResourceType.TOPIC, "described"),
            (ConfigResourceType.BROKER, "0"),
            (ConfigResourceType.BROKER_LOGGER, "0"),
        )
    ]
    fields = {"include_synonyms": False}
    if version >= 3:
        fields["include_documentation"] = include_documentation
    with KafkaConnection(bootstrap) as connection:
        response = connection.request(cls(resources=resources, **fields), DescribeConfigsResponse)
    assert [r.error_code for r in response.results] == [0, 0, 0]
    return {
        # before v3 the response has no documentation field: null, as far as the caller knows
        (ConfigResourceType(r.resource_type).name, c.name): c.documentation
        if version >= 3
        else None
        for r in response.results
        for c in r.configs
    }


def test_documentation_is_sent_when_asked_for(configured):
    docs = _raw_describe(configured.bootstrap, include_documentation=True)
    for key in (
        ("TOPIC", "retention.ms"),
        ("TOPIC", "segment.bytes"),
        ("BROKER", "num.partitions"),
        ("BROKER", "log.retention.ms"),
        ("BROKER", "log.segment.bytes"),
    ):
        assert isinstance(docs[key], str) and docs[key].strip(), key
    # the table's doc, as declared; a log setting's under its topic and broker names alike
    doc = {s.names[0]: s.doc for table in (KafkaConfig, LogConfig) for _, s in settings(table)}
    assert docs[("BROKER", "num.partitions")] == doc["num.partitions"]
    assert docs[("TOPIC", "retention.ms")] == docs[("BROKER", "log.retention.ms")]
    assert docs[("TOPIC", "retention.ms")] == doc["retention.ms"]
    assert all(docs[key] for key in docs if key[0] != "BROKER_LOGGER")  # every setting has one
    loggers = [doc for key, doc in docs.items() if key[0] == "BROKER_LOGGER"]
    assert loggers and set(loggers) == {None}  # Kafka documents no logger


# v1 has neither include_documentation nor the field: the entries still come, as before
@pytest.mark.parametrize("version", [1, 3, 4])
def test_documentation_is_null_unless_asked_for(configured, version):
    docs = _raw_describe(configured.bootstrap, include_documentation=False, version=version)
    assert ("TOPIC", "retention.ms") in docs and ("BROKER", "num.partitions") in docs
    assert set(docs.values()) == {None}
