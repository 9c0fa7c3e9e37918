"""A workload as OpenMessaging Benchmark (OMB) writes one: a YAML file of camelCase fields
(topics, partitionsPerTopic, messageSize, producerRate, testDurationMinutes, ...), so a user's
existing OMB workload files run unchanged.

Every field is checked as it is read, and a bad one ends in WorkloadError, one line naming the
field and what was expected. A workload kbench tune cannot measure faithfully yet is refused
(`unsupported`), each reason in one line; what it measures differently but still meaningfully
is said (`notes`). Durations can be scaled down for a search (`trial_durations`), and the
Durations say so, for the result to repeat.
"""

import difflib
import math
import os
from dataclasses import dataclass
from typing import Any

import yaml

from scenarios.clients.pipeline import RECORD_SIZE

KEY_DISTRIBUTORS = ("NO_KEY", "KEY_ROUND_ROBIN", "RANDOM_NANO")  # OMB's KeyDistributorType
# smoke mode's durations: seconds, for tests; the numbers it gives mean nothing
SMOKE_TEST_S = 2.0
SMOKE_WARMUP_S = 0.5
MIN_RECORDS = 100  # a trial measures at least this many records, or its percentiles are noise


class WorkloadError(ValueError):
    """The workload file cannot be used; the message is one line for the user."""


@dataclass(frozen=True)
class Workload:
    """One OMB workload, under OMB's field names in snake_case."""

    path: str
    name: str
    topics: int
    partitions_per_topic: int
    message_size: int  # bytes
    payload_file: str | None
    use_randomized_payloads: bool
    key_distributor: str
    subscriptions_per_topic: int
    producers_per_topic: int
    consumer_per_subscription: int
    producer_rate: int  # records/s over all producers; 0: OMB's search for the highest rate
    producer_increment_rate: int
    consumer_backlog_size_gb: int
    test_duration_minutes: int
    warmup_duration_minutes: int

    def unsupported(self) -> list[str]:
        """What this workload asks that kbench tune cannot measure yet, one line each: it
        measures one producer and one consumer on one partition (scenarios.clients.pipeline)."""
        one = {
            "topics": self.topics,
            "partitionsPerTopic": self.partitions_per_topic,
            "producersPerTopic": self.producers_per_topic,
            "subscriptionsPerTopic": self.subscriptions_per_topic,
            "consumerPerSubscription": self.consumer_per_subscription,
        }
        reasons = [
            f"{field}: {value}, but kbench tune measures one producer and one consumer on one "
            "partition of one topic so far"
            for field, value in one.items()
            if value != 1
        ]
        if self.message_size != RECORD_SIZE:
            reasons.append(
                f"messageSize: {self.message_size}, but kbench tune's records are "
                f"{RECORD_SIZE} bytes so far"
            )
        if self.producer_increment_rate:
            reasons.append("producerIncrementRate: kbench tune offers one fixed rate so far")
        if self.consumer_backlog_size_gb:
            reasons.append("consumerBacklogSizeGB: kbench tune measures a tailing consumer so far")
        return reasons

    def notes(self) -> list[str]:
        """What is measured differently from OMB, though the measurement still stands."""
        notes = []
        if self.payload_file or self.use_randomized_payloads:
            notes.append(
                f"payloadFile/useRandomizedPayloads are not sent: each record is {RECORD_SIZE} "
                "zero bytes, which compress far better than real data (mind compression.type)"
            )
        if self.key_distributor != "NO_KEY":
            notes.append(
                f"keyDistributor {self.key_distributor}: records are sent without keys (on one "
                "partition a key chooses nothing)"
            )
        return notes


@dataclass(frozen=True)
class Durations:
    """How long each measurement offers load: `warmup_s` offered but not recorded, then
    `test_s` recorded; `how` says where they come from, for the result to repeat."""

    warmup_s: float
    test_s: float
    how: str


def load(path: str) -> Workload:
    """Read and check an OMB workload file."""
    try:
        with open(path, encoding="utf-8") as file:
            document = yaml.safe_load(file)
    except OSError as exc:
        raise WorkloadError(f"{path}: cannot read it: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" (line {where.line + 1})" if where is not None else ""
        raise WorkloadError(f"{path}: not valid YAML{line}") from None
    if not isinstance(document, dict):
        raise WorkloadError(f"{path}: expected an OMB workload, a mapping of fields such as topics")
    fields = _Fields(path, document)
    workload = Workload(
        path=os.path.abspath(path),
        name=fields.text("name", None) or os.path.splitext(os.path.basename(path))[0],
        topics=fields.whole("topics", minimum=1),
        partitions_per_topic=fields.whole("partitionsPerTopic", minimum=1),
        message_size=fields.whole("messageSize", minimum=1),
        payload_file=fields.text("payloadFile", None),
        use_randomized_payloads=fields.flag("useRandomizedPayloads", False),
        key_distributor=fields.choice("keyDistributor", KEY_DISTRIBUTORS, "NO_KEY"),
        subscriptions_per_topic=fields.whole("subscriptionsPerTopic", minimum=1),
        producers_per_topic=fields.whole("producersPerTopic", minimum=1),
        consumer_per_subscription=fields.whole("consumerPerSubscription", minimum=1),
        producer_rate=fields.whole("producerRate", minimum=0),
        producer_increment_rate=fields.whole("producerIncrementRate", minimum=0, default=0),
        consumer_backlog_size_gb=fields.whole("consumerBacklogSizeGB", minimum=0, default=0),
        test_duration_minutes=fields.whole("testDurationMinutes", minimum=1),
        warmup_duration_minutes=fields.whole("warmupDurationMinutes", minimum=0, default=1),
    )
    fields.check_unknown()
    return workload


def trial_durations(
    workload: Workload, minutes_scale: float = 1.0, smoke: bool = False
) -> Durations:
    """Each measurement's durations: the workload's, scaled by minutes_scale (a search of many
    trials cannot afford OMB's 15 minutes each), or smoke mode's seconds."""
    if smoke:
        durations = Durations(
            SMOKE_WARMUP_S,
            SMOKE_TEST_S,
            f"smoke mode: {SMOKE_TEST_S:g} s each, numbers meaningless",
        )
    else:
        if not (math.isfinite(minutes_scale) and minutes_scale > 0):
            raise WorkloadError(f"--minutes-scale must be a positive number, got {minutes_scale}")
        warmup_s = workload.warmup_duration_minutes * 60 * minutes_scale
        test_s = workload.test_duration_minutes * 60 * minutes_scale
        how = (
            f"testDurationMinutes {workload.test_duration_minutes}, warmupDurationMinutes "
            f"{workload.warmup_duration_minutes}"
        )
        if minutes_scale != 1:
            how = f"{how}, scaled by {minutes_scale:g}: {test_s:g} s each after {warmup_s:g} s"
        durations = Durations(warmup_s, test_s, how)
    if workload.producer_rate and workload.producer_rate * durations.test_s < MIN_RECORDS:
        raise WorkloadError(
            f"{durations.test_s:g} s at producerRate {workload.producer_rate} is fewer than "
            f"{MIN_RECORDS} records to measure; scale the durations less"
        )
    return durations


class _Fields:
    """The workload's fields, read one at a time, each checked; which were read."""

    # OMB fields that matter only to what kbench tune refuses anyway (producerRate 0, a
    # backlog), or to nothing it measures: accepted, checked for type, unused
    _ACCEPTED = {
        "randomBytesRatio": float,
        "randomizedPayloadPoolSize": int,
        "producerStartRate": int,
        "acceptableBacklog": int,
        "producerIncrementSeconds": int,
        "messageRateReceivedForSubscription": int,
        "producerPauseBeforeDrain": int,
        "producerPauseDuringDrain": int,
    }

    def __init__(self, path: str, document: dict[Any, Any]) -> None:
        self.path = path
        self.document = document
        self.read: set[str] = set()

    def _get(self, name: str, default: Any, required: bool) -> Any:
        self.read.add(name)
        if name not in self.document or self.document[name] is None:
            if required:
                raise WorkloadError(f"{self.path}: {name} is missing (OMB's workload format)")
            return default
        return self.document[name]

    def whole(self, name: str, minimum: int, default: int | None = None) -> int:
        value = self._get(name, default, required=default is None)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise WorkloadError(
                f"{self.path}: {name} must be a whole number of at least {minimum}, got {value!r}"
            )
        return value

    def text(self, name: str, default: str | None) -> str | None:
        value = self._get(name, default, required=False)
        if value is not None and not isinstance(value, str):
            raise WorkloadError(f"{self.path}: {name} must be a string, got {value!r}")
        return value

    def flag(self, name: str, default: bool) -> bool:
        value = self._get(name, default, required=False)
        if not isinstance(value, bool):
            raise WorkloadError(f"{self.path}: {name} must be true or false, got {value!r}")
        return value

    def choice(self, name: str, choices: tuple[str, ...], default: str) -> str:
        value = self._get(name, default, required=False)
        if value not in choices:
            raise WorkloadError(
                f"{self.path}: {name} must be one of {', '.join(choices)}, got {value!r}"
            )
        return str(value)

    def check_unknown(self) -> None:
        """Refuse a field OMB does not have (a misspelling would otherwise be ignored)."""
        for name, kind in self._ACCEPTED.items():
            value = self.document.get(name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, kind | int)):
                raise WorkloadError(f"{self.path}: {name} must be a number, got {value!r}")
        known = self.read | set(self._ACCEPTED)
        for name in self.document:
            if name not in known:
                close = difflib.get_close_matches(str(name), sorted(known), n=1)
                hint = f": did you mean {close[0]}?" if close else " (not an OMB workload field)"
                raise WorkloadError(f"{self.path}: unknown field {name}{hint}")
