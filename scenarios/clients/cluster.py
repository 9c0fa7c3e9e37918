"""The run's own dealings with a cluster: is the bootstrap address a Kafka broker, which topics
does it hold, and deleting the ones a run created.

Plain Kafka requests over one socket (kafka-python's generated request classes), in versions
that both kbench's engine and any Kafka from 2.1 to 4.x serve (KIP-896 keeps Metadata v4,
CreateTopics v4 and DeleteTopics v3). Every failure is a ClusterError whose message is one line
naming the address and what was expected, for the CLI to print as is.
"""

import json
import socket
import urllib.request
from dataclasses import dataclass
from typing import Any

from kafka.errors import for_code
from kafka.protocol.admin.topics import DeleteTopicsRequest, DeleteTopicsResponse
from kafka.protocol.api_message import ApiMessage
from kafka.protocol.metadata.api_versions import ApiVersionsRequest, ApiVersionsResponse
from kafka.protocol.metadata.metadata import MetadataRequest, MetadataResponse

from engine.broker.config import parse_listener
from engine.protocol.client import (
    ConnectionClosed,
    ProtocolError,
    decode_response,
    encode_request,
    read_frame,
)

_MAX_RESPONSE = 100 << 20  # a larger length prefix means the peer does not speak Kafka
_METADATA_VERSION = 4
_DELETE_TOPICS_VERSION = 3


class ClusterError(Exception):
    """The cluster cannot be reached or does not answer as a Kafka broker; the message is one
    line for the user."""


class KafkaConnection:
    """One blocking connection to a broker: send a request, read its response.

    Not thread-safe: requests and responses are matched by order on the one socket."""

    def __init__(self, address: str, *, timeout_s: float = 10.0, client_id: str = "kbench"):
        self.address = address
        try:
            host, port = parse_listener(address)
        except ValueError as exc:
            raise ClusterError(f"{address}: {exc}") from None
        try:
            self.sock = socket.create_connection((host, port), timeout=timeout_s)
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise ClusterError(
                f"cannot connect to {address}: {reason} (is a Kafka broker listening there?)"
            ) from None
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.client_id = client_id
        self._correlation = 0
        self._buffer: bytearray | None = None  # reused for responses

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "KafkaConnection":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def frame(self, request: ApiMessage) -> bytes:
        """The request with its header and length prefix, ready to send (a new correlation id)."""
        self._correlation += 1
        return encode_request(request, self._correlation, self.client_id)

    def read_frame(self) -> memoryview:
        """The next response frame (header included, length prefix not), valid until the next
        read."""
        try:
            self._buffer, frame = read_frame(self.sock, self._buffer, _MAX_RESPONSE)
        except TimeoutError:
            raise ClusterError(
                f"{self.address} did not answer within {self.sock.gettimeout():g} s "
                "(is it a Kafka broker?)"
            ) from None
        except ConnectionClosed:
            raise ClusterError(
                f"{self.address} closed the connection (is it a Kafka broker?)"
            ) from None
        except ProtocolError as exc:
            raise ClusterError(f"{self.address} answered with {exc}") from None
        except OSError as exc:
            raise ClusterError(f"{self.address}: {exc.strerror or exc}") from None
        return frame

    def request(self, request: ApiMessage, response_class: type[ApiMessage]) -> ApiMessage:
        """Send one request and decode its response as `response_class` of the same version."""
        try:
            self.sock.sendall(self.frame(request))
        except OSError as exc:
            raise ClusterError(f"{self.address}: {exc.strerror or exc}") from None
        frame = self.read_frame()
        try:
            return decode_response(frame, response_class, request.API_VERSION, self._correlation)
        except ProtocolError:  # the bytes were not this response
            raise ClusterError(
                f"{self.address} answered, but not with a Kafka {response_class.__name__} "
                "(is it a Kafka broker?)"
            ) from None


@dataclass(frozen=True, slots=True)
class ClusterInfo:
    bootstrap: str
    brokers: dict[int, str]  # node id -> host:port
    controller: int  # node id, -1 when the cluster does not say
    topics: dict[str, int]  # name -> partitions

    @property
    def controller_address(self) -> str:
        return self.brokers.get(self.controller, self.bootstrap)


def probe(bootstrap: str, timeout_s: float = 10.0) -> ClusterInfo:
    """Check that `bootstrap` is a Kafka broker (ApiVersions, then Metadata for every topic) and
    return what it says of its cluster; ClusterError with a one-line reason otherwise."""
    with KafkaConnection(bootstrap, timeout_s=timeout_s) as connection:
        versions = connection.request(ApiVersionsRequest[0](), ApiVersionsResponse)
        if versions.error_code:  # UNSUPPORTED_VERSION still lists the ranges (KIP-511)
            raise ClusterError(
                f"{bootstrap} refused ApiVersions v0 with error {versions.error_code}"
            )
        return _metadata(connection, bootstrap)


def _metadata(connection: KafkaConnection, bootstrap: str) -> ClusterInfo:
    cls = MetadataRequest[_METADATA_VERSION]
    metadata = connection.request(
        cls(topics=None, allow_auto_topic_creation=False), MetadataResponse
    )
    return ClusterInfo(
        bootstrap=bootstrap,
        brokers={b.node_id: f"{b.host}:{b.port}" for b in metadata.brokers},
        controller=metadata.controller_id,
        topics={t.name: len(t.partitions) for t in metadata.topics if not t.error_code},
    )


def delete_topics(bootstrap: str, prefix: str, timeout_s: float = 30.0) -> list[str]:
    """Delete every topic whose name starts with `prefix`; returns the names deleted. Sent to
    the controller the cluster names (older, ZooKeeper-based Kafka wants it there)."""
    cluster = probe(bootstrap, timeout_s)
    names = sorted(t for t in cluster.topics if t.startswith(prefix))
    if not names:
        return []
    with KafkaConnection(cluster.controller_address, timeout_s=timeout_s) as connection:
        cls = DeleteTopicsRequest[_DELETE_TOPICS_VERSION]
        response = connection.request(
            cls(topic_names=names, timeout_ms=int(timeout_s * 1000)), DeleteTopicsResponse
        )
    failed = [
        f"{r.name}: {for_code(r.error_code).__name__}" for r in response.responses if r.error_code
    ]
    if failed:
        raise ClusterError(f"could not delete topics on {bootstrap}: {'; '.join(failed)}")
    return names


def partition_views(address: str, timeout_s: float = 5.0) -> dict[str, dict[str, Any]]:
    """A kbench broker's own view of the partitions it holds, by "topic-partition" (GET /stats
    on its Kafka port: role, ISR, log end offset, high watermark, and on a leader each
    follower's log end offset and lag). The engine's only: another Kafka serves no /stats."""
    with urllib.request.urlopen(f"http://{address}/stats", timeout=timeout_s) as response:
        return json.loads(response.read())["partitions"]
