"""The search space: client properties under Kafka's names, with Kafka's defaults and the ranges
searched, from one table (PROPERTIES); a user's YAML that narrows or widens it; the durability
floor the search never goes below (`--require acks=all`); and the one mapping from Kafka's
(Java client) names to librdkafka's, which the measurement's clients take.

Defaults are Apache Kafka 4.0's Java clients' (linger.ms 5 since KIP-1030, acks all), not
librdkafka's: the recommendation is a diff against what a Kafka user starts from, and every
measurement passes every property explicitly, so librdkafka's own defaults never apply.

A space YAML maps property names to a range, a list of values, or one value:

    linger.ms: {low: 0, high: 20}     # integers from 0 to 20
    compression.type: [none, lz4]     # these values only
    acks: all                         # fixed: not searched

A property not named keeps its default range.
"""

import difflib
from dataclasses import dataclass, replace
from typing import Any

import optuna
import yaml

Value = int | str


class SpaceError(ValueError):
    """The space or a requirement cannot be used; the message is one line for the user."""


@dataclass(frozen=True)
class Property:
    """A client property: Kafka's name, which client takes it, Kafka's default, and either an
    integer range [low, high] (log: sampled on a log scale) or `choices`. `limits`: the values
    Kafka accepts, which a user's range may widen to; `durability`: the values from least to
    most durable, where the property decides what survives a failure; `librdkafka`: its name
    there, where it differs."""

    name: str
    client: str  # "producer" or "consumer"
    default: Value
    low: int = 0
    high: int = 0
    log: bool = False
    choices: tuple[Value, ...] = ()
    limits: tuple[int, int] = (0, 0)
    durability: tuple[Value, ...] = ()
    librdkafka: str = ""

    @property
    def searched(self) -> bool:
        """Whether the search varies it (more than one value allowed)."""
        return len(self.choices) > 1 if self.choices else self.low < self.high

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
        if self.choices:
            return f"{self.name} in {{{', '.join(map(str, self.choices))}}}"
        return f"{self.name} {self.low}-{self.high}{' (log)' if self.log else ''}"


_INT_MAX = 2**31 - 1
PROPERTIES: tuple[Property, ...] = (
    # producer: how records are batched, compressed and acknowledged
    Property("batch.size", "producer", 16384, 1024, 1 << 20, log=True, limits=(1, _INT_MAX)),
    Property("linger.ms", "producer", 5, 0, 100, limits=(0, 900_000)),
    Property(
        "compression.type",
        "producer",
        "none",
        choices=("none", "gzip", "snappy", "lz4", "zstd"),
    ),
    Property("acks", "producer", "all", choices=("0", "1", "all"), durability=("0", "1", "all")),
    Property("max.in.flight.requests.per.connection", "producer", 5, 1, 5, limits=(1, 1_000_000)),
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
)  # fmt: skip
BY_NAME = {p.name: p for p in PROPERTIES}
DEFAULTS: dict[str, Value] = {p.name: p.default for p in PROPERTIES}


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


def default_space() -> Space:
    return Space(PROPERTIES)


def load_space(path: str | None) -> Space:
    """PROPERTIES, with the ranges a user's YAML file gives (None: the table as it is)."""
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
    properties = dict(BY_NAME)
    for name, given in document.items():
        prop = _known(str(name), f"--space {path}")
        properties[prop.name] = _ranged(prop, given, f"--space {path}: {name}")
    return Space(tuple(properties.values()))


def _ranged(prop: Property, given: Any, where: str) -> Property:
    """`prop` searched over what the user gave: {low, high}, a list of values, or one value."""
    if isinstance(given, dict):
        if prop.choices:
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
        return replace(prop, low=low, high=high, log=log)
    values = given if isinstance(given, list) else [given]
    if not values:
        raise SpaceError(f"{where}: the list of values is empty")
    if prop.choices:
        checked = tuple(_choice(prop, v, where) for v in values)
        return replace(prop, choices=tuple(dict.fromkeys(checked)))
    return replace(prop, choices=tuple(dict.fromkeys(_whole(prop, v, where) for v in values)))


def _whole(prop: Property, value: Any, where: str) -> int:
    low, high = prop.limits
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise SpaceError(f"{where}: expected a whole number from {low} to {high}, got {value!r}")
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


def require(space: Space, requirements: list[str]) -> Space:
    """The space with each requirement (`acks=all`, `acks>=1`) as a floor: the values less
    durable than it are removed from the range searched, whatever the space file says."""
    properties = {p.name: p for p in space.properties}
    for requirement in requirements:
        name, _, value = requirement.replace(">=", "=").partition("=")
        name, value = name.strip(), value.strip()
        if not name or not value:
            raise SpaceError(f"--require {requirement}: expected NAME=VALUE, e.g. acks=all")
        if name == "min.insync.replicas":
            raise SpaceError(
                "--require min.insync.replicas: kbench tune does not set topic or broker "
                "settings yet (the topic gets the cluster's default)"
            )
        prop = _known(name, f"--require {requirement}")
        if not prop.durability:
            durable = [p.name for p in PROPERTIES if p.durability]
            raise SpaceError(
                f"--require {requirement}: {name} does not decide durability; "
                f"floors apply to {', '.join(durable)}"
            )
        floor = _choice(prop, value, f"--require {requirement}")
        allowed = prop.durability[prop.durability.index(floor) :]
        current = properties[name]
        kept = tuple(v for v in current.choices if v in allowed)
        if not kept:
            allowed_text = ", ".join(map(str, current.choices))
            raise SpaceError(
                f"--require {requirement}: the space allows only {allowed_text} for {name}, "
                "all below the floor"
            )
        properties[name] = replace(current, choices=kept)
    return Space(tuple(properties.values()), tuple(requirements))


def differences(settings: dict[str, Value]) -> dict[str, Value]:
    """The settings that differ from Kafka's defaults."""
    return {k: v for k, v in settings.items() if DEFAULTS.get(k) != v}


def client_properties(settings: dict[str, Value]) -> tuple[dict[str, Value], dict[str, Value]]:
    """The settings as the producer's and the consumer's librdkafka properties."""
    producer: dict[str, Value] = {}
    consumer: dict[str, Value] = {}
    for name, value in settings.items():
        prop = BY_NAME[name]
        (producer if prop.client == "producer" else consumer)[prop.librdkafka or name] = value
    return producer, consumer


def properties_file(settings: dict[str, Value], client: str, header: list[str]) -> str:
    """A Java client's .properties text of the `client`'s settings that differ from Kafka's
    defaults, each librdkafka name beside where it differs; `header`: comment lines."""
    lines = [f"# {line}" for line in header]
    changed = {k: v for k, v in differences(settings).items() if BY_NAME[k].client == client}
    if not changed:
        lines.append(f"# Kafka's defaults: no {client} setting to change")
    for name, value in changed.items():
        alias = BY_NAME[name].librdkafka
        if alias:
            lines.append(f"# librdkafka (confluent-kafka, kcat): {alias}={value}")
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
