"""The client side of the protocol: requests framed, response frames read and decoded.

codec.py is the broker's side (requests in, responses out); this is its mirror for whatever
talks to a broker: kbench's load generator, fetch client and cluster checks today, replica
fetchers and broker-to-controller calls next. Framing and decoding are sans-I/O; the one I/O
helper reads a whole frame from a blocking socket into a caller's reusable buffer.
"""

import socket
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from kafka.protocol.api_message import ApiMessage
from kafka.protocol.consumer.fetch import FetchRequest

_SIZE = struct.Struct(">i")
_CORRELATION = struct.Struct(">i")  # the first field of every response header


class ProtocolError(Exception):
    """Bytes that are not the expected response: the connection is unusable."""


class ConnectionClosed(ProtocolError):
    """The peer closed the connection before a whole frame arrived."""


def encode_request(request: ApiMessage, correlation_id: int, client_id: str) -> bytes:
    """The request with its header (the version its class asks for) and size prefix."""
    request.with_header(correlation_id=correlation_id, client_id=client_id)
    body = bytes(request.encode(header=True))
    return _SIZE.pack(len(body)) + body


def decode_response(
    frame: bytes | memoryview, response_class: type[ApiMessage], version: int, correlation_id: int
) -> ApiMessage:
    """A response frame (size prefix removed) as `response_class` of `version`, after checking
    that it answers request `correlation_id`."""
    if len(frame) < _CORRELATION.size:
        raise ProtocolError(f"a response frame of {len(frame)} bytes has no header")
    (answered,) = _CORRELATION.unpack_from(frame)
    if answered != correlation_id:
        raise ProtocolError(f"response to request {answered}, expected {correlation_id}")
    try:
        return response_class.decode(frame, version=version, header=True)
    except Exception as exc:  # the generated decoders raise whatever a bad byte provokes
        raise ProtocolError(f"not a {response_class.__name__} v{version}: {exc!r}") from None


def read_frame(
    sock: socket.socket, buffer: bytearray | None, max_size: int
) -> tuple[bytearray, memoryview]:
    """The next frame from a blocking socket, without its size prefix, received into `buffer`
    (a new, larger one when it is None or too small: views of the old one may still be held).
    Returns the buffer to pass next time and the frame, valid until the buffer is reused."""
    prefix = bytearray(_SIZE.size)
    (size,) = _SIZE.unpack(receive_exactly(sock, memoryview(prefix)))
    if not 0 < size <= max_size:
        raise ProtocolError(f"a frame of {size} bytes: not the Kafka protocol")
    if buffer is None or size > len(buffer):
        buffer = bytearray(size)
    return buffer, receive_exactly(sock, memoryview(buffer)[:size])


def receive_exactly(sock: socket.socket, view: memoryview) -> memoryview:
    """Fill `view` from a blocking socket; its timeout surfaces as TimeoutError."""
    got = 0
    while got < len(view):
        received = sock.recv_into(view[got:])
        if not received:
            raise ConnectionClosed("the peer closed the connection")
        got += received
    return view


@dataclass(frozen=True, slots=True)
class FetchPosition:
    """One partition of a Fetch: where to read and how much (a follower also says its epoch,
    its log start, and the epoch of its last batch)."""

    topic: str
    partition: int
    offset: int
    max_bytes: int
    current_leader_epoch: int = -1
    log_start_offset: int = -1
    last_fetched_epoch: int = -1


def fetch_request(
    positions: Sequence[FetchPosition],
    *,
    max_bytes: int,
    max_wait_ms: int = 0,
    min_bytes: int = 1,
    replica_id: int = -1,
    version: int = 12,
    rack_id: str = "",
    session_id: int = 0,
    session_epoch: int = -1,
    forgotten: Sequence[tuple[str, int]] = (),
) -> ApiMessage:
    """A Fetch, read uncommitted: a consumer's (replica id -1), a follower's (its broker id), or
    a broker's fetch of the metadata log. Full and sessionless unless a fetch session (KIP-227)
    is given: session 0 epoch 0 opens one, then (its id, epoch n) sends only what changed and
    `forgotten` (topic, partition) pairs."""
    cls = FetchRequest[version]
    topics: dict[str, list] = {}
    for p in positions:
        topics.setdefault(p.topic, []).append(
            cls.FetchTopic.FetchPartition(
                partition=p.partition,
                current_leader_epoch=p.current_leader_epoch,
                fetch_offset=p.offset,
                last_fetched_epoch=p.last_fetched_epoch,
                log_start_offset=p.log_start_offset,
                partition_max_bytes=p.max_bytes,
            )
        )
    forget: dict[str, list[int]] = {}
    for topic, partition in forgotten:
        forget.setdefault(topic, []).append(partition)
    return cls(
        replica_id=replica_id,
        max_wait_ms=max_wait_ms,
        min_bytes=min_bytes,
        max_bytes=max_bytes,
        isolation_level=0,
        session_id=session_id,
        session_epoch=session_epoch,
        topics=[cls.FetchTopic(topic=t, partitions=parts) for t, parts in topics.items()],
        forgotten_topics_data=[
            cls.ForgottenTopic(topic=t, partitions=parts) for t, parts in forget.items()
        ],
        rack_id=rack_id,
    )
