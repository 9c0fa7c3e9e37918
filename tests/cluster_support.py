"""What the tests of a kbench cluster share: settings that notice failures in seconds, polling
with a deadline, and putting a cluster back together after a test killed some of it."""

import time
from collections.abc import Callable
from typing import TypeVar

from scenarios.clients.local_broker import LocalCluster
from tests.conftest import TEST_BROKER_SETTINGS

# Failures are noticed in seconds, not Kafka's 9 s sessions and 30 s lag.
CLUSTER_SETTINGS = {
    **TEST_BROKER_SETTINGS,
    "broker.heartbeat.interval.ms": "300",
    "broker.session.timeout.ms": "2000",
    "replica.lag.time.max.ms": "3000",
    "replica.fetch.backoff.ms": "200",
    "default.replication.factor": "3",
    "min.insync.replicas": "2",
}

T = TypeVar("T")


def wait_until(
    condition: Callable[[], T], timeout_s: float = 30.0, what: str = "the condition"
) -> T:
    """Poll until condition() is truthy (a deadline only so a broken cluster fails, not hangs)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"{what} did not happen within {timeout_s:.0f} s")


def restart_stopped(cluster: LocalCluster) -> None:
    """Start every broker a test stopped or killed, and wait until all are alive again."""
    for node_id, broker in cluster.brokers.items():
        if broker.process is not None and broker.process.poll() is not None:
            cluster.restart(node_id)
    cluster.wait_for_brokers(set(cluster.brokers))
