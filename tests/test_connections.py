"""What a broker owes its connections, and what they may not take from it (a `kbench broker`
subprocess on loopback): memory grows with the bytes that arrive, not with what a length prefix
promises; connections.max.idle.ms, max.connections, max.connections.per.ip and
queued.max.request.bytes as Kafka applies them; an accept that runs out of descriptors backs off
instead of spinning; log lines about single connections are rate-limited."""

import logging
import resource
import select
import socket
import struct
import threading
import time

import psutil
import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.protocol.metadata.api_versions import ApiVersionsRequest, ApiVersionsResponse
from kafka.protocol.producer.produce import ProduceRequest, ProduceResponse

from engine.records import SimpleRecord, build_batch
from engine.server.socket_server import RateLimitedLog
from tests.conftest import broker_process

MIB = 1 << 20
IDLE_MS = 2_000
IDLE_CONNECTIONS = 2_000
SLOWLORIS_CONNECTIONS = 200
SLOWLORIS_CLAIM = 100_000_000  # bytes each length prefix promises (under socket.request.max.bytes)
RSS_BOUND = 200 * MIB  # the broker, serving all of the above (it starts at about 45 MB)


def need_descriptors(count: int) -> None:
    """Raise this process's soft RLIMIT_NOFILE (the broker subprocess inherits it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= count:
        return
    if hard != resource.RLIM_INFINITY and hard < count:
        pytest.skip(f"RLIMIT_NOFILE hard limit {hard} is below the {count} descriptors needed")
    resource.setrlimit(resource.RLIMIT_NOFILE, (count, hard))


def wait_for(condition, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s} s: {what}")
        time.sleep(0.05)


def connect(broker) -> socket.socket:
    return socket.create_connection(("127.0.0.1", broker.port), timeout=10)


def frame(request, correlation_id: int) -> bytes:
    request.with_header(correlation_id=correlation_id, client_id="test-connections")
    body = bytes(request.encode(header=True))
    return struct.pack(">i", len(body)) + body


def read_frame(sock: socket.socket) -> bytes | None:
    data = b""
    while len(data) < 4 or len(data) < 4 + struct.unpack_from(">i", data)[0]:
        chunk = sock.recv(1 << 16)
        if not chunk:
            return None
        data += chunk
    return data[4:]


def api_versions(sock: socket.socket, correlation_id: int) -> bool:
    """True when the broker answers an ApiVersions request on this connection."""
    try:
        sock.sendall(frame(ApiVersionsRequest[0](), correlation_id))
        response = read_frame(sock)
    except (ConnectionResetError, BrokenPipeError, TimeoutError):
        return False
    if response is None:
        return False
    decoded = ApiVersionsResponse.decode(response, version=0, header=True)
    return decoded.header.correlation_id == correlation_id and decoded.error_code == 0


def closed_by_broker(sock: socket.socket) -> bool:
    """True once the broker has closed it (EOF or reset); False while it is open and silent."""
    timeout = sock.gettimeout()
    sock.setblocking(False)
    try:
        return sock.recv(1) == b""
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True
    finally:
        sock.settimeout(timeout)


def log_lines(broker) -> list[str]:
    with open(broker.log_path, errors="replace") as log:
        return log.read().splitlines()


@pytest.fixture
def start_broker(tmp_path):
    started = []

    def start(**settings: str):
        running = broker_process(str(tmp_path / "data"), **settings).start()
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


def test_slowloris_and_idle_connections_take_neither_memory_nor_the_service(start_broker):
    """200 connections promise 100 MB frames and trickle them a byte at a time, 2,000 more send
    nothing, and a kafka-python client is still served while the broker stays small; the idle
    ones are closed after connections.max.idle.ms, the trickling ones (active) are not."""
    need_descriptors(IDLE_CONNECTIONS + SLOWLORIS_CONNECTIONS + 500)
    broker = start_broker(**{"connections.max.idle.ms": str(IDLE_MS)})
    # a safety net: a broker that allocates what length prefixes promise (20 GB here) fails
    # with MemoryError instead of taking the machine's memory
    _, hard = resource.prlimit(broker.pid, resource.RLIMIT_AS)
    resource.prlimit(broker.pid, resource.RLIMIT_AS, (4 << 30, hard))
    process = psutil.Process(broker.pid)
    idle: list[socket.socket] = []
    slow: list[socket.socket] = []
    stop = threading.Event()
    peak_rss = [process.memory_info().rss]
    trickle_errors: list[OSError] = []

    def trickle() -> None:
        while not stop.wait(0.25):
            for sock in slow:
                try:
                    sock.send(b"\x00")
                except OSError as exc:
                    trickle_errors.append(exc)
            peak_rss[0] = max(peak_rss[0], process.memory_info().rss)

    trickler = threading.Thread(target=trickle, daemon=True)
    producer = consumer = None
    try:
        for _ in range(SLOWLORIS_CONNECTIONS):
            sock = connect(broker)
            sock.sendall(struct.pack(">i", SLOWLORIS_CLAIM) + b"\x00")
            slow.append(sock)
        trickler.start()
        idle += [connect(broker) for _ in range(IDLE_CONNECTIONS)]

        producer = KafkaProducer(bootstrap_servers=broker.bootstrap)
        for i in range(1_000):
            producer.send("served", b"record-%d" % i)
        producer.flush(timeout=30)
        consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, enable_auto_commit=False)
        consumer.assign([TopicPartition("served", 0)])
        consumer.seek_to_beginning()
        got: list[bytes] = []
        deadline = time.monotonic() + 30
        while len(got) < 1_000 and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                got += [r.value for r in records]
        assert got == [b"record-%d" % i for i in range(1_000)]

        poller = select.poll()
        for sock in idle:
            poller.register(sock, select.POLLIN)
        pending = {sock.fileno() for sock in idle}

        def idle_ones_closed() -> bool:
            for fd, _ in poller.poll(0):
                pending.discard(fd)
                poller.unregister(fd)
            return not pending

        wait_for(idle_ones_closed, IDLE_MS / 1000 + 15, "the idle connections closed")
        assert all(closed_by_broker(sock) for sock in idle)
        assert not trickle_errors
        assert not any(closed_by_broker(sock) for sock in slow), "active connections were closed"
        peak_rss[0] = max(peak_rss[0], process.memory_info().rss)
        assert peak_rss[0] < RSS_BOUND, f"broker RSS reached {peak_rss[0] / MIB:.0f} MiB"
    finally:
        stop.set()
        if trickler.is_alive():
            trickler.join()
        for client in (producer, consumer):
            if client is not None:
                client.close()
        for sock in idle + slow:
            sock.close()


def test_max_connections_per_ip_closes_the_connections_over_it(start_broker):
    broker = start_broker(**{"max.connections.per.ip": "3"})
    first = [connect(broker) for _ in range(3)]
    try:
        assert all(api_versions(sock, i) for i, sock in enumerate(first))
        over = connect(broker)  # accepted by the kernel, then closed by the broker
        over.settimeout(10)
        assert not api_versions(over, 9)
        over.close()
        assert all(api_versions(sock, 10 + i) for i, sock in enumerate(first))
        assert any("Rejected connection from 127.0.0.1" in line for line in log_lines(broker))

        first.pop().close()  # a slot for this address, once the broker has seen the close
        replacement: list[socket.socket] = []

        def a_new_one_is_served() -> bool:
            sock = connect(broker)
            if api_versions(sock, 20):
                replacement.append(sock)
                return True
            sock.close()
            return False

        wait_for(a_new_one_is_served, 10, "a connection served after one closed")
        first += replacement
    finally:
        for sock in first:
            sock.close()


def test_max_connections_holds_new_connections_until_one_closes(start_broker):
    """As Kafka's acceptor blocks at max.connections: the connection over the limit waits (in
    the listen backlog), unanswered, and is served once another closes."""
    broker = start_broker(**{"max.connections": "3"})
    first = [connect(broker) for _ in range(3)]
    waiting = connect(broker)
    try:
        assert all(api_versions(sock, i) for i, sock in enumerate(first))
        waiting.sendall(frame(ApiVersionsRequest[0](), 7))
        readable, _, _ = select.select([waiting], [], [], 1.0)
        assert not readable, "a connection over max.connections was served"
        first.pop().close()
        waiting.settimeout(10)
        response = read_frame(waiting)
        assert response is not None
        decoded = ApiVersionsResponse.decode(response, version=0, header=True)
        assert decoded.header.correlation_id == 7
        assert all(api_versions(sock, 10 + i) for i, sock in enumerate(first))
    finally:
        for sock in [*first, waiting]:
            sock.close()


def test_accept_out_of_descriptors_backs_off_and_keeps_serving(start_broker):
    broker = start_broker()
    existing = connect(broker)
    extra: list[socket.socket] = []
    soft, hard = resource.prlimit(broker.pid, resource.RLIMIT_NOFILE)
    try:
        assert api_versions(existing, 1)
        # room for three more descriptors, then accept fails with EMFILE
        limit = psutil.Process(broker.pid).num_fds() + 3
        resource.prlimit(broker.pid, resource.RLIMIT_NOFILE, (limit, hard))
        lines_before = len(log_lines(broker))
        for _ in range(40):  # the listen backlog holds what the broker cannot take
            extra.append(connect(broker))
        time.sleep(2)  # the old accept loop logged thousands of lines in this time
        new_lines = log_lines(broker)[lines_before:]
        assert len(new_lines) < 20, f"{len(new_lines)} log lines, from {new_lines[:3]}"
        assert sum("accept failed" in line for line in new_lines) == 1
        assert api_versions(existing, 2), "the existing connection is no longer served"

        resource.prlimit(broker.pid, resource.RLIMIT_NOFILE, (soft, hard))
        for sock in extra:
            sock.close()
        extra = [connect(broker)]
        extra[0].settimeout(15)
        assert api_versions(extra[0], 3), "not served once descriptors were free again"
        assert any("accepting connections again" in line for line in log_lines(broker))
    finally:
        for sock in [existing, *extra]:
            sock.close()


def produce_frame(topic: str, correlation_id: int) -> bytes:
    """A ProduceRequest of about 4 MiB: four batches of 1,000 KB, each under max.message.bytes."""
    batch = bytes(build_batch([SimpleRecord(bytes(100_000))] * 10))
    cls = ProduceRequest[7]
    partition = cls.TopicProduceData.PartitionProduceData(index=0, records=batch * 4)
    request = cls(
        transactional_id=None,
        acks=1,
        timeout_ms=30_000,
        topic_data=[cls.TopicProduceData(name=topic, partition_data=[partition])],
    )
    return frame(request, correlation_id)


def test_queued_max_request_bytes_bounds_requests_in_flight_and_all_complete(start_broker):
    """24 connections each send all but the last byte of a 4 MiB request (96 MiB in flight):
    the broker holds about queued.max.request.bytes (16 MiB) of them, not all; once the last
    bytes go out every request is answered, as others complete and give their memory back."""
    broker = start_broker(
        **{"queued.max.request.bytes": str(16 * MIB), "socket.request.max.bytes": str(8 * MIB)}
    )
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    admin.create_topics([NewTopic("big", 1, 1)])
    admin.close()
    process = psutil.Process(broker.pid)
    rss_before = process.memory_info().rss
    go = threading.Event()
    errors: dict[int, int] = {}

    def client(i: int) -> None:
        data = produce_frame("big", i)
        with connect(broker) as sock:
            sock.settimeout(30)
            sock.sendall(data[:-1])  # blocks while the broker does not read this connection
            go.wait()
            sock.sendall(data[-1:])
            response = ProduceResponse.decode(read_frame(sock), version=7, header=True)
            assert response.header.correlation_id == i
            errors[i] = response.responses[0].partition_responses[0].error_code

    clients = [threading.Thread(target=client, args=(i,)) for i in range(24)]
    for thread in clients:
        thread.start()
    try:
        time.sleep(1.5)  # let the broker read what it will
        held = process.memory_info().rss - rss_before
        assert held < 64 * MIB, f"the broker took {held / MIB:.0f} MiB for 16 MiB of requests"
    finally:
        go.set()
        for thread in clients:
            thread.join(timeout=60)
    assert errors == {i: 0 for i in range(24)}


def test_bad_frames_on_many_connections_log_a_bounded_number_of_lines(start_broker):
    broker = start_broker()
    lines_before = len(log_lines(broker))
    socks = []
    for _ in range(200):
        sock = connect(broker)
        sock.sendall(struct.pack(">i", -5))
        socks.append(sock)
    try:
        wait_for(lambda: all(closed_by_broker(s) for s in socks), 15, "bad connections closed")
        new_lines = log_lines(broker)[lines_before:]
        closing = [line for line in new_lines if "closing connection" in line]
        assert 1 <= len(closing) <= 10
        good = connect(broker)
        assert api_versions(good, 1)
        good.close()
    finally:
        for sock in socks:
            sock.close()


def test_rate_limited_log_reports_what_it_suppressed(caplog):
    now = [100.0]
    limited = RateLimitedLog(logging.getLogger("test.connections"), 3, 10.0, lambda: now[0])
    with caplog.at_level(logging.INFO, logger="test.connections"):
        for i in range(50):
            limited.log(logging.WARNING, "closing connection %d", i)
        assert [r.getMessage() for r in caplog.records] == [
            "closing connection 0",
            "closing connection 1",
            "closing connection 2",
        ]
        limited.flush(now[0] + 5)  # the interval is not over: nothing yet
        assert len(caplog.records) == 3
        limited.flush(now[0] + 10)
        assert caplog.records[-1].getMessage() == (
            "... and 47 more connection messages suppressed in the last 10 s"
        )
        now[0] += 11
        limited.log(logging.WARNING, "closing connection %d", 50)
        assert caplog.records[-1].getMessage() == "closing connection 50"
        assert len(caplog.records) == 5
