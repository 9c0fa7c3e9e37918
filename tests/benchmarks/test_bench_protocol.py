"""Micro-benchmarks of the protocol hot paths and the codecs (pytest-benchmark; -m bench).

    python3 -m pytest -m bench tests/benchmarks --benchmark-group-by=group

Groups: `decode` (request frames as the broker parses them), `encode` (responses as the broker
writes them: a Fetch response's framing around 3 partitions of file slices, a Produce and a
Metadata response), `crc` (CRC-32C of a 16 KiB batch), `codec-compress` and `codec-decompress`
(each codec on a 64 KiB JSON-like records section).
"""

import json
import os
import random

import pytest
from crc32c import crc32c
from kafka.protocol.metadata.metadata import MetadataRequest, MetadataResponse
from kafka.protocol.producer.produce import ProduceRequest, ProduceResponse

from engine.protocol.codec import decode_request, encode_response
from engine.protocol.fetch_response import (
    FetchPartitionResponse,
    FetchTopicResponse,
    encode_fetch_response,
)
from engine.records import CompressionType, SimpleRecord, build_batch, compress, decompress

pytestmark = pytest.mark.bench

BATCH = bytes(build_batch([SimpleRecord(os.urandom(1000), key=b"k")] * 16))


def _frame(request) -> bytearray:
    request.with_header(correlation_id=1, client_id="bench")
    return bytearray(request.encode(header=True))


@pytest.mark.benchmark(group="decode")
@pytest.mark.parametrize("version", [7, 9])
def test_decode_produce_request_3_partitions(benchmark, version):
    cls = ProduceRequest[version]
    partitions = [
        cls.TopicProduceData.PartitionProduceData(index=p, records=BATCH) for p in range(3)
    ]
    frame = _frame(
        cls(
            transactional_id=None,
            acks=1,
            timeout_ms=1000,
            topic_data=[cls.TopicProduceData(name="bench", partition_data=partitions)],
        )
    )
    view = memoryview(frame)
    benchmark(decode_request, view)


@pytest.mark.benchmark(group="decode")
def test_decode_metadata_request(benchmark):
    cls = MetadataRequest[9]
    frame = bytes(_frame(cls(topics=[cls.MetadataRequestTopic(name=f"t{i}") for i in range(3)])))
    benchmark(decode_request, frame)


class _Slice:
    def __init__(self, length: int) -> None:
        self.length = length


@pytest.mark.benchmark(group="encode")
@pytest.mark.parametrize("version", [11, 12])
def test_encode_fetch_response_framing(benchmark, version):
    topics = [
        FetchTopicResponse(
            "bench",
            [
                FetchPartitionResponse(p, 0, 1_000_000, 1_000_000, 0, [_Slice(1 << 20)])
                for p in range(3)
            ],
        )
    ]
    benchmark(encode_fetch_response, version, 1, 0, 0, 0, topics)


@pytest.mark.benchmark(group="encode")
def test_encode_produce_response(benchmark):
    cls = ProduceResponse[9]
    partition = cls.TopicProduceResponse.PartitionProduceResponse

    def encode():
        response = cls(
            responses=[
                cls.TopicProduceResponse(
                    name="bench",
                    partition_responses=[partition(index=p, base_offset=42) for p in range(3)],
                )
            ]
        )
        return encode_response(1, response)

    benchmark(encode)


@pytest.mark.benchmark(group="encode")
def test_encode_metadata_response_10_topics(benchmark):
    cls = MetadataResponse[9]
    topic_class = cls.MetadataResponseTopic
    partition_class = topic_class.MetadataResponsePartition

    def encode():
        response = cls(
            brokers=[cls.MetadataResponseBroker(node_id=0, host="127.0.0.1", port=9092)],
            cluster_id="bench",
            controller_id=0,
            topics=[
                topic_class(
                    error_code=0,
                    name=f"topic-{t}",
                    partitions=[
                        partition_class(
                            error_code=0,
                            partition_index=p,
                            leader_id=0,
                            leader_epoch=0,
                            replica_nodes=[0],
                            isr_nodes=[0],
                            offline_replicas=[],
                        )
                        for p in range(3)
                    ],
                )
                for t in range(10)
            ],
        )
        return encode_response(1, response)

    benchmark(encode)


@pytest.mark.benchmark(group="crc")
def test_crc32c_16kib(benchmark):
    data = os.urandom(16 * 1024)
    benchmark(crc32c, data)


def _json_records(size: int = 64 * 1024) -> bytes:
    rng = random.Random(3)
    out = bytearray()
    while len(out) < size:
        out += json.dumps(
            {
                "user": rng.randrange(10_000),
                "event": rng.choice(["view", "click", "buy"]),
                "price": round(rng.random() * 100, 2),
                "ts": 1_700_000_000_000 + len(out),
            }
        ).encode()
    return bytes(out[:size])


CODECS = [c for c in CompressionType if c != CompressionType.NONE]


@pytest.mark.benchmark(group="codec-compress")
@pytest.mark.parametrize("codec", CODECS, ids=[c.name.lower() for c in CODECS])
def test_compress_64kib(benchmark, codec):
    benchmark(compress, codec, _json_records())


@pytest.mark.benchmark(group="codec-decompress")
@pytest.mark.parametrize("codec", CODECS, ids=[c.name.lower() for c in CODECS])
def test_decompress_64kib(benchmark, codec):
    compressed = compress(codec, _json_records())
    benchmark(decompress, codec, compressed)
