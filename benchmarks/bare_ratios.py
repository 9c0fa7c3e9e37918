"""kbench's broker against the bare floor (scenarios.clients.bare_broker): issue 11's ratios,
as costs like the rest of the suite (lower is better; 1.0 would be no overhead at all)."""

import shutil

from scenarios.clients.bare_broker import fetch_rounds, ingest_rounds
from scenarios.harness.stats import compare

from ._common import scratch_dir

INGEST_MIB = 64  # per variant per round
INGEST_ROUNDS = 8
FETCH_LOG_MIB = 256  # issue 11's target reads 1 GiB; a quarter keeps asv's run short
FETCH_ROUNDS = 8


class VersusBare:
    """Ingest: BatchProducer (about 64 KiB batches of 100-byte records, acks=1, window 16) into
    `kbench broker` and into the bare recv_into + write loop, both logging under TMPDIR,
    alternating over 8 rounds of 64 MiB after a warm-up; the median of the per-round ratios of
    kbench's time per byte to the bare loop's (bare MB/s over kbench MB/s).

    Fetch: a 256 MiB log of the same batches in `kbench broker` under TMPDIR, hot in the page
    cache, read whole with 1 MiB fetches (FetchClient) from kbench and from the bare server
    that answers with a canned header and os.sendfile of the same segment bytes, alternating
    over 8 rounds after a warm-up; the same ratio of times per byte. (Issue 11's target is on
    a 1 GiB log: tests/benchmarks/fetch_vs_bare.)"""

    def setup_cache(self):
        ratios = {}
        for name, rounds in (
            ("ingest", lambda d: ingest_rounds(d, INGEST_ROUNDS, INGEST_MIB)),
            ("fetch", lambda d: fetch_rounds(d, FETCH_ROUNDS, FETCH_LOG_MIB)),
        ):
            directory = scratch_dir(f"bare-{name}")
            try:
                results = rounds(directory)
            finally:
                shutil.rmtree(directory, ignore_errors=True)
            ratios[name] = compare(results["bare"], results["kbench"]).ratio
        return ratios

    def track_ingest_time_over_bare(self, ratios):
        return ratios["ingest"]

    track_ingest_time_over_bare.unit = "ratio"
    track_ingest_time_over_bare.timeout = 300

    def track_fetch_time_over_bare(self, ratios):
        return ratios["fetch"]

    track_fetch_time_over_bare.unit = "ratio"
    track_fetch_time_over_bare.timeout = 300
