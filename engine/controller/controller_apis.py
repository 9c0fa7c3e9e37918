"""ControllerApis: the controller's request handlers (Kafka's ControllerApis), over the
QuorumController.

Brokers send BrokerRegistration, BrokerHeartbeat, AlterPartition and AllocateProducerIds, forward
clients' CreateTopics, DeleteTopics, CreatePartitions, IncrementalAlterConfigs and AlterConfigs,
ElectLeaders, AlterPartitionReassignments, ListPartitionReassignments and DescribeQuorum, and
fetch the metadata log with Fetch (topic `__cluster_metadata`, partition 0), long-polling: a
fetch at the log's end waits until a record is written or its max wait passes; what each broker
fetched is what DescribeQuorum says of it. DescribeCluster answers the cluster id (KIP-919),
which a broker with a new log directory takes as its own.

Sans-I/O, as KafkaApis: handlers call `respond` with the response frame's parts, now or later.
Not thread-safe: the controller's event loop alone uses it.
"""

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kafka.protocol.api_message import ApiMessage

from engine.broker.api_handlers import ApiHandlers, Respond
from engine.broker.config import KafkaConfig
from engine.broker.config_admin import ConfigAlterError, request_ops
from engine.broker.replica_admin import (
    ReplicaInfo,
    asks_for_metadata_partition,
    describe_quorum_response,
    describe_quorum_unknown_partition,
    elect_leaders_refused,
    elect_leaders_response,
    election_type,
    host_port,
    list_reassignments_response,
    reassignments_response,
)
from engine.broker.request_context import RequestContext
from engine.broker.topics import TopicAdminError, check_assignment_counts
from engine.controller.acl_control import acl_control_handlers
from engine.controller.client_quota_control import client_quota_controller_handlers
from engine.controller.config_control import config_records
from engine.controller.metadata_log import METADATA_TOPIC, MetadataLog
from engine.controller.quorum_controller import (
    ControllerError,
    CreatedTopic,
    Endpoint,
    QuorumController,
    QuorumReplica,
)
from engine.errors import (
    FENCED_LEADER_EPOCH,
    INVALID_REQUEST,
    NEW_LEADER_ELECTED,
    NONE,
    NOT_LEADER_OR_FOLLOWER,
    UNKNOWN_TOPIC_OR_PARTITION,
    KafkaError,
)
from engine.protocol.apis import CONTROLLER_APIS, ApiKeys, ApiTable
from engine.protocol.fetch_response import (
    FetchPartitionResponse,
    FetchTopicResponse,
    encode_fetch_response,
)

CONTROLLER_LISTENER = "CONTROLLER"  # Kafka's usual controller.listener.names


@dataclass(eq=False)
class _WaitingFetch:
    deadline_ms: int
    context: RequestContext
    request: ApiMessage
    respond: Respond
    done: bool = False


class ControllerApis(ApiHandlers):
    api_table: ApiTable = CONTROLLER_APIS

    def __init__(
        self,
        controller: QuorumController,
        metadata_log: MetadataLog,
        time_ms: Callable[[], int],
        config: KafkaConfig | None = None,
    ) -> None:
        super().__init__()
        self.controller = controller
        self.config = config or KafkaConfig()  # what broker configs are checked against
        self.metadata_log = metadata_log
        self._time_ms = time_ms
        self._waiting: list[tuple[int, int, _WaitingFetch]] = []
        self._sequence = itertools.count()
        self._handlers |= {
            ApiKeys.FETCH: self.handle_fetch,
            ApiKeys.CREATE_TOPICS: self.handle_create_topics,
            ApiKeys.DELETE_TOPICS: self.handle_delete_topics,
            ApiKeys.CREATE_PARTITIONS: self.handle_create_partitions,
            ApiKeys.ALTER_PARTITION: self.handle_alter_partition,
            ApiKeys.DESCRIBE_CLUSTER: self.handle_describe_cluster,
            ApiKeys.BROKER_REGISTRATION: self.handle_broker_registration,
            ApiKeys.BROKER_HEARTBEAT: self.handle_broker_heartbeat,
            ApiKeys.ALLOCATE_PRODUCER_IDS: self.handle_allocate_producer_ids,
            ApiKeys.ELECT_LEADERS: self.handle_elect_leaders,
            ApiKeys.ALTER_PARTITION_REASSIGNMENTS: self.handle_alter_partition_reassignments,
            ApiKeys.LIST_PARTITION_REASSIGNMENTS: self.handle_list_partition_reassignments,
            ApiKeys.DESCRIBE_QUORUM: self.handle_describe_quorum,
            ApiKeys.INCREMENTAL_ALTER_CONFIGS: self.handle_alter_configs,
            ApiKeys.ALTER_CONFIGS: self.handle_alter_configs,
        }
        self._handlers.update(client_quota_controller_handlers(self))
        self._handlers.update(acl_control_handlers(self))

    def handle_describe_cluster(
        self, context: RequestContext, request: Any, respond: Respond
    ) -> None:
        response_class = self._response_class(context)
        image = self.controller.image
        self._reply(
            context,
            respond,
            response_class(
                throttle_time_ms=0,
                error_code=NONE,
                error_message=None,
                endpoint_type=1,
                cluster_id=image.cluster_id,
                controller_id=image.controller_id,
                brokers=[
                    response_class.DescribeClusterBroker(
                        broker_id=b.node_id, host=b.host, port=b.port, rack=b.rack
                    )
                    for b in image.alive_brokers()
                ],
            ),
        )

    # -- broker lifecycle -----------------------------------------------------------------------
    def handle_broker_registration(
        self, context: RequestContext, request: Any, respond: Respond
    ) -> None:
        response_class = self._response_class(context)
        error, epoch = NONE, -1
        try:
            epoch = self.controller.register_broker(
                request.broker_id,
                request.cluster_id,
                request.incarnation_id,
                [Endpoint(e.host, e.port, e.name) for e in request.listeners],
                request.rack,
            )
        except ControllerError as exc:
            error = exc.error_code
        self._reply(
            context,
            respond,
            response_class(throttle_time_ms=0, error_code=error, broker_epoch=epoch),
        )
        self._wake_fetches()

    def handle_broker_heartbeat(
        self, context: RequestContext, request: Any, respond: Respond
    ) -> None:
        response_class = self._response_class(context)
        try:
            result = self.controller.heartbeat(
                request.broker_id,
                request.broker_epoch,
                request.current_metadata_offset,
                request.want_fence,
                request.want_shut_down,
            )
            response = response_class(
                throttle_time_ms=0,
                error_code=result.error_code,
                is_caught_up=result.is_caught_up,
                is_fenced=result.is_fenced,
                should_shut_down=result.should_shut_down,
            )
        except ControllerError as exc:
            response = response_class(throttle_time_ms=0, error_code=exc.error_code)
        self._reply(context, respond, response)
        self._wake_fetches()

    def handle_alter_partition(
        self, context: RequestContext, request: Any, respond: Respond
    ) -> None:
        response_class = self._response_class(context)
        version = context.api_version
        topic_class = response_class.TopicData
        partition_class = topic_class.PartitionData
        topics = []
        error = NONE
        try:
            for t in request.topics:
                topic = (
                    self.controller.image.topics.get(t.topic_name)
                    if version < 2
                    else self.controller.image.topic_by_id(t.topic_id)
                )
                partitions = []
                for p in t.partitions:
                    new_isr = (
                        [b.broker_id for b in p.new_isr_with_epochs] if version >= 3 else p.new_isr
                    )
                    result = self.controller.alter_partition(
                        request.broker_id,
                        request.broker_epoch,
                        topic,
                        p.partition_index,
                        p.leader_epoch,
                        p.partition_epoch,
                        list(new_isr),
                        p.leader_recovery_state if version >= 1 else 0,
                    )
                    if result.error_code == NEW_LEADER_ELECTED and version < 2:
                        result.error_code = FENCED_LEADER_EPOCH  # Kafka's answer before v2
                    partitions.append(
                        partition_class(
                            partition_index=p.partition_index,
                            error_code=result.error_code,
                            leader_id=result.leader,
                            leader_epoch=result.leader_epoch,
                            isr=result.isr,
                            leader_recovery_state=result.leader_recovery_state,
                            partition_epoch=result.partition_epoch,
                        )
                    )
                topics.append(
                    topic_class(topic_name=t.topic_name, topic_id=t.topic_id, partitions=partitions)
                )
        except ControllerError as exc:  # a stale broker epoch fails the whole request
            error, topics = exc.error_code, []
        self._reply(
            context, respond, response_class(throttle_time_ms=0, error_code=error, topics=topics)
        )
        self._wake_fetches()

    def handle_allocate_producer_ids(
        self, context: RequestContext, request: Any, respond: Respond
    ) -> None:
        response_class = self._response_class(context)
        try:
            start, length = self.controller.allocate_producer_ids(
                request.broker_id, request.broker_epoch
            )
            response = response_class(
                throttle_time_ms=0,
                error_code=NONE,
                producer_id_start=start,
                producer_id_len=length,
            )
        except ControllerError as exc:
            response = response_class(
                throttle_time_ms=0, error_code=exc.error_code, producer_id_start=-1
            )
        self._reply(context, respond, response)
        self._wake_fetches()

    # -- topics ---------------------------------------------------------------------------------
    def handle_create_topics(self, context: RequestContext, request: Any, respond: Respond) -> None:
        response_class = self._response_class(context)
        results = []
        for t in request.topics:
            assignments = {a.partition_index: list(a.broker_ids) for a in t.assignments or ()}
            try:
                if assignments:
                    check_assignment_counts(t.num_partitions, t.replication_factor)
            except TopicAdminError as exc:
                created = CreatedTopic(t.name, exc.error_code, str(exc))
            else:
                created = self.controller.create_topic(
                    t.name,
                    t.num_partitions,
                    t.replication_factor,
                    {c.name: c.value for c in t.configs or ()},
                    assignments or None,
                    validate_only=request.validate_only,
                )
            results.append(
                response_class.CreatableTopicResult(
                    name=t.name,
                    topic_id=created.topic_id if created.error_code == NONE else None,
                    error_code=created.error_code,
                    error_message=created.message,
                    num_partitions=created.num_partitions,
                    replication_factor=created.replication_factor,
                    configs=[],
                )
            )
        self._reply(context, respond, response_class(throttle_time_ms=0, topics=results))
        self._wake_fetches()

    def handle_delete_topics(self, context: RequestContext, request: Any, respond: Respond) -> None:
        response_class = self._response_class(context)
        if context.api_version >= 6:
            names = [t.name for t in request.topics]
        else:
            names = list(request.topic_names)
        results = []
        for name in names:
            error, message, topic_id = NONE, None, None
            try:
                topic_id = self.controller.delete_topic(name)
            except ControllerError as exc:
                error, message = exc.error_code, str(exc)
            results.append(
                response_class.DeletableTopicResult(
                    name=name, topic_id=topic_id, error_code=error, error_message=message
                )
            )
        self._reply(context, respond, response_class(throttle_time_ms=0, responses=results))
        self._wake_fetches()

    def handle_create_partitions(
        self, context: RequestContext, request: Any, respond: Respond
    ) -> None:
        response_class = self._response_class(context)
        results = []
        for t in request.topics:
            error, message = NONE, None
            try:
                self.controller.create_partitions(
                    t.name,
                    t.count,
                    [list(a.broker_ids) for a in t.assignments] if t.assignments else None,
                    request.validate_only,
                )
            except ControllerError as exc:
                error, message = exc.error_code, str(exc)
            results.append(
                response_class.CreatePartitionsTopicResult(
                    name=t.name, error_code=error, error_message=message
                )
            )
        self._reply(context, respond, response_class(throttle_time_ms=0, results=results))
        self._wake_fetches()

    # -- configs --------------------------------------------------------------------------------
    def handle_alter_configs(self, context: RequestContext, request: Any, respond: Respond) -> None:
        """IncrementalAlterConfigs and AlterConfigs, each resource all or nothing."""
        incremental = context.header.request_api_key == ApiKeys.INCREMENTAL_ALTER_CONFIGS
        response_class = self._response_class(context)
        results = []
        for resource in request.resources:
            error, message = NONE, None
            try:
                records = config_records(
                    self.controller.image,
                    resource.resource_type,
                    resource.resource_name,
                    request_ops(resource, incremental),
                    incremental,
                    self.config,
                )
                if not request.validate_only:
                    self.controller.write(records)
            except ConfigAlterError as exc:
                error, message = exc.error_code, str(exc)
            results.append(
                response_class.AlterConfigsResourceResponse(
                    error_code=error,
                    error_message=message,
                    resource_type=resource.resource_type,
                    resource_name=resource.resource_name,
                )
            )
        self._reply(context, respond, response_class(throttle_time_ms=0, responses=results))
        self._wake_fetches()

    # -- leaders and reassignments --------------------------------------------------------------
    def handle_elect_leaders(self, context: RequestContext, request: Any, respond: Respond) -> None:
        response_class = self._response_class(context)
        wanted = (
            None
            if request.topic_partitions is None
            else {t.topic: list(t.partitions) for t in request.topic_partitions}
        )
        try:
            results = self.controller.elect_leaders(election_type(context, request), wanted)
        except ControllerError as exc:  # an unknown election type
            self._reply(context, respond, elect_leaders_refused(response_class, request, str(exc)))
            return
        outcomes = {
            topic: [(r.partition, r.error_code, r.message) for r in partitions]
            for topic, partitions in results.items()
        }
        self._reply(context, respond, elect_leaders_response(response_class, outcomes))
        self._wake_fetches()

    def handle_alter_partition_reassignments(
        self, context: RequestContext, request: Any, respond: Respond
    ) -> None:
        results = self.controller.alter_partition_reassignments(
            [
                (
                    t.name,
                    [
                        (p.partition_index, None if p.replicas is None else list(p.replicas))
                        for p in t.partitions
                    ],
                )
                for t in request.topics
            ]
        )
        outcomes = [
            (name, [(r.partition, r.error_code, r.message) for r in partitions])
            for name, partitions in results
        ]
        self._reply(
            context, respond, reassignments_response(self._response_class(context), outcomes)
        )
        self._wake_fetches()

    def handle_list_partition_reassignments(
        self, context: RequestContext, request: Any, respond: Respond
    ) -> None:
        results = self.controller.list_partition_reassignments(
            None
            if request.topics is None
            else {t.name: list(t.partition_indexes) for t in request.topics}
        )
        ongoing = [
            (name, [(o.partition, o.replicas, o.adding, o.removing) for o in partitions])
            for name, partitions in results
        ]
        self._reply(
            context, respond, list_reassignments_response(self._response_class(context), ongoing)
        )

    # -- the quorum -----------------------------------------------------------------------------
    def handle_describe_quorum(
        self, context: RequestContext, request: Any, respond: Respond
    ) -> None:
        """Kafka's KafkaRaftClient.handleDescribeQuorumRequest; v2's Nodes give this voter's
        listener as the one the request came in on."""
        response_class = self._response_class(context)
        if not asks_for_metadata_partition(request):
            self._reply(
                context, respond, describe_quorum_unknown_partition(response_class, request)
            )
            return
        quorum = self.controller.describe_quorum()

        def infos(replicas: list[QuorumReplica]) -> list[ReplicaInfo]:
            return [
                (r.replica_id, r.log_end_offset, r.last_fetch_ms, r.last_caught_up_ms)
                for r in replicas
            ]

        host, port = host_port(context.listener)
        response = describe_quorum_response(
            response_class,
            context.api_version,
            leader_id=quorum.leader_id,
            leader_epoch=quorum.leader_epoch,
            high_watermark=quorum.high_watermark,
            voters=infos(quorum.voters),
            observers=infos(quorum.observers),
            listener=(CONTROLLER_LISTENER, host, port),
        )
        self._reply(context, respond, response)

    # -- the metadata log, fetched ----------------------------------------------------------------
    def handle_fetch(self, context: RequestContext, request: Any, respond: Respond) -> None:
        partition = self._metadata_partition(request)
        if partition is None:
            self._fetch_response(context, respond, request, error=INVALID_REQUEST)
            return
        if request.replica_id >= 0:  # a broker following the log: an observer of the quorum
            self.controller.replica_fetched(request.replica_id, partition.fetch_offset)
        if partition.fetch_offset < self.metadata_log.end_offset or request.max_wait_ms <= 0:
            self._fetch_response(context, respond, request)
            return
        waiting = _WaitingFetch(self._time_ms() + request.max_wait_ms, context, request, respond)
        heapq.heappush(self._waiting, (waiting.deadline_ms, next(self._sequence), waiting))

    @staticmethod
    def _metadata_partition(request: Any) -> Any:
        topics = request.topics or []
        if len(topics) != 1 or topics[0].topic != METADATA_TOPIC or len(topics[0].partitions) != 1:
            return None
        partition = topics[0].partitions[0]
        return partition if partition.partition == 0 else None

    def _fetch_response(
        self, context: RequestContext, respond: Respond, request: Any, error: int = NONE
    ) -> None:
        partition = self._metadata_partition(request)
        records: list = []
        partition_error = NOT_LEADER_OR_FOLLOWER if error else NONE
        if partition is not None and not error:
            try:
                records = self.metadata_log.read(
                    partition.fetch_offset, max(partition.partition_max_bytes, 1)
                ).slices
            except KafkaError as exc:
                partition_error = exc.error_code
        end = self.metadata_log.end_offset
        topics = []
        if partition is not None or error:
            topics = [
                FetchTopicResponse(
                    METADATA_TOPIC,
                    [
                        FetchPartitionResponse(
                            partition_index=0,
                            error_code=UNKNOWN_TOPIC_OR_PARTITION
                            if partition is None
                            else partition_error,
                            high_watermark=end,
                            last_stable_offset=end,
                            log_start_offset=self.metadata_log.log.log_start_offset,
                            records=records,
                            aborted_transactions=None,
                        )
                    ],
                )
            ]
        respond(
            encode_fetch_response(
                context.api_version,
                context.header.correlation_id,
                throttle_time_ms=0,
                error_code=error,
                session_id=0,
                topics=topics,
            )
        )

    def _wake_fetches(self) -> None:
        """Something was written: every waiting metadata fetch has records now."""
        waiting, self._waiting = self._waiting, []
        for _, _, fetch in waiting:
            if not fetch.done:
                fetch.done = True
                self._fetch_response(fetch.context, fetch.respond, fetch.request)

    def tick(self) -> None:
        now = self._time_ms()
        while self._waiting and self._waiting[0][0] <= now:
            _, _, fetch = heapq.heappop(self._waiting)
            if not fetch.done:
                fetch.done = True
                self._fetch_response(fetch.context, fetch.respond, fetch.request)

    def next_deadline_ms(self) -> int | None:
        return self._waiting[0][0] if self._waiting else None

    def complete_all(self) -> None:
        self._wake_fetches()
