"""Handlers of the admin APIs that change or list replica placement and leadership
(ElectLeaders, AlterPartitionReassignments, ListPartitionReassignments, DescribeQuorum) for a
single broker that is its own controller; a cluster member forwards them to the controller.

A single broker is the only replica of every partition and leads it, so: ElectLeaders has nothing
to elect (ELECTION_NOT_NEEDED, or UNKNOWN_TOPIC_OR_PARTITION); a reassignment is valid only to
[this broker], which is where the partition already is (nothing changes), and there is never one
to cancel (NO_REASSIGNMENT_IN_PROGRESS) or to list; DescribeQuorum describes this broker as the
leader and only voter of a metadata log it does not keep (epoch 0, offsets 0).

The response builders below are shared with the controller's handlers
(engine/controller/controller_apis.py), so both answer in the same shapes.
"""

import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from kafka.protocol.api_message import ApiMessage

from engine.broker.metadata_loader import METADATA_TOPIC  # DescribeQuorum's, partition 0
from engine.broker.request_context import RequestContext
from engine.errors import (
    ELECTION_NOT_NEEDED,
    INVALID_REPLICA_ASSIGNMENT,
    INVALID_REQUEST,
    NO_REASSIGNMENT_IN_PROGRESS,
    NONE,
    UNKNOWN_TOPIC_OR_PARTITION,
)
from engine.metadata.image import ClusterImage
from engine.protocol.apis import ApiKeys

if TYPE_CHECKING:
    from engine.broker.api_handlers import Respond
    from engine.broker.kafka_apis import KafkaApis

PREFERRED_ELECTION, UNCLEAN_ELECTION = 0, 1  # ElectLeaders' ElectionType
_NO_DIRECTORY_ID = uuid.UUID(int=0)

# (partition, error code, error message)
PartitionOutcome = tuple[int, int, str | None]
# (partition, replicas, adding replicas, removing replicas)
Ongoing = tuple[int, list[int], list[int], list[int]]
# (replica id, log end offset, last fetch ms, last caught up ms)
ReplicaInfo = tuple[int, int, int, int]


# -- responses, shared with the controller -------------------------------------------------------
def elect_leaders_response(
    response_class: type[ApiMessage],
    results: Mapping[str, Sequence[PartitionOutcome]],
    error_code: int = NONE,
) -> ApiMessage:
    result_class: Any = response_class.ReplicaElectionResult
    return response_class(
        throttle_time_ms=0,
        error_code=error_code,
        replica_election_results=[
            result_class(
                topic=topic,
                partition_result=[
                    result_class.PartitionResult(partition_id=p, error_code=e, error_message=m)
                    for p, e, m in partitions
                ],
            )
            for topic, partitions in results.items()
        ],
    )


def election_type(context: RequestContext, request: Any) -> int:
    """v0 has no ElectionType: a preferred election."""
    return int(request.election_type) if context.api_version >= 1 else PREFERRED_ELECTION


def elect_leaders_refused(
    response_class: type[ApiMessage], request: Any, message: str
) -> ApiMessage:
    """An election type Kafka does not know: INVALID_REQUEST, for each partition asked too."""
    results = {
        t.topic: [(p, INVALID_REQUEST, message) for p in t.partitions]
        for t in request.topic_partitions or ()
    }
    return elect_leaders_response(response_class, results, INVALID_REQUEST)


def reassignments_response(
    response_class: type[ApiMessage], results: Sequence[tuple[str, Sequence[PartitionOutcome]]]
) -> ApiMessage:
    topic_class: Any = response_class.ReassignableTopicResponse
    partition_class = topic_class.ReassignablePartitionResponse
    return response_class(
        throttle_time_ms=0,
        error_code=NONE,
        error_message=None,
        responses=[
            topic_class(
                name=name,
                partitions=[
                    partition_class(partition_index=p, error_code=e, error_message=m)
                    for p, e, m in partitions
                ],
            )
            for name, partitions in results
        ],
    )


def list_reassignments_response(
    response_class: type[ApiMessage], results: Sequence[tuple[str, Sequence[Ongoing]]]
) -> ApiMessage:
    topic_class: Any = response_class.OngoingTopicReassignment
    partition_class = topic_class.OngoingPartitionReassignment
    return response_class(
        throttle_time_ms=0,
        error_code=NONE,
        error_message=None,
        topics=[
            topic_class(
                name=name,
                partitions=[
                    partition_class(
                        partition_index=p,
                        replicas=replicas,
                        adding_replicas=adding,
                        removing_replicas=removing,
                    )
                    for p, replicas, adding, removing in ongoing
                ],
            )
            for name, ongoing in results
        ],
    )


def asks_for_metadata_partition(request: Any) -> bool:
    """DescribeQuorum describes `__cluster_metadata-0`, asked alone (Kafka's
    RaftUtil.hasValidTopicPartition)."""
    topics = request.topics or []
    return (
        len(topics) == 1
        and topics[0].topic_name == METADATA_TOPIC
        and len(topics[0].partitions) == 1
        and topics[0].partitions[0].partition_index == 0
    )


def describe_quorum_unknown_partition(response_class: type[ApiMessage], request: Any) -> ApiMessage:
    """Kafka's DescribeQuorumRequest.getPartitionLevelErrorResponse."""
    topic_class: Any = response_class.TopicData
    partition_class = topic_class.PartitionData
    return response_class(
        error_code=NONE,
        error_message=None,
        topics=[
            topic_class(
                topic_name=t.topic_name,
                partitions=[
                    partition_class(
                        partition_index=p.partition_index,
                        error_code=UNKNOWN_TOPIC_OR_PARTITION,
                        error_message="This server does not host this topic-partition.",
                        leader_id=-1,
                        leader_epoch=-1,
                        high_watermark=-1,
                        current_voters=[],
                        observers=[],
                    )
                    for p in t.partitions
                ],
            )
            for t in request.topics or ()
        ],
        nodes=[],
    )


def describe_quorum_response(
    response_class: type[ApiMessage],
    version: int,
    leader_id: int,
    leader_epoch: int,
    high_watermark: int,
    voters: Sequence[ReplicaInfo],
    observers: Sequence[ReplicaInfo],
    listener: tuple[str, str, int],
) -> ApiMessage:
    """Kafka's RaftUtil.singletonDescribeQuorumResponse for one voter, the leader, whose
    listener (name, host, port) v2 lists under Nodes. Replica directory ids are Kafka's
    NO_DIRECTORY_ID: a static voter has none, and observers send none."""
    topic_class: Any = response_class.TopicData
    partition_class = topic_class.PartitionData
    state_class = partition_class.ReplicaState

    def states(replicas: Sequence[ReplicaInfo]) -> list[Any]:
        return [
            state_class(
                replica_id=replica_id,
                replica_directory_id=_NO_DIRECTORY_ID,
                log_end_offset=end,
                last_fetch_timestamp=fetched,
                last_caught_up_timestamp=caught_up,
            )
            for replica_id, end, fetched, caught_up in replicas
        ]

    nodes = []
    if version >= 2:
        node_class: Any = response_class.Node
        name, host, port = listener
        nodes = [
            node_class(
                node_id=leader_id,
                listeners=[node_class.Listener(name=name, host=host, port=port)],
            )
        ]
    return response_class(
        error_code=NONE,
        error_message=None,
        topics=[
            topic_class(
                topic_name=METADATA_TOPIC,
                partitions=[
                    partition_class(
                        partition_index=0,
                        error_code=NONE,
                        error_message=None,
                        leader_id=leader_id,
                        leader_epoch=leader_epoch,
                        high_watermark=high_watermark,
                        current_voters=states(voters),
                        observers=states(observers),
                    )
                ],
            )
        ],
        nodes=nodes,
    )


def host_port(listener: str) -> tuple[str, int]:
    """A RequestContext's listener, host:port."""
    host, _, port = listener.rpartition(":")
    return host, int(port)


# -- a single broker -------------------------------------------------------------------------------
def replica_admin_handlers(apis: "KafkaApis") -> dict[int, Callable[..., Any]]:
    """api key -> handler(context, request, respond), for a broker without a controller."""

    def image() -> ClusterImage:
        return apis.broker.metadata_cache.image

    def handle_elect_leaders(context: RequestContext, request: Any, respond: "Respond") -> None:
        response_class = apis._response_class(context)
        kind = election_type(context, request)
        if kind not in (PREFERRED_ELECTION, UNCLEAN_ELECTION):
            response = elect_leaders_refused(
                response_class, request, f"unknown election type {kind}"
            )
            apis._reply(context, respond, response)
            return
        current = image()
        results: dict[str, list[PartitionOutcome]] = {}
        if request.topic_partitions is None:
            # every partition: those whose election is not needed are left out, so all are
            results = {name: [] for name in sorted(current.topics)}
        else:
            for t in request.topic_partitions:
                topic = current.topics.get(t.topic)
                results[t.topic] = [
                    (p, ELECTION_NOT_NEEDED, None)
                    if topic is not None and p in topic.partitions
                    else (p, UNKNOWN_TOPIC_OR_PARTITION, f"no such partition as {t.topic}-{p}")
                    for p in t.partitions
                ]
        apis._reply(context, respond, elect_leaders_response(response_class, results))

    def handle_alter_partition_reassignments(
        context: RequestContext, request: Any, respond: "Respond"
    ) -> None:
        current, node_id = image(), apis.config.node_id
        results = []
        for t in request.topics:
            topic = current.topics.get(t.name)
            outcomes: list[PartitionOutcome] = []
            for p in t.partitions:
                index, target = p.partition_index, p.replicas
                if topic is None or index not in topic.partitions:
                    outcomes.append(
                        (index, UNKNOWN_TOPIC_OR_PARTITION, f"no such partition {t.name}:{index}")
                    )
                elif target is None:
                    outcomes.append(
                        (
                            index,
                            NO_REASSIGNMENT_IN_PROGRESS,
                            f"no partition reassignment is in progress for {t.name}:{index}",
                        )
                    )
                elif list(target) != [node_id]:
                    outcomes.append(
                        (
                            index,
                            INVALID_REPLICA_ASSIGNMENT,
                            f"a single broker can only place {t.name}:{index} on itself "
                            f"([{node_id}]), not on {list(target)}",
                        )
                    )
                else:
                    outcomes.append((index, NONE, None))  # where it is already
            results.append((t.name, outcomes))
        apis._reply(
            context, respond, reassignments_response(apis._response_class(context), results)
        )

    def handle_list_partition_reassignments(
        context: RequestContext, request: Any, respond: "Respond"
    ) -> None:
        apis._reply(
            context, respond, list_reassignments_response(apis._response_class(context), [])
        )

    def handle_describe_quorum(context: RequestContext, request: Any, respond: "Respond") -> None:
        response_class = apis._response_class(context)
        if not asks_for_metadata_partition(request):
            apis._reply(
                context, respond, describe_quorum_unknown_partition(response_class, request)
            )
            return
        node_id, now = apis.config.node_id, apis.broker.time_ms()
        host, port = host_port(context.listener)
        response = describe_quorum_response(
            response_class,
            context.api_version,
            leader_id=node_id,
            leader_epoch=0,
            high_watermark=0,
            voters=[(node_id, 0, now, now)],
            observers=[],
            listener=("PLAINTEXT", host, port),
        )
        apis._reply(context, respond, response)

    return {
        ApiKeys.ELECT_LEADERS: handle_elect_leaders,
        ApiKeys.ALTER_PARTITION_REASSIGNMENTS: handle_alter_partition_reassignments,
        ApiKeys.LIST_PARTITION_REASSIGNMENTS: handle_list_partition_reassignments,
        ApiKeys.DESCRIBE_QUORUM: handle_describe_quorum,
    }
