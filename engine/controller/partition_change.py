"""Leader election, ISR and replica changes for one partition (Kafka's PartitionChangeBuilder).

Given a partition's registration and the ISR (and, for a reassignment, the replicas, adding and
removing replicas) it should have, decide the leader and produce the PartitionChangeRecord that
says so, or nothing when nothing changes:
- a reassignment in progress (adding or removing replicas) completes once the ISR without the
  removing replicas is not empty and holds every replica that stays: the replicas become those,
  the ISR loses the removing ones, adding and removing are cleared (Kafka's
  PartitionReassignmentReplicas.maybeCompleteReassignment); every change is checked, so an ISR
  expansion, a fenced broker or the reassignment itself can complete it;
- the current leader stays if it is in the target ISR and may lead;
- else the first replica, in the partition's (new) replica order, that is in the target ISR and
  may lead (an active broker that is not being removed);
- else, if unclean.leader.election.enable, the first replica that may lead at all: the ISR becomes
  that replica alone and the partition is RECOVERING (records only it had may be lost);
- else no leader (-1). The ISR is never emptied: the last member stays in it, so when that broker
  returns it is elected again with everything it had.
With `preferred` (ElectLeaders, PREFERRED) the first replica is chosen when it may lead, before
the current leader. The leader epoch moves whenever the Leader field is set (replay bumps it),
and a change that takes replicas away sets it even for the same leader, so the old replicas'
fetches are fenced; every record moves the partition epoch.
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
    replicas: Sequence[int] | None = None,
    adding: Sequence[int] | None = None,
    removing: Sequence[int] | None = None,
    leader_recovery_state: int = -1,
) -> PartitionChangeRecord | None:
    """The record that takes the partition to target_isr (and the given replicas, adding and
    removing replicas: the current ones when None, and leader_recovery_state when not -1) with
    a leader chosen as above, or None when nothing changes."""
    new_replicas = list(registration.replicas if replicas is None else replicas)
    new_adding = list(registration.adding_replicas if adding is None else adding)
    new_removing = list(registration.removing_replicas if removing is None else removing)
    isr = [r for r in new_replicas if r in target_isr]
    if new_adding or new_removing:
        staying_isr = [r for r in isr if r not in new_removing]
        staying = [r for r in new_replicas if r not in new_removing]
        if staying_isr and staying and set(staying) <= set(staying_isr):
            isr, new_replicas, new_adding, new_removing = staying_isr, staying, [], []
    leader = _elect(new_replicas, registration.leader, isr, may_lead, preferred)
    recovery = -1
    if leader == NO_LEADER and unclean:
        leader = next((r for r in new_replicas if may_lead(r)), NO_LEADER)
        if leader != NO_LEADER:
            isr, recovery = [leader], RECOVERING
    if recovery == -1 and leader_recovery_state not in (-1, registration.leader_recovery_state):
        recovery = leader_recovery_state
    if not isr:  # never empty the ISR (without ELR, KIP-966)
        isr = list(registration.isr)
    if leader != registration.leader:
        leader_field = leader
    elif not set(registration.replicas) <= set(new_replicas):
        leader_field = leader  # replicas removed: a new leader epoch all the same
    else:
        leader_field = NO_LEADER_CHANGE
    change = PartitionChangeRecord(
        version=0,
        partition_id=index,
        topic_id=topic_id,
        isr=None if set(isr) == set(registration.isr) else isr,  # the same, maybe reordered
        leader=leader_field,
        replicas=None if tuple(new_replicas) == registration.replicas else new_replicas,
        removing_replicas=None
        if tuple(new_removing) == registration.removing_replicas
        else new_removing,
        adding_replicas=None if tuple(new_adding) == registration.adding_replicas else new_adding,
        leader_recovery_state=recovery,
    )
    if (
        change.isr is None
        and change.leader == NO_LEADER_CHANGE
        and change.replicas is None
        and change.removing_replicas is None
        and change.adding_replicas is None
        and recovery == -1
    ):
        return None
    return change


def _elect(
    replicas: Sequence[int],
    current: int,
    isr: list[int],
    may_lead: Callable[[int], bool],
    preferred: bool,
) -> int:
    if preferred and replicas:
        first = replicas[0]
        if first in isr and may_lead(first):
            return first
    if current in isr and may_lead(current):
        return current
    return next((r for r in replicas if r in isr and may_lead(r)), NO_LEADER)
