"""Every API at every advertised version: a request encoded by kafka-python's client classes goes
through the broker's codec and handlers, and the response frame decodes in kafka-python."""

import pytest
from kafka.protocol.api_message import ApiMessage

from engine.broker.broker_server import BrokerServer
from engine.broker.config import KafkaConfig
from engine.broker.kafka_apis import KafkaApis
from engine.broker.request_context import RequestContext
from engine.common import TopicPartition
from engine.errors import (
    ELECTION_NOT_NEEDED,
    GROUP_ID_NOT_FOUND,
    LOG_DIR_NOT_FOUND,
    MEMBER_ID_REQUIRED,
    NO_REASSIGNMENT_IN_PROGRESS,
    NON_EMPTY_GROUP,
    NONE,
    NOT_COORDINATOR,
    SECURITY_DISABLED,
    UNKNOWN_MEMBER_ID,
    UNKNOWN_TOPIC_ID,
)
from engine.protocol.apis import APIS, ApiKeys
from engine.protocol.codec import decode_request
from engine.records import SimpleRecord, build_batch


@pytest.fixture
def apis(tmp_path):
    config = KafkaConfig(log_dir=str(tmp_path), group_initial_rebalance_delay_ms=0)
    broker = BrokerServer(config)
    broker.topics.create_topic("events", 2)
    yield broker.apis
    broker.shutdown()


def request_for(api: ApiKeys, version: int) -> ApiMessage:
    """A plausible request of each API, with every field any version has."""
    cls = APIS[api][0][version]
    records = bytes(build_batch([SimpleRecord(b"hello", key=b"k")]))
    if api == ApiKeys.API_VERSIONS:
        return cls(client_software_name="tests", client_software_version="1")
    if api == ApiKeys.METADATA:
        topic = cls.MetadataRequestTopic(name="events", topic_id=None)
        return cls(topics=[topic], allow_auto_topic_creation=True)
    if api == ApiKeys.PRODUCE:
        partition = cls.TopicProduceData.PartitionProduceData(index=1, records=records)
        topic = cls.TopicProduceData(name="events", partition_data=[partition])
        return cls(transactional_id=None, acks=1, timeout_ms=1000, topic_data=[topic])
    if api == ApiKeys.FETCH:
        partition = cls.FetchTopic.FetchPartition(
            partition=1,
            current_leader_epoch=-1,
            fetch_offset=0,
            last_fetched_epoch=-1,
            log_start_offset=-1,
            partition_max_bytes=1 << 20,
        )
        return cls(
            replica_id=-1,
            max_wait_ms=0,
            min_bytes=1,
            max_bytes=1 << 20,
            isolation_level=0,
            session_id=0,
            session_epoch=-1,
            topics=[cls.FetchTopic(topic="events", partitions=[partition])],
            forgotten_topics_data=[],
            rack_id="",
        )
    if api == ApiKeys.LIST_OFFSETS:
        partition = cls.ListOffsetsTopic.ListOffsetsPartition(
            partition_index=0, current_leader_epoch=-1, timestamp=-1
        )
        topic = cls.ListOffsetsTopic(name="events", partitions=[partition])
        return cls(replica_id=-1, isolation_level=0, topics=[topic])
    if api == ApiKeys.CREATE_TOPICS:
        config = cls.CreatableTopic.CreatableTopicConfig(name="retention.ms", value="60000")
        topic = cls.CreatableTopic(
            name=f"created-{version}",
            num_partitions=3,
            replication_factor=1,
            assignments=[],
            configs=[config],
        )
        return cls(topics=[topic], timeout_ms=1000, validate_only=False)
    if api == ApiKeys.DELETE_TOPICS:
        return cls(
            topics=[cls.DeleteTopicState(name="events", topic_id=None)],
            topic_names=["events"],
            timeout_ms=1000,
        )
    if api == ApiKeys.CREATE_PARTITIONS:
        topic = cls.CreatePartitionsTopic(name="events", count=4, assignments=None)
        return cls(topics=[topic], timeout_ms=1000, validate_only=False)
    if api == ApiKeys.DESCRIBE_CONFIGS:
        resource = cls.DescribeConfigsResource(
            resource_type=2, resource_name="events", configuration_keys=None
        )
        return cls(resources=[resource], include_synonyms=False, include_documentation=False)
    if api == ApiKeys.OFFSET_FOR_LEADER_EPOCH:
        partition = cls.OffsetForLeaderTopic.OffsetForLeaderPartition(
            partition=0, current_leader_epoch=-1, leader_epoch=0
        )
        return cls(
            replica_id=-1, topics=[cls.OffsetForLeaderTopic(topic="events", partitions=[partition])]
        )
    if api == ApiKeys.INIT_PRODUCER_ID:
        return cls(
            transactional_id=None, transaction_timeout_ms=1000, producer_id=-1, producer_epoch=-1
        )
    if api == ApiKeys.FIND_COORDINATOR:
        return cls(key="g", key_type=0, coordinator_keys=["g"])
    if api == ApiKeys.JOIN_GROUP:
        protocol = cls.JoinGroupRequestProtocol(name="range", metadata=b"\x00")
        return cls(
            group_id="g",
            session_timeout_ms=10_000,
            rebalance_timeout_ms=10_000,
            member_id="",
            group_instance_id=None,
            protocol_type="consumer",
            protocols=[protocol],
            reason=None,
        )
    if api == ApiKeys.SYNC_GROUP:
        return cls(
            group_id="g",
            generation_id=1,
            member_id="m",
            group_instance_id=None,
            protocol_type="consumer",
            protocol_name="range",
            assignments=[],
        )
    if api == ApiKeys.HEARTBEAT:
        return cls(group_id="g", generation_id=1, member_id="m", group_instance_id=None)
    if api == ApiKeys.LEAVE_GROUP:
        member = cls.MemberIdentity(member_id="m", group_instance_id=None, reason=None)
        return cls(group_id="g", member_id="m", members=[member])
    if api == ApiKeys.OFFSET_COMMIT:
        partition = cls.OffsetCommitRequestTopic.OffsetCommitRequestPartition(
            partition_index=0,
            committed_offset=5,
            committed_leader_epoch=-1,
            committed_metadata="",
        )
        topic = cls.OffsetCommitRequestTopic(name="events", partitions=[partition])
        return cls(
            group_id="g",
            generation_id_or_member_epoch=-1,
            member_id="",
            group_instance_id=None,
            retention_time_ms=-1,
            topics=[topic],
        )
    if api == ApiKeys.OFFSET_FETCH:
        topics = [cls.OffsetFetchRequestTopic(name="events", partition_indexes=[0])]
        group = cls.OffsetFetchRequestGroup(
            group_id="g",
            member_id=None,
            member_epoch=-1,
            topics=[
                cls.OffsetFetchRequestGroup.OffsetFetchRequestTopics(
                    name="events", partition_indexes=[0]
                )
            ],
        )
        return cls(group_id="g", topics=topics, groups=[group], require_stable=False)
    if api == ApiKeys.DESCRIBE_GROUPS:
        return cls(groups=["g"], include_authorized_operations=False)
    if api == ApiKeys.LIST_GROUPS:
        return cls(states_filter=[], types_filter=[])
    if api == ApiKeys.ALTER_REPLICA_LOG_DIRS:
        topic = cls.AlterReplicaLogDir.AlterReplicaLogDirTopic(name="events", partitions=[1])
        return cls(dirs=[cls.AlterReplicaLogDir(path="/elsewhere", topics=[topic])])
    if api == ApiKeys.DELETE_GROUPS:
        return cls(groups_names=["g", "never"])
    if api == ApiKeys.OFFSET_DELETE:
        deleted = cls.OffsetDeleteRequestTopic.OffsetDeleteRequestPartition(partition_index=1)
        return cls(
            group_id="g", topics=[cls.OffsetDeleteRequestTopic(name="events", partitions=[deleted])]
        )
    if api == ApiKeys.DELETE_RECORDS:
        deleted = cls.DeleteRecordsTopic.DeleteRecordsPartition(partition_index=1, offset=-1)
        return cls(
            topics=[cls.DeleteRecordsTopic(name="events", partitions=[deleted])], timeout_ms=1
        )
    if api == ApiKeys.DESCRIBE_LOG_DIRS:
        return cls(topics=[cls.DescribableLogDirTopic(topic="events", partitions=[1])])
    if api == ApiKeys.ELECT_LEADERS:
        wanted = cls.TopicPartitions(topic="events", partitions=[1])
        return cls(election_type=0, topic_partitions=[wanted], timeout_ms=1000)
    if api == ApiKeys.ALTER_PARTITION_REASSIGNMENTS:
        partition = cls.ReassignableTopic.ReassignablePartition(partition_index=1, replicas=None)
        return cls(
            timeout_ms=1000,
            allow_replication_factor_change=True,
            topics=[cls.ReassignableTopic(name="events", partitions=[partition])],
        )
    if api == ApiKeys.LIST_PARTITION_REASSIGNMENTS:
        return cls(timeout_ms=1000, topics=None)
    if api == ApiKeys.DESCRIBE_QUORUM:
        partition = cls.TopicData.PartitionData(partition_index=0)
        return cls(topics=[cls.TopicData(topic_name="__cluster_metadata", partitions=[partition])])
    if api == ApiKeys.DESCRIBE_CLUSTER:
        return cls(
            include_cluster_authorized_operations=False,
            endpoint_type=1,
            include_fenced_brokers=False,
        )
    if api == ApiKeys.DESCRIBE_TOPIC_PARTITIONS:
        return cls(
            topics=[cls.TopicRequest(name="events")], response_partition_limit=10, cursor=None
        )
    if api == ApiKeys.DESCRIBE_PRODUCERS:
        return cls(topics=[cls.TopicRequest(name="events", partition_indexes=[1])])
    if api == ApiKeys.DESCRIBE_TRANSACTIONS:
        return cls(transactional_ids=["t"])
    if api == ApiKeys.LIST_TRANSACTIONS:
        return cls(state_filters=["Ongoing"], producer_id_filters=[], duration_filter=-1)
    if api == ApiKeys.ADD_PARTITIONS_TO_TXN:
        topic = cls.AddPartitionsToTxnTopic(name="events", partitions=[1])
        return cls(
            v3_and_below_transactional_id="t",
            v3_and_below_producer_id=7,
            v3_and_below_producer_epoch=0,
            v3_and_below_topics=[topic],
        )
    if api == ApiKeys.ADD_OFFSETS_TO_TXN:
        return cls(transactional_id="t", producer_id=7, producer_epoch=0, group_id="g")
    if api == ApiKeys.END_TXN:
        return cls(transactional_id="t", producer_id=7, producer_epoch=0, committed=True)
    if api == ApiKeys.TXN_OFFSET_COMMIT:
        topic = cls.TxnOffsetCommitRequestTopic(
            name="events",
            partitions=[
                cls.TxnOffsetCommitRequestTopic.TxnOffsetCommitRequestPartition(
                    partition_index=1,
                    committed_offset=3,
                    committed_leader_epoch=-1,
                    committed_metadata="",
                )
            ],
        )
        return cls(
            transactional_id="t",
            group_id="g",
            producer_id=7,
            producer_epoch=0,
            generation_id=-1,
            member_id="",
            group_instance_id=None,
            topics=[topic],
        )
    if api == ApiKeys.WRITE_TXN_MARKERS:
        topic = cls.WritableTxnMarker.WritableTxnMarkerTopic(name="events", partition_indexes=[1])
        marker = cls.WritableTxnMarker(
            producer_id=7,
            producer_epoch=0,
            transaction_result=False,
            topics=[topic],
            coordinator_epoch=0,
            transaction_version=0,
        )
        return cls(markers=[marker])
    # DescribeAcls' filter, and each of DeleteAcls': any ACL
    acl_filter = {
        "resource_type_filter": 1,
        "resource_name_filter": None,
        "pattern_type_filter": 1,
        "principal_filter": None,
        "host_filter": None,
        "operation": 1,
        "permission_type": 1,
    }
    if api == ApiKeys.DESCRIBE_ACLS:
        return cls(**acl_filter)
    if api == ApiKeys.DELETE_ACLS:
        return cls(filters=[cls.DeleteAclsFilter(**acl_filter)])
    if api == ApiKeys.CREATE_ACLS:
        creation = cls.AclCreation(
            resource_type=2,
            resource_name="events",
            resource_pattern_type=3,
            principal="User:alice",
            host="*",
            operation=3,
            permission_type=3,
        )
        return cls(creations=[creation])
    if api in (ApiKeys.ALTER_CONFIGS, ApiKeys.INCREMENTAL_ALTER_CONFIGS):
        entry = cls.AlterConfigsResource.AlterableConfig
        config = (
            entry(name="retention.ms", config_operation=0, value="1000")
            if api == ApiKeys.INCREMENTAL_ALTER_CONFIGS
            else entry(name="retention.ms", value="1000")
        )
        resource = cls.AlterConfigsResource(
            resource_type=2, resource_name="events", configs=[config]
        )
        return cls(resources=[resource], validate_only=True)
    if api == ApiKeys.DESCRIBE_CLIENT_QUOTAS:
        component = cls.ComponentData(entity_type="client-id", match_type=2, match=None)
        return cls(components=[component], strict=False)
    if api == ApiKeys.ALTER_CLIENT_QUOTAS:
        entity = cls.EntryData.EntityData(entity_type="client-id", entity_name="tests")
        op = cls.EntryData.OpData(key="producer_byte_rate", value=1024.0, remove=False)
        return cls(entries=[cls.EntryData(entity=[entity], ops=[op])], validate_only=True)
    raise AssertionError(f"no request for {api.name}")


CASES = [
    (api, version)
    for api, (_, _, low, high) in sorted(APIS.items())
    for version in range(low, high + 1)
]


@pytest.mark.parametrize(("api", "version"), CASES, ids=[f"{a.name}-v{v}" for a, v in CASES])
def test_every_api_version_round_trips(apis, api, version):
    response = exchange(apis, api, version, request_for(api, version))
    assert response.header.correlation_id == 4242
    errors = _error_codes(response)
    assert errors <= ALLOWED_ERRORS.get(api, {NONE}), (api.name, version, errors)


def exchange(apis: KafkaApis, api: ApiKeys, version: int, request: ApiMessage) -> ApiMessage:
    """Encode the request as a client would, handle it, and decode its one response."""
    request.with_header(correlation_id=4242, client_id="tests")
    header, decoded = decode_request(bytes(request.encode(header=True)))
    answers = []
    apis.handle(RequestContext(header, "127.0.0.1:1", "127.0.0.1:9092"), decoded, answers.append)
    apis.broker.tick()
    [parts] = answers
    frame = b"".join(p if isinstance(p, bytes) else p.read() for p in parts)
    return APIS[api][1].decode(frame, version=version, header=True, framed=True)


# The requests above are plausible, not all acceptable: the group requests name a member the
# group has not seen, and offsets are committed for a partition that was never produced to.
ALLOWED_ERRORS = {
    ApiKeys.FETCH: {NONE, UNKNOWN_TOPIC_ID},  # v13+ names topics by id: the request names none
    ApiKeys.JOIN_GROUP: {NONE, MEMBER_ID_REQUIRED},  # MEMBER_ID_REQUIRED from v4
    ApiKeys.SYNC_GROUP: {UNKNOWN_MEMBER_ID},
    ApiKeys.HEARTBEAT: {UNKNOWN_MEMBER_ID},
    ApiKeys.LEAVE_GROUP: {UNKNOWN_MEMBER_ID, NONE},
    ApiKeys.DESCRIBE_GROUPS: {NONE, GROUP_ID_NOT_FOUND},
    ApiKeys.DELETE_GROUPS: {NONE, GROUP_ID_NOT_FOUND, NON_EMPTY_GROUP},
    ApiKeys.OFFSET_DELETE: {NONE, GROUP_ID_NOT_FOUND, NON_EMPTY_GROUP},
    # no transaction coordinator before FindCoordinator made __transaction_state
    ApiKeys.ADD_PARTITIONS_TO_TXN: {NONE, NOT_COORDINATOR},  # v4+'s top-level code: 0
    ApiKeys.ADD_OFFSETS_TO_TXN: {NOT_COORDINATOR},
    ApiKeys.END_TXN: {NOT_COORDINATOR},
    ApiKeys.DESCRIBE_TRANSACTIONS: {NOT_COORDINATOR},
    # a single broker: no other log directory, nothing to elect or reassign
    ApiKeys.ALTER_REPLICA_LOG_DIRS: {LOG_DIR_NOT_FOUND},
    ApiKeys.ELECT_LEADERS: {NONE, ELECTION_NOT_NEEDED},
    ApiKeys.ALTER_PARTITION_REASSIGNMENTS: {NONE, NO_REASSIGNMENT_IN_PROGRESS},
    # no authorizer, as Kafka without one
    ApiKeys.DESCRIBE_ACLS: {SECURITY_DISABLED},
    ApiKeys.CREATE_ACLS: {SECURITY_DISABLED},
    ApiKeys.DELETE_ACLS: {SECURITY_DISABLED},
}


def test_a_produce_with_a_transactional_id_is_appended(apis):
    """Transactions are served (issue 15): a transactional id no longer refuses the request."""
    request = request_for(ApiKeys.PRODUCE, 9)
    request.transactional_id = "txn"
    response = exchange(apis, ApiKeys.PRODUCE, 9, request)
    assert _error_codes(response) == {NONE}
    assert apis.topics.partition(TopicPartition("events", 1)).log.log_end_offset > 0


def _error_codes(message) -> set[int]:
    """Every error_code field anywhere in a response."""
    found = set()
    stack = [message]
    while stack:
        item = stack.pop()
        if isinstance(item, list | tuple):
            stack.extend(item)
            continue
        if not hasattr(item, "_struct"):
            continue
        for name in item._struct.fields:
            value = getattr(item, name, None)
            if name == "error_code" and value is not None:
                found.add(value)
            elif isinstance(value, list | tuple) or hasattr(value, "_struct"):
                stack.append(value)
    return found
