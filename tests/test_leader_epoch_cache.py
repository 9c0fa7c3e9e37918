"""LeaderEpochFileCache: where each leader epoch began, Kafka's answers to OffsetForLeaderEpoch,
truncation at both ends, and the checkpoint file across restarts and damage."""

import os

from kafka.protocol.admin.topics import CreateTopicsRequest, CreateTopicsResponse
from kafka.protocol.consumer.offsets import (
    OffsetForLeaderEpochRequest,
    OffsetForLeaderEpochResponse,
)
from kafka.protocol.producer.produce import ProduceRequest, ProduceResponse

from engine.errors import NONE, UNKNOWN_LEADER_EPOCH, UNKNOWN_TOPIC_OR_PARTITION
from engine.records import SimpleRecord, build_batch
from engine.storage import Log
from engine.storage.leader_epoch_cache import (
    LEADER_EPOCH_CHECKPOINT,
    UNDEFINED,
    LeaderEpochFileCache,
)
from scenarios.clients.cluster import KafkaConnection


def _cache(tmp_path, *entries: tuple[int, int]) -> LeaderEpochFileCache:
    cache = LeaderEpochFileCache(str(tmp_path))
    for epoch, start in entries:
        cache.assign(epoch, start)
    return cache


def test_assign_keeps_epochs_and_starts_increasing(tmp_path):
    cache = _cache(tmp_path, (0, 0), (0, 5), (2, 10), (3, 20))
    assert cache.entries == [(0, 0), (2, 10), (3, 20)]  # (0, 5): epoch 0 already began at 0
    cache.assign(2, 15)  # an older epoch again: every entry of it or newer goes, as in Kafka
    assert cache.entries == [(0, 0), (2, 15)]
    cache.assign(4, 12)  # a start before epoch 2's would break the order: epoch 2 goes too
    assert cache.entries == [(0, 0), (4, 12)]
    cache.assign(-1, 30)  # no epoch (an old message format): nothing recorded
    assert cache.latest_epoch == 4


def test_end_offset_for_answers_as_kafka(tmp_path):
    cache = _cache(tmp_path, (1, 0), (3, 100), (5, 250))
    log_end = 400
    assert cache.end_offset_for(5, log_end) == (5, 400)  # the latest: ends at the log end
    assert cache.end_offset_for(3, log_end) == (3, 250)  # ends where epoch 5 began
    assert cache.end_offset_for(4, log_end) == (3, 250)  # never led here: the epoch below
    assert cache.end_offset_for(0, log_end) == (0, 0)  # before every known epoch
    assert cache.end_offset_for(7, log_end) == (UNDEFINED, UNDEFINED)  # newer than any
    assert cache.end_offset_for(UNDEFINED, log_end) == (UNDEFINED, UNDEFINED)
    assert _cache(tmp_path / "x").end_offset_for(1, 5) == (UNDEFINED, UNDEFINED)


def test_truncation_at_either_end(tmp_path):
    cache = _cache(tmp_path, (1, 0), (3, 100), (5, 250))
    cache.truncate_from_end(250)  # the log cut at 250: epoch 5 never began
    assert cache.entries == [(1, 0), (3, 100)]
    cache.truncate_from_start(120)  # retention: the log begins inside epoch 3
    assert cache.entries == [(3, 120)]
    cache.truncate_from_start(50)  # before it: nothing to change
    assert cache.entries == [(3, 120)]


def test_the_file_is_kafkas_format_and_survives_a_restart(tmp_path):
    _cache(tmp_path, (0, 0), (2, 40))
    with open(tmp_path / LEADER_EPOCH_CHECKPOINT) as f:
        assert f.read() == "0\n2\n0 0\n2 40\n"
    assert LeaderEpochFileCache(str(tmp_path)).entries == [(0, 0), (2, 40)]
    assert not os.path.exists(tmp_path / (LEADER_EPOCH_CHECKPOINT + ".tmp"))


def test_a_damaged_file_is_dropped_not_fatal(tmp_path):
    for text in ("0\n3\n0 0\n", "1\n1\n0 0\n", "0\n2\n2 0\n1 5\n", "garbage"):
        (tmp_path / LEADER_EPOCH_CHECKPOINT).write_text(text)
        assert LeaderEpochFileCache(str(tmp_path)).entries == []


def test_the_log_records_each_epoch_where_its_first_batch_lands(tmp_path):
    directory = str(tmp_path / "t-0")
    log = Log(directory)
    for epoch, count in ((0, 3), (0, 2), (4, 1), (7, 2)):
        for _ in range(count):
            log.append_as_leader(build_batch([SimpleRecord(b"v")] * 2), leader_epoch=epoch)
    assert log.leader_epoch_cache.entries == [(0, 0), (4, 10), (7, 12)]
    assert log.leader_epoch_cache.end_offset_for(4, log.log_end_offset) == (4, 12)
    log.close()
    assert Log(directory, had_clean_shutdown=True).leader_epoch_cache.entries == [
        (0, 0),
        (4, 10),
        (7, 12),
    ]


def test_offset_for_leader_epoch_through_a_broker(broker):
    """Kafka's answers, from the cache the log keeps, over a real connection."""
    with KafkaConnection(broker.bootstrap) as connection:
        create = CreateTopicsRequest[4]
        topic = create.CreatableTopic(
            name="epochs", num_partitions=1, replication_factor=1, assignments=[], configs=[]
        )
        created = connection.request(
            create(topics=[topic], timeout_ms=10_000, validate_only=False), CreateTopicsResponse
        )
        assert created.topics[0].error_code == NONE
        produce = ProduceRequest[9]
        for _ in range(3):
            data = produce.TopicProduceData.PartitionProduceData(
                index=0, records=bytes(build_batch([SimpleRecord(b"v")] * 4))
            )
            request = produce(
                transactional_id=None,
                acks=1,
                timeout_ms=10_000,
                topic_data=[produce.TopicProduceData(name="epochs", partition_data=[data])],
            )
            answer = connection.request(request, ProduceResponse)
            assert answer.responses[0].partition_responses[0].error_code == NONE

        def ask(topic: str, current: int, epoch: int) -> tuple[int, int, int]:
            cls = OffsetForLeaderEpochRequest[4]
            wanted = cls.OffsetForLeaderTopic.OffsetForLeaderPartition(
                partition=0, current_leader_epoch=current, leader_epoch=epoch
            )
            request = cls(
                replica_id=-1, topics=[cls.OffsetForLeaderTopic(topic=topic, partitions=[wanted])]
            )
            [result] = connection.request(request, OffsetForLeaderEpochResponse).topics
            [answer] = result.partitions
            return answer.error_code, answer.leader_epoch, answer.end_offset

        assert ask("epochs", -1, 0) == (NONE, 0, 12)  # the latest epoch ends at the log end
        assert ask("epochs", 0, 0) == (NONE, 0, 12)
        assert ask("epochs", -1, 3) == (NONE, UNDEFINED, UNDEFINED)  # newer than any
        assert ask("epochs", 1, 0)[0] == UNKNOWN_LEADER_EPOCH  # the client is ahead of us
        assert ask("nothing", -1, 0)[0] == UNKNOWN_TOPIC_OR_PARTITION
