"""BareBroker: the least a broker must do, as a floor to hold kbench's broker against.

Both servers accept connections and cut length-prefixed frames out of one reused receive buffer
(recv_into), on one thread. The ingest server os.writes each frame to one file and answers every
request with a canned ProduceResponse carrying the request's correlation id: no parsing, no
validation, no index. The fetch server serves a kbench partition's segment files: it finds every
batch once at start, reads only the fetch offset and byte limits from each request, and answers
with a canned FetchResponse header (sizes and correlation id patched in) followed by os.sendfile
of the same whole batches kbench's broker would send, byte for byte the same frame.
What kbench's broker spends beyond them on the same load is its own overhead per request and
byte. ingest_rounds() and fetch_rounds() measure the two side by side, as
tests/benchmarks/ingest_vs_bare.py, tests/benchmarks/fetch_vs_bare.py and the asv suite report
(the scripts with print_round and print_summary).

    python3 -m scenarios.clients.bare_broker ingest DIR   # prints "bare listening on HOST:PORT"
    python3 -m scenarios.clients.bare_broker fetch PARTITION_DIR_OR_SEGMENT
"""

import argparse
import bisect
import contextlib
import errno
import hashlib
import os
import selectors
import socket
import struct
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass

from kafka.protocol.producer.produce import ProduceResponse

from engine.protocol.fetch_response import (
    FetchPartitionResponse,
    FetchTopicResponse,
    encode_fetch_response,
)
from engine.storage import FileRecords
from scenarios.clients.fetch_client import FetchClient
from scenarios.clients.loadgen import BatchProducer
from scenarios.clients.local_broker import LocalBroker
from scenarios.harness.resources import cpu_seconds, make_resident
from scenarios.harness.stats import compare, summarize

_SIZE = struct.Struct(">i")
_INT16 = struct.Struct(">h")
_PRODUCE_VERSION = 7  # what scenarios.clients.loadgen.BatchProducer sends
_FETCH_KEY = 1
_FETCH_VERSION = 11  # what scenarios.clients.fetch_client.FetchClient sends
_BUFFER = 8 << 20
# Fetch v11 from the end of the request header's client id: replica_id, max_wait_ms, min_bytes,
# max_bytes, isolation_level, session_id, session_epoch, topics count, topic name length
_FETCH_HEAD = struct.Struct(">12xi9xih")
# after the topic name: partitions count, partition, current_leader_epoch, fetch_offset,
# log_start_offset, partition_max_bytes
_FETCH_PARTITION = struct.Struct(">ii4xq8xi")
_FETCH_TOPIC = "fetch"


def canned_produce_response() -> bytearray:
    """A ProduceResponse v7 frame for one partition, error 0; bytes 4-7 take the correlation id."""
    cls = ProduceResponse[_PRODUCE_VERSION]
    response = cls(
        responses=[
            cls.TopicProduceResponse(
                name="bare",
                partition_responses=[
                    cls.TopicProduceResponse.PartitionProduceResponse(
                        index=0, error_code=0, base_offset=0, log_append_time_ms=-1
                    )
                ],
            )
        ],
        throttle_time_ms=0,
    )
    response.with_header(correlation_id=0)
    return bytearray(response.encode(header=True, framed=True))


def _serve(on_frame: Callable[[socket.socket, memoryview], None]) -> None:
    """One thread, one selector: accept, cut length-prefixed frames out of one reused receive
    buffer per connection (recv_into) and hand each whole frame, size prefix included, to
    on_frame with its (blocking) socket."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.setblocking(False)
    print(f"bare listening on 127.0.0.1:{listener.getsockname()[1]}", flush=True)
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    buffers: dict[socket.socket, list] = {}  # sock -> [buffer, start, end]
    while True:
        for key, _ in selector.select():
            if key.fileobj is listener:
                sock, _ = listener.accept()
                sock.setblocking(True)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                selector.register(sock, selectors.EVENT_READ)
                buffers[sock] = [bytearray(_BUFFER), 0, 0]
                continue
            sock = key.fileobj  # type: ignore[assignment]
            state = buffers[sock]
            buffer, start, end = state
            if end == len(buffer):  # move the partial frame to the front
                buffer[: end - start] = buffer[start:end]
                start, end = 0, end - start
            received = sock.recv_into(memoryview(buffer)[end:])
            if not received:
                selector.unregister(sock)
                sock.close()
                del buffers[sock]
                continue
            end += received
            view = memoryview(buffer)
            while end - start >= 4:
                (size,) = _SIZE.unpack_from(buffer, start)
                if end - start - 4 < size:
                    break
                on_frame(sock, view[start : start + 4 + size])
                start += 4 + size
            state[1], state[2] = start, end


def serve_ingest(directory: str) -> None:
    """The bare ingest loop: each frame os.written to one file, answered with the canned
    ProduceResponse."""
    fd = os.open(os.path.join(directory, "bare.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    response = canned_produce_response()

    def on_frame(sock: socket.socket, frame: memoryview) -> None:
        os.write(fd, frame)
        response[4:8] = frame[8:12]  # the request's correlation id
        sock.sendall(response)

    _serve(on_frame)


@dataclass(frozen=True, slots=True)
class _RecordsLength:
    """A records item for encode_fetch_response: only its length matters to the header."""

    length: int


class BareLog:
    """A kbench partition's segment files laid end to end, every batch found once at start, so
    a fetch costs two bisects: whole batches from the one holding the fetch offset, up to the
    byte limit (at least one), across segments, as kbench's Log.read chooses them."""

    def __init__(self, path: str) -> None:
        """path: a partition directory (TOPIC-PARTITION, all its .log files) or one segment."""
        if os.path.isdir(path):
            directory = path
            files = sorted(
                os.path.join(path, name) for name in os.listdir(path) if name.endswith(".log")
            )
        else:
            directory, files = os.path.dirname(os.path.abspath(path)), [path]
        topic, _, partition = os.path.basename(directory.rstrip("/")).rpartition("-")
        self.topic, self.partition = topic, int(partition)
        self.log_start_offset = -1
        self._last_offsets: list[int] = []  # per batch, in log order
        self._starts: list[int] = []  # per batch: where it starts in the segments end to end
        self._ends: list[int] = []
        self._segment_starts: list[int] = []  # per segment, in the same coordinates
        self._segments: list[tuple[int, int]] = []  # (read-only fd, where the batches end)
        size = 0
        for file in files:
            records = FileRecords(file, create=False)
            try:
                headers = list(records.batch_headers())
            finally:
                records.close()
            if not headers:
                continue
            if self.log_start_offset < 0:
                self.log_start_offset = headers[0].base_offset
            self._segment_starts.append(size)
            for header in headers:
                self._last_offsets.append(header.last_offset)
                self._starts.append(size + header.position)
                self._ends.append(size + header.position + header.size)
            end = headers[-1].position + headers[-1].size
            self._segments.append((os.open(file, os.O_RDONLY | os.O_CLOEXEC), end))
            size += end
        self.high_watermark = self._last_offsets[-1] + 1 if self._last_offsets else 0
        self.log_start_offset = max(self.log_start_offset, 0)

    def read(self, offset: int, max_bytes: int) -> list[tuple[int, int, int]]:
        """(fd, position, length) per segment the fetch's batches lie in; none at or past the
        high watermark."""
        first = bisect.bisect_left(self._last_offsets, offset)
        if first == len(self._last_offsets):
            return []
        start = self._starts[first]
        fit = bisect.bisect_right(self._ends, start + max_bytes)
        end = self._ends[max(fit, first + 1) - 1]
        segment = bisect.bisect_right(self._segment_starts, start) - 1
        slices = []
        while start < end:
            fd, segment_end = self._segments[segment]
            segment_start = self._segment_starts[segment]
            length = min(end, segment_start + segment_end) - start
            slices.append((fd, start - segment_start, length))
            start += length
            segment += 1
        return slices


def canned_fetch_response(log: BareLog) -> bytearray:
    """The FetchResponse v11 frame up to its records, as kbench's broker frames it for this
    partition (error 0, no session, the log's high watermark and start); bytes 0-3 take the
    frame size, 4-7 the correlation id and the last four the records' length."""
    parts = encode_fetch_response(
        _FETCH_VERSION,
        correlation_id=0,
        throttle_time_ms=0,
        error_code=0,
        session_id=0,
        topics=[
            FetchTopicResponse(
                log.topic,
                [
                    FetchPartitionResponse(
                        partition_index=log.partition,
                        error_code=0,
                        high_watermark=log.high_watermark,
                        last_stable_offset=log.high_watermark,
                        log_start_offset=log.log_start_offset,
                        records=[_RecordsLength(1)],
                    )
                ],
            )
        ],
    )
    if len(parts) != 2 or not isinstance(parts[0], bytes):  # v11 has nothing after the records
        raise ValueError(f"FetchResponse v{_FETCH_VERSION} does not end with its records")
    return bytearray(parts[0])


def serve_fetch(path: str) -> None:
    """The bare fetch loop: FetchClient's requests (Fetch v11, one partition of this log)
    answered with the canned header and os.sendfile of the segment bytes; any other request
    stops the server."""
    log = BareLog(path)
    header = canned_fetch_response(log)
    topic = log.topic.encode()
    records_length_at = len(header) - 4

    def on_frame(sock: socket.socket, frame: memoryview) -> None:
        api_key, api_version = _INT16.unpack_from(frame, 4), _INT16.unpack_from(frame, 6)
        if (api_key[0], api_version[0]) != (_FETCH_KEY, _FETCH_VERSION):
            raise ValueError(f"request {api_key[0]} v{api_version[0]}, not Fetch v11")
        body = 14 + max(_INT16.unpack_from(frame, 12)[0], 0)  # after the client id
        max_bytes, topics, topic_length = _FETCH_HEAD.unpack_from(frame, body)
        at = body + _FETCH_HEAD.size
        partitions, partition, offset, partition_max_bytes = _FETCH_PARTITION.unpack_from(
            frame, at + topic_length
        )
        if (topics, partitions, partition) != (1, 1, log.partition) or (
            frame[at : at + topic_length] != topic
        ):
            raise ValueError(f"a fetch of other partitions than {log.topic}-{log.partition}")
        slices = log.read(offset, min(max_bytes, partition_max_bytes))
        records_length = sum(length for _, _, length in slices)
        _SIZE.pack_into(header, 0, len(header) - 4 + records_length)
        header[4:8] = frame[8:12]  # the request's correlation id
        _SIZE.pack_into(header, records_length_at, records_length)
        sock.sendall(header)
        out = sock.fileno()
        for fd, position, length in slices:
            while length:
                sent = os.sendfile(out, fd, position, length)
                if not sent:
                    raise OSError(errno.EPIPE, "sendfile sent nothing: the segment shrank")
                position += sent
                length -= sent

    _serve(on_frame)


class BareBroker:
    """A bare server in a subprocess, started and stopped as LocalBroker does kbench's."""

    def __init__(self, kind: str, path: str) -> None:
        self.kind = kind
        self.path = path
        self.process: subprocess.Popen | None = None
        self.bootstrap = ""

    def start(self) -> "BareBroker":
        self.process = subprocess.Popen(
            [sys.executable, "-m", "scenarios.clients.bare_broker", self.kind, self.path],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None  # stdout=PIPE
        line = self.process.stdout.readline()
        if not line.startswith("bare listening on "):
            self.stop()
            raise RuntimeError(f"the bare {self.kind} server did not start")
        self.bootstrap = line.rsplit(" ", 1)[1].strip()
        return self

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError("the bare server has not been started")
        return self.process.pid

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            if self.process.stdout is not None:
                self.process.stdout.close()
            self.process = None


def ingest_rounds(
    directory: str,
    rounds: int,
    mib: int,
    on_round: Callable[[int, str, float], None] | None = None,
    cpu_us_per_request: dict[str, list[float]] | None = None,
) -> dict[str, list[float]]:
    """MB/s per round of `kbench broker` and the bare ingest server, both keeping their logs
    under directory, driven by one BatchProducer each (prebuilt batches of 600 100-byte records,
    about 64 KiB, ProduceRequest v7, acks=1, window 16, one connection) with mib MiB per round,
    the order alternating between rounds so drift hits both alike, after a 64 MiB warm-up.
    cpu_us_per_request, if given, gets each server's CPU time per request in every round: what
    a server spends per request does not depend on how much of the machine others take."""
    bare_dir = os.path.join(directory, "bare")
    os.makedirs(bare_dir)
    bare = BareBroker("ingest", bare_dir)
    kbench = LocalBroker(
        os.path.join(directory, "kbench"), log_path=os.path.join(directory, "broker.log")
    )
    producers: dict[str, BatchProducer] = {}
    try:
        bare.start()
        kbench.start()
        producers["kbench"] = BatchProducer(kbench.bootstrap)
        producers["bare"] = BatchProducer(bare.bootstrap)
        producers["kbench"].create_topic("bare", 1)
        pids = {"kbench": kbench.pid, "bare": bare.pid}
        for producer in producers.values():  # warm-up: files, page cache, connections
            producer.produce("bare", 1, 64 << 20, window=16)
        results: dict[str, list[float]] = {name: [] for name in producers}
        for round_ in range(rounds):
            order = list(producers) if round_ % 2 == 0 else list(reversed(producers))
            for name in order:
                cpu_before = cpu_seconds(pids[name])
                stats = producers[name].produce("bare", 1, mib << 20, window=16)
                cpu_after = cpu_seconds(pids[name])
                results[name].append(stats.bytes / stats.seconds / 1e6)
                if cpu_us_per_request is not None and None not in (cpu_before, cpu_after):
                    cpu_us_per_request.setdefault(name, []).append(
                        (cpu_after - cpu_before) * 1e6 / stats.requests  # type: ignore[operator]
                    )
                if on_round is not None:
                    on_round(round_, name, results[name][-1])
    finally:
        for producer in producers.values():
            producer.close()
        kbench.stop()
        bare.stop()
    return results


def fetch_rounds(
    directory: str,
    rounds: int,
    mib: int,
    fetch_bytes: int = 1 << 20,
    on_round: Callable[[int, str, float], None] | None = None,
) -> dict[str, list[float]]:
    """MB/s per round of `kbench broker` and the bare fetch server, each read by one
    FetchClient from offset 0 to the high watermark with fetch_bytes fetches, the order
    alternating between rounds. The log, mib MiB of BatchProducer's batches (600 100-byte
    records, about 64 KiB), is produced into kbench under directory and made resident in the
    page cache; the bare server serves the same segment files. A warm-up read of the whole log
    from each must return the same batches (digested), or no round is measured."""
    kbench = LocalBroker(
        os.path.join(directory, "kbench"), log_path=os.path.join(directory, "broker.log")
    )
    partition_dir = os.path.join(kbench.data_dir, f"{_FETCH_TOPIC}-0")
    bare = BareBroker("fetch", partition_dir)
    clients: dict[str, FetchClient] = {}
    try:
        kbench.start()
        producer = BatchProducer(kbench.bootstrap)
        try:
            producer.create_topic(_FETCH_TOPIC, 1)
            producer.produce(_FETCH_TOPIC, 1, mib << 20, window=16)
        finally:
            producer.close()
        segments = [
            os.path.join(partition_dir, name)
            for name in sorted(os.listdir(partition_dir))
            if name.endswith(".log")
        ]
        if not make_resident(segments):
            raise RuntimeError(f"the log under {partition_dir} does not stay in the page cache")
        bare.start()
        clients["kbench"] = FetchClient(kbench.bootstrap)
        clients["bare"] = FetchClient(bare.bootstrap)
        read: dict[str, tuple[int, int, int, bytes]] = {}
        for name, client in clients.items():  # warm-up: connections, caches, and a check
            digest = hashlib.blake2b(digest_size=16)
            fetched = client.read_all(_FETCH_TOPIC, 0, fetch_bytes, digest=digest)
            read[name] = (fetched.batches, fetched.requests, fetched.next_offset, digest.digest())
        if read["kbench"] != read["bare"]:
            raise RuntimeError(
                f"kbench and the bare server fetched different logs: {read['kbench']} "
                f"and {read['bare']} (batches, requests, next offset, digest)"
            )
        results: dict[str, list[float]] = {name: [] for name in clients}
        for round_ in range(rounds):
            order = list(clients) if round_ % 2 == 0 else list(reversed(clients))
            for name in order:
                fetched = clients[name].read_all(_FETCH_TOPIC, 0, fetch_bytes)
                results[name].append(fetched.bytes / fetched.seconds / 1e6)
                if on_round is not None:
                    on_round(round_, name, results[name][-1])
    finally:
        for client in clients.values():
            client.close()
        kbench.stop()
        bare.stop()
    return results


def print_round(round_: int, name: str, mb_s: float) -> None:
    """One round's MB/s, as ingest_rounds and fetch_rounds report it to on_round."""
    print(f"round {round_ + 1} {name:6} {mb_s:7.0f} MB/s")


def print_summary(results: dict[str, list[float]], target: str) -> None:
    """Each server's median MB/s with its 95 % interval, then kbench/bare as the median of the
    per-round ratios with its interval, followed by target (what the ratio is held against)."""
    for name, values in results.items():
        summary = summarize(values)
        print(
            f"{name:6} median {summary.median:7.0f} MB/s (CI {summary.ci_low:.0f}-"
            f"{summary.ci_high:.0f})"
        )
    ratio = compare(results["kbench"], results["bare"])
    print(
        f"kbench/bare {ratio.ratio:.2f} (CI {ratio.ci_low:.2f}-{ratio.ci_high:.2f}, "
        f"{ratio.n} rounds); {target}"
    )


_SERVERS = {"ingest": serve_ingest, "fetch": serve_fetch}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("kind", choices=sorted(_SERVERS))
    parser.add_argument(
        "path",
        help="ingest: the directory its file goes in; fetch: a kbench partition directory "
        "(TOPIC-PARTITION) or one of its segment files",
    )
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        _SERVERS[args.kind](args.path)


if __name__ == "__main__":
    main()
