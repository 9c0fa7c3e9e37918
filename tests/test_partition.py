"""A partition's replication state on its leader, without sockets: what followers' fetches tell
it, the high watermark, ISR changes, acks=all, and ListOffsets during a new leader's catch-up."""

from types import SimpleNamespace

import pytest

from engine.broker.kafka_apis import list_offsets_error
from engine.broker.partition import NotEnoughReplicasError, NotLeaderOrFollowerError, Partition
from engine.common import TopicPartition
from engine.errors import (
    FENCED_LEADER_EPOCH,
    NONE,
    NOT_ENOUGH_REPLICAS_AFTER_APPEND,
    NOT_LEADER_OR_FOLLOWER,
    OFFSET_NOT_AVAILABLE,
    UNKNOWN_LEADER_EPOCH,
)
from engine.metadata import PartitionRegistration
from engine.storage import Log, LogConfig
from tests.conftest import make_batch

LAG_MS = 1_000
T0 = 1_700_000_000_000  # a wall-clock time: a replica never caught up counts from 0


def leader(tmp_path, isr=(1, 2, 3), min_isr: int = 2, eligible=lambda r: True) -> Partition:
    log = Log(str(tmp_path / "t-0"), LogConfig(min_insync_replicas=min_isr))
    partition = Partition(
        TopicPartition("t", 0),
        log,
        leader_id=-1,
        local_id=1,
        replica_lag_time_max_ms=LAG_MS,
        isr_eligible=eligible,
    )
    partition.make_leader(PartitionRegistration((1, 2, 3), tuple(isr), 1, 0, 0), now_ms=T0)
    return partition


def append(partition: Partition, records: int = 5, acks: int = -1, now: int = T0) -> int:
    """Append a batch as the leader; the offset after it."""
    return partition.append_records_to_leader(make_batch(records), acks, now).last_offset + 1


def test_the_high_watermark_waits_for_every_in_sync_follower(tmp_path):
    p = leader(tmp_path)
    end = append(p)
    assert p.high_watermark == 0  # followers' positions are unknown after becoming leader
    assert p.update_follower_fetch_state(2, end, 0, now_ms=T0 + 10) is False  # 3 still at -1
    assert p.update_follower_fetch_state(3, 3, 0, now_ms=T0 + 10) is True
    assert p.high_watermark == 3
    assert p.update_follower_fetch_state(3, end, 0, now_ms=T0 + 20)
    assert p.high_watermark == end
    assert p.check_enough_replicas_reach_offset(end) == (True, NONE)


def test_below_min_insync_replicas_acks_all_is_refused_and_the_watermark_freezes(tmp_path):
    p = leader(tmp_path, isr=(1,))
    with pytest.raises(NotEnoughReplicasError):
        append(p)
    end = append(p, acks=1)  # acks=1 is accepted, but nobody can read it yet (KAFKA-15583)
    assert p.high_watermark == 0
    p.update_follower_fetch_state(2, end, 0, now_ms=T0 + 5)
    assert p.high_watermark == 0


def test_an_isr_shrinking_after_append_answers_not_enough_replicas_after_append(tmp_path):
    p = leader(tmp_path, isr=(1, 2, 3), min_isr=3)
    end = append(p)
    assert p.check_enough_replicas_reach_offset(end) == (False, NONE)
    p.update_follower_fetch_state(2, end, 0, now_ms=T0 + 5)
    p.update_follower_fetch_state(3, end, 0, now_ms=T0 + 5)
    p.alter_isr_committed(p.leader_epoch, p.partition_epoch + 1, [1, 2])  # 3 leaves the ISR
    assert p.check_enough_replicas_reach_offset(end) == (True, NOT_ENOUGH_REPLICAS_AFTER_APPEND)


def test_a_follower_that_stops_fetching_is_proposed_out_of_the_isr(tmp_path):
    p = leader(tmp_path)
    end = append(p, acks=1)
    p.update_follower_fetch_state(2, end, 0, now_ms=T0 + 100)
    p.update_follower_fetch_state(3, end, 0, now_ms=T0 + 100)
    append(p, acks=1, now=T0 + 200)
    p.update_follower_fetch_state(2, p.log.log_end_offset, 0, now_ms=T0 + LAG_MS + 150)
    assert p.isr_to_shrink(now_ms=T0 + LAG_MS + 50) is None  # 3 caught up at 100: within the lag
    assert p.isr_to_shrink(now_ms=T0 + LAG_MS + 150) == [1, 2]


def test_a_follower_joins_the_isr_once_it_reaches_the_high_watermark(tmp_path):
    p = leader(tmp_path, isr=(1, 2), min_isr=1)
    end = append(p)
    p.update_follower_fetch_state(2, end, 0, now_ms=T0 + 5)
    assert p.high_watermark == end
    p.update_follower_fetch_state(3, 2, 0, now_ms=T0 + 5)
    assert p.isr_to_expand(3) is None  # behind the high watermark
    p.update_follower_fetch_state(3, end, 0, now_ms=T0 + 6)
    assert p.isr_to_expand(3) == [1, 2, 3]


def test_a_fenced_follower_neither_joins_nor_holds_the_watermark_back(tmp_path):
    fenced = {3}
    p = leader(tmp_path, isr=(1, 2), min_isr=1, eligible=lambda r: r not in fenced)
    p.update_follower_fetch_state(3, 0, 0, now_ms=T0)  # caught up at the start: within the lag
    end = append(p)
    p.update_follower_fetch_state(2, end, 0, now_ms=T0 + 5)
    assert p.high_watermark == end  # 3 is caught up by time but fenced: not waited for
    p.update_follower_fetch_state(3, end, 0, now_ms=T0 + 6)
    assert p.isr_to_expand(3) is None


def test_a_stale_registration_is_ignored_and_leadership_moves_to_a_follower(tmp_path):
    p = leader(tmp_path)
    assert not p.make_leader(PartitionRegistration((1, 2, 3), (1, 2), 1, 0, -5), now_ms=T0)
    assert p.make_follower(PartitionRegistration((1, 2, 3), (2, 3), 2, 1, 1))
    assert (p.is_leader, p.leader_id, p.leader_epoch) == (False, 2, 1)
    with pytest.raises(NotLeaderOrFollowerError):
        append(p, acks=1)


def test_list_offsets_waits_for_a_new_leader_to_catch_up_on_its_epoch(tmp_path):
    p = leader(tmp_path, isr=(1, 2), min_isr=1)
    end = append(p)
    p.update_follower_fetch_state(2, end, 0, now_ms=T0 + 1)
    append(p)  # not on the follower yet: the high watermark stays at `end`
    # a new epoch starts at the log end, past the high watermark
    p.make_leader(PartitionRegistration((1, 2, 3), (1, 2), 1, 2, 2), now_ms=T0 + 2)
    assert p.high_watermark == end < p.leader_epoch_start_offset
    wanted = SimpleNamespace(timestamp=-1, current_leader_epoch=2)
    assert list_offsets_error(p, wanted, 5) == OFFSET_NOT_AVAILABLE
    assert list_offsets_error(p, wanted, 4) == NONE  # before v5 Kafka answers with the HW
    earliest = SimpleNamespace(timestamp=-2, current_leader_epoch=2)
    assert list_offsets_error(p, earliest, 5) == NONE  # the log start is always known
    p.update_follower_fetch_state(2, p.log.log_end_offset, 0, now_ms=T0 + 3)
    assert list_offsets_error(p, wanted, 5) == NONE
    assert (
        list_offsets_error(p, SimpleNamespace(timestamp=-1, current_leader_epoch=1), 5)
        == FENCED_LEADER_EPOCH
    )
    assert (
        list_offsets_error(p, SimpleNamespace(timestamp=-1, current_leader_epoch=3), 5)
        == UNKNOWN_LEADER_EPOCH
    )
    p.make_follower(PartitionRegistration((1, 2, 3), (2,), 2, 3, 3))
    assert list_offsets_error(p, SimpleNamespace(timestamp=-1, current_leader_epoch=3), 5) == (
        NOT_LEADER_OR_FOLLOWER
    )
