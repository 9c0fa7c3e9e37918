"""LogConfig: the log's settings under Kafka's property names, with Kafka's defaults and rules.

Each setting has a topic-level name (segment.bytes) and broker-level names (log.segment.bytes),
exactly as in Kafka; from_properties accepts any of them. A setting is declared once, as a
dataclass field made by `setting()`: its default, the values Kafka allows (ConfigDef's
Range.atLeast/between and ValidString.in, with Kafka's -1 conventions), its names and `doc`, a
sentence or two on what it does (DescribeConfigs' documentation). Parsing, validation, the names
the broker recognises and what DescribeConfigs reports all derive from these declarations;
KafkaConfig declares its settings the same way.
"""

import re
from collections.abc import Callable, Mapping
from dataclasses import Field, dataclass, field, fields
from typing import Any

INT_MAX = (1 << 31) - 1  # Kafka's INT type
LONG_MAX = (1 << 63) - 1  # Kafka's LONG type
_INTEGER = re.compile(r"[+-]?[0-9]+")  # as Java's parseInt: no "1_000", no "1e3"
_SETTING = "kafka"  # the field metadata key that holds a Setting


def _shown(value: object) -> str:
    return repr(value) if isinstance(value, str) else str(value)


@dataclass(frozen=True)
class Range:
    """ConfigDef.Range: low <= value <= high (high is the type's limit for Kafka's atLeast), or
    -1 where Kafka gives -1 a meaning (`minus_one`, e.g. "unlimited")."""

    low: int
    high: int
    minus_one: str = ""

    def allows(self, value: object) -> bool:
        if not isinstance(value, int):
            return False
        return self.low <= value <= self.high or (bool(self.minus_one) and value == -1)

    def describe(self, value: object) -> str:
        bounds = f"at least {self.low}"
        if self.high not in (INT_MAX, LONG_MAX) or (isinstance(value, int) and value > self.high):
            bounds = f"between {self.low} and {self.high}"
        return f"-1 ({self.minus_one}) or {bounds}" if self.minus_one else bounds


@dataclass(frozen=True)
class OneOf:
    """ConfigDef.ValidString.in."""

    values: tuple[str, ...]

    def allows(self, value: object) -> bool:
        return value in self.values

    def describe(self, value: object) -> str:
        return " or ".join(self.values)


@dataclass(frozen=True)
class NonEmpty:
    """A string setting that must be given a value (log.dirs: Kafka needs a directory)."""

    what: str

    def allows(self, value: object) -> bool:
        return bool(value)

    def describe(self, value: object) -> str:
        return self.what


Rule = Range | OneOf | NonEmpty


@dataclass(frozen=True)
class Setting:
    """One setting's names and rule; the field it belongs to holds its default and type."""

    names: tuple[str, ...]  # Kafka's names; when several are given, the first listed wins
    rule: Rule | None
    units: Mapping[str, int]  # names given in coarser units, e.g. log.retention.hours: ms/hour
    parse: Callable[[str], Any] | None  # a value that is not a plain int, bool or string
    doc: str  # what the setting does, in a sentence or two: DescribeConfigs' `documentation`

    def read(self, name: str, raw: str | int, default: object) -> Any:
        """The value of property `name`, parsed and checked; ValueError naming it otherwise."""
        text = str(raw).strip()
        value: Any = text
        given: object = text  # as the user wrote it, for the message
        if self.parse is not None:
            value = self.parse(text)
        elif isinstance(default, bool):
            if text.lower() not in ("true", "false"):
                raise ValueError(f"{name} must be true or false, got {raw!r}")
            value = text.lower() == "true"
        elif isinstance(default, int):
            if not _INTEGER.fullmatch(text):
                raise ValueError(f"{name} must be an integer, got {raw!r}")
            value = given = int(text)
            if value >= 0:  # a negative value keeps its meaning (-1: unlimited) in any unit
                value *= self.units.get(name, 1)
        self.check(name, value, given)
        return value

    def check(self, name: str, value: object, given: object = None) -> None:
        if self.rule is not None and not self.rule.allows(value):
            got = _shown(value if given is None else given)
            raise ValueError(f"{name} must be {self.rule.describe(value)}, got {got}")


def setting(
    default: object,
    rule: Rule | None,
    *names: str,
    doc: str,
    units: Mapping[str, int] | None = None,
    parse: Callable[[str], Any] | None = None,
) -> Any:
    """A dataclass field that is a Kafka setting (see the module docstring)."""
    return field(
        default=default, metadata={_SETTING: Setting(names, rule, units or {}, parse, doc)}
    )


def settings(cls: type) -> list[tuple[Field, Setting]]:
    """The fields of dataclass `cls` that are settings, with their Setting."""
    return [(f, f.metadata[_SETTING]) for f in fields(cls) if _SETTING in f.metadata]


def property_names(cls: type) -> dict[str, str]:
    """Every property name of `cls`'s settings, to the field it sets."""
    return {name: f.name for f, s in settings(cls) for name in s.names}


def read_settings(cls: type, properties: Mapping[str, str | int]) -> dict[str, Any]:
    """The field values `properties` give for `cls`'s settings, checked; others are ignored."""
    values = {}
    for f, s in settings(cls):
        name = next((name for name in s.names if name in properties), None)
        if name is not None:
            values[f.name] = s.read(name, properties[name], f.default)
    return values


def check_settings(config: object) -> None:
    """Every setting of a dataclass instance against its rule (for configs built in code)."""
    for f, s in settings(type(config)):
        s.check(s.names[0], getattr(config, f.name))


_DAY_MS = 24 * 3_600_000


@dataclass(frozen=True, slots=True)
class LogConfig:
    # LegacyRecord.RECORD_OVERHEAD_V0, as Kafka's segment.bytes; at most INT_MAX, since index
    # positions are int32. (Kafka 4.0 raised log.segment.bytes's floor to 1 MiB, KIP-1030;
    # kbench keeps 14 for both names, so benchmarks and tests can roll small segments.)
    segment_bytes: int = setting(
        1 << 30,
        Range(14, INT_MAX),
        "segment.bytes",
        "log.segment.bytes",
        doc="The size a log segment file may grow to; a write that would pass it starts a new "
        "segment.",
    )
    segment_ms: int = setting(
        7 * _DAY_MS,
        Range(1, LONG_MAX),
        "segment.ms",
        "log.roll.ms",
        "log.roll.hours",
        units={"log.roll.hours": 3_600_000},
        doc="How long the active segment stays open before the log rolls a new one even though "
        "it is not full, so that retention can remove old data.",
    )
    # Kafka allows 4; kbench wants room for one offset index entry (8 bytes)
    segment_index_bytes: int = setting(
        10 * 1024 * 1024,
        Range(8, INT_MAX),
        "segment.index.bytes",
        "log.index.size.max.bytes",
        doc="The size of a segment's offset index file, allocated up front; a full index rolls "
        "the segment.",
    )
    index_interval_bytes: int = setting(
        4096,
        Range(0, INT_MAX),
        "index.interval.bytes",
        "log.index.interval.bytes",
        doc="How many bytes of records lie between two offset index entries: smaller makes the "
        "index denser and lookups shorter, at the cost of a larger index.",
    )
    # Kafka checks no range here and treats any negative as unlimited; kbench keeps to -1
    retention_bytes: int = setting(
        -1,
        Range(0, LONG_MAX, "unlimited"),
        "retention.bytes",
        "log.retention.bytes",
        doc="How large a partition's log may grow before its oldest segments are deleted; -1 "
        "sets no size limit.",
    )
    # Kafka's topic-level rule (atLeast(-1)); at broker level Kafka turns any negative into -1
    retention_ms: int = setting(
        7 * _DAY_MS,
        Range(0, LONG_MAX, "unlimited"),
        "retention.ms",
        "log.retention.ms",
        "log.retention.minutes",
        "log.retention.hours",
        units={"log.retention.minutes": 60_000, "log.retention.hours": 3_600_000},
        doc="How long a segment is kept, counted from its newest record, before it is deleted; "
        "-1 sets no time limit.",
    )
    flush_messages: int = setting(
        LONG_MAX,
        Range(1, LONG_MAX),
        "flush.messages",
        "log.flush.interval.messages",
        doc="How many messages a partition's log takes before it is forced to disk with fsync; "
        "the default leaves flushing to the operating system.",
    )
    flush_ms: int = setting(
        LONG_MAX,
        Range(0, LONG_MAX),
        "flush.ms",
        "log.flush.interval.ms",
        doc="How long a message may sit in a partition's log before the log is forced to disk "
        "with fsync; the default leaves flushing to the operating system.",
    )
    file_delete_delay_ms: int = setting(
        60_000,
        Range(0, LONG_MAX),
        "file.delete.delay.ms",
        "log.segment.delete.delay.ms",
        doc="How long a deleted segment's files are kept on disk before they are removed.",
    )
    max_message_bytes: int = setting(
        1_048_588,
        Range(0, INT_MAX),
        "max.message.bytes",
        "message.max.bytes",
        doc="The largest record batch the broker accepts, measured after compression.",
    )
    message_timestamp_type: str = setting(
        "CreateTime",
        OneOf(("CreateTime", "LogAppendTime")),
        "message.timestamp.type",
        "log.message.timestamp.type",
        doc="Which time a record's timestamp holds: the producer's (CreateTime) or the broker's "
        "when it appended the record (LogAppendTime).",
    )

    # replication (topic level, with the broker's as default)
    min_insync_replicas: int = setting(
        1,
        Range(1, INT_MAX),
        "min.insync.replicas",
        doc="With acks=all, how many in-sync replicas must have a write for it to succeed; "
        "with fewer the producer gets NOT_ENOUGH_REPLICAS.",
    )
    unclean_leader_election_enable: bool = setting(
        False,
        None,
        "unclean.leader.election.enable",
        doc="Whether a replica outside the ISR may become leader when no in-sync replica is "
        "left, keeping the partition available at the risk of losing records.",
    )

    def __post_init__(self) -> None:
        check_settings(self)

    @classmethod
    def from_properties(
        cls, properties: Mapping[str, str | int], base: "LogConfig | None" = None
    ) -> "LogConfig":
        """A config from Kafka property names over `base` (or the defaults); names that are not
        log settings are ignored. ValueError names the property and what it allows."""
        values = {f.name: getattr(base or cls(), f.name) for f in fields(cls)}
        values.update(read_settings(cls, properties))
        return cls(**values)


# The topic-level name is each setting's first.
TOPIC_CONFIG_FIELDS = {s.names[0]: f.name for f, s in settings(LogConfig)}
TOPIC_CONFIG_NAMES = frozenset(TOPIC_CONFIG_FIELDS)
