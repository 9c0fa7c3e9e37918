"""ClusterImage: the cluster as the broker knows it at one moment, immutable (Kafka's
MetadataImage): the brokers with their listeners, racks, epochs and fencing, every topic with its
id, configs and its partitions' replicas, ISR, leader, leader epoch and partition epoch, and the
features, producer-id block and ACLs the controller recorded.

A MetadataDelta replays metadata records (engine/metadata/records.py) onto an image with Kafka's
rules and makes the next image; the controller replays what it writes and the brokers what they
fetch, so both see the same cluster from the same log. One image replaces the last as a whole,
so a handler that holds one sees a consistent cluster for the whole request. A single broker with
no controller publishes images it makes itself (BrokerServer).

Immutable, so safe to share between threads; a MetadataDelta is not thread-safe.
"""

import dataclasses
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from engine.common import TopicPartition
from engine.metadata.acl import StandardAcl

NO_LEADER = -1
NO_LEADER_CHANGE = -2  # PartitionChangeRecord's Leader when the leader stays
CONSUMER_OFFSETS = "__consumer_offsets"  # the group coordinator leads its partition
RECOVERED, RECOVERING = 0, 1  # LeaderRecoveryState: RECOVERING after an unclean election
CONFIG_RESOURCE_TOPIC, CONFIG_RESOURCE_BROKER = 2, 4  # ConfigRecord's ResourceType
QuotaEntity = tuple[tuple[str, str | None], ...]  # a ClientQuotaRecord's Entity, sorted by type


class MetadataError(Exception):
    """A record that cannot apply to the image (Kafka throws IllegalStateException): the log
    and this image disagree, so the replayer stops rather than guess."""


@dataclass(frozen=True, slots=True)
class BrokerRegistration:
    node_id: int
    host: str
    port: int
    rack: str | None = None
    fenced: bool = False  # registered but not serving: left out of Metadata responses
    epoch: int = -1  # the offset of its registration in the metadata log
    incarnation_id: uuid.UUID | None = None  # new at every process start
    in_controlled_shutdown: bool = False

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def active(self) -> bool:
        """May lead partitions: registered, unfenced and not shutting down."""
        return not self.fenced and not self.in_controlled_shutdown


@dataclass(frozen=True, slots=True)
class PartitionRegistration:
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    leader: int = NO_LEADER
    leader_epoch: int = 0
    partition_epoch: int = 0
    removing_replicas: tuple[int, ...] = ()
    adding_replicas: tuple[int, ...] = ()
    leader_recovery_state: int = RECOVERED

    def offline_replicas(self, alive: Mapping[int, BrokerRegistration]) -> list[int]:
        """The replicas on brokers that are gone or fenced."""
        return [r for r in self.replicas if r not in alive or alive[r].fenced]

    def merge(self, change: Any) -> "PartitionRegistration":
        """A PartitionChangeRecord applied (Kafka's PartitionRegistration.merge): absent lists
        keep theirs; any Leader but NO_LEADER_CHANGE (-2) sets the leader and bumps the leader
        epoch, even to the same leader; every change bumps the partition epoch."""
        leader, leader_epoch = self.leader, self.leader_epoch
        if change.leader != NO_LEADER_CHANGE:
            leader, leader_epoch = change.leader, leader_epoch + 1
        return PartitionRegistration(
            replicas=self.replicas if change.replicas is None else tuple(change.replicas),
            isr=self.isr if change.isr is None else tuple(change.isr),
            leader=leader,
            leader_epoch=leader_epoch,
            partition_epoch=self.partition_epoch + 1,
            removing_replicas=_keep(self.removing_replicas, change.removing_replicas),
            adding_replicas=_keep(self.adding_replicas, change.adding_replicas),
            leader_recovery_state=(
                self.leader_recovery_state
                if change.leader_recovery_state == -1
                else change.leader_recovery_state
            ),
        )


def _type(component: tuple[str, str | None]) -> str:
    return component[0]


def _keep(old: tuple[int, ...], new: list[int] | None) -> tuple[int, ...]:
    return old if new is None else tuple(new)


@dataclass(frozen=True, slots=True)
class TopicImage:
    name: str
    topic_id: uuid.UUID
    partitions: Mapping[int, PartitionRegistration]
    internal: bool = False


def _frozen(mapping: Mapping) -> Mapping:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True, slots=True)
class ClusterImage:
    cluster_id: str
    controller_id: int
    brokers: Mapping[int, BrokerRegistration] = field(default_factory=dict)
    topics: Mapping[str, TopicImage] = field(default_factory=dict)
    # ConfigRecords: (resource type, resource name) -> {name: value}; "" names the cluster default
    configs: Mapping[tuple[int, str], Mapping[str, str]] = field(default_factory=dict)
    features: Mapping[str, int] = field(default_factory=dict)
    next_producer_id: int = 0  # the first id of the next block the controller hands out
    offset: int = -1  # the last metadata log offset replayed into this image
    # ClientQuotaRecords: entity ((type, name or None for the default), ... sorted) -> {key: value}
    client_quotas: Mapping[QuotaEntity, Mapping[str, float]] = field(default_factory=dict)
    acls: Mapping[uuid.UUID, StandardAcl] = field(default_factory=dict)  # by the record's id

    def __post_init__(self) -> None:  # no caller can change an image it was handed
        object.__setattr__(self, "brokers", _frozen(self.brokers))
        object.__setattr__(self, "topics", _frozen(self.topics))
        object.__setattr__(self, "configs", _frozen(self.configs))
        object.__setattr__(self, "features", _frozen(self.features))
        object.__setattr__(self, "client_quotas", _frozen(self.client_quotas))
        object.__setattr__(self, "acls", _frozen(self.acls))

    def alive_brokers(self) -> list[BrokerRegistration]:
        """The brokers clients may be sent to, by node id."""
        return [b for _, b in sorted(self.brokers.items()) if not b.fenced]

    def partition(self, topic: str, index: int) -> PartitionRegistration | None:
        image = self.topics.get(topic)
        return None if image is None else image.partitions.get(index)

    def leader_of(self, topic: str, index: int) -> BrokerRegistration | None:
        """The broker leading the partition, if it has a live one."""
        registration = self.partition(topic, index)
        if registration is None:
            return None
        broker = self.brokers.get(registration.leader)
        return None if broker is None or broker.fenced else broker

    def topic_by_id(self, topic_id: uuid.UUID) -> TopicImage | None:
        for topic in self.topics.values():
            if topic.topic_id == topic_id:
                return topic
        return None

    def topic_configs(self, name: str) -> Mapping[str, str]:
        return self.configs.get((CONFIG_RESOURCE_TOPIC, name), {})


@dataclass
class LocalChanges:
    """What a delta asks of one broker (Kafka's TopicDelta.localChanges): replicas to delete,
    partitions to lead and to follow, each with its new registration and topic id."""

    deletes: list[TopicPartition] = field(default_factory=list)
    leaders: dict[TopicPartition, tuple[uuid.UUID, PartitionRegistration]] = field(
        default_factory=dict
    )
    followers: dict[TopicPartition, tuple[uuid.UUID, PartitionRegistration]] = field(
        default_factory=dict
    )


class MetadataDelta:
    """Records replayed onto a base image; apply() makes the next image. Not thread-safe."""

    def __init__(self, image: ClusterImage) -> None:
        self.image = image
        self.brokers = dict(image.brokers)
        self.topics: dict[uuid.UUID, TopicImage] = {t.topic_id: t for t in image.topics.values()}
        self.partitions: dict[uuid.UUID, dict[int, PartitionRegistration]] = {}  # changed topics
        self.configs = {key: dict(values) for key, values in image.configs.items()}
        self.features = dict(image.features)
        self.client_quotas = {key: dict(values) for key, values in image.client_quotas.items()}
        self.next_producer_id = image.next_producer_id
        self.offset = image.offset
        self.acls = dict(image.acls)
        self.removed_topics: dict[uuid.UUID, TopicImage] = {}
        self.changed: set[tuple[uuid.UUID, int]] = set()

    # -- replay ---------------------------------------------------------------------------------
    def replay(self, record: Any, offset: int | None = None) -> None:
        """Apply one metadata record (dispatch by Kafka's record name)."""
        handler = getattr(self, "_replay_" + type(record).__name__, None)
        if handler is None:
            raise MetadataError(f"no replay for {type(record).__name__}")
        handler(record)
        if offset is not None:
            self.offset = offset

    # one method per record, named by Kafka's record type
    def _replay_RegisterBrokerRecord(self, r: Any) -> None:
        endpoint = r.end_points[0] if r.end_points else None
        self.brokers[r.broker_id] = BrokerRegistration(
            r.broker_id,
            endpoint.host if endpoint else "",
            endpoint.port if endpoint else -1,
            rack=r.rack,
            fenced=r.fenced,
            epoch=r.broker_epoch,
            incarnation_id=r.incarnation_id,
            in_controlled_shutdown=bool(getattr(r, "in_controlled_shutdown", False)),
        )

    def _replay_UnregisterBrokerRecord(self, r: Any) -> None:
        self._broker(r.broker_id, r.broker_epoch)
        del self.brokers[r.broker_id]

    def _replay_FenceBrokerRecord(self, r: Any) -> None:
        broker = self._broker(r.id, r.epoch)
        self.brokers[r.id] = dataclasses.replace(broker, fenced=True)

    def _replay_UnfenceBrokerRecord(self, r: Any) -> None:
        broker = self._broker(r.id, r.epoch)
        self.brokers[r.id] = dataclasses.replace(broker, fenced=False)

    def _replay_BrokerRegistrationChangeRecord(self, r: Any) -> None:
        broker = self._broker(r.broker_id, r.broker_epoch)
        fenced = {1: True, -1: False}.get(r.fenced, broker.fenced)
        shutdown = broker.in_controlled_shutdown or r.in_controlled_shutdown == 1
        self.brokers[r.broker_id] = dataclasses.replace(
            broker, fenced=fenced, in_controlled_shutdown=shutdown
        )

    def _broker(self, broker_id: int, epoch: int) -> BrokerRegistration:
        broker = self.brokers.get(broker_id)
        if broker is None or broker.epoch != epoch:
            raise MetadataError(f"broker {broker_id} with epoch {epoch} is not registered")
        return broker

    def _replay_TopicRecord(self, r: Any) -> None:
        self.topics[r.topic_id] = TopicImage(r.name, r.topic_id, {}, r.name == CONSUMER_OFFSETS)
        self.partitions[r.topic_id] = {}

    def _replay_PartitionRecord(self, r: Any) -> None:
        self._changed_partitions(r.topic_id)[r.partition_id] = PartitionRegistration(
            replicas=tuple(r.replicas),
            isr=tuple(r.isr),
            leader=r.leader,
            leader_epoch=r.leader_epoch,
            partition_epoch=r.partition_epoch,
            removing_replicas=tuple(r.removing_replicas),
            adding_replicas=tuple(r.adding_replicas),
            leader_recovery_state=r.leader_recovery_state,
        )
        self.changed.add((r.topic_id, r.partition_id))

    def _replay_PartitionChangeRecord(self, r: Any) -> None:
        partitions = self._changed_partitions(r.topic_id)
        current = partitions.get(r.partition_id)
        if current is None:
            raise MetadataError(f"partition {r.partition_id} of topic {r.topic_id} is unknown")
        partitions[r.partition_id] = current.merge(r)
        self.changed.add((r.topic_id, r.partition_id))

    def _changed_partitions(self, topic_id: uuid.UUID) -> dict[int, PartitionRegistration]:
        if topic_id not in self.topics:
            raise MetadataError(f"topic id {topic_id} is unknown")
        if topic_id not in self.partitions:
            self.partitions[topic_id] = dict(self.topics[topic_id].partitions)
        return self.partitions[topic_id]

    def _replay_RemoveTopicRecord(self, r: Any) -> None:
        topic = self.topics.pop(r.topic_id, None)
        if topic is None:
            raise MetadataError(f"topic id {r.topic_id} is unknown")
        self.partitions.pop(r.topic_id, None)
        self.configs.pop((CONFIG_RESOURCE_TOPIC, topic.name), None)
        self.changed = {c for c in self.changed if c[0] != r.topic_id}
        if self.image.topic_by_id(r.topic_id) is not None:
            self.removed_topics[r.topic_id] = topic

    def _replay_ConfigRecord(self, r: Any) -> None:
        values = self.configs.setdefault((r.resource_type, r.resource_name), {})
        if r.value is None:
            values.pop(r.name, None)
        else:
            values[r.name] = r.value

    def _replay_ClientQuotaRecord(self, r: Any) -> None:
        entity = tuple(sorted(((e.entity_type, e.entity_name) for e in r.entity), key=_type))
        values = self.client_quotas.setdefault(entity, {})
        if r.remove:
            values.pop(r.key, None)
        else:
            values[r.key] = r.value

    def _replay_FeatureLevelRecord(self, r: Any) -> None:
        if r.feature_level == 0:
            self.features.pop(r.name, None)
        else:
            self.features[r.name] = r.feature_level

    def _replay_ProducerIdsRecord(self, r: Any) -> None:
        self.next_producer_id = r.next_producer_id

    def _replay_NoOpRecord(self, r: Any) -> None:
        pass

    def _replay_AccessControlEntryRecord(self, r: Any) -> None:
        self.acls[r.id] = StandardAcl.from_record(r)

    def _replay_RemoveAccessControlEntryRecord(self, r: Any) -> None:
        if self.acls.pop(r.id, None) is None:
            raise MetadataError(f"no ACL with id {r.id}")

    # -- result ---------------------------------------------------------------------------------
    def apply(self) -> ClusterImage:
        topics = {}
        for topic_id, topic in self.topics.items():
            if topic_id in self.partitions:
                topic = dataclasses.replace(topic, partitions=_frozen(self.partitions[topic_id]))
            topics[topic.name] = topic
        return ClusterImage(
            self.image.cluster_id,
            self.image.controller_id,
            self.brokers,
            topics,
            {key: _frozen(values) for key, values in self.configs.items() if values},
            self.features,
            self.next_producer_id,
            self.offset,
            {key: _frozen(values) for key, values in self.client_quotas.items() if values},
            self.acls,
        )

    def local_changes(self, broker_id: int) -> LocalChanges:
        """What this delta asks of broker_id: replicas it no longer holds go; partitions it
        leads, new or whose partition epoch moved, are (re)led; the others it holds, new or
        moved, are followed."""
        changes = LocalChanges()
        for topic in self.removed_topics.values():
            for index, registration in topic.partitions.items():
                if broker_id in registration.replicas:
                    changes.deletes.append(TopicPartition(topic.name, index))
        for topic_id, index in sorted(self.changed, key=lambda c: (str(c[0]), c[1])):
            topic = self.topics[topic_id]
            tp = TopicPartition(topic.name, index)
            new = self.partitions[topic_id][index]
            old_topic = self.image.topic_by_id(topic_id)
            old = old_topic.partitions.get(index) if old_topic else None
            if broker_id not in new.replicas:
                if old is not None and broker_id in old.replicas:
                    changes.deletes.append(tp)
                continue
            if old is not None and old.partition_epoch == new.partition_epoch:
                continue
            if new.leader == broker_id:
                changes.leaders[tp] = (topic_id, new)
            else:
                changes.followers[tp] = (topic_id, new)
        return changes
