"""NetworkClient on real sockets: a kbench broker subprocess for protocol round trips, plain
sockets in the test for peers that refuse, close, talk garbage or never answer. The test drives
the client with its own selector loop, as the broker's event loop does. Deadlines only keep a
broken client from hanging the run; nothing asserts on speed."""

import logging
import selectors
import socket
import struct
import threading
import time
from collections.abc import Callable

import pytest
from kafka.protocol.metadata.api_versions import ApiVersionsRequest, ApiVersionsResponse
from kafka.protocol.metadata.metadata import MetadataRequest, MetadataResponse

from engine.protocol.client import ProtocolError, read_frame
from engine.protocol.network_client import NetworkClient, RequestTimeoutError
from tests.conftest import broker_process

_GIVE_UP_S = 30.0  # only so that a broken client fails a test instead of hanging it


def real_time_ms() -> int:
    return time.monotonic_ns() // 1_000_000


class FakeClock:
    """Time that moves only when the test moves it (request timeouts, backoff)."""

    def __init__(self) -> None:
        self.now = 1_000_000

    def __call__(self) -> int:
        return self.now


class Loop:
    """The owner's side: a selector the client is attached to, polled as the broker's loop does
    (handle_events for ready keys, then tick)."""

    def __init__(self, client: NetworkClient) -> None:
        self.client = client
        self.selector = selectors.DefaultSelector()
        client.attach(self.selector)

    def poll(self, timeout: float = 0.01) -> None:
        for key, events in self.selector.select(timeout):
            key.data.handle_events(events)
        self.client.tick()

    def until(self, condition: Callable[[], object]) -> None:
        give_up = time.monotonic() + _GIVE_UP_S
        while not condition():
            if time.monotonic() > give_up:
                raise AssertionError("the condition did not come true")
            self.poll()

    def close(self) -> None:
        self.client.close()
        self.selector.close()


class Results:
    """What the callbacks got, in the order they ran."""

    def __init__(self) -> None:
        self.calls: list[tuple[object, object, Exception | None]] = []

    def callback(self, tag: object) -> Callable[[object, Exception | None], None]:
        return lambda response, error: self.calls.append((tag, response, error))

    def __len__(self) -> int:
        return len(self.calls)

    @property
    def tags(self) -> list[object]:
        return [tag for tag, _, _ in self.calls]

    @property
    def errors(self) -> list[Exception | None]:
        return [error for _, _, error in self.calls]


class Peer:
    """A plain TCP peer on a thread; it accepts one connection and then, per request frame:
    'silent' never answers, 'close' closes the connection, 'reply' sends `reply` (bytes, or a
    function of the request frame)."""

    def __init__(
        self, role: str, reply: bytes | Callable[[bytes], bytes] = b"", port: int = 0
    ) -> None:
        self.listener = socket.create_server(("127.0.0.1", port))
        self.listener.settimeout(_GIVE_UP_S)
        self.address = f"127.0.0.1:{self.listener.getsockname()[1]}"
        self.frames: list[bytes] = []
        self.accepted = threading.Event()
        self.eof = threading.Event()  # the client closed its end
        self._thread = threading.Thread(target=self._serve, args=(role, reply), daemon=True)
        self._thread.start()

    def _serve(self, role: str, reply: bytes | Callable[[bytes], bytes]) -> None:
        with self.listener:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
        self.accepted.set()
        with sock:
            sock.settimeout(_GIVE_UP_S)
            try:
                while True:
                    _, frame = read_frame(sock, None, 1 << 20)
                    self.frames.append(bytes(frame))
                    if role == "close":
                        return
                    if role == "reply":
                        sock.sendall(reply(frame) if callable(reply) else reply)
            except (ProtocolError, OSError):  # ConnectionClosed at EOF is a ProtocolError
                self.eof.set()


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def metadata() -> MetadataRequest:
    return MetadataRequest(version=12, topics=None)


@pytest.fixture(scope="module")
def kafka(tmp_path_factory: pytest.TempPathFactory):
    """A kbench broker's "host:port", shared by this module's tests."""
    running = broker_process(str(tmp_path_factory.mktemp("broker") / "data")).start()
    yield running.bootstrap
    running.stop()


@pytest.fixture
def loop():
    running = Loop(NetworkClient("kbench-test", real_time_ms))
    yield running
    running.close()


def fake_clock_loop(clock: FakeClock, **settings: int) -> Loop:
    return Loop(NetworkClient("kbench-test", clock, **settings))


# -- round trips ------------------------------------------------------------------------------


def test_metadata_and_api_versions_round_trips(kafka, loop):
    results = Results()
    loop.client.send(kafka, metadata(), MetadataResponse, results.callback("metadata"))
    request = ApiVersionsRequest(
        version=3, client_software_name="kbench-test", client_software_version="0"
    )
    loop.client.send(kafka, request, ApiVersionsResponse, results.callback("versions"))
    assert loop.client.in_flight(kafka) == 2
    loop.until(lambda: len(results) == 2)

    assert results.tags == ["metadata", "versions"]
    assert results.errors == [None, None]
    meta, versions = results.calls[0][1], results.calls[1][1]
    assert isinstance(meta, MetadataResponse)
    assert [f"{b.host}:{b.port}" for b in meta.brokers] == [kafka]
    assert isinstance(versions, ApiVersionsResponse)
    assert versions.error_code == 0
    assert {k.api_key for k in versions.api_keys} >= {MetadataRequest.API_KEY, 18}
    assert loop.client.in_flight(kafka) == 0
    assert loop.client.ready(kafka)


def test_pipelined_requests_are_answered_in_order(kafka, loop):
    results = Results()
    for i in range(10):
        loop.client.send(kafka, metadata(), MetadataResponse, results.callback(i))
    assert loop.client.in_flight(kafka) == 10
    loop.until(lambda: len(results) == 10)

    assert results.tags == list(range(10))
    assert results.errors == [None] * 10
    correlation_ids = [response.header.correlation_id for _, response, _ in results.calls]
    assert correlation_ids == sorted(correlation_ids)
    assert len(set(correlation_ids)) == 10


def test_large_responses_arrive_in_pieces():
    """Responses larger than the first receive buffer, two pipelined, cut from many reads."""
    entries = 40_000  # 6 bytes each: a 240 KB frame

    ApiVersion = ApiVersionsResponse.ApiVersion

    def versions(request_frame: bytes) -> bytes:
        (correlation_id,) = struct.unpack_from(">i", request_frame, 4)  # after key and version
        response = ApiVersionsResponse[0](
            error_code=0,
            api_keys=[
                ApiVersion(api_key=i % 100, min_version=0, max_version=i % 30_000)
                for i in range(entries)
            ],
        )
        response.with_header(correlation_id=correlation_id)
        return response.encode(header=True, framed=True)

    loop = Loop(NetworkClient("kbench-test", real_time_ms))
    peer = Peer("reply", versions)
    results = Results()
    try:
        for i in range(2):
            request = ApiVersionsRequest[0]()
            loop.client.send(peer.address, request, ApiVersionsResponse, results.callback(i))
        loop.until(lambda: len(results) == 2)
        assert results.tags == [0, 1]
        assert results.errors == [None, None]
        for _, response, _ in results.calls:
            assert len(response.api_keys) == entries
            assert response.api_keys[-1].max_version == (entries - 1) % 30_000
    finally:
        loop.close()


# -- failures ---------------------------------------------------------------------------------


def test_refused_connection_backs_off_then_retries():
    clock = FakeClock()
    loop = fake_clock_loop(clock, reconnect_backoff_ms=100, reconnect_backoff_max_ms=400)
    client, port = loop.client, closed_port()
    address = f"127.0.0.1:{port}"
    results = Results()
    try:
        client.send(address, metadata(), MetadataResponse, results.callback("first"))
        loop.until(lambda: len(results) == 1)
        assert isinstance(results.errors[0], ConnectionRefusedError)
        assert not client.ready(address)
        assert client.next_deadline_ms() == clock.now + 100  # asked for: reconnected then

        # in backoff: refused at once without a connect, not queued
        client.send(address, metadata(), MetadataResponse, results.callback("in backoff"))
        assert client.in_flight(address) == 0
        loop.until(lambda: len(results) == 2)
        error = results.errors[1]
        assert isinstance(error, ConnectionError)
        assert not isinstance(error, ConnectionRefusedError)
        assert "backoff" in str(error)

        # the backoff is over: a new attempt, refused again, and the backoff doubles
        clock.now += 100
        client.send(address, metadata(), MetadataResponse, results.callback("second"))
        loop.until(lambda: len(results) == 3)
        assert isinstance(results.errors[2], ConnectionRefusedError)
        clock.now += 100
        client.send(address, metadata(), MetadataResponse, results.callback("still backing"))
        loop.until(lambda: len(results) == 4)
        assert "backoff" in str(results.errors[3])

        # something listens now; the tick after the backoff reconnects the asked-for destination
        peer = Peer("silent", port=port)
        clock.now += 400
        loop.until(peer.accepted.is_set)
        loop.until(lambda: client.ready(address))
        assert results.tags == ["first", "in backoff", "second", "still backing"]
    finally:
        loop.close()


def test_peer_closing_fails_its_requests_and_others_are_served(kafka, loop):
    peer = Peer("close")
    results = Results()
    for i in range(3):
        loop.client.send(peer.address, metadata(), MetadataResponse, results.callback(i))
    loop.client.send(kafka, metadata(), MetadataResponse, results.callback("kafka"))
    loop.until(lambda: len(results) == 4)

    failed = [(tag, error) for tag, _, error in results.calls if tag != "kafka"]
    assert [tag for tag, _ in failed] == [0, 1, 2]
    assert all(isinstance(error, ConnectionError) for _, error in failed)
    assert results.calls[results.tags.index("kafka")][2] is None
    assert loop.client.in_flight(peer.address) == 0
    assert not loop.client.ready(peer.address)

    loop.client.send(kafka, metadata(), MetadataResponse, results.callback("again"))
    loop.until(lambda: len(results) == 5)
    assert results.calls[4][0] == "again" and results.calls[4][2] is None


@pytest.mark.parametrize(
    "reply",
    [
        struct.pack(">ii", 4, 999_999),  # a frame answering a request that was never sent
        struct.pack(">i", 0x7FFFFFFF),  # a frame larger than max_response_bytes
        struct.pack(">ii", 6, 1) + b"\xff\xff",  # the right correlation id, then garbage
    ],
    ids=["correlation-id", "oversized", "undecodable"],
)
def test_bad_response_fails_all_in_flight_with_protocol_error(kafka, reply):
    loop = Loop(NetworkClient("kbench-test", real_time_ms, max_response_bytes=1 << 20))
    peer = Peer("reply", reply)
    results = Results()
    try:
        for i in range(3):
            loop.client.send(peer.address, metadata(), MetadataResponse, results.callback(i))
        loop.until(lambda: len(results) == 3)
        assert results.tags == [0, 1, 2]
        assert all(isinstance(error, ProtocolError) for error in results.errors)
        assert peer.eof.wait(_GIVE_UP_S)  # the client closed the connection

        loop.client.send(kafka, metadata(), MetadataResponse, results.callback("kafka"))
        loop.until(lambda: len(results) == 4)
        assert results.errors[3] is None
    finally:
        loop.close()


def test_request_timeout_fails_the_request_and_closes_the_connection():
    clock = FakeClock()
    loop = fake_clock_loop(clock, request_timeout_ms=5_000)
    peer = Peer("silent")
    results = Results()
    try:
        loop.client.send(peer.address, metadata(), MetadataResponse, results.callback("old"))
        loop.until(lambda: loop.client.ready(peer.address))  # connected, written
        clock.now += 1_000
        loop.client.send(peer.address, metadata(), MetadataResponse, results.callback("new"))
        loop.until(lambda: len(peer.frames) == 2)
        assert loop.client.next_deadline_ms() == clock.now - 1_000 + 5_000

        clock.now += 4_000  # the first is due, the second is not
        loop.poll()
        assert results.tags == ["old", "new"]
        old, new = results.errors
        assert isinstance(old, RequestTimeoutError) and isinstance(old, TimeoutError)
        assert isinstance(new, ConnectionError) and not isinstance(new, TimeoutError)
        assert loop.client.in_flight(peer.address) == 0
        assert peer.eof.wait(_GIVE_UP_S)
    finally:
        loop.close()


# -- callbacks --------------------------------------------------------------------------------


def test_a_raising_callback_does_not_stop_the_others(kafka, loop, caplog):
    results = Results()

    def explode(response: object, error: Exception | None) -> None:
        results.calls.append(("explode", response, error))
        raise RuntimeError("boom")

    loop.client.send(kafka, metadata(), MetadataResponse, explode)
    loop.client.send(kafka, metadata(), MetadataResponse, results.callback("next"))
    with caplog.at_level(logging.ERROR, logger="engine.protocol.network_client"):
        loop.until(lambda: len(results) == 2)
    assert results.tags == ["explode", "next"]
    assert results.errors == [None, None]
    assert any(r.exc_info and "boom" in str(r.exc_info[1]) for r in caplog.records)
    loop.client.send(kafka, metadata(), MetadataResponse, results.callback("after"))
    loop.until(lambda: len(results) == 3)
    assert results.errors[2] is None


def test_send_from_a_callback(kafka, loop):
    results = Results()
    versions = ApiVersionsRequest(version=0)

    def then_versions(response: object, error: Exception | None) -> None:
        results.calls.append(("metadata", response, error))
        loop.client.send(kafka, versions, ApiVersionsResponse, results.callback("versions"))

    loop.client.send(kafka, metadata(), MetadataResponse, then_versions)
    loop.until(lambda: len(results) == 2)
    assert results.tags == ["metadata", "versions"]
    assert results.errors == [None, None]
    assert isinstance(results.calls[1][1], ApiVersionsResponse)


def test_a_failure_callback_sending_again_is_refused_by_the_backoff():
    loop = Loop(NetworkClient("kbench-test", real_time_ms, reconnect_backoff_ms=60_000))
    address = f"127.0.0.1:{closed_port()}"
    results = Results()

    def retry(response: object, error: Exception | None) -> None:
        results.calls.append(("first", response, error))
        loop.client.send(address, metadata(), MetadataResponse, results.callback("retry"))

    try:
        loop.client.send(address, metadata(), MetadataResponse, retry)
        loop.until(lambda: len(results) == 2)
        assert results.tags == ["first", "retry"]
        assert isinstance(results.errors[0], ConnectionRefusedError)
        assert "backoff" in str(results.errors[1])
    finally:
        loop.close()


def test_expect_no_response_completes_once_written():
    loop = Loop(NetworkClient("kbench-test", real_time_ms))
    peer = Peer("silent")
    results = Results()
    try:
        loop.client.send(
            peer.address,
            metadata(),
            MetadataResponse,
            results.callback("acks=0"),
            expect_response=False,
        )
        loop.until(lambda: len(results) == 1)
        assert results.calls == [("acks=0", None, None)]
        assert loop.client.in_flight(peer.address) == 0
        loop.until(lambda: len(peer.frames) == 1)
    finally:
        loop.close()


def test_disconnect_fails_its_requests_and_backs_off():
    loop = Loop(NetworkClient("kbench-test", real_time_ms, reconnect_backoff_ms=60_000))
    peer = Peer("silent")
    results = Results()
    try:
        loop.client.send(peer.address, metadata(), MetadataResponse, results.callback("sent"))
        loop.until(lambda: loop.client.ready(peer.address))
        loop.client.disconnect(peer.address)
        assert results.tags == ["sent"]
        assert isinstance(results.errors[0], ConnectionError)
        assert loop.client.in_flight(peer.address) == 0
        assert not loop.client.ready(peer.address)  # in backoff
        assert peer.eof.wait(_GIVE_UP_S)
    finally:
        loop.close()


def test_close_fails_everything_in_flight(kafka):
    loop = Loop(NetworkClient("kbench-test", real_time_ms))
    peer = Peer("silent")
    results = Results()
    try:
        loop.client.send(peer.address, metadata(), MetadataResponse, results.callback("written"))
        loop.until(lambda: loop.client.ready(peer.address))
        loop.client.send(kafka, metadata(), MetadataResponse, results.callback("queued"))

        loop.client.close()
        assert sorted(results.tags) == ["queued", "written"]
        assert all(isinstance(error, ConnectionError) for error in results.errors)
        assert not loop.selector.get_map()  # every socket left the selector
        assert peer.eof.wait(_GIVE_UP_S)
        with pytest.raises(RuntimeError):
            loop.client.send(kafka, metadata(), MetadataResponse, results.callback("late"))
        assert loop.client.next_deadline_ms() is None
    finally:
        loop.close()


def test_close_after_the_selector_closed(kafka):
    """The broker closes its selector, then its client: the sockets are closed all the same."""
    loop = Loop(NetworkClient("kbench-test", real_time_ms))
    results = Results()
    loop.client.send(kafka, metadata(), MetadataResponse, results.callback("queued"))
    loop.selector.close()
    loop.client.close()
    assert len(results) == 1 and isinstance(results.errors[0], ConnectionError)
