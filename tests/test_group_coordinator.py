"""GroupCoordinator: joins, syncs, heartbeats, rebalances, timers, static members and offsets.

Time is a fake clock the tests advance; timers fire at tick(). Every JoinGroup and SyncGroup goes
through a Reply that fails on a second answer, and at the end of each test the clock runs on until
no timer is left, after which every request must have been answered exactly once.
"""

import errno
from collections.abc import Iterator

import pytest
from kafka.protocol.consumer import ConsumerProtocolSubscription

from engine.broker.group_coordinator import (
    CommittedOffset,
    GroupConfig,
    GroupCoordinator,
    JoinGroupResult,
    LeaveGroupResult,
    SyncGroupResult,
)
from engine.errors import (
    FENCED_INSTANCE_ID,
    GROUP_ID_NOT_FOUND,
    GROUP_MAX_SIZE_REACHED,
    GROUP_SUBSCRIBED_TO_TOPIC,
    ILLEGAL_GENERATION,
    INCONSISTENT_GROUP_PROTOCOL,
    INVALID_GROUP_ID,
    INVALID_SESSION_TIMEOUT,
    MEMBER_ID_REQUIRED,
    NON_EMPTY_GROUP,
    NONE,
    NOT_COORDINATOR,
    OFFSET_METADATA_TOO_LARGE,
    REBALANCE_IN_PROGRESS,
    UNKNOWN_MEMBER_ID,
)

SESSION_MS = 10_000
REBALANCE_MS = 30_000
DELAY_MS = 3_000  # group.initial.rebalance.delay.ms's default
RANGE = [("range", b"r")]


class Clock:
    def __init__(self, now: int = 1_000_000) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


class InMemoryOffsetStore:
    """An OffsetStore in a list: a coordinator built over it later finds what was stored."""

    def __init__(self) -> None:
        self.commits: list[tuple[str, CommittedOffset]] = []

    def store(self, group_id: str, offsets: list[CommittedOffset]) -> None:
        self.commits.extend((group_id, o) for o in offsets)

    def load(self) -> list[tuple[str, CommittedOffset]]:
        return list(self.commits)

    def delete_group(self, group_id: str) -> None:
        self.commits = [(g, o) for g, o in self.commits if g != group_id]

    def delete_offsets(self, group_id: str, partitions: list[tuple[str, int]]) -> None:
        self.commits = [
            (g, o)
            for g, o in self.commits
            if g != group_id or (o.topic, o.partition) not in partitions
        ]


class FullDiskOffsetStore(InMemoryOffsetStore):
    def store(self, group_id: str, offsets: list[CommittedOffset]) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")


class Reply:
    """A respond callback that keeps its result and fails when called a second time."""

    def __init__(self) -> None:
        self.results: list = []

    def __call__(self, result) -> None:
        assert not self.results, f"answered twice: {self.results[0]} then {result}"
        self.results.append(result)

    @property
    def done(self) -> bool:
        return bool(self.results)

    @property
    def result(self):
        assert self.results, "not answered yet"
        return self.results[0]


class Group:
    """A coordinator on a fake clock, and the requests of one test, mostly to group "g"."""

    def __init__(self, store=None, clock: Clock | None = None, **config) -> None:
        self.clock = clock or Clock()
        self.store = InMemoryOffsetStore() if store is None else store
        self.coordinator = GroupCoordinator(GroupConfig(**config), self.store, self.clock)
        self.replies: list[Reply] = []

    def _reply(self) -> Reply:
        reply = Reply()
        self.replies.append(reply)
        return reply

    def join(
        self,
        member_id: str = "",
        *,
        client_id: str = "client",
        instance_id: str | None = None,
        protocols=RANGE,
        protocol_type: str = "consumer",
        session_ms: int = SESSION_MS,
        rebalance_ms: int = REBALANCE_MS,
        require_known: bool = True,
        group_id: str = "g",
    ) -> Reply:
        reply = self._reply()
        self.coordinator.join_group(
            group_id=group_id,
            member_id=member_id,
            group_instance_id=instance_id,
            client_id=client_id,
            client_host="/127.0.0.1",
            session_timeout_ms=session_ms,
            rebalance_timeout_ms=rebalance_ms,
            protocol_type=protocol_type,
            protocols=list(protocols),
            require_known_member_id=require_known,
            respond=reply,
        )
        return reply

    def join_new(self, client_id: str, **kwargs) -> tuple[str, Reply]:
        """The MEMBER_ID_REQUIRED round trip: the id handed out and the rejoin's reply."""
        first = self.join("", client_id=client_id, **kwargs)
        assert first.result.error_code == MEMBER_ID_REQUIRED
        member_id = first.result.member_id
        return member_id, self.join(member_id, client_id=client_id, **kwargs)

    def sync(
        self,
        member_id: str,
        generation: int,
        assignments=(),
        *,
        instance_id: str | None = None,
        protocol_name: str | None = None,
        group_id: str = "g",
    ) -> Reply:
        reply = self._reply()
        self.coordinator.sync_group(
            group_id=group_id,
            generation_id=generation,
            member_id=member_id,
            group_instance_id=instance_id,
            protocol_type=None,
            protocol_name=protocol_name,
            assignments=list(assignments),
            respond=reply,
        )
        return reply

    def heartbeat(
        self, member_id: str, generation: int, instance_id: str | None = None, group_id="g"
    ) -> int:
        return self.coordinator.heartbeat(
            group_id=group_id,
            generation_id=generation,
            member_id=member_id,
            group_instance_id=instance_id,
        )

    def leave(self, *members: tuple[str, str | None], group_id: str = "g") -> LeaveGroupResult:
        return self.coordinator.leave_group(group_id=group_id, members=list(members))

    def commit(
        self, member_id: str, generation: int, *offsets: CommittedOffset, group_id: str = "g"
    ) -> dict[tuple[str, int], int]:
        return self.coordinator.commit_offsets(
            group_id=group_id,
            generation_id=generation,
            member_id=member_id,
            group_instance_id=None,
            offsets=list(offsets),
        )

    def fetch(self, partitions=None, group_id: str = "g"):
        return self.coordinator.fetch_offsets(group_id=group_id, partitions=partitions)

    def advance(self, ms: int) -> None:
        self.clock.now += ms
        self.coordinator.tick()

    def state(self, group_id: str = "g") -> str:
        return self.coordinator.describe_groups([group_id])[0].state

    def stable(self, *client_ids: str, protocols=RANGE) -> tuple[int, list[str]]:
        """Members that join together and sync to a Stable generation; the first leads."""
        joins = [self.join_new(client_id, protocols=protocols) for client_id in client_ids]
        while self.state() == "PreparingRebalance":
            self.advance(DELAY_MS)
        leader = joins[0][1].result
        member_ids = [member_id for member_id, _ in joins]
        assert leader.leader == member_ids[0]
        generation = leader.generation_id
        assignments = [(m, f"assignment of {m}".encode()) for m in member_ids]
        syncs = [self.sync(member_ids[0], generation, assignments)]
        syncs += [self.sync(m, generation) for m in member_ids[1:]]
        assert [s.result.error_code for s in syncs] == [NONE] * len(syncs)
        assert self.state() == "Stable"
        return generation, member_ids

    def run_down(self) -> None:
        """Run the clock until no timer is left: every session and rebalance has ended."""
        for _ in range(10):
            if self.coordinator.next_deadline_ms() is None:
                return
            self.advance(3_600_000)
        pytest.fail("timers still pending after 10 hours")


@pytest.fixture
def make_group() -> Iterator:
    groups: list[Group] = []

    def make(**kwargs) -> Group:
        groups.append(Group(**kwargs))
        return groups[-1]

    yield make
    for group in groups:
        group.run_down()
        unanswered = [r for r in group.replies if not r.done]
        assert not unanswered, f"{len(unanswered)} requests never answered"


@pytest.fixture
def group(make_group) -> Group:
    return make_group()


def offset(
    partition: int, value: int, topic: str = "t", metadata: str | None = ""
) -> CommittedOffset:
    return CommittedOffset(topic, partition, value, 7, metadata, commit_timestamp_ms=123)


# -- joining ------------------------------------------------------------------------------------
def test_a_new_member_gets_an_id_and_joins_with_it(group):
    first = group.join("", client_id="c1")
    required = first.result
    assert required.error_code == MEMBER_ID_REQUIRED
    assert required.member_id.startswith("c1-")
    assert required.generation_id == -1
    assert group.state() == "Empty"  # a pending member is not a member yet

    second = group.join(required.member_id, client_id="c1")
    assert not second.done
    assert group.state() == "PreparingRebalance"
    group.advance(DELAY_MS)
    assert second.result == JoinGroupResult(
        error_code=NONE,
        generation_id=1,
        protocol_type="consumer",
        protocol_name="range",
        leader=required.member_id,
        member_id=required.member_id,
        members=[(required.member_id, None, b"r")],
    )
    assert group.state() == "CompletingRebalance"


def test_without_require_known_member_id_a_member_joins_at_once(group):
    reply = group.join("", client_id="old-client", require_known=False)
    group.advance(DELAY_MS)
    assert reply.result.error_code == NONE
    assert reply.result.member_id.startswith("old-client-")


def test_two_members_join_and_the_leader_gets_everyones_metadata(group):
    a, join_a = group.join_new("a", protocols=[("range", b"meta-a")])
    b, join_b = group.join_new("b", protocols=[("range", b"meta-b")])
    group.advance(DELAY_MS)
    group.advance(DELAY_MS)  # b arrived during the first delay, which extends it once

    leader, follower = join_a.result, join_b.result
    assert leader.generation_id == follower.generation_id == 1
    assert leader.leader == follower.leader == a
    assert (leader.member_id, follower.member_id) == (a, b)
    assert leader.members == [(a, None, b"meta-a"), (b, None, b"meta-b")]
    assert follower.members == []


def test_join_requests_are_validated(group):
    assert group.join(group_id="").result.error_code == INVALID_GROUP_ID
    assert group.join(session_ms=5_999).result.error_code == INVALID_SESSION_TIMEOUT
    assert group.join(session_ms=1_800_001).result.error_code == INVALID_SESSION_TIMEOUT
    assert group.join("made-up").result.error_code == UNKNOWN_MEMBER_ID  # no such group
    assert group.join(protocols=[]).result.error_code == INCONSISTENT_GROUP_PROTOCOL

    group.stable("a")
    assert group.join("made-up").result.error_code == UNKNOWN_MEMBER_ID


def test_group_max_size(make_group):
    group = make_group(group_max_size=1)
    generation, (a,) = group.stable("a")
    full = group.join("", client_id="b").result
    assert (full.error_code, full.member_id) == (GROUP_MAX_SIZE_REACHED, "")
    assert group.join(a, client_id="a").result.generation_id == generation + 1


def test_protocol_selection_follows_the_members_votes(group):
    a, join_a = group.join_new(
        "a", protocols=[("range", b"a-range"), ("roundrobin", b"a-rr"), ("sticky", b"a-sticky")]
    )
    b, _ = group.join_new(
        "b", protocols=[("sticky", b"b-sticky"), ("range", b"b-range"), ("roundrobin", b"b-rr")]
    )
    c, _ = group.join_new("c", protocols=[("sticky", b"c-sticky"), ("roundrobin", b"c-rr")])
    while group.state() == "PreparingRebalance":
        group.advance(DELAY_MS)

    # range is not supported by c; a votes roundrobin, b and c vote sticky.
    result = join_a.result
    assert result.protocol_name == "sticky"
    assert result.members == [
        (a, None, b"a-sticky"),
        (b, None, b"b-sticky"),
        (c, None, b"c-sticky"),
    ]

    no_common = group.join("", protocols=[("range", b"")]).result
    assert no_common.error_code == INCONSISTENT_GROUP_PROTOCOL
    other_type = group.join("", protocol_type="connect", protocols=[("sticky", b"")]).result
    assert other_type.error_code == INCONSISTENT_GROUP_PROTOCOL


# -- syncing ------------------------------------------------------------------------------------
def test_sync_gives_every_member_the_leaders_assignment(group):
    a, _ = group.join_new("a")
    b, _ = group.join_new("b")
    c, _ = group.join_new("c")
    while group.state() == "PreparingRebalance":
        group.advance(DELAY_MS)

    follower_sync = group.sync(b, 1)
    assert not follower_sync.done  # waits for the leader's assignment
    leader_sync = group.sync(a, 1, [(a, b"for a"), (b, b"for b"), ("stranger", b"dropped")])
    assert leader_sync.result == SyncGroupResult(NONE, "consumer", "range", b"for a")
    assert follower_sync.result == SyncGroupResult(NONE, "consumer", "range", b"for b")
    assert group.state() == "Stable"

    # The leader left c out: c gets an empty assignment when it syncs, at once.
    assert group.sync(c, 1).result.assignment == b""
    assert group.sync(b, 1).result.assignment == b"for b"  # a repeated sync gets it again


def test_sync_requests_are_validated(group):
    generation, (a, b) = group.stable("a", "b")
    assert group.sync(a, generation, group_id="unknown").result.error_code == UNKNOWN_MEMBER_ID
    assert group.sync("made-up", generation).result.error_code == UNKNOWN_MEMBER_ID
    assert group.sync(b, generation + 1).result.error_code == ILLEGAL_GENERATION
    mismatch = group.sync(b, generation, protocol_name="roundrobin").result
    assert mismatch.error_code == INCONSISTENT_GROUP_PROTOCOL

    group.join(a, client_id="a")  # the leader rejoins: PreparingRebalance
    assert group.sync(b, generation).result.error_code == REBALANCE_IN_PROGRESS


def test_a_rebalance_answers_waiting_syncs_with_rebalance_in_progress(group):
    a, _ = group.join_new("a")
    b, _ = group.join_new("b")
    while group.state() == "PreparingRebalance":
        group.advance(DELAY_MS)
    waiting = group.sync(b, 1)

    group.join_new("c")
    assert waiting.result.error_code == REBALANCE_IN_PROGRESS
    assert group.state() == "PreparingRebalance"
    assert group.sync(a, 1, [(a, b""), (b, b"")]).result.error_code == REBALANCE_IN_PROGRESS


def test_members_that_never_sync_are_removed_after_the_rebalance_timeout(group):
    a, _ = group.join_new("a")
    b, _ = group.join_new("b")
    while group.state() == "PreparingRebalance":
        group.advance(DELAY_MS)
    group.sync(a, 1, [(a, b"x"), (b, b"y")])
    assert group.state() == "Stable"

    for _ in range(5):
        group.advance(5_000)
        assert group.heartbeat(a, 1) == NONE
        assert group.heartbeat(b, 1) == NONE  # alive, but it never fetches its assignment
    group.advance(REBALANCE_MS - 25_001)
    assert group.state() == "Stable"
    group.advance(1)
    assert group.heartbeat(b, 1) == UNKNOWN_MEMBER_ID
    assert group.heartbeat(a, 1) == REBALANCE_IN_PROGRESS


# -- heartbeats and rebalances ------------------------------------------------------------------
def test_heartbeat_answers_by_group_state(group):
    generation, (a, b) = group.stable("a", "b")
    assert group.heartbeat(a, generation) == NONE
    assert group.heartbeat(a, generation - 1) == ILLEGAL_GENERATION
    assert group.heartbeat("made-up", generation) == UNKNOWN_MEMBER_ID
    assert group.heartbeat(a, generation, group_id="unknown") == UNKNOWN_MEMBER_ID
    assert group.heartbeat(a, generation, group_id="") == INVALID_GROUP_ID

    group.join(a, client_id="a")  # a leader that rejoins starts a rebalance
    assert group.heartbeat(b, generation) == REBALANCE_IN_PROGRESS


def test_a_third_member_makes_everyone_rejoin_to_the_next_generation(group):
    generation, (a, b) = group.stable("a", "b")
    c, join_c = group.join_new("c")
    assert group.state() == "PreparingRebalance"
    assert not join_c.done
    assert group.heartbeat(a, generation) == REBALANCE_IN_PROGRESS

    rejoin_a = group.join(a, client_id="a")
    assert not rejoin_a.done  # b has not rejoined yet
    rejoin_b = group.join(b, client_id="b")

    # Everyone is back, so the join phase ends without waiting for the rebalance timeout.
    results = [rejoin_a.result, rejoin_b.result, join_c.result]
    assert [r.generation_id for r in results] == [generation + 1] * 3
    assert [r.leader for r in results] == [a] * 3
    assert [m.member_id for m in rejoin_a.result.members] == [a, b, c]
    assert rejoin_b.result.members == join_c.result.members == []


def test_a_follower_rejoining_with_the_same_metadata_does_not_rebalance(group):
    generation, (a, b) = group.stable("a", "b")
    rejoin = group.join(b, client_id="b").result
    assert (rejoin.error_code, rejoin.generation_id, rejoin.leader) == (NONE, generation, a)
    assert group.state() == "Stable"

    changed = group.join(b, client_id="b", protocols=[("range", b"new subscription")])
    assert not changed.done
    assert group.state() == "PreparingRebalance"


def test_a_join_lost_during_completing_rebalance_is_repeated(group):
    a, first_a = group.join_new("a")
    group.join_new("b")
    while group.state() == "PreparingRebalance":
        group.advance(DELAY_MS)

    again = group.join(a, client_id="a").result
    assert again == first_a.result  # same generation, the leader gets the members again
    assert group.state() == "CompletingRebalance"


def test_a_repeated_join_replaces_the_waiting_one(group):
    generation, (a, b) = group.stable("a", "b")
    first = group.join(a, client_id="a")
    retry = group.join(a, client_id="a")
    assert first.result.error_code == REBALANCE_IN_PROGRESS
    group.join(b, client_id="b")
    assert retry.result.generation_id == generation + 1


def test_leaving_members_rebalance_the_group_until_it_is_empty(group):
    generation, (a, b) = group.stable("a", "b")
    assert group.leave((b, None)) == LeaveGroupResult(NONE, [(b, None, NONE)])
    assert group.state() == "PreparingRebalance"
    assert group.heartbeat(b, generation) == UNKNOWN_MEMBER_ID

    rejoin = group.join(a, client_id="a").result  # the only member left: the phase ends at once
    assert rejoin.generation_id == generation + 1
    assert rejoin.members == [(a, None, b"r")]
    assert group.sync(a, generation + 1, [(a, b"all")]).result.assignment == b"all"

    assert group.leave((a, None), ("ghost", None)) == LeaveGroupResult(
        NONE, [(a, None, NONE), ("ghost", None, UNKNOWN_MEMBER_ID)]
    )
    assert group.state() == "Empty"
    pending = group.join("", client_id="x").result.member_id
    assert group.leave((pending, None)).members == [(pending, None, NONE)]
    assert group.join(pending, client_id="x").result.error_code == UNKNOWN_MEMBER_ID
    assert group.leave((a, None), group_id="unknown").members == [(a, None, UNKNOWN_MEMBER_ID)]
    assert group.leave((a, None), group_id="").error_code == INVALID_GROUP_ID


def test_a_leaving_members_waiting_sync_is_answered(group):
    group.join_new("a")
    b, _ = group.join_new("b")
    while group.state() == "PreparingRebalance":
        group.advance(DELAY_MS)
    waiting = group.sync(b, 1)
    group.leave((b, None))
    assert waiting.result.error_code == UNKNOWN_MEMBER_ID
    assert group.state() == "PreparingRebalance"


# -- timers -------------------------------------------------------------------------------------
def test_session_expiry_removes_a_silent_member(group):
    generation, (a, b) = group.stable("a", "b")
    group.advance(SESSION_MS - 1)
    assert group.heartbeat(a, generation) == NONE
    assert group.state() == "Stable"

    group.advance(1)  # b's session ends; a heartbeated a moment ago
    assert group.state() == "PreparingRebalance"
    assert group.heartbeat(b, generation) == UNKNOWN_MEMBER_ID
    assert group.heartbeat(a, generation) == REBALANCE_IN_PROGRESS
    rejoin = group.join(a, client_id="a").result
    assert rejoin.generation_id == generation + 1
    assert rejoin.members == [(a, None, b"r")]


def test_the_last_silent_member_leaves_the_group_empty(group):
    group.stable("a")
    group.advance(SESSION_MS)
    assert group.state() == "Empty"


def test_a_new_member_stuck_in_join_is_answered_unknown_member_after_five_minutes(group):
    a, join_a = group.join_new("a", rebalance_ms=600_000)
    group.advance(DELAY_MS)
    generation = join_a.result.generation_id
    group.sync(a, generation, [(a, b"")])

    b, join_b = group.join_new("b")  # the rebalance waits up to 10 minutes for a to rejoin
    for _ in range(59):
        group.advance(5_000)
        assert group.heartbeat(a, generation) == REBALANCE_IN_PROGRESS  # a never rejoins
    assert not join_b.done
    group.advance(5_000)
    assert join_b.result == JoinGroupResult(UNKNOWN_MEMBER_ID, -1, None, None, "", "")
    assert group.heartbeat(b, generation) == UNKNOWN_MEMBER_ID


def test_initial_rebalance_delay_waits_for_more_members(group):
    start = group.clock.now
    _, join_a = group.join_new("a")
    assert group.coordinator.next_deadline_ms() == start + DELAY_MS
    group.advance(1_000)
    _, join_b = group.join_new("b")
    group.advance(DELAY_MS - 1_001)
    assert not join_a.done

    group.advance(1)  # the delay ends, but b arrived during it: one more delay
    assert not join_a.done and not join_b.done  # although everyone has joined
    group.advance(DELAY_MS - 1)
    assert not join_a.done
    group.advance(1)
    assert group.clock.now == start + 2 * DELAY_MS
    assert join_a.result.generation_id == join_b.result.generation_id == 1
    assert len(join_a.result.members) == 2


def test_initial_delay_extensions_stop_at_the_rebalance_timeout(group):
    start = group.clock.now
    # A rebalance timeout of 5 s leaves 2 s to extend the 3 s delay by.
    _, join_a = group.join_new("a", rebalance_ms=5_000)
    group.advance(100)
    group.join_new("b", rebalance_ms=5_000)
    group.advance(DELAY_MS - 100)  # extended by min(3 s, the 2 s left)
    group.advance(900)
    _, join_c = group.join_new("c", rebalance_ms=5_000)  # no time left to extend for c
    group.advance(1_099)
    assert not join_a.done
    group.advance(1)
    assert group.clock.now == start + 5_000
    assert join_c.result.generation_id == 1
    assert len(join_a.result.members) == 3


def test_rebalance_timeout_drops_a_member_that_does_not_rejoin(group):
    generation, (a, b) = group.stable("a", "b")
    rejoin_a = group.join(a, client_id="a")
    for _ in range(5):
        group.advance(5_000)
        assert group.heartbeat(b, generation) == REBALANCE_IN_PROGRESS  # alive, never rejoins
    group.advance(REBALANCE_MS - 25_001)
    assert not rejoin_a.done

    group.advance(1)
    assert rejoin_a.result.generation_id == generation + 1
    assert rejoin_a.result.members == [(a, None, b"r")]
    assert group.heartbeat(b, generation) == UNKNOWN_MEMBER_ID


def test_a_new_leader_is_chosen_when_the_leader_does_not_rejoin(group):
    generation, (a, b) = group.stable("a", "b")
    rejoin_b = group.join(b, client_id="b", protocols=[("range", b"changed")])
    for _ in range(6):
        group.advance(5_000)
        group.heartbeat(a, generation)  # alive, never rejoins
    result = rejoin_b.result
    assert (result.generation_id, result.leader) == (generation + 1, b)
    assert result.members == [(b, None, b"changed")]


def test_static_members_keep_their_place_through_a_rebalance_they_miss(group):
    first = group.join("", client_id="s", instance_id="host-1")
    d, _ = group.join_new("d")
    while group.state() == "PreparingRebalance":
        group.advance(DELAY_MS)
    s, generation = first.result.member_id, first.result.generation_id
    group.sync(s, generation, [(s, b"s"), (d, b"d")], instance_id="host-1")
    group.sync(d, generation)

    group.leave((d, None))
    for _ in range(12):  # two rebalance timeouts; s heartbeats but does not rejoin yet
        group.advance(5_000)
        assert group.heartbeat(s, generation, "host-1") == REBALANCE_IN_PROGRESS
    rejoin = group.join(s, client_id="s", instance_id="host-1").result
    assert (rejoin.generation_id, rejoin.leader) == (generation + 1, s)


def test_a_pending_member_holds_the_join_phase_until_its_id_lapses(group):
    generation, (a,) = group.stable("a")
    assert group.join("", client_id="x").result.error_code == MEMBER_ID_REQUIRED  # never returns
    rejoin_a = group.join(a, client_id="a")
    group.advance(SESSION_MS - 1)
    assert not rejoin_a.done
    group.advance(1)
    assert rejoin_a.result.generation_id == generation + 1
    assert [m.member_id for m in rejoin_a.result.members] == [a]


# -- static membership --------------------------------------------------------------------------
def test_a_static_member_rejoins_without_a_rebalance_and_fences_its_old_id(group):
    first = group.join("", client_id="s", instance_id="host-1")  # no MEMBER_ID_REQUIRED
    group.advance(DELAY_MS)
    old = first.result.member_id
    assert old.startswith("host-1-")
    generation = first.result.generation_id
    group.sync(old, generation, [(old, b"mine")], instance_id="host-1")

    # The client restarts: it knows its instance id but not its member id.
    rejoin = group.join("", client_id="s", instance_id="host-1").result
    new = rejoin.member_id
    assert new != old
    assert (rejoin.error_code, rejoin.generation_id, rejoin.members) == (NONE, generation, [])
    assert rejoin.leader == old  # so it does not compute an assignment nobody would receive
    assert group.state() == "Stable"

    assert group.heartbeat(old, generation, "host-1") == FENCED_INSTANCE_ID
    assert group.join(old, instance_id="host-1").result.error_code == FENCED_INSTANCE_ID
    assert group.heartbeat(new, generation, "host-1") == NONE
    assert group.sync(new, generation, instance_id="host-1").result.assignment == b"mine"

    assert group.leave(("", "host-1")) == LeaveGroupResult(NONE, [("", "host-1", NONE)])
    assert group.state() == "Empty"


def test_a_static_members_old_waiting_join_is_fenced(group):
    first = group.join("", client_id="s", instance_id="host-1")
    d, _ = group.join_new("d")
    while group.state() == "PreparingRebalance":
        group.advance(DELAY_MS)
    old, generation = first.result.member_id, first.result.generation_id
    group.sync(old, generation, [], instance_id="host-1")

    _, join_e = group.join_new("e")  # a rebalance
    stale = group.join(old, client_id="s", instance_id="host-1")
    replacement = group.join("", client_id="s", instance_id="host-1")
    assert stale.result.error_code == FENCED_INSTANCE_ID
    group.join(d, client_id="d")
    assert replacement.result.generation_id == generation + 1
    assert replacement.result.leader == replacement.result.member_id  # it kept the leadership
    assert len(replacement.result.members) == 3
    assert join_e.result.error_code == NONE


# -- offsets ------------------------------------------------------------------------------------
def test_commits_are_checked_against_the_generation(group):
    generation, (a, b) = group.stable("a", "b")
    assert group.commit(a, generation, offset(0, 42)) == {("t", 0): NONE}
    assert group.fetch([("t", 0), ("t", 1)]) == {("t", 0): offset(0, 42), ("t", 1): None}

    assert group.commit(a, generation + 1, offset(0, 1)) == {("t", 0): ILLEGAL_GENERATION}
    assert group.commit("made-up", generation, offset(0, 1)) == {("t", 0): UNKNOWN_MEMBER_ID}
    # Only members commit to a group that has members.
    assert group.commit("", -1, offset(0, 1)) == {("t", 0): UNKNOWN_MEMBER_ID}
    assert group.fetch([("t", 0)])[("t", 0)].offset == 42

    group.join_new("c")  # PreparingRebalance: members still commit what they consumed
    assert group.commit(b, generation, offset(1, 5)) == {("t", 1): NONE}
    group.join(a, client_id="a")
    group.join(b, client_id="b")
    assert group.state() == "CompletingRebalance"
    assert group.commit(a, generation + 1, offset(0, 2)) == {("t", 0): REBALANCE_IN_PROGRESS}
    assert group.fetch() == {("t", 0): offset(0, 42), ("t", 1): offset(1, 5)}


def test_commits_without_group_management(group):
    assert group.commit("", -1, offset(0, 10), group_id="simple") == {("t", 0): NONE}
    assert group.coordinator.list_groups() == [("simple", "", "Empty")]
    assert group.commit("", 3, offset(0, 1), group_id="other") == {("t", 0): ILLEGAL_GENERATION}
    assert group.fetch(group_id="simple") == {("t", 0): offset(0, 10)}
    assert group.fetch([("t", 0)], group_id="never") == {("t", 0): None}
    assert group.fetch(group_id="never") == {}


def test_commit_metadata_size_and_timestamp(make_group):
    group = make_group(offset_metadata_max_bytes=4)
    stamped = CommittedOffset("t", 1, 5, -1, None, commit_timestamp_ms=-1)
    errors = group.commit("", -1, offset(0, 1, metadata="12345"), stamped)
    assert errors == {("t", 0): OFFSET_METADATA_TOO_LARGE, ("t", 1): NONE}
    assert group.fetch() == {("t", 1): CommittedOffset("t", 1, 5, -1, None, group.clock.now)}


def test_a_failed_store_commits_nothing(make_group):
    group = make_group(store=FullDiskOffsetStore())
    assert group.commit("", -1, offset(0, 1)) == {("t", 0): NOT_COORDINATOR}
    assert group.fetch() == {}


def test_committed_offsets_survive_a_restart(make_group):
    before = make_group()
    before.commit("", -1, offset(0, 1))
    before.commit("", -1, offset(0, 2), offset(1, 9, metadata="m"))
    before.commit("", -1, offset(0, 5), group_id="other")

    after = make_group(store=before.store)
    assert after.fetch() == {("t", 0): offset(0, 2), ("t", 1): offset(1, 9, metadata="m")}
    assert after.fetch(group_id="other") == {("t", 0): offset(0, 5)}
    assert after.coordinator.list_groups() == [("g", "", "Empty"), ("other", "", "Empty")]
    generation, _ = after.stable("a")  # the group is joinable as before
    assert generation == 1


def test_delete_groups(group):
    group.stable("a")
    group.commit("", -1, offset(0, 3), group_id="idle")
    assert group.coordinator.delete_groups(["g", "idle", "never"]) == {
        "g": NON_EMPTY_GROUP,
        "idle": NONE,
        "never": GROUP_ID_NOT_FOUND,
    }
    assert group.fetch(group_id="idle") == {}
    assert group.store.load() == []
    assert group.state("idle") == "Dead"
    assert [g.group_id for g in group.coordinator.list_groups()] == ["g"]


def test_delete_offsets(group):
    subscription = ConsumerProtocolSubscription(version=0, topics=["t"], user_data=None).encode()
    generation, (a,) = group.stable("a", protocols=[("range", bytes(subscription))])
    group.commit(a, generation, offset(0, 3), offset(0, 4, topic="gone"))
    group.commit("", -1, offset(0, 5), offset(1, 6), group_id="idle")
    delete = group.coordinator.delete_offsets
    # members subscribe to "t": its offsets stay, the others go
    assert delete("g", [("t", 0), ("gone", 0)]) == (
        NONE,
        {("t", 0): GROUP_SUBSCRIBED_TO_TOPIC, ("gone", 0): NONE},
    )
    assert group.fetch() == {("t", 0): offset(0, 3)}
    # an Empty group loses any; unknown groups and groups of other protocols
    assert delete("idle", [("t", 1), ("t", 9)]) == (NONE, {("t", 1): NONE, ("t", 9): NONE})
    assert group.fetch(group_id="idle") == {("t", 0): offset(0, 5)}
    assert delete("never", [("t", 0)]) == (GROUP_ID_NOT_FOUND, {})
    group.join_new("c", group_id="connect", protocol_type="connect")
    group.advance(DELAY_MS)
    assert delete("connect", [("t", 0)]) == (NON_EMPTY_GROUP, {})
    # metadata that is not a subscription: a consumer group counts as subscribed to all
    group.join_new("x", group_id="opaque")
    group.advance(DELAY_MS)
    assert delete("opaque", [("t", 0)]) == (NONE, {("t", 0): GROUP_SUBSCRIBED_TO_TOPIC})
    # a restart finds what is left
    assert Group(store=group.store).fetch(group_id="idle") == {("t", 0): offset(0, 5)}


# -- describe and list --------------------------------------------------------------------------
def test_describe_and_list_groups(group):
    _, (a, b) = group.stable("a", "b")
    described, unknown = group.coordinator.describe_groups(["g", "unknown"])
    assert (described.state, described.protocol_type, described.protocol) == (
        "Stable",
        "consumer",
        "range",
    )
    assert [(m.member_id, m.client_id, m.client_host) for m in described.members] == [
        (a, "a", "/127.0.0.1"),
        (b, "b", "/127.0.0.1"),
    ]
    assert described.members[1].member_metadata == b"r"
    assert described.members[1].member_assignment == f"assignment of {b}".encode()
    assert (unknown.error_code, unknown.state, unknown.members) == (GROUP_ID_NOT_FOUND, "Dead", [])

    assert group.coordinator.list_groups() == [("g", "consumer", "Stable")]
    assert group.coordinator.list_groups(["Stable", "Empty"]) == [("g", "consumer", "Stable")]
    assert group.coordinator.list_groups(["Empty"]) == []
    assert group.coordinator.list_groups([" stable"], ["Classic"]) == [("g", "consumer", "Stable")]
    assert group.coordinator.list_groups(None, ["consumer"]) == []  # KIP-848's groups: none here

    group.join(a, client_id="a")
    rebalancing = group.coordinator.describe_groups(["g"])[0]
    assert (rebalancing.state, rebalancing.protocol) == ("PreparingRebalance", "")
    assert rebalancing.members[0].member_metadata == b""  # shown only while Stable


# -- responses ----------------------------------------------------------------------------------
def test_a_respond_callback_may_call_back_into_the_coordinator(group):
    """A client that rejoins the moment it learns its id, from inside the callback."""
    rejoined: list[Reply] = []

    def rejoin_with_id(result: JoinGroupResult) -> None:
        rejoined.append(group.join(result.member_id, client_id="eager"))

    group.coordinator.join_group(
        group_id="g",
        member_id="",
        group_instance_id=None,
        client_id="eager",
        client_host="/127.0.0.1",
        session_timeout_ms=SESSION_MS,
        rebalance_timeout_ms=REBALANCE_MS,
        protocol_type="consumer",
        protocols=RANGE,
        require_known_member_id=True,
        respond=rejoin_with_id,
    )
    assert group.state() == "PreparingRebalance"
    group.advance(DELAY_MS)
    assert rejoined[0].result.generation_id == 1
