import os
import shutil
import subprocess
import sys

import pytest

from engine.records import CompressionType, SimpleRecord, build_batch


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


@pytest.fixture
def run_kbench():
    """Run the installed `kbench` console script as a user would."""
    beside_python = os.path.join(os.path.dirname(sys.executable), "kbench")
    kbench = beside_python if os.path.exists(beside_python) else shutil.which("kbench")
    assert kbench, "the kbench command is not installed: pip install -e '.[dev]'"

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [kbench, *args],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=os.path.dirname(os.path.dirname(__file__)),
        )

    return run
