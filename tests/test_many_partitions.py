"""Many partitions: max.broker.partitions bounds what a request creates, partitions cost no file
descriptor until used, and a directory with more partitions than descriptors starts and serves."""

import contextlib
import os
import random
import resource
import signal
import subprocess
from unittest import mock

from engine.broker.broker_server import BrokerServer
from engine.broker.config import KafkaConfig
from engine.common import TopicPartition
from engine.errors import NONE, POLICY_VIOLATION  # what Kafka's controller answers
from engine.protocol.apis import APIS, ApiKeys
from engine.records import SimpleRecord, build_batch, decode_records, iter_batches
from scenarios.clients import local_broker
from scenarios.clients.cluster import KafkaConnection
from scenarios.clients.fetch_client import fetch_request
from scenarios.clients.local_broker import LocalBroker
from tests.conftest import TEST_BROKER_SETTINGS, broker_process


class Client:
    """Raw requests on one connection (kbench's own client side, scenarios.clients.cluster)."""

    def __init__(self, broker: LocalBroker) -> None:
        self.connection = KafkaConnection(
            broker.bootstrap, timeout_s=60, client_id="many-partitions"
        )

    def close(self) -> None:
        self.connection.close()

    def call(self, api: ApiKeys, version: int, request):
        assert version == request.API_VERSION
        return self.connection.request(request, APIS[api][1])

    def create_topics(self, partitions: dict[str, int], validate_only: bool = False) -> dict:
        cls = APIS[ApiKeys.CREATE_TOPICS][0][7]
        topics = [
            cls.CreatableTopic(
                name=name, num_partitions=n, replication_factor=1, assignments=[], configs=[]
            )
            for name, n in partitions.items()
        ]
        request = cls(topics=topics, timeout_ms=60_000, validate_only=validate_only)
        response = self.call(ApiKeys.CREATE_TOPICS, 7, request)
        return {t.name: (t.error_code, t.error_message) for t in response.topics}

    def create_partitions(self, topic: str, count: int) -> tuple[int, str | None]:
        cls = APIS[ApiKeys.CREATE_PARTITIONS][0][3]
        request = cls(
            topics=[cls.CreatePartitionsTopic(name=topic, count=count, assignments=None)],
            timeout_ms=60_000,
            validate_only=False,
        )
        [result] = self.call(ApiKeys.CREATE_PARTITIONS, 3, request).results
        return result.error_code, result.error_message

    def produce(self, topic: str, partition: int, value: bytes) -> tuple[int, int]:
        cls = APIS[ApiKeys.PRODUCE][0][9]
        records = bytes(build_batch([SimpleRecord(value)]))
        data = cls.TopicProduceData.PartitionProduceData(index=partition, records=records)
        request = cls(
            transactional_id=None,
            acks=1,
            timeout_ms=10_000,
            topic_data=[cls.TopicProduceData(name=topic, partition_data=[data])],
        )
        response = self.call(ApiKeys.PRODUCE, 9, request)
        result = response.responses[0].partition_responses[0]
        return result.error_code, result.base_offset

    def fetch(self, topic: str, partition: int) -> list[bytes]:
        request = fetch_request(topic, partition, 0, 1 << 20, min_bytes=0, version=12)
        [fetched] = self.call(ApiKeys.FETCH, 12, request).responses[0].partitions
        assert fetched.error_code == NONE
        batches = iter_batches(bytearray(fetched.records or b""))
        return [r.value for b in batches for r in decode_records(b)]


def partition_dirs(data_dir: str, topic: str) -> list[str]:
    return sorted(n for n in os.listdir(data_dir) if n.rsplit("-", 1)[0] == topic)


def test_a_request_over_max_broker_partitions_is_refused_and_creates_nothing(tmp_path):
    data_dir = str(tmp_path / "data")
    broker = broker_process(data_dir, **{"max.broker.partitions": "20"}).start()
    client = Client(broker)
    try:
        # 1 partition of __consumer_offsets + 5: the second topic, 15 more, would make 21
        results = client.create_topics({"fits": 5, "over": 15})
        assert results["fits"] == (NONE, None)
        error, message = results["over"]
        assert error == POLICY_VIOLATION and "max.broker.partitions (20)" in message
        assert partition_dirs(data_dir, "over") == []  # all or nothing per topic
        error, message = client.create_topics({"over": 15}, validate_only=True)["over"]
        assert error == POLICY_VIOLATION

        # what issue 9 sent: one request for a million partitions
        error, message = client.create_topics({"huge": 1_000_000})["huge"]
        assert error == POLICY_VIOLATION and "1000000" in message
        error, message = client.create_partitions("fits", 1_000_000)
        assert error == POLICY_VIOLATION and "max.broker.partitions" in message
        assert partition_dirs(data_dir, "huge") == []
        assert len(partition_dirs(data_dir, "fits")) == 5

        assert client.create_partitions("fits", 19) == (NONE, None)  # exactly up to the limit
        assert client.produce("fits", 18, b"still serving") == (NONE, 0)
        assert client.fetch("fits", 18) == [b"still serving"]
    finally:
        client.close()
        assert broker.stop() == 0


def open_fds(directory) -> int:
    """This process's descriptors of files under `directory`: only the broker's own (the
    process's other descriptors come and go with earlier tests' clients and their threads)."""
    inside = str(directory) + os.sep
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # closed since it was listed
            count += os.readlink(f"/proc/self/fd/{fd}").startswith(inside)
    return count


def test_partitions_hold_no_descriptor_until_used_and_at_most_the_budget_after(tmp_path):
    broker = BrokerServer(KafkaConfig(log_dir=str(tmp_path)))
    before = open_fds(tmp_path)
    broker.topics.create_topic("wide", 300)
    assert open_fds(tmp_path) == before  # no segment or index file opened, or even made
    assert not [n for n in os.listdir(tmp_path / "wide-7") if n != "partition.metadata"]

    handles = broker.log_manager.file_handles
    handles.capacity = 10
    opens = handles.opens
    logs = [broker.topics.partition(TopicPartition("wide", p)).log for p in range(300)]
    for i, log in enumerate(logs):
        log.append_as_leader(build_batch([SimpleRecord(b"%d" % i)]))
    assert len(handles) == 10 and open_fds(tmp_path) <= before + 10
    for i in range(100):  # the partition being produced to keeps its descriptor
        logs[299].append_as_leader(build_batch([SimpleRecord(b"again %d" % i)]))
    assert handles.opens == opens + 300
    for i, log in enumerate(logs):  # closed files reopen for reads
        values = [
            r.value for b in iter_batches(log.read(0, 1 << 20).read()) for r in decode_records(b)
        ]
        assert values[0] == b"%d" % i
    broker.shutdown()
    assert open_fds(tmp_path) < before


class LimitedBroker(LocalBroker):
    """`kbench broker` under resource limits, as `prlimit` runs it: limits maps RLIMIT_* to
    (soft, hard); signals in ignore start ignored (an ignored signal stays so across exec)."""

    def __init__(
        self,
        data_dir: str,
        limits: dict[int, tuple[int, int]],
        settings: dict[str, str] | None = None,
        ignore: tuple[int, ...] = (),
    ) -> None:
        super().__init__(data_dir, {**TEST_BROKER_SETTINGS, **(settings or {})})
        self.limits = limits
        self.ignore = ignore

    def _limit(self) -> None:
        for which, limit in self.limits.items():
            resource.setrlimit(which, limit)
        for signum in self.ignore:
            signal.signal(signum, signal.SIG_IGN)

    def start(self, port: int = 0) -> "LimitedBroker":
        popen = subprocess.Popen
        with mock.patch.object(
            local_broker.subprocess, "Popen", lambda *a, **k: popen(*a, preexec_fn=self._limit, **k)
        ):
            super().start(port)
        return self


def log_since(path: str, offset: int) -> str:
    with open(path, encoding="utf-8", errors="replace") as f:
        f.seek(offset)
        return f.read()


def test_more_partitions_than_descriptors_start_and_serve(tmp_path):
    """5,000 partitions, made by a broker with the usual limit, then served under 1,024
    descriptors (soft and hard): before, the start failed with EMFILE."""
    data_dir = str(tmp_path / "data")
    topics = {f"wide{t}": 1_000 for t in range(5)}
    first = broker_process(data_dir).start()
    client = Client(first)
    assert client.create_topics(topics) == dict.fromkeys(topics, (NONE, None))
    client.close()
    assert first.stop() == 0
    assert sum(len(partition_dirs(data_dir, t)) for t in topics) == 5_000

    broker = LimitedBroker(data_dir, {resource.RLIMIT_NOFILE: (1024, 1024)})
    log_path = broker.log_path
    mark = os.path.getsize(log_path)
    broker.start()
    chosen = random.Random(9).sample([(t, p) for t in topics for p in range(1_000)], 12)
    try:
        client = Client(broker)
        for t, p in chosen:
            assert client.produce(t, p, f"{t}-{p}".encode()) == (NONE, 0)
        for t, p in chosen:
            assert client.fetch(t, p) == [f"{t}-{p}".encode()]
        assert len(os.listdir(f"/proc/{broker.pid}/fd")) < 1024
        client.close()
        started = log_since(log_path, mark)
        assert "RLIMIT_NOFILE) is 1024" in started and "512 segment files" in started

        broker.stop(signal.SIGKILL)  # and a crash: recovery runs under the limit too
        mark = os.path.getsize(log_path)
        broker.start()
        client = Client(broker)
        for t, p in chosen:
            assert client.fetch(t, p) == [f"{t}-{p}".encode()]
            assert client.produce(t, p, b"after") == (NONE, 1)
        client.close()
        assert "not shut down cleanly: recovering 5001 partitions" in log_since(log_path, mark)
    finally:
        code = broker.stop()
    assert code == 0 and "stopped cleanly" in log_since(log_path, mark)
