"""The transaction APIs a broker serves (KIP-98), merged into KafkaApis' dispatch.

- FindCoordinator with key_type TRANSACTION (1) (KafkaApis): the leader of
  `__transaction_state`'s one partition, the topic made on first use (ensure_transaction_state).
- InitProducerId with a transactional id: the TransactionCoordinator (without one, as before).
- AddPartitionsToTxn (v0-3, the clients' form), AddOffsetsToTxn, EndTxn: the coordinator.
- TxnOffsetCommit: the offsets go to `__consumer_offsets` as the producer's transactional
  records, and the group coordinator keeps them pending until the transaction's marker.
- DescribeTransactions, ListTransactions, DescribeProducers: engine/broker/transaction_admin.py.
- WriteTxnMarkers (27): a transaction coordinator asks this broker, leader of the partitions
  named, to append COMMIT or ABORT markers (engine/broker/transaction_markers.py); each
  partition is answered once its marker is on its ISR.
The coordinator's periodic check (timeouts, marker retries) runs on the broker's Scheduler.

Not thread-safe: the event loop's thread alone uses them, as KafkaApis.
"""

import contextlib
import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kafka.protocol.api_message import ApiMessage

from engine.broker.group_coordinator import CommittedOffset
from engine.broker.offset_store import commit_records
from engine.broker.request_context import RequestContext
from engine.broker.topics import TopicAdminError
from engine.broker.transaction_admin import transaction_admin_handlers
from engine.broker.transaction_coordinator import PRODUCER_FENCED, TransactionCoordinator
from engine.broker.transaction_log import TRANSACTION_STATE, TRANSACTION_STATE_CONFIGS
from engine.broker.transaction_markers import MarkerWriter
from engine.common import TopicPartition
from engine.errors import (
    COORDINATOR_NOT_AVAILABLE,
    INVALID_PRODUCER_EPOCH,
    NONE,
    NOT_COORDINATOR,
    NOT_ENOUGH_REPLICAS,
    NOT_ENOUGH_REPLICAS_AFTER_APPEND,
    NOT_LEADER_OR_FOLLOWER,
)
from engine.metadata.image import CONSUMER_OFFSETS
from engine.protocol.apis import ApiKeys
from engine.records import build_batch

if TYPE_CHECKING:
    from engine.broker.api_handlers import Respond
    from engine.broker.kafka_apis import KafkaApis

TRANSACTION_KEY_TYPE = 1  # FindCoordinator's key_type for a transactional id
_MARKER_TIMEOUT_MS = 30_000  # Kafka's request.timeout.ms, which its coordinator's sends use
# what a transactional offset commit's append error is answered as (Kafka's TxnOffsetCommit)
_TXN_OFFSET_ERRORS = {
    INVALID_PRODUCER_EPOCH: PRODUCER_FENCED,
    NOT_LEADER_OR_FOLLOWER: NOT_COORDINATOR,
    NOT_ENOUGH_REPLICAS: COORDINATOR_NOT_AVAILABLE,
    NOT_ENOUGH_REPLICAS_AFTER_APPEND: COORDINATOR_NOT_AVAILABLE,
}


def ensure_transaction_state(apis: "KafkaApis") -> str:
    """`__transaction_state`, made on first use as Kafka makes it (a cluster's by the
    controller, so FindCoordinator answers COORDINATOR_NOT_AVAILABLE until it is led)."""
    if TRANSACTION_STATE not in apis.broker.metadata_cache.image.topics:
        if apis.broker.cluster is not None:
            apis._create_in_cluster(TRANSACTION_STATE, 1, TRANSACTION_STATE_CONFIGS)
        else:
            with contextlib.suppress(TopicAdminError):  # the client retries
                apis.topics.create_topic(TRANSACTION_STATE, 1, 1, dict(TRANSACTION_STATE_CONFIGS))
    return TRANSACTION_STATE


def transaction_handlers(apis: "KafkaApis") -> dict[int, Callable[..., Any]]:
    """api key -> handler(context, request, respond)."""
    broker = apis.broker
    writer = MarkerWriter(apis.replica_manager, broker.time_ms)
    coordinator = TransactionCoordinator(broker, writer)

    def marker_reached(tp: TopicPartition, producer_id: int, commit: bool) -> None:
        if tp.topic == CONSUMER_OFFSETS:  # TxnOffsetCommit's offsets count now, or go
            apis.group_coordinator.complete_txn(producer_id, commit)

    writer.listeners.append(marker_reached)
    broker.scheduler.schedule(
        "transaction-abort",
        broker.config.transaction_abort_timed_out_transaction_cleanup_interval_ms,
        coordinator.tick,
    )
    plain_init_producer_id = apis.handle_init_producer_id

    def init_producer_id(context: RequestContext, request: ApiMessage, respond: "Respond") -> None:
        if request.transactional_id is None:
            plain_init_producer_id(context, request, respond)
            return
        response_class = apis._response_class(context)
        version = context.api_version

        def answer(error: int, producer_id: int, epoch: int) -> None:
            apis._reply(
                context,
                respond,
                response_class(
                    throttle_time_ms=0,
                    error_code=error,
                    producer_id=producer_id,
                    producer_epoch=epoch,
                ),
            )

        coordinator.init_producer_id(
            request.transactional_id,
            request.transaction_timeout_ms,
            request.producer_id if version >= 3 else -1,
            request.producer_epoch if version >= 3 else -1,
            answer,
        )

    def add_partitions_to_txn(
        context: RequestContext, request: ApiMessage, respond: "Respond"
    ) -> None:
        response_class = apis._response_class(context)
        topic_class = response_class.AddPartitionsToTxnTopicResult
        partition_class = topic_class.AddPartitionsToTxnPartitionResult
        partitions = [
            TopicPartition(t.name, index)
            for t in request.v3_and_below_topics
            for index in t.partitions
        ]

        def answer(errors: dict[TopicPartition, int]) -> None:
            by_topic: dict[str, list[ApiMessage]] = {}
            for tp, error in errors.items():
                by_topic.setdefault(tp.topic, []).append(
                    partition_class(partition_index=tp.partition, partition_error_code=error)
                )
            apis._reply(
                context,
                respond,
                response_class(
                    throttle_time_ms=0,
                    results_by_topic_v3_and_below=[
                        topic_class(name=name, results_by_partition=ps)
                        for name, ps in by_topic.items()
                    ],
                ),
            )

        coordinator.add_partitions(
            request.v3_and_below_transactional_id,
            request.v3_and_below_producer_id,
            request.v3_and_below_producer_epoch,
            partitions,
            answer,
        )

    def add_offsets_to_txn(
        context: RequestContext, request: ApiMessage, respond: "Respond"
    ) -> None:
        response_class = apis._response_class(context)
        # every group's offsets are in __consumer_offsets' one partition
        offsets_partition = TopicPartition(CONSUMER_OFFSETS, 0)
        coordinator.add_partitions(
            request.transactional_id,
            request.producer_id,
            request.producer_epoch,
            [offsets_partition],
            lambda errors: apis._reply(
                context,
                respond,
                response_class(throttle_time_ms=0, error_code=errors[offsets_partition]),
            ),
        )

    def end_txn(context: RequestContext, request: ApiMessage, respond: "Respond") -> None:
        response_class = apis._response_class(context)
        coordinator.end_transaction(
            request.transactional_id,
            request.producer_id,
            request.producer_epoch,
            request.committed,
            lambda error: apis._reply(
                context, respond, response_class(throttle_time_ms=0, error_code=error)
            ),
        )

    def txn_offset_commit(context: RequestContext, request: ApiMessage, respond: "Respond") -> None:
        response_class = apis._response_class(context)
        topic_class = response_class.TxnOffsetCommitResponseTopic
        now = broker.time_ms()
        version = context.api_version
        offsets = [
            CommittedOffset(
                topic=t.name,
                partition=p.partition_index,
                offset=p.committed_offset,
                leader_epoch=p.committed_leader_epoch if version >= 2 else -1,
                metadata=p.committed_metadata,
                commit_timestamp_ms=now,
            )
            for t in request.topics
            for p in t.partitions
        ]
        offsets_partition = TopicPartition(CONSUMER_OFFSETS, 0)

        def answer(error: int) -> None:
            by_topic: dict[str, list[ApiMessage]] = {}
            for o in offsets:
                by_topic.setdefault(o.topic, []).append(
                    topic_class.TxnOffsetCommitResponsePartition(
                        partition_index=o.partition, error_code=error
                    )
                )
            apis._reply(
                context,
                respond,
                response_class(
                    throttle_time_ms=0,
                    topics=[topic_class(name=name, partitions=ps) for name, ps in by_topic.items()],
                ),
            )

        def replicated(error: int) -> None:
            if error == NONE:  # pending in the group coordinator until the marker
                apis.group_coordinator.txn_commit_offsets(
                    request.group_id, request.producer_id, offsets
                )
            answer(_TXN_OFFSET_ERRORS.get(error, error))

        if not apis.group_coordinator.active or not offsets:
            answer(NOT_COORDINATOR if offsets else NONE)
            return
        # the producer's transactional records in the offsets log (Kafka's layout), so a new
        # coordinator finds them and knows from the marker whether they count
        batch = build_batch(
            commit_records(request.group_id, offsets),
            producer_id=request.producer_id,
            producer_epoch=request.producer_epoch,
            is_transactional=True,
        )
        error, next_offset = writer.append_as_coordinator(offsets_partition, batch)
        if error != NONE:
            replicated(error)
            return
        apis.replica_manager.await_replication(
            offsets_partition, next_offset, broker.config.offsets_commit_timeout_ms, replicated
        )

    def write_txn_markers(context: RequestContext, request: ApiMessage, respond: "Respond") -> None:
        response_class = apis._response_class(context)
        marker_class = response_class.WritableTxnMarkerResult
        topic_class = marker_class.WritableTxnMarkerTopicResult
        partition_class = topic_class.WritableTxnMarkerPartitionResult
        results: list[ApiMessage | None] = [None] * len(request.markers)

        def answer(index: int, producer_id: int, errors: dict[TopicPartition, int]) -> None:
            by_topic: dict[str, list[ApiMessage]] = {}
            for tp, error in errors.items():
                by_topic.setdefault(tp.topic, []).append(
                    partition_class(partition_index=tp.partition, error_code=error)
                )
            results[index] = marker_class(
                producer_id=producer_id,
                topics=[topic_class(name=n, partitions=ps) for n, ps in by_topic.items()],
            )
            if all(r is not None for r in results):
                apis._reply(context, respond, response_class(markers=results))

        if not request.markers:
            apis._reply(context, respond, response_class(markers=[]))
        for index, marker in enumerate(request.markers):
            writer.write_markers(
                marker.producer_id,
                marker.producer_epoch,
                marker.transaction_result,
                marker.coordinator_epoch,
                [TopicPartition(t.name, i) for t in marker.topics for i in t.partition_indexes],
                _MARKER_TIMEOUT_MS,
                functools.partial(answer, index, marker.producer_id),
            )

    return {
        **transaction_admin_handlers(apis, coordinator),
        ApiKeys.INIT_PRODUCER_ID: init_producer_id,
        ApiKeys.ADD_PARTITIONS_TO_TXN: add_partitions_to_txn,
        ApiKeys.ADD_OFFSETS_TO_TXN: add_offsets_to_txn,
        ApiKeys.END_TXN: end_txn,
        ApiKeys.TXN_OFFSET_COMMIT: txn_offset_commit,
        ApiKeys.WRITE_TXN_MARKERS: write_txn_markers,
    }
