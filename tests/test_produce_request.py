"""The hand-written ProduceRequest decoder agrees with kafka-python's, and copies nothing."""

import pytest
from kafka.protocol.producer.produce import ProduceRequest

from engine.protocol.codec import InvalidRequestError, decode_request
from engine.records import SimpleRecord, build_batch


def request_frame(version: int) -> tuple[bytes, dict]:
    cls = ProduceRequest[version]
    data = {
        "alpha": {0: bytes(build_batch([SimpleRecord(b"a0")])), 3: None},
        "beta": {1: bytes(build_batch([SimpleRecord(b"b1" * 300, key=b"k")]))},
    }
    topics = [
        cls.TopicProduceData(
            name=name,
            partition_data=[
                cls.TopicProduceData.PartitionProduceData(index=i, records=r)
                for i, r in parts.items()
            ],
        )
        for name, parts in data.items()
    ]
    request = cls(
        transactional_id="txn" if version % 2 else None, acks=-1, timeout_ms=1500, topic_data=topics
    )
    request.with_header(correlation_id=3, client_id="tests")
    return bytes(request.encode(header=True)), data


@pytest.mark.parametrize("version", range(3, 10))
def test_decodes_what_kafka_python_encodes(version):
    frame, data = request_frame(version)
    buffer = bytearray(frame)
    header, request = decode_request(memoryview(buffer))
    assert (header.correlation_id, header.client_id) == (3, "tests")
    assert request.transactional_id == ("txn" if version % 2 else None)
    assert (request.acks, request.timeout_ms) == (-1, 1500)
    decoded = {
        t.name: {p.index: None if p.records is None else bytes(p.records) for p in t.partition_data}
        for t in request.topic_data
    }
    assert decoded == data
    records = request.topic_data[0].partition_data[0].records
    assert records.obj is buffer and not records.readonly  # a writable view, not a copy


def test_unknown_tagged_fields_are_skipped():
    frame, data = request_frame(9)
    records = data["alpha"][0]
    tag_count_at = frame.index(records) + len(records)  # the partition's tagged fields
    assert frame[tag_count_at] == 0
    tagged = bytes([1, 7, 3]) + b"xyz"  # one field: tag 7, three bytes
    patched = frame[:tag_count_at] + tagged + frame[tag_count_at + 1 :]
    _, request = decode_request(patched)
    assert bytes(request.topic_data[0].partition_data[0].records) == records


@pytest.mark.parametrize("cut", [1, 10, 200])
def test_a_truncated_request_does_not_parse(cut):
    frame, _ = request_frame(9)
    with pytest.raises(InvalidRequestError):
        decode_request(frame[:-cut])
