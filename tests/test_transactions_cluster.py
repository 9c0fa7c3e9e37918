"""Transactions in a kbench cluster (issue 15): `__transaction_state` is a replicated topic the
controller creates, the coordinator is its leader, and COMMIT/ABORT markers reach the partitions'
leaders over the wire (WriteTxnMarkers) and their followers as ordinary batches, whose
`.txnindex` files then match the leader's."""

import glob
import os
import struct

import pytest
from confluent_kafka import Producer

from scenarios.clients.local_broker import LocalCluster
from tests.cluster_support import CLUSTER_SETTINGS, wait_until
from tests.test_transactions import SETTINGS, consume, new_topic, stable_end

_ENTRY = struct.Struct(">hqqqq")  # Kafka's AbortedTxn


@pytest.fixture(scope="module")
def eos_cluster(tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("eos-cluster"))
    running = LocalCluster(directory, 3, {**CLUSTER_SETTINGS, **SETTINGS}).start()
    yield running
    running.stop()


def aborted_entries(cluster: LocalCluster, node_id: int, topic: str) -> list[tuple[int, ...]]:
    found = []
    pattern = os.path.join(cluster.brokers[node_id].data_dir, f"{topic}-*", "*.txnindex")
    for path in sorted(glob.glob(pattern)):
        with open(path, "rb") as f:
            found += list(_ENTRY.iter_unpack(f.read()))
    return sorted(found)


def test_transactions_across_a_cluster(eos_cluster):
    topic = new_topic(eos_cluster, "eos-cluster", 2, replication_factor=3)
    producer = Producer(
        {"bootstrap.servers": eos_cluster.bootstrap, "transactional.id": "clustered"}
    )
    producer.init_transactions(60)
    for round_, commit in enumerate((True, False, True)):
        producer.begin_transaction()
        for partition in (0, 1):
            producer.produce(topic, f"{round_}-{partition}".encode(), partition=partition)
        producer.flush(30)
        if commit:
            producer.commit_transaction(60)
        else:
            producer.abort_transaction(60)
    # EndTxn is answered once the outcome is in __transaction_state (as Kafka does); the
    # markers follow, and read_committed readers see the records once they are written
    wait_until(
        lambda: all(len(set(stable_end(eos_cluster, topic, p))) == 1 for p in (0, 1)),
        what="the commit markers",
    )
    assert consume(eos_cluster, topic, "read_committed") == ["0-0", "0-1", "2-0", "2-1"]
    assert len(consume(eos_cluster, topic, "read_uncommitted")) == 6

    # every replica appended the same markers: one aborted transaction per partition, indexed
    # alike on the leaders and their followers
    def replicas_agree() -> bool:
        views = [aborted_entries(eos_cluster, n, topic) for n in (1, 2, 3)]
        return len(views[0]) == 2 and all(v == views[0] for v in views)

    wait_until(replicas_agree, what="the same two aborted transactions on every replica")
