"""Saturated samples: a load offered at a fixed rate that the system could not keep.

An open-loop sample records `achieved_fraction`, the rate delivered over the rate offered. Below
SATURATED_BELOW the sample measured the system at saturation, not at the load it names: its
latency is the queue's, growing with the run's length, and decides no latency claim.
"""

from collections.abc import Mapping, Sequence

# the fraction of the offered rate below which an open-loop sample is saturated
SATURATED_BELOW = 0.95
ACHIEVED_FRACTION = "achieved_fraction"  # the metric every open-loop sample records


def saturated(values: Mapping[str, float]) -> bool:
    """Whether one sample's values say it could not keep its offered rate (a sample without
    an offered rate, closed loop, is not)."""
    return values.get(ACHIEVED_FRACTION, 1.0) < SATURATED_BELOW


def saturation_reason(samples: Mapping[str, Sequence[Mapping[str, float]]]) -> str | None:
    """Why these samples (by variant) must decide no latency claim, or None: for a
    Scenario.undecided."""
    counts = {variant: sum(map(saturated, values)) for variant, values in samples.items()}
    if not any(counts.values()):
        return None
    which = ", ".join(
        f"{n} of {len(samples[variant])} samples of {variant}" for variant, n in counts.items() if n
    )
    return (
        f"saturated: {which} delivered below {SATURATED_BELOW:.0%} of the offered rate; "
        "latency at saturation decides no claim"
    )
