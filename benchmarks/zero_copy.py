"""zero-copy's raw headline: the sender's CPU for read + send over sendfile, through the
scenario itself and kbench's runner."""

from scenarios.catalog.zero_copy import ZeroCopy

from ._common import MIB, ROUNDS, scenario_ratios

PARAMS = {
    "raw_bytes": 128 * MIB,
    "broker_bytes": 0,  # the raw part only (the broker's fetch CPU is in broker.py)
    "fetch_sizes": [MIB],
    "caches": ["hot"],
    "headline_fetch_size": MIB,
    "rounds": ROUNDS,
}


class RawTransfer:
    """A 128 MiB file, hot in the page cache, sent over loopback TCP in 1 MiB chunks to a
    receiver process, by os.sendfile or by pread into a reused buffer + sendall; CPU is the
    sending thread's. Interleaved over 15 rounds after a warm-up; the median of per-round
    copy/sendfile ratios of CPU-seconds per byte, as `kbench run zero-copy` reports it."""

    def track_copy_over_sendfile_cpu(self):
        return scenario_ratios(ZeroCopy(), PARAMS, ["cpu-raw-1MiB"])["cpu-raw-1MiB"]

    track_copy_over_sendfile_cpu.unit = "ratio"

    track_copy_over_sendfile_cpu.timeout = 300
