"""QuorumController: every change to the cluster's metadata, decided, written and applied here
(Kafka's QuorumController with its ClusterControl, ReplicationControl and ProducerIdControl
managers, for a single voter).

Each operation reads the current image, decides the records (RegisterBroker, Topic, Partition,
PartitionChange, BrokerRegistrationChange, ProducerIds, ...), appends them to the metadata log as
one durable batch, then replays them onto the image with the same MetadataDelta brokers use, so
the controller's view and the brokers' are the log's. A restarted controller replays the log.

Brokers: a registration's epoch is the offset of its record; a broker starts fenced, is unfenced
once its metadata has caught up to its registration, is fenced again when its heartbeats stop for
broker.session.timeout.ms (or it asks), and shuts down in a controlled way (leaderships moved off
it first) when it asks to. Fencing or shutting down a broker takes it out of every ISR and elects
new leaders (partition_change.py); unfencing elects it where a partition has no leader.

Admin (Kafka's ReplicationControlManager): ElectLeaders elects the preferred replica, or any
replica when there is no leader (unclean); AlterPartitionReassignments moves a partition to new
replicas as KIP-455 does (the replicas become target plus the ones leaving, which stay until every
target replica is in the ISR; partition_change.py completes it), or cancels a move;
ListPartitionReassignments lists the moves under way. DescribeQuorum describes this single voter,
with the brokers that follow its log as observers.

Not thread-safe: the controller's event loop alone uses it.
"""

import logging
import random
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.broker.topics import manual_assignment_error
from engine.controller.metadata_log import MetadataLog
from engine.controller.partition_change import partition_change
from engine.controller.placement import PlacementError, place_replicas
from engine.errors import (
    DUPLICATE_BROKER_REGISTRATION,
    ELECTION_NOT_NEEDED,
    ELIGIBLE_LEADERS_NOT_AVAILABLE,
    FENCED_LEADER_EPOCH,
    INCONSISTENT_CLUSTER_ID,
    INELIGIBLE_REPLICA,
    INVALID_CONFIG,
    INVALID_PARTITIONS,
    INVALID_REPLICA_ASSIGNMENT,
    INVALID_REPLICATION_FACTOR,
    INVALID_REQUEST,
    INVALID_TOPIC_EXCEPTION,
    INVALID_UPDATE_VERSION,
    NEW_LEADER_ELECTED,
    NO_REASSIGNMENT_IN_PROGRESS,
    NONE,
    NOT_CONTROLLER,
    PREFERRED_LEADER_NOT_AVAILABLE,
    STALE_BROKER_EPOCH,
    TOPIC_ALREADY_EXISTS,
    UNKNOWN_TOPIC_ID,
    UNKNOWN_TOPIC_OR_PARTITION,
)
from engine.metadata.image import (
    CONFIG_RESOURCE_TOPIC,
    CONSUMER_OFFSETS,
    NO_LEADER,
    NO_LEADER_CHANGE,
    RECOVERED,
    RECOVERING,
    ClusterImage,
    MetadataDelta,
    PartitionRegistration,
    TopicImage,
)
from engine.metadata.records import (
    METADATA_VERSION,
    BrokerRegistrationChangeRecord,
    ConfigRecord,
    FeatureLevelRecord,
    PartitionChangeRecord,
    PartitionRecord,
    ProducerIdsRecord,
    RegisterBrokerRecord,
    RemoveTopicRecord,
    TopicRecord,
)
from engine.storage.config import TOPIC_CONFIG_NAMES, LogConfig
from engine.storage.log_manager import validate_topic_name

log = logging.getLogger(__name__)

PRODUCER_ID_BLOCK_SIZE = 1000  # Kafka's ProducerIdsBlock.PRODUCER_ID_BLOCK_SIZE


class ControllerError(Exception):
    def __init__(self, error_code: int, message: str) -> None:
        super().__init__(message)
        self.error_code = error_code


@dataclass(frozen=True)
class ControllerSettings:
    """What the controller decides with: the cluster defaults brokers would otherwise apply."""

    num_partitions: int = 1
    default_replication_factor: int = 1
    offsets_topic_replication_factor: int = 3
    broker_session_timeout_ms: int = 9_000
    log: LogConfig = field(default_factory=LogConfig)  # topic defaults (min.insync.replicas, ...)


@dataclass
class Endpoint:
    host: str
    port: int
    name: str = "PLAINTEXT"


@dataclass
class HeartbeatResult:
    error_code: int = NONE
    is_caught_up: bool = False
    is_fenced: bool = True
    should_shut_down: bool = False


@dataclass
class AlterPartitionResult:
    error_code: int
    leader: int = NO_LEADER
    leader_epoch: int = -1
    isr: list[int] = field(default_factory=list)
    leader_recovery_state: int = 0
    partition_epoch: int = -1


@dataclass
class CreatedTopic:
    name: str
    error_code: int = NONE
    message: str | None = None
    topic_id: uuid.UUID | None = None
    num_partitions: int = -1
    replication_factor: int = -1
    configs: dict[str, str] = field(default_factory=dict)


PREFERRED_ELECTION, UNCLEAN_ELECTION = 0, 1  # ElectLeaders' ElectionType
# Kafka's LeaderState.OBSERVER_SESSION_TIMEOUT_MS: an observer that has not fetched for this long
# is no longer described
OBSERVER_SESSION_TIMEOUT_MS = 300_000


@dataclass
class PartitionResult:
    """One partition's answer to ElectLeaders or AlterPartitionReassignments."""

    partition: int
    error_code: int = NONE
    message: str | None = None


@dataclass
class OngoingReassignment:
    partition: int
    replicas: list[int]
    adding: list[int]
    removing: list[int]


@dataclass
class QuorumReplica:
    """What the voter knows of one replica of the metadata log (Kafka's LeaderState.ReplicaState):
    its log end offset (the offset it last fetched at) and when it last fetched and was last
    caught up, in ms (-1: not known)."""

    replica_id: int
    log_end_offset: int = -1
    last_fetch_ms: int = -1
    last_caught_up_ms: int = -1
    # the voter's log end offset when this replica last fetched (Kafka's rule for caught up)
    last_fetch_leader_end: int = 0


@dataclass
class QuorumInfo:
    leader_id: int
    leader_epoch: int
    high_watermark: int
    voters: list[QuorumReplica]
    observers: list[QuorumReplica]


class QuorumController:
    def __init__(
        self,
        metadata_log: MetadataLog,
        cluster_id: str,
        node_id: int,
        settings: ControllerSettings,
        time_ms: Callable[[], int],
        rng: random.Random | None = None,
    ) -> None:
        self.log = metadata_log
        self.settings = settings
        self._time_ms = time_ms
        self._rng = rng or random.Random()
        delta = MetadataDelta(ClusterImage(cluster_id, node_id))
        for offset, record in metadata_log.records():
            delta.replay(record, offset)
        self.image = delta.apply()
        now = time_ms()
        # As a new active controller: every registered broker gets a full session to show up.
        self.last_contact_ms: dict[int, int] = dict.fromkeys(self.image.brokers, now)
        self.controlled_shutdown_offsets: dict[int, int] = {}
        # the highest metadata offset each broker has applied, from its heartbeats
        self.broker_offsets: dict[int, int] = {}
        # what each replica fetching the metadata log last fetched (DescribeQuorum's observers)
        self.fetch_states: dict[int, QuorumReplica] = {}
        if "metadata.version" not in self.image.features:
            self.write(
                [
                    FeatureLevelRecord(
                        version=0, name="metadata.version", feature_level=METADATA_VERSION
                    )
                ]
            )

    @property
    def cluster_id(self) -> str:
        return self.image.cluster_id

    # -- writing --------------------------------------------------------------------------------
    def write(self, records: Sequence[Any]) -> int:
        """Append records as one durable batch and apply them; the offset of the last one."""
        if not records:
            return self.log.end_offset - 1
        base = self.log.append(list(records))
        delta = MetadataDelta(self.image)
        for i, record in enumerate(records):
            delta.replay(record, base + i)
        self.image = delta.apply()
        return base + len(records) - 1

    # -- brokers --------------------------------------------------------------------------------
    def may_lead(self, broker_id: int, excluding: int = -1) -> bool:
        broker = self.image.brokers.get(broker_id)
        return broker is not None and broker.active and broker_id != excluding

    def register_broker(
        self,
        broker_id: int,
        cluster_id: str,
        incarnation_id: uuid.UUID,
        endpoints: list[Endpoint],
        rack: str | None,
    ) -> int:
        """A broker (re)starting: its epoch. Raises ControllerError with Kafka's codes."""
        if cluster_id != self.cluster_id:
            raise ControllerError(
                INCONSISTENT_CLUSTER_ID,
                f"broker {broker_id} belongs to cluster {cluster_id!r}, "
                f"this is {self.cluster_id!r}",
            )
        now = self._time_ms()
        existing = self.image.brokers.get(broker_id)
        records: list[Any] = []
        if existing is not None:
            if existing.incarnation_id == incarnation_id:
                self.last_contact_ms[broker_id] = now
                return existing.epoch  # a retry of the same registration
            if not existing.fenced and self._session_alive(broker_id, now):
                raise ControllerError(
                    DUPLICATE_BROKER_REGISTRATION,
                    f"broker {broker_id} is registered by another process whose session is "
                    f"still alive (incarnation {existing.incarnation_id})",
                )
            if not existing.fenced:  # restarted before its session ran out: a crash
                records += self._fence_records(broker_id)
        epoch = self.log.end_offset + len(records)  # the offset its registration will have
        records.append(
            RegisterBrokerRecord(
                version=2,
                broker_id=broker_id,
                incarnation_id=incarnation_id,
                broker_epoch=epoch,
                end_points=[
                    RegisterBrokerRecord.BrokerEndpoint(
                        name=e.name, host=e.host, port=e.port, security_protocol=0
                    )
                    for e in endpoints
                ],
                features=[
                    RegisterBrokerRecord.BrokerFeature(
                        name="metadata.version",
                        min_supported_version=1,
                        max_supported_version=METADATA_VERSION,
                    )
                ],
                rack=rack,
                fenced=True,
                in_controlled_shutdown=False,
                is_migrating_zk_broker=False,
            )
        )
        self.write(records)
        self.last_contact_ms[broker_id] = now
        self.controlled_shutdown_offsets.pop(broker_id, None)
        self.broker_offsets.pop(broker_id, None)
        log.info("broker %d registered with epoch %d (rack %s)", broker_id, epoch, rack)
        return epoch

    def _session_alive(self, broker_id: int, now: int) -> bool:
        last = self.last_contact_ms.get(broker_id)
        # Kafka's BrokerHeartbeatManager.hasValidSession: alive through the timeout itself
        return last is not None and now - last <= self.settings.broker_session_timeout_ms

    def _check_broker_epoch(self, broker_id: int, epoch: int) -> None:
        broker = self.image.brokers.get(broker_id)
        if broker is None or broker.epoch != epoch:
            raise ControllerError(
                STALE_BROKER_EPOCH,
                f"broker {broker_id} epoch {epoch} is not the registered one "
                f"({broker.epoch if broker else 'unregistered'})",
            )

    def heartbeat(
        self,
        broker_id: int,
        broker_epoch: int,
        current_metadata_offset: int,
        want_fence: bool,
        want_shut_down: bool,
    ) -> HeartbeatResult:
        """Kafka's broker state machine (BrokerHeartbeatManager.calculateNextBrokerState)."""
        self._check_broker_epoch(broker_id, broker_epoch)
        now = self._time_ms()
        self.last_contact_ms[broker_id] = now
        self.broker_offsets[broker_id] = current_metadata_offset
        broker = self.image.brokers[broker_id]
        caught_up = current_metadata_offset >= broker.epoch
        if broker.fenced:
            if want_shut_down:
                return HeartbeatResult(NONE, caught_up, True, True)
            if not want_fence and caught_up:
                self.write(self._unfence_records(broker_id))
                log.info("broker %d unfenced", broker_id)
                return HeartbeatResult(NONE, True, False, False)
            return HeartbeatResult(NONE, caught_up, True, False)
        if want_fence:
            self.write(self._fence_records(broker_id))
            return HeartbeatResult(NONE, caught_up, True, want_shut_down)
        if want_shut_down:
            if not broker.in_controlled_shutdown and not self._leads_any(broker_id):
                # nothing to move: SHUTDOWN_NOW at once, as Kafka (calculateNextBrokerState)
                self.write(self._fence_records(broker_id))
                log.info("broker %d shut down", broker_id)
                return HeartbeatResult(NONE, caught_up, True, True)
            if broker_id not in self.controlled_shutdown_offsets:
                records = self._controlled_shutdown_records(broker_id)
                offset = self.write(records)
                self.controlled_shutdown_offsets[broker_id] = offset
                log.info("broker %d in controlled shutdown", broker_id)
            if self._may_shut_down(broker_id):
                self.write(self._fence_records(broker_id))
                self.controlled_shutdown_offsets.pop(broker_id, None)
                log.info("broker %d shut down", broker_id)
                return HeartbeatResult(NONE, caught_up, True, True)
            return HeartbeatResult(NONE, caught_up, False, False)
        return HeartbeatResult(NONE, caught_up, False, False)

    def _may_shut_down(self, broker_id: int) -> bool:
        """Once it leads nothing and every active broker has seen that (Kafka's rule), so no
        client is sent to it any more."""
        if self._leads_any(broker_id):
            return False
        offset = self.controlled_shutdown_offsets[broker_id]
        return all(
            self.broker_offsets.get(b.node_id, -1) >= offset
            for b in self.image.brokers.values()
            if b.active and b.node_id != broker_id
        )

    def _leads_any(self, broker_id: int) -> bool:
        return any(
            registration.leader == broker_id
            for topic in self.image.topics.values()
            for registration in topic.partitions.values()
        )

    def fence_stale_brokers(self) -> list[int]:
        """Fence the brokers whose session ran out (Kafka fences one per pass; the periodic task
        runs often enough that fencing all of them at once only makes it sooner)."""
        now = self._time_ms()
        fenced = []
        for broker in list(self.image.brokers.values()):
            if broker.fenced or self._session_alive(broker.node_id, now):
                continue
            self.write(self._fence_records(broker.node_id))
            fenced.append(broker.node_id)
            log.warning(
                "broker %d fenced: no heartbeat for %d ms (broker.session.timeout.ms)",
                broker.node_id,
                now - self.last_contact_ms.get(broker.node_id, now),
            )
        return fenced

    def _fence_records(self, broker_id: int) -> list[Any]:
        """Out of every ISR (new leaders where it led), then fenced (handleBrokerFenced)."""
        broker = self.image.brokers[broker_id]
        records = self._isr_removal_records(broker_id)
        records.append(
            BrokerRegistrationChangeRecord(
                version=0, broker_id=broker_id, broker_epoch=broker.epoch, fenced=1
            )
        )
        return records

    def _controlled_shutdown_records(self, broker_id: int) -> list[Any]:
        broker = self.image.brokers[broker_id]
        return [
            BrokerRegistrationChangeRecord(
                version=1,
                broker_id=broker_id,
                broker_epoch=broker.epoch,
                in_controlled_shutdown=1,
            ),
            *self._isr_removal_records(broker_id),
        ]

    def _isr_removal_records(self, broker_id: int) -> list[Any]:
        records = []
        for topic in self.image.topics.values():
            unclean = self._unclean_enabled(topic.name)
            for index, registration in sorted(topic.partitions.items()):
                if broker_id not in registration.isr:
                    continue
                change = partition_change(
                    topic.topic_id,
                    index,
                    registration,
                    [r for r in registration.isr if r != broker_id],
                    lambda r: self.may_lead(r, excluding=broker_id),
                    unclean=unclean,
                )
                if change is not None:
                    records.append(change)
        return records

    def _unfence_records(self, broker_id: int) -> list[Any]:
        """Unfenced, then leader of the partitions without one that it can take: those whose
        ISR holds it, or any of its replicas when unclean election is enabled."""
        broker = self.image.brokers[broker_id]
        records: list[Any] = [
            BrokerRegistrationChangeRecord(
                version=0, broker_id=broker_id, broker_epoch=broker.epoch, fenced=-1
            )
        ]
        for topic in self.image.topics.values():
            unclean = self._unclean_enabled(topic.name)
            for index, registration in sorted(topic.partitions.items()):
                if registration.leader != NO_LEADER or broker_id not in registration.replicas:
                    continue
                if broker_id not in registration.isr and not unclean:
                    continue
                change = partition_change(
                    topic.topic_id,
                    index,
                    registration,
                    registration.isr,
                    lambda r: r == broker_id or self.may_lead(r),
                    unclean=unclean,
                )
                if change is not None:
                    records.append(change)
        return records

    def _unclean_enabled(self, topic: str) -> bool:
        value = self.image.topic_configs(topic).get("unclean.leader.election.enable")
        if value is None:
            return self.settings.log.unclean_leader_election_enable
        return value.lower() == "true"

    # -- ISR changes from leaders ---------------------------------------------------------------
    def alter_partition(
        self,
        broker_id: int,
        broker_epoch: int,
        topic: TopicImage | None,
        index: int,
        leader_epoch: int,
        partition_epoch: int,
        new_isr: list[int],
        leader_recovery_state: int,
    ) -> AlterPartitionResult:
        """A leader's ISR change, validated as Kafka's ReplicationControlManager.alterPartition."""
        self._check_broker_epoch(broker_id, broker_epoch)
        if topic is not None:  # judged on the partition as it is now, not the caller's copy
            topic = self.image.topic_by_id(topic.topic_id)
        if topic is None:
            return AlterPartitionResult(UNKNOWN_TOPIC_ID)
        registration = topic.partitions.get(index)
        if registration is None:
            return AlterPartitionResult(UNKNOWN_TOPIC_OR_PARTITION)
        if leader_epoch > registration.leader_epoch or partition_epoch > (
            registration.partition_epoch
        ):
            return AlterPartitionResult(NOT_CONTROLLER)
        if leader_epoch < registration.leader_epoch:
            return AlterPartitionResult(FENCED_LEADER_EPOCH)
        if broker_id != registration.leader:
            return AlterPartitionResult(INVALID_REQUEST)
        if partition_epoch < registration.partition_epoch:
            return AlterPartitionResult(INVALID_UPDATE_VERSION)
        if (
            not set(new_isr) <= set(registration.replicas)
            or len(set(new_isr)) != len(new_isr)
            or broker_id not in new_isr
        ):
            return AlterPartitionResult(INVALID_REQUEST)
        # only an unclean leader's lone ISR is RECOVERING, and a recovered one stays recovered
        if leader_recovery_state == RECOVERING and (
            len(new_isr) > 1 or registration.leader_recovery_state == RECOVERED
        ):
            return AlterPartitionResult(INVALID_REQUEST)
        for added in set(new_isr) - set(registration.isr):
            if not self.may_lead(added):
                return AlterPartitionResult(INELIGIBLE_REPLICA)
        # an expansion may complete a reassignment, which may elect another leader
        change = partition_change(
            topic.topic_id,
            index,
            registration,
            new_isr,
            self.may_lead,
            unclean=self._unclean_enabled(topic.name),
            leader_recovery_state=leader_recovery_state,
        )
        if change is not None:
            self.write([change])
            if change.leader not in (NO_LEADER_CHANGE, broker_id):
                # Kafka's answer: the change is made, and the leader learns it lost leadership
                # (FENCED_LEADER_EPOCH before AlterPartition v2)
                log.info(
                    "%s-%d: the ISR change completed a reassignment; broker %d leads now",
                    topic.name,
                    index,
                    change.leader,
                )
                return AlterPartitionResult(NEW_LEADER_ELECTED)
        after = self.image.topics[topic.name].partitions[index]
        return _alter_result(after)

    # -- producer ids ---------------------------------------------------------------------------
    def allocate_producer_ids(self, broker_id: int, broker_epoch: int) -> tuple[int, int]:
        """The next block of producer ids: (first id, count)."""
        self._check_broker_epoch(broker_id, broker_epoch)
        start = self.image.next_producer_id
        self.write(
            [
                ProducerIdsRecord(
                    version=0,
                    broker_id=broker_id,
                    broker_epoch=broker_epoch,
                    next_producer_id=start + PRODUCER_ID_BLOCK_SIZE,
                )
            ]
        )
        return start, PRODUCER_ID_BLOCK_SIZE

    # -- topics ---------------------------------------------------------------------------------
    def create_topic(
        self,
        name: str,
        num_partitions: int,
        replication_factor: int,
        configs: dict[str, str],
        assignments: dict[int, list[int]] | None = None,
        validate_only: bool = False,
    ) -> CreatedTopic:
        try:
            validate_topic_name(name)
        except ValueError as exc:
            return CreatedTopic(name, INVALID_TOPIC_EXCEPTION, str(exc))
        if name in self.image.topics:
            return CreatedTopic(name, TOPIC_ALREADY_EXISTS, f"topic {name!r} already exists")
        unknown = sorted(set(configs) - TOPIC_CONFIG_NAMES)
        if unknown:
            return CreatedTopic(
                name,
                INVALID_CONFIG,
                f"unsupported topic configs {unknown}; supported: {sorted(TOPIC_CONFIG_NAMES)}",
            )
        try:
            LogConfig.from_properties(configs, base=self.settings.log)
        except ValueError as exc:
            return CreatedTopic(name, INVALID_CONFIG, str(exc))
        if assignments:
            replicas = {p: list(r) for p, r in sorted(assignments.items())}
            error = manual_assignment_error(replicas, self.image.brokers)
            if error:
                return CreatedTopic(name, INVALID_REPLICA_ASSIGNMENT, error)
            num_partitions = len(replicas)
            replication_factor = len(next(iter(replicas.values())))
        else:
            if num_partitions == -1:
                num_partitions = self.settings.num_partitions
            if replication_factor == -1:
                replication_factor = (
                    self.settings.offsets_topic_replication_factor
                    if name == CONSUMER_OFFSETS
                    else self.settings.default_replication_factor
                )
            if num_partitions < 1:
                return CreatedTopic(
                    name, INVALID_PARTITIONS, "number of partitions must be at least 1"
                )
            if replication_factor < 1:
                return CreatedTopic(
                    name, INVALID_REPLICATION_FACTOR, "replication factor must be at least 1"
                )
            try:
                replicas = self._place(range(num_partitions), replication_factor)
            except PlacementError as exc:
                return CreatedTopic(name, INVALID_REPLICATION_FACTOR, str(exc))
        topic_id = uuid.uuid4()
        result = CreatedTopic(name, NONE, None, topic_id, num_partitions, replication_factor)
        result.configs = dict(configs)
        if validate_only:
            return result
        records: list[Any] = [TopicRecord(version=0, name=name, topic_id=topic_id)]
        records += [
            ConfigRecord(
                version=0,
                resource_type=CONFIG_RESOURCE_TOPIC,
                resource_name=name,
                name=key,
                value=value,
            )
            for key, value in sorted(configs.items())
        ]
        records += [self._partition_record(topic_id, p, r) for p, r in replicas.items()]
        self.write(records)
        log.info("created topic %s: %d partitions, RF %d", name, num_partitions, replication_factor)
        return result

    def _place(self, partitions: Sequence[int], replication_factor: int) -> dict[int, list[int]]:
        """Striped placement over the active brokers; as Kafka's placer, fenced brokers (a
        broker down for a while) take the replicas the active ones cannot, never as leader, so
        a topic of full replication can be made while one broker restarts."""
        active = [b for b in self.image.brokers.values() if b.active]
        fenced = sorted(
            b.node_id
            for b in self.image.brokers.values()
            if b.fenced and not b.in_controlled_shutdown
        )
        if not active or replication_factor <= len(active):
            return place_replicas(active, partitions, replication_factor, self._rng)
        if replication_factor > len(active) + len(fenced):
            raise PlacementError(
                f"replication factor {replication_factor} is larger than the "
                f"{len(active) + len(fenced)} registered brokers"
            )
        placed = place_replicas(active, partitions, len(active), self._rng)
        missing = replication_factor - len(active)
        return {
            index: replicas + [fenced[(index + i) % len(fenced)] for i in range(missing)]
            for index, replicas in placed.items()
        }

    def _partition_record(self, topic_id: uuid.UUID, index: int, replicas: list[int]) -> Any:
        isr = [r for r in replicas if self.may_lead(r)]
        return PartitionRecord(
            version=0,
            partition_id=index,
            topic_id=topic_id,
            replicas=replicas,
            isr=isr or list(replicas),
            removing_replicas=[],
            adding_replicas=[],
            leader=isr[0] if isr else NO_LEADER,
            leader_recovery_state=0,
            leader_epoch=0,
            partition_epoch=0,
        )

    def delete_topic(self, name: str) -> uuid.UUID:
        topic = self.image.topics.get(name)
        if topic is None:
            raise ControllerError(UNKNOWN_TOPIC_OR_PARTITION, f"topic {name!r} does not exist")
        if topic.internal:
            raise ControllerError(INVALID_REQUEST, f"internal topic {name!r} cannot be deleted")
        self.write([RemoveTopicRecord(version=0, topic_id=topic.topic_id)])
        log.info("deleted topic %s", name)
        return topic.topic_id

    def create_partitions(
        self,
        name: str,
        count: int,
        assignments: list[list[int]] | None = None,
        validate_only: bool = False,
    ) -> None:
        topic = self.image.topics.get(name)
        if topic is None:
            raise ControllerError(UNKNOWN_TOPIC_OR_PARTITION, f"topic {name!r} does not exist")
        current = len(topic.partitions)
        if count <= current:
            raise ControllerError(
                INVALID_PARTITIONS, f"topic {name!r} has {current} partitions, asked for {count}"
            )
        replication_factor = len(topic.partitions[0].replicas)
        new = range(current, count)
        if assignments:
            if len(assignments) != len(new):
                raise ControllerError(
                    INVALID_REPLICA_ASSIGNMENT,
                    f"Attempted to add {len(new)} additional partition(s), but only "
                    f"{len(assignments)} assignment(s) were specified.",
                )
            replicas = dict(zip(new, (list(a) for a in assignments), strict=True))
            error = manual_assignment_error(
                replicas, self.image.brokers, current, replication_factor
            )
            if error:
                raise ControllerError(INVALID_REPLICA_ASSIGNMENT, error)
        else:
            try:
                replicas = self._place(new, replication_factor)
            except PlacementError as exc:
                raise ControllerError(INVALID_REPLICATION_FACTOR, str(exc)) from None
        if not validate_only:
            self.write([self._partition_record(topic.topic_id, p, r) for p, r in replicas.items()])

    # -- leader elections and reassignments (admin) ---------------------------------------------
    def elect_leaders(
        self, election_type: int, topic_partitions: Mapping[str, Sequence[int]] | None
    ) -> dict[str, list[PartitionResult]]:
        """ElectLeaders (Kafka's ReplicationControlManager.electLeaders): per topic, each
        partition's result; with topic_partitions None, every partition, leaving out those whose
        election was not needed. The elections are written as one batch."""
        if election_type not in (PREFERRED_ELECTION, UNCLEAN_ELECTION):
            raise ControllerError(INVALID_REQUEST, f"unknown election type {election_type}")
        pending: dict[tuple[str, int], PartitionRegistration] = {}
        records: list[Any] = []
        results: dict[str, list[PartitionResult]] = {}
        if topic_partitions is None:
            for name, topic in sorted(self.image.topics.items()):
                results[name] = [
                    result
                    for index in sorted(topic.partitions)
                    if (
                        result := self._elect_leader(name, index, election_type, pending, records)
                    ).error_code
                    != ELECTION_NOT_NEEDED
                ]
        else:
            for name, partitions in topic_partitions.items():
                results[name] = [
                    self._elect_leader(name, index, election_type, pending, records)
                    for index in partitions
                ]
        self.write(records)
        return results

    def _elect_leader(
        self,
        name: str,
        index: int,
        election_type: int,
        pending: dict[tuple[str, int], PartitionRegistration],
        records: list[Any],
    ) -> PartitionResult:
        topic = self.image.topics.get(name)
        if topic is None:
            return PartitionResult(index, UNKNOWN_TOPIC_OR_PARTITION, f"no such topic as {name}")
        registration = pending.get((name, index), topic.partitions.get(index))
        if registration is None:
            return PartitionResult(
                index, UNKNOWN_TOPIC_OR_PARTITION, f"no such partition as {name}-{index}"
            )
        preferred = election_type == PREFERRED_ELECTION
        if (
            preferred and registration.replicas and registration.leader == registration.replicas[0]
        ) or (not preferred and registration.leader != NO_LEADER):
            return PartitionResult(index, ELECTION_NOT_NEEDED)
        change = partition_change(
            topic.topic_id,
            index,
            registration,
            registration.isr,
            self.may_lead,
            unclean=not preferred,
            preferred=preferred,
        )
        if change is None:
            if preferred:
                return PartitionResult(
                    index,
                    PREFERRED_LEADER_NOT_AVAILABLE,
                    f"the preferred leader {registration.replicas[0]} of {name}-{index} "
                    "is not an active broker in the ISR",
                )
            return PartitionResult(
                index,
                ELIGIBLE_LEADERS_NOT_AVAILABLE,
                f"no replica of {name}-{index} is on an active broker",
            )
        records.append(change)
        pending[name, index] = registration.merge(change)
        return PartitionResult(index)

    def alter_partition_reassignments(
        self, topics: Sequence[tuple[str, Sequence[tuple[int, Sequence[int] | None]]]]
    ) -> list[tuple[str, list[PartitionResult]]]:
        """AlterPartitionReassignments (KIP-455): for each (topic, [(partition, target replicas
        or None to cancel)]) the partitions' results; the changes are written as one batch."""
        pending: dict[tuple[str, int], PartitionRegistration] = {}
        records: list[Any] = []
        results = []
        for name, partitions in topics:
            topic_results = []
            for index, target in partitions:
                try:
                    change = self._reassignment_change(name, index, target, pending)
                except ControllerError as exc:
                    topic_results.append(PartitionResult(index, exc.error_code, str(exc)))
                    continue
                if change is not None:
                    records.append(change)
                    pending[name, index] = pending.get(
                        (name, index), self.image.topics[name].partitions[index]
                    ).merge(change)
                topic_results.append(PartitionResult(index))
            results.append((name, topic_results))
        self.write(records)
        if records:
            log.info("altered %d partition reassignment(s)", len(records))
        return results

    def _reassignment_change(
        self,
        name: str,
        index: int,
        target: Sequence[int] | None,
        pending: dict[tuple[str, int], PartitionRegistration],
    ) -> PartitionChangeRecord | None:
        topic = self.image.topics.get(name)
        if topic is None:
            raise ControllerError(
                UNKNOWN_TOPIC_OR_PARTITION, f"unable to find a topic named {name}"
            )
        registration = pending.get((name, index), topic.partitions.get(index))
        if registration is None:
            raise ControllerError(
                UNKNOWN_TOPIC_OR_PARTITION, f"unable to find partition {name}:{index}"
            )
        if target is None:
            return self._cancel_reassignment(topic, index, registration)
        self._check_target(list(target))
        # Kafka's PartitionReassignmentReplicas: the target first, then the replicas leaving
        current = registration.replicas
        removing = sorted(set(current) - set(target))
        adding = sorted(set(target) - set(current))
        return partition_change(
            topic.topic_id,
            index,
            registration,
            registration.isr,
            self.may_lead,
            replicas=[*target, *removing],
            adding=adding,
            removing=removing,
        )

    def _check_target(self, target: list[int]) -> None:
        """Kafka's validateManualPartitionAssignment."""
        if not target:
            raise ControllerError(
                INVALID_REPLICA_ASSIGNMENT,
                "the manual partition assignment includes an empty replica list",
            )
        for broker_id in sorted(target):
            if broker_id not in self.image.brokers:
                raise ControllerError(
                    INVALID_REPLICA_ASSIGNMENT,
                    f"the manual partition assignment includes broker {broker_id}, but no such "
                    "broker is registered",
                )
        if len(set(target)) != len(target):
            twice = sorted({b for b in target if target.count(b) > 1})
            raise ControllerError(
                INVALID_REPLICA_ASSIGNMENT,
                f"the manual partition assignment includes the broker {twice[0]} more than once",
            )

    def _cancel_reassignment(
        self, topic: TopicImage, index: int, registration: PartitionRegistration
    ) -> PartitionChangeRecord | None:
        """Back to the replicas before the reassignment (Kafka's PartitionReassignmentRevert):
        the adding ones leave the replicas and the ISR; an ISR left empty takes the first
        original replica, which is an unclean election, allowed only where enabled."""
        if not registration.adding_replicas and not registration.removing_replicas:
            raise ControllerError(
                NO_REASSIGNMENT_IN_PROGRESS,
                f"no partition reassignment is in progress for {topic.name}:{index}",
            )
        adding = set(registration.adding_replicas)
        original = [r for r in registration.replicas if r not in adding]
        isr = [r for r in registration.isr if r not in adding]
        unclean = self._unclean_enabled(topic.name)
        if not isr:
            if not original:
                raise ControllerError(
                    INVALID_REPLICA_ASSIGNMENT,
                    "invalid replica assignment: adding replicas contains all replicas",
                )
            if not unclean:
                raise ControllerError(
                    INVALID_REPLICA_ASSIGNMENT,
                    f"unable to revert partition assignment for {topic.name}:{index} because "
                    "it would require an unclean leader election",
                )
            isr = [original[0]]
        return partition_change(
            topic.topic_id,
            index,
            registration,
            isr,
            self.may_lead,
            unclean=unclean,
            replicas=original,
            adding=[],
            removing=[],
        )

    def list_partition_reassignments(
        self, topics: Mapping[str, Sequence[int]] | None
    ) -> list[tuple[str, list[OngoingReassignment]]]:
        """The reassignments under way: of every partition (topics None) or of the partitions
        named; unknown topics and partitions, and topics with none under way, are left out."""
        wanted = (
            {name: sorted(t.partitions) for name, t in sorted(self.image.topics.items())}
            if topics is None
            else topics
        )
        results = []
        for name, partitions in wanted.items():
            topic = self.image.topics.get(name)
            if topic is None:
                continue
            ongoing = [
                OngoingReassignment(
                    index,
                    list(registration.replicas),
                    list(registration.adding_replicas),
                    list(registration.removing_replicas),
                )
                for index in partitions
                if (registration := topic.partitions.get(index)) is not None
                and (registration.adding_replicas or registration.removing_replicas)
            ]
            if ongoing:
                results.append((name, ongoing))
        return results

    # -- the quorum -----------------------------------------------------------------------------
    def replica_fetched(self, replica_id: int, fetch_offset: int) -> None:
        """A replica (a broker following the log) fetched the metadata log at fetch_offset: it
        has everything before it. Caught up, as Kafka's ReplicaState.updateFollowerState says,
        when it fetched at the log end, or at least at the end the log had at its last fetch."""
        now = self._time_ms()
        end = self.log.end_offset
        state = self.fetch_states.setdefault(replica_id, QuorumReplica(replica_id))
        if fetch_offset >= end:
            state.last_caught_up_ms = max(state.last_caught_up_ms, now)
        elif state.last_fetch_leader_end > 0 and fetch_offset >= state.last_fetch_leader_end:
            state.last_caught_up_ms = max(state.last_caught_up_ms, state.last_fetch_ms)
        state.log_end_offset = fetch_offset
        state.last_fetch_ms = now
        state.last_fetch_leader_end = end

    def describe_quorum(self) -> QuorumInfo:
        """The single voter (this controller, the leader) and the observers: the replicas that
        fetched the log in the last OBSERVER_SESSION_TIMEOUT_MS, and registered brokers that
        have only heartbeated so far (their log end: the offset after the last one they
        applied)."""
        now = self._time_ms()
        node_id = self.image.controller_id
        end = self.log.end_offset
        observers: dict[int, QuorumReplica] = {}
        for broker_id, applied in self.broker_offsets.items():
            if broker_id in self.image.brokers:
                observers[broker_id] = QuorumReplica(broker_id, applied + 1)
        for replica_id, state in list(self.fetch_states.items()):
            if now - state.last_fetch_ms > OBSERVER_SESSION_TIMEOUT_MS:
                del self.fetch_states[replica_id]
            elif replica_id != node_id:
                observers[replica_id] = state
        return QuorumInfo(
            leader_id=node_id,
            leader_epoch=self.log.epoch,
            high_watermark=self.log.log.high_watermark,
            voters=[QuorumReplica(node_id, end, now, now)],
            observers=[observers[r] for r in sorted(observers)],
        )


def _alter_result(registration: PartitionRegistration) -> AlterPartitionResult:
    return AlterPartitionResult(
        NONE,
        registration.leader,
        registration.leader_epoch,
        list(registration.isr),
        registration.leader_recovery_state,
        registration.partition_epoch,
    )
