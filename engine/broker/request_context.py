"""RequestContext: who sent a request and how, for the handler that answers it (Kafka's
RequestContext): the request header, the client's address and the listener it came in on. The
principal joins when authentication does.

Immutable, so safe to share; made by the event loop, one per request.
"""

from dataclasses import dataclass

from kafka.protocol.api_header import RequestHeader


@dataclass(frozen=True, slots=True)
class RequestContext:
    header: RequestHeader
    client_address: str  # host:port of the connection
    listener: str  # host:port the request arrived on

    @property
    def api_version(self) -> int:
        return self.header.request_api_version
