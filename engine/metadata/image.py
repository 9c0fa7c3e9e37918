"""ClusterImage: the cluster as the broker knows it at one moment, immutable (Kafka's
MetadataImage): the brokers with their listeners and racks, and every topic with its id and its
partitions' replicas, ISR, leader, leader epoch and partition epoch.

One image replaces the last as a whole, so a handler that holds one sees a consistent cluster
for the whole request. Today a single broker publishes its own (BrokerServer); a controller's
metadata log feeds the images of a cluster (issue 10).

Immutable, so safe to share between threads.
"""

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

NO_LEADER = -1
CONSUMER_OFFSETS = "__consumer_offsets"  # the group coordinator leads its partition


@dataclass(frozen=True, slots=True)
class BrokerRegistration:
    node_id: int
    host: str
    port: int
    rack: str | None = None
    fenced: bool = False  # registered but not serving: left out of Metadata responses

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class PartitionRegistration:
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    leader: int = NO_LEADER
    leader_epoch: int = 0
    partition_epoch: int = 0

    def offline_replicas(self, alive: Mapping[int, BrokerRegistration]) -> list[int]:
        """The replicas on brokers that are gone or fenced."""
        return [r for r in self.replicas if r not in alive or alive[r].fenced]


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

    def __post_init__(self) -> None:  # no caller can change an image it was handed
        object.__setattr__(self, "brokers", _frozen(self.brokers))
        object.__setattr__(self, "topics", _frozen(self.topics))

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
