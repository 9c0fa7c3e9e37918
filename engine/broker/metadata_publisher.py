"""BrokerMetadataPublisher: what a new cluster image asks of this broker (Kafka's
BrokerMetadataPublisher, handing the replicas' changes to ReplicaManager as Kafka's applyDelta).

Between the image last applied and the new one, for every partition with a replica here: one
whose replicas no longer include this broker, or whose topic is gone (or was recreated under a
new id), is deleted; one this broker leads, new or changed (its partition epoch moved), is made
leader; one it follows, new or changed, is made follower of its leader (ReplicaManager says what
each means). Leading `__consumer_offsets`' partition makes this broker the
group coordinator, which loads the committed offsets from that log; losing it hands the groups
over. A topic's changed configs reach its replicas here at once. The first image is applied
only once the metadata log has been read to its end, so a restarting broker never acts on
history.

Not thread-safe: the event loop's thread alone uses it.
"""

import logging
import uuid
from collections.abc import Callable

from engine.broker.partition import Partition
from engine.broker.replica_manager import ReplicaManager
from engine.broker.topics import TopicManager
from engine.common import TopicPartition
from engine.metadata.image import (
    CONSUMER_OFFSETS,
    NO_LEADER,
    ClusterImage,
    PartitionRegistration,
)

log = logging.getLogger(__name__)


class BrokerMetadataPublisher:
    def __init__(
        self,
        node_id: int,
        topics: TopicManager,
        replica_manager: ReplicaManager,
        on_coordinator_change: Callable[[Partition | None], None],
    ) -> None:
        self.node_id = node_id
        self.topics = topics
        self.replica_manager = replica_manager
        self._on_coordinator_change = on_coordinator_change
        self.applied: ClusterImage | None = None  # the last image applied here
        self._coordinator: Partition | None = None

    def publish(self, image: ClusterImage) -> None:
        """Apply what changed since the last image applied (everything, the first time)."""
        old = self.applied
        first = old is None
        if first:
            self._delete_strays(image)
        for topic in image.topics.values():
            old_topic = old.topic_by_id(topic.topic_id) if old else None
            configs = image.topic_configs(topic.name)
            if (
                old is not None
                and old_topic is not None
                and configs != old.topic_configs(topic.name)
            ):
                self.topics.update_configs(topic.name, configs)  # AlterConfigs' ConfigRecords
            for index, registration in topic.partitions.items():
                tp = TopicPartition(topic.name, index)
                before = old_topic.partitions.get(index) if old_topic else None
                here = self.node_id in registration.replicas
                if not here:
                    if before is not None and self.node_id in before.replicas:
                        self._delete(tp)
                    continue
                if before is not None and before.partition_epoch == registration.partition_epoch:
                    continue
                partition = self.topics.ensure_partition(
                    topic.name, topic.topic_id, index, image.topic_configs(topic.name)
                )
                if registration.leader == self.node_id:
                    self._lead(partition, registration)
                else:
                    self._follow(partition, registration, image)
        if old is not None:  # topics gone (or recreated: their old id is gone)
            for topic in old.topics.values():
                if image.topic_by_id(topic.topic_id) is None:
                    for index, registration in topic.partitions.items():
                        if self.node_id in registration.replicas:
                            self._delete(TopicPartition(topic.name, index))
        self.applied = image
        self._update_coordinator(image)

    def _delete_strays(self, image: ClusterImage) -> None:
        """Logs on disk for partitions the cluster does not place here (deleted while this broker
        was away, or placed elsewhere since): deleted, as Kafka's stray-log cleanup does."""
        for name, topic in list(self.topics.topics.items()):
            current = image.topics.get(name)
            for index in list(topic.partitions):
                registration = current.partitions.get(index) if current else None
                if (
                    current is None
                    or current.topic_id != topic.topic_id
                    or registration is None
                    or self.node_id not in registration.replicas
                ):
                    log.info("deleting stray replica %s-%d", name, index)
                    self._delete(TopicPartition(name, index))

    def _lead(self, partition: Partition, registration: PartitionRegistration) -> None:
        self.replica_manager.make_leader(partition, registration)

    def _follow(
        self, partition: Partition, registration: PartitionRegistration, image: ClusterImage
    ) -> None:
        leader = image.brokers.get(registration.leader)
        if registration.leader == NO_LEADER or leader is None or leader.fenced:
            leader = None
        self.replica_manager.make_follower(partition, registration, leader)

    def _delete(self, tp: TopicPartition) -> None:
        self.replica_manager.stop_replica(tp)

    def _update_coordinator(self, image: ClusterImage) -> None:
        partition = self.topics.partition(TopicPartition(CONSUMER_OFFSETS, 0))
        leading = partition if partition is not None and partition.is_leader else None
        if leading is not self._coordinator:
            self._coordinator = leading
            self._on_coordinator_change(leading)

    def topic_id(self, name: str) -> uuid.UUID | None:
        topic = self.applied.topics.get(name) if self.applied else None
        return topic.topic_id if topic else None
