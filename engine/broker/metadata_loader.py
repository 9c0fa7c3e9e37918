"""MetadataLoader: a broker follows the controller's metadata log (Kafka's broker-side Raft
observer and MetadataLoader).

It long-polls Fetch of `__cluster_metadata` partition 0 from the controller (replica id = this
broker, max wait 500 ms, as Kafka's KafkaRaftClient), replays every record it gets onto the
current image with MetadataDelta, and publishes the new image with the delta, from which the
broker applies what concerns it (leaders, followers, deletions). It keeps no copy of the log:
a restarted broker replays it from the start, which for a test or benchmark cluster's metadata
takes milliseconds. The offset of the last record applied goes to the controller in heartbeats.

Not thread-safe: the event loop's thread alone uses it.
"""

import logging
from collections.abc import Callable
from typing import Any

from kafka.protocol.consumer.fetch import FetchResponse

from engine.errors import NONE
from engine.metadata.image import ClusterImage, MetadataDelta, MetadataError
from engine.metadata.records import MetadataRecordError, read_metadata_records
from engine.protocol.client import FetchPosition, fetch_request
from engine.protocol.network_client import NetworkClient
from engine.records import iter_batches

log = logging.getLogger(__name__)

METADATA_TOPIC = "__cluster_metadata"
_MAX_WAIT_MS = 500  # KafkaRaftClient's MAX_FETCH_WAIT_MS
_MAX_BYTES = 8 << 20
_RETRY_BACKOFF_MS = 100


class MetadataLoader:
    def __init__(
        self,
        client: NetworkClient,
        controller: str,
        node_id: int,
        image: ClusterImage,
        publish: Callable[[ClusterImage, MetadataDelta], None],
        time_ms: Callable[[], int],
    ) -> None:
        self.client = client
        self.controller = controller
        self.node_id = node_id
        self.image = image
        self._publish = publish
        self._time_ms = time_ms
        self.next_offset = 0  # the offset of the next batch to fetch
        self.high_watermark = -1  # the controller's, from the last response
        self.failed: str | None = None  # the log could not be applied: the broker must stop
        self._in_flight = False
        self._next_ms = 0

    @property
    def applied_offset(self) -> int:
        """The offset of the last record applied (-1: none yet)."""
        return self.image.offset

    @property
    def caught_up(self) -> bool:
        return 0 <= self.high_watermark <= self.next_offset

    def tick(self) -> None:
        if self._in_flight or self.failed or self._time_ms() < self._next_ms:
            return
        self._in_flight = True
        request = fetch_request(
            [FetchPosition(METADATA_TOPIC, 0, self.next_offset, _MAX_BYTES)],
            max_bytes=_MAX_BYTES,
            max_wait_ms=_MAX_WAIT_MS,
            replica_id=self.node_id,
        )
        self.client.send(self.controller, request, FetchResponse, self._on_response)

    def next_deadline_ms(self) -> int | None:
        return None if self._in_flight or self.failed else self._next_ms

    def _on_response(self, response: Any, error: Exception | None) -> None:
        self._in_flight = False
        partition = None
        if error is None and response.error_code == NONE and response.responses:
            partition = response.responses[0].partitions[0]
        if partition is None or partition.error_code != NONE:
            code = error or (partition.error_code if partition else response.error_code)
            log.debug("metadata fetch from %s failed: %s", self.controller, code)
            self._next_ms = self._time_ms() + _RETRY_BACKOFF_MS
            return
        self.high_watermark = partition.high_watermark
        records = partition.records or b""
        if records:
            self._apply(records)
        self._next_ms = self._time_ms()  # at once: the long poll does the waiting

    def _apply(self, records: bytes) -> None:
        delta = MetadataDelta(self.image)
        try:
            for offset, record in read_metadata_records(records):
                delta.replay(record, offset)
            next_offset = self.next_offset
            for batch in iter_batches(records):
                next_offset = batch.next_offset
        except (MetadataError, MetadataRecordError, ValueError) as exc:
            self.failed = f"metadata log at offset {self.next_offset}: {exc}"
            log.error("cannot apply the %s; stopping", self.failed)
            return
        self.next_offset = next_offset
        self.image = delta.apply()
        self._publish(self.image, delta)
