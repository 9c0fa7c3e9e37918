import importlib.metadata
import os
import shutil
import subprocess
import sys
import tomllib

import pytest
from hypothesis import settings
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from engine.records import CompressionType, SimpleRecord, build_batch
from scenarios.clients.local_broker import LocalBroker

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
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


# Hypothesis' deadline (200 ms an example) is a timing check, and on a shared 2-core machine a
# slow example is load, not a defect: tests here assert behaviour only.
settings.register_profile("kbench", deadline=None)
settings.load_profile("kbench")

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


def dev_only_modules() -> list[str]:
    """Top-level modules of the packages that only the dev extras install."""
    with open(os.path.join(_ROOT, "pyproject.toml"), "rb") as f:
        project = tomllib.load(f)["project"]

    def names(requirements: list[str]) -> set[str]:
        return {canonicalize_name(Requirement(r).name) for r in requirements}

    dev = names(project["optional-dependencies"]["dev"]) - names(project["dependencies"])
    return sorted(
        module
        for module, distributions in importlib.metadata.packages_distributions().items()
        if any(canonicalize_name(d) in dev for d in distributions)
    )


def plain_install_env() -> dict[str, str]:
    """An environment in which the dev extras cannot be imported (tests/plain_install)."""
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            [os.path.join(_ROOT, "tests", "plain_install"), os.environ.get("PYTHONPATH", "")]
        ),
        "KBENCH_BLOCK_MODULES": ",".join(dev_only_modules()),
    }


@pytest.fixture
def run_kbench():
    """Run the installed `kbench` console script as a user would; env=plain_install_env()
    runs it as after an install without the dev extras."""

    def run(
        *args: str, env: dict[str, str] | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess:
        return subprocess.run(
            [KBENCH, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=_ROOT,
            env=env,
        )

    return run
