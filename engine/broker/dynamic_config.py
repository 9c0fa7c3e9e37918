"""DynamicBrokerConfig: the broker settings changed while running (AlterConfigs of BROKER
resources), over the static ones, as Kafka's DynamicBrokerConfig layers them: a broker's own
dynamic config, then the cluster-wide dynamic default (resource name ""), then server.properties
and --set, then the defaults. Only the log settings' broker names are dynamic
(config_helper.DYNAMIC_BROKER_CONFIGS); they are the defaults of every topic's LogConfig, so a
change reaches every partition without a restart.

In a cluster the layers are the ConfigRecords of the metadata log (the controller keeps them).
A single broker keeps them itself, in its log directory:
    broker-configs.json   {"": {name: value}, "<node id>": {name: value}}
replaced atomically (written to a temporary file, fsynced, renamed), so a crash leaves the old
file or the new one.

Not thread-safe: the event loop's thread alone uses it.
"""

import dataclasses
import json
import os
from collections.abc import Mapping

from engine.broker.config import KafkaConfig
from engine.storage.config import LogConfig, settings

BROKER_CONFIGS = "broker-configs.json"
CLUSTER_DEFAULT = ""  # the resource name of the cluster-wide dynamic default
# every broker name of a log setting -> all names of that setting
_SYNONYMS = {n: s.names for _, s in settings(LogConfig) for n in s.names}


def layered(*levels: Mapping[str, str]) -> dict[str, str]:
    """The properties of the levels, lowest first: a level that gives a setting under any of its
    names hides every name of it below (log.retention.ms over log.retention.hours)."""
    merged: dict[str, str] = {}
    for level in levels:
        for name in level:
            for synonym in _SYNONYMS.get(name, (name,)):
                merged.pop(synonym, None)
        merged.update(level)
    return merged


def effective_config(
    config: KafkaConfig,
    static_log: LogConfig,
    cluster_default: Mapping[str, str],
    per_broker: Mapping[str, str],
) -> KafkaConfig:
    """`config` whose log settings are `static_log` (the broker's at start) under the dynamic
    ones; ValueError when they break a rule."""
    dynamic = layered(cluster_default, per_broker)
    return dataclasses.replace(config, log=LogConfig.from_properties(dynamic, base=static_log))


class DynamicConfigStore:
    """A single broker's dynamic configs, {resource name: {name: value}}, in its log directory."""

    def __init__(self, log_dir: str) -> None:
        self.path = os.path.join(log_dir, BROKER_CONFIGS)
        self.configs: dict[str, dict[str, str]] = {}
        if os.path.exists(self.path):
            with open(self.path, encoding="utf-8") as f:
                try:
                    self.configs = json.load(f)
                except ValueError as exc:
                    raise RuntimeError(f"{self.path}: not JSON ({exc})") from None

    def save(self, resource_name: str, configs: Mapping[str, str]) -> None:
        self.configs[resource_name] = dict(configs)
        with open(self.path + ".tmp", "w", encoding="utf-8") as f:
            json.dump({k: v for k, v in self.configs.items() if v}, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(self.path + ".tmp", self.path)
