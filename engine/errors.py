"""Kafka's protocol error codes, and the errors raised by the engine, each carrying its code.

The codes are Kafka's (org.apache.kafka.common.protocol.Errors), so the protocol layer answers a
client with the same code Apache Kafka would send for the same fault. They are taken from
kafka-python's `kafka.errors` rather than typed here, so no module carries a number of its own;
the names are those of Kafka's Errors enum (kafka-python's `message` differs for a few, e.g.
MESSAGE_SIZE_TOO_LARGE for MESSAGE_TOO_LARGE).
"""

from typing import Final

from kafka import errors as _kafka

NONE: Final[int] = _kafka.NoError.errno
UNKNOWN_SERVER_ERROR: Final[int] = _kafka.UnknownError.errno
OFFSET_OUT_OF_RANGE: Final[int] = _kafka.OffsetOutOfRangeError.errno
CORRUPT_MESSAGE: Final[int] = _kafka.CorruptRecordError.errno
UNKNOWN_TOPIC_OR_PARTITION: Final[int] = _kafka.UnknownTopicOrPartitionError.errno
LEADER_NOT_AVAILABLE: Final[int] = _kafka.LeaderNotAvailableError.errno
MESSAGE_TOO_LARGE: Final[int] = _kafka.MessageSizeTooLargeError.errno
OFFSET_METADATA_TOO_LARGE: Final[int] = _kafka.OffsetMetadataTooLargeError.errno
COORDINATOR_NOT_AVAILABLE: Final[int] = _kafka.CoordinatorNotAvailableError.errno
NOT_COORDINATOR: Final[int] = _kafka.NotCoordinatorError.errno
INVALID_TOPIC_EXCEPTION: Final[int] = _kafka.InvalidTopicError.errno
RECORD_LIST_TOO_LARGE: Final[int] = _kafka.RecordListTooLargeError.errno
NOT_ENOUGH_REPLICAS: Final[int] = _kafka.NotEnoughReplicasError.errno
INVALID_REQUIRED_ACKS: Final[int] = _kafka.InvalidRequiredAcksError.errno
ILLEGAL_GENERATION: Final[int] = _kafka.IllegalGenerationError.errno
INCONSISTENT_GROUP_PROTOCOL: Final[int] = _kafka.InconsistentGroupProtocolError.errno
INVALID_GROUP_ID: Final[int] = _kafka.InvalidGroupIdError.errno
UNKNOWN_MEMBER_ID: Final[int] = _kafka.UnknownMemberIdError.errno
INVALID_SESSION_TIMEOUT: Final[int] = _kafka.InvalidSessionTimeoutError.errno
REBALANCE_IN_PROGRESS: Final[int] = _kafka.RebalanceInProgressError.errno
INVALID_COMMIT_OFFSET_SIZE: Final[int] = _kafka.InvalidCommitOffsetSizeError.errno
UNSUPPORTED_VERSION: Final[int] = _kafka.UnsupportedVersionError.errno
TOPIC_ALREADY_EXISTS: Final[int] = _kafka.TopicAlreadyExistsError.errno
INVALID_PARTITIONS: Final[int] = _kafka.InvalidPartitionsError.errno
INVALID_REPLICATION_FACTOR: Final[int] = _kafka.InvalidReplicationFactorError.errno
INVALID_CONFIG: Final[int] = _kafka.InvalidConfigurationError.errno
INVALID_REQUEST: Final[int] = _kafka.InvalidRequestError.errno
POLICY_VIOLATION: Final[int] = _kafka.PolicyViolationError.errno
UNSUPPORTED_FOR_MESSAGE_FORMAT: Final[int] = _kafka.UnsupportedForMessageFormatError.errno
OUT_OF_ORDER_SEQUENCE_NUMBER: Final[int] = _kafka.OutOfOrderSequenceNumberError.errno
INVALID_PRODUCER_EPOCH: Final[int] = _kafka.InvalidProducerEpochError.errno
TOPIC_AUTHORIZATION_FAILED: Final[int] = _kafka.TopicAuthorizationFailedError.errno
GROUP_AUTHORIZATION_FAILED: Final[int] = _kafka.GroupAuthorizationFailedError.errno
CLUSTER_AUTHORIZATION_FAILED: Final[int] = _kafka.ClusterAuthorizationFailedError.errno
TRANSACTIONAL_ID_AUTHORIZATION_FAILED: Final[int] = (
    _kafka.TransactionalIdAuthorizationFailedError.errno
)
KAFKA_STORAGE_ERROR: Final[int] = _kafka.KafkaStorageError.errno
NON_EMPTY_GROUP: Final[int] = _kafka.NonEmptyGroupError.errno
GROUP_ID_NOT_FOUND: Final[int] = _kafka.GroupIdNotFoundError.errno
GROUP_SUBSCRIBED_TO_TOPIC: Final[int] = _kafka.GroupSubscribedToTopicError.errno
FENCED_LEADER_EPOCH: Final[int] = _kafka.FencedLeaderEpochError.errno
UNKNOWN_LEADER_EPOCH: Final[int] = _kafka.UnknownLeaderEpochError.errno
MEMBER_ID_REQUIRED: Final[int] = _kafka.MemberIdRequiredError.errno
GROUP_MAX_SIZE_REACHED: Final[int] = _kafka.GroupMaxSizeReachedError.errno
FENCED_INSTANCE_ID: Final[int] = _kafka.FencedInstanceIdError.errno
INVALID_RECORD: Final[int] = _kafka.InvalidRecordError.errno
# replication and the cluster (Kafka's names; kafka-python's class names in a few cases differ:
# NotLeaderForPartitionError is NOT_LEADER_OR_FOLLOWER)
NOT_LEADER_OR_FOLLOWER: Final[int] = _kafka.NotLeaderForPartitionError.errno
REQUEST_TIMED_OUT: Final[int] = _kafka.RequestTimedOutError.errno
BROKER_NOT_AVAILABLE: Final[int] = _kafka.BrokerNotAvailableError.errno
REPLICA_NOT_AVAILABLE: Final[int] = _kafka.ReplicaNotAvailableError.errno
COORDINATOR_LOAD_IN_PROGRESS: Final[int] = _kafka.CoordinatorLoadInProgressError.errno
NOT_ENOUGH_REPLICAS_AFTER_APPEND: Final[int] = _kafka.NotEnoughReplicasAfterAppendError.errno
NOT_CONTROLLER: Final[int] = _kafka.NotControllerError.errno
OPERATION_NOT_ATTEMPTED: Final[int] = _kafka.OperationNotAttemptedError.errno
REASSIGNMENT_IN_PROGRESS: Final[int] = _kafka.ReassignmentInProgressError.errno
STALE_BROKER_EPOCH: Final[int] = _kafka.StaleBrokerEpochError.errno
OFFSET_NOT_AVAILABLE: Final[int] = _kafka.OffsetNotAvailableError.errno
PREFERRED_LEADER_NOT_AVAILABLE: Final[int] = _kafka.PreferredLeaderNotAvailableError.errno
ELIGIBLE_LEADERS_NOT_AVAILABLE: Final[int] = _kafka.EligibleLeadersNotAvailableError.errno
ELECTION_NOT_NEEDED: Final[int] = _kafka.ElectionNotNeededError.errno
NO_REASSIGNMENT_IN_PROGRESS: Final[int] = _kafka.NoReassignmentInProgressError.errno
INVALID_UPDATE_VERSION: Final[int] = _kafka.InvalidUpdateVersionError.errno
UNKNOWN_TOPIC_ID: Final[int] = _kafka.UnknownTopicIdError.errno
DUPLICATE_BROKER_REGISTRATION: Final[int] = _kafka.DuplicateBrokerRegistrationError.errno
BROKER_ID_NOT_REGISTERED: Final[int] = _kafka.BrokerIdNotRegisteredError.errno
INCONSISTENT_CLUSTER_ID: Final[int] = _kafka.InconsistentClusterIdError.errno
INELIGIBLE_REPLICA: Final[int] = _kafka.IneligibleReplicaError.errno
NEW_LEADER_ELECTED: Final[int] = _kafka.NewLeaderElectedError.errno
INVALID_REPLICA_ASSIGNMENT: Final[int] = _kafka.InvalidReplicationAssignmentError.errno
LOG_DIR_NOT_FOUND: Final[int] = _kafka.LogDirNotFoundError.errno
MISMATCHED_ENDPOINT_TYPE: Final[int] = _kafka.MismatchedEndpointTypeError.errno
UNSUPPORTED_ENDPOINT_TYPE: Final[int] = _kafka.UnsupportedEndpointTypeError.errno
SECURITY_DISABLED: Final[int] = _kafka.SecurityDisabledError.errno


class KafkaError(Exception):
    """Base of every engine error; `error_code` is the wire code a client receives."""

    error_code = UNKNOWN_SERVER_ERROR


class OffsetOutOfRangeError(KafkaError):
    error_code = OFFSET_OUT_OF_RANGE


class CorruptRecordError(KafkaError):
    """A batch fails its CRC, is truncated, or its header contradicts itself (CORRUPT_MESSAGE)."""

    error_code = CORRUPT_MESSAGE


class RecordTooLargeError(KafkaError):
    """A batch is larger than max.message.bytes (MESSAGE_TOO_LARGE)."""

    error_code = MESSAGE_TOO_LARGE


class RecordListTooLargeError(KafkaError):
    """One append's batches exceed segment.bytes (RECORD_LIST_TOO_LARGE)."""

    error_code = RECORD_LIST_TOO_LARGE


class UnsupportedForMessageFormatError(KafkaError):
    """A magic 0 or 1 message set: only record batch v2 is stored."""

    error_code = UNSUPPORTED_FOR_MESSAGE_FORMAT


class OutOfOrderSequenceError(KafkaError):
    """An idempotent producer's batch does not follow its previous one (a gap)."""

    error_code = OUT_OF_ORDER_SEQUENCE_NUMBER


class InvalidProducerEpochError(KafkaError):
    """A batch from an older epoch of a producer id than the log has seen (fenced)."""

    error_code = INVALID_PRODUCER_EPOCH


class KafkaStorageError(KafkaError):
    """A disk operation failed (KAFKA_STORAGE_ERROR); the log was left consistent."""

    error_code = KAFKA_STORAGE_ERROR


class InvalidRecordError(KafkaError):
    """A well-formed batch the log refuses (INVALID_RECORD), e.g. count and offsets disagree."""

    error_code = INVALID_RECORD
