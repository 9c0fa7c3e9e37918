"""The transaction APIs a broker serves (KIP-98), merged into KafkaApis' dispatch.

WriteTxnMarkers (27): a transaction coordinator asks this broker, leader of the partitions named,
to append COMMIT or ABORT markers (engine/broker/transaction_markers.py); each partition is
answered once its marker is on its ISR.

Not thread-safe: the event loop's thread alone uses them, as KafkaApis.
"""

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kafka.protocol.api_message import ApiMessage

from engine.broker.request_context import RequestContext
from engine.broker.transaction_markers import MarkerWriter
from engine.common import TopicPartition
from engine.protocol.apis import ApiKeys

if TYPE_CHECKING:
    from engine.broker.api_handlers import Respond
    from engine.broker.kafka_apis import KafkaApis

_MARKER_TIMEOUT_MS = 30_000  # Kafka's request.timeout.ms, which its coordinator's sends use


def transaction_handlers(apis: "KafkaApis") -> dict[int, Callable[..., Any]]:
    """api key -> handler(context, request, respond)."""
    writer = MarkerWriter(apis.replica_manager, apis.broker.time_ms)

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

    return {ApiKeys.WRITE_TXN_MARKERS: write_txn_markers}
