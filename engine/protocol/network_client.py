"""NetworkClient: a node's outbound Kafka connections on its event loop, Kafka's NetworkClient in
miniature and without threads.

The owner's selector drives it: attach() registers its sockets there (each key's data has
handle_events(events), which the loop calls when the socket is ready), and the loop calls tick()
after every poll and sleeps no longer than next_deadline_ms(). Nothing blocks but name
resolution (getaddrinfo, as Kafka's client resolves too): connects are non-blocking, bytes go
out as the socket takes them, responses are cut out of a receive buffer as they arrive. Framing
and decoding are engine.protocol.client's.

Not thread-safe: the event loop's thread alone uses it; nothing here locks.

Ordering: one connection per destination, and Kafka answers a connection's requests in order, so
requests to one destination are written in send() order and their callbacks run in that order
(a failure fails the connection's requests in that order too). Nothing is ordered across
destinations.

Each send() ends in exactly one callback: (response, None), (None, None) once written for a
request that expects no response, or (None, error). Errors are ConnectionError (refused, reset,
closed, backoff; RequestTimeoutError, also a TimeoutError, past request_timeout_ms) or
ProtocolError (an oversized, unexpected or undecodable frame). A failure of any kind closes the
connection and fails everything on it, as Kafka does: after a timeout or bad bytes the position
of the next response is unknown. A callback that raises is logged, and the rest go on.

Connections and backoff, with Kafka's semantics: send() and ready() connect to a destination that
has no connection. Every connection that ends (a failed connect, an error, a timeout, the peer or
disconnect() closing it) puts its destination in reconnect backoff: reconnect_backoff_ms after a
connection that had been established, doubling with each failed attempt in a row up to
reconnect_backoff_max_ms (no jitter). While a destination is in backoff, ready() is False and
send() does not queue: the request fails with a ConnectionError saying so, and the caller
retries (Kafka's callers check ready() first; these may as well just send and handle the
error). Failures decided inside send() are delivered by the next tick(), never from inside
send(), so the caller's state is settled when its callback runs; next_deadline_ms() is then
"now". A destination asked for during its backoff (by send() or ready()) is reconnected by tick()
once the backoff is over. A request sent while its connection is being set up waits for it; a
connect counts against request_timeout_ms too.
"""

import collections
import contextlib
import errno
import logging
import os
import selectors
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from kafka.protocol.api_message import ApiMessage

from engine.protocol.client import ProtocolError, decode_response, encode_request

log = logging.getLogger(__name__)

ResponseCallback = Callable[[ApiMessage | None, Exception | None], None]  # exactly one of them

_SIZE = struct.Struct(">i")
_READ = selectors.EVENT_READ
_WRITE = selectors.EVENT_WRITE
_MIN_BUFFER = 64 * 1024  # a connection's receive buffer, taken with its first read
_KEEP_BUFFER = 1 << 20  # a larger buffer (for a large response) is dropped once empty
_MAX_GATHER = 64  # buffers per sendmsg
_MAX_BACKOFF_SHIFT = 30  # the doubling count stops here (the max caps it long before)


class RequestTimeoutError(TimeoutError, ConnectionError):
    """No response within request_timeout_ms (or no connection within it): the connection is
    closed. A TimeoutError, and a ConnectionError like every other failure of the connection."""


@dataclass(eq=False, slots=True)
class _Request:
    destination: str
    correlation_id: int
    name: str  # e.g. "MetadataRequest v12", for messages
    version: int
    response_class: type[ApiMessage]
    callback: ResponseCallback
    expect_response: bool
    deadline_ms: int
    data: bytes  # the frame, size prefix included
    sent: int = 0  # bytes of data written


@dataclass(eq=False)
class _Connection:
    client: "NetworkClient"
    destination: "_Destination"
    sock: socket.socket
    connect_deadline_ms: int
    connecting: bool = True
    closed: bool = False
    events: int = 0  # what the selector watches for; 0 when not registered
    correlation: int = 0  # the last id used
    to_send: collections.deque[_Request] = field(default_factory=collections.deque)
    awaiting: collections.deque[_Request] = field(default_factory=collections.deque)
    buffer: bytearray = field(default_factory=bytearray)  # unread bytes are buffer[start:end]
    start: int = 0
    end: int = 0

    def handle_events(self, events: int) -> None:
        """The selector found the socket ready: called by the owner's loop."""
        self.client._on_events(self, events)

    def requests(self) -> list[_Request]:
        """Every request on this connection, in send() order."""
        return [*self.awaiting, *self.to_send]

    def deadline_ms(self) -> int | None:
        if self.connecting:  # its requests were sent after the connect began
            return self.connect_deadline_ms
        oldest = self.awaiting[0] if self.awaiting else self.to_send[0] if self.to_send else None
        return oldest.deadline_ms if oldest is not None else None


@dataclass(eq=False, slots=True)
class _Destination:
    name: str  # "host:port"
    host: str
    port: int
    connection: _Connection | None = None
    failures: int = 0  # failed connects in a row (the backoff's doubling count)
    retry_at_ms: int = 0  # no connect before this (reconnect backoff)
    wanted: bool = False  # asked for during its backoff: tick() reconnects it after
    last_error: Exception | None = None  # why the last connection ended


class NetworkClient:
    """Outbound connections to any number of "host:port" destinations, driven by the owner's
    selector (see the module docstring). Not thread-safe: the event loop's thread alone uses
    it."""

    def __init__(
        self,
        client_id: str,
        time_ms: Callable[[], int],
        *,
        request_timeout_ms: int = 30_000,
        reconnect_backoff_ms: int = 50,
        reconnect_backoff_max_ms: int = 1_000,
        max_response_bytes: int = 100 << 20,
    ) -> None:
        self.client_id = client_id
        self._time_ms = time_ms
        self.request_timeout_ms = request_timeout_ms
        self.reconnect_backoff_ms = reconnect_backoff_ms
        self.reconnect_backoff_max_ms = max(reconnect_backoff_max_ms, reconnect_backoff_ms)
        self.max_response_bytes = max_response_bytes
        self._selector: selectors.BaseSelector | None = None
        self._destinations: dict[str, _Destination] = {}
        # failures decided inside send(), delivered by the next tick()
        self._deferred: list[tuple[ResponseCallback, Exception]] = []
        self._closed = False

    # -- the owner's side -----------------------------------------------------------------------
    def attach(self, selector: selectors.BaseSelector) -> None:
        """Register the sockets with the loop's selector (connections opened before this wait
        for it)."""
        if selector is self._selector:
            return
        self._selector = selector
        for conn in self._connections():
            conn.events = 0  # not registered with this selector yet
            self._update_events(conn)

    def send(
        self,
        destination: str,
        request: ApiMessage,
        response_class: type[ApiMessage],
        callback: ResponseCallback,
        *,
        expect_response: bool = True,
    ) -> None:
        """Queue `request` to `destination` ("host:port"), connecting if there is no connection;
        its response is decoded as `response_class` of the request's version and handed to
        `callback`. In reconnect backoff the request fails (by the next tick()) instead of
        waiting. With expect_response=False (acks=0) the callback gets (None, None) once the
        request is written. Raises ValueError for a malformed destination and RuntimeError after
        close() (nothing would ever complete the request)."""
        if self._closed:
            raise RuntimeError("the network client is closed")
        dest = self._destination(destination)
        now = self._time_ms()
        conn = dest.connection
        if conn is None:
            if now < dest.retry_at_ms:
                dest.wanted = True
                self._deferred.append((callback, self._in_backoff(dest, now)))
                return
            conn = self._connect(dest, now)
            if conn is None:  # failed at once (a refusal on loopback, an unknown host)
                self._deferred.append((callback, dest.last_error or ConnectionError(dest.name)))
                return
        conn.correlation = conn.correlation + 1 & 0x7FFFFFFF
        version = request.API_VERSION
        conn.to_send.append(
            _Request(
                destination,
                conn.correlation,
                f"{type(request).__name__} v{version}",
                version,
                response_class,
                callback,
                expect_response,
                now + self.request_timeout_ms,
                encode_request(request, conn.correlation, self.client_id),
            )
        )
        self._update_events(conn)

    def ready(self, destination: str) -> bool:
        """Connected, and nothing waits to be written: a request sent now goes out at once.
        As Kafka's ready(), it connects when there is no connection and backoff allows; asked
        during a backoff, it has tick() reconnect once the backoff is over."""
        if self._closed:
            return False
        dest = self._destination(destination)
        conn = dest.connection
        if conn is None:
            now = self._time_ms()
            if now < dest.retry_at_ms:
                dest.wanted = True
            else:
                self._connect(dest, now)
            return False
        return not conn.connecting and not conn.to_send

    def in_flight(self, destination: str) -> int:
        """Requests sent to `destination` and not yet completed (written or not)."""
        dest = self._destinations.get(destination)
        conn = dest.connection if dest is not None else None
        return len(conn.awaiting) + len(conn.to_send) if conn is not None else 0

    def tick(self) -> None:
        """Deliver failures decided in send(), time out requests (their connection is closed)
        and connects, reconnect destinations asked for during a backoff that is now over."""
        if self._closed:
            return
        self._run_deferred()
        if self._closed:  # by a callback
            return
        now = self._time_ms()
        for conn in self._connections():
            deadline = conn.deadline_ms()
            if deadline is None or deadline > now or conn.closed:
                continue
            name = conn.destination.name
            if conn.connecting:
                error: Exception = RequestTimeoutError(
                    f"{name}: not connected within {self.request_timeout_ms} ms"
                )
            else:
                error = ConnectionError(f"{name}: connection closed after a request timed out")
            self._close(conn, error, timed_out_at=now, level=logging.WARNING)
        if self._closed:
            return
        for dest in list(self._destinations.values()):
            if dest.wanted and dest.connection is None and dest.retry_at_ms <= now:
                self._connect(dest, now)  # a failure here backs off again, quietly for callers

    def next_deadline_ms(self) -> int | None:
        """When tick() has something to do: a failure to deliver (now), a request or connect
        timing out, a wanted destination's backoff ending. None when nothing is due."""
        if self._closed:
            return None
        if self._deferred:
            return self._time_ms()
        deadlines = [d for c in self._connections() if (d := c.deadline_ms()) is not None]
        deadlines += [
            d.retry_at_ms for d in self._destinations.values() if d.wanted and d.connection is None
        ]
        return min(deadlines, default=None)

    def disconnect(self, destination: str) -> None:
        """Close the connection to `destination`, failing its requests (it goes into reconnect
        backoff, as any closed connection)."""
        dest = self._destinations.get(destination)
        if dest is not None and dest.connection is not None:
            error = ConnectionError(f"{destination}: disconnected")
            self._close(dest.connection, error, level=logging.DEBUG)

    def close(self) -> None:
        """Close every connection and fail every request; the sockets leave the selector (unless
        it was closed first: it has forgotten them then). send() raises after this."""
        if self._closed:
            return
        self._closed = True
        for conn in self._connections():
            self._close(conn, ConnectionError(f"{conn.destination.name}: the client was closed"))
        self._run_deferred()
        self._destinations.clear()
        self._selector = None

    # -- connections ----------------------------------------------------------------------------
    def _connections(self) -> list[_Connection]:
        return [d.connection for d in self._destinations.values() if d.connection is not None]

    def _destination(self, name: str) -> _Destination:
        dest = self._destinations.get(name)
        if dest is None:
            host, _, port = name.rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) <= 65535:
                raise ValueError(f"destination {name!r}: expected HOST:PORT")
            dest = self._destinations[name] = _Destination(name, host.strip("[]"), int(port))
        return dest

    def _connect(self, dest: _Destination, now: int) -> _Connection | None:
        """A connection being set up (not in backoff: the caller checked), or None when the
        connect failed at once (dest.last_error says why)."""
        dest.wanted = False
        what = f"cannot connect to {dest.name}"
        sock: socket.socket | None = None
        try:
            addresses = socket.getaddrinfo(dest.host, dest.port, type=socket.SOCK_STREAM)
            # a name with several addresses: each failed attempt tries the next, as Kafka does
            family, type_, proto, _, address = addresses[dest.failures % len(addresses)]
            sock = socket.socket(family, type_, proto)
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            code = sock.connect_ex(address)
            if code not in (0, errno.EINPROGRESS, errno.EWOULDBLOCK):
                raise _connection_error(code, what)
        except OSError as exc:  # gaierror included
            if sock is not None:
                sock.close()
            error = exc if isinstance(exc, ConnectionError) else ConnectionError(f"{what}: {exc}")
            self._backoff(dest, now, error)
            return None
        conn = _Connection(self, dest, sock, now + self.request_timeout_ms)
        dest.connection = conn
        self._update_events(conn)  # writable when the connect is done, either way
        return conn

    @staticmethod
    def _in_backoff(dest: _Destination, now: int) -> ConnectionError:
        return ConnectionError(
            f"{dest.name}: not connected, in reconnect backoff for {dest.retry_at_ms - now} ms"
            f" more (after: {dest.last_error})"
        )

    def _backoff(
        self, dest: _Destination, now: int, error: Exception, level: int = logging.INFO
    ) -> None:
        delay = self.reconnect_backoff_ms << min(dest.failures, _MAX_BACKOFF_SHIFT)
        dest.retry_at_ms = now + min(delay, self.reconnect_backoff_max_ms)
        dest.failures += 1
        dest.last_error = error
        if not self._closed:  # the first of a run of failures is told; the rest are debug
            level = level if dest.failures == 1 else logging.DEBUG
            log.log(level, "%s; may reconnect in %d ms", error, dest.retry_at_ms - now)

    def _update_events(self, conn: _Connection) -> None:
        """Watch for the connect's end; then for reads always, for writes while bytes wait."""
        selector = self._selector
        if selector is None or conn.closed:
            return
        events = _WRITE if conn.connecting else _READ | (_WRITE if conn.to_send else 0)
        if events == conn.events:
            return
        if conn.events:
            selector.modify(conn.sock, events, conn)
        else:
            selector.register(conn.sock, events, conn)
        conn.events = events

    def _close(
        self,
        conn: _Connection,
        error: Exception,
        *,
        timed_out_at: int | None = None,
        level: int = logging.INFO,
    ) -> None:
        """Close the connection first, then fail its requests in order: their callbacks see the
        destination in backoff and may send again. Requests past their deadline at
        `timed_out_at` get a RequestTimeoutError, the others `error`. `level` is the log line's
        (a broker talking garbage is worth a warning, a local disconnect not even info)."""
        if conn.closed:
            return
        conn.closed = True
        if conn.events and self._selector is not None:
            # a selector closed before this has forgotten the socket
            with contextlib.suppress(KeyError, ValueError, OSError):
                self._selector.unregister(conn.sock)
        conn.sock.close()
        dest = conn.destination
        dest.connection = None
        requests = conn.requests()
        conn.to_send.clear()
        conn.awaiting.clear()
        conn.buffer = bytearray()
        if isinstance(error, ProtocolError):
            level = logging.WARNING
        self._backoff(dest, self._time_ms(), error, level)
        for request in requests:
            if timed_out_at is not None and request.deadline_ms <= timed_out_at:
                self._complete(
                    request,
                    None,
                    RequestTimeoutError(
                        f"{dest.name}: no response to {request.name} (correlation id "
                        f"{request.correlation_id}) within {self.request_timeout_ms} ms"
                    ),
                )
            else:
                self._complete(request, None, error)

    def _on_events(self, conn: _Connection, events: int) -> None:
        if conn.closed or self._closed:
            return  # closed by an earlier key of the same poll
        if conn.connecting:
            code = conn.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if code:
                name = conn.destination.name
                self._close(conn, _connection_error(code, f"cannot connect to {name}"))
                return
            conn.connecting = False
            conn.destination.failures = 0  # backoff starts over
            log.debug("connected to %s", conn.destination.name)
        elif events & _READ:
            self._read(conn)
        if conn.to_send and not conn.closed:  # also what a callback of _read just sent
            self._write(conn)
        self._update_events(conn)

    # -- writing --------------------------------------------------------------------------------
    def _write(self, conn: _Connection) -> None:
        written: list[_Request] = []  # expecting no response: complete once written
        try:
            while conn.to_send:
                parts: list[memoryview] = []
                for request in conn.to_send:
                    if len(parts) == _MAX_GATHER:
                        break
                    parts.append(memoryview(request.data)[request.sent :])
                sent = conn.sock.sendmsg(parts)
                total = sum(len(p) for p in parts)
                while sent:
                    request = conn.to_send[0]
                    took = min(sent, len(request.data) - request.sent)
                    request.sent += took
                    sent -= took
                    if request.sent == len(request.data):
                        conn.to_send.popleft()
                        request.data = b""
                        (conn.awaiting if request.expect_response else written).append(request)
                if sent < total:
                    break  # the socket's buffer is full
        except BlockingIOError:
            pass
        except OSError as exc:
            name = conn.destination.name
            self._close(conn, _connection_error(exc.errno or 0, f"send to {name} failed"))
        for request in written:
            self._complete(request, None, None)

    # -- reading --------------------------------------------------------------------------------
    def _read(self, conn: _Connection) -> None:
        self._make_room(conn)
        try:
            with memoryview(conn.buffer) as view, view[conn.end :] as free:
                received = conn.sock.recv_into(free)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            name = conn.destination.name
            self._close(conn, _connection_error(exc.errno or 0, f"receive from {name} failed"))
            return
        if not received:
            self._close(conn, ConnectionError(f"{conn.destination.name} closed the connection"))
            return
        conn.end += received
        self._process(conn)

    def _frame_need(self, conn: _Connection) -> int:
        """Bytes the frame at `start` takes with its prefix (4 while its size is unknown)."""
        if conn.end - conn.start < _SIZE.size:
            return _SIZE.size
        return _SIZE.size + _SIZE.unpack_from(conn.buffer, conn.start)[0]

    def _make_room(self, conn: _Connection) -> None:
        """Free space after `end`, enough for the whole frame being received when its size is
        known (a large response is received in place, not reassembled). The size is trusted up
        to max_response_bytes: the peers are the cluster's own nodes."""
        want = max(_MIN_BUFFER, self._frame_need(conn))
        if conn.end < len(conn.buffer) and conn.start + want <= len(conn.buffer):
            return
        pending = conn.end - conn.start
        if want > len(conn.buffer):
            buffer = bytearray(want)
            buffer[:pending] = conn.buffer[conn.start : conn.end]
            conn.buffer = buffer
        else:
            conn.buffer[:pending] = conn.buffer[conn.start : conn.end]
        conn.start, conn.end = 0, pending

    def _process(self, conn: _Connection) -> None:
        """Complete the requests whose responses are whole in the buffer, in order."""
        name = conn.destination.name
        while not conn.closed and conn.end - conn.start >= _SIZE.size:
            (size,) = _SIZE.unpack_from(conn.buffer, conn.start)
            if not 0 < size <= self.max_response_bytes:
                error = f"a response frame of {size} bytes (max_response_bytes is "
                self._close(conn, ProtocolError(f"{name}: {error}{self.max_response_bytes})"))
                return
            if conn.end - conn.start < _SIZE.size + size:
                break
            begin = conn.start + _SIZE.size
            conn.start = begin + size
            if not conn.awaiting:
                self._close(conn, ProtocolError(f"{name}: a response to no request"))
                return
            request = conn.awaiting[0]
            try:
                with memoryview(conn.buffer) as view, view[begin : begin + size] as frame:
                    # decoding copies what it keeps: the buffer may be reused after this
                    response = decode_response(
                        frame, request.response_class, request.version, request.correlation_id
                    )
            except ProtocolError as exc:
                self._close(conn, ProtocolError(f"{name}: {exc} (to {request.name})"))
                return
            conn.awaiting.popleft()
            self._complete(request, response, None)  # may close conn, or send on it
        if conn.closed:
            return
        if conn.start == conn.end:
            conn.start = conn.end = 0
            if len(conn.buffer) > _KEEP_BUFFER:
                conn.buffer = bytearray()

    # -- completion -----------------------------------------------------------------------------
    def _complete(
        self, request: _Request, response: ApiMessage | None, error: Exception | None
    ) -> None:
        try:
            request.callback(response, error)
        except Exception:
            log.exception(
                "the callback of %s to %s (correlation id %d) raised",
                request.name,
                request.destination,
                request.correlation_id,
            )

    def _run_deferred(self) -> None:
        """Failures decided in send(); callbacks sending again queue for the next round."""
        deferred, self._deferred = self._deferred, []
        for callback, error in deferred:
            try:
                callback(None, error)
            except Exception:
                log.exception("a callback raised on %r", error)


def _connection_error(code: int, what: str) -> ConnectionError:
    """An errno as a ConnectionError (ConnectionRefusedError and the like where one fits)."""
    message = f"{what}: {os.strerror(code)}" if code else what
    exc = OSError(code, message) if code else ConnectionError(message)
    return exc if isinstance(exc, ConnectionError) else ConnectionError(code, message)
