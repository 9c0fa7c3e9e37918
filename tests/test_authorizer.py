"""The StandardAuthorizer (authorizer.class.name): its rules on their own (DENY over ALLOW,
implied operations, LITERAL, PREFIXED and "*" patterns, hosts, super.users,
allow.everyone.if.no.acl.found), then end to end: ACLs managed with kafka-python's and
confluent-kafka's admin clients, kept across a restart, and enforced on real producers and
consumers (every client here is User:ANONYMOUS, as on Kafka's PLAINTEXT listener); and a
3-broker cluster whose brokers keep replicating under an ACL that denies every client the
cluster."""

import uuid
from types import SimpleNamespace

import pytest
from confluent_kafka import KafkaError as ConfluentError
from confluent_kafka import Producer
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
)
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import (
    ACL,
    ACLFilter,
    ACLOperation,
    ACLPermissionType,
    ACLResourcePatternType,
    NewTopic,
    ResourcePattern,
    ResourcePatternFilter,
)
from kafka.admin import ResourceType as KafkaResourceType
from kafka.errors import (
    ClusterAuthorizationFailedError,
    GroupAuthorizationFailedError,
    InvalidRequestError,
    TopicAuthorizationFailedError,
)
from kafka.protocol.admin.acl import DescribeAclsRequest, DescribeAclsResponse
from kafka.protocol.metadata.metadata import MetadataRequest, MetadataResponse
from kafka.protocol.producer.produce import ProduceRequest, ProduceResponse

from engine.broker.authorizer import StandardAuthorizer
from engine.broker.cluster_admin import TOPIC_OPERATIONS, bit_field
from engine.broker.config import STANDARD_AUTHORIZER, KafkaConfig, kafka_config
from engine.metadata.acl import AclBindingFilter as StandardAclFilter
from engine.metadata.acl import (
    StandardAcl,
    acl_creation_records,
    acl_deletion_records,
)
from engine.metadata.image import BrokerRegistration, ClusterImage, MetadataDelta, MetadataError
from engine.protocol.apis import APIS, ApiKeys
from scenarios.clients.cluster import KafkaConnection
from scenarios.clients.local_broker import LocalCluster
from tests.cluster_support import CLUSTER_SETTINGS, wait_until
from tests.conftest import broker_process, make_batch
from tests.test_cluster import broker_stats, create_topic, partition_state

AUTHORIZER = {"authorizer.class.name": STANDARD_AUTHORIZER}
TOPIC, GROUP, CLUSTER = KafkaResourceType.TOPIC, KafkaResourceType.GROUP, KafkaResourceType.CLUSTER
LITERAL, PREFIXED = ACLResourcePatternType.LITERAL, ACLResourcePatternType.PREFIXED
ALLOW, DENY = ACLPermissionType.ALLOW, ACLPermissionType.DENY
READ, WRITE, DESCRIBE = ACLOperation.READ, ACLOperation.WRITE, ACLOperation.DESCRIBE


# -- the rules, without a broker ------------------------------------------------------------------
def _acl(kind, name, pattern, principal, host, operation, permission) -> StandardAcl:
    return StandardAcl(kind, name, pattern, principal, host, operation, permission)


def _authorizer(
    acls: list[StandardAcl], in_cluster: bool = False, **settings: str
) -> StandardAuthorizer:
    image = ClusterImage(
        "c", 1, {1: BrokerRegistration(1, "10.0.0.9", 9092)}, acls={uuid.uuid4(): a for a in acls}
    )
    config = kafka_config({**AUTHORIZER, **settings})
    return StandardAuthorizer(config, lambda: image, in_cluster)


def _context(host: str = "127.0.0.1", client_id: str = "app") -> object:
    return SimpleNamespace(header=SimpleNamespace(client_id=client_id), client_address=f"{host}:5")


def test_deny_beats_allow_and_allow_implies_describe_only():
    auth = _authorizer(
        [
            _acl(TOPIC, "orders", LITERAL, "User:ANONYMOUS", "*", ACLOperation.ALL, ALLOW),
            _acl(TOPIC, "ord", PREFIXED, "User:*", "*", WRITE, DENY),
            _acl(TOPIC, "*", LITERAL, "User:ANONYMOUS", "*", READ, ALLOW),
            _acl(TOPIC, "logs", LITERAL, "User:ANONYMOUS", "*", ACLOperation.ALTER_CONFIGS, ALLOW),
        ]
    )
    c = _context()
    assert auth.authorize(c, READ, TOPIC, "orders")  # ALL
    assert not auth.authorize(c, WRITE, TOPIC, "orders")  # a PREFIXED DENY for User:*
    assert auth.authorize(c, DESCRIBE, TOPIC, "orders")  # a DENY of WRITE does not deny DESCRIBE
    assert auth.authorize(c, READ, TOPIC, "anything")  # the "*" literal
    assert auth.authorize(c, DESCRIBE, TOPIC, "anything")  # READ implies DESCRIBE
    assert not auth.authorize(c, WRITE, TOPIC, "anything")
    assert auth.authorize(c, ACLOperation.DESCRIBE_CONFIGS, TOPIC, "logs")  # ALTER_CONFIGS implies
    assert not auth.authorize(c, ACLOperation.ALTER, TOPIC, "logs")


def test_no_acl_covering_a_resource_leaves_it_to_allow_everyone_and_hosts_must_match():
    acls = [_acl(TOPIC, "paid", LITERAL, "User:bob", "*", READ, ALLOW)]
    acls.append(_acl(TOPIC, "free", LITERAL, "User:ANONYMOUS", "10.1.1.1", WRITE, DENY))
    open_broker, closed = (
        _authorizer(acls, **{"allow.everyone.if.no.acl.found": "true"}),
        (_authorizer(acls)),
    )
    c = _context()
    assert open_broker.authorize(c, WRITE, TOPIC, "other")  # no ACL covers it
    assert not closed.authorize(c, WRITE, TOPIC, "other")
    assert not open_broker.authorize(c, READ, TOPIC, "paid")  # bob's ACL covers it: not ours
    # an ACL for another host does not apply, but it covers the topic: allow-everyone is off
    assert not open_broker.authorize(c, WRITE, TOPIC, "free")
    acls.append(_acl(TOPIC, "free", LITERAL, "User:*", "*", WRITE, ALLOW))
    hosts = _authorizer(acls)
    assert hosts.authorize(c, WRITE, TOPIC, "free")
    assert not hosts.authorize(_context("10.1.1.1"), WRITE, TOPIC, "free")
    # super users pass everything
    su = _authorizer(acls, **{"super.users": "User:admin;User:ANONYMOUS"})
    assert su.authorize(c, WRITE, TOPIC, "paid")


def test_another_broker_of_the_cluster_is_allowed_everything_from_its_registered_host():
    action = (ACLOperation.CLUSTER_ACTION, CLUSTER)
    cluster, single = _authorizer([], in_cluster=True), _authorizer([])
    assert cluster.authorize(_context("10.0.0.9", "kbench-broker-1"), *action)
    assert not cluster.authorize(_context("127.0.0.1", "kbench-broker-1"), *action)  # elsewhere
    assert not cluster.authorize(_context("10.0.0.9", "kbench-broker-2"), *action)  # unknown
    assert not single.authorize(_context("10.0.0.9", "kbench-broker-1"), *action)  # no peers


def test_authorize_by_resource_type_as_an_idempotent_producer_needs_it():
    allowed = [_acl(TOPIC, "a", PREFIXED, "User:ANONYMOUS", "*", WRITE, ALLOW)]
    assert _authorizer(allowed).authorize_by_resource_type(_context(), WRITE, TOPIC)
    dominated = [*allowed, _acl(TOPIC, "a", PREFIXED, "User:*", "*", WRITE, DENY)]
    assert not _authorizer(dominated).authorize_by_resource_type(_context(), WRITE, TOPIC)
    assert not _authorizer([]).authorize_by_resource_type(_context(), WRITE, TOPIC)


def test_acl_records_replay_into_the_image_and_filters_select_by_kafka_rules():
    literal = _acl(TOPIC, "orders", LITERAL, "User:a", "*", READ, ALLOW)
    prefixed = _acl(TOPIC, "ord", PREFIXED, "User:a", "*", READ, ALLOW)
    everything = _acl(TOPIC, "*", LITERAL, "User:b", "10.0.0.1", WRITE, DENY)
    records, results = acl_creation_records({}, [literal, prefixed, everything, literal])
    assert results == [None] * 4 and len(records) == 3  # asked twice, added once
    bad = _acl(TOPIC, "", LITERAL, "User:a", "*", READ, ALLOW)
    assert str(acl_creation_records({}, [bad])[1][0]) == "Invalid empty resource name"
    delta = MetadataDelta(ClusterImage("c", 1))
    for record in records:
        delta.replay(record)
    image = delta.apply()
    assert sorted(image.acls.values(), key=str) == sorted([literal, prefixed, everything], key=str)

    def matching(kind, name, pattern, principal=None, host=None) -> set:
        wanted = StandardAclFilter(kind, name, pattern, principal, host, ACLOperation.ANY, 1)
        return {a for a in image.acls.values() if wanted.matches(a)}

    match, any_pattern = ACLResourcePatternType.MATCH, ACLResourcePatternType.ANY
    assert matching(TOPIC, "orders", match) == {literal, prefixed, everything}
    assert matching(TOPIC, "other", match) == {everything}
    assert matching(TOPIC, "orders", any_pattern) == {literal}  # the name exactly
    assert matching(TOPIC, "ord", PREFIXED) == {prefixed}
    assert matching(KafkaResourceType.ANY, None, any_pattern, host="10.0.0.1") == {everything}
    removals, deleted = acl_deletion_records(
        image.acls, [StandardAclFilter(TOPIC, "orders", match, "User:a", None, 1, 1)] * 2
    )
    assert len(removals) == 2 and [set(d) for d in deleted] == [{literal, prefixed}] * 2
    for record in removals:
        delta.replay(record)
    assert list(delta.apply().acls.values()) == [everything]
    with pytest.raises(MetadataError):
        delta.replay(removals[0])  # already removed


def test_authorizer_settings_are_checked_at_start():
    assert KafkaConfig().authorizer_class_name == ""
    with pytest.raises(ValueError, match=r"authorizer\.class\.name must be empty or"):
        kafka_config({"authorizer.class.name": "kafka.security.authorizer.AclAuthorizer"})
    with pytest.raises(ValueError, match=r"super\.users must be principals TYPE:NAME"):
        kafka_config({"super.users": "User:admin;bob"})


# -- end to end -----------------------------------------------------------------------------------
def _pattern(kind, name, pattern=LITERAL) -> ResourcePattern:
    return ResourcePattern(kind, name, pattern)


ANY_ACL = ACLFilter(
    None,
    None,
    ACLOperation.ANY,
    ACLPermissionType.ANY,
    ResourcePatternFilter(KafkaResourceType.ANY, None, ACLResourcePatternType.ANY),
)


def _bindings(found) -> set[tuple]:
    acls, error = found
    assert error.errno == 0
    return {
        (
            a.resource_pattern.resource_type,
            a.resource_pattern.resource_name,
            a.resource_pattern.pattern_type,
            a.principal,
            a.host,
            a.operation,
            a.permission_type,
        )
        for a in acls
    }


def test_kafka_python_admin_manages_acls_that_bind_producers(tmp_path):
    settings = {**AUTHORIZER, "allow.everyone.if.no.acl.found": "true"}
    broker = broker_process(str(tmp_path / "data"), **settings).start()
    try:
        admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
        admin.create_topics([NewTopic(n, 1, 1) for n in ("orders", "logs-app", "metrics")])
        deny = ACL("User:ANONYMOUS", "*", WRITE, DENY, _pattern(TOPIC, "orders"))
        alice = ACL("User:alice", "*", READ, ALLOW, _pattern(TOPIC, "logs-", PREFIXED))
        bad = ACL("User:alice", "*", READ, ALLOW, _pattern(CLUSTER, "not-the-cluster"))
        created = admin.create_acls([deny, alice, bad])
        assert created["succeeded"] == [deny, alice]
        assert created["failed"] == [InvalidRequestError]  # kafka-python lists error classes
        assert len(_bindings(admin.describe_acls(ANY_ACL))) == 2
        match = ResourcePatternFilter(TOPIC, "logs-app", ACLResourcePatternType.MATCH)
        matched = ACLFilter(None, None, ACLOperation.ANY, ACLPermissionType.ANY, match)
        assert {b[1:3] for b in _bindings(admin.describe_acls(matched))} == {("logs-", PREFIXED)}
        # an ACL on a topic, for anyone, turns allow.everyone.if.no.acl.found off for it:
        # nothing allows us DESCRIBE on orders or logs-app, so they are not listed
        assert set(admin.list_topics()) == {"metrics", "__consumer_offsets"}

        producer = KafkaProducer(bootstrap_servers=broker.bootstrap, max_block_ms=5000)
        assert producer.send("metrics", b"m").get(timeout=30).offset == 0
        # one request, two topics: the refused one answered beside what the handler did
        produce = ProduceRequest[9](
            transactional_id=None,
            acks=1,
            timeout_ms=5000,
            topic_data=[
                ProduceRequest[9].TopicProduceData(
                    name=name,
                    partition_data=[
                        ProduceRequest[9].TopicProduceData.PartitionProduceData(
                            index=0, records=bytes(make_batch(2))
                        )
                    ],
                )
                for name in ("metrics", "orders")
            ],
        )
        topic = MetadataRequest[12].MetadataRequestTopic
        metadata = MetadataRequest[12](
            topics=[topic(name=n) for n in ("metrics", "logs-app", "brand-new")],
            allow_auto_topic_creation=True,
        )
        with KafkaConnection(broker.bootstrap) as connection:
            answer = connection.request(produce, ProduceResponse)
            found = connection.request(metadata, MetadataResponse)
        assert sorted(
            (t.name, p.error_code, p.base_offset)
            for t in answer.responses
            for p in t.partition_responses
        ) == [("metrics", 0, 1), ("orders", TopicAuthorizationFailedError.errno, -1)]
        assert sorted((t.name, t.error_code) for t in found.topics) == [
            ("brand-new", 0),  # created at once: no ACL covers it or the cluster
            ("logs-app", TopicAuthorizationFailedError.errno),
            ("metrics", 0),
        ]
        assert [b.node_id for b in found.brokers] == [0]
        for denied in ("orders", "logs-app"):
            with pytest.raises(TopicAuthorizationFailedError):
                producer.send(denied, b"x").get(timeout=30)
        producer.close()

        orders = ACLFilter(
            None,
            None,
            ACLOperation.ANY,
            ACLPermissionType.ANY,
            ResourcePatternFilter(TOPIC, "orders", LITERAL),
        )
        [(_, deleted, error)] = admin.delete_acls([orders])
        assert (deleted, error.errno) == ([deny], 0)
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap, max_block_ms=5000)
        assert producer.send("orders", b"now allowed").get(timeout=30).offset == 0
        producer.close()
        admin.close()
    finally:
        broker.stop()


def test_confluent_admin_grants_a_denied_producer_and_host_rules_apply(tmp_path):
    broker = broker_process(
        str(tmp_path / "data"), **AUTHORIZER, **{"allow.everyone.if.no.acl.found": "true"}
    ).start()
    try:
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        bob = AclBinding(
            ResourceType.TOPIC,
            "paid",
            ResourcePatternType.LITERAL,
            "User:bob",
            "*",
            AclOperation.READ,
            AclPermissionType.ALLOW,
        )
        elsewhere = AclBinding(
            ResourceType.TOPIC,
            "free",
            ResourcePatternType.LITERAL,
            "User:ANONYMOUS",
            "10.1.1.1",
            AclOperation.WRITE,
            AclPermissionType.DENY,
        )
        anyone = AclBinding(
            ResourceType.TOPIC,
            "free",
            ResourcePatternType.LITERAL,
            "User:*",
            "*",
            AclOperation.WRITE,
            AclPermissionType.ALLOW,
        )
        for future in admin.create_acls([bob, elsewhere, anyone]).values():
            future.result(timeout=30)

        def produce(topic: str) -> ConfluentError | None:
            outcome = []
            producer = Producer(
                {"bootstrap.servers": broker.bootstrap, "message.timeout.ms": 10000}
            )
            producer.produce(topic, b"v", on_delivery=lambda err, msg: outcome.append(err))
            producer.flush(30)
            return outcome[0]

        denied = produce("paid")
        assert denied is not None and denied.code() == ConfluentError.TOPIC_AUTHORIZATION_FAILED
        assert produce("free") is None  # auto-created; the DENY is for another host

        grant = AclBinding(
            ResourceType.TOPIC,
            "paid",
            ResourcePatternType.LITERAL,
            "User:ANONYMOUS",
            "127.0.0.1",
            AclOperation.WRITE,
            AclPermissionType.ALLOW,
        )
        admin.create_acls([grant])[grant].result(timeout=30)
        assert produce("paid") is None

        any_acl = AclBindingFilter(
            ResourceType.ANY,
            None,
            ResourcePatternType.ANY,
            None,
            None,
            AclOperation.ANY,
            AclPermissionType.ANY,
        )
        assert set(admin.describe_acls(any_acl).result(timeout=30)) == {
            bob,
            elsewhere,
            anyone,
            grant,
        }
        on_paid = AclBindingFilter(
            ResourceType.TOPIC,
            "paid",
            ResourcePatternType.MATCH,
            None,
            None,
            AclOperation.ANY,
            AclPermissionType.ANY,
        )
        assert set(admin.delete_acls([on_paid])[on_paid].result(timeout=30)) == {bob, grant}
        assert set(admin.describe_acls(any_acl).result(timeout=30)) == {elsewhere, anyone}
    finally:
        broker.stop()


def test_deny_by_default_grants_only_what_acls_kept_across_a_restart_allow(tmp_path):
    """Set up as a super user, then restarted without one: what the ACLs (kept in acls.json)
    grant, and nothing else."""
    data = str(tmp_path / "data")
    broker = broker_process(data, **AUTHORIZER, **{"super.users": "User:ANONYMOUS"}).start()
    try:
        admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
        admin.create_topics([NewTopic("a-1", 1, 1), NewTopic("b-1", 1, 1)])
        me = "User:ANONYMOUS"
        admin.create_acls(
            [
                ACL(me, "*", WRITE, ALLOW, _pattern(TOPIC, "a-1")),
                ACL(me, "*", READ, ALLOW, _pattern(TOPIC, "a-", PREFIXED)),
                ACL(me, "*", READ, ALLOW, _pattern(GROUP, "grp")),
            ]
        )
        admin.close()
        broker.stop()
        broker = broker_process(data, **AUTHORIZER).start()

        admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
        with pytest.raises(ClusterAuthorizationFailedError):
            admin.describe_acls(ANY_ACL)
        with pytest.raises(TopicAuthorizationFailedError):  # no CREATE on cluster or topic
            admin.create_topics([NewTopic("c-1", 1, 1)])
        assert set(admin.list_topics()) == {"a-1"}
        admin.close()

        # idempotent (InitProducerId): allowed by a WRITE ACL on some topic
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap, max_block_ms=5000)
        for i in range(3):
            producer.send("a-1", f"r{i}".encode())
        producer.flush()
        with pytest.raises(TopicAuthorizationFailedError):
            producer.send("b-1", b"x").get(timeout=30)
        producer.close()

        consumer = KafkaConsumer(
            "a-1", bootstrap_servers=broker.bootstrap, group_id="grp", auto_offset_reset="earliest"
        )
        read: list[bytes] = []

        def polled() -> bool:
            for records in consumer.poll(timeout_ms=500).values():
                read.extend(r.value for r in records)
            return len(read) >= 3

        wait_until(polled, what="the group reading a-1")
        assert read == [b"r0", b"r1", b"r2"]
        consumer.commit()
        consumer.close()
        stranger = KafkaConsumer(
            "a-1",
            bootstrap_servers=broker.bootstrap,
            group_id="other",
            auto_offset_reset="earliest",
        )
        with pytest.raises(GroupAuthorizationFailedError):
            stranger.poll(timeout_ms=10000)
        stranger.close()
    finally:
        broker.stop()


def test_a_cluster_keeps_replicating_when_every_client_is_denied_the_cluster(tmp_path):
    settings = {**CLUSTER_SETTINGS, **AUTHORIZER, "allow.everyone.if.no.acl.found": "true"}
    with LocalCluster(str(tmp_path / "cluster"), 3, settings) as cluster:
        create_topic(cluster, "guarded")
        admin = KafkaAdminClient(bootstrap_servers=cluster.bootstrap)
        nobody = ACL("User:*", "*", ACLOperation.ALL, DENY, _pattern(CLUSTER, "kafka-cluster"))
        assert admin.create_acls([nobody])["succeeded"] == [nobody]
        with pytest.raises(ClusterAuthorizationFailedError):  # in force: no DESCRIBE for us
            admin.describe_acls(ANY_ACL)
        admin.close()
        describe = DescribeAclsRequest[3](
            resource_type_filter=1,  # ANY
            resource_name_filter=None,
            pattern_type_filter=1,
            principal_filter=None,
            host_filter=None,
            operation=1,
            permission_type=1,
        )

        def refused_by(node_id: int) -> bool:  # each broker's image has the ACL
            with KafkaConnection(cluster.brokers[node_id].bootstrap) as connection:
                answer = connection.request(describe, DescribeAclsResponse)
            return answer.error_code == ClusterAuthorizationFailedError.errno

        for node_id in (1, 2, 3):
            wait_until(lambda n=node_id: refused_by(n), what=f"broker {node_id} applying the ACL")

        # follower fetches need CLUSTER_ACTION: the brokers still have it, so acks=all completes
        producer = KafkaProducer(bootstrap_servers=cluster.bootstrap, acks="all")
        for i in range(100):
            producer.send("guarded", f"r{i}".encode())
        producer.flush(timeout=30)
        producer.close()
        leader = partition_state(cluster, "guarded").leader_id

        def caught_up() -> bool:
            view = broker_stats(cluster, leader)["partitions"]["guarded-0"]
            lags = [f["lag"] for f in view["followers"].values()]
            return view["log_end_offset"] == 100 and lags == [0, 0] and len(view["isr"]) == 3

        wait_until(caught_up, what="both followers replicating under the ACL")


def _built(cls, fields: dict):
    """A request (or one of its structs) from plain dicts and lists, nested as its schema."""
    values = {}
    for name, value in fields.items():
        field = cls.fields[name]
        if field.is_struct_array() and value is not None:
            value = [_built(field.data_class, v) for v in value]
        values[name] = value
    return cls(**values)


def test_each_api_answers_what_kafka_answers_a_refused_principal(tmp_path):
    """Raw requests, one per API, against ACLs that give us topic `open` and group `team`
    and give someone else topic `shut`, topics `guarded-*`, group `theirs` and the cluster:
    what we may not touch is answered with Kafka's error, what we may is served beside it."""
    broker = broker_process(
        str(tmp_path / "data"), **AUTHORIZER, **{"allow.everyone.if.no.acl.found": "true"}
    ).start()
    try:
        admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
        admin.create_topics([NewTopic("open", 1, 1), NewTopic("shut", 1, 1)])
        us, them = "User:ANONYMOUS", "User:nobody"
        admin.create_acls(
            [
                ACL(us, "*", ACLOperation.ALL, ALLOW, _pattern(TOPIC, "open")),
                ACL(us, "*", READ, ALLOW, _pattern(GROUP, "team")),
                ACL(them, "*", READ, ALLOW, _pattern(TOPIC, "shut")),
                ACL(them, "*", READ, ALLOW, _pattern(TOPIC, "guarded-", PREFIXED)),
                ACL(them, "*", READ, ALLOW, _pattern(GROUP, "theirs")),
                ACL(them, "*", ACLOperation.ALTER, ALLOW, _pattern(CLUSTER, "kafka-cluster")),
            ]
        )
        admin.close()
        with KafkaConnection(broker.bootstrap) as connection:

            def ask(api: ApiKeys, version: int, /, **fields):
                request_class, response_class = APIS[api][0], APIS[api][1]
                request = _built(request_class[version], fields)
                return connection.request(request, response_class)

            def by_topic(topics, name="name", partitions="partitions"):
                return {
                    getattr(t, name): sorted({p.error_code for p in getattr(t, partitions)})
                    for t in topics
                }

            two = [{"name": n, "partitions": [{"partition_index": 0}]} for n in ("open", "shut")]
            found = ask(
                ApiKeys.LIST_OFFSETS,
                10,
                replica_id=-1,
                isolation_level=0,
                topics=[
                    {"name": t["name"], "partitions": [{"partition_index": 0, "timestamp": -1}]}
                    for t in two
                ],
                timeout_ms=1000,
            )
            assert by_topic(found.topics) == {"open": [0], "shut": [29]}
            fetched_records = ask(
                ApiKeys.FETCH,
                12,
                replica_id=-1,
                max_wait_ms=0,
                min_bytes=0,
                max_bytes=1 << 20,
                isolation_level=0,
                session_id=0,
                session_epoch=-1,
                forgotten_topics_data=[],
                rack_id="",
                topics=[
                    {
                        "topic": n,
                        "partitions": [
                            {
                                "partition": 0,
                                "fetch_offset": 0,
                                "partition_max_bytes": 1 << 20,
                                "current_leader_epoch": -1,
                                "log_start_offset": -1,
                            }
                        ],
                    }
                    for n in ("open", "shut")
                ],
            )
            assert by_topic(fetched_records.responses, "topic") == {"open": [0], "shut": [29]}
            epochs = ask(
                ApiKeys.OFFSET_FOR_LEADER_EPOCH,
                4,
                replica_id=-1,
                topics=[
                    {"topic": n, "partitions": [{"partition": 0, "leader_epoch": 0}]}
                    for n in ("open", "shut")
                ],
            )
            assert by_topic(epochs.topics, "topic") == {"open": [0], "shut": [29]}
            deleted = ask(
                ApiKeys.DELETE_RECORDS,
                2,
                timeout_ms=1000,
                topics=[
                    {"name": n, "partitions": [{"partition_index": 0, "offset": 0}]}
                    for n in ("open", "shut")
                ],
            )
            assert by_topic(deleted.topics) == {"open": [0], "shut": [29]}
            grown = ask(
                ApiKeys.CREATE_PARTITIONS,
                3,
                timeout_ms=1000,
                validate_only=True,
                topics=[{"name": n, "count": 2, "assignments": None} for n in ("open", "shut")],
            )
            assert {r.name: r.error_code for r in grown.results} == {"open": 0, "shut": 29}
            created = ask(
                ApiKeys.CREATE_TOPICS,
                7,
                timeout_ms=1000,
                validate_only=True,
                topics=[
                    {
                        "name": n,
                        "num_partitions": 1,
                        "replication_factor": 1,
                        "assignments": [],
                        "configs": [],
                    }
                    for n in ("free-x", "guarded-x")
                ],
            )
            assert {t.name: t.error_code for t in created.topics} == {"free-x": 0, "guarded-x": 29}
            gone = ask(ApiKeys.DELETE_TOPICS, 5, topic_names=["shut"], timeout_ms=1000)
            assert [(r.name, r.error_code) for r in gone.responses] == [("shut", 29)]
            described = ask(
                ApiKeys.DESCRIBE_TOPIC_PARTITIONS,
                0,
                topics=[],
                response_partition_limit=100,
                cursor=None,
            )
            assert "open" in {t.name for t in described.topics}
            assert "shut" not in {t.name for t in described.topics}
            altered = ask(
                ApiKeys.INCREMENTAL_ALTER_CONFIGS,
                1,
                validate_only=True,
                resources=[
                    {"resource_type": kind, "resource_name": name, "configs": []}
                    for kind, name in ((2, "open"), (2, "shut"), (4, "0"))
                ],
            )
            assert {r.resource_name: r.error_code for r in altered.responses} == {
                "open": 0,
                "shut": 29,
                "0": 31,
            }

            coordinator = ask(
                ApiKeys.FIND_COORDINATOR, 4, key_type=0, coordinator_keys=["team", "theirs"]
            )
            assert {c.key: c.error_code for c in coordinator.coordinators} == {
                "team": 0,
                "theirs": 30,
            }
            assert ask(ApiKeys.FIND_COORDINATOR, 3, key="theirs", key_type=0).error_code == 30
            joined = ask(
                ApiKeys.JOIN_GROUP,
                7,
                group_id="theirs",
                session_timeout_ms=10000,
                rebalance_timeout_ms=10000,
                member_id="",
                group_instance_id=None,
                protocol_type="consumer",
                protocols=[],
            )
            assert joined.error_code == 30
            beat = ask(
                ApiKeys.HEARTBEAT,
                4,
                group_id="theirs",
                generation_id=1,
                member_id="m",
                group_instance_id=None,
            )
            assert beat.error_code == 30
            committed = ask(
                ApiKeys.OFFSET_COMMIT,
                8,
                group_id="team",
                generation_id_or_member_epoch=-1,
                member_id="",
                group_instance_id=None,
                topics=[
                    {"name": n, "partitions": [{"partition_index": 0, "committed_offset": 0}]}
                    for n in ("open", "shut")
                ],
            )
            assert by_topic(committed.topics) == {"open": [0], "shut": [29]}
            fetched = ask(
                ApiKeys.OFFSET_FETCH,
                8,
                require_stable=False,
                groups=[{"group_id": g, "topics": None} for g in ("team", "theirs")],
            )
            assert {g.group_id: g.error_code for g in fetched.groups} == {"team": 0, "theirs": 30}
            [team] = [g for g in fetched.groups if g.group_id == "team"]
            assert [t.name for t in team.topics] == ["open"]
            groups = ask(
                ApiKeys.DESCRIBE_GROUPS,
                5,
                groups=["team", "theirs"],
                include_authorized_operations=True,
            )
            assert {g.group_id: g.error_code for g in groups.groups} == {"team": 0, "theirs": 30}
            [team] = [g for g in groups.groups if g.group_id == "team"]
            assert team.authorized_operations == {READ, DESCRIBE}  # READ implies DESCRIBE
            cluster = ask(
                ApiKeys.DESCRIBE_CLUSTER,
                1,
                include_cluster_authorized_operations=True,
                endpoint_type=1,
            )
            assert cluster.authorized_operations == set()  # all of it is someone else's
            [topic] = ask(
                ApiKeys.DESCRIBE_TOPIC_PARTITIONS,
                0,
                topics=[{"name": "open"}],
                response_partition_limit=100,
                cursor=None,
            ).topics
            assert topic.topic_authorized_operations == bit_field(TOPIC_OPERATIONS)  # ALL
            removed = ask(ApiKeys.DELETE_GROUPS, 2, groups_names=["theirs"])
            assert [(r.group_id, r.error_code) for r in removed.results] == [("theirs", 30)]

            for key, version in (
                (ApiKeys.DESCRIBE_LOG_DIRS, 4),
                (ApiKeys.LIST_PARTITION_REASSIGNMENTS, 0),
            ):
                fields = (
                    {"topics": None}
                    if key == ApiKeys.DESCRIBE_LOG_DIRS
                    else {"timeout_ms": 1000, "topics": None}
                )
                assert ask(key, version, **fields).error_code == 31
            elected = ask(
                ApiKeys.ELECT_LEADERS, 2, election_type=0, topic_partitions=None, timeout_ms=1000
            )
            assert elected.error_code == 31
            # client quotas: DESCRIBE_CONFIGS / ALTER_CONFIGS on the cluster, someone else's
            quotas = ask(ApiKeys.DESCRIBE_CLIENT_QUOTAS, 1, components=[], strict=False)
            assert quotas.error_code == 31 and not quotas.entries
            entity = [{"entity_type": "client-id", "entity_name": "c"}]
            altered = ask(
                ApiKeys.ALTER_CLIENT_QUOTAS,
                1,
                entries=[
                    {
                        "entity": entity,
                        "ops": [{"key": "producer_byte_rate", "value": 1024.0, "remove": False}],
                    }
                ],
                validate_only=False,
            )
            assert [(e.error_code, e.entity[0].entity_name) for e in altered.entries] == [(31, "c")]
    finally:
        broker.stop()


def test_a_transactional_producer_needs_its_transactional_id_and_each_topic(tmp_path):
    """As Kafka's KafkaApis: FindCoordinator, InitProducerId, AddPartitionsToTxn and EndTxn
    need WRITE (DESCRIBE for the lookup) on the transactional id; a topic the principal may not
    WRITE makes AddPartitionsToTxn fail with TOPIC_AUTHORIZATION_FAILED and add nothing; a
    client's WriteTxnMarkers needs CLUSTER_ACTION; ListTransactions shows only what it may
    DESCRIBE."""
    from confluent_kafka import KafkaException

    broker = broker_process(
        str(tmp_path / "data"), **AUTHORIZER, **{"allow.everyone.if.no.acl.found": "true"}
    ).start()
    try:
        admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
        admin.create_topics([NewTopic("open", 1, 1), NewTopic("shut", 1, 1)])
        them = "User:nobody"
        admin.create_acls(  # someone else's: tx and topic shut are guarded
            [
                ACL(
                    them,
                    "*",
                    ACLOperation.WRITE,
                    ALLOW,
                    _pattern(KafkaResourceType.TRANSACTIONAL_ID, "tx"),
                ),
                ACL(them, "*", READ, ALLOW, _pattern(TOPIC, "shut")),
            ]
        )

        def producer() -> Producer:
            return Producer(
                {"bootstrap.servers": broker.bootstrap, "transactional.id": "tx", "linger.ms": 0}
            )

        with pytest.raises(KafkaException) as refused:
            producer().init_transactions(20)
        assert refused.value.args[0].code() == ConfluentError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED

        admin.create_acls(
            [
                ACL(
                    "User:ANONYMOUS",
                    "*",
                    ACLOperation.WRITE,
                    ALLOW,
                    _pattern(KafkaResourceType.TRANSACTIONAL_ID, "tx"),
                )
            ]
        )
        allowed = producer()
        allowed.init_transactions(20)
        allowed.begin_transaction()
        allowed.produce("open", b"committed")
        allowed.commit_transaction(20)
        allowed.begin_transaction()
        delivered = []
        allowed.produce("shut", b"refused", on_delivery=lambda error, _: delivered.append(error))
        with pytest.raises(KafkaException) as commit_refused:
            allowed.commit_transaction(20)
        assert commit_refused.value.args[0].txn_requires_abort()
        assert [e.code() for e in delivered] == [ConfluentError.TOPIC_AUTHORIZATION_FAILED]
        allowed.abort_transaction(20)
        assert _listed(admin) == ["tx"]
        admin.delete_acls(
            [
                ACLFilter(
                    "User:ANONYMOUS",
                    "*",
                    ACLOperation.ANY,
                    ACLPermissionType.ANY,
                    ResourcePatternFilter(
                        KafkaResourceType.TRANSACTIONAL_ID, "tx", ACLResourcePatternType.LITERAL
                    ),
                )
            ]
        )
        assert _listed(admin) == []  # no longer ours to describe
        # the cluster guarded too: a client's WriteTxnMarkers is refused (a broker's is not)
        admin.create_acls(
            [ACL(them, "*", ACLOperation.ALTER, ALLOW, _pattern(CLUSTER, "kafka-cluster"))]
        )
        admin.close()

        with KafkaConnection(broker.bootstrap) as connection:
            request_class, response_class = APIS[ApiKeys.WRITE_TXN_MARKERS][:2]
            markers = request_class[1](
                markers=[
                    request_class[1].WritableTxnMarker(
                        producer_id=1,
                        producer_epoch=0,
                        transaction_result=True,
                        topics=[
                            request_class[1].WritableTxnMarker.WritableTxnMarkerTopic(
                                name="open", partition_indexes=[0]
                            )
                        ],
                        coordinator_epoch=0,
                    )
                ]
            )
            [marker] = connection.request(markers, response_class).markers
            assert [(p.partition_index, p.error_code) for p in marker.topics[0].partitions] == [
                (0, 31)  # CLUSTER_AUTHORIZATION_FAILED: a client is not a broker
            ]
    finally:
        broker.stop()


def _listed(admin: KafkaAdminClient) -> list[str]:
    """The transactional ids ListTransactions shows, from every broker."""
    return [t.transactional_id for listings in admin.list_transactions().values() for t in listings]
