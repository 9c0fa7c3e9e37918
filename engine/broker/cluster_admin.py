"""Handlers of the admin APIs a broker answers about the cluster and its own replicas
(DescribeCluster, DescribeLogDirs, DescribeTopicPartitions, AlterReplicaLogDirs), as Kafka 4.0's
brokers answer them (KafkaApis, AuthHelper.computeDescribeClusterResponse, ReplicaManager's
describeLogDirs and alterReplicaLogDirs, DescribeTopicPartitionsRequestHandler with
KRaftMetadataCache).

Every broker answers them itself, a single broker and a cluster member alike: the cluster from
its current image (engine/metadata), its replicas from its own log directory. There is no
authorizer, so everything is allowed, and an "authorized operations" field asked for carries
every operation Kafka supports on the resource (Kafka without an authorizer).

kbench keeps one log directory per broker (log.dirs' first entry), so AlterReplicaLogDirs can
move nothing: any other path is LOG_DIR_NOT_FOUND, as Kafka answers a directory it was not
configured with, and a replica already in the broker's directory is NONE (nothing to move).

Not thread-safe: the event loop's thread alone uses them, as KafkaApis.
"""

import os
import uuid
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from kafka.admin import ACLOperation
from kafka.protocol.api_message import ApiMessage

from engine.broker.request_context import RequestContext
from engine.common import TopicPartition
from engine.errors import (
    INVALID_REQUEST,
    INVALID_TOPIC_EXCEPTION,
    KAFKA_STORAGE_ERROR,
    LOG_DIR_NOT_FOUND,
    MISMATCHED_ENDPOINT_TYPE,
    NONE,
    REPLICA_NOT_AVAILABLE,
    UNKNOWN_TOPIC_OR_PARTITION,
    UNSUPPORTED_ENDPOINT_TYPE,
)
from engine.metadata.image import NO_LEADER, ClusterImage, TopicImage
from engine.protocol.apis import ApiKeys
from engine.storage.log_manager import validate_topic_name

if TYPE_CHECKING:
    from engine.broker.api_handlers import Respond
    from engine.broker.kafka_apis import KafkaApis

# DescribeCluster's EndpointType (Kafka's EndpointType): a broker answers for brokers
ENDPOINT_BROKER, ENDPOINT_CONTROLLER = 1, 2
# what Kafka without an authorizer grants (AclEntry.supportedOperations), as bit positions
CLUSTER_OPERATIONS = frozenset(
    op.value
    for op in (
        ACLOperation.CREATE,
        ACLOperation.CLUSTER_ACTION,
        ACLOperation.DESCRIBE_CONFIGS,
        ACLOperation.ALTER_CONFIGS,
        ACLOperation.IDEMPOTENT_WRITE,
        ACLOperation.ALTER,
        ACLOperation.DESCRIBE,
    )
)
TOPIC_OPERATIONS = frozenset(
    op.value
    for op in (
        ACLOperation.READ,
        ACLOperation.WRITE,
        ACLOperation.CREATE,
        ACLOperation.DESCRIBE,
        ACLOperation.DELETE,
        ACLOperation.ALTER,
        ACLOperation.DESCRIBE_CONFIGS,
        ACLOperation.ALTER_CONFIGS,
    )
)
GROUP_OPERATIONS = frozenset(
    op.value
    for op in (
        ACLOperation.READ,
        ACLOperation.DESCRIBE,
        ACLOperation.DELETE,
        ACLOperation.DESCRIBE_CONFIGS,
        ACLOperation.ALTER_CONFIGS,
    )
)
# the schema's default: "not asked for" (Integer.MIN_VALUE)
AUTHORIZED_OPERATIONS_OMITTED = -(2**31)
# DescribeTopicPartitions answers at most this many partitions, whatever the request asks
# (Kafka's max.request.partition.size.limit, default 2000)
MAX_REQUEST_PARTITION_SIZE_LIMIT = 2000
# Kafka's Topic.isInternal, for names the cluster does not hold
KAFKA_INTERNAL_TOPICS = frozenset(
    {"__consumer_offsets", "__transaction_state", "__share_group_state"}
)
INVALID_OFFSET_LAG = -1  # DescribeLogDirs: a log without a hosted partition
# Kafka's UnifiedLog.logFutureDirName: "<topic>-<partition>.<32 hex digits>-future"; a longer
# name than a file system allows cannot be moved (KAFKA-4893)
_FUTURE_DIR_SUFFIX_LENGTH = len(".") + 32 + len("-future")
_MAX_FILE_NAME = 255
_ZERO_UUID = uuid.UUID(int=0)

Handler = Callable[[RequestContext, ApiMessage, "Respond"], None]


def bit_field(bits: Iterable[int]) -> int:
    """A set of bit positions as Kafka's signed 32-bit field."""
    value = 0
    for bit in bits:
        value |= 1 << bit
    return value - (1 << 32) if value >= 1 << 31 else value


def live_controller_id(image: ClusterImage) -> int:
    """The controller id a broker tells clients: clients cannot reach a KRaft controller, so a
    live broker's id stands in (as kafka_apis.handle_metadata); -1 when none is alive."""
    alive = image.alive_brokers()
    if image.controller_id >= 0:
        controller = image.controller_id
    else:
        controller = alive[0].node_id if alive else -1
    # Kafka: an id that is not among the brokers listed is answered as -1
    return controller if any(b.node_id == controller for b in alive) else -1


class ClusterAdmin:
    """The four handlers, over KafkaApis's services."""

    def __init__(self, apis: "KafkaApis") -> None:
        self.apis = apis

    def handlers(self) -> dict[int, Handler]:
        return {
            ApiKeys.DESCRIBE_CLUSTER: self.handle_describe_cluster,
            ApiKeys.DESCRIBE_LOG_DIRS: self.handle_describe_log_dirs,
            ApiKeys.DESCRIBE_TOPIC_PARTITIONS: self.handle_describe_topic_partitions,
            ApiKeys.ALTER_REPLICA_LOG_DIRS: self.handle_alter_replica_log_dirs,
        }

    @property
    def _image(self) -> ClusterImage:
        return self.apis.broker.metadata_cache.image

    def _log_dir(self) -> str:
        """The broker's log directory as Kafka names it: its absolute path."""
        return os.path.abspath(self.apis.config.log_dir)

    # -- DescribeCluster ------------------------------------------------------------------------
    def handle_describe_cluster(
        self, context: RequestContext, request: Any, respond: "Respond"
    ) -> None:
        """The live (unfenced) brokers with host, port and rack, the cluster id, and a live
        broker's id as the controller's."""
        response_class = self.apis._response_class(context)
        # v0 has no EndpointType: it asks for brokers
        endpoint_type = request.endpoint_type if context.api_version >= 1 else ENDPOINT_BROKER
        if endpoint_type != ENDPOINT_BROKER:
            if endpoint_type == ENDPOINT_CONTROLLER:
                error = MISMATCHED_ENDPOINT_TYPE
                message = (
                    "The request was sent to an endpoint of type BROKER, but we wanted an "
                    "endpoint of type CONTROLLER"
                )
            else:
                error = UNSUPPORTED_ENDPOINT_TYPE
                message = f"Unsupported endpoint type {endpoint_type}"
            self.apis._reply(
                context,
                respond,
                response_class(
                    throttle_time_ms=0,
                    error_code=error,
                    error_message=message,
                    endpoint_type=ENDPOINT_BROKER,
                    cluster_id="",
                    controller_id=-1,
                    brokers=[],
                ),
            )
            return
        image = self._image
        broker_class = response_class.DescribeClusterBroker
        self.apis._reply(
            context,
            respond,
            response_class(
                throttle_time_ms=0,
                error_code=NONE,
                error_message=None,
                endpoint_type=ENDPOINT_BROKER,
                cluster_id=image.cluster_id,
                controller_id=live_controller_id(image),
                brokers=[
                    broker_class(broker_id=b.node_id, host=b.host, port=b.port, rack=b.rack)
                    for b in image.alive_brokers()
                ],
                # kafka-python's bit field: a set of bit positions; None sends the schema's
                # default, -2147483648 ("not asked for")
                authorized_operations=set(CLUSTER_OPERATIONS)
                if request.include_cluster_authorized_operations
                else None,
            ),
        )

    # -- DescribeLogDirs ------------------------------------------------------------------------
    def handle_describe_log_dirs(
        self, context: RequestContext, request: Any, respond: "Respond"
    ) -> None:
        """The broker's log directory with its replicas asked for (topics null: all of them):
        each one's size in bytes and offset lag, and (v4) the file system's total and usable
        bytes."""
        response_class = self.apis._response_class(context)
        self.apis._reply(
            context,
            respond,
            response_class(
                throttle_time_ms=0,
                error_code=NONE,
                results=[self._log_dir_result(response_class.DescribeLogDirsResult, request)],
            ),
        )

    def _log_dir_result(self, result_class: Any, request: Any) -> Any:
        log_dir = self._log_dir()
        logs = self.apis.log_manager.logs
        if request.topics is None:
            wanted = set(logs)
        else:
            wanted = {TopicPartition(t.topic, p) for t in request.topics for p in t.partitions}
        try:
            stat = os.statvfs(log_dir)
        except OSError:
            return result_class(error_code=KAFKA_STORAGE_ERROR, log_dir=log_dir, topics=[])
        topic_class = result_class.DescribeLogDirsTopic
        partition_class = topic_class.DescribeLogDirsPartition
        by_topic: dict[str, list[Any]] = {}
        for tp, log in sorted(logs.items()):
            if tp not in wanted:
                continue
            by_topic.setdefault(tp.topic, []).append(
                partition_class(
                    partition_index=tp.partition,
                    partition_size=log.size,
                    offset_lag=self._offset_lag(tp, log.log_end_offset),
                    is_future_key=False,
                )
            )
        return result_class(
            error_code=NONE,
            log_dir=log_dir,
            topics=[topic_class(name=name, partitions=ps) for name, ps in by_topic.items()],
            total_bytes=stat.f_blocks * stat.f_frsize,
            usable_bytes=stat.f_bavail * stat.f_frsize,
        )

    def _offset_lag(self, tp: TopicPartition, log_end_offset: int) -> int:
        """Kafka's getLogEndOffsetLag for a current (not future) log: how far the replica's own
        high watermark is past its log end, never negative. A replica's high watermark never
        passes its log end (a follower caps the leader's at it), so this is 0 for leaders and
        followers alike, however far a follower is behind its leader, as in Kafka."""
        partition = self.apis.topics.partition(tp)
        if partition is None:
            return INVALID_OFFSET_LAG
        return max(partition.log.high_watermark - log_end_offset, 0)

    # -- AlterReplicaLogDirs --------------------------------------------------------------------
    def handle_alter_replica_log_dirs(
        self, context: RequestContext, request: Any, respond: "Respond"
    ) -> None:
        """One error per partition asked for (the last path named for a partition wins, as
        Kafka's request map): nothing ever moves, there being one directory."""
        response_class = self.apis._response_class(context)
        destinations: dict[TopicPartition, str] = {}
        for log_dir in request.dirs:
            for topic in log_dir.topics:
                for index in topic.partitions:
                    destinations[TopicPartition(topic.name, index)] = log_dir.path
        errors: dict[str, list[tuple[int, int]]] = {}
        for tp, path in destinations.items():
            errors.setdefault(tp.topic, []).append((tp.partition, self._alter_error(tp, path)))
        topic_class = response_class.AlterReplicaLogDirTopicResult
        partition_class = topic_class.AlterReplicaLogDirPartitionResult
        self.apis._reply(
            context,
            respond,
            response_class(
                throttle_time_ms=0,
                results=[
                    topic_class(
                        topic_name=name,
                        partitions=[
                            partition_class(partition_index=index, error_code=error)
                            for index, error in results
                        ],
                    )
                    for name, results in errors.items()
                ],
            ),
        )

    def _alter_error(self, tp: TopicPartition, path: str) -> int:
        """Kafka's ReplicaManager.alterReplicaLogDirs, checks in its order."""
        if len(str(tp)) + _FUTURE_DIR_SUFFIX_LENGTH > _MAX_FILE_NAME:
            return INVALID_TOPIC_EXCEPTION
        if path != self._log_dir():  # Kafka compares the path as sent with the absolute path
            return LOG_DIR_NOT_FOUND
        if self.apis.topics.partition(tp) is not None:
            return NONE  # already in that directory: nothing to move
        if self._image.partition(tp.topic, tp.partition) is not None:
            # the cluster has the partition, this broker no replica of it (Kafka keeps
            # REPLICA_NOT_AVAILABLE here, not NOT_LEADER_OR_FOLLOWER, for compatibility)
            return REPLICA_NOT_AVAILABLE
        return UNKNOWN_TOPIC_OR_PARTITION

    # -- DescribeTopicPartitions ----------------------------------------------------------------
    def handle_describe_topic_partitions(
        self, context: RequestContext, request: Any, respond: "Respond"
    ) -> None:
        """KIP-966: the topics asked for (none: every topic), by name, from the cursor on, at
        most response_partition_limit partitions (and never more than 2000); next_cursor says
        where the next request starts when the limit cut the answer short. Unknown names are
        UNKNOWN_TOPIC_OR_PARTITION (INVALID_TOPIC_EXCEPTION when not a legal name); with no
        names asked for, only topics that exist are listed."""
        response_class = self.apis._response_class(context)
        image = self._image
        cursor = request.cursor
        cursor_topic = cursor.topic_name if cursor is not None else ""
        fetch_all = not request.topics
        if fetch_all:
            names = {name for name in image.topics if name >= cursor_topic}
        else:
            names = {t.name for t in request.topics if t.name >= cursor_topic}
        if (cursor is not None and not fetch_all and cursor.topic_name not in names) or (
            cursor is not None and cursor.partition_index < 0
        ):
            # Kafka throws InvalidRequestException: every topic asked for carries the error
            self.apis._reply(
                context,
                respond,
                response_class(
                    throttle_time_ms=0,
                    topics=[
                        response_class.DescribeTopicPartitionsResponseTopic(
                            error_code=INVALID_REQUEST,
                            name=t.name,
                            topic_id=_ZERO_UUID,
                            is_internal=False,
                            partitions=[],
                            topic_authorized_operations=AUTHORIZED_OPERATIONS_OMITTED,
                        )
                        for t in request.topics
                    ],
                    next_cursor=None,
                ),
            )
            return
        limit = max(min(MAX_REQUEST_PARTITION_SIZE_LIMIT, request.response_partition_limit), 1)
        remaining = limit
        topics: list[Any] = []
        next_cursor = None
        for name in sorted(names):
            if remaining == 0:
                # every partition of the topics before is answered: the next starts here
                next_cursor = response_class.Cursor(topic_name=name, partition_index=0)
                break
            topic = image.topics.get(name)
            if topic is None:
                if not fetch_all:
                    topics.append(self._unknown_topic(response_class, name))
                continue
            start = cursor.partition_index if cursor is not None and name == cursor_topic else 0
            count = len(topic.partitions)
            upper = min(count, start + remaining)
            partitions = self._partitions(response_class, image, topic, range(start, upper))
            topics.append(
                response_class.DescribeTopicPartitionsResponseTopic(
                    error_code=NONE,
                    name=name,
                    topic_id=topic.topic_id,
                    is_internal=topic.internal,
                    partitions=partitions,
                    topic_authorized_operations=bit_field(TOPIC_OPERATIONS),
                )
            )
            if upper < count:
                next_cursor = response_class.Cursor(topic_name=name, partition_index=upper)
                break
            remaining -= len(partitions)
        self.apis._reply(
            context,
            respond,
            response_class(throttle_time_ms=0, topics=topics, next_cursor=next_cursor),
        )

    @staticmethod
    def _unknown_topic(response_class: Any, name: str) -> Any:
        try:
            validate_topic_name(name)
            error = UNKNOWN_TOPIC_OR_PARTITION
        except ValueError:
            error = INVALID_TOPIC_EXCEPTION
        return response_class.DescribeTopicPartitionsResponseTopic(
            error_code=error,
            name=name,
            topic_id=_ZERO_UUID,
            is_internal=name in KAFKA_INTERNAL_TOPICS,
            partitions=[],
            topic_authorized_operations=bit_field(TOPIC_OPERATIONS),
        )

    @staticmethod
    def _partitions(
        response_class: Any, image: ClusterImage, topic: TopicImage, indexes: range
    ) -> list[Any]:
        """The partitions' state as the image has it. The leader is named while it is a
        registered broker, fenced or not (Kafka's getAliveEndpoint checks only that), and no
        partition carries an error; kbench keeps no eligible leader replicas (KIP-966's ELR),
        so both ELR lists are empty."""
        topic_class = response_class.DescribeTopicPartitionsResponseTopic
        partition_class = topic_class.DescribeTopicPartitionsResponsePartition
        partitions = []
        for index in indexes:
            p = topic.partitions.get(index)
            if p is None:
                continue
            partitions.append(
                partition_class(
                    error_code=NONE,
                    partition_index=index,
                    leader_id=p.leader if p.leader in image.brokers else NO_LEADER,
                    leader_epoch=p.leader_epoch,
                    replica_nodes=list(p.replicas),
                    isr_nodes=list(p.isr),
                    eligible_leader_replicas=[],
                    last_known_elr=[],
                    offline_replicas=p.offline_replicas(image.brokers),
                )
            )
        return partitions


def cluster_admin_handlers(apis: "KafkaApis") -> dict[int, Callable[..., Any]]:
    """api key -> handler(context, request, respond)."""
    return dict(ClusterAdmin(apis).handlers())
