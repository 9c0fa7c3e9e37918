import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import psutil
import pytest

from scenarios.harness import environment
from scenarios.harness.environment import (
    capture_environment,
    filesystem_warning,
    find_mount,
    git_state,
)

REPOSITORY = Path(environment.__file__).resolve().parents[2]


def _is_tmpfs(mount_point: str) -> bool:
    with open("/proc/self/mounts") as mounts:
        return any(line.split()[1:3] == [mount_point, "tmpfs"] for line in mounts)


def test_documented_keys_and_types(tmp_path):
    env = capture_environment(str(tmp_path))

    assert set(env) == {
        "captured_at",
        "hostname",
        "cpu",
        "memory",
        "os",
        "python",
        "packages",
        "git",
        "data_dir",
        "warnings",
    }
    assert env["captured_at"].endswith("+00:00")
    assert isinstance(env["hostname"], str)
    cpu = env["cpu"]
    assert isinstance(cpu["model"], str)
    assert cpu["logical_cores"] >= 1
    assert cpu["physical_cores"] is None or cpu["physical_cores"] >= 1
    for key in ("current_mhz", "min_mhz", "max_mhz"):
        assert cpu[key] is None or cpu[key] > 0
    assert env["memory"]["total_bytes"] > 0
    assert env["os"]["kernel"] in env["os"]["platform"]
    assert env["python"]["implementation"] in ("CPython", "PyPy")
    assert os.path.exists(env["python"]["executable"])
    assert set(env["packages"]) == set(environment.PACKAGES)
    assert env["packages"]["psutil"] == psutil.__version__
    assert set(env["git"]) == {"commit", "dirty"}
    assert set(env["data_dir"]) == {"path", "mount_point", "device", "fstype", "free_bytes"}
    assert env["data_dir"]["path"] == str(tmp_path)
    assert env["data_dir"]["free_bytes"] > 0
    assert all(isinstance(warning, str) for warning in env["warnings"])


def test_json_serialisable(tmp_path):
    env = capture_environment(str(tmp_path))

    assert json.loads(json.dumps(env)) == env


@pytest.mark.skipif(shutil.which("findmnt") is None, reason="findmnt (util-linux) not installed")
def test_reports_the_filesystem_of_the_data_directory(tmp_path):
    expected = subprocess.run(
        ["findmnt", "-n", "-o", "FSTYPE,TARGET", "--target", str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()

    data_dir = capture_environment(str(tmp_path))["data_dir"]

    assert [data_dir["fstype"], data_dir["mount_point"]] == expected


def test_data_directory_not_created_yet_is_described_by_its_parent(tmp_path):
    data_dir = capture_environment(str(tmp_path / "not" / "yet"))["data_dir"]

    assert data_dir["path"] == str(tmp_path / "not" / "yet")
    assert data_dir["mount_point"] == find_mount(str(tmp_path)).mount_point
    assert data_dir["free_bytes"] > 0


@pytest.mark.skipif(not _is_tmpfs("/dev/shm"), reason="/dev/shm is not a tmpfs mount here")
def test_warns_when_the_data_directory_is_on_tmpfs():
    with tempfile.TemporaryDirectory(dir="/dev/shm") as shm_dir:
        env = capture_environment(shm_dir)

    assert env["data_dir"]["fstype"] == "tmpfs"
    assert any("tmpfs" in w and "memory, not the disk" in w for w in env["warnings"])


@pytest.mark.parametrize(
    ("fstype", "device", "says"),
    [
        ("ext4", "/dev/vda1", None),
        ("xfs", "/dev/mapper/vg-data", None),
        ("tmpfs", "tmpfs", "memory, not the disk"),
        ("ramfs", "ramfs", "memory, not the disk"),
        ("ext4", "/dev/zram0", "memory, not the disk"),
        ("overlay", "overlay", "layered"),
        ("nfs4", "server:/export", "network"),
        ("fuse.sshfs", "host:", "network"),
        (None, None, "could not be determined"),
    ],
)
def test_filesystem_warning(fstype, device, says):
    warning = filesystem_warning(fstype, device)

    if says is None:
        assert warning is None
    else:
        assert says in warning


def test_warns_on_a_single_core_machine(tmp_path, monkeypatch):
    monkeypatch.setattr(psutil, "cpu_count", lambda logical=True: 1)

    env = capture_environment(str(tmp_path))

    assert any("1 logical core" in warning for warning in env["warnings"])


def test_missing_packages_are_none(tmp_path, monkeypatch):
    monkeypatch.setattr(environment, "PACKAGES", ("psutil", "kbench-no-such-distribution"))

    packages = capture_environment(str(tmp_path))["packages"]

    assert packages == {"psutil": psutil.__version__, "kbench-no-such-distribution": None}


@pytest.mark.skipif(not (REPOSITORY / ".git").exists(), reason="kbench is not a git checkout here")
@pytest.mark.skipif(shutil.which("git") is None, reason="git not installed")
def test_git_commit_of_this_checkout(tmp_path):
    git = capture_environment(str(tmp_path))["git"]

    assert re.fullmatch(r"[0-9a-f]{40}", git["commit"])
    assert isinstance(git["dirty"], bool)


def test_git_fields_are_none_outside_a_checkout(tmp_path):
    assert git_state(tmp_path) == {"commit": None, "dirty": None}


def test_git_fields_are_none_without_git(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no git on it

    assert git_state(REPOSITORY) == {"commit": None, "dirty": None}
