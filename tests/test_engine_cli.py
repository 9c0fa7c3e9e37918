"""The engine's commands (engine/cli.py) need nothing of the scenarios: importing the module, and
a broker it starts, served and stopped, with dump-log and broker-stats, all run with `scenarios`
unimportable. The console script hands every other command to scenarios.cli, and
`python -m scenarios.cli` still runs the engine's commands."""

import json
import os
import signal
import subprocess
import sys

import pytest

from engine import cli as engine_cli
from scenarios.clients.cluster import probe
from scenarios.clients.loadgen import BatchProducer
from scenarios.clients.local_broker import LocalBroker
from tests.conftest import dev_only_modules

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def without_scenarios(monkeypatch):
    """This process's children (brokers included) cannot import `scenarios`, nor the dev
    extras (tests/plain_install/sitecustomize.py)."""
    path = os.pathsep.join([os.path.join(ROOT, "tests", "plain_install"), ROOT])
    monkeypatch.setenv("PYTHONPATH", path)
    monkeypatch.setenv("KBENCH_BLOCK_MODULES", ",".join([*dev_only_modules(), "scenarios"]))
    blocked = subprocess.run(
        [sys.executable, "-c", "import scenarios"], cwd=ROOT, capture_output=True, text=True
    )
    assert blocked.returncode != 0 and "No module named 'scenarios'" in blocked.stderr
    return dict(os.environ)


def test_importing_engine_cli_imports_no_scenario_module():
    code = (
        "import sys, engine.cli\n"
        "loaded = sorted(m for m in sys.modules if m.partition('.')[0] == 'scenarios')\n"
        "assert not loaded, loaded\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert completed.returncode == 0, completed.stderr


def test_broker_dump_log_and_broker_stats_run_without_the_scenarios(tmp_path, without_scenarios):
    broker = LocalBroker(str(tmp_path / "data")).start()  # python -m engine.cli broker
    try:
        assert probe(broker.bootstrap).brokers  # it answers ApiVersions and Metadata
        producer = BatchProducer(broker.bootstrap)
        try:
            producer.create_topic("greetings", 1)
            producer.produce("greetings", 1, 256 * 1024)
        finally:
            producer.close()
        stats = subprocess.run(
            [sys.executable, "-m", "engine.cli", "broker-stats", broker.bootstrap],
            cwd=ROOT,
            env=without_scenarios,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert stats.returncode == 0, stats.stderr
        assert json.loads(stats.stdout)["apis"]["PRODUCE"]["requests"] >= 1
    finally:
        assert broker.stop() == 0  # a clean shutdown
    partition = str(tmp_path / "data" / "greetings-0")
    dump = subprocess.run(
        [sys.executable, "-m", "engine.cli", "dump-log", partition, "--verify", "--index"],
        cwd=ROOT,
        env=without_scenarios,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert dump.returncode == 0, dump.stderr
    assert "baseOffset: 0 " in dump.stdout


def test_the_console_script_hands_the_scenarios_commands_to_scenarios_cli(capsys):
    assert engine_cli.main(["list"]) == 0
    assert "disk-write-pattern:" in capsys.readouterr().out


def test_python_m_scenarios_cli_still_runs_a_broker(tmp_path):
    listen = ["--listen", "127.0.0.1:0"]
    process = subprocess.Popen(
        [sys.executable, "-m", "scenarios.cli", "broker", "--data-dir", str(tmp_path), *listen],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("kbench broker listening on "), line
        assert probe(line.rsplit(" ", 1)[1].strip()).brokers
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
        process.stdout.close()
