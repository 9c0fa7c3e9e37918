"""The broker on the wire: bad input, ordering of pipelined responses, KIP-511, zero copy on and
off, stats, and a clean shutdown on SIGTERM."""

import json
import os
import pathlib
import socket
import struct
import threading
import urllib.request

import pytest
from kafka import KafkaConsumer, KafkaProducer
from kafka.protocol.consumer.fetch import FetchRequest, FetchResponse
from kafka.protocol.metadata.api_versions import ApiVersionsRequest, ApiVersionsResponse
from kafka.protocol.metadata.metadata import MetadataRequest, MetadataResponse
from kafka.protocol.producer.produce import ProduceRequest, ProduceResponse

from engine.errors import CORRUPT_MESSAGE, MESSAGE_TOO_LARGE, UNSUPPORTED_VERSION
from engine.protocol import client as protocol_client
from engine.protocol.client import encode_request
from engine.records import SimpleRecord, build_batch
from scenarios.clients.fetch_client import fetch_request
from tests.conftest import broker_process


def connect(broker) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", broker.port), timeout=10)
    return sock


def frame(request, correlation_id: int) -> bytes:
    return encode_request(request, correlation_id, "raw")


def read_frame(sock: socket.socket) -> bytes | None:
    """The next response frame, or None when the broker closed the connection."""
    try:
        return bytes(protocol_client.read_frame(sock, None, 1 << 30)[1])
    except protocol_client.ConnectionClosed:
        return None


def closed_by_peer(sock: socket.socket) -> bool:
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def http_stats(broker) -> dict:
    with urllib.request.urlopen(f"http://{broker.bootstrap}/stats", timeout=10) as response:
        return json.loads(response.read())


def metadata_request(topics=None):
    cls = MetadataRequest[9]
    names = None if topics is None else [cls.MetadataRequestTopic(name=t) for t in topics]
    return cls(topics=names, allow_auto_topic_creation=False)


class SteadyProducer(threading.Thread):
    """A client producing the whole time bad input arrives on other connections."""

    def __init__(self, bootstrap: str) -> None:
        super().__init__(daemon=True)
        self.bootstrap = bootstrap
        self.stop = threading.Event()
        self.acked = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            producer = KafkaProducer(bootstrap_servers=self.bootstrap, linger_ms=1)
            while not self.stop.is_set():
                producer.send("steady", b"tick-%d" % self.acked).get(timeout=10)
                self.acked += 1
            producer.close()
        except BaseException as exc:  # reported by the test
            self.error = exc


BAD_INPUTS = {
    "random-bytes": os.urandom(64),
    "truncated-frame": struct.pack(">i", 100) + b"\x00\x03\x00\x09",
    "over-max-size": struct.pack(">i", 200 * 1024 * 1024) + b"\x00" * 16,
    "garbage-body": struct.pack(">ihhi", 14, 3, 9, 77) + b"\x00\x03raw" + b"\xff\xff\xff",
    "negative-size": struct.pack(">i", -5),
}


def test_bad_input_closes_only_that_connection(broker):
    steady = SteadyProducer(broker.bootstrap)
    steady.start()
    while steady.acked < 20 and steady.error is None:
        threading.Event().wait(0.05)
    for name, data in BAD_INPUTS.items():
        sock = connect(broker)
        sock.sendall(data)
        if name == "truncated-frame":
            sock.shutdown(socket.SHUT_WR)  # the rest never comes
        assert closed_by_peer(sock), name
        sock.close()
    acked_during = steady.acked
    threading.Event().wait(0.5)
    steady.stop.set()
    steady.join(timeout=30)
    assert steady.error is None
    assert steady.acked > acked_during  # still producing after every bad connection
    consumer = KafkaConsumer(
        "steady",
        bootstrap_servers=broker.bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=3000,
    )
    assert [m.value for m in consumer] == [b"tick-%d" % i for i in range(steady.acked)]
    consumer.close()
    stats = http_stats(broker)
    assert stats["connections_closed_on_error"] >= len(BAD_INPUTS) - 1


def test_an_unknown_api_key_gets_unsupported_version_then_close(broker):
    with connect(broker) as sock:
        sock.sendall(struct.pack(">ihhih", 10, 999, 0, 31, -1))  # api key 999, null client id
        response = read_frame(sock)
        assert struct.unpack(">ih", response) == (31, UNSUPPORTED_VERSION)
        assert closed_by_peer(sock)


def test_api_versions_of_an_unknown_version_is_answered_as_v0(broker):
    """KIP-511: the client learns the supported range and retries lower."""
    sock = connect(broker)
    request = ApiVersionsRequest[3](client_software_name="future", client_software_version="9")
    data = bytearray(frame(request, 12))
    data[6:8] = struct.pack(">h", 77)  # a version from the future
    sock.sendall(data)
    response = ApiVersionsResponse.decode(read_frame(sock), version=0, header=True)
    assert response.header.correlation_id == 12
    assert response.error_code == UNSUPPORTED_VERSION
    ranges = {k.api_key: (k.min_version, k.max_version) for k in response.api_keys}
    assert ranges[18] == (0, 3) and ranges[1] == (4, 17) and ranges[0] == (3, 9)
    sock.close()


def test_pipelined_responses_keep_request_order(broker):
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap)
    producer.send("ordered", b"x").get(timeout=10)
    producer.close()
    fetch = FetchRequest[11](
        replica_id=-1,
        max_wait_ms=800,
        min_bytes=1 << 20,
        max_bytes=1 << 20,
        isolation_level=0,
        session_id=0,
        session_epoch=-1,
        topics=[
            FetchRequest[11].FetchTopic(
                topic="ordered",
                partitions=[
                    FetchRequest[11].FetchTopic.FetchPartition(
                        partition=0,
                        current_leader_epoch=-1,
                        fetch_offset=0,
                        log_start_offset=-1,
                        partition_max_bytes=1 << 20,
                    )
                ],
            )
        ],
        forgotten_topics_data=[],
        rack_id="",
    )
    sock = connect(broker)
    # a long-poll fetch (waits for 1 MiB that never comes), then two quick metadata requests
    sock.sendall(frame(fetch, 1) + frame(metadata_request(), 2) + frame(metadata_request(), 3))
    order = [struct.unpack_from(">i", read_frame(sock))[0] for _ in range(3)]
    assert order == [1, 2, 3]
    sock.close()


def test_a_waiting_fetch_is_answered_when_records_arrive(broker):
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap)
    producer.send("wakeup", b"first").get(timeout=10)
    fetch = fetch_request("wakeup", 0, 1, 1 << 20, max_wait_ms=600_000, version=12)
    with connect(broker) as sock:  # 10 s socket timeout: far below the 10-minute max wait
        sock.sendall(frame(fetch, 9))
        producer.send("wakeup", b"second").get(timeout=10)
        response = FetchResponse.decode(read_frame(sock), version=12, header=True)
    producer.close()
    [partition] = response.responses[0].partitions
    assert partition.high_watermark == 2
    assert b"second" in partition.records


def produce_raw(sock, topic: str, records: bytes, correlation_id: int):
    cls = ProduceRequest[9]
    partition = cls.TopicProduceData.PartitionProduceData(index=0, records=records)
    request = cls(
        transactional_id=None,
        acks=1,
        timeout_ms=5000,
        topic_data=[cls.TopicProduceData(name=topic, partition_data=[partition])],
    )
    sock.sendall(frame(request, correlation_id))
    response = ProduceResponse.decode(read_frame(sock), version=9, header=True)
    return response.responses[0].partition_responses[0]


def test_a_corrupt_or_oversized_batch_is_refused_and_nothing_is_appended(broker):
    good = bytes(build_batch([SimpleRecord(b"fine")]))
    corrupt = bytearray(build_batch([SimpleRecord(b"flipped")]))
    corrupt[-1] ^= 0xFF
    huge = bytes(build_batch([SimpleRecord(os.urandom(1_100_000))]))  # > max.message.bytes
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap)  # creates the topic
    producer.send("guarded", b"x").get(timeout=10)
    producer.close()
    with connect(broker) as sock:
        assert produce_raw(sock, "guarded", good, 1).base_offset == 1
        refused = produce_raw(sock, "guarded", good + bytes(corrupt), 2)
        assert refused.error_code == CORRUPT_MESSAGE  # and the good batch before it too
        assert produce_raw(sock, "guarded", huge, 3).error_code == MESSAGE_TOO_LARGE
        assert produce_raw(sock, "guarded", good, 4).base_offset == 2  # nothing was appended


def fetch_bytes(broker, topic: str) -> bytes:
    request = FetchRequest[12](
        replica_id=-1,
        max_wait_ms=0,
        min_bytes=0,
        max_bytes=1 << 20,
        isolation_level=0,
        session_id=0,
        session_epoch=-1,
        topics=[
            FetchRequest[12].FetchTopic(
                topic=topic,
                partitions=[
                    FetchRequest[12].FetchTopic.FetchPartition(
                        partition=p,
                        current_leader_epoch=-1,
                        fetch_offset=0,
                        last_fetched_epoch=-1,
                        log_start_offset=-1,
                        partition_max_bytes=64 * 1024,
                    )
                    for p in range(2)
                ],
            )
        ],
        forgotten_topics_data=[],
        rack_id="",
    )
    sock = connect(broker)
    sock.sendall(frame(request, 5))
    response = read_frame(sock)
    sock.close()
    return response


def test_fetch_responses_are_identical_with_zero_copy_on_and_off(tmp_path):
    data_dir = str(tmp_path / "data")
    broker = broker_process(data_dir, **{"num.partitions": "2"}).start()
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, batch_size=4096, linger_ms=2)
    for i in range(3_000):
        producer.send("payments", key=b"%d" % (i % 7), value=os.urandom(40) + b"%d" % i)
    producer.flush()
    producer.close()
    with_sendfile = fetch_bytes(broker, "payments")
    stats_on = http_stats(broker)
    broker.stop()

    copying = broker_process(data_dir, **{"zero.copy.enable": "false"}).start()
    with_copies = fetch_bytes(copying, "payments")
    stats_off = http_stats(copying)
    copying.stop()

    assert with_sendfile == with_copies
    response = FetchResponse.decode(with_sendfile, version=12, header=True)
    sizes = [len(p.records) for t in response.responses for p in t.partitions]
    assert len(sizes) == 2 and all(size > 10_000 for size in sizes)
    assert stats_on["bytes_sendfile"] >= sum(sizes) and stats_on["bytes_copied"] == 0
    assert stats_off["bytes_copied"] >= sum(sizes) and stats_off["bytes_sendfile"] == 0


def test_sigterm_shuts_down_cleanly(tmp_path, run_kbench):
    data_dir = str(tmp_path / "data")
    broker = broker_process(data_dir).start()
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap)
    producer.send("kept", b"value").get(timeout=10)
    producer.close()
    assert broker.stop() == 0
    assert os.path.exists(os.path.join(data_dir, ".kafka_cleanshutdown"))
    checkpoint = pathlib.Path(data_dir, "recovery-point-offset-checkpoint").read_text()
    assert "kept 0 1" in checkpoint.splitlines()
    stats = run_kbench("dump-log", os.path.join(data_dir, "kept-0"), "--verify", "--records")
    assert stats.returncode == 0 and "payload: value" in stats.stdout


def test_broker_stats_command(broker, run_kbench):
    sock = connect(broker)
    sock.sendall(frame(metadata_request(), 1))
    MetadataResponse.decode(read_frame(sock), version=9, header=True)
    sock.close()
    result = run_kbench("broker-stats", broker.bootstrap)
    assert result.returncode == 0, result.stderr
    stats = json.loads(result.stdout)
    assert stats["apis"]["METADATA"]["requests"] >= 1
    assert stats["bytes_in"] > 0 and stats["bytes_out"] > 0


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["broker", "--listen", "localhost"], "expected HOST:PORT"),
        (["broker", "--data-dir", "/tmp/x", "--set", "novalue"], "expected KEY=VALUE"),
        (["broker", "--data-dir", "/tmp/x", "--set", "num.partitions=many"], "must be an integer"),
        (["broker"], "--data-dir DIR is required"),
        (["broker-stats", "nonsense"], "expected HOST:PORT"),
    ],
)
def test_wrong_broker_arguments_say_what_was_expected(run_kbench, args, expected):
    result = run_kbench(*args)
    assert result.returncode == 2
    assert expected in result.stderr
