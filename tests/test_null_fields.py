"""Nulls in requests: where the schema allows one the request is answered, where it does not the
request does not parse and, as in Kafka, that connection is closed; the broker logs one line
(no traceback) and keeps serving the others.

Every API and version the broker serves is sent twice per nullable-or-not field: once with every
field the schema lets be null set to null, once with one non-nullable array or string null.
"""

import struct

import pytest

from engine.protocol.apis import APIS, ApiKeys
from engine.protocol.codec import InvalidRequestError, decode_request
from tests.test_broker_protocol import closed_by_peer, connect, frame, metadata_request, read_frame

_NEVER_NULL = {"int8", "int16", "int32", "int64", "uint16", "float64", "bool", "uuid"}
# Requests with empty defaults that the handler holds until a timeout instead of answering
_WAITS = {ApiKeys.FETCH, ApiKeys.JOIN_GROUP}


def _versions() -> list[tuple[ApiKeys, int]]:
    return [
        (ApiKeys(key), version)
        for key, (_, _, low, high) in sorted(APIS.items())
        for version in sorted({low, high})
    ]


def _top_fields(key: ApiKeys, version: int, nullable: bool) -> list[str]:
    """Top-level untagged fields of the request that can carry a null, by nullability."""
    if (key, version) == (ApiKeys.METADATA, 0):
        return []  # kafka-python sends a null v0 topic list as empty: v0's "every topic"
    return [
        f.name
        for f in APIS[key][0]._struct._fields
        if f.for_version_q(version)
        and not f.tagged_field_q(version)
        and f.type_str not in _NEVER_NULL
        and f.nullable_for_version_q(version) == nullable
    ]


def _request(key: ApiKeys, version: int, nulls: list[str]):
    request = APIS[key][0][version]()
    if key == ApiKeys.FETCH:
        request.max_wait_ms = 0  # answered at once, not held
    if key == ApiKeys.PRODUCE:
        request.acks = 1  # acks=0 is never answered
    for name in nulls:
        setattr(request, name, None)
    return request


@pytest.mark.parametrize(("key", "version"), _versions(), ids=lambda v: str(v))
def test_a_null_the_schema_forbids_does_not_parse(key, version):
    for name in _top_fields(key, version, nullable=False):
        request = _request(key, version, [name])
        request.with_header(correlation_id=1, client_id="t")
        with pytest.raises(InvalidRequestError, match=f"non-nullable field {name} was serialized"):
            decode_request(bytes(request.encode(header=True)))
    allowed = _request(key, version, _top_fields(key, version, nullable=True))
    allowed.with_header(correlation_id=1, client_id="t")
    decode_request(bytes(allowed.encode(header=True)))  # parses


def test_a_null_deep_inside_is_found():
    request_class = APIS[ApiKeys.FETCH][0][12]
    topic = request_class.FetchTopic(topic="t", partitions=None)
    request = request_class(max_wait_ms=0, min_bytes=0, topics=[topic], forgotten_topics_data=[])
    request.with_header(correlation_id=1, client_id="t")
    with pytest.raises(InvalidRequestError, match=r"field topics\[\]\.partitions was serialized"):
        decode_request(bytes(request.encode(header=True)))


def test_a_null_element_of_an_array_of_strings_is_found():
    request = APIS[ApiKeys.DELETE_GROUPS][0][2](groups_names=["g", None])
    request.with_header(correlation_id=1, client_id="t")
    with pytest.raises(InvalidRequestError, match=r"field groups_names\[\] was serialized"):
        decode_request(bytes(request.encode(header=True)))


def test_the_broker_answers_allowed_nulls_and_closes_on_forbidden_ones(broker):
    """Through a real broker: one connection per request; after all of them a fresh connection
    is still served and the log holds no traceback."""
    refused = answered = 0
    for key, version in _versions():
        allowed = _top_fields(key, version, nullable=True)
        if allowed and key not in _WAITS:
            with connect(broker) as sock:
                sock.sendall(frame(_request(key, version, allowed), 7))
                response = read_frame(sock)
                assert response is not None, (key.name, version, allowed)
                assert struct.unpack_from(">i", response)[0] == 7
                answered += 1
        for name in _top_fields(key, version, nullable=False):
            with connect(broker) as sock:
                sock.sendall(frame(_request(key, version, [name]), 8))
                assert closed_by_peer(sock), (key.name, version, name)
                refused += 1
    assert refused > 30 and answered >= 5
    with connect(broker) as sock:
        sock.sendall(frame(metadata_request(), 9))
        assert read_frame(sock) is not None
    with open(broker.log_path) as log:
        text = log.read()
    assert "Traceback" not in text
    assert "non-nullable field" in text
