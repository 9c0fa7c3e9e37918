"""The machine a run happened on, captured next to its results.

A figure without its machine cannot be compared with anything, so every result file carries
`capture_environment(data_dir)`: CPU, memory, OS, Python, the versions of the packages that
shape the numbers, the git commit of this checkout, and the filesystem that held the data.

Caveats: this is a snapshot taken once per run — CPU frequency in particular moves under load
and with the governor. `warnings` lists plain-English reasons to distrust what follows, such as a
data directory on tmpfs, where "disk" results measure memory.
"""

import importlib.metadata
import os
import platform
import socket
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import psutil

# Distributions whose versions move the figures (clients, codecs, checksums, measuring tools).
PACKAGES = (
    "kbench",
    "kafka-python",
    "confluent-kafka",
    "aiokafka",
    "lz4",
    "zstandard",
    "cramjam",
    "crc32c",
    "psutil",
    "matplotlib",
    "asv",
    "hdrhistogram",
    "pytest-benchmark",
)

MEMORY_FILESYSTEMS = frozenset({"tmpfs", "ramfs", "devtmpfs", "hugetlbfs"})
OVERLAY_FILESYSTEMS = frozenset({"overlay", "overlayfs", "aufs", "fuse-overlayfs"})
NETWORK_FILESYSTEMS = frozenset(
    {"nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "virtiofs", "fuse", "ceph"}
)
# Block devices that are RAM in disguise: zram (compressed RAM) and brd (/dev/ramN).
MEMORY_DEVICE_PREFIXES = ("/dev/zram", "/dev/ram")

_GIT_TIMEOUT_S = 10


class Mount(NamedTuple):
    mount_point: str
    device: str
    fstype: str


def capture_environment(data_dir: str) -> dict[str, Any]:
    """Describe this machine and the filesystem of data_dir as a JSON-serialisable dict.

    Keys: captured_at (UTC ISO-8601), hostname, cpu, memory, os, python, packages, git,
    data_dir, warnings. data_dir need not exist yet; its nearest existing parent is measured.
    """
    cpu = _cpu()
    data = _data_dir(data_dir)
    warnings = []
    cores = [n for n in (cpu["logical_cores"], cpu["usable_cores"]) if n is not None]
    if cores and min(cores) < 2:
        warnings.append(
            "only 1 logical core: broker, clients and the meter take turns on it, "
            "so results measure scheduling as much as the technique"
        )
    fs_warning = filesystem_warning(data["fstype"], data["device"])
    if fs_warning:
        warnings.append(f"data directory {data['path']}: {fs_warning}")
    return {
        "captured_at": datetime.now(UTC).isoformat(),
        "hostname": socket.gethostname(),
        "cpu": cpu,
        "memory": {"total_bytes": psutil.virtual_memory().total},
        "os": {"platform": platform.platform(), "kernel": platform.release()},
        "python": {
            "version": platform.python_version(),
            "implementation": platform.python_implementation(),
            "executable": sys.executable,
        },
        "packages": {name: _version(name) for name in PACKAGES},
        "git": git_state(Path(__file__).resolve().parent),  # the checkout holding `scenarios`
        "data_dir": data,
        "warnings": warnings,
    }


def filesystem_warning(fstype: str | None, device: str | None) -> str | None:
    """Why disk results on this filesystem would mislead, or None if it looks like a disk."""
    if fstype in MEMORY_FILESYSTEMS:
        return f"on {fstype}, a memory filesystem: disk results then measure memory, not the disk"
    if device and device.startswith(MEMORY_DEVICE_PREFIXES):
        return (
            f"on {device}, a RAM-backed block device: disk results then measure memory, "
            "not the disk"
        )
    if fstype in OVERLAY_FILESYSTEMS:
        return (
            f"on {fstype}, a container's layered filesystem: disk results go through it to a "
            "backing filesystem that may be memory; mount a volume for the data directory"
        )
    if fstype in NETWORK_FILESYSTEMS or (fstype or "").startswith("fuse."):
        return (
            f"on {fstype}, a network or pass-through filesystem: disk results include its "
            "protocol and the host behind it"
        )
    if fstype is None:
        return "its filesystem could not be determined"
    return None


def find_mount(path: str) -> Mount | None:
    """The mount holding path: the longest mount point that is path or one of its parents."""
    target = os.path.realpath(path)
    best: Mount | None = None
    for part in psutil.disk_partitions(all=True):
        mount_point = part.mountpoint
        prefix = mount_point.rstrip("/") + "/"
        if target != mount_point and not target.startswith(prefix):
            continue
        # ">=": of two mounts on the same point, the later one hides the earlier.
        if best is None or len(mount_point) >= len(best.mount_point):
            best = Mount(mount_point, part.device, part.fstype)
    return best


def git_state(directory: Path) -> dict[str, Any]:
    """Commit sha and dirtiness of the git work tree holding directory; None when unknown."""
    head = _git(directory, "rev-parse", "HEAD")
    status = _git(directory, "status", "--porcelain") if head is not None else None
    return {
        "commit": head.strip() if head is not None else None,
        "dirty": bool(status.strip()) if status is not None else None,
    }


def _git(directory: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(directory), *args],
            capture_output=True,
            text=True,
            timeout=_GIT_TIMEOUT_S,
        )
    except (OSError, subprocess.TimeoutExpired):  # git missing, or hung on a lock
        return None
    return done.stdout if done.returncode == 0 else None


def _cpu() -> dict[str, Any]:
    try:
        freq = psutil.cpu_freq()
    except (OSError, NotImplementedError):
        freq = None

    def mhz(value: float | None) -> float | None:
        return round(value, 1) if value else None  # psutil reports 0.0 for "unknown"

    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "model": _cpu_model(),
        "architecture": platform.machine(),
        "logical_cores": psutil.cpu_count(logical=True),
        "physical_cores": psutil.cpu_count(logical=False),
        "usable_cores": usable,  # this process's affinity: a container may see fewer
        "current_mhz": mhz(freq.current) if freq else None,
        "min_mhz": mhz(freq.min) if freq else None,
        "max_mhz": mhz(freq.max) if freq else None,
    }


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as cpuinfo:
            for line in cpuinfo:
                key, _, value = line.partition(":")
                # x86 says "model name"; some ARM kernels say "Hardware" or "Processor".
                if key.strip() in ("model name", "Hardware", "Processor") and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or None


def _data_dir(data_dir: str) -> dict[str, Any]:
    path = os.path.abspath(data_dir)
    existing = path
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    mount = find_mount(existing)
    return {
        "path": path,
        "mount_point": mount.mount_point if mount else None,
        "device": mount.device if mount else None,
        "fstype": mount.fstype if mount else None,
        "free_bytes": psutil.disk_usage(existing).free,
    }


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None
