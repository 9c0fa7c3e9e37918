"""Bad input through the installed console script: one line on stderr naming what was expected,
exit status 2, nothing measured and nothing lost."""

import os
import re
import signal
import socket
import subprocess
import threading
import time
from functools import partial

import pytest

from scenarios.catalog.registry import SCENARIOS
from scenarios.clients.cluster import probe
from scenarios.harness import results
from tests.conftest import KBENCH

# sysfs takes no new files, whoever asks (permission bits would not stop root)
UNWRITABLE = "/sys/kernel"


def _one_line_error(completed: subprocess.CompletedProcess, expected: str) -> str:
    assert completed.returncode == 2, (completed.stdout, completed.stderr)
    assert "Traceback" not in completed.stderr
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1, completed.stderr
    assert expected in lines[0], lines[0]
    return lines[0]


class _FakeServer:
    """A TCP listener on loopback that is not a Kafka broker: it answers every connection with
    `reply` (an HTTP error, say) and closes it."""

    def __init__(self, reply: bytes) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self.sock.getsockname()[1]}"
        self.reply = reply
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.recv(4096)
                conn.sendall(self.reply)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def closed_port() -> str:
    with socket.create_server(("127.0.0.1", 0)) as sock:
        return f"127.0.0.1:{sock.getsockname()[1]}"  # closed again when the test uses it


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_bootstrap_to_a_closed_port_is_refused_before_any_scenario(
    scenario, closed_port, tmp_path, run_kbench
):
    completed = run_kbench(
        "run", scenario, "--bootstrap", closed_port, "--reports", str(tmp_path), timeout=60
    )
    _one_line_error(completed, f"--bootstrap: cannot connect to {closed_port}: Connection refused")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (b"HTTP/1.1 400 Bad Request\r\n\r\n", "not the Kafka protocol"),
        (b"", "closed the connection"),
    ],
)
def test_bootstrap_to_a_port_that_is_not_kafka_is_refused(reply, expected, tmp_path, run_kbench):
    server = _FakeServer(reply)
    try:
        completed = run_kbench(
            "run", "zero-copy", "--bootstrap", server.address, "--reports", str(tmp_path)
        )
    finally:
        server.close()
    _one_line_error(completed, expected)
    assert server.address in completed.stderr
    assert os.listdir(tmp_path) == []


def _unusable_directories(tmp_path) -> list[tuple[str, str]]:
    a_file = tmp_path / "a-file"
    a_file.write_text("not a directory")
    return [
        (str(a_file), "not a directory"),
        (str(a_file / "below"), "cannot create it: Not a directory"),
        (UNWRITABLE, "cannot write there"),
    ]


@pytest.mark.parametrize("case", range(3))
def test_run_refuses_an_unusable_data_dir_or_reports_dir(case, tmp_path, run_kbench):
    path, expected = _unusable_directories(tmp_path)[case]
    reports = tmp_path / "reports"
    completed = run_kbench(
        "run", "zero-copy", "--profile", "smoke", "--data-dir", path, "--reports", str(reports)
    )
    _one_line_error(completed, f"--data-dir {path}: {expected}")
    completed = run_kbench("run", "zero-copy", "--profile", "smoke", "--reports", path)
    _one_line_error(completed, f"--reports {path}: {expected}")
    assert not reports.exists() or os.listdir(reports) == []


@pytest.mark.parametrize("case", range(3))
def test_broker_refuses_an_unusable_data_dir(case, tmp_path, run_kbench):
    path, expected = _unusable_directories(tmp_path)[case]
    completed = run_kbench("broker", "--data-dir", path, "--listen", "127.0.0.1:0")
    _one_line_error(completed, f"--data-dir {path}: {expected}")


def test_compare_of_a_missing_file_says_so(tmp_path, run_kbench):
    missing = str(tmp_path / "missing.json")
    completed = run_kbench("compare", missing, missing)
    _one_line_error(completed, f"{missing}: no such results file")


def test_help_texts_render_percent_signs(run_kbench):
    for command in ("compare", "run", "report"):
        completed = run_kbench(command, "--help")
        assert completed.returncode == 0
        assert "%%" not in completed.stdout
    assert "95 % interval" in " ".join(run_kbench("compare", "--help").stdout.split())


def test_ctrl_c_keeps_what_was_measured_and_says_where(tmp_path, broker):
    """Ctrl-C in a terminal signals the whole foreground process group (kbench here; the
    cluster is another's). Sent once a few measurements are done, it ends the run with one
    line saying where the samples taken so far are; the file holds them, and the topics the
    scenario had created are gone."""
    reports = tmp_path / "reports"
    command = [KBENCH, "run", "disk-write-pattern", "--profile", "quick"]
    command += ["--reports", str(reports), "--bootstrap", broker.bootstrap]
    process = subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    stderr: list[str] = []
    reader = threading.Thread(
        target=lambda: stderr.extend(iter(partial(process.stderr.read, 1), ""))
    )
    reader.start()
    try:
        deadline = time.monotonic() + 120
        # the bar counts expected seconds: 3 % of this scenario is several measurements
        while not re.search(r"(?<!\d)([3-9]|\d\d)%\|", "".join(stderr)):
            assert process.poll() is None, "".join(stderr)
            assert time.monotonic() < deadline, "no measurement finished"
            time.sleep(0.05)
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=120)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        reader.join(timeout=10)
        process.stderr.close()
    text = "".join(stderr)
    assert process.returncode == 130, text
    assert "Traceback" not in text
    [path] = reports.glob("*.json")
    last = text.strip().splitlines()[-1]
    assert last == f"kbench run: interrupted; what was measured is in {path}"
    [scenario] = results.load(str(path))["scenarios"]
    assert scenario["error"].startswith("interrupted (Ctrl-C) after")
    assert len(scenario["samples"]) >= 3
    assert not [t for t in probe(broker.bootstrap).topics if t.startswith("kbench-")]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"t": {"retention.ms": "-5"}}', "topic t: retention.ms must be -1 (unlimited) or at"),
        ("{not json", "topic-configs.json: not JSON"),
    ],
)
def test_broker_refuses_a_topic_config_file_it_cannot_use(content, expected, tmp_path, run_kbench):
    """A topic-configs.json edited by hand (or written before a rule existed) stops the start
    with one line naming the file and the fault, not a traceback."""
    data_dir = tmp_path / "data"
    (data_dir / "t-0").mkdir(parents=True)
    (data_dir / "topic-configs.json").write_text(content)
    completed = run_kbench("broker", "--data-dir", str(data_dir), "--listen", "127.0.0.1:0")
    assert completed.returncode == 1
    assert expected in completed.stderr and "Traceback" not in completed.stderr
