"""KafkaApis: one handler per API, from a decoded request to a response (Kafka's KafkaApis).

Sans-I/O: a handler gets the request's context (header, client, listener), the decoded request
and `respond`, and calls `respond` exactly once with the response frame as parts (bytes, and
file slices for Fetch data), now or later (fetch long poll, group joins). Produce with acks=0
is answered with nothing, which `respond(None)` says.
"""

import dataclasses
import logging
from collections.abc import Callable, Mapping
from dataclasses import asdict
from typing import TYPE_CHECKING

from kafka.admin import ConfigResourceType, ConfigSourceType
from kafka.errors import UnstableOffsetCommitError
from kafka.protocol.api_message import ApiMessage

from engine.broker import config_helper
from engine.broker.acl_apis import acl_handlers, acls_visible
from engine.broker.api_authorization import authorized_handlers, refused_fetches
from engine.broker.api_handlers import ApiHandlers, Respond
from engine.broker.authorizer import StandardAuthorizer
from engine.broker.client_quota_apis import (
    BrokerClientQuotas,
    client_quota_handlers,
    client_quotas_visible,
)
from engine.broker.cluster_admin import GROUP_OPERATIONS, cluster_admin_handlers
from engine.broker.config import KafkaConfig
from engine.broker.config_admin import DELETE, ConfigAlterError, altered_configs, request_ops
from engine.broker.dynamic_config import CLUSTER_DEFAULT
from engine.broker.fetch_session import FetchManager
from engine.storage import FetchIsolation

if TYPE_CHECKING:
    from engine.broker.broker_server import BrokerServer
from engine.broker.group_coordinator import (
    CLASSIC_GROUP_TYPE,
    CommittedOffset,
    GroupCoordinator,
    JoinGroupResult,
    SyncGroupResult,
)
from engine.broker.offset_store import OFFSETS_TOPIC_CONFIGS
from engine.broker.partition import Partition
from engine.broker.replica_admin import replica_admin_handlers
from engine.broker.replica_manager import (
    FetchParams,
    FetchPartitionData,
    ProduceResult,
)
from engine.broker.request_context import RequestContext
from engine.broker.topics import (
    TopicAdminError,
    check_assignment_counts,
    manual_assignment_error,
)
from engine.broker.transaction_apis import (
    TRANSACTION_KEY_TYPE,
    ensure_transaction_state,
    transaction_handlers,
)
from engine.broker.transaction_markers import (
    READ_COMMITTED,
    aborted_transactions,
    fetch_isolation,
)
from engine.common import TopicPartition
from engine.errors import (
    COORDINATOR_NOT_AVAILABLE,
    FENCED_LEADER_EPOCH,
    GROUP_ID_NOT_FOUND,
    INVALID_REPLICA_ASSIGNMENT,
    INVALID_REQUEST,
    INVALID_TOPIC_EXCEPTION,
    KAFKA_STORAGE_ERROR,
    LEADER_NOT_AVAILABLE,
    NONE,
    NOT_COORDINATOR,
    NOT_ENOUGH_REPLICAS,
    NOT_ENOUGH_REPLICAS_AFTER_APPEND,
    NOT_LEADER_OR_FOLLOWER,
    OFFSET_NOT_AVAILABLE,
    REQUEST_TIMED_OUT,
    TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
    UNKNOWN_LEADER_EPOCH,
    UNKNOWN_TOPIC_OR_PARTITION,
)
from engine.metadata.image import CONSUMER_OFFSETS, NO_LEADER, ClusterImage
from engine.protocol.apis import APIS, ApiKeys, ApiTable
from engine.protocol.codec import encode_error_frame
from engine.protocol.fetch_response import encode_fetch_response
from engine.protocol.produce_response import (
    PartitionProduceResponse,
    encode_produce_response,
)
from engine.records.validator import first_batch_is_transactional
from engine.storage.log_manager import validate_topic_name

UNSTABLE_OFFSET_COMMIT = UnstableOffsetCommitError.errno

log = logging.getLogger(__name__)

EARLIEST_TIMESTAMP = -2
LATEST_TIMESTAMP = -1
MAX_TIMESTAMP = -3  # v7+ (KIP-734)
EARLIEST_LOCAL_TIMESTAMP = -4  # v8+ (KIP-405)
LATEST_TIERED_TIMESTAMP = -5  # v9+ (KIP-1005)

_FORWARD_RETRY_MS = 100  # while the controller cannot be reached
# what a commit's replication error is answered as (Kafka's GroupMetadataManager)
_COMMIT_ERRORS = {
    NOT_LEADER_OR_FOLLOWER: NOT_COORDINATOR,
    REQUEST_TIMED_OUT: REQUEST_TIMED_OUT,
    NOT_ENOUGH_REPLICAS: COORDINATOR_NOT_AVAILABLE,
    NOT_ENOUGH_REPLICAS_AFTER_APPEND: COORDINATOR_NOT_AVAILABLE,
}


class KafkaApis(ApiHandlers):
    """The request handlers, over the services a BrokerServer wired. Not thread-safe: the event
    loop's thread alone uses it."""

    api_table: ApiTable = APIS

    def __init__(self, broker: "BrokerServer") -> None:
        super().__init__()
        self.broker = broker
        self._time_ms = broker.time_ms
        self.log_manager = broker.log_manager
        self.topics = broker.topics
        self.replica_manager = broker.replica_manager
        self.producer_ids = broker.producer_ids
        self.client_quotas = BrokerClientQuotas(broker)
        self.fetch_manager = FetchManager(
            broker.config.max_incremental_fetch_session_cache_slots,
            broker.config.min_incremental_fetch_session_eviction_ms,
            broker.time_ms,
        )
        self._handlers |= {
            ApiKeys.METADATA: self.handle_metadata,
            ApiKeys.PRODUCE: self.handle_produce,
            ApiKeys.FETCH: self.handle_fetch,
            ApiKeys.LIST_OFFSETS: self.handle_list_offsets,
            ApiKeys.DELETE_RECORDS: self.handle_delete_records,
            ApiKeys.CREATE_TOPICS: self.handle_create_topics,
            ApiKeys.DELETE_TOPICS: self.handle_delete_topics,
            ApiKeys.CREATE_PARTITIONS: self.handle_create_partitions,
            ApiKeys.DESCRIBE_CONFIGS: self.handle_describe_configs,
            ApiKeys.INCREMENTAL_ALTER_CONFIGS: self.handle_alter_configs,
            ApiKeys.ALTER_CONFIGS: self.handle_alter_configs,
            ApiKeys.INIT_PRODUCER_ID: self.handle_init_producer_id,
            ApiKeys.OFFSET_FOR_LEADER_EPOCH: self.handle_offset_for_leader_epoch,
            ApiKeys.FIND_COORDINATOR: self.handle_find_coordinator,
            ApiKeys.JOIN_GROUP: self.handle_join_group,
            ApiKeys.SYNC_GROUP: self.handle_sync_group,
            ApiKeys.HEARTBEAT: self.handle_heartbeat,
            ApiKeys.LEAVE_GROUP: self.handle_leave_group,
            ApiKeys.OFFSET_COMMIT: self.handle_offset_commit,
            ApiKeys.OFFSET_FETCH: self.handle_offset_fetch,
            ApiKeys.DESCRIBE_GROUPS: self.handle_describe_groups,
            ApiKeys.LIST_GROUPS: self.handle_list_groups,
            ApiKeys.DELETE_GROUPS: self.handle_delete_groups,
            ApiKeys.OFFSET_DELETE: self.handle_offset_delete,
        }
        self._handlers.update(cluster_admin_handlers(self))
        self._handlers.update(acl_handlers(self))
        self._handlers.update(client_quota_handlers(self))
        self._handlers.update(transaction_handlers(self))
        for key, local in replica_admin_handlers(self).items():
            self._handlers[key] = self._forwarded_in_a_cluster(local)
        # last: every handler behind its ACL check (engine/broker/api_authorization.py)
        self.authorizer: StandardAuthorizer | None = None
        if broker.config.authorizer_class_name:
            self.authorizer = StandardAuthorizer(
                broker.config, lambda: broker.metadata_cache.image, broker.cluster is not None
            )
            self._handlers = authorized_handlers(self, self.authorizer, self._handlers)

    def _forwarded_in_a_cluster(
        self, local: Callable[[RequestContext, ApiMessage, Respond], None]
    ) -> Callable[[RequestContext, ApiMessage, Respond], None]:
        """A handler that a cluster member forwards to the controller instead."""

        def handle(context: RequestContext, request: ApiMessage, respond: Respond) -> None:
            if self.broker.cluster is not None:
                self._forward(context, request, respond)
            else:
                local(context, request, respond)

        return handle

    @property
    def group_coordinator(self) -> GroupCoordinator:
        return self.broker.group_coordinator  # replaced when the coordinator moves (a cluster)

    @property
    def config(self) -> KafkaConfig:
        return self.broker.config  # the advertised listener is known only after bind

    # -- Metadata -------------------------------------------------------------------------------
    def handle_metadata(
        self, context: RequestContext, request: ApiMessage, respond: Respond
    ) -> None:
        """Answered from the cluster image (engine/metadata), one image per request."""
        version = context.api_version
        response_class = self._response_class(context)
        topic_class = response_class.MetadataResponseTopic
        image = self.broker.metadata_cache.image
        if request.topics is None or (version == 0 and not request.topics):
            names = sorted(image.topics)
        else:
            names = [t.name for t in request.topics if t.name is not None]
        auto_create = self.config.auto_create_topics_enable and (
            version < 4 or request.allow_auto_topic_creation
        )
        topics = []
        for name in names:
            topic = image.topics.get(name)
            error = NONE
            if topic is None and auto_create and self.broker.cluster is not None:
                self._create_in_cluster(name)  # the client retries until it exists
                error = LEADER_NOT_AVAILABLE
            elif topic is None and auto_create:
                try:
                    self.topics.create_topic(name)
                except TopicAdminError as exc:
                    error = exc.error_code
                image = self.broker.metadata_cache.image  # with the new topic
                topic = image.topics.get(name)
            elif topic is None:
                error = UNKNOWN_TOPIC_OR_PARTITION
            if topic is None:
                topics.append(topic_class(error_code=error or LEADER_NOT_AVAILABLE, name=name))
                continue
            topics.append(
                topic_class(
                    error_code=NONE,
                    name=name,
                    topic_id=topic.topic_id,
                    is_internal=topic.internal,
                    partitions=[
                        topic_class.MetadataResponsePartition(
                            error_code=NONE
                            if image.leader_of(name, index) is not None
                            else LEADER_NOT_AVAILABLE,
                            partition_index=index,
                            leader_id=p.leader
                            if image.leader_of(name, index) is not None
                            else NO_LEADER,
                            leader_epoch=p.leader_epoch,
                            replica_nodes=list(p.replicas),
                            isr_nodes=list(p.isr),
                            offline_replicas=p.offline_replicas(image.brokers),
                        )
                        for index, p in sorted(topic.partitions.items())
                    ],
                )
            )
        brokers = [
            response_class.MetadataResponseBroker(
                node_id=b.node_id, host=b.host, port=b.port, rack=b.rack
            )
            for b in image.alive_brokers()
        ]
        self._reply(
            context,
            respond,
            response_class(
                throttle_time_ms=0,
                brokers=brokers,
                cluster_id=image.cluster_id,
                # clients cannot reach a KRaft controller: Kafka names a live broker instead
                controller_id=image.controller_id
                if image.controller_id >= 0
                else (brokers[0].node_id if brokers else -1),
                topics=topics,
            ),
        )

    # -- Produce --------------------------------------------------------------------------------
    def handle_produce(
        self, context: RequestContext, request: ApiMessage, respond: Respond
    ) -> None:
        entries = {
            TopicPartition(t.name, p.index): p.records
            for t in request.topic_data
            for p in t.partition_data
        }
        if request.transactional_id is None and any(
            first_batch_is_transactional(r) for r in entries.values()
        ):
            # Kafka (RequestUtils.hasTransactionalRecords): transactional batches without a
            # transactional id fail the whole request, before any partition is looked at
            self._produce_response(
                context,
                respond,
                dict.fromkeys(entries),
                error=TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
            )
            return

        def complete(results: dict[TopicPartition, ProduceResult]) -> None:
            throttle_ms = self.client_quotas.produce_throttle_ms(context)  # mutes, acks=0 too
            if request.acks == 0:
                respond(None)
            else:
                self._produce_response(context, respond, results, throttle_ms=throttle_ms)

        self.replica_manager.append_records(request.acks, entries, complete, request.timeout_ms)

    def _produce_response(
        self,
        context: RequestContext,
        respond: Respond,
        results: Mapping[TopicPartition, ProduceResult | None],
        error: int = NONE,
        throttle_ms: int = 0,
    ) -> None:
        by_topic: dict[str, list[PartitionProduceResponse]] = {}
        for tp, result in results.items():
            if result is None:  # as Kafka's ProduceRequest.getErrorResponse: offsets -1
                partition = PartitionProduceResponse(tp.partition, error, -1)
            else:
                partition = PartitionProduceResponse(
                    tp.partition,
                    result.error_code,
                    result.base_offset,
                    result.log_append_time_ms,
                    result.log_start_offset,
                    result.error_message,
                )
            by_topic.setdefault(tp.topic, []).append(partition)
        respond(
            [
                encode_produce_response(
                    context.api_version,
                    context.header.correlation_id,
                    list(by_topic.items()),
                    throttle_ms,
                )
            ]
        )

    # -- Fetch ----------------------------------------------------------------------------------
    def handle_fetch(self, context: RequestContext, request: ApiMessage, respond: Respond) -> None:
        version = context.header.request_api_version
        if version < 15:
            replica_id = request.replica_id
        else:  # v15+: a tagged ReplicaState, absent for a consumer (KIP-903)
            replica_id = -1 if request.replica_state is None else request.replica_state.replica_id
        consumer = replica_id < 0  # consumers' fetches count against their quotas
        max_bytes = (
            self.client_quotas.fetch_max_bytes(context, request.max_bytes)
            if consumer
            else request.max_bytes
        )
        params = FetchParams(
            max_wait_ms=request.max_wait_ms,
            min_bytes=min(request.min_bytes, max_bytes),
            max_bytes=max_bytes,
            isolation=fetch_isolation(request.isolation_level),
            replica_id=replica_id,  # >= 0: a follower broker
            client_rack=(request.rack_id or "") if version >= 11 and consumer else None,
        )
        # a fetch session (KIP-227) says which partitions are read and which are answered
        fetch_context = self.fetch_manager.new_context(
            version, request, not consumer, self.broker.metadata_cache.image
        )
        partitions = fetch_context.partitions
        fetch_offsets = {p.tp: p.fetch_offset for p in partitions}
        refused: list[FetchPartitionData] = []
        if self.authorizer is not None:
            partitions, refused = refused_fetches(self.authorizer, context, replica_id, partitions)

        def complete(results: list[FetchPartitionData]) -> None:
            if refused:  # the session's order: the refused ones where they were asked
                by_tp = {r.tp: r for r in [*results, *refused]}
                results = [by_tp[p.tp] for p in fetch_context.partitions]
            error, session_id, topics = fetch_context.response(results)
            if params.isolation is FetchIsolation.TXN_COMMITTED:  # read_committed
                read = {r.tp: r.records for r in results}
                for topic in topics:
                    for p in topic.partitions:
                        tp = TopicPartition(topic.topic, p.partition_index)
                        if tp in read:
                            p.aborted_transactions = aborted_transactions(
                                self.replica_manager,
                                tp,
                                fetch_offsets[tp],
                                params.isolation,
                                read[tp],
                            )
            frame = encode_fetch_response(
                version, context.header.correlation_id, 0, error, session_id, topics
            )
            respond(self.client_quotas.fetch_response(context, frame) if consumer else frame)

        if fetch_context.error != NONE:
            complete([])
        else:
            self.replica_manager.fetch_messages(params, partitions, complete)

    # -- ListOffsets ----------------------------------------------------------------------------
    def handle_list_offsets(
        self, context: RequestContext, request: ApiMessage, respond: Respond
    ) -> None:
        response_class = self._response_class(context)
        topic_class = response_class.ListOffsetsTopicResponse
        partition_class = topic_class.ListOffsetsPartitionResponse
        topics = []
        for t in request.topics:
            partitions = []
            for p in t.partitions:
                partition = self.topics.partition(TopicPartition(t.name, p.partition_index))
                error = list_offsets_error(partition, p, context.api_version)
                if error != NONE:
                    partitions.append(
                        partition_class(
                            partition_index=p.partition_index,
                            error_code=error,
                            timestamp=-1,
                            offset=-1,
                        )
                    )
                    continue
                assert partition is not None  # list_offsets_error answered for a missing one
                timestamp, offset = self._offset_for(partition, p.timestamp)
                if p.timestamp == LATEST_TIMESTAMP and request.isolation_level == READ_COMMITTED:
                    offset = partition.log.last_stable_offset
                partitions.append(
                    partition_class(
                        partition_index=p.partition_index,
                        error_code=NONE,
                        timestamp=timestamp,
                        offset=offset,
                        leader_epoch=partition.leader_epoch if offset >= 0 else -1,
                    )
                )
            topics.append(topic_class(name=t.name, partitions=partitions))
        self._reply(context, respond, response_class(throttle_time_ms=0, topics=topics))

    @staticmethod
    def _offset_for(partition: Partition, timestamp: int) -> tuple[int, int]:
        """(timestamp, offset), as Kafka 4.0's UnifiedLog.fetchOffsetByTimestamp answers them
        without tiered storage: the local log is the whole log, nothing is tiered (and
        ListOffsets v10's TimeoutMs, for reads from remote storage, has nothing to wait for)."""
        log = partition.log
        if timestamp in (EARLIEST_TIMESTAMP, EARLIEST_LOCAL_TIMESTAMP):
            return -1, log.log_start_offset
        if timestamp == LATEST_TIERED_TIMESTAMP:
            return -1, -1
        if timestamp == LATEST_TIMESTAMP:
            # read_uncommitted: the high watermark (read_committed: the LSO, see the caller)
            return -1, log.high_watermark
        if timestamp == MAX_TIMESTAMP:
            best = max(
                (s for s in log.segments if s.size),
                key=lambda s: s.max_timestamp,
                default=None,
            )
            if best is None:
                return -1, -1
            return best.max_timestamp, best.offset_of_max_timestamp
        found = log.fetch_offset_by_timestamp(timestamp)
        if found is None or found[1] >= log.high_watermark:
            return -1, -1
        return found

    # -- DeleteRecords --------------------------------------------------------------------------
    def handle_delete_records(
        self, context: RequestContext, request: ApiMessage, respond: Respond
    ) -> None:
        """Each partition's log start offset moves on its leader (here) and then on its
        followers; the answer carries the low watermark, the smallest log start offset among
        the live replicas. An acknowledged deletion is in the log-start-offset-checkpoint
        already (Kafka writes it within log.flush.start.offset.checkpoint.interval.ms), so
        neither a restart nor a crash brings the records back."""
        response_class = self._response_class(context)
        topic_class = response_class.DeleteRecordsTopicResult
        image = self.broker.metadata_cache.image
        errors: dict[TopicPartition, int] = {}
        offsets: dict[TopicPartition, int] = {}
        for t in request.topics:
            topic = image.topics.get(t.name)
            for p in t.partitions:
                tp = TopicPartition(t.name, p.partition_index)
                if topic is None or p.partition_index not in topic.partitions:
                    errors[tp] = UNKNOWN_TOPIC_OR_PARTITION
                else:
                    offsets[tp] = p.offset

        def complete(deleted: dict[TopicPartition, int]) -> None:
            if NONE in deleted.values() and not self.log_manager.checkpoint():
                deleted = {tp: e if e != NONE else KAFKA_STORAGE_ERROR for tp, e in deleted.items()}
            by_topic: dict[str, list[ApiMessage]] = {}
            for tp, error in {**errors, **deleted}.items():
                partition = self.topics.partition(tp)
                low = (
                    partition.low_watermark
                    if partition is not None
                    and partition.is_leader
                    and error in (NONE, REQUEST_TIMED_OUT)
                    else -1
                )
                by_topic.setdefault(tp.topic, []).append(
                    topic_class.DeleteRecordsPartitionResult(
                        partition_index=tp.partition, low_watermark=low, error_code=error
                    )
                )
            topics = [topic_class(name=name, partitions=ps) for name, ps in by_topic.items()]
            self._reply(context, respond, response_class(throttle_time_ms=0, topics=topics))

        self.replica_manager.delete_records(offsets, request.timeout_ms, complete)

    # -- topic admin ----------------------------------------------------------------------------
    def handle_create_topics(
        self, context: RequestContext, request: ApiMessage, respond: Respond
    ) -> None:
        if self.broker.cluster is not None:
            self._forward(context, request, respond)
            return
        response_class = self._response_class(context)
        results = []
        for t in request.topics:
            error, message = NONE, None
            configs = {c.name: c.value for c in t.configs}
            try:
                num_partitions, replication_factor = t.num_partitions, t.replication_factor
                if t.assignments:
                    num_partitions = self._check_assignment(
                        {a.partition_index: list(a.broker_ids) for a in t.assignments}, t
                    )
                    replication_factor = 1
                self.topics.create_topic(
                    t.name,
                    num_partitions,
                    replication_factor,
                    configs,
                    validate_only=request.validate_only,
                )
            except TopicAdminError as exc:
                error, message = exc.error_code, str(exc)
            topic = self.topics.topics.get(t.name)
            results.append(
                response_class.CreatableTopicResult(
                    name=t.name,
                    topic_id=topic.topic_id if topic and error == NONE else None,
                    error_code=error,
                    error_message=message,
                    num_partitions=len(topic.partitions) if topic and error == NONE else -1,
                    replication_factor=1 if error == NONE else -1,
                    configs=[],
                )
            )
        self._reply(context, respond, response_class(throttle_time_ms=0, topics=results))

    def handle_delete_topics(
        self, context: RequestContext, request: ApiMessage, respond: Respond
    ) -> None:
        if self.broker.cluster is not None:
            self._forward(context, request, respond)
            return
        response_class = self._response_class(context)
        if context.header.request_api_version >= 6:
            names = [t.name for t in request.topics]
        else:
            names = list(request.topic_names)
        results = []
        for name in names:
            error, message, topic_id = NONE, None, None
            try:
                topic_id = self.topics.delete_topic(name).topic_id
            except TopicAdminError as exc:
                error, message = exc.error_code, str(exc)
            results.append(
                response_class.DeletableTopicResult(
                    name=name, topic_id=topic_id, error_code=error, error_message=message
                )
            )
        self._reply(context, respond, response_class(throttle_time_ms=0, responses=results))

    def handle_create_partitions(
        self, context: RequestContext, request: ApiMessage, respond: Respond
    ) -> None:
        if self.broker.cluster is not None:
            self._forward(context, request, respond)
            return
        response_class = self._response_class(context)
        results = []
        for t in request.topics:
            error, message = NONE, None
            try:
                topic = self.topics.topics.get(t.name)
                if t.assignments and topic is not None and t.count > len(topic.partitions):
                    self._check_new_partitions(t, len(topic.partitions))
                self.topics.create_partitions(t.name, t.count, request.validate_only)
            except TopicAdminError as exc:
                error, message = exc.error_code, str(exc)
            results.append(
                response_class.CreatePartitionsTopicResult(
                    name=t.name, error_code=error, error_message=message
                )
            )
        self._reply(context, respond, response_class(throttle_time_ms=0, results=results))

    def _check_assignment(self, replicas: dict[int, list[int]], topic: ApiMessage) -> int:
        """A single broker's check of CreateTopics' manual assignment (every replica on it, as
        the only broker registered): the partition count it gives, or TopicAdminError."""
        check_assignment_counts(topic.num_partitions, topic.replication_factor)
        error = manual_assignment_error(replicas, {self.config.node_id})
        if error:
            raise TopicAdminError(INVALID_REPLICA_ASSIGNMENT, error)
        return len(replicas)

    def _check_new_partitions(self, topic: ApiMessage, current: int) -> None:
        """A single broker's check of CreatePartitions' manual assignment."""
        new = range(current, topic.count)
        if len(topic.assignments) != len(new):
            raise TopicAdminError(
                INVALID_REPLICA_ASSIGNMENT,
                f"Attempted to add {len(new)} additional partition(s), but only "
                f"{len(topic.assignments)} assignment(s) were specified.",
            )
        replicas = {p: list(a.broker_ids) for p, a in zip(new, topic.assignments, strict=True)}
        error = manual_assignment_error(replicas, {self.config.node_id}, current, 1)
        if error:
            raise TopicAdminError(INVALID_REPLICA_ASSIGNMENT, error)

    def _forward(self, context: RequestContext, request: ApiMessage, respond: Respond) -> None:
        """A cluster member passes admin requests to the controller, as Kafka forwards them, and
        answers once its own metadata shows the result (or the request's timeout passes), so
        a client that created a topic finds it here at once. While the controller cannot be
        reached the forward is retried every 100 ms until the request's timeout; then the
        client gets REQUEST_TIMED_OUT in a bare error frame and retries on a new connection."""
        cluster = self.broker.cluster
        assert cluster is not None
        response_class = self._response_class(context)
        timeout_ms = getattr(request, "timeout_ms", 30_000)
        deadline = self._time_ms() + timeout_ms

        def send() -> None:
            cluster.client.send(cluster.controller, request, response_class, answered)

        def answered(response: ApiMessage | None, error: Exception | None) -> None:
            if response is None:
                if self._time_ms() + _FORWARD_RETRY_MS < deadline:
                    cluster.call_later(_FORWARD_RETRY_MS, send)
                    return
                log.info("forwarding %s failed: %s", type(request).__name__, error)
                respond([encode_error_frame(context.header.correlation_id, REQUEST_TIMED_OUT)])
                return
            cluster.when_metadata_shows(
                lambda image: _admin_result_visible(request, response, image),
                timeout_ms,
                lambda: self._reply(context, respond, response),
            )

        send()

    def _create_in_cluster(
        self, name: str, num_partitions: int = -1, configs: Mapping[str, str] | None = None
    ) -> None:
        """Auto-creation in a cluster: ask the controller, answer the client without waiting."""
        cluster = self.broker.cluster
        assert cluster is not None
        cls = APIS[ApiKeys.CREATE_TOPICS][0][5]
        request = cls(
            topics=[
                cls.CreatableTopic(
                    name=name,
                    num_partitions=num_partitions,
                    replication_factor=-1,
                    assignments=[],
                    configs=[
                        cls.CreatableTopic.CreatableTopicConfig(name=k, value=v)
                        for k, v in (configs or {}).items()
                    ],
                )
            ],
            timeout_ms=30_000,
            validate_only=False,
        )
        cluster.client.send(
            cluster.controller, request, APIS[ApiKeys.CREATE_TOPICS][1], lambda r, e: None
        )

    def handle_describe_configs(
        self, context: RequestContext, request: ApiMessage, respond: Respond
    ) -> None:
        response_class = self._response_class(context)
        result_class = response_class.DescribeConfigsResult
        entry_class = result_class.DescribeConfigsResourceResult
        synonym_class = entry_class.DescribeConfigsSynonym
        results = []
        for resource in request.resources:
            try:
                entries = self._described(resource.resource_type, resource.resource_name)
                error, message = NONE, None
            except TopicAdminError as exc:
                entries, error, message = [], exc.error_code, str(exc)
            wanted = resource.configuration_keys
            configs = [
                entry_class(
                    name=e.name,
                    value=e.value,
                    read_only=e.read_only,
                    config_source=e.source,
                    is_default=e.source == ConfigSourceType.DEFAULT_CONFIG,
                    is_sensitive=e.sensitive,
                    synonyms=[
                        synonym_class(name=s.name, value=s.value, source=s.source)
                        for s in (e.synonyms if request.include_synonyms else ())
                    ],
                    config_type=e.config_type,
                    documentation=e.documentation if request.include_documentation else None,
                )
                for e in entries
                if wanted is None or e.name in wanted
            ]
            results.append(
                result_class(
                    error_code=error,
                    error_message=message,
                    resource_type=resource.resource_type,
                    resource_name=resource.resource_name,
                    configs=configs,
                )
            )
        self._reply(context, respond, response_class(throttle_time_ms=0, results=results))

    def _described(self, resource_type: int, name: str) -> list[config_helper.ConfigEntry]:
        """The entries of one resource, or TopicAdminError with Kafka's code (ConfigHelper)."""
        image = self.broker.metadata_cache.image
        cluster_default = image.configs.get((ConfigResourceType.BROKER, ""), {})
        if resource_type == ConfigResourceType.TOPIC:
            try:
                validate_topic_name(name)
            except ValueError as exc:
                raise TopicAdminError(INVALID_TOPIC_EXCEPTION, str(exc)) from None
            if self.broker.cluster is not None:
                exists, overrides = name in image.topics, image.topic_configs(name)
            else:
                topic = self.topics.topics.get(name)
                exists, overrides = topic is not None, topic.configs if topic else {}
            if not exists:
                raise TopicAdminError(
                    UNKNOWN_TOPIC_OR_PARTITION, f"The topic '{name}' does not exist."
                )
            dynamic = image.configs.get((ConfigResourceType.BROKER, str(self.config.node_id)), {})
            return config_helper.topic_configs(self.config, overrides, dynamic, cluster_default)
        if resource_type not in (ConfigResourceType.BROKER, ConfigResourceType.BROKER_LOGGER):
            raise TopicAdminError(INVALID_REQUEST, f"Unsupported resource type {resource_type}")
        if resource_type == ConfigResourceType.BROKER and name == "":
            return config_helper.default_broker_configs(cluster_default)
        node_id = self.config.node_id
        if not name.strip().lstrip("-").isdigit():
            raise TopicAdminError(
                INVALID_REQUEST, f"Broker id must be an integer, but it is: {name}"
            )
        if int(name) != node_id:
            raise TopicAdminError(
                INVALID_REQUEST,
                f"Unexpected broker id, expected {node_id} or empty string, but received {name}",
            )
        if resource_type == ConfigResourceType.BROKER_LOGGER:
            return config_helper.broker_logger_configs()
        return config_helper.broker_configs(
            self.config,
            image.configs.get((ConfigResourceType.BROKER, name), {}),
            cluster_default,
            reveal_paths=self.config.describe_configs_paths_enable,
        )

    def handle_alter_configs(
        self, context: RequestContext, request: ApiMessage, respond: Respond
    ) -> None:
        """IncrementalAlterConfigs and AlterConfigs: a cluster member forwards them (the
        controller writes ConfigRecords); a single broker keeps topic configs with its topics
        and broker configs in its DynamicConfigStore."""
        if self.broker.cluster is not None:
            self._forward(context, request, respond)
            return
        incremental = context.header.request_api_key == ApiKeys.INCREMENTAL_ALTER_CONFIGS
        response_class = self._response_class(context)
        store = self.broker.dynamic_configs
        assert store is not None
        results = []
        for resource in request.resources:
            kind, name = resource.resource_type, resource.resource_name
            error, message = NONE, None
            try:
                if kind == ConfigResourceType.TOPIC:
                    topic = self.topics.topics.get(name)
                    if topic is None:
                        raise ConfigAlterError(
                            UNKNOWN_TOPIC_OR_PARTITION, f"The topic '{name}' does not exist."
                        )
                    current: Mapping[str, str] = topic.configs
                else:
                    current = store.configs.get(name, {})
                configs = altered_configs(
                    kind,
                    name,
                    current,
                    request_ops(resource, incremental),
                    incremental,
                    dataclasses.replace(self.config, log=self.broker.static_log),
                    store.configs.get(CLUSTER_DEFAULT, {}),
                )
                if not request.validate_only:
                    if kind == ConfigResourceType.TOPIC:
                        self.topics.update_configs(name, configs)
                    else:
                        self.broker.store_dynamic_configs(name, configs)
            except ConfigAlterError as exc:
                error, message = exc.error_code, str(exc)
            results.append(
                response_class.AlterConfigsResourceResponse(
                    error_code=error, error_message=message, resource_type=kind, resource_name=name
                )
            )
        self._reply(context, respond, response_class(throttle_time_ms=0, responses=results))

    # -- OffsetForLeaderEpoch -------------------------------------------------------------------
    def handle_offset_for_leader_epoch(
        self, context: RequestContext, request: ApiMessage, respond: Respond
    ) -> None:
        response_class = self._response_class(context)
        topic_class = response_class.OffsetForLeaderTopicResult
        partition_class = topic_class.EpochEndOffset
        topics = []
        for topic in request.topics:
            partitions = []
            for wanted in topic.partitions:
                error, epoch, end = self.replica_manager.last_offset_for_leader_epoch(
                    TopicPartition(topic.topic, wanted.partition),
                    wanted.current_leader_epoch,
                    wanted.leader_epoch,
                )
                partitions.append(
                    partition_class(
                        error_code=error,
                        partition=wanted.partition,
                        leader_epoch=epoch,
                        end_offset=end,
                    )
                )
            topics.append(topic_class(topic=topic.topic, partitions=partitions))
        self._reply(context, respond, response_class(throttle_time_ms=0, topics=topics))

    # -- producers ------------------------------------------------------------------------------
    def handle_init_producer_id(
        self, context: RequestContext, request: ApiMessage, respond: Respond
    ) -> None:
        """Idempotent producers (a transactional id goes to transaction_apis.py)."""
        response_class = self._response_class(context)

        def complete(error: int, producer_id: int) -> None:  # idempotent: a fresh id, epoch 0
            self._reply(
                context,
                respond,
                response_class(
                    throttle_time_ms=0,
                    error_code=error,
                    producer_id=producer_id,
                    producer_epoch=0 if error == NONE else -1,
                ),
            )

        self.producer_ids.generate_producer_id(complete)

    # -- groups ---------------------------------------------------------------------------------
    def handle_find_coordinator(
        self, context: RequestContext, request: ApiMessage, respond: Respond
    ) -> None:
        """Every group's coordinator is the leader of __consumer_offsets' one partition, every
        transactional id's that of __transaction_state's (transaction_apis.py)."""
        response_class = self._response_class(context)
        if context.api_version >= 1 and request.key_type == TRANSACTION_KEY_TYPE:
            topic = ensure_transaction_state(self)
        else:
            topic = CONSUMER_OFFSETS
        image = self.broker.metadata_cache.image
        leader = image.leader_of(topic, 0)
        error = NONE if leader is not None else COORDINATOR_NOT_AVAILABLE
        if CONSUMER_OFFSETS not in image.topics and self.broker.cluster is not None:
            # made on first use, as Kafka does, with offsets.topic.replication.factor replicas
            self._create_in_cluster(CONSUMER_OFFSETS, 1, OFFSETS_TOPIC_CONFIGS)
        node_id, host, port = (
            (leader.node_id, leader.host, leader.port) if leader is not None else (-1, "", -1)
        )
        if context.api_version >= 4:
            coordinators = [
                response_class.Coordinator(
                    key=key,
                    node_id=node_id,
                    host=host,
                    port=port,
                    error_code=error,
                    error_message=None,
                )
                for key in request.coordinator_keys
            ]
            response = response_class(throttle_time_ms=0, coordinators=coordinators)
        else:
            response = response_class(
                throttle_time_ms=0,
                error_code=error,
                error_message=None,
                node_id=node_id,
                host=host,
                port=port,
            )
        self._reply(context, respond, response)

    def handle_join_group(
        self, context: RequestContext, request: ApiMessage, respond: Respond
    ) -> None:
        response_class = self._response_class(context)
        version = context.header.request_api_version

        def complete(result: JoinGroupResult) -> None:
            self._reply(
                context,
                respond,
                response_class(
                    throttle_time_ms=0,
                    error_code=result.error_code,
                    generation_id=result.generation_id,
                    protocol_type=result.protocol_type,
                    # nullable only from v7; Kafka sends "" before
                    protocol_name=result.protocol_name
                    if version >= 7
                    else result.protocol_name or "",
                    leader=result.leader,
                    skip_assignment=False,
                    member_id=result.member_id,
                    members=[
                        response_class.JoinGroupResponseMember(
                            member_id=member_id, group_instance_id=instance_id, metadata=metadata
                        )
                        for member_id, instance_id, metadata in result.members
                    ],
                ),
            )

        self.group_coordinator.join_group(
            group_id=request.group_id,
            member_id=request.member_id,
            group_instance_id=request.group_instance_id if version >= 5 else None,
            client_id=context.header.client_id or "",
            client_host="/127.0.0.1",
            session_timeout_ms=request.session_timeout_ms,
            rebalance_timeout_ms=(
                request.rebalance_timeout_ms if version >= 1 else request.session_timeout_ms
            ),
            protocol_type=request.protocol_type,
            protocols=[(p.name, p.metadata) for p in request.protocols],
            require_known_member_id=version >= 4,
            respond=complete,
        )

    def handle_sync_group(
        self, context: RequestContext, request: ApiMessage, respond: Respond
    ) -> None:
        response_class = self._response_class(context)
        version = context.header.request_api_version

        def complete(result: SyncGroupResult) -> None:
            self._reply(
                context,
                respond,
                response_class(
                    throttle_time_ms=0,
                    error_code=result.error_code,
                    protocol_type=result.protocol_type,
                    protocol_name=result.protocol_name,
                    assignment=result.assignment,
                ),
            )

        self.group_coordinator.sync_group(
            group_id=request.group_id,
            generation_id=request.generation_id,
            member_id=request.member_id,
            group_instance_id=request.group_instance_id if version >= 3 else None,
            protocol_type=request.protocol_type if version >= 5 else None,
            protocol_name=request.protocol_name if version >= 5 else None,
            assignments=[(a.member_id, a.assignment) for a in request.assignments],
            respond=complete,
        )

    def handle_heartbeat(
        self, context: RequestContext, request: ApiMessage, respond: Respond
    ) -> None:
        error = self.group_coordinator.heartbeat(
            group_id=request.group_id,
            generation_id=request.generation_id,
            member_id=request.member_id,
            group_instance_id=(
                request.group_instance_id if context.header.request_api_version >= 3 else None
            ),
        )
        response_class = self._response_class(context)
        self._reply(context, respond, response_class(throttle_time_ms=0, error_code=error))

    def handle_leave_group(
        self, context: RequestContext, request: ApiMessage, respond: Respond
    ) -> None:
        response_class = self._response_class(context)
        if context.header.request_api_version >= 3:
            members = [(m.member_id, m.group_instance_id) for m in request.members]
        else:
            members = [(request.member_id, None)]
        result = self.group_coordinator.leave_group(group_id=request.group_id, members=members)
        error = result.error_code
        if context.header.request_api_version < 3 and result.members:
            error = error or result.members[0][2]
        self._reply(
            context,
            respond,
            response_class(
                throttle_time_ms=0,
                error_code=error,
                members=[
                    response_class.MemberResponse(
                        member_id=member_id, group_instance_id=instance_id, error_code=code
                    )
                    for member_id, instance_id, code in result.members
                ],
            ),
        )

    def handle_offset_commit(
        self, context: RequestContext, request: ApiMessage, respond: Respond
    ) -> None:
        response_class = self._response_class(context)
        version = context.header.request_api_version
        now = self._time_ms()
        offsets = [
            CommittedOffset(
                topic=t.name,
                partition=p.partition_index,
                offset=p.committed_offset,
                leader_epoch=p.committed_leader_epoch if version >= 6 else -1,
                metadata=p.committed_metadata,
                commit_timestamp_ms=now,
            )
            for t in request.topics
            for p in t.partitions
        ]
        errors = self.group_coordinator.commit_offsets(
            group_id=request.group_id,
            generation_id=request.generation_id_or_member_epoch,
            member_id=request.member_id,
            group_instance_id=request.group_instance_id if version >= 7 else None,
            offsets=offsets,
        )

        def answer(replication_error: int) -> None:
            topics: dict[str, list] = {}
            topic_class = response_class.OffsetCommitResponseTopic
            for o in offsets:
                error = errors[o.topic, o.partition]
                if error == NONE and replication_error != NONE:
                    error = replication_error
                topics.setdefault(o.topic, []).append(
                    topic_class.OffsetCommitResponsePartition(
                        partition_index=o.partition, error_code=error
                    )
                )
            self._reply(
                context,
                respond,
                response_class(
                    throttle_time_ms=0,
                    topics=[topic_class(name=n, partitions=ps) for n, ps in topics.items()],
                ),
            )

        self._once_replicated(NONE in errors.values(), answer)

    def _once_replicated(self, appended: bool, answer: Callable[[int], None]) -> None:
        """Kafka appends to __consumer_offsets with acks=all: what the coordinator appended is
        acknowledged once on the ISR, so it survives the coordinator's broker (a single
        broker's ISR is itself: at once). answer gets the replication error, as Kafka's
        GroupMetadataManager maps it."""
        offsets_tp = TopicPartition(CONSUMER_OFFSETS, 0)
        partition = self.topics.partition(offsets_tp)
        if partition is None or not appended:
            answer(NONE)
            return
        self.replica_manager.await_replication(
            offsets_tp,
            partition.log.log_end_offset,
            self.config.offsets_commit_timeout_ms,
            lambda error: answer(_COMMIT_ERRORS.get(error, error)),
        )

    def handle_offset_fetch(
        self, context: RequestContext, request: ApiMessage, respond: Respond
    ) -> None:
        response_class = self._response_class(context)
        # v8+ batches groups; before, one group at the top level of both request and response
        batched = context.header.request_api_version >= 8
        stable = context.header.request_api_version >= 7 and request.require_stable
        if batched:
            group_class = response_class.OffsetFetchResponseGroup
            topic_class = group_class.OffsetFetchResponseTopics
            partition_class = topic_class.OffsetFetchResponsePartitions
            requested = [(g.group_id, g.topics) for g in request.groups]
        else:
            topic_class = response_class.OffsetFetchResponseTopic
            partition_class = topic_class.OffsetFetchResponsePartition
            requested = [(request.group_id, request.topics)]

        def committed_topics(group_id: str, topics: list[ApiMessage] | None) -> list[ApiMessage]:
            wanted = None
            if topics is not None:
                wanted = [(t.name, index) for t in topics for index in t.partition_indexes]
            found = self.group_coordinator.fetch_offsets(group_id=group_id, partitions=wanted)
            # v7+: a transaction's offsets not yet committed or aborted are unstable
            pending = self.group_coordinator.pending_txn_partitions(group_id) if stable else set()
            by_topic: dict[str, list] = {}
            for (topic, index), c in sorted(found.items()):
                if (topic, index) in pending:  # as Kafka: no offset, UNSTABLE_OFFSET_COMMIT
                    c = None
                by_topic.setdefault(topic, []).append(
                    partition_class(
                        partition_index=index,
                        committed_offset=c.offset if c else -1,
                        committed_leader_epoch=c.leader_epoch if c else -1,
                        metadata=c.metadata if c else "",
                        error_code=UNSTABLE_OFFSET_COMMIT if (topic, index) in pending else NONE,
                    )
                )
            return [topic_class(name=name, partitions=ps) for name, ps in by_topic.items()]

        error = NONE if self.group_coordinator.active else NOT_COORDINATOR
        if batched:
            groups = [
                group_class(
                    group_id=g,
                    error_code=error,
                    topics=committed_topics(g, topics) if error == NONE else [],
                )
                for g, topics in requested
            ]
            response = response_class(throttle_time_ms=0, groups=groups)
        else:
            [(group_id, topics)] = requested
            response = response_class(
                throttle_time_ms=0,
                error_code=error,
                topics=committed_topics(group_id, topics) if error == NONE else [],
            )
        self._reply(context, respond, response)

    def handle_delete_groups(
        self, context: RequestContext, request: ApiMessage, respond: Respond
    ) -> None:
        response_class = self._response_class(context)
        errors = self.group_coordinator.delete_groups(list(request.groups_names))

        def answer(replication_error: int) -> None:
            results = [
                response_class.DeletableGroupResult(
                    group_id=group_id, error_code=error or replication_error
                )
                for group_id, error in errors.items()
            ]
            self._reply(context, respond, response_class(throttle_time_ms=0, results=results))

        self._once_replicated(NONE in errors.values(), answer)

    def handle_offset_delete(
        self, context: RequestContext, request: ApiMessage, respond: Respond
    ) -> None:
        response_class = self._response_class(context)
        topic_class = response_class.OffsetDeleteResponseTopic
        error, errors = self.group_coordinator.delete_offsets(
            request.group_id,
            [(t.name, p.partition_index) for t in request.topics for p in t.partitions],
        )

        def answer(replication_error: int) -> None:
            topics: dict[str, list[ApiMessage]] = {}
            for (topic, index), code in errors.items():
                topics.setdefault(topic, []).append(
                    topic_class.OffsetDeleteResponsePartition(
                        partition_index=index, error_code=code
                    )
                )
            self._reply(
                context,
                respond,
                response_class(
                    error_code=error or replication_error,
                    throttle_time_ms=0,
                    # a group error (or a failed write) answers for every partition
                    topics=[]
                    if error or replication_error
                    else [topic_class(name=name, partitions=ps) for name, ps in topics.items()],
                ),
            )

        self._once_replicated(error == NONE and NONE in errors.values(), answer)

    def handle_describe_groups(
        self, context: RequestContext, request: ApiMessage, respond: Respond
    ) -> None:
        response_class = self._response_class(context)
        group_class = response_class.DescribedGroup
        member_class = group_class.DescribedGroupMember
        # DescribeGroupsResponse's authorized operations are a set of bits in kafka-python
        operations = (
            set(GROUP_OPERATIONS)
            if context.api_version >= 3 and request.include_authorized_operations
            else None
        )
        groups = []
        for g in self.group_coordinator.describe_groups(list(request.groups)):
            error, message = g.error_code, None
            if error == GROUP_ID_NOT_FOUND:  # before v6 (KIP-1043) a Dead group, no error
                error = error if context.api_version >= 6 else NONE
                message = f"Group {g.group_id} not found." if error else None
            groups.append(
                group_class(
                    error_code=error,
                    error_message=message,
                    group_id=g.group_id,
                    group_state=g.state,
                    protocol_type=g.protocol_type,
                    protocol_data=g.protocol,
                    # the coordinator's DescribedGroupMember has the schema's field names
                    members=[member_class(**asdict(m)) for m in g.members],
                    authorized_operations=operations if error == NONE else None,
                )
            )
        self._reply(context, respond, response_class(throttle_time_ms=0, groups=groups))

    def handle_list_groups(
        self, context: RequestContext, request: ApiMessage, respond: Respond
    ) -> None:
        response_class = self._response_class(context)
        version = context.api_version
        groups = self.group_coordinator.list_groups(
            request.states_filter if version >= 4 else None,
            request.types_filter if version >= 5 else None,
        )
        self._reply(
            context,
            respond,
            response_class(
                throttle_time_ms=0,
                error_code=NONE,
                groups=[
                    response_class.ListedGroup(
                        group_id=group_id,
                        protocol_type=protocol_type,
                        group_state=state,
                        group_type=CLASSIC_GROUP_TYPE,
                    )
                    for group_id, protocol_type, state in groups
                ],
            ),
        )


def _admin_result_visible(request: ApiMessage, response: ApiMessage, image: ClusterImage) -> bool:
    """Whether this broker's metadata shows what the controller did: the topics it created, the
    partitions it added, no more the topics it deleted."""
    acls = acls_visible(request, response, image)
    if acls is not None:
        return acls
    if isinstance(request, APIS[ApiKeys.CREATE_TOPICS][0]):
        if request.validate_only:
            return True
        return all(t.name in image.topics for t in response.topics if t.error_code == NONE)
    if isinstance(request, APIS[ApiKeys.DELETE_TOPICS][0]):
        return all(t.name not in image.topics for t in response.responses if t.error_code == NONE)
    if isinstance(
        request, (APIS[ApiKeys.ALTER_CONFIGS][0], APIS[ApiKeys.INCREMENTAL_ALTER_CONFIGS][0])
    ):
        return request.validate_only or _configs_visible(request, response, image)
    if isinstance(request, APIS[ApiKeys.ALTER_CLIENT_QUOTAS][0]):
        return client_quotas_visible(request, response, image)
    if not isinstance(request, APIS[ApiKeys.CREATE_PARTITIONS][0]) or request.validate_only:
        return True
    wanted = {t.name: t.count for t in request.topics}
    return all(
        len(image.topics[r.name].partitions) >= wanted[r.name]
        for r in response.results
        if r.error_code == NONE and r.name in image.topics
    )


def _configs_visible(request: ApiMessage, response: ApiMessage, image: ClusterImage) -> bool:
    """Whether the image holds what the configs alterations the controller accepted set."""
    accepted = {(r.resource_type, r.resource_name) for r in response.responses if not r.error_code}
    incremental = isinstance(request, APIS[ApiKeys.INCREMENTAL_ALTER_CONFIGS][0])
    for resource in request.resources:
        key = (resource.resource_type, resource.resource_name)
        if key not in accepted:
            continue
        shown = image.configs.get(key, {})
        for name, op, value in request_ops(resource, incremental):
            if shown.get(name) != (None if op == DELETE else value):
                return False
    return True


def list_offsets_error(partition: Partition | None, wanted: ApiMessage, version: int) -> int:
    """Kafka's checks before ListOffsets answers: the partition is here and led here, in the
    epoch the client knows (v4+), and, for the latest offset, a new leader's high watermark has
    reached the start of its epoch (v5+: OFFSET_NOT_AVAILABLE until then, so the latest offset
    never goes back; the earliest is always known)."""
    if partition is None:
        return UNKNOWN_TOPIC_OR_PARTITION
    epoch = wanted.current_leader_epoch if version >= 4 else -1
    if 0 <= epoch < partition.leader_epoch:
        return FENCED_LEADER_EPOCH
    if epoch > partition.leader_epoch:
        return UNKNOWN_LEADER_EPOCH
    if not partition.is_leader:
        return NOT_LEADER_OR_FOLLOWER
    if (
        version >= 5
        and wanted.timestamp == LATEST_TIMESTAMP
        and partition.high_watermark < partition.leader_epoch_start_offset
    ):
        return OFFSET_NOT_AVAILABLE
    return NONE
