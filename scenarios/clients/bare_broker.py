"""BareBroker: the least a broker must do, as a floor to hold kbench's broker against.

The ingest server accepts connections, cuts length-prefixed frames out of one reused receive
buffer (recv_into), os.writes each frame to one file and answers every request with a canned
ProduceResponse carrying the request's correlation id: no parsing, no validation, no index.
What kbench's broker spends beyond it on the same load is its own overhead per request and byte.
ingest_rounds() measures the two side by side, as tests/benchmarks/ingest_vs_bare.py and the asv
suite report it.

    python3 -m scenarios.clients.bare_broker ingest DIR   # prints "bare listening on HOST:PORT"
"""

import argparse
import contextlib
import os
import selectors
import socket
import struct
import subprocess
import sys
from collections.abc import Callable

from kafka.protocol.producer.produce import ProduceResponse

from scenarios.clients.loadgen import BatchProducer
from scenarios.clients.local_broker import LocalBroker

_SIZE = struct.Struct(">i")
_PRODUCE_VERSION = 7  # what scenarios.clients.loadgen.BatchProducer sends
_BUFFER = 8 << 20


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


def serve_ingest(directory: str) -> None:
    """The bare ingest loop: one thread, one selector, one file."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.setblocking(False)
    print(f"bare listening on 127.0.0.1:{listener.getsockname()[1]}", flush=True)
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    fd = os.open(os.path.join(directory, "bare.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    response = canned_produce_response()
    buffers: dict[socket.socket, list] = {}  # sock -> [buffer, start, end]
    while True:
        for key, _ in selector.select():
            if key.fileobj is listener:
                sock, _ = listener.accept()
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
                os.write(fd, view[start : start + 4 + size])
                response[4:8] = buffer[start + 8 : start + 12]  # the request's correlation id
                sock.sendall(response)
                start += 4 + size
            state[1], state[2] = start, end


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
    directory: str, rounds: int, mib: int, on_round: Callable[[int, str, float], None] | None = None
) -> dict[str, list[float]]:
    """MB/s per round of `kbench broker` and the bare ingest server, both keeping their logs
    under directory, driven by one BatchProducer each (prebuilt batches of 600 100-byte records,
    about 64 KiB, ProduceRequest v7, acks=1, window 16, one connection) with mib MiB per round,
    the order alternating between rounds so drift hits both alike, after a 64 MiB warm-up."""
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
        for producer in producers.values():  # warm-up: files, page cache, connections
            producer.produce("bare", 1, 64 << 20, window=16)
        results: dict[str, list[float]] = {name: [] for name in producers}
        for round_ in range(rounds):
            order = list(producers) if round_ % 2 == 0 else list(reversed(producers))
            for name in order:
                stats = producers[name].produce("bare", 1, mib << 20, window=16)
                results[name].append(stats.bytes / stats.seconds / 1e6)
                if on_round is not None:
                    on_round(round_, name, results[name][-1])
    finally:
        for producer in producers.values():
            producer.close()
        kbench.stop()
        bare.stop()
    return results


_SERVERS = {"ingest": serve_ingest}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("kind", choices=sorted(_SERVERS))
    parser.add_argument("path", help="ingest: the directory its file goes in")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        _SERVERS[args.kind](args.path)


if __name__ == "__main__":
    main()
