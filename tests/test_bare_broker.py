"""The bare fetch server answers FetchClient's fetches with the very frames kbench's broker
sends for them, so the ratio tests/benchmarks/fetch_vs_bare measures compares equal work."""

import hashlib
import os
import socket

from engine.protocol.client import encode_request, read_frame
from scenarios.clients.bare_broker import BareBroker, print_round, print_summary
from scenarios.clients.fetch_client import FetchClient, fetch_request
from scenarios.clients.loadgen import BatchProducer
from tests.conftest import broker_process

_TOPIC = "bare-fetch"


def _frame(sock: socket.socket, offset: int, max_bytes: int, correlation_id: int) -> bytes:
    request = fetch_request(_TOPIC, 0, offset, max_bytes)
    sock.sendall(encode_request(request, correlation_id, "kbench-test"))
    return bytes(read_frame(sock, None, 1 << 30)[1])


def test_bare_fetch_frames_are_kbench_s_byte_for_byte(tmp_path):
    # small segments, so fetches span segments as kbench's Log.read lets them
    kbench = broker_process(str(tmp_path / "data"), **{"log.segment.bytes": str(200 << 10)})
    kbench.start()
    bare = BareBroker("fetch", os.path.join(kbench.data_dir, f"{_TOPIC}-0"))
    try:
        producer = BatchProducer(kbench.bootstrap)
        try:
            producer.create_topic(_TOPIC, 1)
            produced = producer.produce(_TOPIC, 1, 1 << 20)  # 15 batches of 600 records
        finally:
            producer.close()
        assert len([n for n in os.listdir(bare.path) if n.endswith(".log")]) > 1
        bare.start()
        high_watermark = produced.requests * 600
        fetches = [  # (offset, max_bytes): from a batch start, inside a batch, the last record,
            # the high watermark (no records); a limit of one byte still returns one batch
            (offset, max_bytes)
            for offset in (0, 1234, high_watermark - 1, high_watermark)
            for max_bytes in (1 << 20, 300 << 10, 1)
        ]
        with (
            socket.create_connection(("127.0.0.1", kbench.port)) as to_kbench,
            socket.create_connection(("127.0.0.1", int(bare.bootstrap.rsplit(":")[1]))) as to_bare,
        ):
            for correlation_id, (offset, max_bytes) in enumerate(fetches):
                expected = _frame(to_kbench, offset, max_bytes, correlation_id)
                assert _frame(to_bare, offset, max_bytes, correlation_id) == expected

        read = {}
        for name, server in (("kbench", kbench), ("bare", bare)):
            digest = hashlib.blake2b()
            with FetchClient(server.bootstrap) as client:
                fetched = client.read_all(_TOPIC, 0, 100 << 10, digest=digest)
            read[name] = (fetched.records, fetched.requests, fetched.next_offset, digest.digest())
        assert read["bare"] == read["kbench"]
        assert read["bare"][0] == high_watermark
    finally:
        bare.stop()
        kbench.stop()


def test_the_scripts_print_each_round_the_medians_and_kbench_over_bare(capsys):
    print_round(0, "kbench", 812.4)
    print_summary({"kbench": [800.0, 900.0, 700.0], "bare": [1000.0, 1000.0, 1000.0]}, "target")

    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "round 1 kbench     812 MB/s"
    assert lines[1].startswith("kbench median     800 MB/s (CI ")
    assert lines[2].startswith("bare   median    1000 MB/s (CI ")
    assert lines[3].startswith("kbench/bare 0.80 (CI ") and lines[3].endswith("3 rounds); target")
