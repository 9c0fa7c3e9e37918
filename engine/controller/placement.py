"""Replica placement for new partitions (after Kafka's StripedReplicaPlacer).

The brokers that may take replicas are laid out rack by rack in turn (a1, b1, c1, a2, b2, ...);
partition p of a topic takes its leader (the first replica) at a rotating position in that order,
so leaders spread over the brokers, and the rotation starts at a random point per topic, so many
small topics do not all lead on the first broker. The other replicas come from the racks after the
leader's, one rack after another, each rack giving its next broker, and a rack with no broker left
is passed over: a partition has replicas in min(replication factor, racks) racks even when the
racks are of unequal sizes.
"""

import random
from collections.abc import Sequence

from engine.metadata.image import BrokerRegistration


class PlacementError(ValueError):
    """More replicas asked for than there are brokers to hold them, or none."""


def _racks(brokers: Sequence[BrokerRegistration]) -> list[list[int]]:
    """Broker ids by rack, racks by name (brokers without a rack form one rack, last)."""
    racks: dict[str | None, list[int]] = {}
    for broker in sorted(brokers, key=lambda b: b.node_id):
        racks.setdefault(broker.rack, []).append(broker.node_id)
    return [racks[rack] for rack in sorted(racks, key=lambda r: (r is None, r or ""))]


def striped_order(brokers: Sequence[BrokerRegistration]) -> list[int]:
    """Broker ids interleaved across racks (brokers without a rack form one rack)."""
    columns = _racks(brokers)
    order: list[int] = []
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
    if replication_factor < 1:
        raise PlacementError(f"replication factor {replication_factor} is not positive")
    if replication_factor > len(order):
        raise PlacementError(
            f"replication factor {replication_factor} is larger than the {len(order)} "
            "available brokers"
        )
    columns = _racks(brokers)
    where = {b: (rack, row) for rack, column in enumerate(columns) for row, b in enumerate(column)}
    start = (rng or random).randrange(len(order)) if order else 0
    placement: dict[int, list[int]] = {}
    for index in partitions:
        leader = order[(start + index) % len(order)]
        rack, row = where[leader]
        # each round of len(order) partitions pairs the leaders with other followers
        shift = index // len(order)
        replicas = [leader]
        taken = [0] * len(columns)
        taken[rack] = 1
        while len(replicas) < replication_factor:
            rack = (rack + 1) % len(columns)
            column, used = columns[rack], taken[rack]
            if used == len(column):
                continue  # every broker of this rack already holds a replica
            if rack == where[leader][0]:
                replicas.append(column[(row + used) % len(column)])
            else:
                replicas.append(column[(row + shift + used) % len(column)])
            taken[rack] = used + 1
        placement[index] = replicas
    return placement
