"""A real `kbench broker` subprocess, produced to and fetched from over the Kafka protocol."""

import glob
import os
import shutil
import sys

from kafka.admin import KafkaAdminClient

from scenarios.clients.fetch_client import FetchClient
from scenarios.clients.loadgen import BatchProducer
from scenarios.clients.local_broker import LocalBroker
from scenarios.harness.resources import make_resident

from ._common import GIB, MIB, ROUNDS, median, process_cpu_seconds, scratch_dir

PRODUCE_TOPIC = "kbench-asv-produce"
FETCH_TOPIC = "kbench-asv-fetch"
PRODUCE_BYTES = 32 * MIB  # per round: ~512 requests of one ~64 KiB batch
FETCH_LOG_BYTES = 64 * MIB  # the log fetched whole in every round
FETCH_BYTES = MIB  # per Fetch: partition_max_bytes = max_bytes


class ProduceAndFetch:
    """One broker (default settings: sendfile on, no fsync per append) on a free loopback port,
    started once for the class in setup_cache, which measures every figure and stops it.

    Produce: BatchProducer, ProduceRequest v7 acks=1 with one ~64 KiB batch (600 records of 100
    bytes) to one partition, 8 requests in flight, 32 MiB per round, each round to a topic of
    its own, deleted afterwards (its page cache is then reused, not taken afresh). Fetch:
    FetchClient reading a 64 MiB topic (produced and fsynced beforehand, hot in the page cache)
    from offset 0, one 1 MiB Fetch in flight. One warm-up round, then 15 rounds alternating the
    two; medians of the rounds. Broker CPU is its scheduler run time (user + system) around
    each loop."""

    def setup_cache(self):
        root = scratch_dir("broker")
        broker = LocalBroker(os.path.join(root, "data"))
        producer = client = admin = None
        try:
            broker.start()
            producer = BatchProducer(broker.bootstrap)
            admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, client_id="kbench-asv")
            producer.create_topic(FETCH_TOPIC, 1)
            producer.produce(FETCH_TOPIC, 1, FETCH_LOG_BYTES)
            logs = glob.glob(os.path.join(broker.data_dir, f"{FETCH_TOPIC}-0", "*.log"))
            for log in logs:
                fd = os.open(log, os.O_RDONLY)  # written back now, not during a measurement
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            log_bytes = sum(os.path.getsize(log) for log in logs)
            client = FetchClient(broker.bootstrap, client_id="kbench-asv")
            figures = {name: [] for name in ("produce_us", "produce_cpu", "fetch_us", "fetch_cpu")}
            for round_number in range(-1, ROUNDS):
                topic = f"{PRODUCE_TOPIC}-{round_number + 1}"
                producer.create_topic(topic, 1)
                cpu_before = process_cpu_seconds(broker.pid)
                stats = producer.produce(topic, 1, PRODUCE_BYTES)
                produce_cpu = process_cpu_seconds(broker.pid) - cpu_before
                admin.delete_topics([topic])  # its page cache is reused by the next round
                if not make_resident(logs):  # read back where the kernel evicted some
                    print("fetch round with the log not all in the page cache", file=sys.stderr)
                cpu_before = process_cpu_seconds(broker.pid)
                fetched = client.read_all(FETCH_TOPIC, 0, FETCH_BYTES)
                cpu_after = process_cpu_seconds(broker.pid)
                if fetched.batch_bytes != log_bytes:
                    raise RuntimeError(
                        f"fetched {fetched.batch_bytes} bytes of batches, the log holds {log_bytes}"
                    )
                if round_number < 0:
                    continue  # the warm-up
                figures["produce_us"].append(stats.seconds / stats.requests * 1e6)
                figures["produce_cpu"].append(produce_cpu * GIB / stats.bytes)
                figures["fetch_us"].append(fetched.seconds / fetched.requests * 1e6)
                figures["fetch_cpu"].append((cpu_after - cpu_before) * GIB / fetched.bytes)
        except BaseException:
            if os.path.exists(broker.log_path):
                with open(broker.log_path, errors="replace") as log:
                    sys.stderr.write("broker log (tail):\n" + log.read()[-4000:])
            raise
        finally:
            for connection in (producer, client, admin):
                if connection is not None:
                    connection.close()
            broker.stop()
            shutil.rmtree(root, ignore_errors=True)
        return {name: median(values) for name, values in figures.items()}

    setup_cache.timeout = 300

    def track_broker_us_per_produce_request(self, measured):
        return measured["produce_us"]

    track_broker_us_per_produce_request.unit = "us/request"

    def track_broker_us_per_fetch_request(self, measured):
        return measured["fetch_us"]

    track_broker_us_per_fetch_request.unit = "us/request"

    def track_cpu_seconds_per_gib_produce(self, measured):
        return measured["produce_cpu"]

    track_cpu_seconds_per_gib_produce.unit = "CPU-seconds/GiB"

    def track_cpu_seconds_per_gib_fetch(self, measured):
        return measured["fetch_cpu"]

    track_cpu_seconds_per_gib_fetch.unit = "CPU-seconds/GiB"
