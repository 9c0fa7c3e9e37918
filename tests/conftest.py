import os
import shutil
import signal
import subprocess
import sys

import pytest

from engine.records import CompressionType, SimpleRecord, build_batch

_BESIDE_PYTHON = os.path.join(os.path.dirname(sys.executable), "kbench")
KBENCH = _BESIDE_PYTHON if os.path.exists(_BESIDE_PYTHON) else shutil.which("kbench") or "kbench"


def make_batch(
    count: int = 5,
    value_size: int = 100,
    *,
    timestamp: int = 1_000,
    compression: CompressionType = CompressionType.NONE,
    tag: int = 0,
) -> bytearray:
    """A batch of count records whose values say which batch and record they are."""
    records = [
        SimpleRecord(
            value=f"{tag}:{i}:".encode().ljust(value_size, b"x"),
            key=f"k{i}".encode(),
            timestamp=timestamp + i,
        )
        for i in range(count)
    ]
    return build_batch(records, compression=compression)


class BrokerProcess:
    """`kbench broker` as a subprocess on a free loopback port, as a user runs it."""

    def __init__(self, data_dir: str, *settings: str) -> None:
        self.data_dir = data_dir
        self.settings = settings
        self.process: subprocess.Popen | None = None
        self.bootstrap = ""
        self.port = 0

    def start(self) -> "BrokerProcess":
        args = [KBENCH, "broker", "--data-dir", self.data_dir, "--listen", f"127.0.0.1:{self.port}"]
        for setting in ("group.initial.rebalance.delay.ms=0", "group.min.session.timeout.ms=500"):
            args += ["--set", setting]
        for setting in self.settings:
            args += ["--set", setting]
        self.stderr = open(os.path.join(os.path.dirname(self.data_dir), "broker.log"), "ab")  # noqa: SIM115
        self.process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self.stderr, text=True)
        line = self.process.stdout.readline()
        assert line.startswith("kbench broker listening on "), f"broker did not start: {line!r}"
        self.bootstrap = line.rsplit(" ", 1)[1].strip()
        self.port = int(self.bootstrap.rsplit(":", 1)[1])
        return self

    def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
        code = self.process.wait(timeout=30)
        self.process.stdout.close()
        self.stderr.close()
        return code

    def restart(self) -> "BrokerProcess":
        self.stop()
        return self.start()


@pytest.fixture
def broker(tmp_path):
    running = BrokerProcess(str(tmp_path / "data")).start()
    yield running
    if running.process.poll() is None:
        running.stop()


@pytest.fixture
def run_kbench():
    """Run the installed `kbench` console script as a user would."""

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [KBENCH, *args],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=os.path.dirname(os.path.dirname(__file__)),
        )

    return run
