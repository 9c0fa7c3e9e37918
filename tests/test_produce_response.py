"""ProduceResponse framed by hand (engine/protocol/produce_response.py): byte for byte what
kafka-python's schema-driven encoder writes, for every version the broker serves."""

import random

import pytest
from kafka.protocol.producer.produce import ProduceResponse

from engine.protocol.produce_response import (
    MAX_VERSION,
    MIN_VERSION,
    PartitionProduceResponse,
    encode_produce_response,
)


def reference(version: int, correlation_id: int, topics, throttle_time_ms: int) -> bytes:
    cls = ProduceResponse[version]
    topic_class = cls.TopicProduceResponse
    partition_class = topic_class.PartitionProduceResponse
    response = cls(
        responses=[
            topic_class(
                name=name,
                partition_responses=[
                    partition_class(
                        index=p.index,
                        error_code=p.error_code,
                        base_offset=p.base_offset,
                        log_append_time_ms=p.log_append_time_ms,
                        log_start_offset=p.log_start_offset,
                        record_errors=[],
                        error_message=p.error_message,
                    )
                    for p in partitions
                ],
            )
            for name, partitions in topics
        ],
        throttle_time_ms=throttle_time_ms,
    )
    response.with_header(correlation_id=correlation_id)
    return bytes(response.encode(header=True, framed=True))


@pytest.mark.parametrize("version", range(MIN_VERSION, MAX_VERSION + 1))
def test_every_version_is_what_kafka_python_encodes(version):
    rng = random.Random(version)
    for _ in range(50):
        topics = [
            (
                "t" * rng.randint(1, 200) + "é" * rng.randint(0, 3),
                [
                    PartitionProduceResponse(
                        index=rng.randint(0, 1 << 20),
                        error_code=rng.choice([0, 1, 6, 7, 19, 87]),
                        base_offset=rng.choice([-1, 0, rng.randint(0, 1 << 62)]),
                        log_append_time_ms=rng.choice([-1, rng.randint(0, 1 << 41)]),
                        log_start_offset=rng.choice([-1, rng.randint(0, 1 << 40)]),
                        error_message=rng.choice([None, "", "too large " * rng.randint(1, 30)]),
                    )
                    for _ in range(rng.randint(0, 4))
                ],
            )
            for _ in range(rng.randint(0, 3))
        ]
        correlation_id = rng.randint(-(1 << 31), (1 << 31) - 1)
        throttle = rng.randint(0, 1000)
        assert encode_produce_response(version, correlation_id, topics, throttle) == reference(
            version, correlation_id, topics, throttle
        )


def test_a_version_outside_the_served_range_is_refused():
    with pytest.raises(ValueError, match="v10"):
        encode_produce_response(10, 1, [])
