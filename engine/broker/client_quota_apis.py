"""DescribeClientQuotas and AlterClientQuotas on a broker, and the broker's produce and fetch
byte-rate quotas (BrokerClientQuotas), as Kafka 4.0's brokers serve them.

Describe is answered from the broker's cluster image. In a cluster, AlterClientQuotas goes to
the controller (forwarded, as Kafka forwards it), which writes ClientQuotaRecords to the metadata
log; the broker answers once its own image shows the change. A single broker checks the
alteration by the same rules (client_quotas.altered_quotas), keeps the result in its
ClientQuotaStore and publishes it in its image. validate_only checks and changes nothing.

Not thread-safe: the event loop's thread alone uses these, as KafkaApis.
"""

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from kafka.protocol.api_message import ApiMessage

from engine.broker.client_quota_manager import ANONYMOUS, ClientQuotaManager
from engine.broker.client_quotas import (
    CONSUMER_BYTE_RATE,
    PRODUCER_BYTE_RATE,
    Alteration,
    QuotaError,
    altered_quotas,
    applied,
    described,
    entity_key,
)
from engine.broker.request_context import RequestContext
from engine.errors import NONE
from engine.metadata.image import ClusterImage
from engine.protocol.apis import ApiKeys
from engine.protocol.fetch_response import encode_fetch_response

if TYPE_CHECKING:
    from engine.broker.api_handlers import Respond
    from engine.broker.broker_server import BrokerServer
    from engine.broker.kafka_apis import KafkaApis


def alterations(request: ApiMessage) -> list[Alteration]:
    """AlterClientQuotas' entries: entity components as sent, ops with None for a removal."""
    return [
        Alteration(
            [(e.entity_type, e.entity_name) for e in entry.entity],
            [(op.key, None if op.remove else op.value) for op in entry.ops],
        )
        for entry in request.entries
    ]


def alter_response(
    response_class: Any, request: ApiMessage, results: Sequence[tuple[int, str | None]]
) -> ApiMessage:
    entry_class = response_class.EntryData
    return response_class(
        throttle_time_ms=0,
        entries=[
            entry_class(
                error_code=error,
                error_message=message,
                entity=[
                    entry_class.EntityData(entity_type=e.entity_type, entity_name=e.entity_name)
                    for e in entry.entity
                ],
            )
            for entry, (error, message) in zip(request.entries, results, strict=True)
        ],
    )


def client_quotas_visible(request: ApiMessage, response: ApiMessage, image: ClusterImage) -> bool:
    """Whether the image shows what an AlterClientQuotas the controller accepted changed."""
    if request.validate_only:
        return True
    for entry, result in zip(request.entries, response.entries, strict=False):
        if result.error_code != NONE:
            continue
        shown = image.client_quotas.get(
            entity_key((e.entity_type, e.entity_name) for e in entry.entity), {}
        )
        for op in entry.ops:
            if shown.get(op.key) != (None if op.remove else op.value):
                return False
    return True


def client_quota_handlers(apis: "KafkaApis") -> dict[int, Callable[..., Any]]:
    """api key -> handler(context, request, respond)."""
    broker = apis.broker

    def describe(context: RequestContext, request: ApiMessage, respond: "Respond") -> None:
        response_class = apis._response_class(context)
        entry_class = response_class.EntryData
        try:
            found = described(
                broker.metadata_cache.image.client_quotas,
                [(c.entity_type, c.match_type, c.match) for c in request.components],
                request.strict,
            )
        except QuotaError as exc:
            response = response_class(
                throttle_time_ms=0, error_code=exc.error_code, error_message=str(exc), entries=None
            )
        else:
            response = response_class(
                throttle_time_ms=0,
                error_code=NONE,
                error_message=None,
                entries=[
                    entry_class(
                        entity=[
                            entry_class.EntityData(entity_type=t, entity_name=n) for t, n in entity
                        ],
                        values=[
                            entry_class.ValueData(key=k, value=v) for k, v in sorted(values.items())
                        ],
                    )
                    for entity, values in found
                ],
            )
        apis._reply(context, respond, response)

    def alter(context: RequestContext, request: ApiMessage, respond: "Respond") -> None:
        if broker.cluster is not None:
            apis._forward(context, request, respond)
            return
        store = broker.client_quota_store
        assert store is not None  # a single broker keeps one
        results, changes = altered_quotas(store.quotas, alterations(request))
        if changes and not request.validate_only:
            store.save(applied(store.quotas, changes))
            broker._publish_local_image()
        response = alter_response(apis._response_class(context), request, results)
        apis._reply(context, respond, response)

    return {ApiKeys.DESCRIBE_CLIENT_QUOTAS: describe, ApiKeys.ALTER_CLIENT_QUOTAS: alter}


class BrokerClientQuotas:
    """The produce and fetch quota managers, over the quotas of the broker's current image."""

    def __init__(self, broker: "BrokerServer") -> None:
        self.broker = broker
        config = broker.config
        samples, window = config.quota_window_num, config.quota_window_size_seconds
        self.produce = ClientQuotaManager(PRODUCER_BYTE_RATE, samples, window)
        self.fetch = ClientQuotaManager(CONSUMER_BYTE_RATE, samples, window)

    def produce_throttle_ms(self, context: RequestContext) -> int:
        """Record a produce request's bytes (its whole frame, as Kafka's sizeInBytes); the
        throttle time, for which the connection is now muted."""
        quotas = self.broker.metadata_cache.image.client_quotas
        if not quotas:
            return 0
        throttle_ms = self.produce.record_and_get_throttle_time_ms(
            quotas, ANONYMOUS, context.header.client_id or "", context.size, self.broker.time_ms()
        )
        if throttle_ms > 0 and context.mute is not None:
            context.mute(throttle_ms)
        return throttle_ms

    def fetch_max_bytes(self, context: RequestContext, max_bytes: int) -> int:
        """A consumer's fetch is cut to what its quota allows in one window (KafkaApis:
        trying to fetch more would be throttled for sure)."""
        quotas = self.broker.metadata_cache.image.client_quotas
        if not quotas:
            return max_bytes
        most = self.fetch.max_value_in_quota_window(
            quotas, ANONYMOUS, context.header.client_id or ""
        )
        return max_bytes if most is None else min(max_bytes, int(most))

    def fetch_response(self, context: RequestContext, parts: list) -> list:
        """A consumer's fetch response as it goes out: itself, or, when its size (Kafka's
        FetchResponse.sizeOf: the body and 4 bytes) earns a throttle, an empty response that
        carries the throttle time."""
        if not self.broker.metadata_cache.image.client_quotas:
            return parts  # (the common case costs nothing more)
        version = context.api_version
        framed = sum(len(p) if isinstance(p, bytes | bytearray) else p.length for p in parts)
        size = framed - (5 if version >= 12 else 4)  # the size prefix, the header past 4 bytes
        throttle_ms = self.fetch_throttle_ms(context, size)
        if throttle_ms <= 0:
            return parts
        return encode_fetch_response(
            version, context.header.correlation_id, throttle_ms, NONE, 0, topics=[]
        )

    def fetch_throttle_ms(self, context: RequestContext, response_size: int) -> int:
        """Record a consumer's fetch response size; when that earns a throttle, the bytes are
        taken back (the response goes out empty) and the connection is muted."""
        quotas = self.broker.metadata_cache.image.client_quotas
        if not quotas:
            return 0
        client_id, now = context.header.client_id or "", self.broker.time_ms()
        throttle_ms = self.fetch.record_and_get_throttle_time_ms(
            quotas, ANONYMOUS, client_id, response_size, now
        )
        if throttle_ms > 0:
            self.fetch.unrecord(quotas, ANONYMOUS, client_id, response_size, now)
            if context.mute is not None:
                context.mute(throttle_ms)
        return throttle_ms

    def status(self) -> dict:
        return {"produce": self.produce.status(), "fetch": self.fetch.status()}
