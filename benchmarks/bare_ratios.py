"""kbench's broker against the bare floor (scenarios.clients.bare_broker): issue 11's ratios,
as costs like the rest of the suite (lower is better; 1.0 would be no overhead at all)."""

import shutil

from scenarios.clients.bare_broker import ingest_rounds
from scenarios.harness.stats import compare

from ._common import scratch_dir

INGEST_MIB = 64  # per variant per round
INGEST_ROUNDS = 8


class VersusBare:
    """Ingest: BatchProducer (about 64 KiB batches of 100-byte records, acks=1, window 16) into
    `kbench broker` and into the bare recv_into + write loop, both logging under TMPDIR,
    alternating over 8 rounds of 64 MiB after a warm-up; the median of the per-round ratios of
    kbench's time per byte to the bare loop's (bare MB/s over kbench MB/s)."""

    def setup_cache(self):
        directory = scratch_dir("bare")
        try:
            ingest = ingest_rounds(directory, INGEST_ROUNDS, INGEST_MIB)
        finally:
            shutil.rmtree(directory, ignore_errors=True)
        return {"ingest": compare(ingest["bare"], ingest["kbench"]).ratio}

    def track_ingest_time_over_bare(self, ratios):
        return ratios["ingest"]

    track_ingest_time_over_bare.unit = "ratio"
    track_ingest_time_over_bare.timeout = 300
