"""How many 100-byte records one kbench broker process takes in, sustained: issue 11's target
">= 5,000,000 records/s of 100-byte records into one broker process, sustained for 30 s".

    python3 -m tests.benchmarks.sustained_ingest [--seconds 30] [--producers 1 2 3] \\
        [--storage tmpfs disk] [--partitions 1] [--sink]

For each storage (tmpfs: the broker's log on /dev/shm; disk: under /tmp, on the data disk) and
each count of producer processes, a fresh `kbench broker` (LocalBroker) and a topic of
--partitions partitions; every producer process (scenarios.clients.load_processes, closed loop)
runs the load generator (scenarios.clients.loadgen.BatchProducer: prebuilt ~64 KiB batches of
600 100-byte records, ProduceRequest v7, acks=1, a window of 16 requests on one connection,
round robin over the partitions) without pause. After --warm-up seconds, the partitions' log
end offsets (GET /stats) and the broker's CPU time are sampled every second for --seconds:
records/s per one-second interval (min, median with its 95 % interval, max), overall, and the
CPU the broker and the producers used, in cores. On this 2-core machine the producers compete
with the broker for the CPU, which is why several counts are measured.

--sink measures what the producers can offer: the same producer processes against the bare
ingest server of scenarios/clients/bare_broker.py (frames cut with recv_into, a canned
response), its file a link to /dev/null, and records counted as the producers' acknowledged
requests (updated every 16 MiB, so a one-second interval is known to about 5 %).

30 s at 5 M records/s is 16 GB of log, more than this machine's memory: segments of 128 MiB are
deleted once a partition holds more than 512 MiB (retention checked every second, files
unlinked a second later), so the broker also pays for deleting what it wrote, as a broker
under sustained ingest does. --py-spy DIR records the broker over each measured window
(py-spy record -r 200 --idle, raw format) into DIR/<storage>-<producers>.txt.
"""

import argparse
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass

from scenarios.clients.load_processes import LoadProcesses
from scenarios.clients.loadgen import BatchProducer
from scenarios.clients.local_broker import LocalBroker
from scenarios.harness.resources import cpu_seconds
from scenarios.harness.stats import summarize

TOPIC = "ingest"
RECORDS_PER_BATCH = 600  # BatchProducer's default
WINDOW = 16
CHUNK_BYTES = 16 << 20  # one produce() call: the window drains once per call, well under 1 %
STORAGE = {"tmpfs": "/dev/shm", "disk": tempfile.gettempdir()}
SETTINGS = {  # bound what 30 s leaves on tmpfs (memory) and on the disk
    "log.segment.bytes": str(128 << 20),
    "log.retention.bytes": str(512 << 20),
    "log.retention.check.interval.ms": "1000",
    "log.segment.delete.delay.ms": "1000",
}


@dataclass
class Sample:
    at: float  # time.monotonic(), the middle of the /stats request
    records: int  # the topic's log end offsets summed (--sink: the producers' acknowledged)
    broker_cpu: float
    producers_cpu: float


def log_end(bootstrap: str) -> int:
    with urllib.request.urlopen(f"http://{bootstrap}/stats", timeout=10) as response:
        partitions = json.loads(response.read())["partitions"]
    return sum(p["log_end_offset"] for name, p in partitions.items() if name.startswith(TOPIC))


def sample(
    bootstrap: str | None, broker_pid: int, producer_pids: list[int], load: LoadProcesses
) -> Sample:
    """bootstrap None: the sink, counted at the producers."""
    before = time.monotonic()
    records = load.acknowledged if bootstrap is None else log_end(bootstrap)
    at = (before + time.monotonic()) / 2
    return Sample(
        at,
        records,
        cpu_seconds(broker_pid) or 0.0,
        sum(cpu_seconds(pid) or 0.0 for pid in producer_pids),
    )


def start_sink(directory: str) -> tuple[subprocess.Popen, str]:
    """The bare ingest server (scenarios/clients/bare_broker.py), writing to /dev/null;
    (process, address)."""
    os.symlink(os.devnull, os.path.join(directory, "bare.log"))
    process = subprocess.Popen(
        [sys.executable, "-m", "scenarios.clients.bare_broker", "ingest", directory],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None  # stdout=PIPE
    return process, process.stdout.readline().rsplit(" ", 1)[1].strip()


def measure(args: argparse.Namespace, storage: str, producers: int) -> list[Sample]:
    """One broker (or the sink), `producers` load generators, samples once a second over the
    window."""
    directory = tempfile.mkdtemp(prefix="kbench-ingest-", dir=STORAGE[storage])
    broker: LocalBroker | None = None
    sink: subprocess.Popen | None = None
    if args.sink:
        sink, address = start_sink(directory)
        pid = sink.pid
    else:
        broker = LocalBroker(
            os.path.join(directory, "kbench"),
            SETTINGS,
            log_path=os.path.join(directory, "broker.log"),
        ).start()
        address, pid = broker.bootstrap, broker.pid
    load = LoadProcesses(address, producers, records_per_batch=RECORDS_PER_BATCH)
    profiler = None
    try:
        if broker is not None:
            setup = BatchProducer(broker.bootstrap)
            setup.create_topic(TOPIC, args.partitions)
            setup.close()
        load.start()
        # closed loop, each process as fast as its window allows, until stop()
        load.begin_produce(
            TOPIC, args.partitions, None, None, window=WINDOW, chunk_bytes=CHUNK_BYTES
        )
        time.sleep(args.warm_up)
        if args.py_spy:
            out = os.path.join(args.py_spy, f"{'sink' if args.sink else storage}-{producers}.txt")
            command = ["py-spy", "record", "-r", "200", "--idle", "-f", "raw", "-o", out]
            profiler = subprocess.Popen(
                [*command, "--pid", str(pid), "--duration", str(args.seconds)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        pids = load.pids["producers"]
        bootstrap = None if broker is None else broker.bootstrap
        samples = [sample(bootstrap, pid, pids, load)]
        for second in range(1, args.seconds + 1):  # on a fixed schedule: no drift
            time.sleep(max(samples[0].at + second - time.monotonic(), 0))
            samples.append(sample(bootstrap, pid, pids, load))
        load.stop()
        done = load.end_produce()
        if done.errors:
            raise RuntimeError(f"a producer process failed: {done.errors}")
        return samples
    finally:
        load.close()
        if profiler is not None:
            profiler.wait(timeout=60)
        if broker is not None:
            broker.stop()
        if sink is not None:
            sink.kill()
            sink.wait()
        shutil.rmtree(directory, ignore_errors=True)


def report(name: str, producers: int, samples: list[Sample], partitions: int) -> float:
    rates = [(b.records - a.records) / (b.at - a.at) for a, b in itertools.pairwise(samples)]
    first, last = samples[0], samples[-1]
    seconds = last.at - first.at
    overall = (last.records - first.records) / seconds
    median = summarize(rates)
    broker_cores = (last.broker_cpu - first.broker_cpu) / seconds
    producer_cores = (last.producers_cpu - first.producers_cpu) / seconds
    print(
        f"{name:5} {producers} producer{'s' if producers > 1 else ' '} {partitions} "
        f"partition{'s' if partitions > 1 else ''}: records/s per 1 s interval min "
        f"{min(rates):,.0f}, median {median.median:,.0f} (CI {median.ci_low:,.0f}-"
        f"{median.ci_high:,.0f}), max {max(rates):,.0f}; overall {overall:,.0f} over "
        f"{seconds:.1f} s; CPU: {'sink' if name == 'sink' else 'broker'} {broker_cores:.2f} "
        f"cores, producers {producer_cores:.2f}",
        flush=True,
    )
    return overall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=30, help="measured, after the warm-up")
    parser.add_argument("--warm-up", type=float, default=5.0, help="seconds")
    parser.add_argument("--producers", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--storage", nargs="+", choices=list(STORAGE), default=list(STORAGE))
    parser.add_argument("--partitions", type=int, default=1)
    parser.add_argument("--py-spy", metavar="DIR", help="profile the broker into DIR")
    parser.add_argument("--sink", action="store_true", help="what the producers can offer")
    args = parser.parse_args()
    if args.sink:
        args.storage = ["tmpfs"]  # it writes to /dev/null; the directory holds the link only
    print(f"load average before: {os.getloadavg()[0]:.2f}", flush=True)
    best: dict[str, tuple[float, int]] = {}
    for storage in args.storage:
        for producers in args.producers:
            name = "sink" if args.sink else storage
            samples = measure(args, storage, producers)
            overall = report(name, producers, samples, args.partitions)
            best[name] = max(best.get(name, (0.0, 0)), (overall, producers))
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    for name, (overall, producers) in best.items():
        verdict = "met" if overall >= 5_000_000 else "not met"
        if name == "sink":
            verdict = "offered" if overall >= 5_000_000 else "not offered"
        print(
            f"{name}: most with {producers} producer process{'es' if producers > 1 else ''}, "
            f"{overall:,.0f} records/s; issue 11's target >= 5,000,000 sustained: {verdict}"
        )


if __name__ == "__main__":
    main()
