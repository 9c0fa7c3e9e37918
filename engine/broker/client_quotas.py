"""Client quotas as Kafka's admin APIs see them (KIP-546): entities, the quota keys each takes,
AlterClientQuotas' checks and DescribeClientQuotas' filter, by the rules of Kafka's
ClientQuotaControlManager and ClientQuotasImage, with their error codes and messages.

An entity names a user, a client id, both, or an ip; a name of None is that type's default
(`<default>`). Its quotas are {key: value}: user and client-id entities take producer_byte_rate
and consumer_byte_rate (bytes/s, integral; the broker enforces these by throttling,
client_quota_manager.py), request_percentage and controller_mutation_rate (kept and described,
not enforced); an ip entity takes connection_creation_rate (kept and described, not enforced).

Shared by the controller, which writes an alteration as ClientQuotaRecords, and by a single
broker, which keeps its quotas in its log directory (ClientQuotaStore):
    client-quotas.json   [{"entity": {type: name or null}, "quotas": {key: value}}, ...]
replaced atomically (written to a temporary file, fsynced, renamed), so a crash leaves the old
file or the new one. Plain functions, and a store the event loop's thread alone uses.
"""

import ipaddress
import json
import math
import os
import socket
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from engine.errors import INVALID_REQUEST, UNSUPPORTED_VERSION
from engine.metadata.image import QuotaEntity

USER, CLIENT_ID, IP = "user", "client-id", "ip"  # Kafka's ClientQuotaEntity types
PRODUCER_BYTE_RATE = "producer_byte_rate"
CONSUMER_BYTE_RATE = "consumer_byte_rate"
REQUEST_PERCENTAGE = "request_percentage"
CONTROLLER_MUTATION_RATE = "controller_mutation_rate"
CONNECTION_CREATION_RATE = "connection_creation_rate"
_LONG_MAX, _INT_MAX = 2**63 - 1, 2**31 - 1
# QuotaConfig.userAndClientQuotaConfigs() and ipConfigs(): key -> the largest integral value,
# or None for a double
USER_AND_CLIENT_KEYS: dict[str, int | None] = {
    PRODUCER_BYTE_RATE: _LONG_MAX,
    CONSUMER_BYTE_RATE: _LONG_MAX,
    REQUEST_PERCENTAGE: None,
    CONTROLLER_MUTATION_RATE: None,
}
IP_KEYS: dict[str, int | None] = {CONNECTION_CREATION_RATE: _INT_MAX}
# DescribeClientQuotas' MatchType
MATCH_EXACT, MATCH_DEFAULT, MATCH_SPECIFIED = 0, 1, 2
QUOTAS_FILE = "client-quotas.json"


class QuotaError(Exception):
    def __init__(self, error_code: int, message: str) -> None:
        super().__init__(message)
        self.error_code = error_code


@dataclass(frozen=True, slots=True)
class Alteration:
    """One entry of AlterClientQuotas: the entity's components as sent, and its ops as
    (key, value), value None for a removal."""

    components: Sequence[tuple[str, str | None]]
    ops: Sequence[tuple[str, float | None]]


def entity_key(components: Iterable[tuple[str, str | None]]) -> QuotaEntity:
    return tuple(sorted(components, key=lambda c: c[0]))


def entity_label(entity: QuotaEntity) -> str:
    """How Kafka's ClientQuotaEntity prints in messages."""
    return "ClientQuotaEntity(entries={" + ", ".join(f"{t}={n}" for t, n in entity) + "})"


def _checked_entity(components: Sequence[tuple[str, str | None]]) -> QuotaEntity:
    """ClientQuotaControlManager.validateEntity and configKeysForEntityType's combinations."""
    if not components:
        raise QuotaError(INVALID_REQUEST, "Invalid empty client quota entity")
    seen: dict[str, str | None] = {}
    for entity_type, name in components:
        if entity_type in seen:
            raise QuotaError(
                INVALID_REQUEST,
                f"Invalid client quota entity, duplicate entity entry {entity_type}",
            )
        if entity_type not in (USER, CLIENT_ID, IP):
            raise QuotaError(INVALID_REQUEST, f"Unhandled client quota entity type: {entity_type}")
        if name is not None and not name:
            raise QuotaError(INVALID_REQUEST, f"Empty {entity_type} not supported")
        seen[entity_type] = name
    if IP in seen:
        if USER in seen or CLIENT_ID in seen:
            # (Kafka's message, its missing space included)
            raise QuotaError(
                INVALID_REQUEST,
                "Invalid quota entity combination, IP entity shouldnot be combined with User "
                "or ClientId",
            )
        if not _valid_ip(seen[IP]):
            raise QuotaError(INVALID_REQUEST, f"{seen[IP]} is not a valid IP or resolvable host.")
    return entity_key(seen.items())


def _valid_ip(name: str | None) -> bool:
    """Kafka's isValidIpEntity: the default, an address, or a name that resolves."""
    if name is None:
        return True
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        pass
    try:
        socket.getaddrinfo(name, None)
        return True
    except (OSError, UnicodeError):
        return False


def valid_keys(entity: QuotaEntity) -> dict[str, int | None]:
    return IP_KEYS if any(t == IP for t, _ in entity) else USER_AND_CLIENT_KEYS


def _check_value(keys: Mapping[str, int | None], key: str, value: float) -> None:
    """ClientQuotaControlManager.validateQuotaKeyValue."""
    if key not in keys:
        raise QuotaError(INVALID_REQUEST, f"Invalid configuration key {key}")
    if not value > 0.0:
        raise QuotaError(INVALID_REQUEST, f"Quota {key} must be greater than 0")
    largest = keys[key]
    if largest is None:
        return
    if value > largest:
        kind = "a LONG" if largest == _LONG_MAX else "an INT"
        raise QuotaError(INVALID_REQUEST, f"Proposed value for {key} is too large for {kind}.")
    if abs(math.fmod(value, 1.0)) > 1e-6:
        raise QuotaError(INVALID_REQUEST, f"{key} cannot be a fractional value.")


QuotaChange = tuple[QuotaEntity, str, float | None]  # (entity, key, new value or None: removed)


def altered_quotas(
    current: Mapping[QuotaEntity, Mapping[str, float]], alterations: Sequence[Alteration]
) -> tuple[list[tuple[int, str | None]], list[QuotaChange]]:
    """What AlterClientQuotas does to `current`: each entry's (error code, message), in request
    order, and the changes of the entries that passed (a value that does not change, or the
    removal of a key that is not set, is no change), as ClientQuotaControlManager makes them."""
    results: list[tuple[int, str | None]] = []
    changes: list[QuotaChange] = []
    seen: set[QuotaEntity] = set()
    for alteration in alterations:
        try:
            key = entity_key(alteration.components)
            if key in seen:
                raise QuotaError(INVALID_REQUEST, f"Ignoring duplicate entity {entity_label(key)}")
            seen.add(key)
            names = [k for k, _ in alteration.ops]
            duplicate = next((k for i, k in enumerate(names) if k in names[:i]), None)
            if duplicate is not None:
                raise QuotaError(
                    INVALID_REQUEST,
                    f"Duplicate quota key {duplicate} not updating quota for this entity "
                    f"{entity_label(key)}",
                )
            entity = _checked_entity(alteration.components)
            keys = valid_keys(entity)
            quotas = current.get(entity, {})
            entity_changes: list[QuotaChange] = []
            for name, value in alteration.ops:
                if value is None:
                    if name in quotas:
                        entity_changes.append((entity, name, None))
                    continue
                _check_value(keys, name, value)
                if quotas.get(name) != value:
                    entity_changes.append((entity, name, value))
        except QuotaError as exc:
            results.append((exc.error_code, str(exc)))
            continue
        changes += entity_changes
        results.append((0, None))
    return results, changes


def applied(
    current: Mapping[QuotaEntity, Mapping[str, float]], changes: Iterable[QuotaChange]
) -> dict[QuotaEntity, dict[str, float]]:
    """`current` with the changes made; entities left without quotas are gone."""
    quotas = {entity: dict(values) for entity, values in current.items()}
    for entity, key, value in changes:
        values = quotas.setdefault(entity, {})
        if value is None:
            values.pop(key, None)
        else:
            values[key] = value
    return {entity: values for entity, values in quotas.items() if values}


def described(
    quotas: Mapping[QuotaEntity, Mapping[str, float]],
    components: Iterable[tuple[str, int, str | None]],
    strict: bool,
) -> list[tuple[QuotaEntity, Mapping[str, float]]]:
    """DescribeClientQuotas' filter (ClientQuotasImage.describe): each component (entity type,
    match type, match) must hold; strict leaves out entities with types the filter does not
    name. QuotaError with Kafka's code for a filter it refuses."""
    exact: dict[str, str | None] = {}
    specified: set[str] = set()
    for entity_type, match_type, match in components:
        if not entity_type:
            raise QuotaError(INVALID_REQUEST, "Invalid empty entity type.")
        if entity_type in exact or entity_type in specified:
            raise QuotaError(
                INVALID_REQUEST,
                f"Entity type {entity_type} cannot appear more than once in the filter.",
            )
        if entity_type not in (IP, USER, CLIENT_ID):
            raise QuotaError(UNSUPPORTED_VERSION, f"Unsupported entity type {entity_type}")
        if match_type == MATCH_EXACT:
            if match is None:
                raise QuotaError(
                    INVALID_REQUEST,
                    "Request specified MATCH_TYPE_EXACT, but set match string to null.",
                )
            exact[entity_type] = match
        elif match_type == MATCH_DEFAULT:
            if match is not None:
                raise QuotaError(
                    INVALID_REQUEST,
                    "Request specified MATCH_TYPE_DEFAULT, but also specified a match string.",
                )
            exact[entity_type] = None
        elif match_type == MATCH_SPECIFIED:
            if match is not None:
                raise QuotaError(
                    INVALID_REQUEST,
                    "Request specified MATCH_TYPE_SPECIFIED, but also specified a match string.",
                )
            specified.add(entity_type)
        else:
            raise QuotaError(INVALID_REQUEST, f"Unknown match type {match_type}")
    named = exact.keys() | specified
    if IP in named and (USER in named or CLIENT_ID in named):
        raise QuotaError(
            INVALID_REQUEST,
            "Invalid entity filter component combination. IP filter component should not be "
            "used with user or clientId filter component.",
        )
    found = []
    for entity, values in quotas.items():
        names = dict(entity)
        if strict and len(names) != len(named):
            continue
        if all(t in names and names[t] == n for t, n in exact.items()) and specified <= set(names):
            found.append((entity, values))
    return found


class ClientQuotaStore:
    """A single broker's client quotas, in its log directory (see the module's comment)."""

    def __init__(self, log_dir: str) -> None:
        self.path = os.path.join(log_dir, QUOTAS_FILE)
        self.quotas: dict[QuotaEntity, dict[str, float]] = {}
        if os.path.exists(self.path):
            try:
                with open(self.path, encoding="utf-8") as f:
                    entries = json.load(f)
                self.quotas = {
                    entity_key(e["entity"].items()): {k: float(v) for k, v in e["quotas"].items()}
                    for e in entries
                }
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                raise RuntimeError(f"{self.path}: not a client quotas file ({exc})") from None

    def save(self, quotas: Mapping[QuotaEntity, Mapping[str, float]]) -> None:
        entries = [
            {"entity": dict(entity), "quotas": dict(values)}
            for entity, values in sorted(quotas.items(), key=lambda e: json.dumps(e[0]))
        ]
        with open(self.path + ".tmp", "w", encoding="utf-8") as f:
            json.dump(entries, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(self.path + ".tmp", self.path)
        self.quotas = {entity: dict(values) for entity, values in quotas.items()}
