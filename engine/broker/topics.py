"""TopicManager: the cluster's topics and partitions as this broker knows them, and topic admin.

Files in the log directory, Kafka's where Kafka has one:
    meta.properties                 version=1, node.id, cluster.id (written on first start)
    <topic>-<p>/partition.metadata  "version: 0" and "topic_id: <base64 uuid>" per partition
    topic-configs.json              topic-level config overrides, {topic: {name: value}}
A topic is the set of its partition directories; a crash during create or delete leaves some
partitions, which load as a topic with fewer partitions. meta.properties and topic-configs.json
are replaced atomically (fsynced). partition.metadata is written without an fsync of its own and
the log directory is fsynced once per request, so creating N partitions costs N mkdirs and N
small writes, not N fsyncs; after a power loss a partition.metadata may be empty or missing, and
the partition then takes its topic id from its siblings (and the file is rewritten) on load.

max.broker.partitions (KIP-578's name) bounds the partitions this broker holds: a CreateTopics,
CreatePartitions or auto-creation that would pass it is refused with POLICY_VIOLATION before
anything is created (the code Kafka's controller answers a request for too many partitions
with), all or nothing per topic. A directory that already holds more still loads.
"""

import base64
import contextlib
import json
import logging
import os
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
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
    KAFKA_STORAGE_ERROR,
    POLICY_VIOLATION,
    TOPIC_ALREADY_EXISTS,
    UNKNOWN_TOPIC_OR_PARTITION,
)
from engine.metadata.image import NO_LEADER
from engine.storage import Log, LogConfig, LogManager
from engine.storage.config import TOPIC_CONFIG_NAMES
from engine.storage.log_manager import validate_topic_name
from engine.storage.meta_properties import format_log_dir, read_cluster_id

PARTITION_METADATA = "partition.metadata"
TOPIC_CONFIGS = "topic-configs.json"
INTERNAL_TOPICS = frozenset({"__consumer_offsets", "__transaction_state"})

log = logging.getLogger(__name__)


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


def _partition_metadata(topic_id: uuid.UUID) -> str:
    return f"version: 0\ntopic_id: {_encode_uuid(topic_id)}\n"


def _encode_uuid(value: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(value.bytes).decode().rstrip("=")


def _decode_uuid(text: str) -> uuid.UUID:
    return uuid.UUID(bytes=base64.urlsafe_b64decode(text + "=="))


def check_assignment_counts(num_partitions: int, replication_factor: int) -> None:
    """CreateTopics with a manual assignment leaves both counts at -1, or Kafka refuses it."""
    if replication_factor != -1:
        raise TopicAdminError(
            INVALID_REPLICATION_FACTOR,
            "A manual partition assignment was specified, but replication factor was not set "
            "to -1.",
        )
    if num_partitions != -1:
        raise TopicAdminError(
            INVALID_PARTITIONS,
            "A manual partition assignment was specified, but numPartitions was not set to -1.",
        )


def manual_assignment_error(
    replicas: Mapping[int, Sequence[int]],
    registered: Collection[int],
    first_index: int = 0,
    replication_factor: int | None = None,
) -> str | None:
    """Why a manual replica assignment (partition index -> broker ids) is refused, in Kafka's
    words (ReplicationControlManager.validateManualPartitionAssignment), or None. Partitions
    must be numbered from `first_index` without gaps, every one with the same number of
    replicas (`replication_factor` when the topic has one), each broker once and registered.
    The error code is INVALID_REPLICA_ASSIGNMENT."""
    if sorted(replicas) != list(range(first_index, first_index + len(replicas))):
        return (
            f"partitions were not numbered {first_index} through {first_index + len(replicas) - 1}"
        )
    for _, brokers in sorted(replicas.items()):
        if not brokers:
            return "The manual partition assignment includes an empty replica list."
        expected = replication_factor or len(replicas[first_index])
        if len(brokers) != expected:
            return (
                f"The manual partition assignment includes a partition with {len(brokers)} "
                f"replica(s), but this is not consistent with previous partitions, which have "
                f"{expected} replica(s)."
            )
        for broker in brokers:
            if list(brokers).count(broker) > 1:
                return (
                    f"The manual partition assignment includes the broker {broker} more than once."
                )
            if broker not in registered:
                return (
                    f"The manual partition assignment includes broker {broker}, but no such "
                    "broker is registered."
                )
    return None


class TopicManager:
    """The topics and partitions of this broker, created, loaded and deleted. Not thread-safe: the
    event loop's thread alone uses it."""

    def __init__(self, config: KafkaConfig, log_manager: LogManager) -> None:
        self.config = config
        self.log_manager = log_manager
        self.node_id = config.node_id
        # a cluster member learns its cluster id from the controller (set_cluster_id)
        self.cluster_id = (
            read_cluster_id(config.log_dir, config.node_id)
            if config.in_cluster
            else format_log_dir(config.log_dir, config.node_id)
        )
        self.topics: dict[str, Topic] = {}
        # called after every change to the topics or their partitions (BrokerServer publishes
        # a new cluster image)
        self.on_change: Callable[[], None] = lambda: None
        # in a cluster, whether a broker may join an ISR (set by BrokerServer from the metadata)
        self.isr_eligible: Callable[[int], bool] = lambda replica_id: True
        self._configs_path = os.path.join(config.log_dir, TOPIC_CONFIGS)
        overrides = {}
        if os.path.exists(self._configs_path):
            with open(self._configs_path, encoding="utf-8") as f:
                try:
                    overrides = json.load(f)
                except ValueError as exc:
                    raise RuntimeError(f"{self._configs_path}: not JSON ({exc})") from None
        missing_ids: list[str] = []
        for tp, partition_log in sorted(log_manager.logs.items()):
            topic = self.topics.get(tp.topic)
            if topic is None:
                topic_id = self._read_topic_id(partition_log.directory)
                if topic_id is None:
                    missing_ids.append(tp.topic)
                topic = self.topics[tp.topic] = Topic(
                    tp.topic, topic_id or uuid.uuid4(), configs=overrides.get(tp.topic, {})
                )
            if topic.configs:
                try:
                    partition_log.config = LogConfig.from_properties(topic.configs, base=config.log)
                except ValueError as exc:  # edited by hand, or written before a rule existed
                    raise RuntimeError(f"{self._configs_path}: topic {tp.topic}: {exc}") from None
            topic.partitions[tp.partition] = self._partition(tp, partition_log)
        for name in missing_ids:
            self._repair_topic_id(self.topics[name])
        self.partition_count = sum(len(t.partitions) for t in self.topics.values())
        if self.partition_count > config.max_broker_partitions:
            log.warning(
                "%s holds %d partitions, more than max.broker.partitions (%d): no partition can "
                "be created until some are deleted",
                config.log_dir,
                self.partition_count,
                config.max_broker_partitions,
            )

    @staticmethod
    def _read_topic_id(directory: str) -> uuid.UUID | None:
        try:
            with open(os.path.join(directory, PARTITION_METADATA), encoding="utf-8") as f:
                fields = dict(line.split(": ", 1) for line in f.read().splitlines() if ": " in line)
            return _decode_uuid(fields["topic_id"])
        except (OSError, KeyError, ValueError):
            return None

    def _repair_topic_id(self, topic: Topic) -> None:
        """The first partition's partition.metadata was missing or unreadable (a power loss
        after a create): take the id most partitions hold, and rewrite the ones that differ."""
        ids = {index: self._read_topic_id(p.log.directory) for index, p in topic.partitions.items()}
        found = [i for i in ids.values() if i is not None]
        if found:
            topic.topic_id = max(set(found), key=found.count)
        repaired = [index for index, i in ids.items() if i != topic.topic_id]
        for index in repaired:
            _write_atomically(
                os.path.join(topic.partitions[index].log.directory, PARTITION_METADATA),
                _partition_metadata(topic.topic_id),
            )
        log.warning(
            "topic %s: partition.metadata missing or unreadable in %d of %d partitions; "
            "rewritten with topic id %s",
            topic.name,
            len(repaired),
            len(topic.partitions),
            _encode_uuid(topic.topic_id),
        )

    def _partition(self, tp: TopicPartition, log: Log) -> Partition:
        if self.config.in_cluster:
            # led or followed once the controller's metadata says so; until then, neither
            return Partition(
                tp,
                log,
                leader_id=NO_LEADER,
                local_id=self.node_id,
                replica_lag_time_max_ms=self.config.replica_lag_time_max_ms,
                isr_eligible=lambda replica_id: self.isr_eligible(replica_id),
            )
        partition = Partition(
            tp, log, leader_id=self.node_id, replicas=[self.node_id], isr=[self.node_id]
        )
        # Becoming leader with an ISR of itself (Kafka's makeLeader): the high watermark is the
        # log end offset, not the checkpointed one, which lags after a crash.
        partition.maybe_increment_leader_high_watermark()
        return partition

    # -- a cluster member: partitions as the controller places them -----------------------------
    def ensure_partition(
        self, name: str, topic_id: uuid.UUID, index: int, configs: Mapping[str, str]
    ) -> Partition:
        """This broker's replica of partition `index` of the topic, made if missing. A topic
        here under another id is an older topic of the same name: its replicas go first."""
        topic = self.topics.get(name)
        if topic is not None and topic.topic_id != topic_id:
            for old in list(topic.partitions):
                self.remove_partition(TopicPartition(name, old))
            topic = None
        if topic is None:
            topic = self.topics[name] = Topic(name, topic_id, configs=dict(configs))
            self._save_configs()
        else:
            self.update_configs(name, configs)
        existing = topic.partitions.get(index)
        if existing is not None:
            return existing
        try:
            self._add_partitions(topic, range(index, index + 1), self.log_config(name))
        except TopicAdminError as exc:
            raise OSError(str(exc)) from None
        return topic.partitions[index]

    def update_configs(self, name: str, configs: Mapping[str, str]) -> None:
        """The topic's configs are now `configs` (AlterConfigs): kept, and in effect at once."""
        topic = self.topics.get(name)
        if topic is None or dict(configs) == topic.configs:
            return
        topic.configs = dict(configs)
        self._save_configs()
        log_config = self.log_config(name)
        for partition in topic.partitions.values():
            partition.log.config = log_config

    def remove_partition(self, tp: TopicPartition) -> None:
        """Delete this broker's replica of tp (and the topic, when it was the last)."""
        topic = self.topics.get(tp.topic)
        if topic is None or topic.partitions.pop(tp.partition, None) is None:
            return
        self.partition_count -= 1
        self.log_manager.delete_log(tp)
        if not topic.partitions:
            del self.topics[tp.topic]
            self._save_configs()

    def _check_partition_limit(self, adding: int) -> None:
        """Refuse (POLICY_VIOLATION) before anything is made if adding would pass the limit."""
        limit = self.config.max_broker_partitions
        if self.partition_count + adding > limit:
            raise TopicAdminError(
                POLICY_VIOLATION,
                f"creating {adding} partitions would make {self.partition_count + adding} on "
                f"this broker, more than max.broker.partitions ({limit}); "
                f"{max(limit - self.partition_count, 0)} can still be created",
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
        self._check_partition_limit(num_partitions)
        if validate_only:
            return None
        topic = self.topics[name] = Topic(name, uuid.uuid4(), configs=configs)
        try:
            self._save_configs()
            self._add_partitions(topic, range(num_partitions), log_config)
        except TopicAdminError:
            del self.topics[name]
            self._save_configs()
            raise
        self.on_change()
        return topic

    def _add_partitions(self, topic: Topic, indexes: range, log_config: LogConfig) -> None:
        """Make the partitions, all or none: a failure (ENOSPC, EMFILE) deletes the ones this
        call made and raises KAFKA_STORAGE_ERROR."""
        metadata = _partition_metadata(topic.topic_id)
        made: list[int] = []
        tp = TopicPartition(topic.name, indexes.start)
        try:
            for index in indexes:
                tp = TopicPartition(topic.name, index)
                partition_log = self.log_manager.get_or_create_log(tp, log_config)
                made.append(index)
                with open(
                    os.path.join(partition_log.directory, PARTITION_METADATA), "w", encoding="utf-8"
                ) as f:
                    f.write(metadata)
                topic.partitions[index] = self._partition(tp, partition_log)
                self.partition_count += 1
            self.log_manager.sync_log_dir()
        except OSError as exc:
            log.error("creating partition %s failed: %s; removing the %d made", tp, exc, len(made))
            if tp.partition not in made:  # its directory may exist without a log
                with contextlib.suppress(OSError):
                    os.rmdir(os.path.join(self.log_manager.log_dir, str(tp)))
            for index in made:
                if topic.partitions.pop(index, None) is not None:
                    self.partition_count -= 1
                try:
                    self.log_manager.delete_log(TopicPartition(topic.name, index))
                except OSError as cleanup_exc:
                    log.error("removing partition %s-%d: %s", topic.name, index, cleanup_exc)
            raise TopicAdminError(
                KAFKA_STORAGE_ERROR,
                f"creating partition {tp} failed: {exc}; none of partitions "
                f"{indexes.start}-{indexes.stop - 1} of {topic.name!r} were created",
            ) from exc

    def create_partitions(self, name: str, count: int, validate_only: bool = False) -> None:
        topic = self.topics.get(name)
        if topic is None:
            raise TopicAdminError(UNKNOWN_TOPIC_OR_PARTITION, f"topic {name!r} does not exist")
        current = len(topic.partitions)
        if count <= current:
            raise TopicAdminError(
                INVALID_PARTITIONS, f"topic {name!r} has {current} partitions, asked for {count}"
            )
        self._check_partition_limit(count - current)
        if not validate_only:
            self._add_partitions(topic, range(current, count), self.log_config(name))
            self.on_change()

    def delete_topic(self, name: str) -> Topic:
        topic = self.topics.get(name)
        if topic is None:
            raise TopicAdminError(UNKNOWN_TOPIC_OR_PARTITION, f"topic {name!r} does not exist")
        if topic.is_internal:
            raise TopicAdminError(INVALID_REQUEST, f"internal topic {name!r} cannot be deleted")
        del self.topics[name]
        self.partition_count -= len(topic.partitions)
        for index in topic.partitions:
            self.log_manager.delete_log(TopicPartition(name, index))
        self._save_configs()
        self.on_change()
        return topic

    def _save_configs(self) -> None:
        overrides = {name: t.configs for name, t in sorted(self.topics.items()) if t.configs}
        _write_atomically(self._configs_path, json.dumps(overrides, indent=1, sort_keys=True))
