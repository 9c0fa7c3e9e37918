"""What admin clients ask about transactions (KIP-664), as Kafka 4.0's brokers answer it.

- DescribeTransactions (65): the coordinator's state of each transactional id
  (TRANSACTIONAL_ID_NOT_FOUND for one it does not know, NOT_COORDINATOR on another broker);
- ListTransactions (66, v0-1): the ids this broker coordinates, filtered by state, producer id
  and (v1) by running longer than a duration; state names this broker does not know come back
  in unknown_state_filters;
- DescribeProducers (61): each partition's active producers from its producer state (epoch, last
  sequence and timestamp, coordinator epoch, the first offset of its ongoing transaction),
  answered by the leader (NOT_LEADER_OR_FOLLOWER elsewhere).

Not thread-safe: the event loop's thread alone uses them, as KafkaApis.
"""

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kafka import errors as kafka_errors
from kafka.protocol.api_message import ApiMessage

from engine.broker.request_context import RequestContext
from engine.broker.transaction_coordinator import TransactionCoordinator
from engine.broker.transaction_log import TransactionState
from engine.common import TopicPartition
from engine.errors import NONE, NOT_LEADER_OR_FOLLOWER, UNKNOWN_TOPIC_OR_PARTITION
from engine.protocol.apis import ApiKeys

if TYPE_CHECKING:
    from engine.broker.api_handlers import Respond
    from engine.broker.kafka_apis import KafkaApis

TRANSACTIONAL_ID_NOT_FOUND = kafka_errors.TransactionalIdNotFoundError.errno
_STATES = {state.display_name: state for state in TransactionState}


def transaction_admin_handlers(
    apis: "KafkaApis", coordinator: TransactionCoordinator
) -> dict[int, Callable[..., Any]]:
    """api key -> handler(context, request, respond)."""

    def describe_transactions(
        context: RequestContext, request: ApiMessage, respond: "Respond"
    ) -> None:
        response_class = apis._response_class(context)
        state_class = response_class.TransactionState
        error = coordinator.ensure_loaded()
        states = []
        for transactional_id in request.transactional_ids:
            m = coordinator.transactions.get(transactional_id) if error == NONE else None
            if m is None:
                states.append(
                    state_class(
                        error_code=error or TRANSACTIONAL_ID_NOT_FOUND,
                        transactional_id=transactional_id,
                        transaction_state="",
                        transaction_timeout_ms=0,
                        transaction_start_time_ms=-1,
                        producer_id=-1,
                        producer_epoch=-1,
                        topics=[],
                    )
                )
                continue
            by_topic: dict[str, list[int]] = {}
            for tp in sorted(m.partitions):
                by_topic.setdefault(tp.topic, []).append(tp.partition)
            states.append(
                state_class(
                    error_code=NONE,
                    transactional_id=transactional_id,
                    transaction_state=m.state.display_name,
                    transaction_timeout_ms=m.timeout_ms,
                    transaction_start_time_ms=m.start_ms,
                    producer_id=m.producer_id,
                    producer_epoch=m.producer_epoch,
                    topics=[
                        state_class.TopicData(topic=topic, partitions=indexes)
                        for topic, indexes in by_topic.items()
                    ],
                )
            )
        apis._reply(context, respond, response_class(throttle_time_ms=0, transaction_states=states))

    def list_transactions(context: RequestContext, request: ApiMessage, respond: "Respond") -> None:
        response_class = apis._response_class(context)
        wanted_states = set(request.state_filters)
        unknown = sorted(wanted_states - _STATES.keys())
        producer_ids = set(request.producer_id_filters)
        duration = request.duration_filter if context.api_version >= 1 else -1
        now = apis.broker.time_ms()
        listed = []
        if coordinator.ensure_loaded() == NONE:
            for m in coordinator.transactions.values():
                if wanted_states and m.state.display_name not in wanted_states:
                    continue
                if producer_ids and m.producer_id not in producer_ids:
                    continue
                if duration >= 0 and (m.start_ms < 0 or now - m.start_ms <= duration):
                    continue
                listed.append(
                    response_class.TransactionState(
                        transactional_id=m.transactional_id,
                        producer_id=m.producer_id,
                        transaction_state=m.state.display_name,
                    )
                )
        apis._reply(
            context,
            respond,
            response_class(
                throttle_time_ms=0,
                error_code=NONE,
                unknown_state_filters=unknown,
                transaction_states=listed,
            ),
        )

    def describe_producers(
        context: RequestContext, request: ApiMessage, respond: "Respond"
    ) -> None:
        response_class = apis._response_class(context)
        topic_class = response_class.TopicResponse
        partition_class = topic_class.PartitionResponse
        producer_class = partition_class.ProducerState
        topics = []
        for t in request.topics:
            partitions = []
            for index in t.partition_indexes:
                partition = apis.topics.partition(TopicPartition(t.name, index))
                if partition is None or not partition.is_leader:
                    error = (
                        UNKNOWN_TOPIC_OR_PARTITION
                        if partition is None
                        else (NOT_LEADER_OR_FOLLOWER)
                    )
                    partitions.append(
                        partition_class(
                            partition_index=index,
                            error_code=error,
                            error_message=None,
                            active_producers=[],
                        )
                    )
                    continue
                active = [
                    producer_class(
                        producer_id=e.producer_id,
                        producer_epoch=e.producer_epoch,
                        last_sequence=e.last_sequence,
                        last_timestamp=e.batches[-1].timestamp if e.batches else -1,
                        coordinator_epoch=e.coordinator_epoch,
                        current_txn_start_offset=e.current_txn_first_offset,
                    )
                    for e in partition.log.producer_state.producers.values()
                ]
                partitions.append(
                    partition_class(
                        partition_index=index,
                        error_code=NONE,
                        error_message=None,
                        active_producers=active,
                    )
                )
            topics.append(topic_class(name=t.name, partitions=partitions))
        apis._reply(context, respond, response_class(throttle_time_ms=0, topics=topics))

    return {
        ApiKeys.DESCRIBE_TRANSACTIONS: describe_transactions,
        ApiKeys.LIST_TRANSACTIONS: list_transactions,
        ApiKeys.DESCRIBE_PRODUCERS: describe_producers,
    }
