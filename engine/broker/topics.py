"""TopicManager: the cluster's topics and partitions as this broker knows them, and topic admin.

Files in the log directory, Kafka's where Kafka has one:
    meta.properties                 version=1, node.id, cluster.id (written on first start)
    <topic>-<p>/partition.metadata  "version: 0" and "topic_id: <base64 uuid>" per partition
    topic-configs.json              topic-level config overrides, {topic: {name: value}}
A topic is the set of its partition directories; a crash during create or delete leaves some
partitions, which load as a topic with fewer partitions. Files are replaced atomically.
"""

import base64
import json
import os
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

from engine.broker.config import KafkaConfig
from engine.broker.partition import Partition
from engine.common import TopicPartition
from engine.errors import (
    INVALID_CONFIG,
    INVALID_PARTITIONS,
    INVALID_REPLICATION_FACTOR,
    INVALID_REQUEST,
    INVALID_TOPIC_EXCEPTION,
    TOPIC_ALREADY_EXISTS,
    UNKNOWN_TOPIC_OR_PARTITION,
)
from engine.storage import Log, LogConfig, LogManager
from engine.storage.config import TOPIC_CONFIG_NAMES
from engine.storage.log_manager import validate_topic_name

META_PROPERTIES = "meta.properties"
PARTITION_METADATA = "partition.metadata"
TOPIC_CONFIGS = "topic-configs.json"
INTERNAL_TOPICS = frozenset({"__consumer_offsets"})


class TopicAdminError(Exception):
    def __init__(self, error_code: int, message: str) -> None:
        super().__init__(message)
        self.error_code = error_code


@dataclass
class Topic:
    name: str
    topic_id: uuid.UUID
    partitions: dict[int, Partition] = field(default_factory=dict)
    configs: dict[str, str] = field(default_factory=dict)  # topic-level overrides

    @property
    def is_internal(self) -> bool:
        return self.name in INTERNAL_TOPICS


def _write_atomically(path: str, text: str) -> None:
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(path + ".tmp", path)


def _encode_uuid(value: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(value.bytes).decode().rstrip("=")


def _decode_uuid(text: str) -> uuid.UUID:
    return uuid.UUID(bytes=base64.urlsafe_b64decode(text + "=="))


class TopicManager:
    def __init__(self, config: KafkaConfig, log_manager: LogManager) -> None:
        self.config = config
        self.log_manager = log_manager
        self.node_id = config.node_id
        self.cluster_id = self._load_meta_properties()
        self.topics: dict[str, Topic] = {}
        self._configs_path = os.path.join(config.log_dir, TOPIC_CONFIGS)
        overrides = {}
        if os.path.exists(self._configs_path):
            with open(self._configs_path, encoding="utf-8") as f:
                overrides = json.load(f)
        for tp, log in sorted(log_manager.logs.items()):
            topic = self.topics.get(tp.topic)
            if topic is None:
                topic_id = self._read_topic_id(log.directory) or uuid.uuid4()
                topic = self.topics[tp.topic] = Topic(
                    tp.topic, topic_id, configs=overrides.get(tp.topic, {})
                )
            if topic.configs:
                log.config = LogConfig.from_properties(topic.configs, base=config.log)
            topic.partitions[tp.partition] = self._partition(tp, log)

    def _load_meta_properties(self) -> str:
        path = os.path.join(self.config.log_dir, META_PROPERTIES)
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                properties = dict(
                    line.split("=", 1) for line in f.read().splitlines() if "=" in line
                )
            stored = int(properties.get("node.id", self.node_id))
            if stored != self.node_id:
                raise RuntimeError(
                    f"{path} belongs to node.id {stored}, this broker is node.id {self.node_id}"
                )
            return properties["cluster.id"]
        cluster_id = _encode_uuid(uuid.uuid4())
        _write_atomically(path, f"version=1\nnode.id={self.node_id}\ncluster.id={cluster_id}\n")
        return cluster_id

    @staticmethod
    def _read_topic_id(directory: str) -> uuid.UUID | None:
        try:
            with open(os.path.join(directory, PARTITION_METADATA), encoding="utf-8") as f:
                fields = dict(line.split(": ", 1) for line in f.read().splitlines() if ": " in line)
            return _decode_uuid(fields["topic_id"])
        except (OSError, KeyError, ValueError):
            return None

    def _partition(self, tp: TopicPartition, log: Log) -> Partition:
        return Partition(
            tp, log, leader_id=self.node_id, replicas=[self.node_id], isr=[self.node_id]
        )

    # -- lookups --------------------------------------------------------------------------------
    def partition(self, tp: TopicPartition) -> Partition | None:
        topic = self.topics.get(tp.topic)
        return None if topic is None else topic.partitions.get(tp.partition)

    def log_config(self, topic: str) -> LogConfig:
        overrides = self.topics[topic].configs if topic in self.topics else {}
        return LogConfig.from_properties(overrides, base=self.config.log)

    # -- admin ----------------------------------------------------------------------------------
    def create_topic(
        self,
        name: str,
        num_partitions: int = -1,
        replication_factor: int = -1,
        configs: dict[str, str] | None = None,
        validate_only: bool = False,
    ) -> Topic | None:
        """Create a topic (-1: the broker's num.partitions / default.replication.factor)."""
        try:
            validate_topic_name(name)
        except ValueError as exc:
            raise TopicAdminError(INVALID_TOPIC_EXCEPTION, str(exc)) from None
        if name in self.topics:
            raise TopicAdminError(TOPIC_ALREADY_EXISTS, f"topic {name!r} already exists")
        num_partitions = self.config.num_partitions if num_partitions == -1 else num_partitions
        if num_partitions < 1:
            raise TopicAdminError(INVALID_PARTITIONS, "number of partitions must be at least 1")
        if replication_factor == -1:
            replication_factor = self.config.default_replication_factor
        if replication_factor != 1:  # the brokers alive: this one
            raise TopicAdminError(
                INVALID_REPLICATION_FACTOR,
                f"replication factor {replication_factor} is larger than the 1 available broker",
            )
        configs = dict(configs or {})
        unknown = sorted(set(configs) - TOPIC_CONFIG_NAMES)
        if unknown:
            raise TopicAdminError(
                INVALID_CONFIG,
                f"unsupported topic configs {unknown}; supported: {sorted(TOPIC_CONFIG_NAMES)}",
            )
        try:
            log_config = LogConfig.from_properties(configs, base=self.config.log)
        except ValueError as exc:
            raise TopicAdminError(INVALID_CONFIG, str(exc)) from None
        if validate_only:
            return None
        topic = self.topics[name] = Topic(name, uuid.uuid4(), configs=configs)
        self._save_configs()
        self._add_partitions(topic, range(num_partitions), log_config)
        return topic

    def _add_partitions(self, topic: Topic, indexes: Iterable[int], log_config: LogConfig) -> None:
        for index in indexes:
            tp = TopicPartition(topic.name, index)
            log = self.log_manager.get_or_create_log(tp, log_config)
            _write_atomically(
                os.path.join(log.directory, PARTITION_METADATA),
                f"version: 0\ntopic_id: {_encode_uuid(topic.topic_id)}\n",
            )
            topic.partitions[index] = self._partition(tp, log)

    def create_partitions(self, name: str, count: int, validate_only: bool = False) -> None:
        topic = self.topics.get(name)
        if topic is None:
            raise TopicAdminError(UNKNOWN_TOPIC_OR_PARTITION, f"topic {name!r} does not exist")
        current = len(topic.partitions)
        if count <= current:
            raise TopicAdminError(
                INVALID_PARTITIONS, f"topic {name!r} has {current} partitions, asked for {count}"
            )
        if not validate_only:
            self._add_partitions(topic, range(current, count), self.log_config(name))

    def delete_topic(self, name: str) -> Topic:
        topic = self.topics.get(name)
        if topic is None:
            raise TopicAdminError(UNKNOWN_TOPIC_OR_PARTITION, f"topic {name!r} does not exist")
        if topic.is_internal:
            raise TopicAdminError(INVALID_REQUEST, f"internal topic {name!r} cannot be deleted")
        del self.topics[name]
        for index in topic.partitions:
            self.log_manager.delete_log(TopicPartition(name, index))
        self._save_configs()
        return topic

    def _save_configs(self) -> None:
        overrides = {name: t.configs for name, t in sorted(self.topics.items()) if t.configs}
        _write_atomically(self._configs_path, json.dumps(overrides, indent=1, sort_keys=True))
