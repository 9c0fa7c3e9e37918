"""The broker-to-controller RPCs: framed by kbench's client side, decoded back, Kafka's bytes."""

import struct
import uuid

import pytest
from kafka.protocol.api_header import ResponseClassRegistry

from engine.protocol.client import decode_response, encode_request
from engine.protocol.codec import encode_response
from engine.protocol.kraft_messages import (
    AllocateProducerIdsRequest,
    AllocateProducerIdsResponse,
    AlterPartitionRequest,
    AlterPartitionResponse,
    BrokerHeartbeatRequest,
    BrokerHeartbeatResponse,
    BrokerRegistrationRequest,
    BrokerRegistrationResponse,
)

INCARNATION_ID = uuid.UUID("11111111-2222-3333-4444-555555555555")
TOPIC_ID = uuid.UUID("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0")
LOG_DIR = uuid.UUID("99999999-8888-7777-6666-555555555555")
Listener = BrokerRegistrationRequest.Listener
Feature = BrokerRegistrationRequest.Feature
RequestTopic = AlterPartitionRequest.TopicData
RequestPartition = RequestTopic.PartitionData
ResponseTopic = AlterPartitionResponse.TopicData
ResponsePartition = ResponseTopic.PartitionData


def test_api_keys_and_versions_are_kafkas():
    assert {
        cls.__name__: (cls.API_KEY, cls.max_version)
        for cls in (
            BrokerRegistrationRequest,
            BrokerRegistrationResponse,
            BrokerHeartbeatRequest,
            BrokerHeartbeatResponse,
            AlterPartitionRequest,
            AlterPartitionResponse,
            AllocateProducerIdsRequest,
            AllocateProducerIdsResponse,
        )
    } == {
        "BrokerRegistrationRequest": (62, 4),
        "BrokerRegistrationResponse": (62, 4),
        "BrokerHeartbeatRequest": (63, 1),
        "BrokerHeartbeatResponse": (63, 1),
        "AlterPartitionRequest": (56, 3),
        "AlterPartitionResponse": (56, 3),
        "AllocateProducerIdsRequest": (67, 0),
        "AllocateProducerIdsResponse": (67, 0),
    }


def _registration(version: int) -> BrokerRegistrationRequest:
    fields = {
        "broker_id": 1,
        "cluster_id": "kbench-cluster",
        "incarnation_id": INCARNATION_ID,
        "listeners": [Listener(name="PLAINTEXT", host="broker-1", port=9092, security_protocol=0)],
        "features": [
            Feature(name="metadata.version", min_supported_version=1, max_supported_version=12)
        ],
        "rack": None,
    }
    if version >= 1:
        fields["is_migrating_zk_broker"] = False
    if version >= 2:
        fields["log_dirs"] = [LOG_DIR]
    if version >= 3:
        fields["previous_broker_epoch"] = 41
    return BrokerRegistrationRequest[version](**fields)


def _alter_partition(version: int) -> AlterPartitionRequest:
    partition = {"partition_index": 0, "leader_epoch": 5, "partition_epoch": 9}
    if version >= 1:
        partition["leader_recovery_state"] = 0
    if version >= 3:
        partition["new_isr_with_epochs"] = [
            RequestPartition.BrokerState(broker_id=1, broker_epoch=42),
            RequestPartition.BrokerState(broker_id=2, broker_epoch=-1),
        ]
    else:
        partition["new_isr"] = [1, 2]
    topic = {"topic_id": TOPIC_ID} if version >= 2 else {"topic_name": "orders"}
    return AlterPartitionRequest[version](
        broker_id=1,
        broker_epoch=42,
        topics=[RequestTopic(**topic, partitions=[RequestPartition(**partition)])],
    )


REQUESTS = [
    *(pytest.param(_registration(v), id=f"BrokerRegistration-v{v}") for v in range(5)),
    pytest.param(
        BrokerHeartbeatRequest[0](
            broker_id=1,
            broker_epoch=42,
            current_metadata_offset=1000,
            want_fence=False,
            want_shut_down=True,
        ),
        id="BrokerHeartbeat-v0",
    ),
    pytest.param(
        BrokerHeartbeatRequest[1](
            broker_id=1,
            broker_epoch=42,
            current_metadata_offset=1000,
            want_fence=True,
            want_shut_down=False,
            offline_log_dirs=[LOG_DIR],
        ),
        id="BrokerHeartbeat-v1",
    ),
    *(pytest.param(_alter_partition(v), id=f"AlterPartition-v{v}") for v in range(4)),
    pytest.param(
        AllocateProducerIdsRequest[0](broker_id=1, broker_epoch=42), id="AllocateProducerIds-v0"
    ),
]


@pytest.mark.parametrize("request_", REQUESTS)
def test_requests_round_trip_through_the_client_framing(request_):
    frame = encode_request(request_, correlation_id=17, client_id="kbench-broker-1")
    (size,) = struct.unpack_from(">i", frame)
    assert size == len(frame) - 4
    cls = type(request_)
    decoded = cls.decode(frame[4:], version=request_.API_VERSION, header=True)
    assert decoded == request_
    header = decoded.header
    assert (header.request_api_key, header.request_api_version) == (
        cls.API_KEY,
        request_.API_VERSION,
    )
    assert (header.correlation_id, header.client_id) == (17, "kbench-broker-1")
    # kafka-python finds the response class of a request header by api key
    assert ResponseClassRegistry.get_response_class(header).API_KEY == cls.API_KEY


RESPONSES = [
    *(
        pytest.param(
            BrokerRegistrationResponse[v](throttle_time_ms=0, error_code=0, broker_epoch=42),
            id=f"BrokerRegistration-v{v}",
        )
        for v in range(5)
    ),
    *(
        pytest.param(
            BrokerHeartbeatResponse[v](
                throttle_time_ms=0,
                error_code=0,
                is_caught_up=True,
                is_fenced=False,
                should_shut_down=False,
            ),
            id=f"BrokerHeartbeat-v{v}",
        )
        for v in range(2)
    ),
    pytest.param(
        AlterPartitionResponse[1](
            throttle_time_ms=0,
            error_code=0,
            topics=[
                ResponseTopic(
                    topic_name="orders",
                    partitions=[
                        ResponsePartition(
                            partition_index=0,
                            error_code=0,
                            leader_id=1,
                            leader_epoch=5,
                            isr=[1, 2],
                            leader_recovery_state=0,
                            partition_epoch=10,
                        )
                    ],
                )
            ],
        ),
        id="AlterPartition-v1",
    ),
    pytest.param(
        AlterPartitionResponse[3](
            throttle_time_ms=0,
            error_code=0,
            topics=[
                ResponseTopic(
                    topic_id=TOPIC_ID,
                    partitions=[
                        ResponsePartition(
                            partition_index=0,
                            error_code=0,
                            leader_id=1,
                            leader_epoch=5,
                            isr=[1],
                            leader_recovery_state=0,
                            partition_epoch=10,
                        )
                    ],
                )
            ],
        ),
        id="AlterPartition-v3",
    ),
    pytest.param(
        AllocateProducerIdsResponse[0](
            throttle_time_ms=0, error_code=0, producer_id_start=5000, producer_id_len=1000
        ),
        id="AllocateProducerIds-v0",
    ),
]


@pytest.mark.parametrize("response", RESPONSES)
def test_responses_round_trip_through_decode_response(response):
    frame = encode_response(23, response)
    decoded = decode_response(frame[4:], type(response), response.API_VERSION, correlation_id=23)
    assert decoded == response
    assert decoded.header.correlation_id == 23


def test_heartbeat_response_v0_defaults_to_fenced_in_kafkas_layout():
    frame = encode_response(7, BrokerHeartbeatResponse[0]())
    assert frame[4:] == (
        struct.pack(">i", 7)
        + bytes([0])  # response header v1: correlation id, no tagged fields
        + struct.pack(">ih", 0, 0)  # ThrottleTimeMs, ErrorCode
        + bytes([0, 1, 0])  # IsCaughtUp false, IsFenced true (its default), ShouldShutDown
        + bytes([0])  # no tagged fields
    )


def test_heartbeat_request_v1_carries_offline_log_dirs_as_tag_0():
    request = BrokerHeartbeatRequest[1](
        broker_id=1,
        broker_epoch=42,
        current_metadata_offset=1000,
        want_fence=False,
        want_shut_down=False,
        offline_log_dirs=[LOG_DIR],
    )
    frame = encode_request(request, correlation_id=1, client_id="b")
    fields = struct.pack(">iqq??", 1, 42, 1000, False, False)
    # one tagged field: tag 0, 17 bytes, a compact array of one uuid
    assert frame.endswith(fields + bytes([1, 0, 17, 2]) + LOG_DIR.bytes)
    request.offline_log_dirs = []  # the default: Kafka leaves the tag out
    assert encode_request(request, correlation_id=1, client_id="b").endswith(fields + b"\x00")


def test_registration_request_v0_in_kafkas_layout():
    request = BrokerRegistrationRequest[0](
        broker_id=1,
        cluster_id="c1",
        incarnation_id=INCARNATION_ID,
        listeners=[Listener(name="CONTROLLER", host="h", port=65535, security_protocol=1)],
        features=[],
        rack=None,
    )
    frame = encode_request(request, correlation_id=3, client_id="b")
    body = (
        struct.pack(">i", 1)
        + bytes([3]) + b"c1"  # compact string
        + INCARNATION_ID.bytes
        + bytes([2])  # one listener
        + bytes([11]) + b"CONTROLLER" + bytes([2]) + b"h"
        + b"\xff\xff"  # Port is a uint16: 65535 fits
        + struct.pack(">h", 1)
        + bytes([0])  # the listener's tagged fields
        + bytes([1])  # no features
        + bytes([0])  # Rack null
        + bytes([0])  # no tagged fields
    )  # fmt: skip
    assert frame.endswith(body)
    decoded = BrokerRegistrationRequest.decode(frame[4:], version=0, header=True)
    assert decoded.listeners[0].port == 65535
