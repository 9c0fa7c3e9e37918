"""MetadataLog: the controller's __cluster_metadata-0 log, a new controller epoch at every start
(quorum-state, a LeaderChangeMessage control batch), records replayed back in order."""

import json
import os
import uuid

import pytest

from engine.controller.metadata_log import METADATA_PARTITION, QUORUM_STATE, MetadataLog
from engine.metadata.records import (
    FeatureLevelRecord,
    LeaderChangeMessage,
    NoOpRecord,
    TopicRecord,
    read_metadata_records,
)
from engine.records import decode_records, iter_batches

TOPIC_ID = uuid.UUID("00000000-0000-0000-0000-000000000042")


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000_000

    def __call__(self) -> int:
        return self.now


def _open(tmp_path, node_id=3, clock=None) -> MetadataLog:
    return MetadataLog(str(tmp_path), node_id, clock or Clock())


def _quorum_state(tmp_path) -> dict:
    path = os.path.join(tmp_path, str(METADATA_PARTITION), QUORUM_STATE)
    with open(path, encoding="utf-8") as f:
        text = f.read()
    assert "\n" not in text  # one JSON line, as Kafka's FileQuorumStateStore writes it
    return json.loads(text)


def _batches(log: MetadataLog):
    return list(iter_batches(log.read(0, 1 << 20).read()))


def test_a_new_log_begins_epoch_1_with_a_leader_change_batch(tmp_path):
    log = _open(tmp_path, node_id=3)
    try:
        assert log.epoch == 1 and log.end_offset == 1
        assert os.path.isdir(os.path.join(tmp_path, "__cluster_metadata-0"))
        [batch] = _batches(log)
        assert batch.is_control and batch.base_offset == 0 and batch.partition_leader_epoch == 1
        [record] = list(decode_records(batch))
        message = LeaderChangeMessage.decode(record.value, version=0, header=False)
        assert message.leader_id == 3
        assert [v.voter_id for v in message.voters] == [3]
        assert [v.voter_id for v in message.granting_voters] == [3]
        assert list(log.records()) == []  # control batches are not metadata records
    finally:
        log.close()
    assert _quorum_state(tmp_path) == {
        "clusterId": "",
        "leaderId": 3,
        "leaderEpoch": 1,
        "votedId": 3,
        "appliedOffset": 0,
        "currentVoters": [{"voterId": 3}],
        "data_version": 0,
    }
    assert not os.path.exists(
        os.path.join(tmp_path, str(METADATA_PARTITION), QUORUM_STATE + ".tmp")
    )


def test_appended_records_are_one_batch_each_and_replay_in_order(tmp_path):
    clock = Clock()
    log = _open(tmp_path, clock=clock)
    try:
        first = [
            FeatureLevelRecord(name="metadata.version", feature_level=12),
            TopicRecord(name="foo", topic_id=TOPIC_ID),
        ]
        assert log.append(first) == 1
        clock.now += 5
        assert log.append([NoOpRecord()]) == 3
        assert log.end_offset == 4
        replayed = list(log.records())
        assert [offset for offset, _ in replayed] == [1, 2, 3]
        assert [r for _, r in replayed] == [*first, NoOpRecord()]
        # what brokers fetch: everything appended is committed (flushed), batch by batch
        control, one, two = _batches(log)
        assert control.is_control
        assert (one.base_offset, one.last_offset, one.is_control) == (1, 2, False)
        assert (one.partition_leader_epoch, one.max_timestamp) == (1, clock.now - 5)
        assert (two.base_offset, two.max_timestamp) == (3, clock.now)
        assert list(read_metadata_records(log.read(3, 1 << 20).read())) == [(3, NoOpRecord())]
    finally:
        log.close()


def test_a_reopened_log_resumes_at_its_end_in_the_next_epoch(tmp_path):
    log = _open(tmp_path)
    log.append([TopicRecord(name="foo", topic_id=TOPIC_ID)])
    log.append([NoOpRecord(), NoOpRecord()])
    end = log.end_offset
    log.close()

    log = _open(tmp_path)
    try:
        assert log.epoch == 2
        assert log.end_offset == end + 1  # the new epoch's leader change batch
        assert [offset for offset, _ in log.records()] == [1, 2, 3]
        assert log.append([NoOpRecord()]) == end + 1
        batches = _batches(log)
        assert [(b.base_offset, b.partition_leader_epoch, b.is_control) for b in batches] == [
            (0, 1, True),
            (1, 1, False),
            (2, 1, False),
            (end, 2, True),
            (end + 1, 2, False),
        ]
        assert log.log.leader_epoch_cache.entries == [(1, 0), (2, end)]
        assert _quorum_state(tmp_path)["leaderEpoch"] == 2
    finally:
        log.close()
    third = _open(tmp_path)
    third.close()
    assert third.epoch == 3 and _quorum_state(tmp_path)["leaderEpoch"] == 3


def test_the_epoch_follows_quorum_state_when_it_is_ahead_of_the_log(tmp_path):
    _open(tmp_path).close()
    path = os.path.join(tmp_path, str(METADATA_PARTITION), QUORUM_STATE)
    state = _quorum_state(tmp_path)
    state["leaderEpoch"] = 7  # an epoch that was begun and voted for but wrote nothing we kept
    with open(path, "w", encoding="utf-8") as f:
        json.dump(state, f)
    log = _open(tmp_path)
    log.close()
    assert log.epoch == 8


def test_a_torn_batch_at_the_end_is_cut_at_the_next_start(tmp_path):
    log = _open(tmp_path)
    log.append([TopicRecord(name="foo", topic_id=TOPIC_ID)])
    end = log.end_offset
    log.close()
    segment = os.path.join(tmp_path, str(METADATA_PARTITION), "00000000000000000000.log")
    with open(segment, "ab") as f:
        f.write(b"\x00\x00\x00\x00\x00\x00\x00\x02\x00\x00\x01\x00partial")  # a torn append
    log = _open(tmp_path)
    try:
        assert log.end_offset == end + 1
        assert list(log.records()) == [(1, TopicRecord(name="foo", topic_id=TOPIC_ID))]
    finally:
        log.close()


def test_a_quorum_state_that_is_not_json_is_refused(tmp_path):
    _open(tmp_path).close()
    path = os.path.join(tmp_path, str(METADATA_PARTITION), QUORUM_STATE)
    with open(path, "w", encoding="utf-8") as f:
        f.write("{not json")
    with pytest.raises(RuntimeError, match="quorum-state"):
        _open(tmp_path)
