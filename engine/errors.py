"""Errors raised by the engine, each carrying the Kafka protocol error code it maps to.

The codes are Kafka's (org.apache.kafka.common.protocol.Errors), so the protocol layer answers a
client with the same code Apache Kafka would send for the same fault.
"""


class KafkaError(Exception):
    """Base of every engine error; `error_code` is the wire code a client receives."""

    error_code = -1  # UNKNOWN_SERVER_ERROR


class OffsetOutOfRangeError(KafkaError):
    error_code = 1


class CorruptRecordError(KafkaError):
    """A batch fails its CRC, is truncated, or its header contradicts itself (CORRUPT_MESSAGE)."""

    error_code = 2


class RecordTooLargeError(KafkaError):
    """A batch is larger than max.message.bytes (MESSAGE_TOO_LARGE)."""

    error_code = 10


class RecordListTooLargeError(KafkaError):
    """One append's batches exceed segment.bytes (RECORD_LIST_TOO_LARGE)."""

    error_code = 18


class UnsupportedForMessageFormatError(KafkaError):
    """A magic 0 or 1 message set: only record batch v2 is stored."""

    error_code = 43


class OutOfOrderSequenceError(KafkaError):
    """An idempotent producer's batch does not follow its previous one (a gap)."""

    error_code = 45


class InvalidProducerEpochError(KafkaError):
    """A batch from an older epoch of a producer id than the log has seen (fenced)."""

    error_code = 47


class KafkaStorageError(KafkaError):
    """A disk operation failed (KAFKA_STORAGE_ERROR); the log was left consistent."""

    error_code = 56


class InvalidRecordError(KafkaError):
    """A well-formed batch the log refuses (INVALID_RECORD), e.g. count and offsets disagree."""

    error_code = 87
