"""Replica fetchers: a follower copies its leaders' logs (Kafka's ReplicaFetcherManager and
ReplicaFetcherThread, on the event loop instead of threads).

One fetcher per leader broker, one request in flight. A partition starts TRUNCATING when this
broker becomes its follower in a new leader epoch: an OffsetForLeaderEpoch for the epoch its log
ends in tells where the leader's history and this log part (KIP-101, KIP-279); the tail the leader
never had is cut, asking again while the epochs disagree. Then FETCHING: Fetch (replica id = this
broker, so the leader reads to its log end and learns how far this follower has got) from the log
end, batches appended verbatim, the high watermark taken from the leader (capped at this log's
end). Fetches go in a fetch session with the leader (KIP-227, fetch_session_handler.py), as
Kafka's followers' do: after the first, only partitions whose position moved are sent, and only
those with news come back; a session error makes the next fetch full, at once.
A partition whose leader answers FENCED_LEADER_EPOCH, NOT_LEADER_OR_FOLLOWER or
UNKNOWN_LEADER_EPOCH waits replica.fetch.backoff.ms (new metadata usually comes first and
replaces its state); a failed request backs the whole fetcher off.

Not thread-safe: the event loop's thread alone uses it.
"""

import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kafka.protocol.consumer.fetch import FetchResponse
from kafka.protocol.consumer.offsets import (
    OffsetForLeaderEpochRequest,
    OffsetForLeaderEpochResponse,
)

from engine.broker.config import KafkaConfig
from engine.broker.fetch_session_handler import FetchRequestData, FetchSessionHandler
from engine.broker.partition import Partition
from engine.common import TopicPartition
from engine.errors import NONE, OFFSET_OUT_OF_RANGE, KafkaError
from engine.protocol.client import FetchPosition, fetch_request
from engine.protocol.network_client import NetworkClient
from engine.storage.leader_epoch_cache import UNDEFINED

log = logging.getLogger(__name__)

_EPOCH_TOPIC = OffsetForLeaderEpochRequest.OffsetForLeaderTopic


class FetchState(enum.Enum):
    TRUNCATING = "TRUNCATING"
    FETCHING = "FETCHING"


@dataclass
class PartitionFetchState:
    partition: Partition
    leader_epoch: int
    state: FetchState = FetchState.TRUNCATING
    delayed_until_ms: int = 0


class ReplicaFetcher:
    """Fetches every partition this broker follows from one leader."""

    def __init__(
        self,
        leader_id: int,
        address: str,
        config: KafkaConfig,
        client: NetworkClient,
        time_ms: Callable[[], int],
        on_high_watermark: Callable[[TopicPartition], None],
    ) -> None:
        self.leader_id = leader_id
        self.address = address
        self.config = config
        self.client = client
        self._time_ms = time_ms
        self._on_high_watermark = on_high_watermark
        self.partitions: dict[TopicPartition, PartitionFetchState] = {}
        self.in_flight = False
        self._next_ms = 0
        self._session = FetchSessionHandler()

    def tick(self) -> None:
        now = self._time_ms()
        if self.in_flight or now < self._next_ms or not self.partitions:
            return
        ready = [s for s in self.partitions.values() if s.delayed_until_ms <= now]
        truncating = [s for s in ready if s.state is FetchState.TRUNCATING]
        if truncating:
            self._send_offsets_for_leader_epoch(truncating)
        elif ready:
            self._send_fetch(ready)

    def next_deadline_ms(self) -> int | None:
        if self.in_flight or not self.partitions:
            return None
        return max(self._next_ms, min(s.delayed_until_ms for s in self.partitions.values()))

    def _back_off(self, error: object) -> None:
        self.in_flight = False
        self._next_ms = self._time_ms() + self.config.replica_fetch_backoff_ms
        log.info("fetching from broker %d (%s) failed: %s", self.leader_id, self.address, error)

    # -- truncation -----------------------------------------------------------------------------
    def _send_offsets_for_leader_epoch(self, states: list[PartitionFetchState]) -> None:
        asking: dict[str, list[Any]] = {}
        for s in states:
            latest = s.partition.log.leader_epoch_cache.latest_epoch
            if latest < 0:  # no epoch to compare: keep what the high watermark covers
                s.partition.log.truncate_to(s.partition.high_watermark)
                s.state = FetchState.FETCHING
                continue
            asking.setdefault(s.partition.tp.topic, []).append(
                _EPOCH_TOPIC.OffsetForLeaderPartition(
                    partition=s.partition.tp.partition,
                    current_leader_epoch=s.leader_epoch,
                    leader_epoch=latest,
                )
            )
        if not asking:
            return
        request = OffsetForLeaderEpochRequest(
            version=4,
            replica_id=self.config.node_id,
            topics=[
                _EPOCH_TOPIC(topic=topic, partitions=partitions)
                for topic, partitions in asking.items()
            ],
        )
        self.in_flight = True
        self.client.send(
            self.address, request, OffsetForLeaderEpochResponse, self._on_epoch_end_offsets
        )

    def _on_epoch_end_offsets(self, response: Any, error: Exception | None) -> None:
        if error is not None:
            self._back_off(error)
            return
        self.in_flight = False
        now = self._time_ms()
        for topic in response.topics:
            for p in topic.partitions:
                state = self.partitions.get(TopicPartition(topic.topic, p.partition))
                if state is None or state.state is not FetchState.TRUNCATING:
                    continue  # removed or replaced while the request was out
                if p.error_code != NONE:
                    state.delayed_until_ms = now + self.config.replica_fetch_backoff_ms
                    continue
                if self._truncate(state.partition, p.leader_epoch, p.end_offset):
                    state.state = FetchState.FETCHING

    @staticmethod
    def _truncate(partition: Partition, leader_epoch: int, leader_end: int) -> bool:
        """Kafka's getOffsetTruncationState: cut what the leader does not have. True when done;
        False when the epochs still disagree and the leader must be asked again."""
        log_ = partition.log
        end = log_.log_end_offset
        if leader_end == UNDEFINED:  # the leader knows no such epoch: trust the high watermark
            target, done = partition.high_watermark, True
        elif leader_epoch == UNDEFINED:
            target, done = min(leader_end, end), True
        else:
            local_epoch, local_end = log_.leader_epoch_cache.end_offset_for(leader_epoch, end)
            if local_end == UNDEFINED:
                target, done = min(leader_end, end), True
            elif local_epoch != leader_epoch:
                target, done = min(local_end, end), False
            else:
                target, done = min(leader_end, local_end, end), True
        if target < end:
            log.info(
                "%s: truncating from offset %d to %d to follow the leader's epoch %d",
                partition.tp,
                end,
                target,
                leader_epoch,
            )
            log_.truncate_to(target)
        return done or target >= end

    # -- fetching -------------------------------------------------------------------------------
    def _send_fetch(self, states: list[PartitionFetchState]) -> None:
        c = self.config
        # a fetch session with the leader (KIP-227): only partitions whose position changed
        data = self._session.build(
            [
                FetchPosition(
                    s.partition.tp.topic,
                    s.partition.tp.partition,
                    s.partition.log.log_end_offset,
                    c.replica_fetch_max_bytes,
                    current_leader_epoch=s.leader_epoch,
                    log_start_offset=s.partition.log.log_start_offset,
                )
                for s in states
            ]
        )
        request = fetch_request(
            data.to_send,
            max_bytes=c.replica_fetch_response_max_bytes,
            max_wait_ms=c.replica_fetch_wait_max_ms,
            min_bytes=c.replica_fetch_min_bytes,
            replica_id=c.node_id,
            session_id=data.session_id,
            session_epoch=data.epoch,
            forgotten=data.to_forget,
        )
        self.in_flight = True
        self.client.send(
            self.address,
            request,
            FetchResponse,
            lambda response, error: self._on_fetch(response, error, data),
        )

    def _on_fetch(self, response: Any, error: Exception | None, data: FetchRequestData) -> None:
        if error is not None:
            self._session.handle_error()
            self._back_off(error)
            return
        if not self._session.handle_response(response, data):
            self.in_flight = False  # a session error: the next fetch, full, goes at once
            log.info("fetch session with broker %d: error %d", self.leader_id, response.error_code)
            return
        self.in_flight = False
        now = self._time_ms()
        for topic in response.responses:
            for p in topic.partitions:
                tp = TopicPartition(topic.topic, p.partition_index)
                state = self.partitions.get(tp)
                if state is None or state.state is not FetchState.FETCHING:
                    continue
                if p.error_code == OFFSET_OUT_OF_RANGE:
                    self._out_of_range(state, p.log_start_offset)
                    continue
                if p.error_code != NONE:
                    state.delayed_until_ms = now + self.config.replica_fetch_backoff_ms
                    continue
                self._process(state, p)

    @staticmethod
    def _out_of_range(state: PartitionFetchState, leader_log_start_offset: int) -> None:
        """Kafka's handleOutOfRangeError: a log that ends below the leader's start (records
        deleted or expired while this broker was away) starts over empty there; otherwise the
        leader's log ends below this one's, and truncation finds where. Kafka asks the leader
        for its start with ListOffsets; kbench's leaders send it with the error."""
        log_ = state.partition.log
        if leader_log_start_offset > log_.log_end_offset:
            log.info(
                "%s: the leader's log starts at %d, after this log's end %d: starting over there",
                state.partition.tp,
                leader_log_start_offset,
                log_.log_end_offset,
            )
            log_.truncate_fully_and_start_at(leader_log_start_offset)
        else:
            state.state = FetchState.TRUNCATING

    def _process(self, state: PartitionFetchState, data: Any) -> None:
        partition = state.partition
        records = data.records
        if records:
            try:
                partition.append_records_as_follower(records)
            except KafkaError as exc:
                # a batch that does not continue the log, or a failing disk: start over
                log.warning("%s: follower append failed: %s", partition.tp, exc)
                state.state = FetchState.TRUNCATING
                state.delayed_until_ms = self._time_ms() + self.config.replica_fetch_backoff_ms
                return
        before = partition.high_watermark
        partition.update_follower_high_watermark(data.high_watermark)
        partition.update_follower_log_start_offset(data.log_start_offset)
        if partition.high_watermark != before:
            self._on_high_watermark(partition.tp)


class ReplicaFetcherManager:
    """The fetchers, one per leader broker; partitions move between them as leaders change."""

    def __init__(
        self,
        config: KafkaConfig,
        client: NetworkClient,
        time_ms: Callable[[], int],
        on_high_watermark: Callable[[TopicPartition], None],
    ) -> None:
        self.config = config
        self.client = client
        self._time_ms = time_ms
        self._on_high_watermark = on_high_watermark
        self.fetchers: dict[tuple[int, str], ReplicaFetcher] = {}

    def add_partition(self, partition: Partition, leader_id: int, address: str) -> None:
        """Follow partition from leader_id at address, from truncation on."""
        self.remove_partition(partition.tp)
        key = (leader_id, address)
        fetcher = self.fetchers.get(key)
        if fetcher is None:
            fetcher = self.fetchers[key] = ReplicaFetcher(
                leader_id,
                address,
                self.config,
                self.client,
                self._time_ms,
                self._on_high_watermark,
            )
        fetcher.partitions[partition.tp] = PartitionFetchState(partition, partition.leader_epoch)

    def remove_partition(self, tp: TopicPartition) -> None:
        for fetcher in self.fetchers.values():
            fetcher.partitions.pop(tp, None)  # an emptied fetcher goes at the next tick

    def fetching(self, tp: TopicPartition) -> PartitionFetchState | None:
        for fetcher in self.fetchers.values():
            state = fetcher.partitions.get(tp)
            if state is not None:
                return state
        return None

    def tick(self) -> None:
        for key, fetcher in list(self.fetchers.items()):
            if not fetcher.partitions and not fetcher.in_flight:
                del self.fetchers[key]
                continue
            fetcher.tick()

    def next_deadline_ms(self) -> int | None:
        deadlines = [f.next_deadline_ms() for f in self.fetchers.values()]
        return min((d for d in deadlines if d is not None), default=None)
