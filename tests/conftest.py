import os
import shutil
import subprocess
import sys

import pytest

from engine.records import CompressionType, SimpleRecord, build_batch
from scenarios.local_broker import LocalBroker

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


# Group joins complete at once and short sessions are allowed, so group tests run in seconds.
TEST_BROKER_SETTINGS = {
    "group.initial.rebalance.delay.ms": "0",
    "group.min.session.timeout.ms": "500",
}


def broker_process(data_dir: str, **settings: str) -> LocalBroker:
    """`kbench broker` as a subprocess on a free loopback port, as users and scenarios run it."""
    return LocalBroker(data_dir, {**TEST_BROKER_SETTINGS, **settings})


@pytest.fixture
def broker(tmp_path):
    running = broker_process(str(tmp_path / "data")).start()
    yield running
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
