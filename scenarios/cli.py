"""The `kbench` command line: the scenarios' commands (run, list, report, compare, cluster,
tune), and the parser of every command. The engine's own (broker, dump-log, broker-stats) are
engine.cli's, added here so that `kbench --help` lists them all and `python -m scenarios.cli
broker` works; the console script (engine.cli:main) runs those without importing this module."""

import argparse
import glob
import os
import signal
import sys
import time

from engine import cli as engine_cli
from engine.broker.config import kafka_config, parse_listener
from engine.cli import INTERRUPTED, fail, guarded, parse_settings, usable_directory
from scenarios.catalog.registry import SCENARIOS
from scenarios.clients.cluster import ClusterError
from scenarios.clients.local_broker import LocalCluster
from scenarios.harness import results
from scenarios.harness.run import RunError, RunInterrupted
from scenarios.harness.run import run as run_scenarios
from scenarios.reporting.compare import compare_runs, differences, print_changes, unshared


def _build_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    parser = argparse.ArgumentParser(
        prog="kbench",
        description="Measure why Kafka is fast, on this machine.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    engine_commands = engine_cli.add_commands(commands)
    cluster = commands.add_parser(
        "cluster",
        help="run a replicated cluster: a controller and N brokers, each its own process",
        description="Start a KRaft-shaped kbench cluster on loopback ports (a controller and "
        "--brokers brokers, each with its own data directory under --data-dir and a log file "
        "beside it), print the bootstrap servers, and stop them all cleanly on Ctrl-C or "
        "SIGTERM (each broker first hands its leaderships over).",
    )
    cluster.add_argument("--brokers", type=int, default=3, metavar="N", help="default 3")
    cluster.add_argument("--data-dir", metavar="DIR", required=True, help="the cluster's directory")
    cluster.add_argument(
        "--racks",
        metavar="R1,R2,...",
        help="broker.rack of each broker, in node id order (e.g. a,b,c)",
    )
    cluster.add_argument(
        "--set",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="a Kafka property for every process (repeatable), e.g. --set min.insync.replicas=2",
    )
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
    run.add_argument(
        "--keep-topics",
        action="store_true",
        help="keep the topics the scenarios create (default: each is deleted when its scenario "
        "ends, however it ends)",
    )
    listing = commands.add_parser("list", help="show the scenarios, their parameters and profiles")
    reporting = commands.add_parser(
        "report",
        help="write self-contained HTML reports (charts, claims ledger, history) from results",
        description="One HTML page per results file, and a history page when given several.",
    )
    reporting.add_argument(
        "results",
        nargs="*",
        metavar="RESULTS.json",
        help="default: every reports/*.json and kbench tune's reports/tune-*/kbench-*.json",
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
        description="Every metric both runs share: medians, the ratio B/A with its 95 % "
        "interval, and whether B regressed beyond --threshold (exit 1 if so). Differences "
        "between the runs in profile, parameters, machine or kbench version are warned about.",
    )
    comparing.add_argument("baseline", metavar="A.json", help="the results file to compare against")
    comparing.add_argument("candidate", metavar="B.json", help="the results file being judged")
    comparing.add_argument(
        "--threshold",
        type=float,
        default=0.10,
        help="a change smaller than this fraction is not a regression (default 0.10)",
    )
    comparing.add_argument(
        "--strict",
        action="store_true",
        help="refuse (exit 2) to compare runs that differ in profile, parameters, machine or "
        "kbench version",
    )
    tuning = commands.add_parser(
        "tune",
        help="search the client settings that serve a workload best under a latency SLO, and "
        "prove the gain against Kafka's defaults",
        description="Search producer and consumer settings (Optuna TPE; every trial a real "
        "measurement at the workload's producerRate on a fresh topic) that minimise the SLO's "
        "percentile of end-to-end latency; re-measure the best against Kafka's defaults "
        "interleaved; write producer.properties and consumer.properties with the settings that "
        "differ from the defaults.",
    )
    tuning.add_argument(
        "workload", metavar="WORKLOAD.yaml", help="an OpenMessaging Benchmark workload"
    )
    tuning.add_argument(
        "--slo", required=True, help="e.g. p99<=20ms: the percentile minimised, and its bound"
    )
    tuning.add_argument("--trials", type=int, required=True, metavar="N", help="trials in this run")
    tuning.add_argument(
        "--bootstrap",
        metavar="HOST:PORT",
        help="tune against this cluster (default: an engine broker)",
    )
    tuning.add_argument(
        "--output",
        metavar="DIR",
        help="where the study and the properties files go (default: ./reports/tune-WORKLOAD)",
    )
    tuning.add_argument(
        "--storage", metavar="FILE.db", help="the study's SQLite file (default: DIR/study.db)"
    )
    tuning.add_argument("--resume", action="store_true", help="continue the study in --storage")
    tuning.add_argument(
        "--space", metavar="SPACE.yaml", help="narrow or widen the properties' ranges"
    )
    tuning.add_argument(
        "--require",
        metavar="NAME=VALUE",
        action="append",
        default=[],
        help="a durability floor the search never goes below, e.g. acks=all (repeatable)",
    )
    durations = tuning.add_mutually_exclusive_group()
    durations.add_argument(
        "--minutes-scale",
        type=float,
        default=1.0,
        metavar="F",
        help="scale the workload's testDurationMinutes and warmupDurationMinutes (e.g. 0.05)",
    )
    durations.add_argument(
        "--smoke", action="store_true", help="seconds per trial, for tests (numbers meaningless)"
    )
    tuning.add_argument(
        "--proof-rounds",
        type=int,
        metavar="N",
        help="interleaved rounds of the proof, at least 2 (default 6; --smoke's fewer)",
    )
    tuning.add_argument(
        "--objective",
        choices=("latency", "throughput"),
        help="minimise the SLO's percentile at the workload's producerRate (the default), or "
        "maximise the records/s kept within the SLO by a rate search per trial (the default "
        "for producerRate 0)",
    )
    tuning.add_argument(
        "--current",
        metavar="FILE.properties",
        action="append",
        default=[],
        help="the settings you run now (producer and consumer .properties), re-measured in the "
        "proof beside Kafka's defaults (repeatable)",
    )
    tuning.add_argument(
        "--top",
        type=int,
        metavar="K",
        help="the search's best trials re-measured in the proof (default 2)",
    )
    tuning.add_argument("--seed", type=int, help="the sampler's seed, for a repeatable search")
    return parser, {
        **engine_commands,
        "tune": tuning,
        "cluster": cluster,
        "run": run,
        "list": listing,
        "compare": comparing,
        "report": reporting,
    }


def main(argv: list[str] | None = None) -> int:
    """Every `kbench` command (the engine's are run by engine.cli): every failure a user can
    cause ends in one line on stderr."""
    return guarded(lambda: _main(argv))


def _main(argv: list[str] | None) -> int:
    parser, commands = _build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # let the subcommand's own usage say what it expects
        commands[args.command].error(f"unrecognized arguments: {' '.join(unknown)}")
    if args.command in engine_cli.COMMANDS:
        return engine_cli.run_command(args, commands)
    if args.command == "cluster":
        return _cluster(args, commands["cluster"])
    if args.command == "run":
        return _run(args, commands["run"], argv)
    if args.command == "list":
        _list_scenarios()
        return 0
    if args.command == "compare":
        return _compare(args, commands["compare"])
    if args.command == "report":
        return _report(args, commands["report"])
    if args.command == "tune":
        return _tune(args, commands["tune"])
    parser.error(f"unknown command {args.command}")
    return 2


def _run(args: argparse.Namespace, parser: argparse.ArgumentParser, argv: list[str] | None) -> int:
    unknown_names = [n for n in args.scenarios if n not in SCENARIOS]
    if unknown_names:
        parser.error(
            f"unknown scenario {', '.join(unknown_names)}; expected one of {', '.join(SCENARIOS)}"
        )
    try:
        if args.bootstrap:
            try:
                parse_listener(args.bootstrap)
            except ValueError as exc:
                raise ValueError(f"--bootstrap: {exc}") from None
        reports = usable_directory(args.reports, "--reports")
        data_dir = usable_directory(args.data_dir, "--data-dir") if args.data_dir else None
    except ValueError as exc:
        fail(parser, str(exc))
    try:
        run_scenarios(
            [SCENARIOS[name] for name in args.scenarios] or list(SCENARIOS.values()),
            args.profile,
            data_dir,
            args.bootstrap,
            reports,
            ["kbench", *(sys.argv[1:] if argv is None else argv)],
            keep_topics=args.keep_topics,
        )
    except RunError as exc:
        fail(parser, str(exc))
    except RunInterrupted as stop:
        where = (
            f"what was measured is in {stop.path}"
            if stop.path
            else "no scenario had started measuring"
        )
        print(f"kbench run: interrupted; {where}", file=sys.stderr)
        return INTERRUPTED
    return 0


def _tune(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from scenarios.tuning import study, workload  # optuna: only when tuning
    from scenarios.tuning.objective import parse_slo
    from scenarios.tuning.proof import read_current
    from scenarios.tuning.space import load_space, require

    try:
        if args.trials < 0:
            raise ValueError(f"--trials must be 0 or more, got {args.trials}")
        proof_rounds = args.proof_rounds or (
            study.SMOKE_PROOF_ROUNDS if args.smoke else study.PROOF_ROUNDS
        )
        if proof_rounds < 2:
            raise ValueError(f"--proof-rounds must be at least 2, got {proof_rounds}")
        tuned = workload.load(args.workload)
        if reasons := tuned.unsupported():
            raise ValueError(f"{args.workload}: not measurable yet: {'; '.join(reasons)}")
        durations = workload.trial_durations(tuned, args.minutes_scale, args.smoke)
        slo = parse_slo(args.slo)
        space = require(load_space(args.space), args.require)
        objective = args.objective or ("latency" if tuned.producer_rate else "throughput")
        if objective == "latency" and not tuned.producer_rate:
            raise ValueError(
                f"{args.workload}: producerRate 0 asks for the highest rate: --objective "
                "latency needs a rate to measure at (--objective throughput searches it)"
            )
        top = study.TOP if args.top is None else args.top
        if top < 1:
            raise ValueError(f"--top must be at least 1, got {top}")
        current = None
        if args.current:
            current, ignored = read_current(args.current)
            if ignored:
                print(f"--current: not searched, left out: {', '.join(ignored)}", file=sys.stderr)
        if args.bootstrap:
            try:
                parse_listener(args.bootstrap)
            except ValueError as exc:
                raise ValueError(f"--bootstrap: {exc}") from None
        stem = os.path.splitext(os.path.basename(args.workload))[0]
        output = usable_directory(
            args.output or os.path.join("reports", f"tune-{stem}"), "--output"
        )
        storage = os.path.abspath(args.storage or os.path.join(output, "study.db"))
        usable_directory(os.path.dirname(storage), "--storage's directory")
    except ValueError as exc:  # WorkloadError, SloError and SpaceError among them
        fail(parser, str(exc))
    options = study.Options(
        tuned,
        durations,
        slo,
        space,
        args.trials,
        storage,
        output,
        objective=objective,
        bootstrap=args.bootstrap,
        resume=args.resume,
        proof_rounds=proof_rounds,
        top=top,
        current=current,
        seed=args.seed,
        smoke=args.smoke,
    )
    try:
        return study.tune(options)
    except study.TuneError as exc:
        fail(parser, str(exc))
    except study.TuneInterrupted as stop:
        print(
            f"kbench tune: interrupted; the study in {stop.storage} keeps {stop.trials} "
            f"completed trial{'' if stop.trials == 1 else 's'} (--resume continues the search)",
            file=sys.stderr,
        )
        return INTERRUPTED


def _report(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from scenarios.reporting.report import (  # matplotlib: only when reporting
        ReportError,
        write_report,
    )

    # kbench run's results, and kbench tune's beside each study in its default --output
    paths = args.results or sorted(
        glob.glob(os.path.join("reports", "*.json"))
        + glob.glob(os.path.join("reports", "tune-*", "kbench-*.json"))
    )
    if not paths:
        fail(parser, "no results files given and none in ./reports; run `kbench run` first")
    try:
        output = usable_directory(args.output, "--output")
        for written in write_report(paths, output):
            print(written)
    except (ReportError, ValueError) as exc:
        fail(parser, str(exc))
    return 0


def _compare(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if not 0 <= args.threshold < 1:
        parser.error(f"--threshold must be a fraction in [0, 1), e.g. 0.1; got {args.threshold}")
    try:
        baseline, candidate = results.load(args.baseline), results.load(args.candidate)
    except results.ResultsError as exc:
        fail(parser, str(exc))
    unlike = differences(baseline, candidate)
    if unlike and args.strict:
        fail(parser, "the runs differ in " + "; ".join(unlike))
    for line in unlike:
        print(f"warning: the runs differ in {line}", file=sys.stderr)
    for line in unshared(baseline, candidate):
        print(f"not compared: {line}", file=sys.stderr)
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


def _cluster(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if args.brokers < 1:
        fail(parser, f"--brokers must be at least 1, got {args.brokers}")
    settings = parse_settings(args.set, parser)
    racks = [r.strip() for r in args.racks.split(",")] if args.racks else None
    if racks is not None and len(racks) != args.brokers:
        fail(parser, f"--racks names {len(racks)} racks for {args.brokers} brokers")
    try:
        directory = usable_directory(args.data_dir, "--data-dir")
        kafka_config({**settings, "log.dirs": directory})  # the settings' errors, in one line
    except ValueError as exc:
        fail(parser, str(exc))
    cluster = LocalCluster(directory, args.brokers, settings, racks)
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, stop)
    try:
        cluster.start()
    except (ClusterError, RuntimeError) as exc:
        print(f"kbench cluster: {exc}", file=sys.stderr)
        return 1
    print(f"kbench cluster: controller {cluster.controller.bootstrap}", flush=True)
    for node_id, broker in cluster.brokers.items():
        print(f"kbench cluster: broker {node_id} {broker.bootstrap}", flush=True)
    print(f"bootstrap servers: {cluster.bootstrap}", flush=True)
    try:
        while not stopping:
            for node_id, broker in cluster.brokers.items():
                if broker.process is not None and broker.process.poll() is not None:
                    print(
                        f"kbench cluster: broker {node_id} exited "
                        f"({broker.process.returncode}); see {broker.log_path}",
                        file=sys.stderr,
                        flush=True,
                    )
                    broker.stop()
            time.sleep(0.2)
    finally:
        print("kbench cluster: stopping", file=sys.stderr, flush=True)
        cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
