"""partition_change: leader election and ISR changes for one partition, with the rules of
Kafka's PartitionChangeBuilder (electAnyLeader, electPreferredLeader, unclean election, the ISR
never emptied without ELR, no record when nothing changes)."""

import uuid

import pytest

from engine.controller.partition_change import partition_change
from engine.metadata.image import (
    NO_LEADER,
    NO_LEADER_CHANGE,
    RECOVERING,
    PartitionRegistration,
)
from engine.metadata.records import decode_record, encode_record

TOPIC = uuid.UUID("00000000-0000-0000-0000-00000000000a")


def _active(*brokers):
    return lambda broker: broker in brokers


def _not(*brokers):
    return lambda broker: broker not in brokers


def _partition(replicas, isr, leader, **fields):
    return PartitionRegistration(
        tuple(replicas), tuple(isr), leader=leader, leader_epoch=5, partition_epoch=8, **fields
    )


def _applied(registration, change):
    """The registration after the change, replayed as a broker would (through the codec)."""
    return registration.merge(decode_record(encode_record(change)))


def test_the_leader_stays_when_it_is_in_the_target_isr_and_may_lead():
    p = _partition([1, 2, 3], [1, 2, 3], leader=2)
    change = partition_change(TOPIC, 4, p, [1, 2], _active(1, 2, 3))
    assert change is not None
    assert (change.topic_id, change.partition_id) == (TOPIC, 4)
    assert change.leader == NO_LEADER_CHANGE and change.isr == [1, 2]
    assert change.leader_recovery_state == -1
    after = _applied(p, change)
    assert after.leader == 2 and after.leader_epoch == 5  # an ISR shrink keeps the leader epoch
    assert after.isr == (1, 2) and after.partition_epoch == 9


def test_a_leader_leaving_the_isr_gives_way_to_the_first_eligible_replica_in_replica_order():
    # ISR order differs from replica order: the replica order decides
    p = _partition([3, 1, 2], [2, 1, 3], leader=3)
    change = partition_change(TOPIC, 0, p, [2, 1], _active(1, 2))
    assert change is not None and change.leader == 1
    after = _applied(p, change)
    assert after.leader == 1 and after.leader_epoch == 6 and sorted(after.isr) == [1, 2]


def test_a_replica_that_may_not_lead_is_skipped():
    p = _partition([3, 1, 2], [3, 1, 2], leader=3)
    change = partition_change(TOPIC, 0, p, [1, 2], _active(2))  # 1 is fenced or shutting down
    assert change is not None and change.leader == 2


def test_a_leader_that_may_no_longer_lead_is_replaced_even_if_it_stays_in_the_isr():
    p = _partition([1, 2, 3], [1, 2, 3], leader=1)
    change = partition_change(TOPIC, 0, p, [1, 2, 3], _active(2, 3))
    assert change is not None
    assert change.leader == 2 and change.isr is None  # the ISR itself does not change


def test_a_replica_outside_the_target_isr_is_not_elected_cleanly():
    p = _partition([1, 2, 3], [1, 2], leader=1)
    change = partition_change(TOPIC, 0, p, [2], _active(3))
    assert change is not None and change.leader == NO_LEADER and change.isr == [2]


def test_with_no_candidate_the_partition_has_no_leader_and_keeps_its_last_isr_member():
    p = _partition([1, 2, 3], [1], leader=1)
    change = partition_change(TOPIC, 0, p, [], _active(2, 3))
    assert change is not None
    assert change.leader == NO_LEADER
    assert change.isr is None  # never emptied: broker 1 stays, to be elected when it returns
    assert change.leader_recovery_state == -1
    after = _applied(p, change)
    assert after.leader == NO_LEADER and after.isr == (1,)
    assert after.leader_epoch == 6 and after.partition_epoch == 9


def test_a_leaderless_partition_with_no_candidate_is_left_alone():
    p = _partition([1, 2, 3], [1], leader=NO_LEADER)
    assert partition_change(TOPIC, 0, p, [1], _active(2, 3)) is None
    assert partition_change(TOPIC, 0, p, [], _active(2, 3)) is None


def test_a_returning_isr_member_is_elected_for_a_leaderless_partition():
    p = _partition([1, 2, 3], [1], leader=NO_LEADER)
    change = partition_change(TOPIC, 0, p, [1], _active(1, 2, 3))
    assert change is not None and change.leader == 1 and change.isr is None
    assert _applied(p, change).leader_epoch == 6


def test_unclean_election_takes_the_first_eligible_replica_and_makes_it_the_isr():
    p = _partition([1, 2, 3], [1], leader=1)
    change = partition_change(TOPIC, 0, p, [], _active(2, 3), unclean=True)
    assert change is not None
    assert change.leader == 2 and change.isr == [2]
    assert change.leader_recovery_state == RECOVERING
    after = _applied(p, change)
    assert after.leader == 2 and after.isr == (2,) and after.leader_recovery_state == RECOVERING
    assert after.leader_epoch == 6


def test_unclean_election_is_not_used_while_a_clean_one_is_possible():
    p = _partition([1, 2, 3], [1, 3], leader=1)
    change = partition_change(TOPIC, 0, p, [3], _active(2, 3), unclean=True)
    assert change is not None
    assert change.leader == 3 and change.isr == [3]
    assert change.leader_recovery_state == -1  # clean: no recovery needed


def test_unclean_election_with_nobody_to_elect_leaves_no_leader_and_the_isr():
    p = _partition([1, 2, 3], [1], leader=1)
    change = partition_change(TOPIC, 0, p, [], _active(), unclean=True)
    assert change is not None
    assert change.leader == NO_LEADER and change.isr is None
    assert change.leader_recovery_state == -1


def test_nothing_to_change_is_no_record():
    p = _partition([1, 2, 3], [1, 2, 3], leader=1)
    assert partition_change(TOPIC, 0, p, [1, 2, 3], _active(1, 2, 3)) is None
    assert partition_change(TOPIC, 0, p, [3, 2, 1], _active(1, 2, 3)) is None  # same members
    assert partition_change(TOPIC, 0, p, [1, 2, 3], _active(1, 2, 3), unclean=True) is None


def test_a_preferred_election_moves_leadership_to_the_first_replica():
    p = _partition([1, 2, 3], [1, 2, 3], leader=2)
    change = partition_change(TOPIC, 0, p, [1, 2, 3], _active(1, 2, 3), preferred=True)
    assert change is not None and change.leader == 1 and change.isr is None
    # without preferred the current leader stays
    assert partition_change(TOPIC, 0, p, [1, 2, 3], _active(1, 2, 3)) is None


def test_a_preferred_election_keeps_the_leader_when_the_first_replica_cannot_lead():
    out_of_isr = _partition([1, 2, 3], [2, 3], leader=2)
    assert partition_change(TOPIC, 0, out_of_isr, [2, 3], _active(1, 2, 3), preferred=True) is None
    fenced = _partition([1, 2, 3], [1, 2, 3], leader=2)
    assert partition_change(TOPIC, 0, fenced, [1, 2, 3], _active(2, 3), preferred=True) is None
    # neither the first replica nor the leader: the next valid one
    change = partition_change(TOPIC, 0, fenced, [1, 2, 3], _active(3), preferred=True)
    assert change is not None and change.leader == 3
    # the first replica already leads
    led = _partition([1, 2, 3], [1, 2, 3], leader=1)
    assert partition_change(TOPIC, 0, led, [1, 2, 3], _active(1, 2, 3), preferred=True) is None


def test_a_clean_election_on_a_recovering_partition_keeps_its_recovery_state():
    p = _partition([1, 2, 3], [1, 2], leader=1, leader_recovery_state=RECOVERING)
    change = partition_change(TOPIC, 0, p, [2], _active(2, 3))
    assert change is not None and change.leader == 2
    assert _applied(p, change).leader_recovery_state == RECOVERING


# Kafka's PartitionChangeBuilderTest.testElectLeader: FOO has replicas [2, 1, 3], ISR [2, 1, 3],
# leader 1, and every broker but 3 may lead; BAZ has replicas [2, 1, 3], ISR [1, 3], leader 3.
FOO = _partition([2, 1, 3], [2, 1, 3], leader=1)
BAZ = _partition([2, 1, 3], [1, 3], leader=3)


@pytest.mark.parametrize(
    ("partition", "target_isr", "may_lead", "options", "leader"),
    [
        pytest.param(FOO, [2, 1, 3], _not(3), {"preferred": True}, 2, id="foo-preferred"),
        pytest.param(FOO, [2, 1, 3], _not(3), {}, 1, id="foo-keeps"),
        pytest.param(FOO, [2, 1, 3], _not(3), {"unclean": True}, 1, id="foo-unclean-keeps"),
        pytest.param(FOO, [1, 3], _not(3), {}, 1, id="foo-isr-1-3"),
        pytest.param(FOO, [1, 3], _not(3), {"unclean": True}, 1, id="foo-isr-1-3-unclean"),
        pytest.param(FOO, [3], _not(3), {}, NO_LEADER, id="foo-isr-3"),
        pytest.param(FOO, [3], _not(3), {"unclean": True}, 2, id="foo-isr-3-unclean"),
        pytest.param(BAZ, [1, 3], _not(), {"preferred": True}, 3, id="baz-preferred"),
        pytest.param(BAZ, [1, 3], _not(), {}, 3, id="baz-keeps"),
        pytest.param(BAZ, [1, 3], _not(), {"unclean": True}, 3, id="baz-unclean-keeps"),
    ],
)
def test_kafkas_election_cases(partition, target_isr, may_lead, options, leader):
    change = partition_change(TOPIC, 0, partition, target_isr, may_lead, **options)
    after = partition if change is None else _applied(partition, change)
    assert after.leader == leader


def test_kafkas_unclean_election_record():
    change = partition_change(TOPIC, 0, FOO, [3], _not(3), unclean=True)
    assert change is not None
    assert (change.leader, change.isr, change.leader_recovery_state) == (2, [2], RECOVERING)
