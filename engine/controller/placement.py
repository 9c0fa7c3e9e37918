"""Replica placement for new partitions (after Kafka's StripedReplicaPlacer).

The brokers that may take replicas are laid out rack by rack in turn (a1, b1, c1, a2, b2, ...),
so consecutive replicas of a partition land in different racks while racks last; partition p of a
topic starts at a rotating position, so leaders (the first replica) spread over the brokers, and
the rotation starts at a random point per topic, so many small topics do not all lead on the
first broker.
"""

import random
from collections.abc import Sequence

from engine.metadata.image import BrokerRegistration


class PlacementError(ValueError):
    """More replicas asked for than there are brokers to hold them."""


def striped_order(brokers: Sequence[BrokerRegistration]) -> list[int]:
    """Broker ids interleaved across racks (brokers without a rack form one rack)."""
    racks: dict[str | None, list[int]] = {}
    for broker in sorted(brokers, key=lambda b: b.node_id):
        racks.setdefault(broker.rack, []).append(broker.node_id)
    columns = [racks[rack] for rack in sorted(racks, key=lambda r: (r is None, r or ""))]
    order = []
    for row in range(max((len(c) for c in columns), default=0)):
        order.extend(column[row] for column in columns if row < len(column))
    return order


def place_replicas(
    brokers: Sequence[BrokerRegistration],
    partitions: Sequence[int],
    replication_factor: int,
    rng: random.Random | None = None,
) -> dict[int, list[int]]:
    """Replica lists for the given partition indexes, over the given (usable) brokers."""
    order = striped_order(brokers)
    if replication_factor > len(order):
        raise PlacementError(
            f"replication factor {replication_factor} is larger than the {len(order)} "
            "available brokers"
        )
    start = (rng or random).randrange(len(order)) if order else 0
    return {
        index: [order[(start + index + i) % len(order)] for i in range(replication_factor)]
        for index in partitions
    }
