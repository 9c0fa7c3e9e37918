"""ApiHandlers: what a node's request handlers share, a broker's (KafkaApis) and a controller's
(ControllerApis): dispatch by API key, the per-API counters `GET /stats` shows, response framing,
and ApiVersions answered from the node's own API table.

Sans-I/O: a handler gets the request's context, the decoded request and `respond`, and calls
`respond` exactly once with the response frame as parts (bytes, and file slices for Fetch data),
now or later; `respond(None)` sends nothing (Produce with acks=0). Not thread-safe: the event
loop's thread alone uses it.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kafka.protocol.api_message import ApiMessage

from engine.broker.request_context import RequestContext
from engine.errors import NONE, UNSUPPORTED_VERSION
from engine.protocol.apis import ApiKeys, ApiTable
from engine.protocol.codec import encode_response, supported
from engine.protocol.fetch_response import RecordsSlice

# a response frame as parts (bytes, and Fetch's record slices, sent as they are), or None: no reply
Parts = list[bytes | RecordsSlice]
Respond = Callable[[Parts | None], None]
Handler = Callable[[RequestContext, Any, Respond], None]


@dataclass
class ApiStats:
    """Per-API request counts and latency (request read to response ready), in the node."""

    requests: int = 0
    total_latency_ms: float = 0.0
    max_latency_ms: float = 0.0


@dataclass
class BrokerStats:
    apis: dict[str, ApiStats] = field(default_factory=dict)
    bytes_in: int = 0
    bytes_out: int = 0
    bytes_sendfile: int = 0  # fetch data sent by os.sendfile
    bytes_copied: int = 0  # fetch data sent by read + send (zero.copy.enable=false)
    connections_accepted: int = 0
    connections_closed_on_error: int = 0
    connections_throttled: int = 0  # times a quota muted a connection (KIP-219)

    def record(self, api: str, latency_ms: float) -> None:
        entry = self.apis.get(api)
        if entry is None:
            entry = self.apis[api] = ApiStats()
        entry.requests += 1
        entry.total_latency_ms += latency_ms
        entry.max_latency_ms = max(entry.max_latency_ms, latency_ms)

    def as_dict(self) -> dict:
        return {
            "apis": {
                name: {
                    "requests": s.requests,
                    "mean_latency_ms": s.total_latency_ms / s.requests if s.requests else 0.0,
                    "max_latency_ms": s.max_latency_ms,
                }
                for name, s in sorted(self.apis.items())
            },
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "bytes_sendfile": self.bytes_sendfile,
            "bytes_copied": self.bytes_copied,
            "connections_accepted": self.connections_accepted,
            "connections_closed_on_error": self.connections_closed_on_error,
            "connections_throttled": self.connections_throttled,
        }


_API_NAMES = {int(key): key.name for key in ApiKeys}  # (an enum lookup per request costs more)


class ApiHandlers:
    api_table: ApiTable  # what this node serves, and advertises in ApiVersions

    def __init__(self) -> None:
        self.stats = BrokerStats()
        self._handlers: dict[int, Handler] = {ApiKeys.API_VERSIONS: self.handle_api_versions}

    def handle(self, context: RequestContext, request: ApiMessage, respond: Respond) -> None:
        key = context.header.request_api_key
        started = time.perf_counter()

        def timed(parts: Parts | None) -> None:
            self.stats.record(_API_NAMES[key], (time.perf_counter() - started) * 1000)
            respond(parts)

        self._handlers[key](context, request, timed)

    def _reply(self, context: RequestContext, respond: Respond, response: ApiMessage) -> None:
        respond([encode_response(context.header.correlation_id, response)])

    def _response_class(self, context: RequestContext) -> type[ApiMessage]:
        api = ApiKeys(context.header.request_api_key)
        return self.api_table[api][1][context.api_version]

    def handle_api_versions(
        self, context: RequestContext, request: ApiMessage, respond: Respond
    ) -> None:
        version, error = context.api_version, NONE
        if not supported(ApiKeys.API_VERSIONS, version, self.api_table):
            version, error = 0, UNSUPPORTED_VERSION  # KIP-511: answer v0, the client retries lower
        response_class = self.api_table[ApiKeys.API_VERSIONS][1][version]
        keys = [
            response_class.ApiVersion(api_key=int(key), min_version=low, max_version=high)
            for key, (_, _, low, high) in sorted(self.api_table.items())
        ]
        self._reply(
            context, respond, response_class(error_code=error, api_keys=keys, throttle_time_ms=0)
        )
