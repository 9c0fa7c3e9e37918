"""Leader election and ISR changes for one partition (Kafka's PartitionChangeBuilder).

Given a partition's registration and the ISR it should have, decide the leader and produce the
PartitionChangeRecord that says so, or nothing when nothing changes:
- the current leader stays if it is in the target ISR and may lead;
- else the first replica, in the partition's replica order, that is in the target ISR and may
  lead (an active broker that is not being removed);
- else, if unclean.leader.election.enable, the first replica that may lead at all: the ISR becomes
  that replica alone and the partition is RECOVERING (records only it had may be lost);
- else no leader (-1). The ISR is never emptied: the last member stays in it, so when that broker
  returns it is elected again with everything it had.
The leader epoch moves whenever the Leader field is set (replay bumps it); every record moves the
partition epoch.
"""

import uuid
from collections.abc import Callable, Sequence

from engine.metadata.image import (
    NO_LEADER,
    NO_LEADER_CHANGE,
    RECOVERING,
    PartitionRegistration,
)
from engine.metadata.records import PartitionChangeRecord


def partition_change(
    topic_id: uuid.UUID,
    index: int,
    registration: PartitionRegistration,
    target_isr: Sequence[int],
    may_lead: Callable[[int], bool],
    unclean: bool = False,
    preferred: bool = False,
) -> PartitionChangeRecord | None:
    """The record that takes the partition to target_isr with a leader chosen as above (or,
    with preferred, the first replica when it may lead: a preferred election), or None."""
    isr = [r for r in registration.replicas if r in target_isr]
    leader = _elect(registration, isr, may_lead, preferred)
    recovery = -1
    if leader == NO_LEADER and unclean:
        leader = next((r for r in registration.replicas if may_lead(r)), NO_LEADER)
        if leader != NO_LEADER:
            isr, recovery = [leader], RECOVERING
    if not isr:  # never empty the ISR (without ELR, KIP-966)
        isr = list(registration.isr)
    change = PartitionChangeRecord(
        version=0,
        partition_id=index,
        topic_id=topic_id,
        isr=None if tuple(isr) == registration.isr else isr,
        leader=NO_LEADER_CHANGE if leader == registration.leader else leader,
        leader_recovery_state=recovery,
    )
    if change.isr is None and change.leader == NO_LEADER_CHANGE and recovery == -1:
        return None
    return change


def _elect(
    registration: PartitionRegistration,
    isr: list[int],
    may_lead: Callable[[int], bool],
    preferred: bool,
) -> int:
    if preferred and registration.replicas:
        first = registration.replicas[0]
        if first in isr and may_lead(first):
            return first
    if registration.leader in isr and may_lead(registration.leader):
        return registration.leader
    return next((r for r in registration.replicas if r in isr and may_lead(r)), NO_LEADER)
