"""The `kbench` command line."""

import argparse
import sys

from engine.tools.dump_log import dump_log


def _build_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    parser = argparse.ArgumentParser(
        prog="kbench",
        description="Measure why Kafka is fast, on this machine.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    dump = commands.add_parser(
        "dump-log",
        help="print the batches and indexes of log segments (like kafka-dump-log)",
        description="Print the record batches of a segment file or partition directory.",
    )
    dump.add_argument(
        "path",
        metavar="PATH",
        help="a segment file (.log, .index, .timeindex) or a partition directory",
    )
    dump.add_argument("--records", action="store_true", help="decode and print every record")
    dump.add_argument(
        "--index", action="store_true", help="print the index entries and cross-check them"
    )
    dump.add_argument(
        "--verify",
        action="store_true",
        help="exit 1 at any corrupt batch or index entry, naming the first one",
    )
    return parser, {"dump-log": dump}


def main(argv: list[str] | None = None) -> int:
    parser, commands = _build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # let the subcommand's own usage say what it expects
        commands[args.command].error(f"unrecognized arguments: {' '.join(unknown)}")
    if args.command == "dump-log":
        try:
            return dump_log(args.path, records=args.records, index=args.index, verify=args.verify)
        except ValueError as exc:
            parser.exit(2, f"kbench dump-log: error: {exc}\n")
        except BrokenPipeError:  # `kbench dump-log ... | head`
            sys.stderr.close()
            return 0
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
