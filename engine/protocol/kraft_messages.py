"""The broker-to-controller RPCs of KRaft, which kafka-python has no schema for.

Declared as kafka-python declares its own messages (kafka/protocol/admin/topics.py), from the
schemas in engine/protocol/schemas, which match Kafka's field for field: `Request[v](...)`,
`encode(header=True)`, `decode(..., header=True)` and `with_header(...)` work as for any
kafka-python message, and so do client.encode_request and client.decode_response.

All four are flexible in every version (compact strings and arrays, tagged fields). uint16
ports and uuids are kafka-python types; a zero uuid decodes as None and None encodes as zero.
"""

from typing import Any

from kafka.protocol.api_message import ApiMessage

# kafka-python's metaclass keyword naming the package of the schemas: `class X(ApiData,
# load_json=...)` spelled as a spread, or mypy, which sees ApiData as Any, checks the keyword
# against object.__init_subclass__
_LOAD_JSON: dict[str, Any] = {"load_json": "engine.protocol.schemas"}


class BrokerRegistrationRequest(ApiMessage, **_LOAD_JSON):
    """A broker registers with the controller at start-up (api key 62, v0-4). Before v4, features
    with MinSupportedVersion 0 are left out, as Kafka's broker does."""


class BrokerRegistrationResponse(ApiMessage, **_LOAD_JSON):
    """The broker epoch the controller assigned, or an error (api key 62, v0-4)."""


class BrokerHeartbeatRequest(ApiMessage, **_LOAD_JSON):
    """A registered broker's liveness, metadata offset and wish to be fenced or shut down
    (api key 63, v0-1)."""


class BrokerHeartbeatResponse(ApiMessage, **_LOAD_JSON):
    """Whether the broker has caught up, is fenced, and may finish shutting down (api key 63,
    v0-1); IsFenced defaults to true."""


class AlterPartitionRequest(ApiMessage, **_LOAD_JSON):
    """A partition leader asks the controller to change its ISR (api key 56, v0-3): topics by
    name up to v1 and by id from v2, the ISR with broker epochs from v3."""


class AlterPartitionResponse(ApiMessage, **_LOAD_JSON):
    """The partition state the controller committed, per partition (api key 56, v0-3)."""


class AllocateProducerIdsRequest(ApiMessage, **_LOAD_JSON):
    """A broker asks the controller for a block of producer ids (api key 67, v0)."""


class AllocateProducerIdsResponse(ApiMessage, **_LOAD_JSON):
    """The block of producer ids handed out: ProducerIdStart, ProducerIdLen (api key 67, v0)."""


__all__ = [
    "AllocateProducerIdsRequest",
    "AllocateProducerIdsResponse",
    "AlterPartitionRequest",
    "AlterPartitionResponse",
    "BrokerHeartbeatRequest",
    "BrokerHeartbeatResponse",
    "BrokerRegistrationRequest",
    "BrokerRegistrationResponse",
]
