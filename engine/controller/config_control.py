"""ConfigurationControlManager: AlterConfigs and IncrementalAlterConfigs on the controller, as
ConfigRecords in the metadata log, so every broker applies them (topic configs to its replicas,
broker configs to its settings) and they outlive restarts.

The rules are config_admin's, shared with the single broker; here a topic must be in the image
(UNKNOWN_TOPIC_OR_PARTITION otherwise), and a broker resource is checked against the
controller's own static settings. A record per changed name: the new value, or a null value for
a name removed. Plain functions over an immutable image: safe from any thread.
"""

from collections.abc import Iterable
from typing import Any

from kafka.admin import ConfigResourceType

from engine.broker.config import KafkaConfig
from engine.broker.config_admin import ConfigAlterError, Op, altered_configs
from engine.broker.dynamic_config import CLUSTER_DEFAULT
from engine.errors import UNKNOWN_TOPIC_OR_PARTITION
from engine.metadata.image import ClusterImage
from engine.metadata.records import ConfigRecord


def config_records(
    image: ClusterImage,
    resource_type: int,
    resource_name: str,
    ops: Iterable[Op],
    incremental: bool,
    static: KafkaConfig,
) -> list[Any]:
    """The ConfigRecords that make the change (none when nothing changes); ConfigAlterError
    with Kafka's code when it is refused."""
    if resource_type == ConfigResourceType.TOPIC and resource_name not in image.topics:
        raise ConfigAlterError(
            UNKNOWN_TOPIC_OR_PARTITION, f"The topic '{resource_name}' does not exist."
        )
    key = (resource_type, resource_name)
    current = image.configs.get(key, {})
    cluster_default = image.configs.get((ConfigResourceType.BROKER, CLUSTER_DEFAULT), {})
    configs = altered_configs(
        resource_type, resource_name, current, ops, incremental, static, cluster_default
    )
    return [
        ConfigRecord(
            version=0,
            resource_type=resource_type,
            resource_name=resource_name,
            name=name,
            value=configs.get(name),
        )
        for name in sorted(current.keys() | configs.keys())
        if current.get(name) != configs.get(name)
    ]
