"""ConfigHelper: the configs DescribeConfigs reports, as Kafka 4.0's ConfigHelper reports them.

Every entry comes from the two config tables (KafkaConfig for the broker, LogConfig for topics
and the broker's log.* defaults): its name, value, type and synonyms. A broker setting is one
entry under its first Kafka name (a log setting under its first broker name, log.retention.ms,
in ms); its synonyms are the setting's other names (log.retention.minutes, log.retention.hours)
at each level that gives one, highest first, as Kafka's DynamicBrokerConfig.brokerConfigSynonyms:
the broker's dynamic config, the cluster-wide dynamic default (ConfigRecords with the broker's
id and with ""), the static properties (server.properties, --set), the table's default. The
entry's source is that of the first synonym. A topic entry (segment.bytes) puts the topic's own
override (TOPIC_CONFIG) before the synonyms of its broker names (log.segment.bytes), as Kafka's
LogConfig synonyms map does, so a topic without an override reports where the broker took it.

Broker log.* settings are dynamic in Kafka (DynamicLogConfig) and read_only false; every other
broker setting is read-only; topic settings never are. An entry's documentation is its setting's
`doc` in the table; kafka_apis sends it only when the request sets include_documentation
(DescribeConfigs v3+), null otherwise, as Kafka does. BROKER_LOGGER lists the broker's Python
loggers and their levels, as Kafka lists its log4j loggers, with no documentation (Kafka has
none). Plain functions over immutable inputs: safe from any thread.
"""

import logging
from collections.abc import Iterable, Mapping
from dataclasses import Field, dataclass
from typing import Any

from kafka.admin import ConfigSourceType, ConfigType

from engine.broker.config import KafkaConfig
from engine.storage.config import INT_MAX, LogConfig, Range, Setting, settings

_KBENCH_NAMES = frozenset({"listen"})  # kbench's shorthands, no Kafka synonym
# broker settings whose value names a host path: sent as Kafka sends a sensitive value (null)
# unless describe.configs.paths.enable
PATH_CONFIGS = frozenset({"log.dirs", "log.dir"})


@dataclass(frozen=True)
class Synonym:
    name: str
    value: str | None
    source: ConfigSourceType


@dataclass(frozen=True)
class ConfigEntry:
    name: str
    value: str | None
    source: ConfigSourceType
    read_only: bool
    sensitive: bool
    config_type: ConfigType
    synonyms: tuple[Synonym, ...]
    documentation: str | None = None  # the setting's doc; None for BROKER_LOGGER entries


@dataclass(frozen=True)
class _Declared:
    """One setting of either table, with the names it goes by at broker and topic level."""

    field: Field
    setting: Setting
    broker_names: tuple[str, ...]
    topic_name: str | None  # LogConfig's settings only


def _declared() -> list[_Declared]:
    declared = [
        _Declared(f, s, tuple(n for n in s.names if n not in _KBENCH_NAMES), None)
        for f, s in settings(KafkaConfig)
    ]
    for f, s in settings(LogConfig):
        declared.append(_Declared(f, s, s.names[1:] or s.names[:1], s.names[0]))
    return declared


_DECLARED = _declared()
_DEFAULTS = KafkaConfig()
BROKER_CONFIG_NAMES = frozenset(n for d in _DECLARED for n in d.broker_names)
# the broker names Kafka lets AlterConfigs change while running (DynamicLogConfig's)
DYNAMIC_BROKER_CONFIGS = frozenset(n for d in _DECLARED if d.topic_name for n in d.broker_names)


def shown(value: object) -> str | None:
    """A setting's value as Kafka prints it: true/false, comma-separated lists, null."""
    if value is None:
        return None
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return str(value)


def _config_type(d: _Declared) -> ConfigType:
    default = d.field.default
    if isinstance(default, bool):
        return ConfigType.BOOLEAN
    if isinstance(default, int):
        rule = d.setting.rule
        return (
            ConfigType.LONG if isinstance(rule, Range) and rule.high > INT_MAX else ConfigType.INT
        )
    if isinstance(default, tuple):
        return ConfigType.LIST
    return ConfigType.STRING


def _broker_synonyms(
    d: _Declared,
    static: Mapping[str, str],
    dynamic: Mapping[str, str],
    dynamic_default: Mapping[str, str],
) -> list[Synonym]:
    found = [
        Synonym(name, level[name], source)
        for level, source in (
            (dynamic, ConfigSourceType.DYNAMIC_BROKER_CONFIG),
            (dynamic_default, ConfigSourceType.DYNAMIC_DEFAULT_BROKER_CONFIG),
            (static, ConfigSourceType.STATIC_BROKER_CONFIG),
        )
        for name in d.broker_names
        if name in level
    ]
    default = shown(_current(_DEFAULTS, d))
    if default is not None:
        found.append(Synonym(d.broker_names[0], default, ConfigSourceType.DEFAULT_CONFIG))
    return found


def _current(config: KafkaConfig, d: _Declared) -> Any:
    if d.topic_name is not None:
        return getattr(config.log, d.field.name)
    if d.broker_names[0] == "listeners":  # two fields, one property
        return f"PLAINTEXT://{config.listener}"
    return getattr(config, d.field.name)


def broker_configs(
    config: KafkaConfig,
    dynamic: Mapping[str, str],
    dynamic_default: Mapping[str, str],
    reveal_paths: bool,
) -> list[ConfigEntry]:
    """A broker's entries (DescribeConfigs of BROKER "<its id>"), `config` holding its current
    settings and `dynamic`/`dynamic_default` the cluster's ConfigRecords for it and for all."""
    entries: dict[str, ConfigEntry] = {}
    for d in _DECLARED:
        name = d.broker_names[0]
        if name in entries:
            continue
        synonyms = _broker_synonyms(d, config.static_properties, dynamic, dynamic_default)
        sensitive = name in PATH_CONFIGS and not reveal_paths
        entries[name] = ConfigEntry(
            name=name,
            value=None if sensitive else shown(_current(config, d)),
            source=synonyms[0].source if synonyms else ConfigSourceType.DEFAULT_CONFIG,
            read_only=name not in DYNAMIC_BROKER_CONFIGS,
            sensitive=sensitive,
            config_type=_config_type(d),
            synonyms=tuple(Synonym(s.name, None, s.source) if sensitive else s for s in synonyms),
            documentation=d.setting.doc,
        )
    return sorted(entries.values(), key=lambda e: e.name)


def default_broker_configs(dynamic_default: Mapping[str, str]) -> list[ConfigEntry]:
    """DescribeConfigs of BROKER "": the cluster-wide dynamic defaults alone, as Kafka."""
    by_name = {n: d for d in _DECLARED for n in d.broker_names}
    return [
        ConfigEntry(
            name,
            value,
            ConfigSourceType.DYNAMIC_DEFAULT_BROKER_CONFIG,
            read_only=False,
            sensitive=False,
            config_type=_config_type(by_name[name]) if name in by_name else ConfigType.UNKNOWN,
            synonyms=(Synonym(name, value, ConfigSourceType.DYNAMIC_DEFAULT_BROKER_CONFIG),),
            documentation=by_name[name].setting.doc if name in by_name else None,
        )
        for name, value in sorted(dynamic_default.items())
    ]


def topic_configs(
    config: KafkaConfig,
    overrides: Mapping[str, str],
    dynamic: Mapping[str, str],
    dynamic_default: Mapping[str, str],
) -> list[ConfigEntry]:
    """A topic's entries: `overrides` its topic-level configs, over the broker's log settings
    (`config.log`, which holds the broker's dynamic ones)."""
    effective = LogConfig.from_properties(overrides, base=config.log)
    entries = []
    for d in _DECLARED:
        if d.topic_name is None:
            continue
        synonyms = _broker_synonyms(d, config.static_properties, dynamic, dynamic_default)
        if d.topic_name in overrides:
            own = Synonym(
                d.topic_name, overrides[d.topic_name], ConfigSourceType.DYNAMIC_TOPIC_CONFIG
            )
            synonyms.insert(0, own)
        entries.append(
            ConfigEntry(
                name=d.topic_name,
                value=shown(getattr(effective, d.field.name)),
                source=synonyms[0].source,
                read_only=False,
                sensitive=False,
                config_type=_config_type(d),
                synonyms=tuple(synonyms),
                documentation=d.setting.doc,
            )
        )
    return sorted(entries, key=lambda e: e.name)


def broker_logger_configs() -> list[ConfigEntry]:
    """The broker's loggers and their effective levels (root first), as Kafka's BROKER_LOGGER."""
    names = sorted(
        name
        for name, logger in logging.root.manager.loggerDict.items()
        if isinstance(logger, logging.Logger) and name.startswith("engine")
    )
    loggers: Iterable[tuple[str, logging.Logger]] = [("root", logging.getLogger())] + [
        (name, logging.getLogger(name)) for name in names
    ]
    return [
        ConfigEntry(
            name,
            logging.getLevelName(logger.getEffectiveLevel()),
            ConfigSourceType.DYNAMIC_BROKER_LOGGER_CONFIG,
            read_only=False,
            sensitive=False,
            config_type=ConfigType.STRING,
            synonyms=(),
        )
        for name, logger in loggers
    ]
