"""Replica placement for new partitions (after Kafka's StripedReplicaPlacer): distinct replicas,
racks taken in turn, leaders and replicas spread evenly over the brokers."""

import itertools
import random
from collections import Counter

import pytest

from engine.controller.placement import PlacementError, place_replicas, striped_order
from engine.metadata.image import BrokerRegistration


def _brokers(racks: dict[int, str | None]) -> list[BrokerRegistration]:
    return [BrokerRegistration(b, "localhost", 9000 + b, rack=r) for b, r in racks.items()]


def _rack_of(brokers: list[BrokerRegistration]) -> dict[int, str | None]:
    return {b.node_id: b.rack for b in brokers}


def test_a_replication_factor_larger_than_the_brokers_is_refused():
    brokers = _brokers({1: None, 2: None})
    with pytest.raises(PlacementError, match="replication factor 3"):
        place_replicas(brokers, range(4), 3, random.Random(1))
    with pytest.raises(PlacementError):
        place_replicas([], range(1), 1, random.Random(1))
    with pytest.raises(PlacementError, match="not positive"):
        place_replicas(brokers, range(1), 0, random.Random(1))
    assert place_replicas(brokers, range(1), 2, random.Random(1))[0] in ([1, 2], [2, 1])


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("replication_factor", [1, 2, 3, 5])
def test_every_partition_gets_distinct_replicas(seed, replication_factor):
    brokers = _brokers({1: "a", 2: "b", 3: "a", 4: "c", 5: None})
    placed = place_replicas(brokers, range(3, 23), replication_factor, random.Random(seed))
    assert sorted(placed) == list(range(3, 23))  # the indexes asked for
    for replicas in placed.values():
        assert len(replicas) == replication_factor
        assert len(set(replicas)) == replication_factor
        assert set(replicas) <= {1, 2, 3, 4, 5}


def test_the_striped_order_takes_the_racks_in_turn():
    brokers = _brokers({1: "a", 2: "a", 3: "b", 4: "b", 5: "c", 6: None})
    assert striped_order(brokers) == [1, 3, 5, 6, 2, 4]


@pytest.mark.parametrize("seed", range(5))
def test_replicas_of_a_partition_go_to_different_racks_with_equal_racks(seed):
    brokers = _brokers({1: "a", 2: "a", 3: "b", 4: "b", 5: "c", 6: "c"})
    racks = _rack_of(brokers)
    for replicas in place_replicas(brokers, range(30), 3, random.Random(seed)).values():
        assert len({racks[r] for r in replicas}) == 3
        for first, second in itertools.pairwise(replicas):
            assert racks[first] != racks[second]


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize(
    "layout",
    [
        pytest.param({1: "a", 2: "a", 3: "a", 4: "b"}, id="3+1"),
        pytest.param({1: "a", 2: "a", 3: "a", 4: "a", 5: "b", 6: "c"}, id="4+1+1"),
        pytest.param({1: "a", 2: "a", 3: "b", 4: "b", 5: "b", 6: "c"}, id="2+3+1"),
    ],
)
def test_replicas_use_as_many_racks_as_they_can_with_unequal_racks(seed, layout):
    brokers = _brokers(layout)
    racks = _rack_of(brokers)
    rack_count = len(set(racks.values()))
    for replication_factor in range(1, len(brokers) + 1):
        placed = place_replicas(brokers, range(24), replication_factor, random.Random(seed))
        for replicas in placed.values():
            assert len(set(replicas)) == replication_factor
            assert len({racks[r] for r in replicas}) == min(replication_factor, rack_count), (
                replicas
            )


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize(
    "layout",
    [
        pytest.param({b: None for b in range(1, 7)}, id="no-racks"),
        pytest.param({1: "a", 2: "a", 3: "b", 4: "b", 5: "c", 6: "c"}, id="three-racks"),
        pytest.param({1: "a", 2: "b", 3: "a", 4: "b", 5: "a", 6: "b"}, id="two-racks"),
    ],
)
def test_leaders_and_replicas_spread_evenly_over_the_brokers(seed, layout):
    brokers = _brokers(layout)
    placed = place_replicas(brokers, range(60), 3, random.Random(seed))
    leaders = Counter(replicas[0] for replicas in placed.values())
    assert leaders == dict.fromkeys(range(1, 7), 10)
    held = Counter(r for replicas in placed.values() for r in replicas)
    assert held == dict.fromkeys(range(1, 7), 30)


def test_leaders_of_small_topics_start_at_a_random_broker():
    brokers = _brokers({1: None, 2: None, 3: None})
    firsts = {place_replicas(brokers, range(1), 1, random.Random(seed))[0][0] for seed in range(30)}
    assert firsts == {1, 2, 3}


def test_the_same_seed_places_the_same_way():
    brokers = _brokers({1: "a", 2: "b", 3: "c", 4: "a"})
    first = place_replicas(brokers, range(10), 2, random.Random(42))
    assert place_replicas(brokers, range(10), 2, random.Random(42)) == first
