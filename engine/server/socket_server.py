"""SocketServer: one event loop (selectors) that reads request frames, hands them to the node's
handlers (a broker's KafkaApis or a controller's ControllerApis), and writes responses in request
order, Fetch data with os.sendfile. The node's outbound connections (replica fetchers, calls to
the controller) are sockets of the same selector: their keys carry an object whose
handle_events() the loop calls.

One thread: serve() runs the loop, and the handlers and everything under them run inside it
(handlers, respond callbacks, tick(), outbound responses); nothing here locks. From another
thread or a signal handler only stop() is safe: it sets a flag the loop reads. A stop lets the
node finish first (a broker's controlled shutdown moves its leaderships away), within
_STOP_GRACE_SECONDS.

Per connection: frames are cut out of a receive buffer without copying. A frame is a memoryview
of that buffer, valid only while it is dispatched: handlers copy what they keep (decoding does)
and Produce appends its batches before it returns; the buffer is then reused. Each request takes
a slot in an ordered response queue, so pipelined requests are answered in order even when a
later one (a long-poll fetch) is answered first; consecutive byte parts go out in one sendmsg
(writev). A connection with too many unanswered requests or unsent bytes stops being read until
it drains (backpressure). A connection a quota throttles is muted: not read (requests already
received wait too) until its throttle time has passed, while its responses still go out, as
Kafka's SocketServer mutes a throttled channel (KIP-219).

Memory follows the bytes that arrived, never what a length prefix promises: a connection has no
receive buffer until its first bytes arrive, then 4 KiB, and a buffer at most doubles, only when
a read filled it, up to the frame being received (plus 256 KiB of read-ahead while reads keep
filling it), so a large frame is assembled as it arrives. A buffer is kept for the next request
and dropped after a second without traffic. queued.max.request.bytes (when > 0) bounds the
receive buffers of all connections together, as Kafka's memory pool does (not strictly: memory
is handed out while any is left): a connection that needs more waits, unread, until requests
complete and give some back; so that partly received requests cannot block each other for good,
the waiting one closest to a whole request may go over the bound.

Connections, with Kafka's semantics: connections.max.idle.ms closes a connection that has had no
reads, writes or answers for that long and no request waiting for an answer; at max.connections
the listener stops accepting until a connection closes (new ones wait in the listen backlog, as
behind Kafka's blocked acceptor); a connection over max.connections.per.ip is closed as soon as
it is accepted. When accept fails (EMFILE or ENFILE once descriptors run out, or any other
error) the listener is not watched for a backoff of 50 ms doubling to 1 s, while the open
connections are served: one log line when that starts, one with the count of failures when
accepting works again (and one a minute while it does not).

Bad input loses nothing but that connection: a frame larger than socket.request.max.bytes or one
that does not parse closes it; an unknown API key or version is answered with
UNSUPPORTED_VERSION, then closed. Log lines about single connections are rate-limited: 10 per
10 s, then one line with the number suppressed. `GET /stats` over HTTP on the same port returns
the node's counters and state as JSON (a broker's partitions with their ISR and each follower's
log end offset; a controller's brokers).
"""

import collections
import errno
import heapq
import itertools
import json
import logging
import os
import selectors
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from engine.broker.config import KafkaConfig
from engine.broker.request_context import RequestContext
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
_INITIAL_BUFFER = 4 * 1024  # a connection's first receive buffer, taken with its first bytes
_READ_AHEAD = 256 * 1024  # room past the current frame while reads keep filling the buffer
_BUFFER_KEEP_SECONDS = 1.0  # an empty receive buffer outlives the connection's last traffic
_MAX_PENDING_RESPONSES = 100  # per connection, before reading pauses
_MAX_UNSENT_BYTES = 32 * 1024 * 1024
_MAX_GATHER = 64  # byte parts per sendmsg
_TICK_SECONDS = 0.1
_ACCEPT_BACKOFF_MIN = 0.05
_ACCEPT_BACKOFF_MAX = 1.0
_ACCEPT_REPORT_SECONDS = 60.0  # a line this often while accept keeps failing
_LOG_BURST = 10  # lines about single connections per interval
_LOG_INTERVAL = 10.0
_READ = selectors.EVENT_READ
_WRITE = selectors.EVENT_WRITE
_STOP_GRACE_SECONDS = 30.0  # for the node to finish (controlled shutdown) after stop()


class Node(Protocol):
    """What the loop serves: a BrokerServer or a ControllerServer."""

    config: KafkaConfig
    time_ms: Callable[[], int]
    apis: Any  # .handle(context, request, respond), .stats, .api_table

    def attach(self, selector: selectors.BaseSelector) -> None: ...
    def tick(self) -> None: ...
    def next_deadline_ms(self) -> int | None: ...
    def complete_all(self) -> None: ...
    def begin_shutdown(self) -> None: ...
    def ready_to_stop(self) -> bool: ...
    @property
    def failed(self) -> str | None: ...  # why the node must stop now, or None
    @property
    def accepting(self) -> bool: ...  # ready for clients (a broker: caught up on metadata)
    def status(self) -> dict[str, Any]: ...  # the node's state, for GET /stats


class MemoryPool:
    """queued.max.request.bytes, as Kafka's broker uses its SimpleMemoryPool: not strict, bytes
    are handed out while any are left, so a request larger than the rest still gets in. A size
    of 0 or less is no bound (the pool only counts)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.used = 0

    @property
    def exhausted(self) -> bool:
        return 0 < self.size <= self.used

    @property
    def low(self) -> bool:
        """Less than a tenth left (Kafka's low-memory mark): empty buffers are given back."""
        return self.size > 0 and self.used * 10 >= self.size * 9


class RateLimitedLog:
    """At most `burst` lines per `interval` seconds; lines over that are counted, and the count is
    logged in one line once the interval is over (flush, called from the loop's housekeeping)."""

    def __init__(
        self,
        logger: logging.Logger,
        burst: int = _LOG_BURST,
        interval: float = _LOG_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self.burst = burst
        self.interval = interval
        self._clock = clock
        self._window_end = 0.0
        self._logged = 0
        self.suppressed = 0

    def log(self, level: int, msg: str, *args: object, exc_info: bool = False) -> None:
        self.flush(self._clock())
        if self._logged < self.burst:
            self._logged += 1
            self.logger.log(level, msg, *args, exc_info=exc_info)
        else:
            self.suppressed += 1

    def flush(self, now: float) -> None:
        if now < self._window_end:
            return
        if self.suppressed:
            self.logger.warning(
                "... and %d more connection messages suppressed in the last %.0f s",
                self.suppressed,
                self.interval,
            )
        self._window_end = now + self.interval
        self._logged = self.suppressed = 0


@dataclass(eq=False)
class PendingResponse:
    parts: list | None = None
    ready: bool = False


@dataclass(eq=False)
class Connection:
    sock: socket.socket
    peer: str
    ip: str
    last_active: float = 0.0  # time.monotonic() of the last read, write or answer
    buffer: bytearray = field(default_factory=bytearray)  # empty until bytes arrive
    start: int = 0  # unread bytes are buffer[start:end]
    end: int = 0
    filled: bool = False  # the last read filled the buffer: more is probably waiting
    responses: collections.deque = field(default_factory=collections.deque)
    outbound: collections.deque = field(default_factory=collections.deque)
    slice_sent: int = 0  # bytes of outbound[0] already sent, when it is a FileSlice
    unsent_bytes: int = 0
    close_after_send: bool = False
    closed: bool = False
    reading: bool = True  # False while backpressure (or a close after sending) holds reads
    memory_wait: bool = False  # not read until the memory pool has room
    events: int = _READ  # what the selector watches for
    processing: bool = False  # inside _process_buffer: responses must not re-enter it
    first_bytes: bool = True
    throttled: bool = False  # muted by a quota until throttle_end
    throttle_end: float = 0.0  # time.monotonic()


class SocketServer:
    def __init__(self, broker: Node) -> None:
        self.broker = broker
        self.apis = broker.apis
        self.config = broker.config
        self.stats = broker.apis.stats
        self.selector = selectors.DefaultSelector()
        self.listener: socket.socket | None = None
        self.listener_name = self.config.listener  # host:port, the bound one after bind()
        # open connections, least recently active first (idle expiry reads from the front)
        self.connections: collections.OrderedDict[Connection, None] = collections.OrderedDict()
        self.pool = MemoryPool(self.config.queued_max_request_bytes)
        self.connection_log = RateLimitedLog(log)
        self._per_ip: dict[str, int] = {}
        self._holders: set[Connection] = set()  # connections that have a receive buffer
        self._waiting: dict[Connection, None] = {}  # waiting for the memory pool, in order
        self._waiting_changed = False
        self._exempt: Connection | None = None  # may take memory past the pool's bound
        self._listening = False
        self._accept_resume_at = 0.0
        self._accept_backoff = 0.0
        self._accept_failures = 0  # in the current run of failures
        self._accept_failing_since = 0.0
        self._accept_reported_at = 0.0
        self._accept_error = ""
        self._stopping = False
        self._now = time.monotonic()
        self._next_housekeeping = 0.0
        self._next_buffer_sweep = 0.0
        self._throttles: list[tuple[float, int, Connection]] = []  # (end, sequence, conn) heap
        self._throttle_sequence = itertools.count()

    # -- lifecycle ------------------------------------------------------------------------------
    def bind(self) -> tuple[str, int]:
        family = socket.AF_INET6 if ":" in self.config.listen_host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.config.listen_host, self.config.listen_port))
        listener.listen(128)
        listener.setblocking(False)
        self.listener = listener
        self._update_listener()  # watched once the node accepts clients
        host, port = listener.getsockname()[:2]
        self.listener_name = f"{host}:{port}"
        return host, port

    def stop(self) -> None:
        """Ask the loop to finish: it answers what it can, then returns."""
        self._stopping = True

    def serve(self) -> None:
        self.broker.attach(self.selector)
        while not self._stopping and not self.broker.failed:
            self._poll(self._timeout())
        self.broker.begin_shutdown()
        grace_end = time.monotonic() + _STOP_GRACE_SECONDS
        while not self.broker.ready_to_stop() and time.monotonic() < grace_end:
            self._poll(self._timeout())
        self._drain()

    def _timeout(self) -> float:
        timeout = _TICK_SECONDS
        if self._throttles:
            timeout = min(timeout, max(self._throttles[0][0] - time.monotonic(), 0))
        deadline = self.broker.next_deadline_ms()
        if deadline is None:
            return timeout
        return min(max(deadline - self.broker.time_ms(), 0) / 1000, timeout)

    def _poll(self, timeout: float) -> None:
        ready = self.selector.select(timeout)
        now = self._now = time.monotonic()
        for key, events in ready:
            conn = key.data
            if conn is None:
                self._accept()
                continue
            if not isinstance(conn, Connection):  # an outbound connection of the node's
                conn.handle_events(events)
                continue
            if conn.closed:
                continue
            conn.last_active = now
            self.connections.move_to_end(conn)
            if events & _READ:
                self._read(conn)
            if events & _WRITE and not conn.closed:
                self._pump(conn)
        self.broker.tick()
        if self._throttles:
            self._end_throttles(now)
        if self._waiting:
            self._wake_waiting()
        if now >= self._next_housekeeping:
            self._housekeeping(now)

    def _drain(self) -> None:
        """Shutdown: stop accepting, answer waiting requests, send what is queued (bounded)."""
        if self.listener is not None:
            if self._listening:
                self.selector.unregister(self.listener)
                self._listening = False
            self.listener.close()
            self.listener = None
        self.broker.complete_all()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(
            c.outbound or any(r.ready for r in c.responses) for c in self.connections
        ):
            self._poll(0.05)
        for conn in list(self.connections):
            self._close(conn)
        self.selector.close()

    def _housekeeping(self, now: float) -> None:
        self._next_housekeeping = now + _TICK_SECONDS
        self._expire_idle(now)
        if now >= self._next_buffer_sweep:
            self._next_buffer_sweep = now + _BUFFER_KEEP_SECONDS
            keep_after = now - _BUFFER_KEEP_SECONDS
            for conn in [
                c for c in self._holders if c.start == c.end and c.last_active < keep_after
            ]:
                self._release_buffer(conn)
        if self._accept_failures and now - self._accept_reported_at >= _ACCEPT_REPORT_SECONDS:
            self._accept_reported_at = now
            log.warning(
                "accept still failing (%s): %d times in %.0f s; %d connections open",
                self._accept_error,
                self._accept_failures,
                now - self._accept_failing_since,
                len(self.connections),
            )
        self._update_listener()
        self.connection_log.flush(now)

    def _expire_idle(self, now: float) -> None:
        """connections.max.idle.ms, as Kafka's Selector: least recently active first, closed once
        idle for longer. A request still being answered is not idleness."""
        max_idle_ms = self.config.connections_max_idle_ms
        if max_idle_ms < 0:
            return
        deadline = now - max_idle_ms / 1000
        expired = 0
        while self.connections:
            conn = next(iter(self.connections))
            if conn.last_active >= deadline:
                break
            if conn.responses:
                self._touch(conn)
                continue
            self._close(conn)
            expired += 1
        if expired:
            log.debug(
                "closed %d connections idle for over %d ms (connections.max.idle.ms)",
                expired,
                max_idle_ms,
            )

    def _touch(self, conn: Connection) -> None:
        conn.last_active = self._now
        self.connections.move_to_end(conn)

    # -- accept ---------------------------------------------------------------------------------
    def _accept(self) -> None:
        listener = self.listener
        assert listener is not None  # only the listener's selector key (data None) calls this
        while len(self.connections) < self.config.max_connections:
            try:
                sock, address = listener.accept()
            except (BlockingIOError, InterruptedError):
                break
            except ConnectionAbortedError:  # reset before it was taken: take the next
                continue
            except OSError as exc:  # EMFILE, ENFILE, ENOBUFS, ...: keep serving what we have
                self._accept_failed(exc)
                break
            if self._accept_failures:
                self._accept_recovered()
            ip = address[0]
            count = self._per_ip.get(ip, 0)
            if count >= self.config.max_connections_per_ip:
                sock.close()
                self.connection_log.log(
                    logging.INFO,
                    "Rejected connection from %s, address already has the configured maximum "
                    "of %d connections (max.connections.per.ip)",
                    ip,
                    count,
                )
                continue
            try:
                sock.setblocking(False)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:  # already reset by the peer
                sock.close()
                continue
            self._per_ip[ip] = count + 1
            conn = Connection(sock, f"{address[0]}:{address[1]}", ip, self._now)
            self.connections[conn] = None
            self.stats.connections_accepted += 1
            self.selector.register(sock, _READ, conn)
        self._update_listener()

    def _accept_failed(self, exc: OSError) -> None:
        """Stop watching the listener for a while: a listener whose accept fails stays readable,
        and retrying at once would spin. The backoff doubles while it keeps failing."""
        now = self._now
        self._accept_failures += 1
        self._accept_error = exc.strerror or str(exc)
        if self._accept_failures == 1:
            self._accept_failing_since = self._accept_reported_at = now
            self._accept_backoff = _ACCEPT_BACKOFF_MIN
            log.warning(
                "accept failed (%s) with %d connections open: not accepting for %d ms, "
                "longer while it keeps failing",
                self._accept_error,
                len(self.connections),
                self._accept_backoff * 1000,
            )
        else:
            self._accept_backoff = min(self._accept_backoff * 2, _ACCEPT_BACKOFF_MAX)
        self._accept_resume_at = now + self._accept_backoff

    def _accept_recovered(self) -> None:
        log.warning(
            "accepting connections again: accept failed %d times (%s) over %.1f s",
            self._accept_failures,
            self._accept_error,
            self._now - self._accept_failing_since,
        )
        self._accept_failures = 0
        self._accept_backoff = 0.0

    def _update_listener(self) -> None:
        """Watch the listener unless max.connections are open or accept is backing off."""
        if self.listener is None:
            return
        wanted = (
            not self._stopping
            and self.broker.accepting
            and len(self.connections) < self.config.max_connections
            and self._now >= self._accept_resume_at
        )
        if wanted == self._listening:
            return
        if wanted:
            self.selector.register(self.listener, _READ, None)
        else:
            self.selector.unregister(self.listener)
        self._listening = wanted

    # -- read -----------------------------------------------------------------------------------
    def _read(self, conn: Connection) -> None:
        if not conn.reading or conn.memory_wait or conn.throttled:  # paused since last told
            self._update_events(conn)
            return
        free = len(conn.buffer) - conn.end
        if free == 0 or conn.filled:
            if not self._make_room(conn):
                return
            free = len(conn.buffer) - conn.end
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
        conn.filled = received == free
        self._process_buffer(conn)

    def _make_room(self, conn: Connection) -> bool:
        """Room at the buffer's end for the next read: the unread bytes moved to the front, or a
        larger buffer when the frame being received (or data streaming in) needs one. A buffer at
        most doubles, over bytes that arrived: the unread ones, or a read that filled it. False
        when the memory pool has nothing left for it: the connection then waits, unread.

        A new buffer is a new bytearray, never a resize, since frame views may still exist; the
        old one is kept and reused otherwise (a fresh megabyte per request costs page faults)."""
        buffer = conn.buffer
        capacity = len(buffer)
        unread = conn.end - conn.start
        streaming = conn.filled
        conn.filled = False
        need = _INITIAL_BUFFER
        if unread >= 4:  # the header of the frame being received (checked against the maximum)
            need = max(need, 4 + _SIZE.unpack_from(buffer, conn.start)[0])
        if streaming:
            need += _READ_AHEAD
        target = min(need, max(_INITIAL_BUFFER, 2 * (capacity if streaming else unread)))
        if target <= capacity:
            if conn.start:
                buffer[:unread] = buffer[conn.start : conn.end]
                conn.start, conn.end = 0, unread
            if conn.end < capacity:
                return True
            target = 2 * capacity  # (a frame that fits is never left unread: not reached)
        if self.pool.exhausted and conn is not self._exempt:
            conn.memory_wait = True
            self._waiting[conn] = None
            self._waiting_changed = True
            self._update_events(conn)
            return False
        grown = bytearray(target)
        grown[:unread] = memoryview(buffer)[conn.start : conn.end]
        self.pool.used += target - capacity
        conn.buffer = grown
        conn.start, conn.end = 0, unread
        self._holders.add(conn)
        return True

    def _release_buffer(self, conn: Connection) -> None:
        """Give an empty receive buffer back; the next bytes start a small one."""
        self.pool.used -= len(conn.buffer)
        conn.buffer = bytearray()
        conn.start = conn.end = 0
        conn.filled = False
        self._holders.discard(conn)

    def _wake_waiting(self) -> None:
        """Read again the connections that waited for memory once the pool has some; while it
        has none, let the one closest to a whole request go over the bound, so that requests
        received in part cannot hold all of the pool and wait for each other."""
        if not self.pool.exhausted:
            waiting = list(self._waiting)
            self._waiting.clear()
            for conn in waiting:
                conn.memory_wait = False
                self._update_events(conn)
            return
        if self._exempt is not None and not self._waiting_changed:
            return
        self._waiting_changed = False
        candidates = list(self._waiting)
        if self._exempt is not None:
            candidates.append(self._exempt)
        chosen = min(candidates, key=self._bytes_to_go)
        if chosen is not self._exempt:
            self._exempt = chosen
            del self._waiting[chosen]
            chosen.memory_wait = False
            self._update_events(chosen)

    @staticmethod
    def _bytes_to_go(conn: Connection) -> int:
        """Bytes still to arrive before the frame being received is whole."""
        unread = conn.end - conn.start
        if unread < 4:
            return _INITIAL_BUFFER
        return 4 + _SIZE.unpack_from(conn.buffer, conn.start)[0] - unread

    def _process_buffer(self, conn: Connection) -> None:
        if conn.processing:
            return
        conn.processing = True
        try:
            self._process_frames(conn)
        finally:
            conn.processing = False

    def _process_frames(self, conn: Connection) -> None:
        max_bytes = self.config.socket_request_max_bytes
        while conn.reading and not conn.closed and not conn.throttled:
            available = conn.end - conn.start
            if available < 4:
                break
            if conn.first_bytes:
                conn.first_bytes = False
                if conn.buffer[conn.start : conn.start + 4] == b"GET ":
                    self._serve_http(conn)
                    return
            (size,) = _SIZE.unpack_from(conn.buffer, conn.start)
            if not 0 < size <= max_bytes:
                self._close(
                    conn,
                    f"frame of {size} bytes is outside 1..socket.request.max.bytes ({max_bytes})",
                )
                return
            if available - 4 < size:
                break
            frame_start = conn.start + 4
            conn.start = frame_start + size
            if conn is self._exempt:  # its request is whole: the pool's bound holds again
                self._exempt = None
            self._dispatch(conn, memoryview(conn.buffer)[frame_start : frame_start + size])
        if conn.start == conn.end and not conn.closed:
            conn.start = conn.end = 0
            if (self._waiting or self.pool.low) and conn.buffer:
                self._release_buffer(conn)

    # -- dispatch -------------------------------------------------------------------------------
    def _dispatch(self, conn: Connection, frame: memoryview) -> None:
        try:
            header, request = decode_request(frame, self.apis.api_table)
        except UnsupportedVersionError as exc:
            self.connection_log.log(logging.INFO, "%s: %s; closing", conn.peer, exc)
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
            self.apis.handle(
                RequestContext(
                    header,
                    conn.peer,
                    self.listener_name,
                    len(frame),
                    lambda throttle_ms: self._mute(conn, throttle_ms),
                ),
                request,
                respond,
            )
        except Exception:  # a handler bug must not take the broker down: drop this connection
            self.connection_log.log(
                logging.ERROR,
                "%s: handling %s failed",
                conn.peer,
                type(request).__name__,
                exc_info=True,
            )
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
        if conn.closed:
            return
        if conn.responses and conn.responses[0].ready:
            self._touch(conn)
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
        if not conn.reading and not conn.close_after_send and self._drained(conn):
            conn.reading = True
        self._update_events(conn)
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
    def _update_events(self, conn: Connection) -> None:
        self._set_events(
            conn,
            (_READ if conn.reading and not conn.memory_wait and not conn.throttled else 0)
            | (_WRITE if conn.outbound else 0),
        )

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

    def _mute(self, conn: Connection, throttle_ms: int) -> None:
        """A quota's throttle: the connection is not read for throttle_ms (a later throttle
        that ends later extends it)."""
        if throttle_ms <= 0 or conn.closed:
            return
        end = time.monotonic() + throttle_ms / 1000
        if conn.throttled and end <= conn.throttle_end:
            return
        conn.throttled, conn.throttle_end = True, end
        heapq.heappush(self._throttles, (end, next(self._throttle_sequence), conn))
        self.stats.connections_throttled += 1
        self._update_events(conn)

    def _end_throttles(self, now: float) -> None:
        """Unmute the connections whose throttle time has passed, and read what waited."""
        while self._throttles and self._throttles[0][0] <= now:
            end, _, conn = heapq.heappop(self._throttles)
            if conn.closed or not conn.throttled or conn.throttle_end > end:
                continue  # gone, or extended by a later throttle (its own entry follows)
            conn.throttled = False
            self._update_events(conn)
            if conn.reading and conn.end > conn.start:
                self._process_buffer(conn)

    def _close(self, conn: Connection, reason: str | None = None) -> None:
        if conn.closed:
            return
        conn.closed = True
        if reason is not None:
            self.stats.connections_closed_on_error += 1
            self.connection_log.log(
                logging.WARNING, "closing connection from %s: %s", conn.peer, reason
            )
        del self.connections[conn]
        remaining = self._per_ip[conn.ip] - 1
        if remaining:
            self._per_ip[conn.ip] = remaining
        else:
            del self._per_ip[conn.ip]
        if conn.events:
            self.selector.unregister(conn.sock)
        conn.sock.close()
        conn.outbound.clear()
        conn.responses.clear()
        if conn.buffer:
            self._release_buffer(conn)
        self._waiting.pop(conn, None)
        if self._exempt is conn:
            self._exempt = None
        if not self._listening:
            self._update_listener()  # a slot under max.connections

    # -- HTTP stats -----------------------------------------------------------------------------
    def _serve_http(self, conn: Connection) -> None:
        """`GET /stats`: the broker's counters as JSON, then close (one request per connection)."""
        request = bytes(conn.buffer[conn.start : conn.end])
        if b"\r\n\r\n" not in request and len(request) < 8192:
            conn.first_bytes = True  # wait for the whole request head
            return
        path = request.split(b" ", 2)[1] if request.count(b" ") >= 2 else b""
        if path == b"/stats":
            body = json.dumps({**self.stats.as_dict(), **self.broker.status()}, indent=1).encode()
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
