"""GroupCoordinator: Kafka's classic consumer-group protocol as a sans-I/O state machine.

It follows Apache Kafka 3.x's GroupCoordinator and GroupMetadata (before KIP-848): members join,
one of them (the leader) computes the assignment, every member syncs to receive its share, and
heartbeats keep members alive. Requests come in as method calls; JoinGroup and SyncGroup answer
through a `respond` callback, called exactly once, possibly from a later call or from tick().

Group states (GroupMetadata.state), with their legal transitions:

    Empty --join--> PreparingRebalance --all rejoined or timeout--> CompletingRebalance
    CompletingRebalance --leader's SyncGroup--> Stable
    Stable / CompletingRebalance --join, leave, expiry--> PreparingRebalance
    PreparingRebalance --nobody left--> Empty;  Empty --DeleteGroups--> Dead

Timers, each a deadline checked by tick() (Kafka keeps them in purgatories):
- heartbeat: a member silent for session.timeout.ms is removed; members waiting in a JoinGroup or
  SyncGroup are kept alive, except new members, who get 5 minutes to finish their first join;
- pending member: a member id handed out with MEMBER_ID_REQUIRED lapses after session.timeout.ms;
- join: PreparingRebalance ends at the rebalance timeout (the largest rebalance.timeout.ms of the
  members) even if some members have not rejoined; those are removed. Out of Empty the first
  deadline is group.initial.rebalance.delay.ms instead, extended while new members keep arriving
  (Kafka's InitialDelayedJoin);
- sync: members that have not sent SyncGroup one rebalance timeout after the join phase ended are
  removed and the group rebalances (Kafka's DelayedSync).

Simplifications, each deliberate:
- Only committed offsets are persisted (through OffsetStore). Kafka also persists each group's
  generation, members and assignment; here a restarted coordinator brings back groups that have
  offsets as Empty, generation 0, and their members rejoin after UNKNOWN_MEMBER_ID.
- One coordinator owns every group: the broker leading `__consumer_offsets`' one partition. A
  coordinator that is not active (another broker leads it) answers NOT_COORDINATOR to every group
  request, and so does one whose offset store fails (as Kafka maps a failed append to
  __consumer_offsets); COORDINATOR_LOAD_IN_PROGRESS is never answered (loading happens at once).
- Timers fire only in tick(): a request arriving between a deadline and the next tick still counts.
- No offset expiry (offsets.retention.ms), no removal of idle empty groups, no transactional
  offset commits.
- A static member (group.instance.id) that rejoins a Stable group with unchanged protocols takes
  over the old member's id and assignment without a rebalance, answered as Kafka answers JoinGroup
  below v9: the old leader id and no members, so a rejoining leader does not reassign.
- Where Kafka would drop a waiting callback, it is answered so none hangs: a JoinGroup or SyncGroup
  replaced by a newer one from the same member gets REBALANCE_IN_PROGRESS, and a removed member's
  waiting SyncGroup gets UNKNOWN_MEMBER_ID.
- Protocol votes that tie go to the protocol voted first in join order (Kafka: hash-map order).
  A rejoining member's protocols are checked against the other members' only (Kafka also counts
  its previous ones, which can leave the group without a common protocol).
- Responses are queued while a call changes state and delivered before the call returns, so a
  respond callback always sees a consistent coordinator and may call back into it.
"""

import functools
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from enum import IntEnum, StrEnum
from typing import Any, NamedTuple, Protocol, TypeVar, cast

from kafka.protocol.consumer import ConsumerProtocolSubscription, ConsumerProtocolType

from engine.errors import (
    FENCED_INSTANCE_ID,
    GROUP_ID_NOT_FOUND,
    GROUP_MAX_SIZE_REACHED,
    GROUP_SUBSCRIBED_TO_TOPIC,
    ILLEGAL_GENERATION,
    INCONSISTENT_GROUP_PROTOCOL,
    INVALID_COMMIT_OFFSET_SIZE,
    INVALID_GROUP_ID,
    INVALID_SESSION_TIMEOUT,
    MEMBER_ID_REQUIRED,
    MESSAGE_TOO_LARGE,
    NON_EMPTY_GROUP,
    NONE,
    NOT_COORDINATOR,
    NOT_LEADER_OR_FOLLOWER,
    OFFSET_METADATA_TOO_LARGE,
    REBALANCE_IN_PROGRESS,
    RECORD_LIST_TOO_LARGE,
    UNKNOWN_MEMBER_ID,
    KafkaError,
    KafkaStorageError,
)

NO_MEMBER_ID = ""  # JoinGroupRequest.UNKNOWN_MEMBER_ID: a member that has no id yet
NO_GENERATION = -1
NO_LEADER = ""
NO_PROTOCOL = ""
CLASSIC_GROUP_TYPE = (
    "classic"  # ListGroups' GroupType: every group here speaks the classic protocol
)
# A new member cannot heartbeat before its first JoinGroup response, and a disconnected one would
# linger through long rebalances, so its join expires after this (Kafka's NewMemberJoinTimeoutMs).
NEW_MEMBER_JOIN_TIMEOUT_MS = 5 * 60 * 1000


@dataclass(frozen=True, slots=True)
class GroupConfig:
    group_min_session_timeout_ms: int = 6000  # group.min.session.timeout.ms
    group_max_session_timeout_ms: int = 1800000  # group.max.session.timeout.ms
    group_initial_rebalance_delay_ms: int = 3000  # group.initial.rebalance.delay.ms
    group_max_size: int = 2**31 - 1  # group.max.size
    offsets_retention_ms: int = 7 * 24 * 3600 * 1000  # offsets.retention.minutes (not enforced)
    offset_metadata_max_bytes: int = 4096  # offset.metadata.max.bytes

    def __post_init__(self) -> None:
        if not 0 <= self.group_min_session_timeout_ms <= self.group_max_session_timeout_ms:
            raise ValueError(
                "group.min.session.timeout.ms must be >= 0 and <= group.max.session.timeout.ms"
            )
        if self.group_initial_rebalance_delay_ms < 0:
            raise ValueError("group.initial.rebalance.delay.ms must be >= 0")
        if self.group_max_size < 1:
            raise ValueError("group.max.size must be at least 1")


@dataclass(frozen=True, slots=True)
class CommittedOffset:
    topic: str
    partition: int
    offset: int
    leader_epoch: int  # -1: unknown
    metadata: str | None
    commit_timestamp_ms: int  # -1: stamped with the coordinator's clock at commit


class OffsetStore(Protocol):
    def store(self, group_id: str, offsets: list[CommittedOffset]) -> None:
        """Persist the commits; they are durable when this returns."""

    def load(self) -> Iterable[tuple[str, CommittedOffset]]:
        """Every stored commit, oldest first."""

    def delete_group(self, group_id: str) -> None:
        """Forget every commit of the group, and the group."""

    def delete_offsets(self, group_id: str, partitions: list[tuple[str, int]]) -> None:
        """Forget the group's commits of these partitions."""


class JoinGroupResponseMember(NamedTuple):
    member_id: str
    group_instance_id: str | None
    metadata: bytes


@dataclass(frozen=True, slots=True)
class JoinGroupResult:
    error_code: int
    generation_id: int
    protocol_type: str | None
    protocol_name: str | None
    leader: str
    member_id: str
    members: list[JoinGroupResponseMember] = field(default_factory=list)  # for the leader only
    skip_assignment: bool = False


@dataclass(frozen=True, slots=True)
class SyncGroupResult:
    error_code: int
    protocol_type: str | None
    protocol_name: str | None
    assignment: bytes


class MemberResponse(NamedTuple):
    member_id: str
    group_instance_id: str | None
    error_code: int


@dataclass(frozen=True, slots=True)
class LeaveGroupResult:
    error_code: int
    members: list[MemberResponse]


@dataclass(frozen=True, slots=True)
class DescribedGroupMember:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    member_metadata: bytes
    member_assignment: bytes


@dataclass(frozen=True, slots=True)
class DescribedGroup:
    """Kafka's GroupSummary: metadata and assignments are shown only while the group is Stable."""

    error_code: int
    group_id: str
    state: str
    protocol_type: str
    protocol: str
    members: list[DescribedGroupMember]


class ListedGroup(NamedTuple):
    group_id: str
    protocol_type: str
    group_state: str


JoinCallback = Callable[[JoinGroupResult], None]
SyncCallback = Callable[[SyncGroupResult], None]


class GroupState(StrEnum):
    EMPTY = "Empty"
    PREPARING_REBALANCE = "PreparingRebalance"
    COMPLETING_REBALANCE = "CompletingRebalance"
    STABLE = "Stable"
    DEAD = "Dead"


_VALID_PREVIOUS_STATES: dict[GroupState, frozenset[GroupState]] = {
    GroupState.PREPARING_REBALANCE: frozenset(
        {GroupState.STABLE, GroupState.COMPLETING_REBALANCE, GroupState.EMPTY}
    ),
    GroupState.COMPLETING_REBALANCE: frozenset({GroupState.PREPARING_REBALANCE}),
    GroupState.STABLE: frozenset({GroupState.COMPLETING_REBALANCE}),
    GroupState.EMPTY: frozenset({GroupState.PREPARING_REBALANCE}),
    GroupState.DEAD: frozenset(GroupState),
}


@dataclass(slots=True, eq=False)
class MemberMetadata:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    rebalance_timeout_ms: int
    session_timeout_ms: int
    protocol_type: str
    supported_protocols: list[tuple[str, bytes]]  # (name, metadata), in the member's preference
    assignment: bytes = b""
    awaiting_join: JoinCallback | None = None
    awaiting_sync: SyncCallback | None = None
    is_new: bool = False  # has not yet received its first JoinGroup response
    heartbeat_deadline_ms: int = 0

    @property
    def protocols(self) -> set[str]:
        return {name for name, _ in self.supported_protocols}

    def metadata(self, protocol: str) -> bytes:
        for name, metadata in self.supported_protocols:
            if name == protocol:
                return metadata
        raise ValueError(f"member {self.member_id} does not support protocol {protocol}")

    def matches(self, protocols: list[tuple[str, bytes]]) -> bool:
        return protocols == self.supported_protocols

    def vote(self, candidates: set[str]) -> str:
        """The member's most preferred protocol among those every member supports."""
        return next(name for name, _ in self.supported_protocols if name in candidates)

    def survives_heartbeat_expiry(self) -> bool:
        # A member blocked in JoinGroup or SyncGroup cannot heartbeat; only a new member's first
        # join is bounded (by NEW_MEMBER_JOIN_TIMEOUT_MS).
        return not self.is_new and (
            self.awaiting_join is not None or self.awaiting_sync is not None
        )


@dataclass(slots=True, eq=False)
class GroupMetadata:
    group_id: str
    state: GroupState = GroupState.EMPTY
    generation_id: int = 0
    protocol_type: str | None = None
    protocol_name: str | None = None
    leader_id: str | None = None
    members: dict[str, MemberMetadata] = field(default_factory=dict)  # in join order
    static_members: dict[str, str] = field(default_factory=dict)  # group.instance.id -> member id
    pending_members: dict[str, int] = field(default_factory=dict)  # member id -> expiry deadline
    pending_sync_members: set[str] = field(default_factory=set)
    new_member_added: bool = False  # a member joined during the first initial delay
    join_deadline_ms: int | None = None
    initial_delay_ms: int | None = None  # set while the join deadline is an initial delay
    initial_remaining_ms: int = 0  # how much longer the initial delay may still be extended
    sync_deadline_ms: int | None = None
    # the topics this generation's members subscribe to (the consumer protocol's metadata);
    # None: unknown (not a consumer group, or metadata that does not parse)
    subscribed_topics: frozenset[str] | None = None

    def transition_to(self, target: GroupState) -> None:
        if self.state not in _VALID_PREVIOUS_STATES[target]:
            raise RuntimeError(
                f"group {self.group_id}: illegal transition {self.state} -> {target}"
            )
        self.state = target

    def can_rebalance(self) -> bool:
        return self.state in _VALID_PREVIOUS_STATES[GroupState.PREPARING_REBALANCE]

    def add(self, member: MemberMetadata, callback: JoinCallback) -> None:
        if not self.members:
            self.protocol_type = member.protocol_type
        if member.group_instance_id is not None:
            self.static_members[member.group_instance_id] = member.member_id
        if self.leader_id is None:
            self.leader_id = member.member_id
        self.members[member.member_id] = member
        member.awaiting_join = callback
        self.pending_members.pop(member.member_id, None)

    def remove(self, member_id: str) -> None:
        member = self.members.pop(member_id, None)
        instance_id = None if member is None else member.group_instance_id
        if instance_id is not None and self.static_members.get(instance_id) == member_id:
            del self.static_members[instance_id]
        self.pending_members.pop(member_id, None)
        self.pending_sync_members.discard(member_id)
        if self.leader_id == member_id:
            self.leader_id = next(iter(self.members), None)

    def update_member(
        self,
        member: MemberMetadata,
        protocols: list[tuple[str, bytes]],
        rebalance_timeout_ms: int,
        session_timeout_ms: int,
        callback: JoinCallback,
    ) -> None:
        member.supported_protocols = protocols
        member.rebalance_timeout_ms = rebalance_timeout_ms
        member.session_timeout_ms = session_timeout_ms
        member.awaiting_join = callback

    def replace_static_member(self, instance_id: str, old_id: str, new_id: str) -> MemberMetadata:
        """Give the instance's member a new id; it keeps its assignment and leadership."""
        member = self.members.pop(old_id)
        member.member_id = new_id
        self.members[new_id] = member
        self.static_members[instance_id] = new_id
        if self.leader_id == old_id:
            self.leader_id = new_id
        if old_id in self.pending_sync_members:
            self.pending_sync_members.discard(old_id)
            self.pending_sync_members.add(new_id)
        return member

    def supports_protocols(
        self, protocol_type: str, protocols: set[str], rejoining_member_id: str | None = None
    ) -> bool:
        """Whether a (re)joining member shares a protocol with every other member."""
        if self.state is GroupState.EMPTY:
            return bool(protocol_type) and bool(protocols)
        others = (m.protocols for m in self.members.values() if m.member_id != rejoining_member_id)
        return protocol_type == self.protocol_type and bool(protocols.intersection(*others))

    def candidate_protocols(self) -> set[str]:
        """The protocols every member supports."""
        return set.intersection(*(m.protocols for m in self.members.values()))

    def select_protocol(self) -> str:
        """Kafka's selectProtocol: each member votes for its preferred candidate; most votes win."""
        candidates = self.candidate_protocols()
        votes = Counter(member.vote(candidates) for member in self.members.values())
        return votes.most_common(1)[0][0]

    def rebalance_timeout_ms(self) -> int:
        return max((m.rebalance_timeout_ms for m in self.members.values()), default=0)

    def has_all_members_joined(self) -> bool:
        return not self.pending_members and all(
            m.awaiting_join is not None for m in self.members.values()
        )

    def maybe_elect_new_joined_leader(self) -> bool:
        """Keep the leader if it rejoined, else make the first member that did the leader."""
        if self.leader_id is None:
            return False
        if self.members[self.leader_id].awaiting_join is not None:
            return True
        for member in self.members.values():
            if member.awaiting_join is not None:
                self.leader_id = member.member_id
                return True
        return False

    def init_next_generation(self) -> None:
        self.generation_id += 1
        if self.members:
            self.protocol_name = self.select_protocol()
            self.transition_to(GroupState.COMPLETING_REBALANCE)
        else:
            self.protocol_name = None
            self.transition_to(GroupState.EMPTY)
        self.pending_sync_members = set(self.members)
        self.subscribed_topics = self._compute_subscribed_topics()

    def _compute_subscribed_topics(self) -> frozenset[str] | None:
        """Kafka's computeSubscribedTopics: the union of the members' subscriptions, read from
        their metadata for the chosen protocol, for a group of protocol type "consumer"."""
        if self.protocol_type != ConsumerProtocolType:
            return None
        if not self.members:
            return frozenset()
        if self.protocol_name is None:
            return None
        try:
            return frozenset(
                topic
                for m in self.members.values()
                for topic in ConsumerProtocolSubscription.decode(
                    m.metadata(self.protocol_name)
                ).topics
            )
        except Exception:  # whatever a malformed subscription provokes in the decoder
            return None

    def is_subscribed_to_topic(self, topic: str) -> bool:
        """Kafka 4.0's ClassicGroup: when the subscriptions are unknown, a consumer group is
        taken to be subscribed (to be safe), any other group not."""
        if self.subscribed_topics is None:
            return self.protocol_type == ConsumerProtocolType
        return topic in self.subscribed_topics

    def current_member_metadata(self) -> list[JoinGroupResponseMember]:
        """What the leader's JoinGroup response lists: every member, for the chosen protocol."""
        assert self.protocol_name is not None
        return [
            JoinGroupResponseMember(
                m.member_id, m.group_instance_id, m.metadata(self.protocol_name)
            )
            for m in self.members.values()
        ]

    def summary(self) -> DescribedGroup:
        # metadata and assignments are described only in Stable, with the chosen protocol
        protocol = self.protocol_name if self.state is GroupState.STABLE else None
        members = [
            DescribedGroupMember(
                member_id=m.member_id,
                group_instance_id=m.group_instance_id,
                client_id=m.client_id,
                client_host=m.client_host,
                member_metadata=m.metadata(protocol) if protocol is not None else b"",
                member_assignment=m.assignment if protocol is not None else b"",
            )
            for m in self.members.values()
        ]
        return DescribedGroup(
            error_code=NONE,
            group_id=self.group_id,
            state=self.state.value,
            protocol_type=self.protocol_type or "",
            protocol=protocol if protocol is not None else NO_PROTOCOL,
            members=members,
        )


@dataclass(slots=True)
class _JoinRequest:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    session_timeout_ms: int
    rebalance_timeout_ms: int
    protocol_type: str
    protocols: list[tuple[str, bytes]]
    respond: JoinCallback

    @property
    def protocol_names(self) -> set[str]:
        return {name for name, _ in self.protocols}


class _Timer(IntEnum):
    # Also the firing order of timers due at the same millisecond.
    PENDING_MEMBER = 0
    HEARTBEAT = 1
    JOIN = 2
    SYNC = 3


def _join_error(member_id: str, error_code: int) -> JoinGroupResult:
    return JoinGroupResult(error_code, NO_GENERATION, None, None, NO_LEADER, member_id)


def _sync_error(error_code: int) -> SyncGroupResult:
    return SyncGroupResult(error_code, None, None, b"")


def _storage_error_code(exc: OSError | KafkaError) -> int:
    """The error Kafka's GroupMetadataManager answers when appending to __consumer_offsets fails."""
    if isinstance(exc, OSError | KafkaStorageError) or exc.error_code == NOT_LEADER_OR_FOLLOWER:
        return NOT_COORDINATOR
    code = exc.error_code
    return (
        INVALID_COMMIT_OFFSET_SIZE if code in (MESSAGE_TOO_LARGE, RECORD_LIST_TOO_LARGE) else code
    )


_F = TypeVar("_F", bound=Callable[..., Any])


def _delivers_responses(method: _F) -> _F:
    """Deliver the responses a call queued once its state changes are complete."""

    @functools.wraps(method)
    def wrapper(self: "GroupCoordinator", *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        finally:
            self._deliver_responses()

    return cast(_F, wrapper)


class GroupCoordinator:
    """Classic consumer groups and their committed offsets. Not thread-safe: the event loop's thread
    alone uses it."""

    def __init__(
        self,
        config: GroupConfig,
        offset_store: OffsetStore,
        time_ms: Callable[[], int],
        active: bool = True,
    ) -> None:
        self.config = config
        self.active = active  # False: another broker coordinates; everything is NOT_COORDINATOR
        self._offset_store = offset_store
        self._time_ms = time_ms
        self._groups: dict[str, GroupMetadata] = {}
        self._offsets: dict[str, dict[tuple[str, int], CommittedOffset]] = {}
        self._responses: deque[tuple[Callable[[Any], None], Any]] = deque()
        # TxnOffsetCommit's offsets, by producer id then group, until the transaction's marker
        self._pending_txn_offsets: dict[int, dict[str, list[CommittedOffset]]] = {}
        for group_id, committed in offset_store.load():
            self._offsets.setdefault(group_id, {})[committed.topic, committed.partition] = committed
        # a log store's transactions whose markers were not in the log yet
        self._pending_txn_offsets.update(getattr(offset_store, "pending_txn_offsets", {}))
        for group_id in self._offsets:
            # Groups known only by their offsets come back Empty, as Kafka loads them.
            self._groups[group_id] = GroupMetadata(group_id)

    # -- JoinGroup ------------------------------------------------------------------------------
    @_delivers_responses
    def join_group(
        self,
        *,
        group_id: str,
        member_id: str,
        group_instance_id: str | None,
        client_id: str,
        client_host: str,
        session_timeout_ms: int,
        rebalance_timeout_ms: int,
        protocol_type: str,
        protocols: list[tuple[str, bytes]],
        require_known_member_id: bool,
        respond: JoinCallback,
    ) -> None:
        request = _JoinRequest(
            member_id=member_id,
            group_instance_id=group_instance_id,
            client_id=client_id,
            client_host=client_host,
            session_timeout_ms=session_timeout_ms,
            rebalance_timeout_ms=rebalance_timeout_ms,
            protocol_type=protocol_type,
            protocols=[(name, bytes(metadata)) for name, metadata in protocols],
            respond=respond,
        )
        config = self.config
        if not self.active:
            self._reply(respond, _join_error(member_id, NOT_COORDINATOR))
            return
        if not group_id:
            self._reply(respond, _join_error(member_id, INVALID_GROUP_ID))
            return
        if not (
            config.group_min_session_timeout_ms
            <= session_timeout_ms
            <= config.group_max_session_timeout_ms
        ):
            self._reply(respond, _join_error(member_id, INVALID_SESSION_TIMEOUT))
            return
        is_unknown_member = member_id == NO_MEMBER_ID
        group = self._groups.get(group_id)
        if group is None:
            if not is_unknown_member:
                self._reply(respond, _join_error(member_id, UNKNOWN_MEMBER_ID))
                return
            group = self._groups[group_id] = GroupMetadata(group_id)

        if not self._accept_joining_member(group, member_id):
            # Refusing a member that is already in the group removes it, as Kafka does, so a
            # lowered group.max.size sheds the last members to rejoin.
            if member_id in group.members:
                self._remove_member(group, group.members[member_id])
            self._reply(respond, _join_error(NO_MEMBER_ID, GROUP_MAX_SIZE_REACHED))
        elif is_unknown_member:
            self._join_new_member(group, request, require_known_member_id)
        else:
            self._join_current_member(group, request)
        if group.state is GroupState.PREPARING_REBALANCE:
            self._try_complete_join(group)

    def _accept_joining_member(self, group: GroupMetadata, member_id: str) -> bool:
        limit = self.config.group_max_size
        member = group.members.get(member_id)
        match group.state:
            case GroupState.PREPARING_REBALANCE:
                # Count members that have rejoined: the group may still be above a lowered limit.
                awaiting = sum(m.awaiting_join is not None for m in group.members.values())
                return (member is not None and member.awaiting_join is not None) or awaiting < limit
            case GroupState.COMPLETING_REBALANCE | GroupState.STABLE:
                return member is not None or len(group.members) < limit
            case _:
                return True

    def _join_new_member(
        self, group: GroupMetadata, request: _JoinRequest, require_known_member_id: bool
    ) -> None:
        instance_id = request.group_instance_id
        old_member_id = None if instance_id is None else group.static_members.get(instance_id)
        if not group.supports_protocols(
            request.protocol_type, request.protocol_names, old_member_id
        ):
            self._reply(
                request.respond, _join_error(request.member_id, INCONSISTENT_GROUP_PROTOCOL)
            )
            return
        prefix = request.client_id if instance_id is None else instance_id
        new_member_id = f"{prefix}-{uuid.uuid4()}"
        if instance_id is not None:
            # Static members skip MEMBER_ID_REQUIRED: the instance id already identifies them.
            if old_member_id is not None:
                self._update_static_member_and_rebalance(
                    group, old_member_id, new_member_id, request
                )
            else:
                self._add_member_and_rebalance(group, request, new_member_id)
        elif require_known_member_id:
            # JoinGroup v4+: hand out the id and wait for the client to rejoin with it, so a
            # client that never learns its id does not linger in the group as a ghost member.
            group.pending_members[new_member_id] = self._time_ms() + request.session_timeout_ms
            self._reply(request.respond, _join_error(new_member_id, MEMBER_ID_REQUIRED))
        else:
            self._add_member_and_rebalance(group, request, new_member_id)

    def _join_current_member(self, group: GroupMetadata, request: _JoinRequest) -> None:
        member_id = request.member_id
        instance_id = request.group_instance_id
        if not group.supports_protocols(request.protocol_type, request.protocol_names, member_id):
            self._reply(request.respond, _join_error(member_id, INCONSISTENT_GROUP_PROTOCOL))
            return
        if member_id in group.pending_members and instance_id is None:
            self._add_member_and_rebalance(group, request, member_id)
            return
        static_member_id = None if instance_id is None else group.static_members.get(instance_id)
        if static_member_id is not None and static_member_id != member_id:
            self._reply(request.respond, _join_error(member_id, FENCED_INSTANCE_ID))
            return
        member = group.members.get(member_id)
        if member is None or (instance_id is not None and static_member_id is None):
            # Unknown to the group: the client resets its member id and joins as new.
            self._reply(request.respond, _join_error(member_id, UNKNOWN_MEMBER_ID))
            return
        match group.state:
            case GroupState.PREPARING_REBALANCE:
                self._update_member_and_rebalance(group, member, request)
            case GroupState.COMPLETING_REBALANCE if member.matches(request.protocols):
                # The member lost its JoinGroup response: repeat it for the current generation.
                self._reply(request.respond, self._join_result(group, member_id))
            case GroupState.STABLE if member_id != group.leader_id and member.matches(
                request.protocols
            ):
                # A follower with unchanged metadata just syncs again. A rejoining leader forces a
                # rebalance: that is how it reacts to changes the metadata does not show
                # (new partitions of subscribed topics).
                self._reply(request.respond, self._join_result(group, member_id))
            case GroupState.COMPLETING_REBALANCE | GroupState.STABLE:
                self._update_member_and_rebalance(group, member, request)
            case _:
                self._reply(request.respond, _join_error(member_id, UNKNOWN_MEMBER_ID))

    def _join_result(self, group: GroupMetadata, member_id: str) -> JoinGroupResult:
        is_leader = member_id == group.leader_id
        return JoinGroupResult(
            error_code=NONE,
            generation_id=group.generation_id,
            protocol_type=group.protocol_type,
            protocol_name=group.protocol_name,
            leader=group.leader_id or NO_LEADER,
            member_id=member_id,
            members=group.current_member_metadata() if is_leader else [],
        )

    def _add_member_and_rebalance(
        self, group: GroupMetadata, request: _JoinRequest, member_id: str
    ) -> None:
        member = MemberMetadata(
            member_id=member_id,
            group_instance_id=request.group_instance_id,
            client_id=request.client_id,
            client_host=request.client_host,
            rebalance_timeout_ms=request.rebalance_timeout_ms,
            session_timeout_ms=request.session_timeout_ms,
            protocol_type=request.protocol_type,
            supported_protocols=request.protocols,
            is_new=True,
        )
        if group.state is GroupState.PREPARING_REBALANCE and group.generation_id == 0:
            group.new_member_added = True  # lets the initial delay extend
        group.add(member, request.respond)
        self._schedule_heartbeat(member, NEW_MEMBER_JOIN_TIMEOUT_MS)
        self._maybe_prepare_rebalance(group)

    def _update_member_and_rebalance(
        self, group: GroupMetadata, member: MemberMetadata, request: _JoinRequest
    ) -> None:
        self._respond_join(member, _join_error(member.member_id, REBALANCE_IN_PROGRESS))
        group.update_member(
            member,
            request.protocols,
            request.rebalance_timeout_ms,
            request.session_timeout_ms,
            request.respond,
        )
        self._maybe_prepare_rebalance(group)

    def _update_static_member_and_rebalance(
        self, group: GroupMetadata, old_member_id: str, new_member_id: str, request: _JoinRequest
    ) -> None:
        assert request.group_instance_id is not None
        old_leader = group.leader_id
        old = group.members[old_member_id]
        # Whoever still waits under the old id is a stale instance: fence it.
        self._respond_join(old, _join_error(old_member_id, FENCED_INSTANCE_ID))
        self._respond_sync(old, _sync_error(FENCED_INSTANCE_ID))
        member = group.replace_static_member(
            request.group_instance_id, old_member_id, new_member_id
        )
        self._schedule_heartbeat(member)
        group.update_member(
            member,
            request.protocols,
            request.rebalance_timeout_ms,
            request.session_timeout_ms,
            request.respond,
        )
        match group.state:
            case GroupState.STABLE if group.select_protocol() == group.protocol_name:
                # Same protocol: the member resumes its assignment without a rebalance. Returning
                # the old leader id keeps a rejoining leader from computing an assignment a Stable
                # group would not distribute (Kafka's answer to JoinGroup before v9).
                self._respond_join(
                    member,
                    JoinGroupResult(
                        error_code=NONE,
                        generation_id=group.generation_id,
                        protocol_type=group.protocol_type,
                        protocol_name=group.protocol_name,
                        leader=old_leader or NO_LEADER,
                        member_id=new_member_id,
                    ),
                )
            case GroupState.STABLE | GroupState.COMPLETING_REBALANCE:
                # The leader may already be assigning to the old member id.
                self._prepare_rebalance(group)
            case _:
                pass  # PreparingRebalance: the member waits for the join phase like the others

    # -- rebalance ------------------------------------------------------------------------------
    def _maybe_prepare_rebalance(self, group: GroupMetadata) -> None:
        if group.can_rebalance():
            self._prepare_rebalance(group)

    def _prepare_rebalance(self, group: GroupMetadata) -> None:
        if group.state is GroupState.COMPLETING_REBALANCE:
            # Members waiting for an assignment of a generation that will not happen rejoin.
            self._reset_and_propagate_assignment_error(group, REBALANCE_IN_PROGRESS)
        group.sync_deadline_ms = None
        now = self._time_ms()
        if group.state is GroupState.EMPTY:
            # The first members of a group usually start together: wait for the others rather
            # than rebalance once per arrival (Kafka's InitialDelayedJoin).
            delay = self.config.group_initial_rebalance_delay_ms
            group.initial_delay_ms = delay
            group.initial_remaining_ms = max(group.rebalance_timeout_ms() - delay, 0)
            group.join_deadline_ms = now + delay
        else:
            group.initial_delay_ms = None
            group.join_deadline_ms = now + group.rebalance_timeout_ms()
        group.transition_to(GroupState.PREPARING_REBALANCE)
        self._try_complete_join(group)

    def _try_complete_join(self, group: GroupMetadata) -> None:
        # An initial delay runs to its end even when everyone has joined.
        if (
            group.state is GroupState.PREPARING_REBALANCE
            and group.initial_delay_ms is None
            and group.has_all_members_joined()
        ):
            self._complete_join(group)

    def _on_join_deadline(self, group: GroupMetadata) -> None:
        if (
            group.initial_delay_ms is not None
            and group.new_member_added
            and group.initial_remaining_ms != 0
        ):
            group.new_member_added = False
            delay = min(self.config.group_initial_rebalance_delay_ms, group.initial_remaining_ms)
            group.initial_remaining_ms = max(group.initial_remaining_ms - group.initial_delay_ms, 0)
            group.initial_delay_ms = delay
            group.join_deadline_ms = self._time_ms() + delay
        else:
            self._complete_join(group)

    def _complete_join(self, group: GroupMetadata) -> None:
        group.join_deadline_ms = None
        group.initial_delay_ms = None
        group.new_member_added = False
        # Dynamic members that did not rejoin in time are gone; static ones keep their place.
        for member in list(group.members.values()):
            if member.awaiting_join is None and member.group_instance_id is None:
                self._remove_member(group, member)
        if group.members and not group.maybe_elect_new_joined_leader():
            # Only static members are left and none rejoined: give them another rebalance timeout
            # (their sessions expire meanwhile if they are really gone).
            group.join_deadline_ms = self._time_ms() + group.rebalance_timeout_ms()
            return
        group.init_next_generation()
        if group.state is GroupState.EMPTY:
            return
        for member in list(group.members.values()):
            self._respond_join(member, self._join_result(group, member.member_id))
            self._schedule_heartbeat(member)
            member.is_new = False
        group.sync_deadline_ms = self._time_ms() + group.rebalance_timeout_ms()

    def _on_sync_deadline(self, group: GroupMetadata) -> None:
        group.sync_deadline_ms = None
        if group.state in (GroupState.COMPLETING_REBALANCE, GroupState.STABLE) and (
            group.pending_sync_members
        ):
            for member_id in list(group.pending_sync_members):
                self._remove_member(group, group.members[member_id])
            self._prepare_rebalance(group)

    # -- SyncGroup ------------------------------------------------------------------------------
    @_delivers_responses
    def sync_group(
        self,
        *,
        group_id: str,
        generation_id: int,
        member_id: str,
        group_instance_id: str | None,
        protocol_type: str | None,
        protocol_name: str | None,
        assignments: list[tuple[str, bytes]],
        respond: SyncCallback,
    ) -> None:
        if not self.active:
            self._reply(respond, _sync_error(NOT_COORDINATOR))
            return
        if not group_id:
            self._reply(respond, _sync_error(INVALID_GROUP_ID))
            return
        group = self._groups.get(group_id)
        if group is None:
            self._reply(respond, _sync_error(UNKNOWN_MEMBER_ID))
            return
        error = self._validate_current_member(group, member_id, group_instance_id)
        if error is None:
            if generation_id != group.generation_id:
                error = ILLEGAL_GENERATION
            elif (protocol_type is not None and protocol_type != group.protocol_type) or (
                protocol_name is not None and protocol_name != group.protocol_name
            ):
                error = INCONSISTENT_GROUP_PROTOCOL
        if error is not None:
            self._reply(respond, _sync_error(error))
            return
        member = group.members[member_id]
        match group.state:
            case GroupState.PREPARING_REBALANCE:
                self._reply(respond, _sync_error(REBALANCE_IN_PROGRESS))
            case GroupState.COMPLETING_REBALANCE:
                self._respond_sync(member, _sync_error(REBALANCE_IN_PROGRESS))  # a duplicate
                member.awaiting_sync = respond
                self._remove_pending_sync_member(group, member_id)
                if member_id == group.leader_id:
                    # Members the leader left out get an empty assignment.
                    assignment = dict.fromkeys(group.members, b"")
                    assignment.update(
                        (mid, bytes(data)) for mid, data in assignments if mid in group.members
                    )
                    for m in group.members.values():
                        m.assignment = assignment[m.member_id]
                    self._propagate_assignment(group, NONE)
                    group.transition_to(GroupState.STABLE)
            case GroupState.STABLE:
                self._remove_pending_sync_member(group, member_id)
                self._reply(
                    respond,
                    SyncGroupResult(
                        NONE, group.protocol_type, group.protocol_name, member.assignment
                    ),
                )
                self._schedule_heartbeat(member)
            case _:
                self._reply(respond, _sync_error(UNKNOWN_MEMBER_ID))

    def _remove_pending_sync_member(self, group: GroupMetadata, member_id: str) -> None:
        group.pending_sync_members.discard(member_id)
        if not group.pending_sync_members:
            group.sync_deadline_ms = None

    def _reset_and_propagate_assignment_error(self, group: GroupMetadata, error: int) -> None:
        for member in group.members.values():
            member.assignment = b""
        self._propagate_assignment(group, error)

    def _propagate_assignment(self, group: GroupMetadata, error: int) -> None:
        for member in group.members.values():
            if error == NONE:
                result = SyncGroupResult(
                    NONE, group.protocol_type, group.protocol_name, member.assignment
                )
            else:
                result = _sync_error(error)
            if self._respond_sync(member, result):
                # Its session may have lapsed while it waited; it starts a fresh one.
                self._schedule_heartbeat(member)

    # -- Heartbeat ------------------------------------------------------------------------------
    def heartbeat(
        self, *, group_id: str, generation_id: int, member_id: str, group_instance_id: str | None
    ) -> int:
        if not self.active:
            return NOT_COORDINATOR
        if not group_id:
            return INVALID_GROUP_ID
        group = self._groups.get(group_id)
        if group is None:
            return UNKNOWN_MEMBER_ID
        error = self._validate_current_member(group, member_id, group_instance_id)
        if error is not None:
            return error
        if generation_id != group.generation_id:
            return ILLEGAL_GENERATION
        self._schedule_heartbeat(group.members[member_id])
        if group.state is GroupState.PREPARING_REBALANCE:
            return REBALANCE_IN_PROGRESS  # the client's cue to rejoin
        # CompletingRebalance counts as well: clients heartbeat as soon as JoinGroup answers.
        return NONE

    # -- LeaveGroup -----------------------------------------------------------------------------
    @_delivers_responses
    def leave_group(
        self, *, group_id: str, members: list[tuple[str, str | None]]
    ) -> LeaveGroupResult:
        if not self.active:
            return LeaveGroupResult(NOT_COORDINATOR, [])
        if not group_id:
            return LeaveGroupResult(INVALID_GROUP_ID, [])
        group = self._groups.get(group_id)
        if group is None:
            return LeaveGroupResult(
                NONE, [MemberResponse(mid, iid, UNKNOWN_MEMBER_ID) for mid, iid in members]
            )
        responses = []
        for member_id, instance_id in members:
            if member_id == NO_MEMBER_ID:
                # Administrative removal by group.instance.id (KIP-345).
                current = group.static_members.get(instance_id) if instance_id else None
                if current is None:
                    error = UNKNOWN_MEMBER_ID
                else:
                    self._remove_member_and_update_group(group, group.members[current])
                    error = NONE
            elif member_id in group.pending_members:
                self._remove_pending_member_and_update_group(group, member_id)
                error = NONE
            else:
                invalid = self._validate_current_member(group, member_id, instance_id)
                if invalid is None:
                    self._remove_member_and_update_group(group, group.members[member_id])
                error = NONE if invalid is None else invalid
            responses.append(MemberResponse(member_id, instance_id, error))
        return LeaveGroupResult(NONE, responses)

    # -- membership -----------------------------------------------------------------------------
    @staticmethod
    def _validate_current_member(
        group: GroupMetadata, member_id: str, group_instance_id: str | None
    ) -> int | None:
        if group_instance_id is not None:
            current = group.static_members.get(group_instance_id)
            if current is None:
                return UNKNOWN_MEMBER_ID
            if current != member_id:
                return FENCED_INSTANCE_ID
        if member_id not in group.members:
            return UNKNOWN_MEMBER_ID
        return None

    def _remove_member(self, group: GroupMetadata, member: MemberMetadata) -> None:
        # UNKNOWN_MEMBER_ID tells a client that is still alive to rejoin as a new member.
        self._respond_join(member, _join_error(NO_MEMBER_ID, UNKNOWN_MEMBER_ID))
        self._respond_sync(member, _sync_error(UNKNOWN_MEMBER_ID))
        group.remove(member.member_id)

    def _remove_member_and_update_group(self, group: GroupMetadata, member: MemberMetadata) -> None:
        self._remove_member(group, member)
        if group.state in (GroupState.STABLE, GroupState.COMPLETING_REBALANCE):
            self._maybe_prepare_rebalance(group)
        elif group.state is GroupState.PREPARING_REBALANCE:
            self._try_complete_join(group)  # it may have been the last one awaited

    def _remove_pending_member_and_update_group(self, group: GroupMetadata, member_id: str) -> None:
        group.remove(member_id)
        if group.state is GroupState.PREPARING_REBALANCE:
            self._try_complete_join(group)

    def _schedule_heartbeat(self, member: MemberMetadata, timeout_ms: int | None = None) -> None:
        timeout = member.session_timeout_ms if timeout_ms is None else timeout_ms
        member.heartbeat_deadline_ms = self._time_ms() + timeout

    # -- offsets --------------------------------------------------------------------------------
    def commit_offsets(
        self,
        *,
        group_id: str,
        generation_id: int,
        member_id: str,
        group_instance_id: str | None,
        offsets: list[CommittedOffset],
    ) -> dict[tuple[str, int], int]:
        def refuse(error: int) -> dict[tuple[str, int], int]:
            return {(o.topic, o.partition): error for o in offsets}

        if not self.active:
            return refuse(NOT_COORDINATOR)
        group = self._groups.get(group_id)
        if group is None:
            if generation_id >= 0:
                return refuse(ILLEGAL_GENERATION)  # a member of a generation that is gone
            # A consumer without group management (assign()) commits to a group of its own.
            group = self._groups[group_id] = GroupMetadata(group_id)
        if generation_id >= 0 or member_id != NO_MEMBER_ID or group_instance_id is not None:
            error = self._validate_current_member(group, member_id, group_instance_id)
            if error is None and generation_id != group.generation_id:
                error = ILLEGAL_GENERATION
        elif group.state is not GroupState.EMPTY:
            error = UNKNOWN_MEMBER_ID  # only members commit to a group that has members
        else:
            error = None
        if error is None and group.state is GroupState.COMPLETING_REBALANCE:
            # The member knows the new generation but not yet its assignment.
            error = REBALANCE_IN_PROGRESS
        if error is not None:
            return refuse(error)
        if member_id in group.members:
            # Commits count as liveness; during PreparingRebalance the heartbeat response, not
            # the commit, tells the member to rejoin.
            self._schedule_heartbeat(group.members[member_id])
        return self._store_offsets(group_id, offsets)

    # -- transactional offsets (KIP-98) ----------------------------------------------------------
    def txn_commit_offsets(
        self, group_id: str, producer_id: int, offsets: list[CommittedOffset]
    ) -> dict[tuple[str, int], int]:
        """TxnOffsetCommit: the offsets wait, unseen by OffsetFetch, for the transaction's
        marker (complete_txn). The caller has appended them to the offsets log as the
        producer's transactional records, so a new coordinator finds them pending again."""
        if not self.active:
            return {(o.topic, o.partition): NOT_COORDINATOR for o in offsets}
        self._pending_txn_offsets.setdefault(producer_id, {}).setdefault(group_id, []).extend(
            offsets
        )
        return {(o.topic, o.partition): NONE for o in offsets}

    def pending_txn_partitions(self, group_id: str) -> set[tuple[str, int]]:
        """The partitions of group_id with transactional offsets awaiting their marker."""
        return {
            (o.topic, o.partition)
            for groups in self._pending_txn_offsets.values()
            for o in groups.get(group_id, ())
        }

    def complete_txn(self, producer_id: int, commit: bool) -> None:
        """A transaction marker reached the offsets partition: its offsets count, or go."""
        pending = self._pending_txn_offsets.pop(producer_id, {})
        if commit and self.active:
            for group_id, offsets in pending.items():
                self._groups.setdefault(group_id, GroupMetadata(group_id))
                self._store_offsets(group_id, offsets)

    def _store_offsets(
        self, group_id: str, offsets: list[CommittedOffset]
    ) -> dict[tuple[str, int], int]:
        now = self._time_ms()
        errors: dict[tuple[str, int], int] = {}
        accepted: list[CommittedOffset] = []
        for committed in offsets:
            key = committed.topic, committed.partition
            metadata = committed.metadata
            if metadata is not None and len(metadata) > self.config.offset_metadata_max_bytes:
                errors[key] = OFFSET_METADATA_TOO_LARGE
                continue
            if committed.commit_timestamp_ms < 0:
                committed = replace(committed, commit_timestamp_ms=now)
            accepted.append(committed)
            errors[key] = NONE
        if accepted:
            try:
                self._offset_store.store(group_id, accepted)
            except (OSError, KafkaError) as exc:
                error = _storage_error_code(exc)
                return {key: error if code == NONE else code for key, code in errors.items()}
            latest = self._offsets.setdefault(group_id, {})
            for committed in accepted:
                latest[committed.topic, committed.partition] = committed
        return errors

    def fetch_offsets(
        self, *, group_id: str, partitions: list[tuple[str, int]] | None
    ) -> dict[tuple[str, int], CommittedOffset | None]:
        latest = self._offsets.get(group_id, {})
        if partitions is None:
            return dict(latest)
        return {
            (topic, partition): latest.get((topic, partition)) for topic, partition in partitions
        }

    # -- admin ----------------------------------------------------------------------------------
    def describe_groups(self, group_ids: list[str]) -> list[DescribedGroup]:
        described = []
        for group_id in group_ids:
            group = self._groups.get(group_id)
            if not self.active or group is None:
                # Dead, and GROUP_ID_NOT_FOUND (DescribeGroups answers NONE before v6)
                error = NOT_COORDINATOR if not self.active else GROUP_ID_NOT_FOUND
                described.append(
                    DescribedGroup(error, group_id, GroupState.DEAD.value, "", NO_PROTOCOL, [])
                )
            else:
                described.append(group.summary())
        return described

    def list_groups(
        self, states_filter: list[str] | None = None, types_filter: list[str] | None = None
    ) -> list[ListedGroup]:
        """(group_id, protocol_type, state) of every group, or of those in the given states and
        of the given types (CLASSIC_GROUP_TYPE, the only one here), both case-insensitive."""
        states = {state.strip().lower() for state in states_filter or ()}
        if types_filter and CLASSIC_GROUP_TYPE not in {t.strip().lower() for t in types_filter}:
            return []
        return [
            ListedGroup(group.group_id, group.protocol_type or "", group.state.value)
            for group in self._groups.values()
            if not states or group.state.value.lower() in states
        ]

    def delete_groups(self, group_ids: list[str]) -> dict[str, int]:
        """DeleteGroups: only Empty groups go, with their committed offsets (tombstones in the
        offset store, so a restart does not bring them back)."""
        errors: dict[str, int] = {}
        for group_id in group_ids:
            group = self._groups.get(group_id)
            if not self.active:
                errors[group_id] = NOT_COORDINATOR
            elif group is None:
                errors[group_id] = GROUP_ID_NOT_FOUND
            elif group.state is not GroupState.EMPTY:
                errors[group_id] = NON_EMPTY_GROUP
            else:
                try:
                    self._offset_store.delete_group(group_id)
                except (OSError, KafkaError) as exc:
                    errors[group_id] = _storage_error_code(exc)
                    continue
                group.transition_to(GroupState.DEAD)
                del self._groups[group_id]
                self._offsets.pop(group_id, None)
                errors[group_id] = NONE
        return errors

    def delete_offsets(
        self, group_id: str, partitions: list[tuple[str, int]]
    ) -> tuple[int, dict[tuple[str, int], int]]:
        """OffsetDelete, as Kafka 4.0 answers it for a classic group: (the group's error, each
        partition's). An Empty group loses the offsets asked for; a group with members only
        if it uses the consumer protocol (else NON_EMPTY_GROUP), and only those of topics its
        members do not subscribe to (GROUP_SUBSCRIBED_TO_TOPIC for the others)."""
        if not self.active:
            return NOT_COORDINATOR, {}
        group = self._groups.get(group_id)
        if group is None:
            return GROUP_ID_NOT_FOUND, {}
        empty = group.state is GroupState.EMPTY
        if not empty and group.protocol_type != ConsumerProtocolType:
            return NON_EMPTY_GROUP, {}
        errors = {
            (topic, partition): GROUP_SUBSCRIBED_TO_TOPIC
            if not empty and group.is_subscribed_to_topic(topic)
            else NONE
            for topic, partition in partitions
        }
        deleted = [key for key, error in errors.items() if error == NONE]
        if deleted:
            try:
                self._offset_store.delete_offsets(group_id, deleted)
            except (OSError, KafkaError) as exc:
                return _storage_error_code(exc), {}
            latest = self._offsets.get(group_id, {})
            for key in deleted:
                latest.pop(key, None)
        return NONE, errors

    # -- timers ---------------------------------------------------------------------------------
    @_delivers_responses
    def tick(self) -> None:
        """Fire the due timers: expire sessions and pending ids, end join and sync phases."""
        now = self._time_ms()
        for group in list(self._groups.values()):
            # Fire in deadline order; each firing rechecks its deadline, since an earlier one may
            # have moved or cleared it. Deadlines set while firing wait for the next tick.
            for deadline, timer, key in sorted(self._due_timers(group, now)):
                self._fire(group, timer, key, deadline)

    def next_deadline_ms(self) -> int | None:
        """The earliest timer deadline, so an event loop can sleep until then."""
        deadlines = [d for group in self._groups.values() for d, _, _ in self._timers(group)]
        return min(deadlines, default=None)

    @staticmethod
    def _timers(group: GroupMetadata) -> Iterable[tuple[int, _Timer, str]]:
        for member_id, deadline in group.pending_members.items():
            yield deadline, _Timer.PENDING_MEMBER, member_id
        for member in group.members.values():
            if not member.survives_heartbeat_expiry():
                yield member.heartbeat_deadline_ms, _Timer.HEARTBEAT, member.member_id
        if group.join_deadline_ms is not None and group.state is GroupState.PREPARING_REBALANCE:
            yield group.join_deadline_ms, _Timer.JOIN, ""
        if group.sync_deadline_ms is not None:
            yield group.sync_deadline_ms, _Timer.SYNC, ""

    def _due_timers(self, group: GroupMetadata, now: int) -> list[tuple[int, _Timer, str]]:
        return [timer for timer in self._timers(group) if timer[0] <= now]

    def _fire(self, group: GroupMetadata, timer: _Timer, key: str, deadline: int) -> None:
        match timer:
            case _Timer.PENDING_MEMBER:
                if group.pending_members.get(key) == deadline:
                    self._remove_pending_member_and_update_group(group, key)
            case _Timer.HEARTBEAT:
                member = group.members.get(key)
                if (
                    member is not None
                    and member.heartbeat_deadline_ms == deadline
                    and not member.survives_heartbeat_expiry()
                ):
                    self._remove_member_and_update_group(group, member)
            case _Timer.JOIN:
                if (
                    group.state is GroupState.PREPARING_REBALANCE
                    and group.join_deadline_ms == deadline
                ):
                    self._on_join_deadline(group)
            case _Timer.SYNC:
                if group.sync_deadline_ms == deadline:
                    self._on_sync_deadline(group)

    # -- responses ------------------------------------------------------------------------------
    def _reply(self, respond: Callable[[Any], None], result: Any) -> None:
        self._responses.append((respond, result))

    def _respond_join(self, member: MemberMetadata, result: JoinGroupResult) -> bool:
        callback, member.awaiting_join = member.awaiting_join, None
        if callback is None:
            return False
        self._reply(callback, result)
        return True

    def _respond_sync(self, member: MemberMetadata, result: SyncGroupResult) -> bool:
        callback, member.awaiting_sync = member.awaiting_sync, None
        if callback is None:
            return False
        self._reply(callback, result)
        return True

    def _deliver_responses(self) -> None:
        # FIFO, and safe when a callback calls back in: the nested call drains the same queue.
        while self._responses:
            respond, result = self._responses.popleft()
            respond(result)
