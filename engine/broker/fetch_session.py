"""Fetch sessions (KIP-227): Kafka's FetchManager, FetchSessionCache, FetchSession and the fetch
contexts, so a client of many partitions sends and receives only what changed.

A Fetch carries (session_id, session_epoch) from v7:
- (0, -1): sessionless, every partition sent and answered (librdkafka, followers, v4-v6).
- (any, 0): a full fetch that asks for a new session (closing session_id if it is not 0): every
  partition sent and answered, and the broker caches each partition's fetch position and the
  high watermark, last stable offset and log start offset it answered with, and returns the new
  session's id, epoch 1 expected next; or session id 0 when the cache has no room for it.
- (id, -1): a full fetch that closes session id and opens none.
- (id, n > 0): incremental. Only partitions added or changed (fetch offset, max bytes, epoch)
  are sent, and forgotten_topics_data removes some; every partition in the session is read, and
  only those with records, a new high watermark, last stable offset or log start offset, a
  preferred read replica or an error are answered. Unknown id: FETCH_SESSION_ID_NOT_FOUND; an
  epoch other than the session's: INVALID_FETCH_SESSION_EPOCH; a session of topic names (v12-)
  fetched by topic ids (v13+) or the reverse: FETCH_SESSION_TOPIC_ID_ERROR. An error response
  carries no partitions and session id 0, and the client starts over with a full fetch.

The cache holds max.incremental.fetch.session.cache.slots sessions (one shard: Kafka 4.0 splits
the slots over 8 shards to spread its lock, which one event loop does not need). When it is full,
a new session takes the place of (FetchSessionCache.tryEvict):
1. the least recently used session, if it was last used more than
   min.incremental.fetch.session.eviction.ms ago (a stale one), else
2. the least valuable evictable session, if the new one is worth at least as much: value orders
   (privileged, partitions, id), privileged being a follower's. A session is evictable by anyone
   once it is older than min.incremental.fetch.session.eviction.ms, and by a follower's new
   session at any age unless it is a follower's too; as Kafka, this is decided when the session
   is created or used (touched), not when eviction is tried.

Not thread-safe: the event loop's thread alone uses it.
"""

import random
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from kafka.errors import (
    FetchSessionIdNotFoundError,
    FetchSessionTopicIdError,
    InvalidFetchSessionEpochError,
)

from engine.broker.replica_manager import FetchPartition, FetchPartitionData
from engine.common import TopicPartition
from engine.errors import NONE, UNKNOWN_TOPIC_ID
from engine.metadata.image import ClusterImage
from engine.protocol.fetch_response import FetchPartitionResponse, FetchTopicResponse

FETCH_SESSION_ID_NOT_FOUND = FetchSessionIdNotFoundError.errno
INVALID_FETCH_SESSION_EPOCH = InvalidFetchSessionEpochError.errno
FETCH_SESSION_TOPIC_ID_ERROR = FetchSessionTopicIdError.errno

INVALID_SESSION_ID = 0  # a client with no session
INITIAL_EPOCH = 0  # a full fetch that opens a session
FINAL_EPOCH = -1  # a full fetch that opens none (closing the one named)
MAX_EPOCH = 2**31 - 1
FIRST_TOPIC_ID_VERSION = 13  # Fetch v13+ names topics by id (KIP-516)
ZERO_UUID = uuid.UUID(int=0)  # no topic id (kafka-python decodes it as None)

_ERROR_NAMES = {
    FETCH_SESSION_ID_NOT_FOUND: "FETCH_SESSION_ID_NOT_FOUND",
    INVALID_FETCH_SESSION_EPOCH: "INVALID_FETCH_SESSION_EPOCH",
    FETCH_SESSION_TOPIC_ID_ERROR: "FETCH_SESSION_TOPIC_ID_ERROR",
}


# (error code, session id, the response's topics)
FetchAnswer = tuple[int, int, list[FetchTopicResponse]]


def next_epoch(epoch: int) -> int:
    """The epoch after `epoch` (Kafka's FetchMetadata.nextEpoch): it wraps to 1, never 0."""
    if epoch < 0:
        return FINAL_EPOCH
    return 1 if epoch == MAX_EPOCH else epoch + 1


# A partition's place in a session: (topic name, partition), or (topic id, partition) in a
# session of topic ids, where a partition of an unknown id keeps its place until it resolves.
SessionKey = tuple[str | uuid.UUID, int]


@dataclass(slots=True)
class CachedPartition:
    """A partition of a session (Kafka's CachedPartition): what the client last asked for, and
    what the broker last answered, so unchanged partitions are left out of the next response.
    `request.tp.topic` is "" while a topic id is unknown (topic names are never empty)."""

    request: FetchPartition
    topic_id: uuid.UUID | None = None
    high_watermark: int = -1
    last_stable_offset: int = -1
    local_log_start_offset: int = -1

    def maybe_update_response_data(self, data: FetchPartitionData) -> bool:
        """Whether `data` must go in an incremental response; remembers what it answers.
        Kafka compares the high watermark and log start offset; the last stable offset is
        compared here too, so a read_committed consumer learns of every move of it."""
        must_respond = False
        for s in data.records:
            if s.length:
                must_respond = True
                break
        if self.high_watermark != data.high_watermark:
            self.high_watermark = data.high_watermark
            must_respond = True
        if self.last_stable_offset != data.last_stable_offset:
            self.last_stable_offset = data.last_stable_offset
            must_respond = True
        if self.local_log_start_offset != data.log_start_offset:
            self.local_log_start_offset = data.log_start_offset
            must_respond = True
        if data.preferred_read_replica >= 0:
            must_respond = True
        if data.error_code != NONE:
            self.high_watermark = -1  # answered again next time, until it is no longer an error
            must_respond = True
        return must_respond


class FetchSession:
    """One client's (or follower's) session: its partitions in fetch order, epoch, and ages."""

    __slots__ = (
        "cached_size",
        "creation_ms",
        "epoch",
        "evictable_by_all",
        "evictable_by_privileged",
        "id",
        "last_used_ms",
        "partitions",
        "privileged",
        "uses_topic_ids",
    )

    def __init__(
        self,
        session_id: int,
        privileged: bool,
        partitions: dict[SessionKey, CachedPartition],
        uses_topic_ids: bool,
        now_ms: int,
    ) -> None:
        self.id = session_id
        self.privileged = privileged  # a follower's
        self.partitions = partitions  # insertion order is fetch order
        self.uses_topic_ids = uses_topic_ids
        self.creation_ms = now_ms
        self.last_used_ms = now_ms
        self.epoch = next_epoch(INITIAL_EPOCH)
        self.cached_size = 0  # the partitions counted when it was last touched
        self.evictable_by_all = False
        self.evictable_by_privileged = False

    def evictable_key(self) -> tuple[bool, int, int]:
        """Kafka's EvictableKey: a session of less value is evicted first."""
        return (self.privileged, self.cached_size, self.id)


@dataclass
class FetchSessionStats:
    """What GET /stats shows under "fetch_sessions"."""

    full_fetches: int = 0  # requests sending every partition (sessionless, or opening a session)
    incremental_fetches: int = 0  # requests in a session, accepted
    sessions_created: int = 0
    sessions_evicted: int = 0
    sessions_closed: int = 0  # by the client (epoch 0 or -1 naming it, or all partitions removed)
    not_created: int = 0  # full fetches asking for a session the full cache had no room for
    partitions_omitted: int = 0  # partitions left out of incremental responses
    session_errors: dict[str, int] = field(default_factory=dict)  # by error name


class FetchSessionCache:
    """The sessions, up to max_entries, and Kafka's eviction rule (module docstring)."""

    def __init__(self, max_entries: int, eviction_ms: int, stats: FetchSessionStats) -> None:
        self.max_entries = max_entries
        self.eviction_ms = eviction_ms
        self.sessions: dict[int, FetchSession] = {}
        self.num_partitions = 0
        self._stats = stats
        self._random = random.Random()

    def get(self, session_id: int) -> FetchSession | None:
        return self.sessions.get(session_id)

    def maybe_create_session(
        self,
        now_ms: int,
        privileged: bool,
        size: int,
        uses_topic_ids: bool,
        partitions: Callable[[], dict[SessionKey, CachedPartition]],
    ) -> int:
        """A new session's id, or INVALID_SESSION_ID when there is no room for it."""
        if len(self.sessions) >= self.max_entries and not self._try_evict(
            privileged, (privileged, size, 0), now_ms
        ):
            self._stats.not_created += 1
            return INVALID_SESSION_ID
        session_id = self._new_session_id()
        session = FetchSession(session_id, privileged, partitions(), uses_topic_ids, now_ms)
        self.sessions[session_id] = session
        self.touch(session, now_ms)
        self._stats.sessions_created += 1
        return session_id

    def _new_session_id(self) -> int:
        while True:
            session_id = self._random.randint(1, MAX_EPOCH)
            if session_id not in self.sessions:
                return session_id

    def _try_evict(self, privileged: bool, key: tuple[bool, int, int], now_ms: int) -> bool:
        """Kafka's tryEvict: a stale session, else the least valuable evictable one if it is
        worth no more than `key`. O(sessions), only when the cache is full."""
        if not self.sessions:
            return False
        stalest = min(self.sessions.values(), key=lambda s: (s.last_used_ms, s.id))
        if now_ms - stalest.last_used_ms > self.eviction_ms:
            victim = stalest
        else:
            candidates = [
                s
                for s in self.sessions.values()
                if (s.evictable_by_privileged if privileged else s.evictable_by_all)
            ]
            if not candidates:
                return False
            victim = min(candidates, key=FetchSession.evictable_key)
            if key < victim.evictable_key():
                return False
        self.remove(victim.id)
        self._stats.sessions_evicted += 1
        return True

    def remove(self, session_id: int) -> FetchSession | None:
        session = self.sessions.pop(session_id, None)
        if session is not None:
            self.num_partitions -= session.cached_size
        return session

    def touch(self, session: FetchSession, now_ms: int) -> None:
        """A session used now: its age and size, and whether it is evictable, brought up to
        date (Kafka's touch)."""
        session.last_used_ms = now_ms
        size = len(session.partitions)
        self.num_partitions += size - session.cached_size
        session.cached_size = size
        old_enough = now_ms - session.creation_ms > self.eviction_ms
        session.evictable_by_privileged = not session.privileged or old_enough
        session.evictable_by_all = old_enough


def _key(request: FetchPartition, topic_id: uuid.UUID | None) -> SessionKey:
    return (request.tp.topic if topic_id is None else topic_id, request.tp.partition)


def _fetch_partition(p: Any, topic: str, version: int) -> FetchPartition:
    """A requested partition, as the replica manager reads it."""
    return FetchPartition(
        TopicPartition(topic, p.partition),
        p.fetch_offset,
        p.partition_max_bytes,
        p.current_leader_epoch if version >= 9 else -1,
        p.log_start_offset,
    )


class FetchContext:
    """What one Fetch reads, and how its response is shaped (Kafka's FetchContext)."""

    error = NONE  # a session error: nothing is read, the response is the error alone
    partitions: list[FetchPartition]  # what to read, in order
    topic_ids: list[uuid.UUID | None] | None = None  # v13+: each partition's topic id
    unknown: Sequence[tuple[uuid.UUID, int]] = ()  # v13+: partitions of ids no topic has

    def response(self, results: list[FetchPartitionData]) -> FetchAnswer:
        """(error code, session id, FetchTopicResponses) answering `results`, which are
        `partitions` read in order."""
        raise NotImplementedError


class SessionErrorContext(FetchContext):
    def __init__(self, error: int) -> None:
        self.error = error
        self.partitions = []

    def response(self, results: list[FetchPartitionData]) -> FetchAnswer:
        return self.error, INVALID_SESSION_ID, []


class SessionlessFetchContext(FetchContext):
    """Every partition asked for, answered; no session."""

    def __init__(
        self,
        partitions: list[FetchPartition],
        topic_ids: list[uuid.UUID | None] | None = None,
        unknown: Sequence[tuple[uuid.UUID, int]] = (),
    ) -> None:
        self.partitions = partitions
        self.topic_ids = topic_ids
        self.unknown = unknown

    def response(self, results: list[FetchPartitionData]) -> FetchAnswer:
        return NONE, INVALID_SESSION_ID, response_topics(results, self.topic_ids, self.unknown)


class FullFetchContext(SessionlessFetchContext):
    """Every partition asked for, answered, and a session opened with them if there is room."""

    def __init__(
        self,
        manager: "FetchManager",
        privileged: bool,
        partitions: list[FetchPartition],
        topic_ids: list[uuid.UUID | None] | None,
        unknown: Sequence[tuple[uuid.UUID, int]],
    ) -> None:
        super().__init__(partitions, topic_ids, unknown)
        self._manager = manager
        self._privileged = privileged

    def response(self, results: list[FetchPartitionData]) -> FetchAnswer:
        topic_ids = self.topic_ids

        def cached() -> dict[SessionKey, CachedPartition]:
            partitions: dict[SessionKey, CachedPartition] = {}
            for i, (request, data) in enumerate(zip(self.partitions, results, strict=True)):
                topic_id = None if topic_ids is None else topic_ids[i]
                partitions[_key(request, topic_id)] = CachedPartition(
                    request,
                    topic_id,
                    data.high_watermark,
                    data.last_stable_offset,
                    data.log_start_offset,
                )
            for topic_id, index in self.unknown:
                partitions[(topic_id, index)] = CachedPartition(
                    FetchPartition(TopicPartition("", index), -1, 0), topic_id
                )
            return partitions

        manager = self._manager
        session_id = manager.cache.maybe_create_session(
            manager.time_ms(),
            self._privileged,
            len(results) + len(self.unknown),
            topic_ids is not None,
            cached,
        )
        return NONE, session_id, response_topics(results, topic_ids, self.unknown)


class IncrementalFetchContext(FetchContext):
    """Every partition of the session read; only what changed answered. Partitions answered
    with records move to the end of the session's order, so under max_bytes every partition
    gets its turn (as Kafka's)."""

    def __init__(
        self,
        session: FetchSession,
        names_by_id: Mapping[uuid.UUID, str],
        stats: FetchSessionStats,
    ) -> None:
        self.session = session
        self._stats = stats
        self._expected_epoch = session.epoch
        self.partitions = []
        self._cached: list[CachedPartition] = []
        unknown: list[tuple[uuid.UUID, int]] = []
        topic_ids: list[uuid.UUID | None] | None = [] if session.uses_topic_ids else None
        for cached in session.partitions.values():
            request = cached.request
            if not request.tp.topic:  # a topic id unknown so far
                assert cached.topic_id is not None
                name = names_by_id.get(cached.topic_id)
                if name is None:
                    unknown.append((cached.topic_id, request.tp.partition))
                    continue
                request = cached.request = replace(
                    request, tp=TopicPartition(name, request.tp.partition)
                )
            self.partitions.append(request)
            self._cached.append(cached)
            if topic_ids is not None:
                topic_ids.append(cached.topic_id)
        self.topic_ids = topic_ids
        self.unknown = unknown

    def response(self, results: list[FetchPartitionData]) -> FetchAnswer:
        session = self.session
        if session.epoch != self._expected_epoch:  # another request of the session came since
            return INVALID_FETCH_SESSION_EPOCH, session.id, []
        answered = []
        answered_ids: list[uuid.UUID | None] | None = None if self.topic_ids is None else []
        moved = []
        for cached, data in zip(self._cached, results, strict=True):
            if cached.maybe_update_response_data(data):
                answered.append(data)
                if answered_ids is not None:
                    answered_ids.append(cached.topic_id)
                if data.records:
                    moved.append(cached)
        partitions = session.partitions
        for cached in moved:
            key = _key(cached.request, cached.topic_id)
            if key in partitions:
                partitions[key] = partitions.pop(key)
        self._stats.partitions_omitted += len(results) - len(answered)
        return NONE, session.id, response_topics(answered, answered_ids, self.unknown)


class FetchManager:
    """Turns each Fetch into its context (Kafka's FetchManager.newContext), over the cache."""

    def __init__(self, max_slots: int, eviction_ms: int, time_ms: Callable[[], int]) -> None:
        self.stats = FetchSessionStats()
        self.cache = FetchSessionCache(max_slots, eviction_ms, self.stats)
        self.time_ms = time_ms
        self._names_image: ClusterImage | None = None
        self._names_by_id: dict[uuid.UUID, str] = {}

    def _names(self, image: ClusterImage) -> Mapping[uuid.UUID, str]:
        """Topic names by id in `image`, built again only when the image changes."""
        if image is not self._names_image:
            self._names_by_id = {t.topic_id: name for name, t in image.topics.items()}
            self._names_image = image
        return self._names_by_id

    def new_context(
        self, version: int, request: Any, is_follower: bool, image: ClusterImage
    ) -> FetchContext:
        """The context of a decoded FetchRequest of `version`; v13+ topic ids are resolved in
        the cluster image."""
        session_id, epoch = request.session_id, request.session_epoch  # v4-v6: 0, -1
        stats = self.stats
        if epoch in (FINAL_EPOCH, INITIAL_EPOCH):
            stats.full_fetches += 1
            if session_id != INVALID_SESSION_ID and self.cache.remove(session_id) is not None:
                stats.sessions_closed += 1
            topic_ids: list[uuid.UUID | None] | None = None
            unknown: list[tuple[uuid.UUID, int]] = []
            if version < FIRST_TOPIC_ID_VERSION:
                partitions = [
                    _fetch_partition(p, t.topic, version)
                    for t in request.topics
                    for p in t.partitions
                ]
            else:
                names = self._names(image)
                partitions, topic_ids = [], []
                for t in request.topics:
                    topic_id = t.topic_id or ZERO_UUID
                    name = names.get(topic_id)
                    for p in t.partitions:
                        if name is None:
                            unknown.append((topic_id, p.partition))
                        else:
                            partitions.append(_fetch_partition(p, name, version))
                            topic_ids.append(topic_id)
            if epoch == FINAL_EPOCH:
                return SessionlessFetchContext(partitions, topic_ids, unknown)
            return FullFetchContext(self, is_follower, partitions, topic_ids, unknown)
        session = self.cache.get(session_id)
        uses_topic_ids = version >= FIRST_TOPIC_ID_VERSION
        if session is None:
            error = FETCH_SESSION_ID_NOT_FOUND
        elif session.epoch != epoch:
            error = INVALID_FETCH_SESSION_EPOCH
        elif session.uses_topic_ids != uses_topic_ids:
            error = FETCH_SESSION_TOPIC_ID_ERROR
        else:
            error = NONE
        if error != NONE:
            name = _ERROR_NAMES[error]
            stats.session_errors[name] = stats.session_errors.get(name, 0) + 1
            return SessionErrorContext(error)
        assert session is not None
        names = self._names(image) if uses_topic_ids else {}
        _update(session, request, version, names)
        if not session.partitions:  # every partition forgotten: the session ends
            self.cache.remove(session.id)
            stats.sessions_closed += 1
            return SessionlessFetchContext([], [] if uses_topic_ids else None)
        self.cache.touch(session, self.time_ms())
        session.epoch = next_epoch(session.epoch)
        stats.incremental_fetches += 1
        return IncrementalFetchContext(session, names, stats)

    def status(self) -> dict[str, Any]:
        """For GET /stats."""
        return {
            **asdict(self.stats),
            "sessions": len(self.cache.sessions),
            "partitions_cached": self.cache.num_partitions,
            "max_incremental_fetch_session_cache_slots": self.cache.max_entries,
        }


def _update(
    session: FetchSession, request: Any, version: int, names: Mapping[uuid.UUID, str]
) -> None:
    """Kafka's FetchSession.update: partitions sent are added (at the end) or take the new
    fetch position (keeping their place and what was last answered); forgotten ones leave."""
    partitions = session.partitions
    by_id = session.uses_topic_ids
    for t in request.topics:
        topic_id = (t.topic_id or ZERO_UUID) if by_id else None
        name = names.get(topic_id, "") if topic_id is not None else t.topic
        topic_key = t.topic if topic_id is None else topic_id
        for p in t.partitions:
            fetch = _fetch_partition(p, name, version)
            cached = partitions.get((topic_key, p.partition))
            if cached is None:
                partitions[(topic_key, p.partition)] = CachedPartition(fetch, topic_id)
            else:
                cached.request = fetch
    for t in request.forgotten_topics_data:
        topic_key = (t.topic_id or ZERO_UUID) if by_id else t.topic
        for index in t.partitions:
            partitions.pop((topic_key, index), None)


def response_topics(
    results: list[FetchPartitionData],
    topic_ids: list[uuid.UUID | None] | None = None,
    unknown: Sequence[tuple[uuid.UUID, int]] = (),
) -> list[FetchTopicResponse]:
    """The response's topics: `results` grouped by topic in order of first appearance (by
    topic id when `topic_ids`, v13+, gives each one's), then partitions of unknown topic ids."""
    topics: dict[str | uuid.UUID | None, FetchTopicResponse] = {}
    for i, r in enumerate(results):
        key = r.tp.topic if topic_ids is None else topic_ids[i]
        topic = topics.get(key)
        if topic is None:
            topic = topics[key] = FetchTopicResponse(
                r.tp.topic, [], None if topic_ids is None else topic_ids[i]
            )
        topic.partitions.append(
            FetchPartitionResponse(
                r.tp.partition,
                r.error_code,
                r.high_watermark,
                r.last_stable_offset,
                r.log_start_offset,
                r.records,
                None,
                r.preferred_read_replica,
            )
        )
    for topic_id, index in unknown:
        topic = topics.get(topic_id)
        if topic is None:
            topic = topics[topic_id] = FetchTopicResponse("", [], topic_id)
        topic.partitions.append(FetchPartitionResponse(index, UNKNOWN_TOPIC_ID, -1, -1, -1, []))
    return list(topics.values())
