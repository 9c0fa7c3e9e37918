"""The `kbench` console script, and the engine's own commands: `kbench broker`, `kbench dump-log`
and `kbench broker-stats`.

These three need nothing but the engine, so they are parsed and run here without importing the
scenarios (or what they depend on): starting a broker costs the broker's imports only. Every
other command (run, list, report, compare, cluster) is handed to scenarios.cli, whose parser
holds every command, these three included, so `kbench --help` lists them all and
`python -m scenarios.cli broker ...` works as well.

Both entry points end every failure a user can cause in one line on stderr (`guarded`).
"""

import argparse
import json
import os
import sys
import tempfile
import traceback
import urllib.request
from collections.abc import Callable
from typing import NoReturn

from engine.broker.config import kafka_config, parse_listener, parse_properties
from engine.server.broker import run_broker
from engine.tools.dump_log import dump_log

INTERRUPTED = 130  # the shell's status for a process ended by SIGINT (128 + 2)
COMMANDS = ("dump-log", "broker", "broker-stats")  # this module's; the rest are scenarios.cli's

Subcommands = argparse._SubParsersAction  # what ArgumentParser.add_subparsers returns


def main(argv: list[str] | None = None) -> int:
    """The console script: the engine's commands here, every other one in scenarios.cli."""
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] in COMMANDS:
        return guarded(lambda: _main(args))
    return guarded(lambda: _scenarios_main(argv))


def _scenarios_main(argv: list[str] | None) -> int:
    from scenarios.cli import main as scenarios_main  # only for the scenarios' commands

    return scenarios_main(argv)


def _main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="kbench",
        description="Measure why Kafka is fast, on this machine.",
    )
    commands = add_commands(parser.add_subparsers(dest="command", metavar="COMMAND"))
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # let the subcommand's own usage say what it expects
        commands[args.command].error(f"unrecognized arguments: {' '.join(unknown)}")
    return run_command(args, commands)


def guarded(command: Callable[[], int]) -> int:
    """Run a command so that every failure ends in one line on stderr: Ctrl-C, a closed pipe
    (`kbench ... | head`), and kbench's own bugs (the traceback with KBENCH_DEBUG=1)."""
    try:
        return command()
    except KeyboardInterrupt:
        print("kbench: interrupted", file=sys.stderr)
        return INTERRUPTED
    except BrokenPipeError:  # `kbench ... | head`
        sys.stderr.close()
        return 0
    except Exception as exc:  # a bug of kbench's: one line, and the traceback on request
        if os.environ.get("KBENCH_DEBUG"):
            traceback.print_exc()
        print(
            f"kbench: internal error: {type(exc).__name__}: {exc} "
            "(KBENCH_DEBUG=1 shows the traceback)",
            file=sys.stderr,
        )
        return 1


def add_commands(commands: Subcommands) -> dict[str, argparse.ArgumentParser]:
    """Add the engine's commands to a parser's subcommands; returns their parsers by name."""
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
    broker = commands.add_parser(
        "broker",
        help="run the Kafka-protocol broker in the foreground",
        description="Run the engine as a Kafka broker until SIGTERM or SIGINT. "
        "Port 0 picks a free port; the address is printed on stdout.",
    )
    broker.add_argument("--data-dir", metavar="DIR", help="the log directory (log.dirs)")
    broker.add_argument(
        "--listen",
        metavar="HOST:PORT",
        help="address to listen on (default 127.0.0.1:9092; loopback unless told otherwise)",
    )
    broker.add_argument(
        "--config", metavar="FILE", help="a server.properties file with Kafka property names"
    )
    broker.add_argument(
        "--set",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="a Kafka property, overriding --config (repeatable), e.g. --set num.partitions=3",
    )
    stats = commands.add_parser(
        "broker-stats",
        help="print a running broker's counters (requests and latency per API, bytes, sendfile)",
        description="Print the counters of a kbench broker as JSON (also at http://ADDRESS/stats).",
    )
    stats.add_argument("address", metavar="HOST:PORT", help="the broker's listener")
    return {"dump-log": dump, "broker": broker, "broker-stats": stats}


def run_command(args: argparse.Namespace, commands: dict[str, argparse.ArgumentParser]) -> int:
    """Run one of the engine's commands, parsed by a parser `add_commands` completed."""
    if args.command == "dump-log":
        try:
            return dump_log(args.path, records=args.records, index=args.index, verify=args.verify)
        except ValueError as exc:
            commands["dump-log"].exit(2, f"kbench dump-log: error: {exc}\n")
    if args.command == "broker":
        return _broker(args, commands["broker"])
    if args.command == "broker-stats":
        return _broker_stats(args.address, commands["broker-stats"])
    raise ValueError(f"not an engine command: {args.command}")


def fail(parser: argparse.ArgumentParser, message: str) -> NoReturn:
    """What the user gave cannot be used: one line, status 2. (Argument syntax errors keep
    argparse's usage line.)"""
    parser.exit(2, f"{parser.prog}: error: {message}\n")


def usable_directory(path: str, option: str) -> str:
    """The absolute path of a directory that exists (made if need be) and takes new files;
    ValueError naming `option` and the reason otherwise. Tried with a real file, since
    permission bits say nothing to root and a read-only mount shows only on writing."""
    path = os.path.abspath(path)
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(f"{option} {path}: not a directory")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"{option} {path}: cannot create it: {exc.strerror}") from None
    try:
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise ValueError(f"{option} {path}: cannot write there: {exc.strerror}") from None
    return path


def parse_settings(items: list[str], parser: argparse.ArgumentParser) -> dict[str, str]:
    """--set KEY=VALUE options as Kafka properties; a malformed one is a usage error."""
    properties = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            parser.error(f"--set {item!r}: expected KEY=VALUE, e.g. --set num.partitions=3")
        properties[key.strip()] = value.strip()
    return properties


def _broker_stats(address: str, parser: argparse.ArgumentParser) -> int:
    try:
        host, port = parse_listener(address)
    except ValueError as exc:
        parser.error(str(exc))
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/stats", timeout=10) as response:
            print(json.dumps(json.loads(response.read()), indent=2))
    except OSError as exc:
        print(f"kbench broker-stats: cannot reach a broker at {address}: {exc}", file=sys.stderr)
        return 1
    return 0


def _broker(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    properties: dict[str, str] = {}
    try:
        if args.config:
            with open(args.config, encoding="utf-8") as f:
                properties.update(parse_properties(f.read()))
        properties.update(parse_settings(args.set, parser))
        if args.data_dir:
            properties["log.dirs"] = args.data_dir
        for directory in properties.get("log.dirs", properties.get("log.dir", "")).split(","):
            if directory.strip():
                usable_directory(directory.strip(), "--data-dir" if args.data_dir else "log.dirs")
        if args.listen:
            parse_listener(args.listen)
            properties["listeners"] = args.listen
        if "log.dirs" not in properties and "log.dir" not in properties:
            parser.error("--data-dir DIR is required (or log.dirs in --config)")
        config = kafka_config(properties)
    except OSError as exc:
        fail(parser, f"--config {args.config}: {exc.strerror}")
    except ValueError as exc:
        fail(parser, str(exc))
    return run_broker(config)


if __name__ == "__main__":
    sys.exit(main())
