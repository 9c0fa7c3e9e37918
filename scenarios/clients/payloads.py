"""Record values for producer benchmarks: the same sizes, three degrees of redundancy.

- random: uniformly random bytes, which no codec can shrink;
- json: JSON-like event text (one object per record with the same field names, varying
  identifiers, numbers and words), which compresses the way application events do;
- repetitive: a log line repeated to fill the value, behind a short sequence number, which any
  codec shrinks many times over.

Every value is `low`..`high` bytes long (uniformly drawn) and every pool is seeded, so a run
reproduces its bytes. Producers cycle through a pool; a pool holds `count` values, by default
enough (~3 MB at 200 bytes) that a batch of up to 1 MiB never holds the same random value twice
(otherwise a codec would find the repeats and "compress" random data).

OpenMessaging Benchmark's (OMB's) values and keys, for kbench tune's workloads: `omb_values`
(a payload file's bytes, or OMB's randomized pool: randomBytesRatio of each value random, the
rest zeros) and `omb_keys` (the 10,000 keys of OMB's KeyDistributor: 7 random bytes each,
base64url without padding; seeded here, where OMB's are not, so a run reproduces its keys).
"""

import base64
import json
import random

PAYLOADS = ("random", "json", "repetitive")
DEFAULT_COUNT = 16384

_ACTIONS = ("view", "click", "add_to_cart", "remove_from_cart", "checkout", "search", "login")
_COUNTRIES = ("DE", "US", "FR", "IN", "BR", "JP", "GB", "NL", "SE", "KE", "AU", "CA")
_PLANS = ("free", "basic", "pro", "enterprise")
_WORDS = (  # noqa: SIM905 - a sentence of words reads better than a column of them
    "order shipped delayed customer payment refund warehouse inventory discount coupon cart "
    "session browser mobile android ios desktop checkout address billing invoice priority "
    "standard express return exchange review rating support ticket resolved pending"
).split()
_LOG_LINE = b"INFO [request-handler-3] kafka.server.ReplicaManager - append ok status=200; "


def values(
    payload: str, count: int = DEFAULT_COUNT, low: int = 100, high: int = 300
) -> list[bytes]:
    """`count` values of the named payload kind, each low..high bytes long."""
    if not 0 < low <= high:
        raise ValueError(f"need 0 < low <= high, got {low}..{high}")
    rng = random.Random(f"{payload}:{count}:{low}:{high}")
    lengths = [rng.randint(low, high) for _ in range(count)]
    if payload == "random":
        return [rng.randbytes(n) for n in lengths]
    if payload == "json":
        return [_json_value(rng, i, n) for i, n in enumerate(lengths)]
    if payload == "repetitive":
        return [_repetitive_value(i, n) for i, n in enumerate(lengths)]
    raise ValueError(f"unknown payload {payload!r}; choose from {', '.join(PAYLOADS)}")


def _json_value(rng: random.Random, index: int, length: int) -> bytes:
    """A JSON object of exactly `length` bytes: the same field names in every record with
    varying values, as many fields as fit, then a note of words (and spaces) to fill."""
    fields = [
        ("id", f"{rng.getrandbits(64):016x}"),
        ("ts", 1_700_000_000_000 + index * 37 + rng.randrange(1000)),
        ("action", rng.choice(_ACTIONS)),
        ("user", rng.randrange(1_000_000)),
        ("country", rng.choice(_COUNTRIES)),
        ("plan", rng.choice(_PLANS)),
        ("amount", round(rng.uniform(0, 500), 2)),
        ("items", rng.randrange(1, 20)),
    ]
    event: dict = {}
    for key, value in fields:
        event[key] = value
        if len(_dumps(event)) + len(',"note":""') > length:
            del event[key]
            break
    room = length - len(_dumps(event)) - len(',"note":""')
    if room > 0:
        words: list[str] = []
        while len(" ".join(words)) < room:
            words.append(rng.choice(_WORDS))
        event["note"] = " ".join(words)[:room]
    return _dumps(event).ljust(length)


def _dumps(event: dict) -> bytes:
    return json.dumps(event, separators=(",", ":")).encode()


def _repetitive_value(index: int, length: int) -> bytes:
    head = b"%08d " % index
    body = _LOG_LINE * (length // len(_LOG_LINE) + 1)
    return (head + body)[:length]


OMB_KEYS = 10_000  # OMB's KeyDistributor.UNIQUE_COUNT
_OMB_KEY_BYTES = 7


def omb_keys() -> list[bytes]:
    """The keys OMB's KEY_ROUND_ROBIN and RANDOM_NANO distributors choose from."""
    rng = random.Random("omb-keys")
    return [
        base64.urlsafe_b64encode(rng.randbytes(_OMB_KEY_BYTES)).rstrip(b"=")
        for _ in range(OMB_KEYS)
    ]


def omb_values(
    size: int,
    payload_file: str | None = None,
    random_bytes_ratio: float | None = None,
    pool_size: int = 1,
) -> list[bytes]:
    """A workload's values of `size` bytes: with random_bytes_ratio (useRandomizedPayloads),
    OMB's pool of `pool_size` values, each that fraction random then zeros; else the payload
    file's bytes (as long as `size`); else zeros."""
    if random_bytes_ratio is not None:
        rng = random.Random(f"omb:{size}:{random_bytes_ratio}:{pool_size}")
        random_bytes = int(size * random_bytes_ratio)  # OMB truncates too
        return [rng.randbytes(random_bytes) + bytes(size - random_bytes) for _ in range(pool_size)]
    if payload_file is not None:
        with open(payload_file, "rb") as file:
            payload = file.read()
        if len(payload) != size:  # OMB's FilePayloadReader refuses it too
            raise ValueError(f"{payload_file} holds {len(payload)} bytes, not {size}")
        return [payload]
    return [bytes(size)]
