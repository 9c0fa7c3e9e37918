"""FetchClient: a consumer without a library, for measuring what a broker does when it serves.

Raw Fetch requests (v11), one in flight on one connection as a consumer's fetch loop sends them,
responses received into one reused buffer; no prefetching, no decoding of records. A broker may
end a response with part of a batch (Kafka does; kbench's engine never does), which is counted
when the next fetch returns it whole. Works against any Kafka-protocol broker.
"""

import socket
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

from hdrh.histogram import HdrHistogram
from kafka.protocol.api_message import ApiMessage
from kafka.protocol.consumer.fetch import FetchResponse

from engine.protocol.client import (
    FetchPosition,
    ProtocolError,
    decode_response,
    encode_request,
    read_frame,
)
from engine.protocol.client import fetch_request as client_fetch_request

_FETCH_VERSION = 11
_MAX_RESPONSE = 0x7FFFFFFF  # bounded by the request's max_bytes, not by a guess here
_BATCH_PREFIX = struct.Struct(">qi")  # baseOffset, batchLength
_INT32 = struct.Struct(">i")
_LAST_OFFSET_DELTA_AT = 23
_RECORD_COUNT_AT = 57
_HEADER_SIZE = 61


class FetchError(Exception):
    """The broker refused a fetch or did not answer as one."""


@dataclass
class FetchedLog:
    bytes: int  # record bytes the responses carried
    batch_bytes: int  # of those, in whole record batches
    batches: int
    records: int
    requests: int
    next_offset: int  # after the last whole batch
    high_watermark: int
    seconds: float
    latency: HdrHistogram = field(repr=False)  # ns per Fetch round trip


class BatchHeader(NamedTuple):
    base_offset: int
    next_offset: int  # after the batch's last offset
    records: int
    end: int  # position in the response after the batch


def whole_batches(view: memoryview) -> Iterator[BatchHeader]:
    """The whole record batches at the front of a Fetch response's records, in order; a partial
    batch at the end is left for the next fetch."""
    position = 0
    while position + _HEADER_SIZE <= len(view):
        base_offset, length = _BATCH_PREFIX.unpack_from(view, position)
        batch_end = position + _BATCH_PREFIX.size + length
        if batch_end > len(view):
            return
        last_delta = _INT32.unpack_from(view, position + _LAST_OFFSET_DELTA_AT)[0]
        records = _INT32.unpack_from(view, position + _RECORD_COUNT_AT)[0]
        yield BatchHeader(base_offset, base_offset + last_delta + 1, records, batch_end)
        position = batch_end


def fetch_request(
    topic: str,
    partition: int,
    offset: int,
    max_bytes: int,
    max_wait_ms: int = 0,
    min_bytes: int = 1,
    version: int = _FETCH_VERSION,
) -> ApiMessage:
    """A consumer's Fetch of one partition (replica id -1, no session, read uncommitted)."""
    return client_fetch_request(
        [FetchPosition(topic, partition, offset, max_bytes)],
        max_bytes=max_bytes,
        max_wait_ms=max_wait_ms,
        min_bytes=min_bytes,
        version=version,
    )


class FetchClient:
    def __init__(self, bootstrap: str, client_id: str = "kbench-fetch") -> None:
        host, _, port = bootstrap.rpartition(":")
        self.sock = socket.create_connection((host, int(port)), timeout=60)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.client_id = client_id
        self._buffer: bytearray | None = None  # reused for responses
        self._correlation = 0

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "FetchClient":
        return self

    def __exit__(self, *_) -> None:
        self.close()

    def fetch(
        self,
        topic: str,
        partition: int,
        offset: int,
        max_bytes: int,
        max_wait_ms: int = 0,
        min_bytes: int = 1,
    ) -> tuple[int, memoryview]:
        """One Fetch: (high watermark, the records bytes, valid until the next fetch). The broker
        answers when min_bytes have arrived or max_wait_ms have passed (a long poll)."""
        request = fetch_request(topic, partition, offset, max_bytes, max_wait_ms, min_bytes)
        self._correlation += 1
        self.sock.sendall(encode_request(request, self._correlation, self.client_id))
        try:
            self._buffer, frame = read_frame(self.sock, self._buffer, _MAX_RESPONSE)
            response = decode_response(frame, FetchResponse, _FETCH_VERSION, self._correlation)
        except ProtocolError as exc:
            raise FetchError(str(exc)) from None
        if response.error_code:
            raise FetchError(f"fetch failed with error {response.error_code}")
        data = response.responses[0].partitions[0]
        if data.error_code:
            raise FetchError(f"fetch of {topic}-{partition} failed with error {data.error_code}")
        return data.high_watermark, memoryview(data.records or b"")

    def read_all(
        self,
        topic: str,
        partition: int,
        max_bytes: int,
        offset: int = 0,
        digest=None,
    ) -> FetchedLog:
        """Fetch from offset to the high watermark the first response gives, max_bytes per
        request; digest (a hashlib object), if given, takes every whole batch's bytes in order."""
        latency = HdrHistogram(1, 60_000_000_000, 3)
        received = batch_bytes = batches = records = requests = 0
        end: int | None = None
        started = time.perf_counter_ns()
        while end is None or offset < end:
            before = time.perf_counter_ns()
            high_watermark, view = self.fetch(topic, partition, offset, max_bytes)
            latency.record_value(max(time.perf_counter_ns() - before, 1))
            end = high_watermark if end is None else end
            requests += 1
            received += len(view)
            position = 0
            for batch in whole_batches(view):
                records += batch.records
                offset = batch.next_offset
                position = batch.end
                batches += 1
            if position == 0:
                if offset >= end:
                    break
                raise FetchError(f"no whole batch at offset {offset} of {topic}-{partition}")
            if digest is not None:
                digest.update(view[:position])
            batch_bytes += position
        seconds = (time.perf_counter_ns() - started) / 1e9
        return FetchedLog(
            received, batch_bytes, batches, records, requests, offset, end or 0, seconds, latency
        )
