"""OpenLoopSchedule: when each request of an open-loop run is due, and its latency from then.

An open-loop load generator sends request i at start + i/rate whatever happened to the ones
before, and measures latency from that intended time, so a stall shows in every request it held
up, not only in the one in flight (coordinated omission, as wrk2 and HdrHistogram's docs
describe it). start_ns is on time.perf_counter_ns() (CLOCK_MONOTONIC on Linux), which every
process on the machine shares, so processes can share one schedule. Immutable: safe to share.

Its own module, without the Kafka protocol's imports, so that a client process that does not
speak the protocol itself (confluent-kafka's, a probe) starts without loading kafka-python.
"""

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class OpenLoopSchedule:
    """When request i is due in an open-loop run at rate_per_s, and its latency measured from
    then, not from when it could actually be sent."""

    start_ns: int
    rate_per_s: float

    def due_ns(self, i: int) -> int:
        return self.start_ns + round(i * 1e9 / self.rate_per_s)

    def latency_ns(self, i: int, completed_ns: int) -> int:
        return completed_ns - self.due_ns(i)
