import json
import mmap
import os
import subprocess
import sys
import time

import psutil
import pytest

from scenarios.harness.resources import (
    PageCacheStateError,
    ResourceMeter,
    block_device,
    directory_files,
    directory_residency,
    evict,
    evict_from_page_cache,
    files_residency,
    make_hot,
    page_cache_residency,
)

MiB = 1 << 20

# Spins until it has used 0.3 s of CPU (not wall time, so a busy machine cannot shorten it).
SPIN = "import time\nwhile time.process_time() < 0.3: pass\n"


def _spin_in_this_process(cpu_s: float) -> None:
    start = time.process_time()
    while time.process_time() - start < cpu_s:
        pass


def _cpu(usage) -> float:
    return usage.user_s + usage.system_s


def _write(path, size: int) -> None:
    with open(path, "wb") as file:
        file.write(os.urandom(size))


def _read(path) -> None:
    with open(path, "rb") as file:
        while file.read(MiB):
            pass


# --- ResourceMeter ------------------------------------------------------------------------------


def test_meter_sees_a_busy_loop_in_this_process():
    with ResourceMeter({"client": os.getpid()}) as meter:
        _spin_in_this_process(0.2)

    usage = meter.usage
    assert usage.wall_s > 0
    assert _cpu(usage.processes["client"]) >= 0.15  # psutil counts in clock ticks
    assert not usage.processes["client"].exited


def test_meter_sees_a_child_process():
    # The child spins, says so, then waits on stdin so that it is alive when the phase ends.
    child = subprocess.Popen(
        [sys.executable, "-c", SPIN + "print('spun', flush=True)\nimport sys\nsys.stdin.read()"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        with ResourceMeter({"child": child.pid, "client": os.getpid()}) as meter:
            assert child.stdout.readline() == "spun\n"
    finally:
        child.communicate()

    child_usage = meter.usage.processes["child"]
    assert _cpu(child_usage) >= 0.25
    assert not child_usage.exited
    assert _cpu(child_usage) > _cpu(meter.usage.processes["client"])


def test_a_process_that_exits_is_reported_as_last_seen():
    child = subprocess.Popen([sys.executable, "-c", SPIN])
    with ResourceMeter({"child": child.pid}, interval_s=0.02) as meter:
        child.wait()

    child_usage = meter.usage.processes["child"]
    assert child_usage.exited
    assert _cpu(child_usage) > 0.1


def test_meter_refuses_a_process_that_is_not_there():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()

    with pytest.raises(psutil.NoSuchProcess), ResourceMeter({"gone": child.pid}):
        pass


def test_usage_is_known_only_after_the_phase():
    meter = ResourceMeter({"client": os.getpid()})
    with pytest.raises(RuntimeError), meter:
        meter.usage  # noqa: B018


def test_disk_counters_see_a_synced_write(tmp_path):
    if block_device(str(tmp_path)) is None:
        pytest.skip(f"{tmp_path} is on no block device with I/O counters (tmpfs?)")

    with (
        ResourceMeter({"client": os.getpid()}, path=str(tmp_path)) as meter,
        open(tmp_path / "data", "wb") as file,
    ):
        file.write(os.urandom(4 * MiB))
        os.fsync(file.fileno())

    usage = meter.usage
    assert usage.disk_write_bytes >= 4 * MiB  # system-wide: others may add, never subtract
    assert usage.disk_read_bytes >= 0
    client = usage.processes["client"]
    assert client.write_bytes is None or client.write_bytes >= 4 * MiB


def test_disk_counters_are_none_without_a_block_device():
    if not os.path.isdir("/dev/shm"):
        pytest.skip("no /dev/shm here")
    with ResourceMeter({"client": os.getpid()}, path="/dev/shm") as meter:
        pass

    assert block_device("/dev/shm") is None
    assert meter.usage.disk_read_bytes is None
    assert meter.usage.disk_write_bytes is None


def test_block_device_is_named_as_in_the_io_counters(tmp_path):
    device = block_device(str(tmp_path))

    assert device is None or device in psutil.disk_io_counters(perdisk=True)


def test_usage_as_dict_is_json_serialisable():
    with ResourceMeter({"client": os.getpid()}, path="/") as meter:
        pass

    as_dict = meter.usage.as_dict()
    assert json.loads(json.dumps(as_dict)) == as_dict
    assert set(as_dict["processes"]["client"]) >= {
        "user_s",
        "system_s",
        "voluntary_switches",
        "involuntary_switches",
        "read_bytes",
        "write_bytes",
    }


# --- page cache ---------------------------------------------------------------------------------


def test_a_file_just_written_and_read_is_resident_and_eviction_drops_it(tmp_path):
    path = tmp_path / "segment.log"
    _write(path, 8 * MiB)
    _read(path)

    assert page_cache_residency(str(path)) == pytest.approx(1.0, abs=0.01)

    evict_from_page_cache(str(path))

    # Must hold on any disk filesystem; a failure means this one refuses eviction.
    assert page_cache_residency(str(path)) == 0.0


def test_residency_counts_pages_not_files(tmp_path):
    path = tmp_path / "segment.log"
    _write(path, 8 * MiB)
    evict_from_page_cache(str(path))
    with open(path, "rb") as file:
        os.posix_fadvise(file.fileno(), 0, 0, os.POSIX_FADV_RANDOM)  # no read-ahead
        os.pread(file.fileno(), 4 * MiB, 0)

    assert page_cache_residency(str(path)) == pytest.approx(0.5, abs=0.01)


def test_zero_length_file(tmp_path):
    path = tmp_path / "empty.log"
    path.touch()

    evict_from_page_cache(str(path))

    assert page_cache_residency(str(path)) == 0.0
    assert directory_residency(str(tmp_path)) == 0.0


def test_directory_residency_is_weighted_by_bytes(tmp_path):
    (tmp_path / "partition-0").mkdir()
    resident = tmp_path / "partition-0" / "00000000000000000000.log"
    evicted = tmp_path / "partition-0" / "00000000000000001000.log"
    _write(resident, 4 * MiB)
    _read(resident)
    _write(evicted, 12 * MiB)
    evict_from_page_cache(str(evicted))
    (tmp_path / "link.log").symlink_to(resident)  # not followed: counted once
    (tmp_path / "empty.index").touch()

    assert directory_residency(str(tmp_path)) == pytest.approx(0.25, abs=0.01)
    assert directory_residency(str(resident)) == page_cache_residency(str(resident))


def test_residency_of_a_directory_path_is_refused(tmp_path):
    with pytest.raises(ValueError):
        page_cache_residency(str(tmp_path))


# --- page-cache states: make_hot, evict ---------------------------------------------------------


def _partition(tmp_path) -> tuple[str, list[str]]:
    """A partition directory: a 4 MiB and a 12 MiB segment and an index, none resident."""
    directory = tmp_path / "topic-0"
    directory.mkdir()
    _write(directory / "00000000000000000000.log", 4 * MiB)
    _write(directory / "00000000000000000000.index", 64 << 10)
    _write(directory / "00000000000000001000.log", 12 * MiB)
    (directory / "leader-epoch-checkpoint").mkdir()  # not a file: not listed
    files = directory_files(str(directory))
    for path in files:
        evict_from_page_cache(path)
    return str(directory), files


def test_directory_files_lists_the_files_in_it_with_the_suffix(tmp_path):
    directory, files = _partition(tmp_path)

    assert [os.path.basename(p) for p in files] == [
        "00000000000000000000.index",
        "00000000000000000000.log",
        "00000000000000001000.log",
    ]
    assert directory_files(directory, ".log") == [files[1], files[2]]
    with pytest.raises(FileNotFoundError):
        directory_files(str(tmp_path / "missing"))


def test_files_residency_is_weighted_by_bytes(tmp_path):
    _, (_, small, large) = _partition(tmp_path)
    _read(small)

    assert files_residency([small, large]) == pytest.approx(0.25, abs=0.01)
    assert files_residency([small]) == pytest.approx(1.0, abs=0.01)


def test_files_residency_of_no_bytes_is_refused(tmp_path):
    (tmp_path / "empty.log").touch()

    with pytest.raises(RuntimeError, match="nothing to read"):
        files_residency([str(tmp_path / "empty.log")])


def test_make_hot_reads_the_files_in_and_evict_drops_them(tmp_path):
    directory, files = _partition(tmp_path)
    segments = directory_files(directory, ".log")

    assert make_hot(files, weigh=segments, minimum=1.0) == 1.0
    assert all(page_cache_residency(p) == 1.0 for p in files)

    assert evict(files, weigh=segments) == 0.0
    assert all(page_cache_residency(p) == 0.0 for p in files)


def test_evict_weighs_only_the_files_it_is_told_to(tmp_path):
    _, (index, small, large) = _partition(tmp_path)
    _read(index)
    _read(small)

    # only the large segment is evicted and weighed: the others stay as they were
    assert evict([large]) == 0.0
    assert page_cache_residency(small) == pytest.approx(1.0, abs=0.01)


def test_pages_mapped_by_a_process_cannot_be_evicted(tmp_path):
    # the kernel does not drop pages some process has mapped: eviction cannot reach 0 %
    directory, files = _partition(tmp_path)
    segments = directory_files(directory, ".log")
    with open(segments[0], "rb") as f, mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ) as m:
        for offset in range(0, len(m), mmap.PAGESIZE):
            m[offset]  # fault every page in, mapped

        with pytest.raises(PageCacheStateError, match="still resident after eviction") as error:
            evict(files, weigh=segments, timeout_s=0.0)
        assert ", ".join(segments) in str(error.value)  # the files it weighed are named
        with pytest.raises(PageCacheStateError, match=f"25.0% of {directory} still resident"):
            evict(files, weigh=segments, timeout_s=0.0, label=directory)

        # up to a tolerance, what stays is accepted and reported
        assert evict(files, weigh=segments, tolerance=0.25) == pytest.approx(0.25, abs=0.01)
        assert evict(files, weigh=segments, tolerance=0.25, patience_s=0.05) == pytest.approx(
            0.25, abs=0.01
        )
        # but not what is beyond it
        with pytest.raises(PageCacheStateError):
            evict(files, weigh=segments, tolerance=0.2, timeout_s=0.0)
