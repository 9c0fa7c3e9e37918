"""Batches whose CRC is right but whose contents are not are refused, as Kafka refuses them
(issue 9): against a real broker, with raw Produce requests, then read back by real clients.

Kafka's answers (LogValidator, UnifiedLog.analyzeAndValidateRecords, ReplicaManager,
KafkaApis): a malformed record, a wrong record count, a truncated varint or the control flag
from a client is INVALID_RECORD; an unknown codec (CompressionType.forId throws) or a payload
its codec cannot inflate (KafkaException) is UNKNOWN_SERVER_ERROR; a transactional batch in a
request without a transactional id fails the whole request, TRANSACTIONAL_ID_AUTHORIZATION_FAILED.
"""

import pytest
from confluent_kafka import Consumer
from confluent_kafka import TopicPartition as ConfluentPartition
from kafka import KafkaConsumer
from kafka import TopicPartition as KafkaPartition
from kafka.protocol.producer.produce import ProduceRequest, ProduceResponse

from engine.errors import (
    INVALID_RECORD,
    NONE,
    TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
    UNKNOWN_SERVER_ERROR,
)
from engine.records import CompressionType, RecordBatch, compress
from engine.records.batch import HEADER_SIZE
from scenarios.clients.loadgen import BatchProducer
from tests.conftest import broker_process, make_batch
from tests.test_broker_protocol import connect, frame, read_frame


def rewritten(batch: bytearray, **fields: int) -> bytes:
    """The batch with header fields changed (attributes, record_count, last_offset_delta, ...)
    and its CRC recomputed, so only its contents are wrong."""
    offsets = {"attributes": (21, 2), "last_offset_delta": (23, 4), "record_count": (57, 4)}
    out = bytearray(batch)
    for name, value in fields.items():
        at, size = offsets[name]
        out[at : at + size] = value.to_bytes(size, "big", signed=True)
    RecordBatch(memoryview(out)).update_crc()
    return bytes(out)


def with_records(batch: bytearray, records: bytes) -> bytes:
    """The batch's header over other records section bytes, the length and CRC made right."""
    out = bytearray(batch[:HEADER_SIZE]) + records
    out[8:12] = (len(out) - 12).to_bytes(4, "big")
    RecordBatch(memoryview(out)).update_crc()
    return bytes(out)


def garbage_records() -> bytes:
    return with_records(make_batch(5), b"not a record, not at all" * 20)


def gzip_flag_on_plain_records() -> bytes:
    return rewritten(make_batch(5), attributes=int(CompressionType.GZIP))


def codec_7() -> bytes:
    return rewritten(make_batch(5), attributes=7)


def control_flag() -> bytes:
    return rewritten(make_batch(5), attributes=0x20)


def count_above_the_records() -> bytes:
    return rewritten(make_batch(5), record_count=6, last_offset_delta=5)


def count_below_the_records() -> bytes:
    return rewritten(make_batch(5), record_count=4, last_offset_delta=3)


def truncated_varint() -> bytes:
    batch = make_batch(5)
    batch[-1] = 0x80  # the last record's header count now continues past the end
    return rewritten(batch)


def offset_deltas_out_of_sequence() -> bytes:
    batch = make_batch(2, value_size=10)
    records = bytearray(batch[HEADER_SIZE:])
    second = 1 + records[0] // 2  # after the first record (length varint, 1 byte here)
    records[second + 3] = 4  # its offsetDelta (after length, attributes, timestampDelta): 2
    return with_records(batch, bytes(records))


def garbage_inside_lz4() -> bytes:
    records = b"still not a record" * 20
    return with_records(make_batch(5), compress(CompressionType.LZ4, records))


def transactional_without_a_transaction() -> bytes:
    return rewritten(make_batch(5), attributes=0x10)


CASES = {
    "garbage records under a recomputed CRC": (garbage_records, INVALID_RECORD),
    "gzip flag on records that are not gzip": (gzip_flag_on_plain_records, UNKNOWN_SERVER_ERROR),
    "compression codec 7": (codec_7, UNKNOWN_SERVER_ERROR),
    "control flag from a client": (control_flag, INVALID_RECORD),
    "record count above the records": (count_above_the_records, INVALID_RECORD),
    "record count below the records": (count_below_the_records, INVALID_RECORD),
    "truncated varint": (truncated_varint, INVALID_RECORD),
    "offset deltas out of sequence": (offset_deltas_out_of_sequence, INVALID_RECORD),
    "garbage records inside lz4": (garbage_inside_lz4, INVALID_RECORD),
}


@pytest.fixture(scope="module")
def checked_broker(tmp_path_factory):
    running = broker_process(str(tmp_path_factory.mktemp("validation") / "data")).start()
    yield running
    running.stop()


def produce(broker, topic: str, records: dict[int, bytes], correlation_id: int = 1) -> dict:
    """One Produce request (v9, acks=1, no transactional id); error code and base offset by
    partition."""
    cls = ProduceRequest[9]
    partitions = [
        cls.TopicProduceData.PartitionProduceData(index=p, records=r) for p, r in records.items()
    ]
    request = cls(
        transactional_id=None,
        acks=1,
        timeout_ms=5000,
        topic_data=[cls.TopicProduceData(name=topic, partition_data=partitions)],
    )
    with connect(broker) as sock:
        sock.sendall(frame(request, correlation_id))
        response = ProduceResponse.decode(read_frame(sock), version=9, header=True)
    return {
        p.index: (p.error_code, p.base_offset) for p in response.responses[0].partition_responses
    }


def end_offsets(broker, topic: str) -> dict[int, int]:
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap)
    try:
        offsets = consumer.end_offsets([KafkaPartition(topic, p) for p in (0, 1)])
    finally:
        consumer.close()
    return {tp.partition: offset for tp, offset in offsets.items()}


def new_topic(broker, name: str) -> str:
    loader = BatchProducer(broker.bootstrap)
    try:
        loader.create_topic(name, 2)
    finally:
        loader.close()
    return name


def read_with_confluent(broker, topic: str, ends: dict[int, int]) -> int:
    consumer = Consumer(
        {
            "bootstrap.servers": broker.bootstrap,
            "group.id": f"{topic}-reader",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    consumer.assign([ConfluentPartition(topic, p, 0) for p in ends])
    read, at_end = 0, set()
    try:
        while at_end != {p for p, end in ends.items()}:
            message = consumer.poll(10)
            assert message is not None, f"confluent-kafka stalled after {read} records"
            error = message.error()
            if error is not None:
                assert error.code() == error._PARTITION_EOF, error
                if message.offset() >= ends[message.partition()]:
                    at_end.add(message.partition())
                continue
            read += 1
    finally:
        consumer.close()
    return read


def read_with_kafka_python(broker, topic: str, ends: dict[int, int]) -> int:
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, consumer_timeout_ms=10_000)
    partitions = [KafkaPartition(topic, p) for p in ends]
    consumer.assign(partitions)
    consumer.seek_to_beginning()
    read = 0
    try:
        for _ in consumer:  # raises CorruptRecordError & co. on a bad batch
            read += 1
            if all(consumer.position(tp) >= ends[tp.partition] for tp in partitions):
                break
    finally:
        consumer.close()
    return read


@pytest.mark.parametrize("case", list(CASES))
def test_a_batch_with_bad_contents_is_refused_and_the_other_partition_appended(
    checked_broker, case
):
    make_bad, expected = CASES[case]
    topic = new_topic(checked_broker, "bad-" + "-".join(case.split()))
    good = bytes(make_batch(3))
    assert produce(checked_broker, topic, {0: good, 1: good}) == {0: (NONE, 0), 1: (NONE, 0)}

    answers = produce(checked_broker, topic, {0: make_bad(), 1: good})

    assert answers[0] == (expected, -1)
    assert answers[1] == (NONE, 3)  # Kafka validates each partition on its own
    assert end_offsets(checked_broker, topic) == {0: 3, 1: 6}
    ends = {0: 3, 1: 6}
    assert read_with_confluent(checked_broker, topic, ends) == 9
    assert read_with_kafka_python(checked_broker, topic, ends) == 9


def test_a_transactional_batch_without_a_transactional_id_fails_the_whole_request(
    checked_broker,
):
    topic = new_topic(checked_broker, "bad-transactional")
    good = bytes(make_batch(3))

    answers = produce(checked_broker, topic, {0: transactional_without_a_transaction(), 1: good})

    assert answers == {
        0: (TRANSACTIONAL_ID_AUTHORIZATION_FAILED, -1),
        1: (TRANSACTIONAL_ID_AUTHORIZATION_FAILED, -1),
    }
    assert end_offsets(checked_broker, topic) == {0: 0, 1: 0}
    assert produce(checked_broker, topic, {0: good, 1: good}) == {0: (NONE, 0), 1: (NONE, 0)}
    ends = {0: 3, 1: 3}
    assert read_with_confluent(checked_broker, topic, ends) == 6
    assert read_with_kafka_python(checked_broker, topic, ends) == 6


@pytest.mark.parametrize("codec", list(CompressionType))
def test_sound_batches_of_every_codec_are_still_accepted(checked_broker, codec):
    topic = new_topic(checked_broker, f"sound-{codec.name.lower()}")
    batch = bytes(make_batch(200, value_size=50, compression=codec))
    assert produce(checked_broker, topic, {0: batch, 1: batch}) == {0: (NONE, 0), 1: (NONE, 0)}
    assert read_with_kafka_python(checked_broker, topic, {0: 200, 1: 200}) == 400


def test_a_bad_crc_is_answered_before_bad_contents(checked_broker):
    """Kafka checks the CRC (UnifiedLog.analyzeAndValidateRecords) before the records."""
    from engine.errors import CORRUPT_MESSAGE

    topic = new_topic(checked_broker, "bad-crc-and-contents")
    bad = bytearray(garbage_records())
    bad[-1] ^= 0xFF
    assert produce(checked_broker, topic, {0: bytes(bad)})[0][0] == CORRUPT_MESSAGE
