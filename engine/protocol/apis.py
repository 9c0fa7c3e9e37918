"""The APIs the broker serves, with the version ranges it advertises in ApiVersions.

Ranges are what kafka-python 3.x, librdkafka and aiokafka use (design.md): Fetch up to v17 as
Kafka 4.0 (v13+ names topics by id, which Metadata returns); Produce at v9 (kafka-python's cap,
the first flexible version).
kafka-python takes the broker for the newest Kafka release whose marker version this table
serves (broker_version_data.infer_broker_version_from_api_versions): ListOffsets v10 is its
marker of Kafka 4.0 (ListOffsets v7 that of 3.0, which it took kbench for before).
Requests and responses are kafka-python's schema-generated classes.
"""

from enum import IntEnum

from kafka.protocol.admin.acl import (
    CreateAclsRequest,
    CreateAclsResponse,
    DeleteAclsRequest,
    DeleteAclsResponse,
    DescribeAclsRequest,
    DescribeAclsResponse,
)
from kafka.protocol.admin.client_quotas import (
    AlterClientQuotasRequest,
    AlterClientQuotasResponse,
    DescribeClientQuotasRequest,
    DescribeClientQuotasResponse,
)
from kafka.protocol.admin.cluster import (
    AlterReplicaLogDirsRequest,
    AlterReplicaLogDirsResponse,
    DescribeClusterRequest,
    DescribeClusterResponse,
    DescribeLogDirsRequest,
    DescribeLogDirsResponse,
    DescribeQuorumRequest,
    DescribeQuorumResponse,
)
from kafka.protocol.admin.configs import (
    AlterConfigsRequest,
    AlterConfigsResponse,
    DescribeConfigsRequest,
    DescribeConfigsResponse,
    IncrementalAlterConfigsRequest,
    IncrementalAlterConfigsResponse,
)
from kafka.protocol.admin.groups import (
    DeleteGroupsRequest,
    DeleteGroupsResponse,
    DescribeGroupsRequest,
    DescribeGroupsResponse,
    ListGroupsRequest,
    ListGroupsResponse,
)
from kafka.protocol.admin.topics import (
    AlterPartitionReassignmentsRequest,
    AlterPartitionReassignmentsResponse,
    CreatePartitionsRequest,
    CreatePartitionsResponse,
    CreateTopicsRequest,
    CreateTopicsResponse,
    DeleteRecordsRequest,
    DeleteRecordsResponse,
    DeleteTopicsRequest,
    DeleteTopicsResponse,
    DescribeTopicPartitionsRequest,
    DescribeTopicPartitionsResponse,
    ElectLeadersRequest,
    ElectLeadersResponse,
    ListPartitionReassignmentsRequest,
    ListPartitionReassignmentsResponse,
)
from kafka.protocol.admin.transactions import (
    DescribeProducersRequest,
    DescribeProducersResponse,
    DescribeTransactionsRequest,
    DescribeTransactionsResponse,
    ListTransactionsRequest,
    ListTransactionsResponse,
)
from kafka.protocol.api_message import ApiMessage
from kafka.protocol.consumer.fetch import FetchRequest, FetchResponse
from kafka.protocol.consumer.group import (
    HeartbeatRequest,
    HeartbeatResponse,
    JoinGroupRequest,
    JoinGroupResponse,
    LeaveGroupRequest,
    LeaveGroupResponse,
    OffsetCommitRequest,
    OffsetCommitResponse,
    OffsetDeleteRequest,
    OffsetDeleteResponse,
    OffsetFetchRequest,
    OffsetFetchResponse,
    SyncGroupRequest,
    SyncGroupResponse,
)
from kafka.protocol.consumer.offsets import (
    ListOffsetsRequest,
    ListOffsetsResponse,
    OffsetForLeaderEpochRequest,
    OffsetForLeaderEpochResponse,
)
from kafka.protocol.metadata.api_versions import ApiVersionsRequest, ApiVersionsResponse
from kafka.protocol.metadata.find_coordinator import (
    FindCoordinatorRequest,
    FindCoordinatorResponse,
)
from kafka.protocol.metadata.metadata import MetadataRequest, MetadataResponse
from kafka.protocol.producer.produce import ProduceRequest, ProduceResponse
from kafka.protocol.producer.transaction import (
    AddOffsetsToTxnRequest,
    AddOffsetsToTxnResponse,
    AddPartitionsToTxnRequest,
    AddPartitionsToTxnResponse,
    EndTxnRequest,
    EndTxnResponse,
    InitProducerIdRequest,
    InitProducerIdResponse,
    TxnOffsetCommitRequest,
    TxnOffsetCommitResponse,
    WriteTxnMarkersRequest,
    WriteTxnMarkersResponse,
)

from engine.protocol.kraft_messages import (
    AllocateProducerIdsRequest,
    AllocateProducerIdsResponse,
    AlterPartitionRequest,
    AlterPartitionResponse,
    BrokerHeartbeatRequest,
    BrokerHeartbeatResponse,
    BrokerRegistrationRequest,
    BrokerRegistrationResponse,
)


class ApiKeys(IntEnum):
    PRODUCE = 0
    FETCH = 1
    LIST_OFFSETS = 2
    METADATA = 3
    OFFSET_COMMIT = 8
    OFFSET_FETCH = 9
    FIND_COORDINATOR = 10
    JOIN_GROUP = 11
    HEARTBEAT = 12
    LEAVE_GROUP = 13
    SYNC_GROUP = 14
    DESCRIBE_GROUPS = 15
    LIST_GROUPS = 16
    API_VERSIONS = 18
    CREATE_TOPICS = 19
    DELETE_TOPICS = 20
    DELETE_RECORDS = 21
    INIT_PRODUCER_ID = 22
    OFFSET_FOR_LEADER_EPOCH = 23
    ADD_PARTITIONS_TO_TXN = 24
    ADD_OFFSETS_TO_TXN = 25
    END_TXN = 26
    WRITE_TXN_MARKERS = 27
    TXN_OFFSET_COMMIT = 28
    DESCRIBE_ACLS = 29
    CREATE_ACLS = 30
    DELETE_ACLS = 31
    DESCRIBE_CONFIGS = 32
    ALTER_CONFIGS = 33
    ALTER_REPLICA_LOG_DIRS = 34
    DESCRIBE_LOG_DIRS = 35
    CREATE_PARTITIONS = 37
    DELETE_GROUPS = 42
    ELECT_LEADERS = 43
    INCREMENTAL_ALTER_CONFIGS = 44
    ALTER_PARTITION_REASSIGNMENTS = 45
    LIST_PARTITION_REASSIGNMENTS = 46
    OFFSET_DELETE = 47
    DESCRIBE_CLIENT_QUOTAS = 48
    ALTER_CLIENT_QUOTAS = 49
    DESCRIBE_QUORUM = 55
    ALTER_PARTITION = 56
    DESCRIBE_CLUSTER = 60
    DESCRIBE_PRODUCERS = 61
    BROKER_REGISTRATION = 62
    BROKER_HEARTBEAT = 63
    DESCRIBE_TRANSACTIONS = 65
    LIST_TRANSACTIONS = 66
    ALLOCATE_PRODUCER_IDS = 67
    DESCRIBE_TOPIC_PARTITIONS = 75


# api key -> (request class, response class, min version, max version)
ApiTable = dict[ApiKeys, tuple[type[ApiMessage], type[ApiMessage], int, int]]

APIS: ApiTable = {
    ApiKeys.PRODUCE: (ProduceRequest, ProduceResponse, 3, 9),
    # v7+ with fetch sessions (KIP-227), v13+ naming topics by id (KIP-516): Kafka 4.0's range
    ApiKeys.FETCH: (FetchRequest, FetchResponse, 4, 17),
    # v8-10 answer the tiered-storage timestamps as Kafka 4.0 without tiered storage does
    ApiKeys.LIST_OFFSETS: (ListOffsetsRequest, ListOffsetsResponse, 1, 10),
    ApiKeys.METADATA: (MetadataRequest, MetadataResponse, 0, 12),
    ApiKeys.OFFSET_COMMIT: (OffsetCommitRequest, OffsetCommitResponse, 2, 8),
    ApiKeys.OFFSET_FETCH: (OffsetFetchRequest, OffsetFetchResponse, 1, 8),
    ApiKeys.FIND_COORDINATOR: (FindCoordinatorRequest, FindCoordinatorResponse, 0, 4),
    ApiKeys.JOIN_GROUP: (JoinGroupRequest, JoinGroupResponse, 0, 7),
    ApiKeys.HEARTBEAT: (HeartbeatRequest, HeartbeatResponse, 0, 4),
    ApiKeys.LEAVE_GROUP: (LeaveGroupRequest, LeaveGroupResponse, 0, 4),
    ApiKeys.SYNC_GROUP: (SyncGroupRequest, SyncGroupResponse, 0, 5),
    ApiKeys.DESCRIBE_GROUPS: (DescribeGroupsRequest, DescribeGroupsResponse, 0, 6),
    ApiKeys.LIST_GROUPS: (ListGroupsRequest, ListGroupsResponse, 0, 5),
    ApiKeys.API_VERSIONS: (ApiVersionsRequest, ApiVersionsResponse, 0, 3),
    ApiKeys.CREATE_TOPICS: (CreateTopicsRequest, CreateTopicsResponse, 2, 7),
    ApiKeys.DELETE_TOPICS: (DeleteTopicsRequest, DeleteTopicsResponse, 1, 6),
    ApiKeys.INIT_PRODUCER_ID: (InitProducerIdRequest, InitProducerIdResponse, 0, 4),
    # the admin clients' deletions (issue 15), in Kafka 4.0's ranges
    ApiKeys.DELETE_RECORDS: (DeleteRecordsRequest, DeleteRecordsResponse, 0, 2),
    ApiKeys.DELETE_GROUPS: (DeleteGroupsRequest, DeleteGroupsResponse, 0, 2),
    ApiKeys.OFFSET_DELETE: (OffsetDeleteRequest, OffsetDeleteResponse, 0, 0),
    # v2+, as Kafka 4.0 (KIP-896): kafka-python's consumers send it after a leader change
    ApiKeys.OFFSET_FOR_LEADER_EPOCH: (
        OffsetForLeaderEpochRequest,
        OffsetForLeaderEpochResponse,
        2,
        4,
    ),
    # transactions (KIP-98, issue 15): the clients' forms (AddPartitionsToTxn v4+ is the
    # brokers' batch form, EndTxn v5 and AddPartitionsToTxn v5 transactions v2, KIP-890)
    ApiKeys.ADD_PARTITIONS_TO_TXN: (AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, 0, 3),
    ApiKeys.ADD_OFFSETS_TO_TXN: (AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, 0, 3),
    ApiKeys.END_TXN: (EndTxnRequest, EndTxnResponse, 0, 3),
    ApiKeys.WRITE_TXN_MARKERS: (WriteTxnMarkersRequest, WriteTxnMarkersResponse, 1, 1),
    ApiKeys.TXN_OFFSET_COMMIT: (TxnOffsetCommitRequest, TxnOffsetCommitResponse, 0, 3),
    ApiKeys.DESCRIBE_PRODUCERS: (DescribeProducersRequest, DescribeProducersResponse, 0, 0),
    ApiKeys.DESCRIBE_TRANSACTIONS: (
        DescribeTransactionsRequest,
        DescribeTransactionsResponse,
        0,
        0,
    ),
    ApiKeys.LIST_TRANSACTIONS: (ListTransactionsRequest, ListTransactionsResponse, 0, 1),
    # SECURITY_DISABLED without an authorizer (Kafka 4.0's ranges)
    ApiKeys.DESCRIBE_ACLS: (DescribeAclsRequest, DescribeAclsResponse, 1, 3),
    ApiKeys.CREATE_ACLS: (CreateAclsRequest, CreateAclsResponse, 1, 3),
    ApiKeys.DELETE_ACLS: (DeleteAclsRequest, DeleteAclsResponse, 1, 3),
    ApiKeys.DESCRIBE_CONFIGS: (DescribeConfigsRequest, DescribeConfigsResponse, 1, 4),
    ApiKeys.ALTER_CONFIGS: (AlterConfigsRequest, AlterConfigsResponse, 0, 2),
    ApiKeys.INCREMENTAL_ALTER_CONFIGS: (
        IncrementalAlterConfigsRequest,
        IncrementalAlterConfigsResponse,
        0,
        1,
    ),
    ApiKeys.CREATE_PARTITIONS: (CreatePartitionsRequest, CreatePartitionsResponse, 0, 3),
    # managing replicas (issue 10), as Kafka 4.0 serves them
    ApiKeys.ALTER_REPLICA_LOG_DIRS: (AlterReplicaLogDirsRequest, AlterReplicaLogDirsResponse, 1, 2),
    ApiKeys.DESCRIBE_LOG_DIRS: (DescribeLogDirsRequest, DescribeLogDirsResponse, 1, 4),
    ApiKeys.ELECT_LEADERS: (ElectLeadersRequest, ElectLeadersResponse, 0, 2),
    ApiKeys.ALTER_PARTITION_REASSIGNMENTS: (
        AlterPartitionReassignmentsRequest,
        AlterPartitionReassignmentsResponse,
        0,
        0,
    ),
    ApiKeys.LIST_PARTITION_REASSIGNMENTS: (
        ListPartitionReassignmentsRequest,
        ListPartitionReassignmentsResponse,
        0,
        0,
    ),
    ApiKeys.DESCRIBE_QUORUM: (DescribeQuorumRequest, DescribeQuorumResponse, 0, 2),
    ApiKeys.DESCRIBE_CLUSTER: (DescribeClusterRequest, DescribeClusterResponse, 0, 1),
    ApiKeys.DESCRIBE_TOPIC_PARTITIONS: (
        DescribeTopicPartitionsRequest,
        DescribeTopicPartitionsResponse,
        0,
        0,
    ),
    # client quotas (issue 15), Kafka 4.0's ranges
    ApiKeys.DESCRIBE_CLIENT_QUOTAS: (
        DescribeClientQuotasRequest,
        DescribeClientQuotasResponse,
        0,
        1,
    ),
    ApiKeys.ALTER_CLIENT_QUOTAS: (AlterClientQuotasRequest, AlterClientQuotasResponse, 0, 1),
}

# What a controller serves (Kafka's ControllerApis, for what brokers and kbench's tools send it):
# the lifecycle and ISR RPCs, topic admin forwarded by brokers, the metadata log by Fetch (v12,
# topic by name), DescribeCluster, which KIP-919 lets clients send to controllers (a new broker
# learns the cluster id from it), and the replica admin brokers forward (ElectLeaders, partition
# reassignments, DescribeQuorum).
CONTROLLER_APIS: ApiTable = {
    ApiKeys.API_VERSIONS: APIS[ApiKeys.API_VERSIONS],
    ApiKeys.FETCH: (FetchRequest, FetchResponse, 12, 12),
    ApiKeys.CREATE_TOPICS: APIS[ApiKeys.CREATE_TOPICS],
    ApiKeys.DELETE_TOPICS: APIS[ApiKeys.DELETE_TOPICS],
    ApiKeys.CREATE_PARTITIONS: APIS[ApiKeys.CREATE_PARTITIONS],
    ApiKeys.ALTER_PARTITION: (AlterPartitionRequest, AlterPartitionResponse, 0, 3),
    ApiKeys.DESCRIBE_CLUSTER: (DescribeClusterRequest, DescribeClusterResponse, 0, 1),
    ApiKeys.BROKER_REGISTRATION: (BrokerRegistrationRequest, BrokerRegistrationResponse, 0, 4),
    ApiKeys.BROKER_HEARTBEAT: (BrokerHeartbeatRequest, BrokerHeartbeatResponse, 0, 1),
    ApiKeys.ALLOCATE_PRODUCER_IDS: (
        AllocateProducerIdsRequest,
        AllocateProducerIdsResponse,
        0,
        0,
    ),
    # forwarded by brokers, as Kafka 4.0's brokers forward them
    ApiKeys.ELECT_LEADERS: APIS[ApiKeys.ELECT_LEADERS],
    ApiKeys.ALTER_PARTITION_REASSIGNMENTS: APIS[ApiKeys.ALTER_PARTITION_REASSIGNMENTS],
    ApiKeys.LIST_PARTITION_REASSIGNMENTS: APIS[ApiKeys.LIST_PARTITION_REASSIGNMENTS],
    ApiKeys.DESCRIBE_QUORUM: APIS[ApiKeys.DESCRIBE_QUORUM],
    ApiKeys.ALTER_CONFIGS: APIS[ApiKeys.ALTER_CONFIGS],
    ApiKeys.INCREMENTAL_ALTER_CONFIGS: APIS[ApiKeys.INCREMENTAL_ALTER_CONFIGS],
    ApiKeys.ALTER_CLIENT_QUOTAS: APIS[ApiKeys.ALTER_CLIENT_QUOTAS],
    ApiKeys.CREATE_ACLS: APIS[ApiKeys.CREATE_ACLS],
    ApiKeys.DELETE_ACLS: APIS[ApiKeys.DELETE_ACLS],
}
