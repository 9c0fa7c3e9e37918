"""A workload as OpenMessaging Benchmark (OMB) writes one: a YAML file of camelCase fields
(topics, partitionsPerTopic, messageSize, producerRate, testDurationMinutes, ...), so a user's
existing OMB workload files run unchanged.

Every field is checked as it is read, and a bad one ends in WorkloadError, one line naming the
field and what was expected; so is a payloadFile that is missing (a relative one is looked for
beside the workload file, then, as OMB does, in the working directory) or not messageSize bytes
long (OMB refuses it too). A workload kbench tune cannot measure faithfully yet is refused
(`unsupported`), each reason in one line; what it measures differently but still meaningfully
is said (`notes`). `load_shape` is what scenarios.clients.pipeline.Load needs of it. Durations
can be scaled down for a search (`trial_durations`), and the Durations say so, for the result to
repeat.
"""

import dataclasses
import difflib
import math
import os
from dataclasses import dataclass
from typing import Any

import yaml

from scenarios.clients.pipeline import INDEX_BYTES

KEY_DISTRIBUTORS = ("NO_KEY", "KEY_ROUND_ROBIN", "RANDOM_NANO")  # OMB's KeyDistributorType
# smoke mode's durations: seconds, for tests; the numbers it gives mean nothing
SMOKE_TEST_S = 2.0
SMOKE_WARMUP_S = 0.5
MIN_RECORDS = 100  # a trial measures at least this many records, or its percentiles are noise
# Producer and consumer processes (one each) a measurement may start. Each is a Python loop with
# librdkafka's threads; on 2 cores, beside the broker, more would wait for a CPU, and that
# wait, not the broker or the settings, would be the latency measured.
MAX_CLIENT_PROCESSES = 8


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
    random_bytes_ratio: float = 0.0  # of each value random, with useRandomizedPayloads
    randomized_payload_pool_size: int = 0

    @property
    def client_processes(self) -> int:
        """Producers and consumers over all topics, one process each."""
        consumers = self.subscriptions_per_topic * self.consumer_per_subscription
        return self.topics * (self.producers_per_topic + consumers)

    def load_shape(self) -> dict[str, Any]:
        """scenarios.clients.pipeline.Load's fields for this workload, but the rate and counts."""
        return {
            "topics": self.topics,
            "partitions": self.partitions_per_topic,
            "producers": self.producers_per_topic,
            "subscriptions": self.subscriptions_per_topic,
            "consumers": self.consumer_per_subscription,
            "message_size": self.message_size,
            # OMB sends the randomized pool instead of the file when asked for both
            "payload_file": None if self.use_randomized_payloads else self.payload_file,
            "random_bytes_ratio": self.random_bytes_ratio if self.use_randomized_payloads else None,
            "payload_pool": max(self.randomized_payload_pool_size, 1),
            "key_distributor": self.key_distributor,
        }

    def unsupported(self) -> list[str]:
        """What this workload asks that kbench tune cannot measure yet, one line each."""
        reasons = []
        if self.client_processes > MAX_CLIENT_PROCESSES:
            reasons.append(
                f"topics x (producersPerTopic + subscriptionsPerTopic x consumerPerSubscription): "
                f"{self.client_processes} client processes, but this machine measures at most "
                f"{MAX_CLIENT_PROCESSES} faithfully (each waiting for a CPU would be measured)"
            )
        if self.producer_increment_rate:
            reasons.append("producerIncrementRate: kbench tune offers one fixed rate so far")
        if self.consumer_backlog_size_gb:
            reasons.append("consumerBacklogSizeGB: kbench tune measures a tailing consumer so far")
        return reasons

    def notes(self) -> list[str]:
        """What is measured differently from OMB, though the measurement still stands."""
        if not (self.payload_file or self.use_randomized_payloads):
            return [
                f"no payloadFile or useRandomizedPayloads: each record is {self.message_size} "
                "zero bytes, which compress far better than real data (mind compression.type)"
            ]
        return [
            f"the first {INDEX_BYTES} bytes of each value are the record's index (how the "
            "consumers time it), the payload's bytes after them"
        ]


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
        random_bytes_ratio=fields.fraction("randomBytesRatio"),
        randomized_payload_pool_size=fields.whole("randomizedPayloadPoolSize", 0, default=0),
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
    if workload.message_size < INDEX_BYTES:
        raise WorkloadError(
            f"{path}: messageSize must be at least {INDEX_BYTES} bytes (each record carries its "
            f"index in its first {INDEX_BYTES}), got {workload.message_size}"
        )
    if workload.use_randomized_payloads:  # OMB then ignores payloadFile
        if workload.randomized_payload_pool_size < 1:
            raise WorkloadError(
                f"{path}: randomizedPayloadPoolSize must be at least 1 with "
                "useRandomizedPayloads (the values are drawn from that pool)"
            )
    elif workload.payload_file is not None:
        found = _payload_path(path, workload.payload_file, workload.message_size)
        workload = dataclasses.replace(workload, payload_file=found)
    return workload


def _payload_path(path: str, payload_file: str, message_size: int) -> str:
    """The payload file's absolute path, checked to hold messageSize bytes."""
    beside = os.path.join(os.path.dirname(os.path.abspath(path)), payload_file)
    found = next((p for p in (beside, os.path.abspath(payload_file)) if os.path.isfile(p)), None)
    if found is None:
        raise WorkloadError(
            f"{path}: payloadFile {payload_file} not found beside the workload file or in the "
            "working directory"
        )
    if (size := os.path.getsize(found)) != message_size:
        raise WorkloadError(
            f"{path}: payloadFile {payload_file} holds {size} bytes, but messageSize is "
            f"{message_size} (OMB refuses it too)"
        )
    return found


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

    def fraction(self, name: str) -> float:
        """A number from 0 to 1; 0 when absent."""
        value = self._get(name, 0.0, required=False)
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise WorkloadError(f"{self.path}: {name} must be a number from 0 to 1, got {value!r}")
        return float(value)

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
