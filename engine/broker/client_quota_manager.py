"""ClientQuotaManager: produce and fetch byte-rate quotas enforced by throttling, as Kafka's
ClientQuotaManager does it (KIP-13, KIP-219).

Each quota sensor measures a Rate: a sum over quota.window.num samples of
quota.window.size.seconds each (Kafka's SampledStat and WindowedSum), divided by the window it
covers, which is never taken as less than num - 1 whole samples (Rate.windowSize), so the first
bytes of a client are not measured over a few milliseconds. A request's bytes are recorded
first; when the rate is then over the quota the throttle time is

    (observed rate - quota) / quota * window ms    (QuotaUtils.throttleTime, rounded)

the delay that brings the rate back to the quota if nothing more came. Kafka does not bound it
for byte rates (only its request and connection-rate quotas are capped at one window), and
neither is it here. The response carries throttle_time_ms and the connection is muted (not
read) for that long; a fetch that would be throttled is answered empty instead, its bytes
un-recorded, as KafkaApis does.

Which quota applies and which clients share a sensor follow Kafka's precedence (its
DefaultQuotaCallback): /users/<user>/clients/<client-id>, /users/<user>/clients/<default>,
/users/<user>, /users/<default>/clients/<client-id>, /users/<default>/clients/<default>,
/users/<default>, /clients/<client-id>, /clients/<default>. Without SASL the user is Kafka's
ANONYMOUS principal. Quotas are per broker: each broker measures only what it serves. A sensor
idle for an hour is dropped (Kafka's InactiveSensorExpirationTimeSeconds).

Not thread-safe: the event loop's thread alone uses it.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field

from engine.broker.client_quotas import CLIENT_ID, USER, entity_key
from engine.metadata.image import QuotaEntity

ANONYMOUS = "ANONYMOUS"  # KafkaPrincipal.ANONYMOUS's name: every client without SASL
_SENSOR_EXPIRY_MS = 3_600_000
_SWEEP_INTERVAL_MS = 60_000
_INT32_MAX = 2**31 - 1
_RESOLVED_MAX = 10_000  # clients whose quota is remembered between changes of the quotas


@dataclass(slots=True)
class _Sample:
    start_ms: int
    last_event_ms: int
    value: float = 0.0
    events: int = 0

    def reset(self, now_ms: int) -> None:
        self.start_ms = self.last_event_ms = now_ms
        self.value = 0.0
        self.events = 0


@dataclass(slots=True)
class Rate:
    """Kafka's Rate over a WindowedSum: bytes per second over the last `samples` windows."""

    samples: int
    window_ms: int
    _samples: list[_Sample] = field(default_factory=list)
    _current: int = 0

    def record(self, value: float, now_ms: int) -> None:
        sample = self._current_sample(now_ms)
        if now_ms - sample.start_ms >= self.window_ms:  # Sample.isComplete: start the next
            self._current = (self._current + 1) % (self.samples + 1)  # + 1: the overlapping one
            if self._current >= len(self._samples):
                sample = _Sample(now_ms, now_ms)
                self._samples.append(sample)
            else:
                sample = self._samples[self._current]
                sample.reset(now_ms)
        sample.value += value
        sample.events += 1
        sample.last_event_ms = now_ms

    def _current_sample(self, now_ms: int) -> _Sample:
        if not self._samples:
            self._samples.append(_Sample(now_ms, now_ms))
        return self._samples[self._current]

    def _purge_obsolete(self, now_ms: int) -> None:
        """Samples without an event in the monitored window count nothing (and start anew)."""
        expire_age = self.samples * self.window_ms
        for sample in self._samples:
            if now_ms - sample.last_event_ms >= expire_age:
                sample.reset(now_ms)

    def window_size_ms(self, now_ms: int) -> int:
        """The time the rate is over (Rate.windowSize): since the oldest sample started, and at
        least samples - 1 whole windows."""
        self._purge_obsolete(now_ms)
        oldest = min(s.start_ms for s in self._samples) if self._samples else now_ms
        elapsed = now_ms - oldest
        full_windows = elapsed // self.window_ms
        if full_windows < self.samples - 1:
            elapsed += (self.samples - 1 - full_windows) * self.window_ms
        return max(elapsed, 1)

    def measure(self, now_ms: int) -> float:
        """Bytes per second."""
        self._purge_obsolete(now_ms)
        total = sum(s.value for s in self._samples)
        return total / (self.window_size_ms(now_ms) / 1000.0)


def throttle_time_ms(rate: float, quota: float, window_ms: int) -> int:
    """QuotaUtils.throttleTime: how long to wait for `rate` over `window_ms` to fall to `quota`,
    rounded as Java's Math.round; at most the int32 throttle_time_ms can carry (Kafka's toInt
    would wrap such a value around)."""
    return min(int(_java_round((rate - quota) / quota * window_ms)), _INT32_MAX)


def _java_round(value: float) -> float:
    return float(int(value + 0.5) if value >= 0 else -int(-value + 0.5))


@dataclass(slots=True)
class _Sensor:
    rate: Rate
    last_record_ms: int


Tags = tuple[str, str]  # (user, client id) as Kafka's quota metric tags; "" for none


class ClientQuotaManager:
    """One quota type's sensors (`quota_key`: producer_byte_rate or consumer_byte_rate)."""

    def __init__(self, quota_key: str, samples: int, window_seconds: int) -> None:
        self.quota_key = quota_key
        self.samples = samples
        self.window_ms = window_seconds * 1000
        self._sensors: dict[Tags, _Sensor] = {}
        self._resolved: dict[tuple[str, str], tuple[Tags, float | None]] = {}
        self._resolved_for: object = None  # the quotas the cache was made from
        self._next_sweep_ms = 0
        self.throttled = 0  # requests throttled so far, for GET /stats

    def _resolve(
        self, quotas: Mapping[QuotaEntity, Mapping[str, float]], user: str, client_id: str
    ) -> tuple[Tags, float | None]:
        """The sensor's tags and the quota (None: no quota), cached per quotas mapping."""
        if quotas is not self._resolved_for or len(self._resolved) >= _RESOLVED_MAX:
            self._resolved_for, self._resolved = quotas, {}
        key = (user, client_id)
        found = self._resolved.get(key)
        if found is None:
            tags = quota_metric_tags(quotas, self.quota_key, user, client_id)
            found = self._resolved[key] = (tags, quota_limit(quotas, self.quota_key, tags))
        return found

    def record_and_get_throttle_time_ms(
        self,
        quotas: Mapping[QuotaEntity, Mapping[str, float]],
        user: str,
        client_id: str,
        value: float,
        now_ms: int,
    ) -> int:
        """Record `value` bytes; the throttle time they earn (0 within the quota). Nothing is
        recorded while no client quota of any kind exists (Kafka's quotasEnabled)."""
        if not quotas:
            return 0
        tags, limit = self._resolve(quotas, user, client_id)
        sensor = self._sensor(tags, now_ms)
        sensor.rate.record(value, now_ms)
        if limit is None:
            return 0
        rate = sensor.rate.measure(now_ms)
        if rate <= limit:
            return 0
        self.throttled += 1
        return throttle_time_ms(rate, limit, sensor.rate.window_size_ms(now_ms))

    def unrecord(
        self,
        quotas: Mapping[QuotaEntity, Mapping[str, float]],
        user: str,
        client_id: str,
        value: float,
        now_ms: int,
    ) -> None:
        """Take back bytes recorded for a response not sent (a throttled fetch)."""
        if quotas:
            tags, _ = self._resolve(quotas, user, client_id)
            self._sensor(tags, now_ms).rate.record(-value, now_ms)

    def max_value_in_quota_window(
        self, quotas: Mapping[QuotaEntity, Mapping[str, float]], user: str, client_id: str
    ) -> float | None:
        """The most bytes a client may take in one response without being throttled when
        nothing was recorded (getMaxValueInQuotaWindow); None without a quota."""
        if not quotas:
            return None
        _, limit = self._resolve(quotas, user, client_id)
        if limit is None:
            return None
        return limit * (self.samples - 1) * self.window_ms / 1000

    def _sensor(self, tags: Tags, now_ms: int) -> _Sensor:
        if now_ms >= self._next_sweep_ms:
            self._next_sweep_ms = now_ms + _SWEEP_INTERVAL_MS
            idle_since = now_ms - _SENSOR_EXPIRY_MS
            for stale in [t for t, s in self._sensors.items() if s.last_record_ms < idle_since]:
                del self._sensors[stale]
        sensor = self._sensors.get(tags)
        if sensor is None:
            sensor = self._sensors[tags] = _Sensor(Rate(self.samples, self.window_ms), now_ms)
        sensor.last_record_ms = now_ms
        return sensor

    def status(self) -> dict:
        return {"sensors": len(self._sensors), "throttled_requests": self.throttled}


def _quota(
    quotas: Mapping[QuotaEntity, Mapping[str, float]],
    key: str,
    *components: tuple[str, str | None],
) -> float | None:
    """The quota `key` of the entity made of `components` (a None name: the default)."""
    return quotas.get(entity_key(components), {}).get(key)


def quota_metric_tags(
    quotas: Mapping[QuotaEntity, Mapping[str, float]], key: str, user: str, client_id: str
) -> Tags:
    """Which sensor a client's bytes go to (DefaultQuotaCallback.quotaMetricTags, its general
    case): the most specific entity with a quota decides whether the user, the client id or
    both name it, so that, say, every client of a user with a user quota shares one sensor."""
    both = (user, client_id)
    for components, tags in (
        (((USER, user), (CLIENT_ID, client_id)), both),
        (((USER, user), (CLIENT_ID, None)), both),
        (((USER, user),), (user, "")),
        (((USER, None), (CLIENT_ID, client_id)), both),
        (((USER, None), (CLIENT_ID, None)), both),
        (((USER, None),), (user, "")),
    ):
        if _quota(quotas, key, *components) is not None:
            return tags
    return "", client_id  # /clients/<client-id>, /clients/<default>


def quota_limit(
    quotas: Mapping[QuotaEntity, Mapping[str, float]], key: str, tags: Tags
) -> float | None:
    """The quota of a sensor (DefaultQuotaCallback.quotaLimit), None when none applies."""
    user, client_id = tags
    candidates: list[tuple[tuple[str, str | None], ...]]
    if user and client_id:
        candidates = [
            ((USER, user), (CLIENT_ID, client_id)),
            ((USER, user), (CLIENT_ID, None)),
            ((USER, None), (CLIENT_ID, client_id)),
            ((USER, None), (CLIENT_ID, None)),
        ]
    elif user:
        candidates = [((USER, user),), ((USER, None),)]
    elif client_id:
        candidates = [((CLIENT_ID, client_id),), ((CLIENT_ID, None),)]
    else:
        return None
    for components in candidates:
        value = _quota(quotas, key, *components)
        if value is not None:
            return value
    return None
