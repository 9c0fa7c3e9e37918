"""A rate search, as OpenMessaging Benchmark's rate discovery does: offer a rate for a while,
see whether it was kept (the achieved fraction at least SATURATED_BELOW and a latency bound
met: the caller's step decides), raise it while it is, lower it while it is not, then bisect.
Used by node-peak (a node's peak) and kbench tune (a setting's highest rate under an SLO).
"""

import math
from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar


class RateStep(Protocol):
    """One offered rate of a search and whether it was kept."""

    @property
    def offered_per_s(self) -> float: ...

    @property
    def kept(self) -> bool: ...


S = TypeVar("S", bound=RateStep)


def search(
    step: Callable[[float], S],
    start: float,
    *,
    factor: float,
    refine: int,
    max_steps: int,
    max_factor: float | None = None,
    floor: float = 1.0,
    ceiling: float = math.inf,
    hopeless: Callable[[S, S], bool] | None = None,
) -> list[S]:
    """The steps of one rate search: from `start`, multiply the offered rate by `factor` while
    steps are kept, the factor squared after each (up to max_factor: a search that starts far
    below the peak gets there in a few steps, as OpenMessaging Benchmark's RateController
    doubles its ramping factor), or divide it by `factor` while they are not; then bisect
    (geometric mean) between the highest kept and the lowest broken rate `refine` times; at most
    `max_steps` steps, offered rates within [floor, ceiling]. `hopeless(above, below)`: whether
    a broken step at a lower rate shows that lowering it further will not help (it stops)."""
    steps: list[S] = []
    kept: S | None = None
    broken: S | None = None
    rate, up = min(max(start, floor), ceiling), factor
    while len(steps) < max_steps:
        steps.append(done := step(rate))
        if done.kept:
            kept = done
            if broken is not None or rate * up > ceiling:
                break
            rate *= up
            up = min(up * up, max_factor or factor)
        else:
            above, broken = broken, done
            if kept is not None or rate / factor < floor:
                break
            if above is not None and hopeless is not None and hopeless(above, done):
                break
            rate /= factor
    for _ in range(refine):
        if kept is None or broken is None or len(steps) >= max_steps:
            break
        steps.append(done := step(math.sqrt(kept.offered_per_s * broken.offered_per_s)))
        if done.kept:
            kept = done
        else:
            broken = done
    return steps


def peak(steps: Sequence[S]) -> S | None:
    """The highest offered rate that was kept, or None."""
    return max((s for s in steps if s.kept), key=lambda s: s.offered_per_s, default=None)
