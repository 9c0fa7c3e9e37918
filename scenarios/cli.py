"""The `kbench` command line."""

import argparse
import glob
import json
import os
import sys
import urllib.request

import jsonschema

from engine.broker.config import kafka_config, parse_listener, parse_properties
from engine.server.broker import run_broker
from engine.tools.dump_log import dump_log
from scenarios import results
from scenarios.compare import compare_runs, print_changes
from scenarios.registry import SCENARIOS
from scenarios.run import run as run_scenarios


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
    run = commands.add_parser(
        "run",
        help="run the scenarios (all of them by default) and write a results file",
        description="Run scenarios against a broker kbench starts itself (or --bootstrap), "
        "print the headline ratios and claim verdicts, and write the results file.",
    )
    run.add_argument(
        "scenarios", nargs="*", metavar="SCENARIO", help=f"default: all of {', '.join(SCENARIOS)}"
    )
    run.add_argument(
        "--profile",
        choices=["quick", "full", "smoke"],
        default="quick",
        help="quick: about a minute per scenario (default); full: thorough; "
        "smoke: seconds, for tests (numbers meaningless)",
    )
    run.add_argument(
        "--data-dir",
        metavar="DIR",
        help="where data is written (default: a temporary directory, removed after)",
    )
    run.add_argument(
        "--bootstrap",
        metavar="HOST:PORT",
        help="use this Kafka-protocol cluster instead of starting kbench's broker",
    )
    run.add_argument(
        "--reports",
        metavar="DIR",
        default="reports",
        help="where the results file goes (default: ./reports)",
    )
    listing = commands.add_parser("list", help="show the scenarios, their parameters and profiles")
    reporting = commands.add_parser(
        "report",
        help="write self-contained HTML reports (charts, claims ledger, history) from results",
        description="One HTML page per results file, and a history page when given several.",
    )
    reporting.add_argument(
        "results", nargs="*", metavar="RESULTS.json", help="default: every reports/*.json"
    )
    reporting.add_argument(
        "-o",
        "--output",
        metavar="DIR",
        default="reports",
        help="where the HTML goes (default: ./reports)",
    )
    comparing = commands.add_parser(
        "compare",
        help="compare two results files metric by metric; exit 1 when B regressed",
        description="Every metric both runs share: medians, the ratio B/A with its 95 %% "
        "interval, and whether B regressed beyond --threshold (exit 1 if so).",
    )
    comparing.add_argument("baseline", metavar="A.json", help="the results file to compare against")
    comparing.add_argument("candidate", metavar="B.json", help="the results file being judged")
    comparing.add_argument(
        "--threshold",
        type=float,
        default=0.10,
        help="a change smaller than this fraction is not a regression (default 0.10)",
    )
    return parser, {
        "dump-log": dump,
        "broker": broker,
        "broker-stats": stats,
        "run": run,
        "list": listing,
        "compare": comparing,
        "report": reporting,
    }


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
    if args.command == "broker":
        return _broker(args, commands["broker"])
    if args.command == "broker-stats":
        return _broker_stats(args.address, commands["broker-stats"])
    if args.command == "run":
        unknown_names = [n for n in args.scenarios if n not in SCENARIOS]
        if unknown_names:
            commands["run"].error(
                f"unknown scenario {', '.join(unknown_names)}; "
                f"expected one of {', '.join(SCENARIOS)}"
            )
        if args.bootstrap:
            try:
                parse_listener(args.bootstrap)
            except ValueError as exc:
                commands["run"].error(f"--bootstrap: {exc}")
        run_scenarios(
            args.scenarios,
            args.profile,
            args.data_dir,
            args.bootstrap,
            args.reports,
            ["kbench", *(sys.argv[1:] if argv is None else argv)],
        )
        return 0
    if args.command == "list":
        _list_scenarios()
        return 0
    if args.command == "compare":
        return _compare(args, commands["compare"])
    if args.command == "report":
        return _report(args, commands["report"])
    parser.error(f"unknown command {args.command}")
    return 2


def _report(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from scenarios.report import ReportError, write_report  # matplotlib: only when reporting

    paths = args.results or sorted(glob.glob(os.path.join("reports", "*.json")))
    if not paths:
        parser.error("no results files given and none in ./reports; run `kbench run` first")
    try:
        for written in write_report(paths, args.output):
            print(written)
    except ReportError as exc:
        parser.error(str(exc))
    return 0


def _compare(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if not 0 <= args.threshold < 1:
        parser.error(f"--threshold must be a fraction in [0, 1), e.g. 0.1; got {args.threshold}")
    try:
        baseline, candidate = results.load(args.baseline), results.load(args.candidate)
    except (OSError, ValueError, jsonschema.ValidationError) as exc:
        parser.error(str(exc).splitlines()[0])
    changes = compare_runs(baseline, candidate, args.threshold)
    print_changes(changes, args.threshold, sys.stdout)
    return 1 if any(c.verdict == "regressed" for c in changes) else 0


def _list_scenarios() -> None:
    for scenario in SCENARIOS.values():
        print(f"{scenario.name}: {scenario.question}")
        print("  parameters:")
        for name, meaning in scenario.parameters.items():
            print(f"    {name}: {meaning}")
        for profile, values in scenario.profiles.items():
            rendered = ", ".join(f"{k}={v}" for k, v in values.items())
            print(f"  profile {profile}: {rendered}")
        print(
            "  metrics: "
            + ", ".join(f"{m.name} ({m.unit}, {m.better} is better)" for m in scenario.metrics)
        )
        print()


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
        for item in args.set:
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                parser.error(f"--set {item!r}: expected KEY=VALUE, e.g. --set num.partitions=3")
            properties[key.strip()] = value.strip()
        if args.data_dir:
            properties["log.dirs"] = args.data_dir
        if args.listen:
            parse_listener(args.listen)
            properties["listeners"] = args.listen
        if "log.dirs" not in properties and "log.dir" not in properties:
            parser.error("--data-dir DIR is required (or log.dirs in --config)")
        config = kafka_config(properties)
    except OSError as exc:
        parser.error(f"--config {args.config}: {exc.strerror}")
    except ValueError as exc:
        parser.error(str(exc))
    return run_broker(config)


if __name__ == "__main__":
    sys.exit(main())
