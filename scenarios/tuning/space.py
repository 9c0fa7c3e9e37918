"""The search space: properties under Kafka's names, with Kafka's defaults and the ranges
searched, from one table (PROPERTIES): the producer's and the consumer's, the topic's (set at
creation) and the broker's (the engine started with them); a user's YAML that narrows or widens
it; the durability floor the search never goes below (`--require acks=all`,
`--require min.insync.replicas>=2`); and the one mapping from Kafka's (Java client) names to
librdkafka's, which the measurement's clients take.

Client defaults are Apache Kafka 4.0's Java clients' (linger.ms 5 since KIP-1030, acks all), not
librdkafka's: the recommendation is a diff against what a Kafka user starts from, and every
measurement passes every property explicitly, so librdkafka's own defaults never apply. Topic
and broker defaults come from the engine's config table (engine.storage.config.LogConfig,
engine.broker.config.KafkaConfig), which holds Kafka's.

A space YAML maps property names to a range, a list of values, one value, or `search`:

    linger.ms: {low: 0, high: 20}     # integers from 0 to 20
    compression.type: [none, lz4]     # these values only
    acks: all                         # fixed: not searched
    flush.messages: [1, 1000, never]  # never: Kafka's Long.MAX_VALUE, no per-message fsync
    segment.bytes: search             # the table's range, for a property fixed by default

A property not named keeps the table's: its range, or its default where the table fixes it.
"""

import difflib
import re
from dataclasses import dataclass, replace
from typing import Any

import optuna
import yaml

from engine.broker.config import KafkaConfig
from engine.storage.config import INT_MAX, LONG_MAX, LogConfig, property_names

Value = int | str
SCOPES = ("producer", "consumer", "topic", "broker")  # one properties file each
NEVER = LONG_MAX  # Kafka's "never" for the flush intervals (no per-message fsync)
WORKLOADS = 0  # partitions: the workload's partitionsPerTopic
CREATION = ("partitions", "replication.factor")  # CreateTopics' own fields, not topic configs


class SpaceError(ValueError):
    """The space or a requirement cannot be used; the message is one line for the user."""


@dataclass(frozen=True)
class Property:
    """A property: Kafka's name, its scope (which client takes it, the topic or the broker),
    Kafka's default, and either an integer range [low, high] (log: sampled on a log scale) or
    `choices`. `limits`: the values Kafka accepts, which a user's range may widen to;
    `durability`: the values from least to most durable, where an enumeration decides what
    survives a failure, or `more_durable` ("higher" or "lower") for such a number;
    `fixed`: kept at its default unless the space file names it; `librdkafka`: its name there,
    where it differs."""

    name: str
    scope: str  # one of SCOPES
    default: Value
    low: int = 0
    high: int = 0
    log: bool = False
    choices: tuple[Value, ...] = ()
    limits: tuple[int, int] = (0, 0)
    durability: tuple[Value, ...] = ()
    more_durable: str = ""
    fixed: bool = False
    librdkafka: str = ""
    librdkafka_unit: int = 1  # librdkafka's value is Kafka's divided by this (bytes -> KiB)

    @property
    def searched(self) -> bool:
        """Whether the search varies it (more than one value allowed)."""
        return len(self.choices) > 1 if self.choices else self.low < self.high

    @property
    def values(self) -> tuple[Value, ...]:
        """The lowest and the highest value allowed (or every choice)."""
        return self.choices or (self.low, self.high)

    @property
    def numbers(self) -> list[int]:
        """`values` of an integer property."""
        return [v for v in self.values if isinstance(v, int)]

    def allows(self, value: Value) -> bool:
        """Whether `value` lies in the range searched."""
        if self.choices:
            return value in self.choices
        return isinstance(value, int) and self.low <= value <= self.high

    def suggest(self, trial: optuna.Trial) -> Value:
        if self.choices:
            if len(self.choices) == 1:  # fixed: not a search dimension
                return self.choices[0]
            chosen = trial.suggest_categorical(self.name, self.choices)
            assert isinstance(chosen, int | str)  # one of self.choices
            return chosen
        if self.low == self.high:
            return self.low
        return trial.suggest_int(self.name, self.low, self.high, log=self.log)

    def describe(self) -> str:
        if not self.searched:
            return f"{self.name}={_shown(self.values[0])}"
        if self.choices:
            return f"{self.name} in {{{', '.join(map(_shown, self.choices))}}}"
        return f"{self.name} {self.low}-{self.high}{' (log)' if self.log else ''}"


def _shown(value: Value) -> str:
    if value == NEVER:
        return "never"
    return "the workload's" if value == WORKLOADS else str(value)


def _engine_default(name: str) -> int:
    """The engine's default for a topic or broker property: one table holds each (Kafka's)."""
    for table in (LogConfig, KafkaConfig):
        field = property_names(table).get(name)
        if field is not None:
            value = getattr(table(), field)
            assert isinstance(value, int)
            return value
    raise KeyError(name)


PROPERTIES: tuple[Property, ...] = (
    # producer: how records are batched, compressed and acknowledged
    Property("batch.size", "producer", 16384, 1024, 1 << 20, log=True, limits=(1, INT_MAX)),
    Property("linger.ms", "producer", 5, 0, 100, limits=(0, 900_000)),
    Property(
        "compression.type",
        "producer",
        "none",
        choices=("none", "gzip", "snappy", "lz4", "zstd"),
    ),
    Property("acks", "producer", "all", choices=("0", "1", "all"), durability=("0", "1", "all")),
    Property("max.in.flight.requests.per.connection", "producer", 5, 1, 5, limits=(1, 1_000_000)),
    # what the producer may hold unsent: it matters only once the producer outruns the broker
    # (send() then blocks), so fixed unless named; librdkafka counts it in KiB
    Property(
        "buffer.memory", "producer", 32 << 20, 1 << 20, 1 << 28, log=True,
        limits=(1 << 10, INT_MAX), fixed=True,
        librdkafka="queue.buffering.max.kbytes", librdkafka_unit=1 << 10,
    ),
    # consumer: how much a fetch waits for, and how much it may bring
    Property("fetch.min.bytes", "consumer", 1, 1, 1 << 20, log=True, limits=(1, 100_000_000)),
    Property(
        "fetch.max.wait.ms", "consumer", 500, 0, 1000, limits=(0, 300_000),
        librdkafka="fetch.wait.max.ms",
    ),
    Property(
        "max.partition.fetch.bytes", "consumer", 1 << 20, 1 << 14, 1 << 24, log=True,
        limits=(1, 1_000_000_000),
    ),
    # the records one poll hands the application: the measuring consumer takes each in
    # microseconds, so fixed unless named; librdkafka has no such property: the pipeline's
    # confluent consumer asks consume() for at most this many
    Property(
        "max.poll.records", "consumer", 500, 1, 10_000, log=True, limits=(1, INT_MAX),
        fixed=True,
    ),
    # topic: configs given at creation (CreateTopics), so they apply on any cluster. All fixed
    # unless the space file names them, so the default search stays the clients' 7 dimensions
    # (about 20 trials): a trial at one partition's rates writes far less than a segment, so
    # segment.bytes would not move the latency; the other three decide durability, which only
    # costs latency, so the search would always take the least durable: they are for the
    # floor (--require) to raise, not for the search to lower.
    Property(
        "segment.bytes", "topic", _engine_default("segment.bytes"), 1 << 20, 1 << 30, log=True,
        limits=(1 << 20, INT_MAX), fixed=True,  # Kafka 4.0's floor is 1 MiB (KIP-1030)
    ),
    Property(
        "min.insync.replicas", "topic", _engine_default("min.insync.replicas"), 1, 3,
        limits=(1, INT_MAX), more_durable="higher", fixed=True,
    ),
    # fsync after this many messages; never (Long.MAX_VALUE) leaves it to the OS, as Kafka does
    Property(
        "flush.messages", "topic", _engine_default("flush.messages"),
        choices=(1, 10, 100, 1000, NEVER), limits=(1, LONG_MAX), more_durable="lower", fixed=True,
    ),
    # CreateTopics' own fields, not configs. Partitions: the workload's partitionsPerTopic
    # unless the space file searches them (a search of them changes the workload's layout, so
    # it is the user's to ask for: `partitions: {low: 1, high: 16}`)
    Property("partitions", "topic", WORKLOADS, 1, 64, log=True, limits=(1, 100_000), fixed=True),
    # without it the broker's default.replication.factor
    Property(
        "replication.factor", "topic", _engine_default("default.replication.factor"), 1, 3,
        limits=(1, 32_767), more_durable="higher", fixed=True,
    ),
    # broker: server.properties, which only an engine started here can take (it restarts with
    # them). Only what the engine implements: Kafka's num.replica.fetchers, num.io.threads,
    # num.network.threads and socket.*.buffer.bytes it ignores, so searching them would measure
    # nothing. Both act between a leader and its followers (acks=all waits for their fetch), so
    # they matter only with replication.factor above 1: fixed unless named.
    Property(
        "replica.fetch.min.bytes", "broker", _engine_default("replica.fetch.min.bytes"), 1,
        1 << 20, log=True, limits=(1, INT_MAX), fixed=True,
    ),
    Property(
        "replica.fetch.wait.max.ms", "broker", _engine_default("replica.fetch.wait.max.ms"), 0,
        1000, limits=(0, 29_999), fixed=True,  # Kafka: below replica.lag.time.max.ms (30 s)
    ),
)  # fmt: skip
BY_NAME = {p.name: p for p in PROPERTIES}
DEFAULTS: dict[str, Value] = {p.name: p.default for p in PROPERTIES}


def _at(prop: Property, value: Value) -> Property:
    """`prop` fixed at `value`."""
    if prop.choices:
        return replace(prop, choices=(value,))
    assert isinstance(value, int)
    return replace(prop, low=value, high=value)


# What a space file does not name: the table's range, or its default where the table fixes it
TABLE = {p.name: _at(p, p.default) if p.fixed else p for p in PROPERTIES}


@dataclass(frozen=True)
class Space:
    """The properties searched, each with its range; `floor`: the requirements given."""

    properties: tuple[Property, ...]
    floor: tuple[str, ...] = ()

    def suggest(self, trial: optuna.Trial) -> dict[str, Value]:
        """One trial's settings: every property, searched or fixed."""
        return {p.name: p.suggest(trial) for p in self.properties}

    def contains(self, settings: dict[str, Value]) -> bool:
        return all(p.allows(settings[p.name]) for p in self.properties)

    def describe(self) -> str:
        return "; ".join(p.describe() for p in self.properties)

    def highest(self, name: str) -> int:
        """The highest value the space allows an integer property (its default if absent)."""
        prop = next(
            (p for p in self.properties if p.name == name),
            _at(BY_NAME[name], BY_NAME[name].default),
        )
        return max(prop.numbers)

    def baseline(self) -> dict[str, Value]:
        """Kafka's defaults, each durability property the space rules its default out of at the
        least durable value it allows (the floor's): what the search starts from and the proof
        compares with, so neither goes below the floor."""
        settings = {p.name: p.default for p in self.properties}
        for p in self.properties:
            if p.allows(p.default) or not (p.durability or p.more_durable):
                continue
            if p.durability:
                settings[p.name] = next(v for v in p.durability if p.allows(v))
            else:
                least = min if p.more_durable == "higher" else max
                settings[p.name] = least(p.numbers)
        return settings


def default_space() -> Space:
    return Space(tuple(TABLE.values()))


def load_space(path: str | None) -> Space:
    """The table, with the ranges a user's YAML file gives (None: the table as it is)."""
    if path is None:
        return default_space()
    try:
        with open(path, encoding="utf-8") as file:
            document = yaml.safe_load(file)
    except OSError as exc:
        raise SpaceError(f"--space {path}: cannot read it: {exc.strerror}") from None
    except yaml.YAMLError:
        raise SpaceError(f"--space {path}: not valid YAML") from None
    if document is None:
        return default_space()
    if not isinstance(document, dict):
        raise SpaceError(f"--space {path}: expected a mapping of property names to ranges")
    properties = dict(TABLE)
    for name, given in document.items():
        prop = _known(str(name), f"--space {path}")
        properties[prop.name] = _ranged(prop, given, f"--space {path}: {name}")
    return Space(tuple(properties.values()))


def _ranged(prop: Property, given: Any, where: str) -> Property:
    """`prop` searched over what the user gave: {low, high}, a list of values, one value, or
    `search` (the table's range)."""
    if given == "search":
        return prop
    enumeration = isinstance(prop.default, str)
    if isinstance(given, dict):
        if enumeration:
            choices = ", ".join(map(str, prop.choices))
            raise SpaceError(f"{where}: takes a list of values from {choices}")
        if set(given) - {"low", "high", "log"} or not {"low", "high"} <= set(given):
            raise SpaceError(f"{where}: expected {{low: N, high: N}} (and optionally log: true)")
        low, high = (_whole(prop, given[k], where) for k in ("low", "high"))
        log = given.get("log", prop.log)
        if low > high:
            raise SpaceError(f"{where}: low {low} is above high {high}")
        if not isinstance(log, bool):
            raise SpaceError(f"{where}: log must be true or false, got {log!r}")
        if log and low < 1:
            raise SpaceError(f"{where}: a log scale needs low of at least 1, got {low}")
        return replace(prop, low=low, high=high, log=log, choices=())
    values = given if isinstance(given, list) else [given]
    if not values:
        raise SpaceError(f"{where}: the list of values is empty")
    if enumeration:
        checked = tuple(_choice(prop, v, where) for v in values)
        return replace(prop, choices=tuple(dict.fromkeys(checked)))
    return replace(prop, choices=tuple(dict.fromkeys(_whole(prop, v, where) for v in values)))


def _whole(prop: Property, value: Any, where: str) -> int:
    low, high = prop.limits
    if value == "never" and high == NEVER:
        return NEVER
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        expected = f"of at least {low}, or never" if high == NEVER else f"from {low} to {high}"
        raise SpaceError(f"{where}: expected a whole number {expected}, got {value!r}")
    return value


def _choice(prop: Property, value: Any, where: str) -> str:
    text = str(value).lower() if isinstance(value, int | str) else ""
    text = {"-1": "all"}.get(text, text) if prop.name == "acks" else text  # Kafka's alias
    if text not in prop.choices:
        raise SpaceError(
            f"{where}: expected one of {', '.join(map(str, prop.choices))}, got {value!r}"
        )
    return text


def _known(name: str, where: str) -> Property:
    if name in BY_NAME:
        return BY_NAME[name]
    by_librdkafka = {p.librdkafka: p for p in PROPERTIES if p.librdkafka}
    if name in by_librdkafka:
        raise SpaceError(
            f"{where}: {name} is librdkafka's name; kbench tune takes Kafka's, "
            f"{by_librdkafka[name].name}"
        )
    close = difflib.get_close_matches(name, list(BY_NAME), n=1)
    hint = f"did you mean {close[0]}?" if close else f"searched are {', '.join(BY_NAME)}"
    raise SpaceError(f"{where}: unknown property {name}: {hint}")


_REQUIREMENT = re.compile(r"\s*([A-Za-z0-9._-]+)\s*(>=|<=|=)\s*(\S+)\s*")


def require(space: Space, requirements: list[str]) -> Space:
    """The space with each requirement as a floor: the values less durable than it removed from
    the range searched, whatever the space file says; a property the table fixes (not named in
    the space file) is raised to the floor. `acks=all`, `acks>=1`, `min.insync.replicas>=2`,
    `replication.factor>=3`, `flush.messages<=1000` (`=` means the same as the comparison).
    Then what the space needs to make sense: min.insync.replicas above 1 floors acks=all
    (nothing else waits for the in-sync replicas) and needs as many replicas in every trial
    (unless the space file says otherwise, the topic gets 3: Kafka's documented setup, which
    keeps taking writes with a broker down)."""
    properties = {p.name: p for p in space.properties}
    floor = list(requirements)
    for requirement in requirements:
        where = f"--require {requirement}"
        match = _REQUIREMENT.fullmatch(requirement)
        if match is None:
            raise SpaceError(f"{where}: expected NAME=VALUE, NAME>=N or NAME<=N, e.g. acks=all")
        name, operator, value = match.groups()
        prop = _known(name, where)
        if not prop.durability and not prop.more_durable:
            durable = [p.name for p in PROPERTIES if p.durability or p.more_durable]
            raise SpaceError(
                f"{where}: {name} does not decide durability; floors apply to {', '.join(durable)}"
            )
        higher = prop.more_durable != "lower"
        if operator == ("<=" if higher else ">="):
            direction = ">=" if higher else "<="
            raise SpaceError(
                f"{where}: a floor bounds {name} on its durable side: {name}{direction}N"
            )
        current = properties[name]
        if prop.durability:  # an enumeration, ordered from least to most durable
            least = _choice(prop, value, where)
            allowed = prop.durability[prop.durability.index(least) :]
            kept = tuple(v for v in current.choices if v in allowed)
            if not kept:
                allowed_text = ", ".join(map(str, current.choices))
                raise SpaceError(
                    f"{where}: the space allows only {allowed_text} for {name}, all below the floor"
                )
            properties[name] = replace(current, choices=kept)
            continue
        bound = _whole(prop, int(value) if value.isdigit() else value, where)
        properties[name] = _floored(current, bound, higher, where)
    insync = max(properties["min.insync.replicas"].numbers)
    cause = next((f"--require {r}: " for r in requirements if "min.insync" in r), "--space: ")
    if insync > 1:
        acks = properties["acks"]
        if "all" not in acks.choices:
            raise SpaceError(
                f"{cause}min.insync.replicas acts only on acks=all, and the space allows "
                f"only {', '.join(map(str, acks.choices))} for acks"
            )
        if acks.choices != ("all",):
            properties["acks"] = replace(acks, choices=("all",))
            floor.append("acks=all (min.insync.replicas acts only on it)")
        replicas = properties["replication.factor"]
        if replicas == TABLE["replication.factor"]:
            properties["replication.factor"] = _at(replicas, max(3, insync))
        elif min(replicas.numbers) < insync:
            raise SpaceError(
                f"{cause}min.insync.replicas {insync} is impossible with {replicas.describe()}: a "
                f"partition has no more in-sync replicas than replicas (give "
                f"replication.factor of at least {insync})"
            )
    if max(properties["replication.factor"].numbers) == 1:
        idle = [p.name for p in properties.values() if p.name.startswith("replica.")]
        if idle := [name for name in idle if properties[name] != TABLE[name]]:
            raise SpaceError(
                f"{', '.join(idle)}: act only between a leader and its followers, and the space "
                "has replication.factor 1 (give it a higher one too)"
            )
    return Space(tuple(properties.values()), tuple(floor))


def external(space: Space) -> Space:
    """The space for a --bootstrap cluster: its broker settings are its own, which kbench cannot
    set, so they leave the space; a space file that names them is refused."""
    named = [p.name for p in space.properties if p.scope == "broker" and p != TABLE[p.name]]
    if named:
        raise SpaceError(
            f"--space: {', '.join(named)}: broker settings cannot be set on a --bootstrap "
            "cluster (kbench tune sets them only on the engine it starts)"
        )
    return replace(space, properties=tuple(p for p in space.properties if p.scope != "broker"))


def _floored(prop: Property, bound: int, higher: bool, where: str) -> Property:
    """`prop` kept at `bound` or beyond it on its durable side; one the table fixes, raised."""

    def durable(value: Value) -> bool:
        return isinstance(value, int) and (value >= bound if higher else value <= bound)

    if prop == TABLE[prop.name] and prop.fixed:
        return prop if durable(prop.default) else _at(prop, bound)
    if prop.choices:
        kept = tuple(v for v in prop.choices if durable(v))
    else:
        low, high = (
            (max(prop.low, bound), prop.high) if higher else (prop.low, min(prop.high, bound))
        )
        kept = (low, high) if low <= high else ()
    if not kept:
        raise SpaceError(f"{where}: the space allows {prop.describe()}, none of it at the floor")
    if prop.choices:
        return replace(prop, choices=kept)
    return replace(prop, low=low, high=high)


def differences(settings: dict[str, Value]) -> dict[str, Value]:
    """The settings that differ from Kafka's defaults."""
    return {k: v for k, v in settings.items() if DEFAULTS.get(k) != v}


def scoped(settings: dict[str, Value], scope: str) -> dict[str, Value]:
    """The settings of one scope (producer, consumer, topic or broker)."""
    return {k: v for k, v in settings.items() if BY_NAME[k].scope == scope}


def client_properties(settings: dict[str, Value]) -> tuple[dict[str, Value], dict[str, Value]]:
    """The settings as the producer's and the consumer's librdkafka properties."""
    producer, consumer = (
        dict(librdkafka(BY_NAME[k], v) for k, v in scoped(settings, client).items())
        for client in ("producer", "consumer")
    )
    return producer, consumer


def librdkafka(prop: Property, value: Value) -> tuple[str, Value]:
    """`prop` = `value` as librdkafka takes it: its name there, its unit there."""
    if isinstance(value, int) and prop.librdkafka_unit > 1:
        value = max(value // prop.librdkafka_unit, 1)
    return prop.librdkafka or prop.name, value


_INTRODUCTION = {
    "topic": "topic configs: kafka-topics.sh --create --topic TOPIC {create}",
    "broker": "server.properties lines, for every broker",
}


def properties_file(
    settings: dict[str, Value], scope: str, header: list[str], partitions: int = 1
) -> str:
    """The .properties text of the `scope`'s settings that differ from Kafka's defaults (a
    client's, each librdkafka name beside where it differs; the topic's, with the partitions
    and replication factor to create it with; the broker's); `header`: comment lines."""
    lines = [f"# {line}" for line in header]
    changed = {k: v for k, v in differences(settings).items() if BY_NAME[k].scope == scope}
    configs = {k: v for k, v in changed.items() if k not in CREATION}
    replicas = settings.get("replication.factor", DEFAULTS["replication.factor"])
    partitions = int(settings.get("partitions", WORKLOADS)) or partitions
    create = f"--partitions {partitions} --replication-factor {replicas}"
    create += "".join(f" --config {k}={v}" for k, v in configs.items())
    if scope in _INTRODUCTION:
        lines.append(f"# {_INTRODUCTION[scope].format(create=create)}")
    if not changed:
        lines.append(f"# Kafka's defaults: no {scope} setting to change")
    for name, value in changed.items():
        prop = BY_NAME[name]
        if prop.librdkafka:
            alias, converted = librdkafka(prop, value)
            lines.append(f"# librdkafka (confluent-kafka, kcat): {alias}={converted}")
        lines.append(f"{name}={value}")
    return "\n".join(lines) + "\n"


def parse_value(prop: Property, text: str, where: str) -> Value:
    """A value of `prop` written as text (a .properties file's), checked against the values
    Kafka accepts; SpaceError names `where` and what was expected."""
    if prop.choices:
        return _choice(prop, text, where)
    try:
        number = int(text)
    except ValueError:
        raise SpaceError(f"{where}: expected a whole number, got {text!r}") from None
    return _whole(prop, number, where)
