"""kbench's produce path next to the least any broker must do: issue 11's ingest target.

    python3 -m tests.benchmarks.ingest_vs_bare [--rounds 8] [--mib 256] [--dir /dev/shm]

The bare server (scenarios.clients.bare_broker) cuts length-prefixed frames out of one reused
receive buffer, os.writes each to a file and answers with a canned ProduceResponse; kbench is
`kbench broker` with its log directory in the same place; one BatchProducer each, alternating
(scenarios.clients.bare_broker.ingest_rounds). Prints each round's MB/s, the medians, and
kbench/bare as the median of the per-round ratios with its 95 % interval, and each server's CPU
time per request (its scheduler run time over the round's requests), steadier than MB/s when
other work shares the machine. Issue 11 asks for >= 0.60 with both on tmpfs (/dev/shm), where
the figure is the software path per byte; on a disk, dirty-page throttling slows both and hides
the difference.
"""

import argparse
import tempfile

from scenarios.clients.bare_broker import ingest_rounds, print_round, print_summary
from scenarios.harness.stats import summarize


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--mib", type=int, default=256, help="MiB per variant per round")
    parser.add_argument("--dir", default="/dev/shm", help="where both write (default tmpfs)")
    args = parser.parse_args()
    cpu: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(dir=args.dir) as directory:
        results = ingest_rounds(directory, args.rounds, args.mib, print_round, cpu)
    print_summary(results, "issue 11's target on tmpfs: >= 0.60")
    for name, values in cpu.items():
        summary = summarize(values)
        print(
            f"{name:6} CPU per request {summary.median:5.0f} us (CI {summary.ci_low:.0f}-"
            f"{summary.ci_high:.0f})"
        )


if __name__ == "__main__":
    main()
