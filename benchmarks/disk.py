"""disk-write-pattern's headline ratios, through the scenario itself and kbench's runner."""

from scenarios.catalog.disk_write_pattern import DiskWritePattern

from ._common import KIB, MIB, ROUNDS, scenario_ratios

PARAMS = {
    "block_sizes": [4 * KIB],
    "file_bytes": 16 * MIB,  # per buffered measurement: 4096 writes, then one fsync
    "fsync_writes": 64,  # per fsync measurement, each write fsynced
    "direct_bytes": 0,
    "broker_bytes": 0,  # raw files only
    "partitions": 1,
    "rounds": ROUNDS,
    "modes": ["buffered", "fsync"],
}


class WritePattern:
    """4 KiB writes to a 16 MiB file written once beforehand: at increasing offsets or at the
    same offsets shuffled, buffered (page cache, one final fsync); and sequential with an fsync
    after every write. Variants interleaved over 15 rounds after a warm-up; each ratio is the
    median of per-round ratios, as `kbench run disk-write-pattern` reports it. Both ratios come
    from the same run, so setup_cache measures them once."""

    def setup_cache(self):
        ratios = scenario_ratios(
            DiskWritePattern(),
            PARAMS,
            ["seq-vs-random-buffered-4 KiB", "buffered-vs-fsync-4 KiB"],
        )
        # the scenario's ratios are of MB/s (sequential/random, buffered/fsync): as costs, the
        # same numbers read as time per byte, random/sequential and fsync/buffered
        return {
            "random_over_sequential": ratios["seq-vs-random-buffered-4 KiB"],
            "fsync_over_buffered": ratios["buffered-vs-fsync-4 KiB"],
        }

    setup_cache.timeout = 300

    def track_random_over_sequential_write_time(self, ratios):
        return ratios["random_over_sequential"]

    track_random_over_sequential_write_time.unit = "ratio"

    def track_fsync_over_buffered_write_time(self, ratios):
        return ratios["fsync_over_buffered"]

    track_fsync_over_buffered_write_time.unit = "ratio"
