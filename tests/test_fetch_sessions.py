"""Fetch sessions (KIP-227) against real brokers: kafka-python's consumer fetches incrementally
(its FetchSessionHandler; the broker's /stats count it), librdkafka, which has no fetch
sessions, keeps fetching sessionless (session 0, epoch -1), nothing is lost when sessions evict
each other, and the session errors Kafka returns, on the wire through the engine's own
protocol client; a cluster's followers replicating in sessions; the cache's eviction rule
against a clock the test moves, and a follower's side of a session, sans I/O."""

import json
import socket
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import replace
from types import SimpleNamespace

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka import TopicPartition as ConfluentTopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaConsumer, TopicPartition
from kafka.protocol.consumer.fetch import FetchRequest, FetchResponse
from kafka.protocol.metadata.metadata import MetadataRequest, MetadataResponse

from engine.broker.fetch_session import (
    FETCH_SESSION_ID_NOT_FOUND,
    FETCH_SESSION_TOPIC_ID_ERROR,
    INVALID_FETCH_SESSION_EPOCH,
    CachedPartition,
    FetchSessionCache,
    FetchSessionStats,
)
from engine.broker.fetch_session_handler import FetchSessionHandler
from engine.broker.replica_manager import FetchPartition
from engine.common import TopicPartition as EngineTopicPartition
from engine.errors import NONE, UNKNOWN_TOPIC_ID
from engine.protocol.client import FetchPosition, decode_response, encode_request, read_frame
from scenarios.clients.local_broker import LocalCluster
from tests.cluster_support import CLUSTER_SETTINGS, wait_until
from tests.conftest import broker_process

PARTITIONS = 200


def stats(broker) -> dict:
    with urllib.request.urlopen(f"http://{broker.bootstrap}/stats", timeout=10) as response:
        return json.loads(response.read())["fetch_sessions"]


def create_topic(bootstrap: str, name: str, partitions: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, partitions, 1)])[name].result(timeout=30)


def produce(bootstrap: str, topic: str, values: range, partitions: int) -> None:
    """Values as decimal strings, round-robin over the partitions."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for value in values:
        producer.produce(topic, str(value).encode(), partition=value % partitions)
    assert producer.flush(30) == 0


@pytest.fixture(scope="module")
def broker(tmp_path_factory) -> Iterator:
    running = broker_process(str(tmp_path_factory.mktemp("fetch-sessions") / "data")).start()
    create_topic(running.bootstrap, "wide", PARTITIONS)
    yield running
    running.stop()


def kafka_python_consumer(bootstrap: str, topic: str, partitions: int) -> KafkaConsumer:
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=50,
    )
    consumer.assign([TopicPartition(topic, p) for p in range(partitions)])
    return consumer


def drain(consumer: KafkaConsumer, expected: int, seen: list[int]) -> None:
    """Poll until `expected` records in all have been seen (a deadline only against hangs)."""
    for _ in range(600):
        if len(seen) >= expected:
            return
        for records in consumer.poll(timeout_ms=100).values():
            seen.extend(int(r.value) for r in records)
    raise AssertionError(f"{len(seen)} of {expected} records consumed")


def test_kafka_python_fetches_200_partitions_incrementally(broker):
    total = 2_000
    produce(broker.bootstrap, "wide", range(total), PARTITIONS)
    before = stats(broker)
    consumer = kafka_python_consumer(broker.bootstrap, "wide", PARTITIONS)
    seen: list[int] = []
    try:
        drain(consumer, total, seen)
        # tailing: new records on a few partitions come back in responses without the others
        produce(broker.bootstrap, "wide", range(total, total + 10), PARTITIONS)
        drain(consumer, total + 10, seen)
    finally:
        consumer.close()
    after = stats(broker)

    assert sorted(seen) == list(range(total + 10))
    assert after["sessions_created"] > before["sessions_created"]
    assert after["incremental_fetches"] > before["incremental_fetches"]
    assert after["partitions_omitted"] > before["partitions_omitted"]  # unchanged ones left out
    assert not after["session_errors"]


def test_librdkafka_fetches_without_a_session(broker):
    """librdkafka has no fetch sessions: every fetch is full, session 0 epoch -1."""
    create_topic(broker.bootstrap, "narrow", 4)
    produce(broker.bootstrap, "narrow", range(400), 4)
    before = stats(broker)
    consumer = Consumer(
        {
            "bootstrap.servers": broker.bootstrap,
            "group.id": "librdkafka",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.assign([ConfluentTopicPartition("narrow", p) for p in range(4)])
    seen = []
    try:
        while len(seen) < 400:
            message = consumer.poll(10)
            assert message is not None and message.error() is None
            seen.append(int(message.value()))
    finally:
        consumer.close()
    after = stats(broker)

    assert sorted(seen) == list(range(400))
    assert after["full_fetches"] > before["full_fetches"]
    assert after["sessions_created"] == before["sessions_created"]
    assert after["incremental_fetches"] == before["incremental_fetches"]


def test_sessions_evicting_each_other_lose_nothing(tmp_path):
    """One slot, and no protection for a session however new: two consumers take the slot from
    each other on every full fetch, and each still gets every record exactly as produced."""
    with broker_process(
        str(tmp_path / "data"),
        **{
            "max.incremental.fetch.session.cache.slots": "1",
            "min.incremental.fetch.session.eviction.ms": "0",
        },
    ) as running:
        for topic in ("left", "right"):
            create_topic(running.bootstrap, topic, 20)
        consumers = {t: kafka_python_consumer(running.bootstrap, t, 20) for t in ("left", "right")}
        seen: dict[str, list[int]] = {"left": [], "right": []}
        try:
            for chunk in range(10):  # records arrive while both consume
                values = range(chunk * 100, chunk * 100 + 100)
                for topic, consumer in consumers.items():
                    produce(running.bootstrap, topic, values, 20)
                    for _ in range(3):
                        for records in consumer.poll(timeout_ms=50).values():
                            seen[topic].extend(int(r.value) for r in records)
            for topic, consumer in consumers.items():
                drain(consumer, 1_000, seen[topic])
        finally:
            for consumer in consumers.values():
                consumer.close()
        after = stats(running)

    for topic in ("left", "right"):
        assert (len(seen[topic]), sum(seen[topic])) == (1_000, sum(range(1_000)))
    assert after["sessions_evicted"] > 0
    assert after["session_errors"].get("FETCH_SESSION_ID_NOT_FOUND", 0) > 0
    assert after["sessions"] == 1


# -- on the wire, through the engine's protocol client ------------------------------------------


class Wire:
    """One connection, Fetch v12 (or v13) sent by hand."""

    def __init__(self, broker) -> None:
        self.sock = socket.create_connection(("127.0.0.1", broker.port), timeout=10)
        self.correlation_id = 0

    def call(self, request, response_class, version: int):
        self.correlation_id += 1
        self.sock.sendall(encode_request(request, self.correlation_id, "wire"))
        _, frame = read_frame(self.sock, None, 1 << 26)
        return decode_response(bytes(frame), response_class, version, self.correlation_id)

    def fetch(
        self,
        session_id: int,
        epoch: int,
        offsets: dict[tuple[str | uuid.UUID, int], int],
        forget: dict[str | uuid.UUID, list[int]] | None = None,
        version: int = 12,
    ):
        cls = FetchRequest[version]
        by_topic: dict = {}
        for (topic, partition), offset in offsets.items():
            by_topic.setdefault(topic, []).append(
                cls.FetchTopic.FetchPartition(
                    partition=partition, fetch_offset=offset, partition_max_bytes=1 << 20
                )
            )
        key = "topic_id" if version >= 13 else "topic"
        request = cls(
            replica_id=-1,
            max_wait_ms=0,
            min_bytes=1,
            max_bytes=1 << 24,
            isolation_level=0,
            session_id=session_id,
            session_epoch=epoch,
            topics=[cls.FetchTopic(partitions=p, **{key: t}) for t, p in by_topic.items()],
            forgotten_topics_data=[
                cls.ForgottenTopic(partitions=p, **{key: t}) for t, p in (forget or {}).items()
            ],
            rack_id="",
        )
        return self.call(request, FetchResponse, version)

    def topic_id(self, name: str) -> uuid.UUID:
        request = MetadataRequest[12](
            topics=[MetadataRequest[12].MetadataRequestTopic(name=name)],
            allow_auto_topic_creation=False,
        )
        return self.call(request, MetadataResponse, 12).topics[0].topic_id

    def close(self) -> None:
        self.sock.close()


def answered(response) -> dict[tuple, tuple[int, int, int]]:
    """(topic or id, partition) -> (error, high watermark, records bytes)."""
    return {
        (t.topic_id if t.topic_id is not None and not t.topic else t.topic, p.partition_index): (
            p.error_code,
            p.high_watermark,
            len(p.records or b""),
        )
        for t in response.responses
        for p in t.partitions
    }


@pytest.fixture
def wire(broker) -> Iterator[Wire]:
    connection = Wire(broker)
    yield connection
    connection.close()


def test_incremental_responses_carry_only_what_changed(broker, wire):
    create_topic(broker.bootstrap, "proto", 4)
    produce(broker.bootstrap, "proto", range(8), 4)  # two records per partition
    offsets = {("proto", p): 0 for p in range(4)}

    full = wire.fetch(0, 0, offsets)  # epoch 0: a new session
    assert full.error_code == NONE and full.session_id != 0
    assert {k: v[:2] for k, v in answered(full).items()} == {k: (NONE, 2) for k in offsets}
    session = full.session_id

    # the records taken (fetch offsets moved on), nothing new: nothing answered, the session
    # goes on (the broker reads from the offsets it holds: unchanged ones are not sent)
    quiet = wire.fetch(session, 1, {("proto", p): 2 for p in range(4)})
    assert (quiet.error_code, quiet.session_id, answered(quiet)) == (NONE, session, {})

    # a new record on partition 3 only; partition 1 moved to its end (a changed fetch offset)
    produce(broker.bootstrap, "proto", range(3, 4), 4)
    changed = wire.fetch(session, 2, {("proto", 1): 2})
    got = answered(changed)
    assert set(got) == {("proto", 3)} and got["proto", 3][1] == 3

    # the same epoch again (a duplicate): INVALID_FETCH_SESSION_EPOCH, no partitions
    stale = wire.fetch(session, 2, {})
    assert (stale.error_code, stale.session_id, stale.responses) == (
        INVALID_FETCH_SESSION_EPOCH,
        0,
        [],
    )
    assert wire.fetch(session, 4, {}).error_code == INVALID_FETCH_SESSION_EPOCH  # ahead too

    # a forgotten partition is no longer read: new data there is not answered
    forgot = wire.fetch(session, 3, {}, forget={"proto": [3]})
    assert forgot.error_code == NONE and answered(forgot) == {}
    produce(broker.bootstrap, "proto", range(7, 8), 4)
    assert answered(wire.fetch(session, 4, {})) == {}

    # epoch -1 closes it; after that its id is unknown
    closing = wire.fetch(session, -1, {("proto", 0): 0})
    assert closing.session_id == 0 and set(answered(closing)) == {("proto", 0)}
    gone = wire.fetch(session, 5, {})
    assert (gone.error_code, gone.session_id) == (FETCH_SESSION_ID_NOT_FOUND, 0)


def test_unknown_session_id_is_refused(wire):
    response = wire.fetch(123_456_789, 1, {("wide", 0): 0})
    assert (response.error_code, response.session_id, response.responses) == (
        FETCH_SESSION_ID_NOT_FOUND,
        0,
        [],
    )


def test_topic_ids_v13_sessions(broker, wire):
    """v13+ names topics by id: a session of ids answers by id, an unknown id is answered
    UNKNOWN_TOPIC_ID, and a v12 request in a v13 session is FETCH_SESSION_TOPIC_ID_ERROR."""
    create_topic(broker.bootstrap, "by-id", 2)
    produce(broker.bootstrap, "by-id", range(4), 2)
    topic_id = wire.topic_id("by-id")
    missing = uuid.uuid4()
    full = wire.fetch(0, 0, {(topic_id, 0): 0, (topic_id, 1): 0, (missing, 0): 0}, version=13)
    got = answered(full)
    assert full.session_id != 0
    assert {k: v[:2] for k, v in got.items()} == {
        (topic_id, 0): (NONE, 2),
        (topic_id, 1): (NONE, 2),
        (missing, 0): (UNKNOWN_TOPIC_ID, -1),
    }
    assert all(t.topic_id in (topic_id, missing) for t in full.responses)

    incremental = wire.fetch(full.session_id, 1, {(topic_id, 0): 2, (topic_id, 1): 2}, version=13)
    assert incremental.error_code == NONE
    assert set(answered(incremental)) == {(missing, 0)}  # an error is answered every time

    by_name = wire.fetch(full.session_id, 2, {}, version=12)
    assert (by_name.error_code, by_name.session_id) == (FETCH_SESSION_TOPIC_ID_ERROR, 0)


# -- the eviction rule, sans I/O ----------------------------------------------------------------


def open_session(cache: FetchSessionCache, now: int, size: int, privileged: bool = False) -> int:
    def partitions() -> dict:
        return {
            ("t", p): CachedPartition(FetchPartition(EngineTopicPartition("t", p), 0, 1))
            for p in range(size)
        }

    return cache.maybe_create_session(now, privileged, size, False, partitions)


def test_a_full_cache_evicts_as_kafka_does():
    stats = FetchSessionStats()
    cache = FetchSessionCache(max_entries=2, eviction_ms=1_000, stats=stats)
    small = open_session(cache, 0, size=5)
    big = open_session(cache, 0, size=50)

    # young sessions are safe from a consumer, and from a follower only a follower's are
    assert open_session(cache, 500, size=100) == 0
    follower = open_session(cache, 500, size=1, privileged=True)
    assert follower != 0 and small not in cache.sessions  # the smallest consumer's went
    assert open_session(cache, 600, size=1, privileged=True) != 0  # then the next one's
    assert big not in cache.sessions

    # a consumer's session is worth less than any follower's, however big
    second = next(s for s in cache.sessions if s != follower)
    cache.touch(cache.sessions[follower], 1_600)  # older than eviction_ms now: evictable
    cache.touch(cache.sessions[second], 1_600)  # exactly eviction_ms old: not yet
    assert open_session(cache, 1_700, size=1_000) == 0
    bigger = open_session(cache, 1_700, size=2, privileged=True)
    assert bigger != 0 and follower not in cache.sessions and second in cache.sessions
    assert (stats.sessions_evicted, stats.not_created) == (3, 2)


def test_an_old_consumer_session_gives_way_to_a_bigger_one():
    stats = FetchSessionStats()
    cache = FetchSessionCache(max_entries=1, eviction_ms=1_000, stats=stats)
    old = open_session(cache, 0, size=10)
    cache.touch(cache.sessions[old], 1_500)  # used recently, but created long ago
    assert open_session(cache, 1_600, size=9) == 0
    assert open_session(cache, 1_600, size=10) == 0  # as big is not enough (ids rank last)
    assert open_session(cache, 1_600, size=11) != 0 and old not in cache.sessions


def test_a_stale_session_goes_first():
    stats = FetchSessionStats()
    cache = FetchSessionCache(max_entries=1, eviction_ms=1_000, stats=stats)
    follower = open_session(cache, 0, size=500, privileged=True)
    assert open_session(cache, 1_000, size=1) == 0  # used 1,000 ms ago: not stale yet
    newcomer = open_session(cache, 1_001, size=1)
    assert newcomer != 0 and follower not in cache.sessions
    assert (stats.sessions_evicted, stats.not_created) == (1, 1)


# -- a cluster: followers fetch in sessions too ---------------------------------------------------


def test_a_cluster_replicates_and_serves_consumers_in_fetch_sessions(tmp_path):
    """Three brokers and a controller: every follower fetches from each leader in a fetch
    session (privileged, as Kafka's replica fetchers), acks=all records all reach every replica,
    and a kafka-python consumer reads them all back through its own sessions with the leaders."""
    with LocalCluster(str(tmp_path), 3, CLUSTER_SETTINGS) as cluster:
        admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
        admin.create_topics([NewTopic("replicated", 12, 3)])["replicated"].result(timeout=30)
        producer = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all"})
        for value in range(1_200):
            producer.produce("replicated", str(value).encode(), partition=value % 12)
        assert producer.flush(30) == 0

        consumer = kafka_python_consumer(cluster.bootstrap, "replicated", 12)
        seen: list[int] = []
        try:
            drain(consumer, 1_200, seen)
        finally:
            consumer.close()
        assert (len(seen), sum(seen)) == (1_200, sum(range(1_200)))

        def replicated() -> bool:
            ends = {}
            for broker in cluster.brokers.values():
                with urllib.request.urlopen(f"http://{broker.bootstrap}/stats") as f:
                    partitions = json.loads(f.read())["partitions"]
                for name, p in partitions.items():
                    if name.startswith("replicated-"):
                        ends.setdefault(name, set()).add((p["log_end_offset"], p["high_watermark"]))
            return len(ends) == 12 and all(e == {(100, 100)} for e in ends.values())

        wait_until(replicated, what="every replica holding its 100 records")
        for broker in cluster.brokers.values():
            sessions = stats(broker)
            # each broker leads some partitions: the two others follow it in one session each
            assert sessions["incremental_fetches"] > 0
            assert sessions["sessions"] >= 2
            assert not sessions["session_errors"]


def test_a_followers_session_sends_only_what_moved():
    handler = FetchSessionHandler()
    a, b = FetchPosition("t", 0, 10, 100), FetchPosition("t", 1, 5, 100)
    first = handler.build([a, b])
    assert (first.session_id, first.epoch, first.to_send, first.to_forget) == (0, 0, [a, b], [])
    assert handler.handle_response(SimpleNamespace(error_code=NONE, session_id=77), first)

    moved = replace(a, offset=12)
    second = handler.build([moved])  # partition 1 is not fetched now (backing off): forgotten
    assert (second.session_id, second.epoch, second.to_send) == (77, 1, [moved])
    assert second.to_forget == [EngineTopicPartition("t", 1)]
    assert handler.handle_response(SimpleNamespace(error_code=NONE, session_id=77), second)
    third = handler.build([moved])
    assert (third.epoch, third.to_send, third.to_forget) == (2, [], [])

    # evicted: the error response is not processed, and the next fetch is full and new
    evicted = SimpleNamespace(error_code=FETCH_SESSION_ID_NOT_FOUND, session_id=0)
    assert not handler.handle_response(evicted, third)
    fourth = handler.build([moved, b])
    assert (fourth.session_id, fourth.epoch, fourth.to_send) == (0, 0, [moved, b])
