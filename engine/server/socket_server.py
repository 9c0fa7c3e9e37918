"""SocketServer: one event loop (selectors) that reads request frames, hands them to KafkaApis,
and writes responses in request order, Fetch data with os.sendfile.

Per connection: frames are cut out of a receive buffer without copying (decoding copies what it
keeps, before the buffer is reused); each request takes a slot in an ordered response queue, so
pipelined requests are answered in order even when a later one (a long-poll fetch) is answered
first; consecutive byte parts go out in one sendmsg (writev). A connection with too many
unanswered requests or unsent bytes stops being read until it drains (backpressure).

Bad input loses nothing but that connection: a frame larger than socket.request.max.bytes or one
that does not parse closes it; an unknown API key or version is answered with
UNSUPPORTED_VERSION, then closed. `GET /stats` over HTTP on the same port returns the broker's
counters as JSON.
"""

import collections
import errno
import json
import logging
import os
import selectors
import socket
import struct
import time
from dataclasses import dataclass, field

from engine.broker.kafka_apis import KafkaApis
from engine.errors import UNSUPPORTED_VERSION
from engine.protocol.codec import (
    InvalidRequestError,
    UnsupportedVersionError,
    decode_request,
    encode_error_frame,
)
from engine.storage import FileSlice

log = logging.getLogger(__name__)

_SIZE = struct.Struct(">i")
_RECEIVE_BUFFER = 256 * 1024
_MAX_PENDING_RESPONSES = 100  # per connection, before reading pauses
_MAX_UNSENT_BYTES = 32 * 1024 * 1024
_MAX_GATHER = 64  # byte parts per sendmsg
_TICK_SECONDS = 0.1


@dataclass(eq=False)
class PendingResponse:
    parts: list | None = None
    ready: bool = False


@dataclass(eq=False)
class Connection:
    sock: socket.socket
    peer: str
    buffer: bytearray = field(default_factory=lambda: bytearray(_RECEIVE_BUFFER))
    start: int = 0  # unread bytes are buffer[start:end]
    end: int = 0
    responses: collections.deque = field(default_factory=collections.deque)
    outbound: collections.deque = field(default_factory=collections.deque)
    slice_sent: int = 0  # bytes of outbound[0] already sent, when it is a FileSlice
    unsent_bytes: int = 0
    close_after_send: bool = False
    closed: bool = False
    reading: bool = True
    events: int = selectors.EVENT_READ  # what the selector watches for
    processing: bool = False  # inside _process_buffer: responses must not re-enter it
    first_bytes: bool = True


class SocketServer:
    def __init__(self, apis: KafkaApis) -> None:
        self.apis = apis
        self.config = apis.config
        self.stats = apis.stats
        self.selector = selectors.DefaultSelector()
        self.listener: socket.socket | None = None
        self.connections: set[Connection] = set()
        self._stopping = False
        self._next_housekeeping = 0.0

    # -- lifecycle ------------------------------------------------------------------------------
    def bind(self) -> tuple[str, int]:
        family = socket.AF_INET6 if ":" in self.config.listen_host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.config.listen_host, self.config.listen_port))
        listener.listen(128)
        listener.setblocking(False)
        self.listener = listener
        self.selector.register(listener, selectors.EVENT_READ, None)
        return listener.getsockname()[:2]

    def stop(self) -> None:
        """Ask the loop to finish: it answers what it can, then returns."""
        self._stopping = True

    def serve(self) -> None:
        while not self._stopping:
            self._poll(self._timeout())
        self._drain()

    def _timeout(self) -> float:
        deadline = self.apis.next_deadline_ms()
        if deadline is None:
            return _TICK_SECONDS
        return min(max(deadline - self.apis._time_ms(), 0) / 1000, _TICK_SECONDS)

    def _poll(self, timeout: float) -> None:
        for key, events in self.selector.select(timeout):
            if key.data is None:
                self._accept()
                continue
            conn: Connection = key.data
            if events & selectors.EVENT_READ and not conn.closed:
                self._read(conn)
            if events & selectors.EVENT_WRITE and not conn.closed:
                self._pump(conn)
        self.apis.tick()

    def _drain(self) -> None:
        """Shutdown: stop accepting, answer waiting requests, send what is queued (bounded)."""
        if self.listener is not None:
            self.selector.unregister(self.listener)
            self.listener.close()
        self.apis.replica_manager.complete_all()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(
            c.outbound or any(r.ready for r in c.responses) for c in self.connections
        ):
            self._poll(0.05)
        for conn in list(self.connections):
            self._close(conn)
        self.selector.close()

    # -- accept and read ------------------------------------------------------------------------
    def _accept(self) -> None:
        listener = self.listener
        assert listener is not None  # only the listener's selector key (data None) calls this
        while True:
            try:
                sock, address = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. EMFILE: keep serving the connections we have
                log.warning("accept failed: %s", exc)
                return
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = Connection(sock, f"{address[0]}:{address[1]}")
            self.connections.add(conn)
            self.stats.connections_accepted += 1
            self.selector.register(sock, selectors.EVENT_READ, conn)

    def _read(self, conn: Connection) -> None:
        if conn.end == len(conn.buffer):
            self._compact(conn)
        try:
            received = conn.sock.recv_into(memoryview(conn.buffer)[conn.end :])
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._close(conn, f"receive failed: {exc}")
            return
        if received == 0:
            self._close(conn)
            return
        self.stats.bytes_in += received
        conn.end += received
        self._process_buffer(conn)

    @staticmethod
    def _compact(conn: Connection, capacity: int = 0) -> None:
        """Move the unread bytes to the front, into a larger buffer if capacity asks for one.

        The buffer is kept and reused: a fresh megabyte per large request costs page faults.
        Growing makes a new bytearray, never a resize, since frame views may still exist.
        """
        unread = conn.buffer[conn.start : conn.end]
        if capacity > len(conn.buffer):
            conn.buffer = bytearray(capacity)
        conn.buffer[: len(unread)] = unread
        conn.start, conn.end = 0, len(unread)

    def _process_buffer(self, conn: Connection) -> None:
        if conn.processing:
            return
        conn.processing = True
        try:
            self._process_frames(conn)
        finally:
            conn.processing = False

    def _process_frames(self, conn: Connection) -> None:
        while conn.reading and not conn.closed:
            available = conn.end - conn.start
            if conn.first_bytes and available >= 4:
                conn.first_bytes = False
                if conn.buffer[conn.start : conn.start + 4] == b"GET ":
                    self._serve_http(conn)
                    return
            if available < 4:
                break
            (size,) = _SIZE.unpack_from(conn.buffer, conn.start)
            if not 0 < size <= self.config.socket_request_max_bytes:
                self._close(
                    conn,
                    f"frame of {size} bytes is outside 1..socket.request.max.bytes "
                    f"({self.config.socket_request_max_bytes})",
                )
                return
            if available - 4 >= size:
                frame_start = conn.start + 4
                conn.start = frame_start + size
                self._dispatch(conn, memoryview(conn.buffer)[frame_start : frame_start + size])
                continue
            if conn.start + 4 + size > len(conn.buffer):  # make the whole frame fit
                self._compact(conn, capacity=size + 4 + _RECEIVE_BUFFER)
            break
        if conn.start == conn.end:
            conn.start = conn.end = 0

    # -- dispatch -------------------------------------------------------------------------------
    def _dispatch(self, conn: Connection, frame: memoryview) -> None:
        try:
            header, request = decode_request(frame)
        except UnsupportedVersionError as exc:
            log.info("%s: %s; closing", conn.peer, exc)
            self._enqueue_ready(conn, [encode_error_frame(exc.correlation_id, UNSUPPORTED_VERSION)])
            conn.close_after_send = True
            self._stop_reading(conn)
            self._pump(conn)
            return
        except InvalidRequestError as exc:
            self._close(conn, str(exc))
            return
        pending = PendingResponse()
        conn.responses.append(pending)

        def respond(parts: list | None) -> None:
            pending.parts = parts
            pending.ready = True
            if not conn.closed:
                self._pump(conn)

        try:
            self.apis.handle(header, request, respond)
        except Exception:  # a handler bug must not take the broker down: drop this connection
            log.exception("%s: handling %s failed", conn.peer, type(request).__name__)
            self._close(conn, "internal error")
            return
        if len(conn.responses) > _MAX_PENDING_RESPONSES:
            self._stop_reading(conn)

    def _enqueue_ready(self, conn: Connection, parts: list) -> None:
        conn.responses.append(PendingResponse(parts, True))

    # -- write ----------------------------------------------------------------------------------
    def _pump(self, conn: Connection) -> None:
        """Move answered responses (in order) to the outbound queue and send what the socket
        takes; wait for writability when it takes no more."""
        while conn.responses and conn.responses[0].ready:
            parts = conn.responses.popleft().parts
            if parts:
                for part in parts:
                    conn.outbound.append(part)
                    conn.unsent_bytes += len(part) if isinstance(part, bytes) else part.length
        try:
            self._send(conn)
        except (BlockingIOError, InterruptedError):
            pass
        except OSError as exc:
            self._close(conn, f"send failed: {exc}")
            return
        if conn.closed:
            return
        if not conn.outbound and conn.close_after_send and not conn.responses:
            self._close(conn)
            return
        wants_write = bool(conn.outbound)
        if not conn.reading and not conn.close_after_send and self._drained(conn):
            conn.reading = True
        events = (selectors.EVENT_READ if conn.reading else 0) | (
            selectors.EVENT_WRITE if wants_write else 0
        )
        self._set_events(conn, events)
        if conn.reading and conn.end > conn.start:
            self._process_buffer(conn)  # frames that arrived while reading was paused

    @staticmethod
    def _drained(conn: Connection) -> bool:
        return len(conn.responses) <= _MAX_PENDING_RESPONSES // 2 and (
            conn.unsent_bytes <= _MAX_UNSENT_BYTES // 2
        )

    def _send(self, conn: Connection) -> None:
        outbound = conn.outbound
        while outbound:
            head = outbound[0]
            if isinstance(head, FileSlice):
                if not self.config.zero_copy_enable:  # read + send: the copy path
                    data = head.read()
                    self.stats.bytes_copied += len(data)
                    outbound[0] = data
                    continue
                sent = os.sendfile(
                    conn.sock.fileno(),
                    head.file.fd,
                    head.position + conn.slice_sent,
                    head.length - conn.slice_sent,
                )
                if sent == 0:
                    raise OSError(errno.EPIPE, "sendfile sent nothing")
                conn.slice_sent += sent
                self._sent(conn, sent)
                self.stats.bytes_sendfile += sent
                if conn.slice_sent == head.length:
                    outbound.popleft()
                    conn.slice_sent = 0
                continue
            gather: list[bytes | bytearray | memoryview] = []
            for part in outbound:
                if isinstance(part, FileSlice) or len(gather) == _MAX_GATHER:
                    break
                gather.append(part)
            sent = conn.sock.sendmsg(gather)
            self._sent(conn, sent)
            while sent:
                part = outbound[0]
                if sent >= len(part):
                    sent -= len(part)
                    outbound.popleft()
                else:
                    outbound[0] = memoryview(part)[sent:]
                    sent = 0

    def _sent(self, conn: Connection, count: int) -> None:
        conn.unsent_bytes -= count
        self.stats.bytes_out += count

    # -- connection state -----------------------------------------------------------------------
    def _set_events(self, conn: Connection, events: int) -> None:
        if events == conn.events:
            return
        if conn.events == 0:
            self.selector.register(conn.sock, events, conn)
        elif events == 0:  # a selector cannot watch for nothing
            self.selector.unregister(conn.sock)
        else:
            self.selector.modify(conn.sock, events, conn)
        conn.events = events

    def _stop_reading(self, conn: Connection) -> None:
        conn.reading = False

    def _close(self, conn: Connection, reason: str | None = None) -> None:
        if conn.closed:
            return
        conn.closed = True
        if reason is not None:
            self.stats.connections_closed_on_error += 1
            log.warning("closing connection from %s: %s", conn.peer, reason)
        self.connections.discard(conn)
        if conn.events:
            self.selector.unregister(conn.sock)
        conn.sock.close()
        conn.outbound.clear()
        conn.responses.clear()

    # -- HTTP stats -----------------------------------------------------------------------------
    def _serve_http(self, conn: Connection) -> None:
        """`GET /stats`: the broker's counters as JSON, then close (one request per connection)."""
        request = bytes(conn.buffer[conn.start : conn.end])
        if b"\r\n\r\n" not in request and len(request) < 8192:
            conn.first_bytes = True  # wait for the whole request head
            return
        path = request.split(b" ", 2)[1] if request.count(b" ") >= 2 else b""
        if path == b"/stats":
            body = json.dumps(self.stats.as_dict(), indent=1).encode()
            status = b"200 OK"
        else:
            body, status = b"not found: try GET /stats\n", b"404 Not Found"
        head = (
            b"HTTP/1.0 "
            + status
            + b"\r\nContent-Type: application/json\r\nContent-Length: "
            + str(len(body)).encode()
            + b"\r\nConnection: close\r\n\r\n"
        )
        conn.start = conn.end = 0
        self._enqueue_ready(conn, [head + body])
        conn.close_after_send = True
        self._stop_reading(conn)
        self._pump(conn)
