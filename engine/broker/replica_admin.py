"""Handlers of the admin APIs that change or list replica placement and leadership
(ElectLeaders, AlterPartitionReassignments, ListPartitionReassignments, DescribeQuorum) for a
single broker that is its own controller; a cluster member forwards them to the controller."""

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.broker.kafka_apis import KafkaApis


def replica_admin_handlers(apis: "KafkaApis") -> dict[int, Callable[..., Any]]:
    """api key -> handler(context, request, respond), for a broker without a controller."""
    return {}
