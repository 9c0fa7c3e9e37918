"""What one measured phase cost the machine, and what the page cache held.

`ResourceMeter` wraps a phase and reports, per named process (broker, client, ...), the CPU
seconds in user and kernel mode, the context switches, and the bytes the process made the storage
layer read and write; plus the bytes the block device under the data directory moved.

Caveats:
- Process CPU and switches cover all threads of the process, not its child processes: name every
  process you care about. The meter's own sampling thread runs in this process and is counted
  in its CPU (about 0.1 ms per process per sample).
- A process that exits during the phase is reported as last sampled (every `interval_s`), so
  its final moments are missing; such entries are marked `exited`.
- Process read_bytes/write_bytes are storage-level (Linux /proc/<pid>/io): page-cache hits are
  not counted, and writes count when pages are dirtied, not when they reach the disk.
- Disk counters are system-wide for the device: every process writing to it is counted,
  including writeback of data dirtied before the phase began.

`cpu_seconds` is one process's CPU time to the nanosecond (the scheduler's run time), for
phases too short for ResourceMeter's clock ticks (10 ms).

Page-cache residency (`page_cache_residency`, `directory_residency`, `files_residency`) is a
snapshot: the kernel may load or evict pages the moment after; `make_resident` and
`evict_from_page_cache` bring a file in or out. Linux reports a file's cached pages only to a
caller that owns the file or may write to it; anyone else would read 0, so that is refused.
`make_hot` and `evict` bring a set of files to the state a measurement needs and check it, or
raise `PageCacheStateError`: a state that cannot be reached is an error, never a sample.
"""

import ctypes
import dataclasses
import functools
import mmap
import os
import stat
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, NamedTuple

import psutil

from scenarios.harness.environment import find_mount


@dataclass
class ProcessUsage:
    user_s: float
    system_s: float
    voluntary_switches: int
    involuntary_switches: int
    read_bytes: int | None  # None where the OS does not count per-process I/O
    write_bytes: int | None
    exited: bool = False  # gone before the phase ended: figures are as last sampled


@dataclass
class ResourceUsage:
    wall_s: float
    processes: dict[str, ProcessUsage]
    disk_read_bytes: int | None  # the device under the watched path, all processes; None if unknown
    disk_write_bytes: int | None

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class _Reading(NamedTuple):
    user_s: float
    system_s: float
    voluntary_switches: int
    involuntary_switches: int
    read_bytes: int | None
    write_bytes: int | None


class ResourceMeter:
    """Context manager measuring one phase.

    with ResourceMeter({"broker": pid, "client": os.getpid()}, path=data_dir) as meter:
        ...
    meter.usage

    A background thread samples the processes every interval_s so that one which exits during
    the phase is still reported; interval_s=None samples only at the start and the end.
    """

    def __init__(
        self,
        processes: Mapping[str, int],
        path: str | None = None,
        *,
        interval_s: float | None = 0.1,
    ) -> None:
        self._pids = dict(processes)
        self._path = path
        self._interval_s = interval_s
        self._processes: dict[str, psutil.Process] = {}
        self._first: dict[str, _Reading] = {}
        self._last: dict[str, _Reading] = {}
        self._exited: set[str] = set()
        self._device: str | None = None
        self._disk_first: tuple[int, int] | None = None
        self._stop = threading.Event()
        self._sampler: threading.Thread | None = None
        self._started = 0.0
        self._usage: ResourceUsage | None = None

    @property
    def usage(self) -> ResourceUsage:
        if self._usage is None:
            raise RuntimeError("usage is known once the `with` block has ended")
        return self._usage

    def __enter__(self) -> "ResourceMeter":
        for role, pid in self._pids.items():
            process = psutil.Process(pid)  # raises NoSuchProcess for a pid that is not there
            reading = _read(process)
            if reading is None:
                raise psutil.NoSuchProcess(pid, msg=f"{role} exited before the phase began")
            self._processes[role] = process
            self._first[role] = self._last[role] = reading
        self._device = block_device(self._path) if self._path is not None else None
        self._disk_first = _disk_bytes(self._device)
        if self._interval_s is not None:
            self._sampler = threading.Thread(
                target=self._sample_until_stopped, name="ResourceMeter", daemon=True
            )
            self._sampler.start()
        self._started = time.perf_counter()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        wall_s = time.perf_counter() - self._started
        self._stop.set()
        if self._sampler is not None:
            self._sampler.join()
        self._sample()
        disk_last = _disk_bytes(self._device)
        disk_read = disk_write = None
        if self._disk_first is not None and disk_last is not None:
            disk_read = disk_last[0] - self._disk_first[0]
            disk_write = disk_last[1] - self._disk_first[1]
        self._usage = ResourceUsage(
            wall_s=wall_s,
            processes={
                role: _difference(self._first[role], self._last[role], role in self._exited)
                for role in self._processes
            },
            disk_read_bytes=disk_read,
            disk_write_bytes=disk_write,
        )

    def _sample_until_stopped(self) -> None:
        assert self._interval_s is not None
        while not self._stop.wait(self._interval_s):
            self._sample()

    def _sample(self) -> None:
        for role, process in self._processes.items():
            if role in self._exited:
                continue
            reading = _read(process)
            if reading is None:
                self._exited.add(role)
            else:
                self._last[role] = reading


def _read(process: psutil.Process) -> _Reading | None:
    """The process's cumulative counters, or None once it has exited (or its pid was reused)."""
    try:
        with process.oneshot():
            if not process.is_running():  # also false when the pid now names another process
                return None
            cpu = process.cpu_times()  # all threads, living and exited
            switches = process.num_ctx_switches()
            try:
                io = process.io_counters()
                read_bytes, write_bytes = io.read_bytes, io.write_bytes
            except (psutil.AccessDenied, AttributeError, NotImplementedError):
                read_bytes = write_bytes = None  # not permitted, or not counted on this OS
    except psutil.NoSuchProcess:
        return None
    return _Reading(
        cpu.user, cpu.system, switches.voluntary, switches.involuntary, read_bytes, write_bytes
    )


def _difference(first: _Reading, last: _Reading, exited: bool) -> ProcessUsage:
    def io(before: int | None, after: int | None) -> int | None:
        return after - before if before is not None and after is not None else None

    return ProcessUsage(
        user_s=last.user_s - first.user_s,
        system_s=last.system_s - first.system_s,
        voluntary_switches=last.voluntary_switches - first.voluntary_switches,
        involuntary_switches=last.involuntary_switches - first.involuntary_switches,
        read_bytes=io(first.read_bytes, last.read_bytes),
        write_bytes=io(first.write_bytes, last.write_bytes),
        exited=exited,
    )


def _disk_bytes(device: str | None) -> tuple[int, int] | None:
    if device is None:
        return None
    counters = (psutil.disk_io_counters(perdisk=True) or {}).get(device)
    return (counters.read_bytes, counters.write_bytes) if counters else None


def block_device(path: str) -> str | None:
    """The name psutil.disk_io_counters(perdisk=True) uses for the device under path, or None.

    Tries the mount's device (symlinks such as /dev/mapper/x resolved to dm-N), then the device
    number of path itself (for mounts named /dev/root); a partition missing from the counters
    falls back to its whole disk. Memory and virtual filesystems have no block device: None.
    """
    counters = psutil.disk_io_counters(perdisk=True) or {}
    candidates = []
    mount = find_mount(path)
    if mount is not None and mount.device.startswith("/dev/"):
        candidates.append(os.path.basename(os.path.realpath(mount.device)))
    st_dev = os.stat(path).st_dev
    by_number = f"/sys/dev/block/{os.major(st_dev)}:{os.minor(st_dev)}"
    if os.path.exists(by_number):
        candidates.append(os.path.basename(os.path.realpath(by_number)))
    for name in candidates:
        if name in counters:
            return name
        sysfs = f"/sys/class/block/{name}"
        if os.path.exists(os.path.join(sysfs, "partition")):
            # /sys/class/block/vda1 resolves to .../block/vda/vda1: the parent is the disk.
            disk = os.path.basename(os.path.dirname(os.path.realpath(sysfs)))
            if disk in counters:
                return disk
    return None


def page_cache_residency(path: str) -> float:
    """Fraction (0..1) of the file's pages that are in the page cache right now."""
    return _residency(path)[0]


def directory_residency(path: str) -> float:
    """Bytes-weighted residency over every regular file below path (or of path, if a file).

    Symbolic links are not followed; files deleted during the walk (log retention) are skipped.
    """
    if not os.path.isdir(path):
        return page_cache_residency(path)
    total_bytes = 0
    resident_bytes = 0.0
    for directory, _, names in os.walk(path):
        for name in names:
            file_path = os.path.join(directory, name)
            try:
                if not stat.S_ISREG(os.lstat(file_path).st_mode):
                    continue
                fraction, size = _residency(file_path)
            except FileNotFoundError:
                continue
            total_bytes += size
            resident_bytes += fraction * size
    return resident_bytes / total_bytes if total_bytes else 0.0


def evict_from_page_cache(path: str) -> None:
    """Drop the file's pages from the page cache, so the next read comes from the disk.

    Dirty pages cannot be dropped, so the file is fsynced first, then POSIX_FADV_DONTNEED covers
    the whole file. Best effort by nature: the kernel keeps pages that some process has mapped
    or locked; check with page_cache_residency.
    """
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)  # Linux allows fsync on a read-only descriptor
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)  # length 0: to the end of the file
    finally:
        os.close(fd)


def make_resident(paths: list[str]) -> bool:
    """Read the files through the page cache where they are not all there; True when they are."""
    for path in paths:
        if page_cache_residency(path) < 0.999:
            with open(path, "rb", buffering=0) as f:
                while f.read(4 << 20):
                    pass
    return all(page_cache_residency(path) >= 0.999 for path in paths)


class PageCacheStateError(RuntimeError):
    """The page cache could not be brought to the state a variant needs: no sample is taken."""


def directory_files(directory: str, suffix: str = "") -> list[str]:
    """The files directly in directory whose names end with suffix, sorted: a partition's
    segment files with suffix ".log". Raises FileNotFoundError if directory is not there."""
    return sorted(
        os.path.join(directory, name)
        for name in os.listdir(directory)
        if name.endswith(suffix) and os.path.isfile(os.path.join(directory, name))
    )


def files_residency(paths: list[str]) -> float:
    """Bytes-weighted share (0..1) of the files' pages in the page cache right now.

    Raises RuntimeError when the files hold no byte at all: their share is undefined, and a
    caller checking a state would otherwise take nothing for evicted.
    """
    sizes = [os.path.getsize(p) for p in paths]
    total = sum(sizes)
    if not total:
        raise RuntimeError(f"nothing to read in {paths}")
    return sum(page_cache_residency(p) * size for p, size in zip(paths, sizes, strict=True)) / total


def make_hot(
    paths: list[str],
    weigh: list[str] | None = None,
    *,
    minimum: float = 0.999,
    label: str | None = None,
) -> float:
    """Read the files through the page cache where they are not all there (`make_resident`),
    then check that at least `minimum` of `weigh`'s bytes (default: paths) are resident; that
    residency, or PageCacheStateError. `label` names the files in the error (default: weigh)."""
    weigh = paths if weigh is None else weigh
    make_resident(paths)
    residency = files_residency(weigh)
    if residency < minimum:
        raise PageCacheStateError(
            f"only {residency:.1%} of {label or ', '.join(weigh)} resident right after reading "
            "it: too little free memory for a hot read"
        )
    return residency


def evict(
    paths: list[str],
    weigh: list[str] | None = None,
    *,
    tolerance: float = 0.0,
    patience_s: float = 0.0,
    timeout_s: float = 30.0,
    label: str | None = None,
) -> float:
    """Evict the files (`evict_from_page_cache`) until none of `weigh`'s bytes (default: paths)
    is resident, or, once patience_s has passed, at most `tolerance` of them; that residency,
    or PageCacheStateError once timeout_s has passed. `label` names the files in the error
    (default: weigh).

    Eviction is retried with a growing pause (5 ms doubling to 200 ms): POSIX_FADV_DONTNEED skips
    pages something still references (in-flight readahead, socket buffers of sendfile), and
    those are let go of later. patience_s waits for exactly 0 before settling for the tolerance.
    """
    weigh = paths if weigh is None else weigh
    started = time.monotonic()
    pause = 0.005
    while True:
        for path in paths:
            evict_from_page_cache(path)
        residency = files_residency(weigh)
        waited = time.monotonic() - started
        if residency == 0.0 or (residency <= tolerance and waited >= patience_s):
            return residency
        if waited + pause > timeout_s:
            raise PageCacheStateError(
                f"{residency:.1%} of {label or ', '.join(weigh)} still resident after eviction: "
                "a cold read cannot be measured (is the file mapped or locked by some process, "
                "or held by network buffers?)"
            )
        time.sleep(pause)
        pause = min(pause * 2, 0.2)


def cpu_seconds(pid: int) -> float | None:
    """The process's CPU time (all threads, user + system) in seconds, to the nanosecond, from
    the scheduler's run time in /proc/<pid>/task/*/schedstat; None where Linux has none."""
    total = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat") as f:
                total += int(f.read().split()[0])
        except FileNotFoundError:  # a thread that just ended
            continue
        except (OSError, ValueError, IndexError):
            return None
    return total / 1e9


# --- mincore --------------------------------------------------------------------------------

# Map and inspect at most this much at a time: bounds the address space and the page vector
# for very large files. A multiple of every page size.
_WINDOW_BYTES = 1 << 30
# mincore sets the low bit of a page's byte when it is resident; the other bits are reserved.
_LOW_BIT = bytes(i & 1 for i in range(256))


@functools.cache
def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(None, use_errno=True)  # the C library this interpreter already uses
    libc.mmap.restype = ctypes.c_void_p
    # off_t is a C long for the plain `mmap` symbol on both 64-bit and 32-bit Linux.
    libc.mmap.argtypes = [
        ctypes.c_void_p,
        ctypes.c_size_t,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_long,
    ]
    libc.munmap.restype = ctypes.c_int
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    libc.mincore.restype = ctypes.c_int
    libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
    return libc


def _residency(path: str) -> tuple[float, int]:
    """(fraction of pages resident, size in bytes) of a regular file, via mmap + mincore.

    Why libc's mmap through ctypes rather than the mmap module: mincore needs the address of a
    mapping, and ctypes can only take the address of a writable buffer. An mmap.ACCESS_READ map
    is not writable; an ACCESS_COPY map is (MAP_PRIVATE, PROT_WRITE) and would give the right
    answer while untouched, but a private writable mapping is charged against the commit limit
    for its whole length, which fails for large logs under vm.overcommit_memory=2. A read-only
    shared mapping costs nothing: creating it loads no page, and mincore reads the page cache
    without touching the pages (so no SIGBUS either, should the file shrink meanwhile).
    """
    fd = os.open(path, os.O_RDONLY)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ValueError(f"{path}: not a regular file")
        if not (info.st_uid == os.geteuid() or os.geteuid() == 0 or os.access(path, os.W_OK)):
            raise PermissionError(
                f"{path}: Linux reports page-cache residency only to the file's owner or to "
                "those who may write it"
            )
        page_size = os.sysconf("SC_PAGE_SIZE")
        size = info.st_size
        resident = 0
        for offset in range(0, size, _WINDOW_BYTES):
            resident += _resident_in_window(fd, offset, min(_WINDOW_BYTES, size - offset))
        pages = -(-size // page_size)
        return (resident / pages if pages else 0.0), size
    finally:
        os.close(fd)


def _resident_in_window(fd: int, offset: int, length: int) -> int:
    libc = _libc()
    address = libc.mmap(None, length, mmap.PROT_READ, mmap.MAP_SHARED, fd, offset)
    if address is None or address == ctypes.c_void_p(-1).value:  # MAP_FAILED
        errno = ctypes.get_errno()
        raise OSError(errno, f"mmap: {os.strerror(errno)}")
    try:
        pages = -(-length // os.sysconf("SC_PAGE_SIZE"))
        vector = ctypes.create_string_buffer(pages)  # one byte per page
        if libc.mincore(address, length, vector) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"mincore: {os.strerror(errno)}")
        return vector.raw.translate(_LOW_BIT).count(1)
    finally:
        libc.munmap(address, length)
