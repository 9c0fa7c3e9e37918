"""Every scenario kbench knows, in the order `kbench run` runs them."""

from scenarios.catalog.async_send import AsyncSend
from scenarios.catalog.batch_compression import BatchCompression
from scenarios.catalog.consumer_fetch import ConsumerFetch
from scenarios.catalog.disk_write_pattern import DiskWritePattern
from scenarios.catalog.durability import Durability
from scenarios.catalog.e2e_latency import E2ELatency
from scenarios.catalog.exactly_once import ExactlyOnce
from scenarios.catalog.failover import Failover
from scenarios.catalog.follower_fetch import FollowerFetch
from scenarios.catalog.node_peak import NodePeak
from scenarios.catalog.page_cache import PageCache
from scenarios.catalog.partitions import Partitions
from scenarios.catalog.replication import Replication
from scenarios.catalog.segments import Segments
from scenarios.catalog.sparse_index import SparseIndex
from scenarios.catalog.zero_copy import ZeroCopy
from scenarios.harness.scenario import Scenario

SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        DiskWritePattern(),
        PageCache(),
        ZeroCopy(),
        BatchCompression(),
        SparseIndex(),
        AsyncSend(),
        ConsumerFetch(),
        E2ELatency(),
        Segments(),
        NodePeak(),
        Replication(),
        Failover(),
        Durability(),
        FollowerFetch(),
        Partitions(),
        ExactlyOnce(),
    )
}
