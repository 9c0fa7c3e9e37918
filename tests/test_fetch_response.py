"""FetchResponse framing for sendfile: byte-identical to kafka-python's schema codec, v4-v17."""

import uuid
from dataclasses import dataclass
from itertools import pairwise

import pytest
from kafka.protocol.consumer import FetchResponse
from kafka.record import MemoryRecords

from engine.protocol.fetch_response import (
    FetchPartitionResponse,
    FetchTopicResponse,
    encode_fetch_response,
)
from engine.records import SimpleRecord, build_batch

VERSIONS = range(4, 18)
CORRELATION_ID = 0x12345678


@dataclass(frozen=True, slots=True)
class Chunk:
    """A stand-in for a FileSlice: a length, and bytes only when asked."""

    data: bytes

    @property
    def length(self) -> int:
        return len(self.data)

    def read(self) -> bytes:
        return self.data


def batch(*values: bytes, base_offset: int = 0) -> Chunk:
    records = [SimpleRecord(value, key=b"k", timestamp=1_000) for value in values]
    return Chunk(bytes(build_batch(records, base_offset=base_offset)))


def join(parts: list) -> bytes:
    return b"".join(part if isinstance(part, bytes) else part.read() for part in parts)


def sample_topics() -> list[FetchTopicResponse]:
    """Several topics and partitions: records from none, one or several items; errors; aborts."""
    return [
        FetchTopicResponse(
            "orders",
            [
                FetchPartitionResponse(
                    partition_index=0,
                    error_code=0,
                    high_watermark=12,
                    last_stable_offset=10,
                    log_start_offset=3,
                    records=[batch(b"a", b"bb", base_offset=3), batch(b"c", base_offset=5)],
                    aborted_transactions=[(1001, 4), (1002, 7)],
                    preferred_read_replica=2,
                ),
                FetchPartitionResponse(
                    partition_index=1,
                    error_code=1,  # OFFSET_OUT_OF_RANGE
                    high_watermark=-1,
                    last_stable_offset=-1,
                    log_start_offset=-1,
                    records=[],
                ),
                FetchPartitionResponse(
                    partition_index=2,
                    error_code=0,
                    high_watermark=2**40,
                    last_stable_offset=2**40,
                    log_start_offset=2**39,
                    records=[Chunk(b"x" * 300)],  # past one varint byte in v12
                    aborted_transactions=[],
                ),
            ],
            uuid.UUID(int=1),
        ),
        FetchTopicResponse("empty-topic", [], uuid.UUID(int=2**128 - 1)),
        FetchTopicResponse(
            "clicks.v2_é",  # a multi-byte UTF-8 character: lengths count bytes
            [
                FetchPartitionResponse(
                    partition_index=7,
                    error_code=6,  # NOT_LEADER_OR_FOLLOWER
                    high_watermark=0,
                    last_stable_offset=0,
                    log_start_offset=0,
                    records=[Chunk(b"1"), Chunk(b""), Chunk(b"22"), Chunk(b"333")],
                    aborted_transactions=None,
                ),
            ],
            uuid.uuid4(),
        ),
    ]


def kafka_python_frame(
    version: int,
    correlation_id: int,
    throttle_time_ms: int,
    error_code: int,
    session_id: int,
    topics: list[FetchTopicResponse],
) -> bytes:
    """The same response built and framed by kafka-python, records given as bytes."""
    response_class = FetchResponse[version]
    topic_class = response_class.FetchableTopicResponse
    partition_class = topic_class.PartitionData
    aborted_class = partition_class.AbortedTransaction
    response = response_class(
        throttle_time_ms=throttle_time_ms,
        error_code=error_code,
        session_id=session_id,
        responses=[
            topic_class(
                topic=topic.topic,
                topic_id=topic.topic_id,
                partitions=[
                    partition_class(
                        partition_index=p.partition_index,
                        error_code=p.error_code,
                        high_watermark=p.high_watermark,
                        last_stable_offset=p.last_stable_offset,
                        log_start_offset=p.log_start_offset,
                        aborted_transactions=None
                        if p.aborted_transactions is None
                        else [
                            aborted_class(producer_id=producer_id, first_offset=first_offset)
                            for producer_id, first_offset in p.aborted_transactions
                        ],
                        preferred_read_replica=p.preferred_read_replica,
                        records=b"".join(item.read() for item in p.records),
                    )
                    for p in topic.partitions
                ],
            )
            for topic in topics
        ],
    )
    response.with_header(correlation_id=correlation_id)
    return bytes(response.encode(header=True, framed=True))


@pytest.mark.parametrize("version", VERSIONS)
def test_frame_is_byte_identical_to_kafka_python(version):
    args = (version, CORRELATION_ID, 250, 0, 987654, sample_topics())
    assert join(encode_fetch_response(*args)) == kafka_python_frame(*args)


@pytest.mark.parametrize("version", VERSIONS)
def test_response_without_topics_matches_kafka_python(version):
    args = (version, 1, 0, 70, 0, [])  # FETCH_SESSION_ID_NOT_FOUND answers with no topics
    parts = encode_fetch_response(*args)
    assert len(parts) == 1
    assert parts[0] == kafka_python_frame(*args)


@pytest.mark.parametrize("version", [11, 12])
def test_lengths_past_one_varint_byte_match_kafka_python(version):
    partition = FetchPartitionResponse(0, 0, 1, 1, 0, [Chunk(b"r" * 20_000)], [(9, 9)] * 200)
    topics = [FetchTopicResponse("t" * 200, [partition] * 130)]
    args = (version, 3, 0, 0, 0, topics)
    assert join(encode_fetch_response(*args)) == kafka_python_frame(*args)


@pytest.mark.parametrize("version", VERSIONS)
def test_kafka_python_decodes_the_values_back(version):
    topics = sample_topics()
    frame = join(encode_fetch_response(version, CORRELATION_ID, 250, 0, 987654, topics))
    decoded = FetchResponse.decode(frame, version=version, header=True, framed=True)

    assert decoded.header.correlation_id == CORRELATION_ID
    assert decoded.throttle_time_ms == 250
    if version >= 7:
        assert (decoded.error_code, decoded.session_id) == (0, 987654)
    if version >= 13:  # topics by id
        assert [t.topic_id for t in decoded.responses] == [t.topic_id for t in topics]
    else:
        assert [t.topic for t in decoded.responses] == [t.topic for t in topics]
    for decoded_topic, topic in zip(decoded.responses, topics, strict=True):
        assert len(decoded_topic.partitions) == len(topic.partitions)
        for got, sent in zip(decoded_topic.partitions, topic.partitions, strict=True):
            assert (got.partition_index, got.error_code, got.high_watermark) == (
                sent.partition_index,
                sent.error_code,
                sent.high_watermark,
            )
            assert got.last_stable_offset == sent.last_stable_offset
            if version >= 5:
                assert got.log_start_offset == sent.log_start_offset
            if version >= 11:
                assert got.preferred_read_replica == sent.preferred_read_replica
            if sent.aborted_transactions is None:
                assert got.aborted_transactions is None
            else:
                assert [(a.producer_id, a.first_offset) for a in got.aborted_transactions] == (
                    sent.aborted_transactions
                )
            assert bytes(got.records) == b"".join(item.read() for item in sent.records)


@pytest.mark.parametrize("version", [4, 12])
def test_record_batches_read_back_through_kafka_python(version):
    topics = sample_topics()
    frame = join(encode_fetch_response(version, 1, 0, 0, 0, topics))
    decoded = FetchResponse.decode(frame, version=version, header=True, framed=True)
    records = MemoryRecords(bytes(decoded.responses[0].partitions[0].records))
    read = []
    while (record_batch := records.next_batch()) is not None:
        read += [(record.offset, record.key, record.value) for record in record_batch]
    assert read == [(3, b"k", b"a"), (4, b"k", b"bb"), (5, b"k", b"c")]


@pytest.mark.parametrize("version", VERSIONS)
def test_records_items_pass_through_untouched_between_joined_bytes(version):
    topics = sample_topics()
    parts = encode_fetch_response(version, 1, 0, 0, 0, topics)
    items = [item for topic in topics for p in topic.partitions for item in p.records]

    passed_through = [part for part in parts if not isinstance(part, bytes)]
    assert all(a is b for a, b in zip(passed_through, items, strict=True))
    # bytes never sit next to bytes; only flexible versions write tags after the last records
    kinds = [isinstance(part, bytes) for part in parts]
    assert not any(a and b for a, b in pairwise(kinds))
    assert kinds[0]
    assert kinds[-1] == (version >= 12)
    size_prefix = int.from_bytes(parts[0][:4], "big", signed=True)
    body_size = sum(len(p) if isinstance(p, bytes) else p.length for p in parts) - 4
    assert size_prefix == body_size


def test_frame_ends_with_records_when_nothing_follows_them():
    topics = [FetchTopicResponse("t", [FetchPartitionResponse(0, 0, 1, 1, 0, [Chunk(b"abc")])])]
    parts = encode_fetch_response(11, 1, 0, 0, 0, topics)  # non-flexible: no trailing tags
    assert len(parts) == 2
    assert parts[1] is topics[0].partitions[0].records[0]
    assert parts[0][-4:] == (3).to_bytes(4, "big")  # the records length, then the records


@pytest.mark.parametrize("version", [3, 18])
def test_versions_outside_4_to_17_are_refused(version):
    with pytest.raises(ValueError, match="v4-v17"):
        encode_fetch_response(version, 1, 0, 0, 0, [])
