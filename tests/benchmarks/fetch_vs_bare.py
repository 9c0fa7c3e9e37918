"""kbench's fetch path next to the least any broker must do: issue 11's fetch target.

    python3 -m tests.benchmarks.fetch_vs_bare [--rounds 8] [--mib 1024] [--dir /dev/shm]

A 1 GiB log of BatchProducer's batches (about 64 KiB each) is produced into `kbench broker`,
made resident in the page cache, and read whole from offset 0 with 1 MiB fetches by one
FetchClient against kbench and one against the bare server (scenarios.clients.bare_broker),
which serves the same segment files with a canned FetchResponse header and os.sendfile of the
same batches; alternating (scenarios.clients.bare_broker.fetch_rounds). Prints each round's
MB/s, the medians, and kbench/bare as the median of the per-round ratios with its 95 % interval.
Issue 11 asks for >= 0.70.
"""

import argparse
import tempfile

from scenarios.clients.bare_broker import fetch_rounds, print_round, print_summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--mib", type=int, default=1024, help="MiB of log, read whole per round")
    parser.add_argument("--fetch-kib", type=int, default=1024, help="KiB per fetch")
    parser.add_argument("--dir", default="/dev/shm", help="where the log goes (default tmpfs)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as directory:
        results = fetch_rounds(
            directory,
            args.rounds,
            args.mib,
            args.fetch_kib << 10,
            print_round,
        )
    print_summary(results, "issue 11's target: >= 0.70")


if __name__ == "__main__":
    main()
