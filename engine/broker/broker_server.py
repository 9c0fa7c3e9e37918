"""BrokerServer: one broker's services, wired in the order they depend on each other, and the
Scheduler that runs their periodic work.

The log directory (LogManager, with its recovery) comes first, then the topics and partitions
over it, the replica manager (produce, fetch, the requests that wait), producer ids, the group
coordinator over `__consumer_offsets`, and the request handlers (KafkaApis) last. The event loop
asks it when anything is next due and calls tick() then; a clean stop is shutdown(), a failed one
close_unclean().

Alone (no controller.quorum.voters), the broker is its own controller: topics are the partition
directories on its disk, and it publishes the cluster image itself. In a cluster, a
NetworkClient on the event loop carries its calls to the controller and to other brokers: the
lifecycle manager registers and heartbeats, the metadata loader follows the controller's log and
the publisher applies each image (lead, follow, delete), replica fetchers copy the partitions it
follows, ISR changes go to the controller, producer ids come from it, and topic admin requests
are forwarded to it. A stop is a controlled shutdown: the controller moves its leaderships away
before the process exits.

Not thread-safe: the event loop's thread alone uses it.
"""

import dataclasses
import logging
import selectors
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from engine.broker.acl_store import AclStore
from engine.broker.alter_partition_manager import AlterPartitionManager
from engine.broker.client_quotas import ClientQuotaStore
from engine.broker.config import KafkaConfig
from engine.broker.dynamic_config import (
    CLUSTER_DEFAULT,
    DynamicConfigStore,
    effective_config,
    layered,
)
from engine.broker.group_coordinator import CommittedOffset, GroupConfig, GroupCoordinator
from engine.broker.kafka_apis import KafkaApis
from engine.broker.lifecycle import BrokerLifecycleManager
from engine.broker.metadata_loader import MetadataLoader
from engine.broker.metadata_publisher import BrokerMetadataPublisher
from engine.broker.offset_store import OFFSETS_TOPIC_CONFIGS, LogOffsetStore
from engine.broker.partition import Partition
from engine.broker.producer_ids import ProducerIdManager, RpcProducerIdManager
from engine.broker.replica_fetcher import ReplicaFetcherManager
from engine.broker.replica_manager import ReplicaManager
from engine.broker.scheduler import Scheduler
from engine.broker.topics import TopicManager
from engine.common import TopicPartition
from engine.errors import NOT_COORDINATOR, KafkaError
from engine.metadata import (
    BrokerRegistration,
    ClusterImage,
    MetadataCache,
    MetadataDelta,
    PartitionRegistration,
    TopicImage,
)
from engine.metadata.image import CONFIG_RESOURCE_BROKER, CONSUMER_OFFSETS
from engine.protocol.network_client import NetworkClient
from engine.storage import LogManager
from engine.storage.log import wall_clock_ms
from engine.storage.meta_properties import write_meta_properties

log = logging.getLogger(__name__)

RACK_AWARE_REPLICA_SELECTOR = "org.apache.kafka.common.replica.RackAwareReplicaSelector"


class BrokerServer:
    def __init__(self, config: KafkaConfig, time_ms: Callable[[], int] = wall_clock_ms) -> None:
        """Open the log directory (recovering it after a crash) and wire every service."""
        self.config = config
        self.static_log = config.log  # the log settings before any dynamic ones
        self.time_ms = time_ms
        self.log_manager = LogManager(config.log_dir, config.log, time_ms=time_ms)
        self.topics = TopicManager(config, self.log_manager)
        self.replica_manager = ReplicaManager(self.topics, time_ms)
        self.group_config = GroupConfig(
            group_min_session_timeout_ms=config.group_min_session_timeout_ms,
            group_max_session_timeout_ms=config.group_max_session_timeout_ms,
            group_initial_rebalance_delay_ms=config.group_initial_rebalance_delay_ms,
        )
        self.scheduler = Scheduler(time_ms)
        self.network_client: NetworkClient | None = None
        self.cluster: ClusterServices | None = None
        self.producer_ids: ProducerIdManager | RpcProducerIdManager
        if config.in_cluster:
            self.cluster = ClusterServices(self)
            self.network_client = self.cluster.client
            self.producer_ids = self.cluster.producer_ids
            self.group_coordinator = self._inactive_coordinator()
            self.metadata_cache = MetadataCache(ClusterImage(self.topics.cluster_id or "", -1))
        else:
            self.producer_ids = ProducerIdManager(config.log_dir)
            if CONSUMER_OFFSETS not in self.topics.topics:
                self.topics.create_topic(
                    CONSUMER_OFFSETS,
                    1,
                    1,
                    dict(OFFSETS_TOPIC_CONFIGS),
                )
            offsets_partition = self.topics.partition(TopicPartition(CONSUMER_OFFSETS, 0))
            assert offsets_partition is not None  # loaded or created just above
            self.group_coordinator = GroupCoordinator(
                self.group_config, LogOffsetStore(offsets_partition), time_ms
            )
        self.scheduler.schedule(
            "retention", config.log_retention_check_interval_ms, self.log_manager.cleanup_logs
        )
        self.scheduler.schedule(
            "flush", config.log_flush_scheduler_interval_ms, self.log_manager.flush_dirty_logs
        )
        self.scheduler.schedule(
            "checkpoint",
            config.log_flush_offset_checkpoint_interval_ms,
            self.log_manager.checkpoint,
        )
        # a single broker's dynamic broker configs (a cluster's are in the metadata log)
        self.dynamic_configs: DynamicConfigStore | None = None
        self.client_quota_store: ClientQuotaStore | None = None  # likewise, client quotas
        self.acl_store: AclStore | None = None  # a single broker's ACLs (a cluster's: the log)
        if self.cluster is None:
            self.dynamic_configs = DynamicConfigStore(config.log_dir)
            self.client_quota_store = ClientQuotaStore(config.log_dir)
            self.acl_store = AclStore(config.log_dir)
            self._apply_stored_configs()
            self.metadata_cache = MetadataCache(self._local_image())
            self.topics.on_change = self._publish_local_image
        self.apis = KafkaApis(self)

    def advertise(self, host: str, port: int) -> None:
        """The address clients are told to use (the bound one, when port 0 picked it)."""
        self.config = dataclasses.replace(self.config, listen_host=host, listen_port=port)
        if self.cluster is None:
            self._publish_local_image()
        else:  # registered with the controller under this address
            self.cluster.lifecycle.config = self.config

    def _inactive_coordinator(self) -> GroupCoordinator:
        """Groups while another broker coordinates them: every request NOT_COORDINATOR."""
        return GroupCoordinator(self.group_config, _NoOffsets(), self.time_ms, active=False)

    def coordinator_moved(self, partition: Partition | None) -> None:
        """This broker now leads `__consumer_offsets` (the groups' offsets load from its log),
        or no longer does (its groups go to the new leader)."""
        if partition is None:
            self.group_coordinator = self._inactive_coordinator()
            log.info("no longer the group coordinator")
        else:
            self.group_coordinator = GroupCoordinator(
                self.group_config, LogOffsetStore(partition), self.time_ms
            )
            log.info("group coordinator, offsets loaded from %s", partition.tp)

    def _local_image(self) -> ClusterImage:
        """The cluster as this broker alone makes it: itself, the controller too, and the topics
        on its disk (until a controller's metadata log takes over, issue 10)."""
        c = self.config
        topics = {
            name: TopicImage(
                name,
                topic.topic_id,
                {
                    index: PartitionRegistration(
                        tuple(p.replicas), tuple(p.isr), p.leader_id, p.leader_epoch
                    )
                    for index, p in topic.partitions.items()
                },
                topic.is_internal,
            )
            for name, topic in self.topics.topics.items()
        }
        me = BrokerRegistration(c.node_id, c.listen_host, c.listen_port, rack=c.broker_rack)
        stored = self.dynamic_configs.configs if self.dynamic_configs else {}
        configs = {(CONFIG_RESOURCE_BROKER, name): values for name, values in stored.items()}
        quotas = self.client_quota_store.quotas if self.client_quota_store else {}
        return ClusterImage(
            self.topics.cluster_id or "",
            c.node_id,
            {c.node_id: me},
            topics,
            configs=configs,
            client_quotas=quotas,
            acls=self.acl_store.acls if self.acl_store else {},
        )

    def _publish_local_image(self) -> None:
        self.metadata_cache.publish(self._local_image())

    def _apply_stored_configs(self) -> None:
        assert self.dynamic_configs is not None
        stored = self.dynamic_configs.configs
        self.apply_dynamic_configs(
            stored.get(CLUSTER_DEFAULT, {}), stored.get(str(self.config.node_id), {})
        )

    def store_dynamic_configs(self, resource_name: str, configs: dict[str, str]) -> None:
        """A single broker's AlterConfigs of a BROKER resource: kept, and in effect now."""
        assert self.dynamic_configs is not None
        self.dynamic_configs.save(resource_name, configs)
        self._apply_stored_configs()
        self._publish_local_image()

    def apply_acl_records(self, records: list[Any]) -> None:
        """A single broker's CreateAcls or DeleteAcls: kept, and in effect now."""
        assert self.acl_store is not None
        self.acl_store.apply(records)
        self._publish_local_image()

    def apply_dynamic_configs(
        self, cluster_default: Mapping[str, str], per_broker: Mapping[str, str]
    ) -> None:
        """The dynamic broker configs take effect at once (Kafka's DynamicLogConfig): they are
        the defaults of every topic's log settings."""
        try:
            config = effective_config(self.config, self.static_log, cluster_default, per_broker)
        except ValueError as exc:  # checked against the controller's settings, not these
            log.error("dynamic broker configs not applied: %s", exc)
            return
        if config == self.config:
            return
        self.config = self.topics.config = config
        self.log_manager.config = config.log
        for name, topic in self.topics.topics.items():
            log_config = self.topics.log_config(name)
            for partition in topic.partitions.values():
                partition.log.config = log_config
        log.info("dynamic broker configs applied: %s", dict(layered(cluster_default, per_broker)))

    def tick(self) -> None:
        """Run what is due: waiting requests, group timers, the scheduler's periodic work, and in
        a cluster the calls to the controller and other brokers."""
        self.replica_manager.tick()
        self.group_coordinator.tick()
        self.scheduler.run_due()
        if self.cluster is not None:
            self.cluster.tick()

    def next_deadline_ms(self) -> int | None:
        """The earliest time anything is due, so the event loop sleeps until then: a waiting
        fetch, a group timer (session, join, sync) or a periodic task."""
        deadlines = (
            self.replica_manager.next_deadline_ms(),
            self.group_coordinator.next_deadline_ms(),
            self.scheduler.next_deadline_ms(),
            self.cluster.next_deadline_ms() if self.cluster is not None else None,
        )
        return min((d for d in deadlines if d is not None), default=None)

    def attach(self, selector: selectors.BaseSelector) -> None:
        """The event loop's selector, for outbound connections (none without a controller)."""
        if self.network_client is not None:
            self.network_client.attach(selector)

    def complete_all(self) -> None:
        """Stopping: answer every waiting request with what it has now."""
        self.replica_manager.complete_all()

    def begin_shutdown(self) -> None:
        """A stop was asked for: in a cluster, a controlled shutdown begins."""
        if self.cluster is not None:
            self.cluster.lifecycle.begin_controlled_shutdown()

    def ready_to_stop(self) -> bool:
        return self.cluster is None or self.cluster.lifecycle.ready_to_stop

    def status(self) -> dict[str, Any]:
        """For GET /stats: this broker's standing and every replica it holds; for a partition
        it leads, the ISR and how far each follower has got (its lag in offsets)."""
        partitions = {}
        for topic in self.topics.topics.values():
            for index, p in sorted(topic.partitions.items()):
                log_ = p.log
                entry: dict[str, Any] = {
                    "role": "leader" if p.is_leader else "follower",
                    "leader": p.leader_id,
                    "leader_epoch": p.leader_epoch,
                    "replicas": p.replicas,
                    "isr": p.isr,
                    "log_end_offset": log_.log_end_offset,
                    "high_watermark": log_.high_watermark,
                }
                if p.is_leader and p.remote_replicas:
                    entry["followers"] = {
                        str(r): {
                            "log_end_offset": s.log_end_offset,
                            "lag": max(log_.log_end_offset - s.log_end_offset, 0)
                            if s.log_end_offset >= 0
                            else None,
                        }
                        for r, s in sorted(p.remote_replicas.items())
                    }
                partitions[f"{topic.name}-{index}"] = entry
        node: dict[str, Any] = {"node_id": self.config.node_id, "partitions": partitions}
        node["client_quotas"] = self.apis.client_quotas.status()
        node["fetch_sessions"] = self.apis.fetch_manager.status()
        if self.cluster is not None:
            node["state"] = self.cluster.lifecycle.state.value
            node["broker_epoch"] = self.cluster.lifecycle.broker_epoch
            node["metadata_offset"] = self.cluster.loader.applied_offset
        return node

    @property
    def accepting(self) -> bool:
        """Whether clients are accepted: alone, at once; in a cluster, once the controller's
        metadata log has been read to its end (as Kafka's broker waits for its initial catch-up),
        so nobody is told about a cluster this broker has not caught up with."""
        return self.cluster is None or self.cluster.publisher.applied is not None

    @property
    def failed(self) -> str | None:
        """Why this broker cannot go on (another cluster's log directory, a metadata log it
        cannot apply), or None."""
        if self.cluster is None:
            return None
        return self.cluster.lifecycle.fatal or self.cluster.loader.failed

    def shutdown(self) -> None:
        """A clean stop: flush and close every log, checkpoint, mark the shutdown clean."""
        if self.network_client is not None:
            self.network_client.close()
        self.log_manager.shutdown()

    def close_unclean(self) -> None:
        """Leave the logs as a crash would, for the next start to recover."""
        self.log_manager.close_unclean()


class _NoOffsets:
    """The offset store of a broker that does not coordinate groups."""

    def store(self, group_id: str, offsets: list[CommittedOffset]) -> None:
        raise NotCoordinatorError("not the group coordinator")

    def load(self) -> Iterable[tuple[str, CommittedOffset]]:
        return ()

    def delete_group(self, group_id: str) -> None:
        raise NotCoordinatorError("not the group coordinator")

    def delete_offsets(self, group_id: str, partitions: list[tuple[str, int]]) -> None:
        raise NotCoordinatorError("not the group coordinator")


class NotCoordinatorError(KafkaError):
    error_code = NOT_COORDINATOR


class ClusterServices:
    """A cluster member's connections and the services that use them (see the module
    docstring). Not thread-safe: the event loop's thread alone uses it."""

    def __init__(self, broker: BrokerServer) -> None:
        config, time_ms = broker.config, broker.time_ms
        _, host, port = config.controller_quorum_voters[0]
        self.controller = f"{host}:{port}"
        self.client = NetworkClient(
            f"kbench-broker-{config.node_id}",
            time_ms,
            request_timeout_ms=config.replica_socket_timeout_ms,
        )
        self.loader = MetadataLoader(
            self.client,
            self.controller,
            config.node_id,
            ClusterImage(broker.topics.cluster_id or "", -1),
            self._on_metadata,
            time_ms,
        )
        self.lifecycle = BrokerLifecycleManager(
            config,
            self.client,
            self.controller,
            time_ms,
            broker.topics.cluster_id,
            lambda: self.loader.applied_offset,
            self._on_cluster_id,
        )
        self.fetchers = ReplicaFetcherManager(
            config, self.client, time_ms, broker.replica_manager.high_watermark_moved
        )
        broker.replica_manager.fetchers = self.fetchers
        self.publisher = BrokerMetadataPublisher(
            config.node_id, broker.topics, broker.replica_manager, broker.coordinator_moved
        )
        self.alter_partitions = AlterPartitionManager(
            self.client,
            self.controller,
            config.node_id,
            lambda: self.lifecycle.broker_epoch,
            self.publisher.topic_id,
            broker.replica_manager.high_watermark_moved,
        )
        broker.replica_manager.alter_isr = self.alter_partitions.submit
        broker.topics.isr_eligible = self._isr_eligible
        if config.replica_selector_class == RACK_AWARE_REPLICA_SELECTOR:
            broker.replica_manager.rack_of = self._rack_of
        broker.scheduler.schedule(
            "isr-expiration",
            max(config.replica_lag_time_max_ms // 2, 1),
            broker.replica_manager.maybe_shrink_isr,
        )
        self.producer_ids = RpcProducerIdManager(
            self.client, self.controller, config.node_id, lambda: self.lifecycle.broker_epoch
        )
        self.broker = broker
        # requests answered once this broker's metadata shows something: (check, deadline, then)
        self._watches: list[tuple[Callable[[ClusterImage], bool], int, Callable[[], None]]] = []

    def when_metadata_shows(
        self, check: Callable[[ClusterImage], bool], timeout_ms: int, then: Callable[[], None]
    ) -> None:
        """Call `then` once an image passes `check` (or after timeout_ms in any case)."""
        if check(self.broker.metadata_cache.image):
            then()
            return
        self._watches.append((check, self.broker.time_ms() + max(timeout_ms, 0), then))

    def call_later(self, delay_ms: int, then: Callable[[], None]) -> None:
        """Call `then` after delay_ms (a retry), on the event loop."""
        self._watches.append((lambda image: False, self.broker.time_ms() + delay_ms, then))

    def _settle_watches(self) -> None:
        if not self._watches:
            return
        image, now = self.broker.metadata_cache.image, self.broker.time_ms()
        waiting, self._watches = self._watches, []
        for check, deadline, then in waiting:
            if check(image) or now >= deadline:
                then()
            else:
                self._watches.append((check, deadline, then))

    def _isr_eligible(self, node_id: int) -> bool:
        """Kafka's isReplicaIsrEligible: registered, unfenced, not in controlled shutdown."""
        registration = self.broker.metadata_cache.image.brokers.get(node_id)
        return registration is not None and registration.active

    def _rack_of(self, node_id: int) -> str | None:
        registration = self.broker.metadata_cache.image.brokers.get(node_id)
        return registration.rack if registration is not None else None

    def _on_cluster_id(self, cluster_id: str) -> None:
        """A new log directory joins the controller's cluster."""
        config = self.broker.config
        write_meta_properties(config.log_dir, config.node_id, cluster_id)
        self.broker.topics.cluster_id = cluster_id
        log.info("log directory %s formatted for cluster %s", config.log_dir, cluster_id)

    def _on_metadata(self, image: ClusterImage, delta: MetadataDelta) -> None:
        cluster_id = self.broker.topics.cluster_id or image.cluster_id
        image = dataclasses.replace(image, cluster_id=cluster_id)
        self.broker.metadata_cache.publish(image)
        if self.loader.caught_up or self.publisher.applied is not None:
            self.publisher.publish(image)
        node = str(self.broker.config.node_id)
        self.broker.apply_dynamic_configs(
            image.configs.get((CONFIG_RESOURCE_BROKER, CLUSTER_DEFAULT), {}),
            image.configs.get((CONFIG_RESOURCE_BROKER, node), {}),
        )
        self._settle_watches()

    def tick(self) -> None:
        self.lifecycle.tick()
        self.loader.tick()
        if self.publisher.applied is None and self.loader.caught_up:
            self.publisher.publish(self.broker.metadata_cache.image)
        self.fetchers.tick()
        self.alter_partitions.tick()
        self.client.tick()
        self._settle_watches()

    def next_deadline_ms(self) -> int | None:
        deadlines = (
            min((w[1] for w in self._watches), default=None),
            self.lifecycle.next_deadline_ms(),
            self.loader.next_deadline_ms(),
            self.fetchers.next_deadline_ms(),
            self.client.next_deadline_ms(),
        )
        return min((d for d in deadlines if d is not None), default=None)
