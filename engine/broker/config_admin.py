"""Altering configs (IncrementalAlterConfigs, AlterConfigs) by Kafka's rules: what a request
asks of one resource, checked, as the new set of that resource's dynamic configs.

Shared by the controller, which writes the result as ConfigRecords, and by a single broker,
which keeps it in its own files. The rules are Kafka's ConfigAdminManager and
ConfigurationControlManager's, with its error codes: a config named twice in a resource, an
unknown operation or resource type, a broker resource that is not "" or a broker id, or a broker
setting Kafka cannot change while running is INVALID_REQUEST ("Cannot update these configs
dynamically"); an unknown name (on a broker too, where Kafka would keep it as a custom config
the engine could not apply), a bad value, or APPEND/SUBTRACT on a setting that is not a list
(none of the engine's are) is INVALID_CONFIG. AlterConfigs replaces the resource's whole set;
IncrementalAlterConfigs changes the names it gives (SET, DELETE). Plain functions: safe from any
thread.
"""

from collections.abc import Iterable, Mapping

from kafka.admin import ConfigResourceType

from engine.broker.config import KafkaConfig
from engine.broker.config_helper import BROKER_CONFIG_NAMES, DYNAMIC_BROKER_CONFIGS
from engine.broker.dynamic_config import CLUSTER_DEFAULT, effective_config
from engine.errors import INVALID_CONFIG, INVALID_REQUEST
from engine.storage.config import TOPIC_CONFIG_NAMES, LogConfig

# IncrementalAlterConfigs' ConfigOperation (Kafka's AlterConfigOp.OpType)
SET, DELETE, APPEND, SUBTRACT = 0, 1, 2, 3
# one config of a request: (name, operation, value); AlterConfigs' are all SET
Op = tuple[str, int, str | None]


class ConfigAlterError(Exception):
    def __init__(self, error_code: int, message: str) -> None:
        super().__init__(message)
        self.error_code = error_code


def altered_configs(
    resource_type: int,
    resource_name: str,
    current: Mapping[str, str],
    ops: Iterable[Op],
    incremental: bool,
    static: KafkaConfig,
    cluster_default: Mapping[str, str],
) -> dict[str, str]:
    """The resource's dynamic configs after `ops`, over `current`; ConfigAlterError otherwise.
    `static` and `cluster_default` are what a broker resource's values are checked against (a
    topic's against `static.log`)."""
    ops = list(ops)
    names = [name for name, _, _ in ops]
    if len(set(names)) != len(names):
        raise ConfigAlterError(INVALID_REQUEST, "Error due to duplicate config keys")
    if resource_type == ConfigResourceType.TOPIC:
        unknown = sorted(set(names) - TOPIC_CONFIG_NAMES)
        if unknown:
            raise ConfigAlterError(INVALID_CONFIG, f"Unknown topic config name: {unknown[0]}")
    elif resource_type == ConfigResourceType.BROKER:
        if resource_name != CLUSTER_DEFAULT and not resource_name.isdigit():
            raise ConfigAlterError(INVALID_REQUEST, f"Invalid broker name {resource_name!r}")
        fixed = sorted(set(names) & BROKER_CONFIG_NAMES - DYNAMIC_BROKER_CONFIGS)
        if fixed:
            raise ConfigAlterError(
                INVALID_REQUEST, f"Cannot update these configs dynamically: {set(fixed)}"
            )
        unknown = sorted(set(names) - DYNAMIC_BROKER_CONFIGS)
        if unknown:
            raise ConfigAlterError(INVALID_CONFIG, f"Unknown broker config name: {unknown[0]}")
    else:
        raise ConfigAlterError(
            INVALID_REQUEST, f"Unsupported resource type {resource_type} for altering configs"
        )
    configs = dict(current) if incremental else {}
    for name, op, value in ops:
        if op in (APPEND, SUBTRACT):
            raise ConfigAlterError(
                INVALID_CONFIG, f"Config value append or subtract is not allowed for {name}"
            )
        if op == DELETE or (op == SET and value is None and not incremental):
            configs.pop(name, None)
        elif op == SET:
            if value is None:
                raise ConfigAlterError(INVALID_CONFIG, f"Null value not supported for {name}")
            configs[name] = value
        else:
            raise ConfigAlterError(INVALID_REQUEST, f"Unknown config operation {op} for {name}")
    try:
        if resource_type == ConfigResourceType.TOPIC:
            LogConfig.from_properties(configs, base=static.log)
        elif resource_name == CLUSTER_DEFAULT:
            effective_config(static, static.log, configs, {})
        else:
            effective_config(static, static.log, cluster_default, configs)
    except ValueError as exc:
        raise ConfigAlterError(INVALID_CONFIG, str(exc)) from None
    return configs


def request_ops(resource: object, incremental: bool) -> list[Op]:
    """The (name, operation, value) of one resource of either request."""
    configs = getattr(resource, "configs", None) or ()
    if incremental:
        return [(c.name, c.config_operation, c.value) for c in configs]
    return [(c.name, SET, c.value) for c in configs]
