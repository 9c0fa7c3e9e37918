"""RequestContext: who sent a request and how, for the handler that answers it (Kafka's
RequestContext): the request header, the client's address and the listener it came in on. The
principal joins when authentication does.

Immutable, so safe to share; made by the event loop, one per request.
"""

from collections.abc import Callable
from dataclasses import dataclass

from kafka.protocol.api_header import RequestHeader


@dataclass(frozen=True, slots=True)
class RequestContext:
    header: RequestHeader
    client_address: str  # host:port of the connection
    listener: str  # host:port the request arrived on
    size: int = 0  # bytes of the request frame, header included (Kafka's Request.sizeInBytes)
    # mute(ms): stop reading the connection for ms (a quota's throttle, KIP-219), if it has one
    mute: Callable[[int], None] | None = None

    @property
    def api_version(self) -> int:
        return self.header.request_api_version
