"""LogConfig: the log's settings under Kafka's property names, with Kafka's defaults.

Each setting has a topic-level name (segment.bytes) and a broker-level default name
(log.segment.bytes), exactly as in Kafka; either is accepted by from_properties.
"""

from collections.abc import Mapping
from dataclasses import dataclass, fields

_LONG_MAX = (1 << 63) - 1
_INT_MAX = (1 << 31) - 1


@dataclass(frozen=True, slots=True)
class LogConfig:
    segment_bytes: int = 1 << 30  # segment.bytes / log.segment.bytes
    segment_ms: int = 7 * 24 * 3600 * 1000  # segment.ms / log.roll.ms
    segment_index_bytes: int = 10 * 1024 * 1024  # segment.index.bytes / log.index.size.max.bytes
    index_interval_bytes: int = 4096  # index.interval.bytes / log.index.interval.bytes
    retention_bytes: int = -1  # retention.bytes / log.retention.bytes (-1: unlimited)
    retention_ms: int = 7 * 24 * 3600 * 1000  # retention.ms / log.retention.ms (-1: unlimited)
    flush_messages: int = _LONG_MAX  # flush.messages / log.flush.interval.messages
    flush_ms: int = _LONG_MAX  # flush.ms / log.flush.interval.ms
    file_delete_delay_ms: int = 60_000  # file.delete.delay.ms / log.segment.delete.delay.ms
    max_message_bytes: int = 1_048_588  # max.message.bytes / message.max.bytes
    message_timestamp_type: str = (
        "CreateTime"  # message.timestamp.type / log.message.timestamp.type
    )

    def __post_init__(self) -> None:
        if not 14 <= self.segment_bytes <= _INT_MAX:  # positions in the index are int32
            raise ValueError(
                f"segment.bytes must be between 14 and {_INT_MAX}, got {self.segment_bytes}"
            )
        if self.segment_index_bytes < 8:
            raise ValueError(
                f"segment.index.bytes must be at least 8, got {self.segment_index_bytes}"
            )
        if self.index_interval_bytes < 0:
            raise ValueError(f"index.interval.bytes must be >= 0, got {self.index_interval_bytes}")
        if self.segment_ms < 1:
            raise ValueError(f"segment.ms must be at least 1, got {self.segment_ms}")
        if self.flush_messages < 1 or self.flush_ms < 0:
            raise ValueError("flush.messages must be >= 1 and flush.ms >= 0")
        if self.message_timestamp_type not in ("CreateTime", "LogAppendTime"):
            raise ValueError(
                "message.timestamp.type must be CreateTime or LogAppendTime, "
                f"got {self.message_timestamp_type!r}"
            )

    @classmethod
    def from_properties(
        cls, properties: Mapping[str, str | int], base: "LogConfig | None" = None
    ) -> "LogConfig":
        """A config from Kafka property names; names that are not log settings are ignored."""
        values = {f.name: getattr(base or cls(), f.name) for f in fields(cls)}
        # Coarser units first, so log.retention.ms beats .minutes beats .hours, as in Kafka.
        for key, raw in sorted(properties.items(), key=lambda item: -_SCALE.get(item[0], 1)):
            name = PROPERTY_NAMES.get(key)
            if name is None:
                continue
            scale = _SCALE.get(key, 1)
            if name == "message_timestamp_type":
                values[name] = str(raw)
                continue
            try:
                number = int(raw)
            except (TypeError, ValueError):
                raise ValueError(f"{key} must be an integer, got {raw!r}") from None
            values[name] = number * scale if number >= 0 else number
        return cls(**values)


PROPERTY_NAMES: dict[str, str] = {
    "segment.bytes": "segment_bytes",
    "log.segment.bytes": "segment_bytes",
    "segment.ms": "segment_ms",
    "log.roll.ms": "segment_ms",
    "log.roll.hours": "segment_ms",
    "segment.index.bytes": "segment_index_bytes",
    "log.index.size.max.bytes": "segment_index_bytes",
    "index.interval.bytes": "index_interval_bytes",
    "log.index.interval.bytes": "index_interval_bytes",
    "retention.bytes": "retention_bytes",
    "log.retention.bytes": "retention_bytes",
    "retention.ms": "retention_ms",
    "log.retention.ms": "retention_ms",
    "log.retention.minutes": "retention_ms",
    "log.retention.hours": "retention_ms",
    "flush.messages": "flush_messages",
    "log.flush.interval.messages": "flush_messages",
    "flush.ms": "flush_ms",
    "log.flush.interval.ms": "flush_ms",
    "file.delete.delay.ms": "file_delete_delay_ms",
    "log.segment.delete.delay.ms": "file_delete_delay_ms",
    "max.message.bytes": "max_message_bytes",
    "message.max.bytes": "max_message_bytes",
    "message.timestamp.type": "message_timestamp_type",
    "log.message.timestamp.type": "message_timestamp_type",
}

TOPIC_CONFIG_NAMES = frozenset(
    name for name in PROPERTY_NAMES if not name.startswith("log.") and name != "message.max.bytes"
)

_SCALE = {
    "log.roll.hours": 3_600_000,
    "log.retention.minutes": 60_000,
    "log.retention.hours": 3_600_000,
}
