"""Client quotas end to end: AlterClientQuotas and DescribeClientQuotas with Kafka's rules and
errors, on a single `kbench broker` and on a cluster (through the controller), kept across
restarts; produce and fetch throttled as Kafka's ClientQuotaManager computes it; a throttled
connection muted; confluent-kafka's producer told of its throttle.

Neither kafka-python 3.0's KafkaAdminClient nor confluent-kafka 2.16's AdminClient has the quota
APIs (no alter/describe_client_quotas), so the admin requests are kafka-python's own
AlterClientQuotasRequest/DescribeClientQuotasRequest classes on a plain connection.

The throttle checks are exact and do not depend on elapsed time: a client's first bytes on a
fresh sensor are measured over quota.window.num - 1 whole windows (10 s), so a request of B
bytes under a quota of Q bytes/s earns round((B / 10 - Q) / Q * 10000) ms.
"""

import json
import math
import struct
import urllib.request
import uuid

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from kafka.protocol.admin.client_quotas import (
    AlterClientQuotasRequest,
    AlterClientQuotasResponse,
    DescribeClientQuotasRequest,
    DescribeClientQuotasResponse,
)
from kafka.protocol.consumer.fetch import FetchResponse
from kafka.protocol.metadata.api_versions import ApiVersionsRequest, ApiVersionsResponse
from kafka.protocol.producer.produce import ProduceRequest, ProduceResponse

from engine.broker.client_quota_manager import (
    ANONYMOUS,
    ClientQuotaManager,
    quota_limit,
    quota_metric_tags,
)
from engine.errors import INVALID_REQUEST, NONE, UNSUPPORTED_VERSION
from engine.metadata.records import ClientQuotaRecord, decode_record, encode_record
from engine.protocol.client import FetchPosition, encode_request, fetch_request
from engine.records import SimpleRecord, build_batch
from scenarios.clients.cluster import KafkaConnection
from scenarios.clients.local_broker import LocalCluster
from tests.cluster_support import CLUSTER_SETTINGS, wait_until
from tests.conftest import broker_process

WINDOW_MS = 10_000  # (quota.window.num 11 - 1) x quota.window.size.seconds 1


def kafka_throttle_ms(size: int, quota: int) -> int:
    """QuotaUtils.throttleTime for `size` bytes as a sensor's first record."""
    rate = size / (WINDOW_MS / 1000.0)
    return math.floor((rate - quota) / quota * WINDOW_MS + 0.5)  # Java's Math.round


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    running = broker_process(str(tmp_path_factory.mktemp("quotas") / "data")).start()
    yield running
    running.stop()


Entity = tuple[tuple[str, str | None], ...]


def alter(
    address: str,
    entries: list[tuple[Entity, dict[str, float | None]]],
    validate_only: bool = False,
) -> list[tuple[int, str | None]]:
    """AlterClientQuotas: per entry, {key: value, or None to remove}; (error, message) each."""
    cls = AlterClientQuotasRequest[1]
    request = cls(
        entries=[
            cls.EntryData(
                entity=[cls.EntryData.EntityData(entity_type=t, entity_name=n) for t, n in entity],
                ops=[
                    cls.EntryData.OpData(
                        key=key, value=0.0 if value is None else value, remove=value is None
                    )
                    for key, value in ops.items()
                ],
            )
            for entity, ops in entries
        ],
        validate_only=validate_only,
    )
    with KafkaConnection(address) as connection:
        response = connection.request(request, AlterClientQuotasResponse)
    return [(e.error_code, e.error_message) for e in response.entries]


def describe(
    address: str, components: list[tuple[str, int, str | None]], strict: bool = False
) -> dict[Entity, dict[str, float]] | tuple[int, str]:
    """DescribeClientQuotas: {entity: {key: value}}, or (error, message) when refused."""
    cls = DescribeClientQuotasRequest[1]
    request = cls(
        components=[
            cls.ComponentData(entity_type=t, match_type=m, match=n) for t, m, n in components
        ],
        strict=strict,
    )
    with KafkaConnection(address) as connection:
        response = connection.request(request, DescribeClientQuotasResponse)
    if response.error_code != NONE:
        return response.error_code, response.error_message
    return {
        tuple(sorted((e.entity_type, e.entity_name) for e in entry.entity)): {
            v.key: v.value for v in entry.values
        }
        for entry in response.entries
    }


def create_topic(bootstrap: str, name: str, replication: int = 1) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, 1, replication)])[name].result(timeout=30)


def produce_request(topic: str, value_size: int) -> ProduceRequest:
    cls = ProduceRequest[9]
    records = bytes(build_batch([SimpleRecord(b"v" * value_size)]))
    partition = cls.TopicProduceData.PartitionProduceData(index=0, records=records)
    return cls(
        transactional_id=None,
        acks=1,
        timeout_ms=10_000,
        topic_data=[cls.TopicProduceData(name=topic, partition_data=[partition])],
    )


def request_size(request: object, client_id: str) -> int:
    """Kafka's Request.sizeInBytes: the frame, header included, size prefix not."""
    return len(encode_request(request, 1, client_id)) - 4


def stats(address: str) -> dict:
    with urllib.request.urlopen(f"http://{address}/stats", timeout=10) as response:
        return json.loads(response.read())


# -- AlterClientQuotas and DescribeClientQuotas ---------------------------------------------------
USER_ALICE: Entity = (("user", "alice"),)
DEFAULT_USER: Entity = (("user", None),)
ALICE_APP: Entity = (("client-id", "app"), ("user", "alice"))
LOOPBACK: Entity = (("ip", "127.0.0.1"),)


def test_quotas_are_altered_described_and_refused_as_kafka_does(broker):
    address = broker.bootstrap
    assert alter(
        address,
        [
            (USER_ALICE, {"producer_byte_rate": 1024.0, "request_percentage": 50.5}),
            (DEFAULT_USER, {"consumer_byte_rate": 2048.0}),
            (ALICE_APP, {"controller_mutation_rate": 10.0}),
            (LOOPBACK, {"connection_creation_rate": 5.0}),
            # refused one by one, the others still applied
            ((("user", "bob"),), {"bogus": 1.0}),
            ((("user", "carol"),), {"producer_byte_rate": 10.5}),
            ((("client-id", "c"),), {"consumer_byte_rate": 0.0}),
            ((("ip", "10.0.0.1"), ("user", "x")), {"connection_creation_rate": 1.0}),
            ((*LOOPBACK, ("user", "x")), {"producer_byte_rate": 1.0}),
            ((("client-id", ""),), {"producer_byte_rate": 1.0}),
            ((("group", "g"),), {"producer_byte_rate": 1.0}),
        ],
    ) == [
        (NONE, None),
        (NONE, None),
        (NONE, None),
        (NONE, None),
        (INVALID_REQUEST, "Invalid configuration key bogus"),
        (INVALID_REQUEST, "producer_byte_rate cannot be a fractional value."),
        (INVALID_REQUEST, "Quota consumer_byte_rate must be greater than 0"),
        (
            INVALID_REQUEST,
            "Invalid quota entity combination, IP entity shouldnot be combined with User or "
            "ClientId",
        ),
        (
            INVALID_REQUEST,
            "Invalid quota entity combination, IP entity shouldnot be combined with User or "
            "ClientId",
        ),
        (INVALID_REQUEST, "Empty client-id not supported"),
        (INVALID_REQUEST, "Unhandled client quota entity type: group"),
    ]
    # an ip entity takes only connection_creation_rate; validate_only changes nothing
    assert alter(address, [(LOOPBACK, {"producer_byte_rate": 1.0})])[0][0] == INVALID_REQUEST
    assert alter(address, [(USER_ALICE, {"producer_byte_rate": 1.0})], validate_only=True) == [
        (NONE, None)
    ]
    everything = describe(address, [])
    assert everything == {
        USER_ALICE: {"producer_byte_rate": 1024.0, "request_percentage": 50.5},
        DEFAULT_USER: {"consumer_byte_rate": 2048.0},
        ALICE_APP: {"controller_mutation_rate": 10.0},
        LOOPBACK: {"connection_creation_rate": 5.0},
    }
    exact, default, specified = 0, 1, 2
    assert set(describe(address, [("user", exact, "alice")])) == {USER_ALICE, ALICE_APP}
    assert set(describe(address, [("user", exact, "alice")], strict=True)) == {USER_ALICE}
    assert set(describe(address, [("user", default, None)])) == {DEFAULT_USER}
    assert set(describe(address, [("user", specified, None)], strict=True)) == {
        USER_ALICE,
        DEFAULT_USER,
    }
    assert set(describe(address, [("client-id", specified, None)])) == {ALICE_APP}
    assert set(describe(address, [("ip", exact, "127.0.0.1")])) == {LOOPBACK}
    assert describe(address, [("user", exact, None)]) == (
        INVALID_REQUEST,
        "Request specified MATCH_TYPE_EXACT, but set match string to null.",
    )
    assert describe(address, [("ip", specified, None), ("user", specified, None)])[0] == (
        INVALID_REQUEST
    )
    assert describe(address, [("group", specified, None)]) == (
        UNSUPPORTED_VERSION,
        "Unsupported entity type group",
    )
    # removing a key; an entity left without quotas is gone
    assert alter(address, [(LOOPBACK, {"connection_creation_rate": None})]) == [(NONE, None)]
    broker.restart()
    assert describe(address, [("ip", specified, None)]) == {}
    assert describe(address, [("user", exact, "alice")], strict=True) == {
        USER_ALICE: {"producer_byte_rate": 1024.0, "request_percentage": 50.5}
    }
    # (the user quotas above have no producer or consumer limit for ANONYMOUS clients: their
    # defaults are cleared for the throttling tests that follow)
    assert alter(address, [(DEFAULT_USER, {"consumer_byte_rate": None})]) == [(NONE, None)]


# -- throttling -----------------------------------------------------------------------------------
def test_a_produce_over_its_quota_is_throttled_by_kafkas_formula(broker):
    create_topic(broker.bootstrap, "produced")
    client_id = f"producer-{uuid.uuid4().hex[:8]}"
    request = produce_request("produced", 20_000)
    size = request_size(request, client_id)
    quota = size * 1000 // 10_300  # the first request earns about 300 ms
    assert alter(
        broker.bootstrap, [((("client-id", client_id),), {"producer_byte_rate": quota})]
    ) == [(NONE, None)]
    expected = kafka_throttle_ms(size, quota)
    assert 250 < expected < 350
    with KafkaConnection(broker.bootstrap, client_id=client_id) as connection:
        response = connection.request(request, ProduceResponse)
    assert response.throttle_time_ms == expected
    [partition] = response.responses[0].partition_responses
    assert partition.error_code == NONE  # throttled, not refused: the records are in
    # another client id has no quota: not throttled
    with KafkaConnection(broker.bootstrap, client_id="unlimited") as connection:
        assert connection.request(request, ProduceResponse).throttle_time_ms == 0


def test_a_fetch_over_its_quota_is_throttled_by_kafkas_formula_and_answered_empty(broker):
    create_topic(broker.bootstrap, "fetched")
    with KafkaConnection(broker.bootstrap, client_id="loader") as connection:
        connection.request(produce_request("fetched", 30_000), ProduceResponse)
    fetch = fetch_request([FetchPosition("fetched", 0, 0, 1 << 20)], max_bytes=1 << 20)
    with KafkaConnection(broker.bootstrap, client_id="measurer") as connection:
        connection.sock.sendall(connection.frame(fetch))
        frame = bytes(connection.read_frame())
    # Kafka's FetchResponse.sizeOf: the body and 4 bytes (v12's header is 5: less 1)
    size = len(frame) - 1
    assert FetchResponse.decode(frame, version=12, header=True).responses  # it had the records
    client_id = f"consumer-{uuid.uuid4().hex[:8]}"
    quota = size * 1000 // 10_200
    assert alter(
        broker.bootstrap, [((("client-id", client_id),), {"consumer_byte_rate": quota})]
    ) == [(NONE, None)]
    with KafkaConnection(broker.bootstrap, client_id=client_id) as connection:
        response = connection.request(fetch, FetchResponse)
    assert response.throttle_time_ms == kafka_throttle_ms(size, quota) > 0
    assert response.responses == []  # throttled: no data, as Kafka's throttled fetch


def test_a_throttled_connection_is_muted_until_its_throttle_ends(broker):
    create_topic(broker.bootstrap, "muted")
    client_id = f"muted-{uuid.uuid4().hex[:8]}"
    request = produce_request("muted", 20_000)
    quota = request_size(request, client_id) * 1000 // 13_000  # about 3 s
    assert alter(
        broker.bootstrap, [((("client-id", client_id),), {"producer_byte_rate": quota})]
    ) == [(NONE, None)]
    before = stats(broker.bootstrap)
    versions = ApiVersionsRequest[0]()

    def answered_api_versions() -> int:
        return stats(broker.bootstrap)["apis"].get("API_VERSIONS", {}).get("requests", 0)

    with (
        KafkaConnection(broker.bootstrap, client_id=client_id, timeout_s=30) as throttled,
        KafkaConnection(broker.bootstrap, client_id="bystander") as bystander,
    ):
        assert throttled.request(request, ProduceResponse).throttle_time_ms > 2_000
        counted = answered_api_versions()
        throttled.sock.sendall(throttled.frame(versions))  # waits, unread, for the throttle
        # another connection is served meanwhile; the muted one's request is not even read
        assert bystander.request(versions, ApiVersionsResponse).error_code == NONE
        assert answered_api_versions() == counted + 1
        after = stats(broker.bootstrap)
        assert after["connections_throttled"] == before["connections_throttled"] + 1
        # then, once the throttle is over, it is read and answered
        throttled.read_frame()
        assert answered_api_versions() == counted + 2


def test_confluent_kafka_is_told_of_its_throttle(broker):
    create_topic(broker.bootstrap, "told")
    assert alter(
        broker.bootstrap, [((("client-id", "told"),), {"producer_byte_rate": 1000.0})]
    ) == [(NONE, None)]
    throttles = []
    producer = Producer(
        {
            "bootstrap.servers": broker.bootstrap,
            "client.id": "told",
            "linger.ms": 0,
            "throttle_cb": lambda event: throttles.append(event.throttle_time),
        }
    )
    producer.produce("told", b"x" * 30_000)  # 30 KB at 1 KB/s: about 2 s of throttle
    assert producer.flush(30) == 0
    wait_until(lambda: producer.poll(0.1) >= 0 and throttles, what="a throttle event")
    assert throttles[0] > 1.0  # seconds, from the response's throttle_time_ms


# -- a cluster ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    settings = {**CLUSTER_SETTINGS, "default.replication.factor": "2"}  # two brokers suffice
    running = LocalCluster(str(tmp_path_factory.mktemp("qc")), 2, settings).start()
    yield running
    running.stop()


def test_quotas_go_through_the_controller_to_every_broker_and_outlive_restarts(cluster):
    brokers = {n: b.bootstrap for n, b in cluster.brokers.items()}
    default_client: Entity = (("client-id", None),)
    results = alter(
        brokers[1],
        [
            (default_client, {"producer_byte_rate": 50_000.0}),
            ((("user", "ANONYMOUS"),), {"consumer_byte_rate": 4096.0}),
            ((("user", "x"),), {"bogus": 1.0}),
        ],
    )
    assert results == [
        (NONE, None),
        (NONE, None),
        (INVALID_REQUEST, "Invalid configuration key bogus"),
    ]
    expected = {
        default_client: {"producer_byte_rate": 50_000.0},
        (("user", "ANONYMOUS"),): {"consumer_byte_rate": 4096.0},
    }
    assert describe(brokers[1], []) == expected  # answered once this broker's image shows it
    wait_until(lambda: all(describe(a, []) == expected for a in brokers.values()))
    # the quota applies on every broker: the default client-id's, per broker
    create_topic(cluster.bootstrap, "clustered", replication=2)
    leader = wait_until(
        lambda: next(
            (
                n
                for n, a in brokers.items()
                if stats(a)["partitions"].get("clustered-0", {}).get("role") == "leader"
            ),
            None,
        ),
        what="a leader",
    )
    request = produce_request("clustered", 600_000)
    client_id = f"cluster-{uuid.uuid4().hex[:8]}"
    with KafkaConnection(brokers[leader], client_id=client_id) as connection:
        response = connection.request(request, ProduceResponse)
    size = request_size(request, client_id)
    assert response.throttle_time_ms == kafka_throttle_ms(size, 50_000) > 0
    # the controller's metadata log keeps them: a restarted controller reads them back, so it
    # can remove a key (one it did not know of would be no change, and the brokers would keep it)
    cluster.controller.restart()
    assert alter(brokers[1], [((("user", "ANONYMOUS"),), {"consumer_byte_rate": None})]) == [
        (NONE, None)
    ]
    wait_until(
        lambda: describe(brokers[2], []) == {default_client: {"producer_byte_rate": 50_000.0}},
        what="a removal everywhere",
    )


# -- the quota manager on a clock the test sets ---------------------------------------------------
def test_the_rate_is_kafkas_over_a_sampled_window():
    quotas = {(("client-id", "c"),): {"producer_byte_rate": 1000.0}}
    manager = ClientQuotaManager("producer_byte_rate", samples=11, window_seconds=1)

    def record(size: int, now_ms: int) -> int:
        return manager.record_and_get_throttle_time_ms(quotas, ANONYMOUS, "c", size, now_ms)

    # the first bytes: over 10 whole windows
    assert record(20_000, 0) == kafka_throttle_ms(20_000, 1000) == 10_000
    # 500 ms later: 40,000 bytes over 10.5 s, (3809.5 - 1000) / 1000 x 10,500 ms
    assert record(20_000, 500) == 29_500
    # 12 s later every sample is older than the 11 windows: measured afresh, within the quota
    assert record(5_000, 12_500) == 0
    # 10.5 s after that sample began, the window is 10.5 s, past the 10 s minimum
    assert record(5_000, 23_000) == 0  # 10,000 bytes: 952 B/s
    assert record(1_000, 23_000) == 500  # 11,000 bytes: (1047.6 - 1000) / 1000 x 10,500 ms
    assert manager.status()["throttled_requests"] == 3


def test_quota_precedence_and_shared_sensors_are_kafkas():
    quotas = {
        (("client-id", None),): {"producer_byte_rate": 100.0},
        (("user", None),): {"producer_byte_rate": 200.0},
        (("client-id", "app"), ("user", ANONYMOUS)): {"producer_byte_rate": 300.0},
    }
    key = "producer_byte_rate"
    # /users/ANONYMOUS/clients/app, then /users/<default> over /clients/<default>
    assert quota_metric_tags(quotas, key, ANONYMOUS, "app") == (ANONYMOUS, "app")
    assert quota_limit(quotas, key, (ANONYMOUS, "app")) == 300.0
    assert quota_metric_tags(quotas, key, ANONYMOUS, "other") == (ANONYMOUS, "")
    assert quota_limit(quotas, key, (ANONYMOUS, "")) == 200.0
    # every client of the default user shares that user's sensor
    manager = ClientQuotaManager(key, samples=11, window_seconds=1)
    assert manager.record_and_get_throttle_time_ms(quotas, ANONYMOUS, "x", 2_000, 0) == 0
    shared = manager.record_and_get_throttle_time_ms(quotas, ANONYMOUS, "y", 2_000, 0)
    assert shared == kafka_throttle_ms(4_000, 200)
    # without the user quota the default client-id's applies, per client id
    del quotas[(("user", None),)]
    assert quota_metric_tags(quotas, key, ANONYMOUS, "x") == ("", "x")
    assert quota_limit(quotas, key, ("", "x")) == 100.0


def test_a_client_quota_record_has_kafkas_bytes():
    record = ClientQuotaRecord(
        entity=[ClientQuotaRecord.EntityData(entity_type="user", entity_name=None)],
        key="producer_byte_rate",
        value=1024.0,
        remove=False,
    )
    frame = encode_record(record)
    # frame version 1, api key 14, version 0; Entity: 1 element (compact length 2), "user",
    # a null name, its tagged fields; Key; Value as a float64; Remove; the tagged fields
    assert frame == (
        bytes([1, 14, 0, 2, 5])
        + b"user"
        + bytes([0, 0, 19])
        + b"producer_byte_rate"
        + struct.pack(">d", 1024.0)
        + bytes([0, 0])
    )
    decoded = decode_record(frame)
    assert [(e.entity_type, e.entity_name) for e in decoded.entity] == [("user", None)]
    assert (decoded.key, decoded.value, decoded.remove) == ("producer_byte_rate", 1024.0, False)
