"""IncrementalAlterConfigs and AlterConfigs through kafka-python's and confluent-kafka's admin
clients, on a single `kbench broker` and on a 3-broker cluster: topic configs and dynamic broker
settings take effect at once (segments roll at the new size), are refused with Kafka's codes,
and outlive a restart."""

import glob
import os

import pytest
from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewTopic,
    ResourceType,
)
from kafka import KafkaAdminClient
from kafka.admin import AlterConfigOp, ConfigResourceType
from kafka.admin import ConfigResource as KafkaConfigResource
from kafka.protocol.admin.configs import (
    DescribeConfigsRequest,
    DescribeConfigsResponse,
    IncrementalAlterConfigsRequest,
    IncrementalAlterConfigsResponse,
)

from scenarios.clients.cluster import KafkaConnection
from scenarios.clients.local_broker import LocalCluster
from tests.cluster_support import CLUSTER_SETTINGS, wait_until
from tests.conftest import broker_process


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    running = broker_process(str(tmp_path_factory.mktemp("alter") / "data")).start()
    yield running
    running.stop()


def _admin(bootstrap: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap})


def _create(bootstrap: str, name: str, replication: int = 1, **configs: str) -> None:
    admin = _admin(bootstrap)  # alive until the result came
    admin.create_topics([NewTopic(name, 1, replication, config=configs)])[name].result(timeout=30)


def _describe(bootstrap: str, kind: ResourceType, name: str) -> dict:
    resource, admin = ConfigResource(kind, name), _admin(bootstrap)
    return admin.describe_configs([resource])[resource].result(timeout=30)


def _incremental(bootstrap: str, kind: ResourceType, name: str, **ops) -> None:
    entries = [
        ConfigEntry(key, value, incremental_operation=op) for key, (op, value) in ops.items()
    ]
    resource, admin = ConfigResource(kind, name, incremental_configs=entries), _admin(bootstrap)
    admin.incremental_alter_configs([resource])[resource].result(timeout=30)


def _segments(directory: str) -> int:
    return len(glob.glob(os.path.join(directory, "*.log")))


def _produce(bootstrap: str, topic: str, count: int = 20) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0, "batch.num.messages": 1})
    for _ in range(count):
        producer.produce(topic, b"x" * 200)
        producer.flush(30)


def test_a_topic_config_is_set_deleted_and_checked(broker):
    _create(broker.bootstrap, "altered")
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:

        def alter(validate_only: bool = False, **configs) -> str:
            resource = KafkaConfigResource(ConfigResourceType.TOPIC, "altered", configs=configs)
            result = admin.alter_configs([resource], validate_only=validate_only, incremental=True)
            return result["topic"]["altered"]

        assert alter(**{"retention.ms": "1000"}) == "OK"
        assert alter(validate_only=True, **{"retention.ms": "5000"}) == "OK"
        assert "InvalidConfigurationError" in alter(**{"segment.bytes": "1"})
        retention = _describe(broker.bootstrap, ResourceType.TOPIC, "altered")["retention.ms"]
        assert (retention.value, retention.source) == (
            "1000",
            ConfigSource.DYNAMIC_TOPIC_CONFIG.value,
        )
        assert alter(**{"retention.ms": (AlterConfigOp.DELETE, None)}) == "OK"
    finally:
        admin.close()
    retention = _describe(broker.bootstrap, ResourceType.TOPIC, "altered")["retention.ms"]
    assert (retention.value, retention.source) == (
        str(7 * 24 * 3_600_000),
        ConfigSource.DEFAULT_CONFIG.value,
    )


def test_alter_configs_replaces_a_topics_whole_set(broker):
    _create(broker.bootstrap, "replaced", **{"retention.ms": "1000"})
    resource = ConfigResource(ResourceType.TOPIC, "replaced", set_config={"segment.bytes": "4096"})
    admin = _admin(broker.bootstrap)
    with pytest.warns(DeprecationWarning):  # confluent-kafka's, for Kafka's AlterConfigs
        admin.alter_configs([resource])[resource].result(timeout=30)
    configs = _describe(broker.bootstrap, ResourceType.TOPIC, "replaced")
    assert configs["segment.bytes"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    assert configs["retention.ms"].source == ConfigSource.DEFAULT_CONFIG.value
    missing = ConfigResource(ResourceType.TOPIC, "missing", set_config={"retention.ms": "1"})
    with (
        pytest.raises(KafkaException, match="UNKNOWN_TOPIC_OR_PART"),
        pytest.warns(DeprecationWarning),
    ):
        admin.alter_configs([missing])[missing].result(timeout=30)


def test_a_dynamic_broker_default_rolls_segments_now_and_outlives_a_restart(broker):
    _create(broker.bootstrap, "rolled")
    with pytest.raises(KafkaException, match="Cannot update these configs dynamically"):
        _incremental(
            broker.bootstrap,
            ResourceType.BROKER,
            "0",
            **{"num.partitions": (AlterConfigOpType.SET, "3")},
        )
    _incremental(
        broker.bootstrap,
        ResourceType.BROKER,
        "0",
        **{"log.segment.bytes": (AlterConfigOpType.SET, "1024")},
    )
    _produce(broker.bootstrap, "rolled")
    assert _segments(os.path.join(broker.data_dir, "rolled-0")) > 1
    broker.restart()
    segment = _describe(broker.bootstrap, ResourceType.BROKER, "0")["log.segment.bytes"]
    assert (segment.value, segment.source) == (
        "1024",
        ConfigSource.DYNAMIC_BROKER_CONFIG.value,
    )


# -- a cluster ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    running = LocalCluster(str(tmp_path_factory.mktemp("c")), 3, CLUSTER_SETTINGS).start()
    yield running
    running.stop()


def _described_value(address: str, kind: int, resource: str, name: str) -> str | None:
    """What one broker says of a config (a raw DescribeConfigs to that broker)."""
    cls = DescribeConfigsRequest[4]
    request = cls(
        resources=[
            cls.DescribeConfigsResource(
                resource_type=kind, resource_name=resource, configuration_keys=[name]
            )
        ],
        include_synonyms=False,
        include_documentation=False,
    )
    with KafkaConnection(address) as connection:
        response = connection.request(request, DescribeConfigsResponse)
    [result] = response.results
    return next((c.value for c in result.configs if c.name == name), None)


def test_configs_altered_in_a_cluster_reach_every_broker_and_outlive_a_restart(cluster):
    _create(cluster.bootstrap, "shared", replication=3)
    _incremental(
        cluster.bootstrap,
        ResourceType.TOPIC,
        "shared",
        **{"segment.bytes": (AlterConfigOpType.SET, "1024")},
    )
    # the cluster-wide default (resource ""), which neither client can name
    cls = IncrementalAlterConfigsRequest[1]
    resource = cls.AlterConfigsResource
    entry = resource.AlterableConfig(name="log.retention.ms", config_operation=0, value="123456000")
    with KafkaConnection(cluster.bootstrap.split(",")[0]) as connection:
        response = connection.request(
            cls(
                resources=[resource(resource_type=4, resource_name="", configs=[entry])],
                validate_only=False,
            ),
            IncrementalAlterConfigsResponse,
        )
    assert [r.error_code for r in response.responses] == [0]
    _produce(cluster.bootstrap, "shared")
    directories = [os.path.join(cluster.directory, f"broker-{n}", "shared-0") for n in (1, 2, 3)]
    # every replica rolls by the altered segment.bytes, followers too
    wait_until(lambda: all(_segments(d) > 1 for d in directories), what="segments rolled")
    admin = KafkaAdminClient(bootstrap_servers=cluster.bootstrap)
    try:
        resources = [KafkaConfigResource(ConfigResourceType.BROKER, str(n)) for n in (1, 2, 3)]

        def retention_everywhere() -> bool:
            described = admin.describe_configs(resources, config_filter="all")["broker"]
            return all(
                described[str(n)]["log.retention.ms"]["value"] == "123456000" for n in (1, 2, 3)
            )

        wait_until(retention_everywhere, what="every broker took log.retention.ms")
    finally:
        admin.close()
    cluster.stop_broker(2)
    restarted = cluster.restart(2)
    cluster.wait_for_brokers({1, 2, 3})
    wait_until(
        lambda: _described_value(restarted.bootstrap, 2, "shared", "segment.bytes") == "1024"
    )
    # BROKER "": the cluster-wide dynamic defaults alone
    assert _described_value(restarted.bootstrap, 4, "", "log.retention.ms") == "123456000"
    retention = _describe(cluster.bootstrap, ResourceType.BROKER, "2")["log.retention.ms"]
    assert (retention.value, retention.source) == (
        "123456000",
        ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value,
    )
