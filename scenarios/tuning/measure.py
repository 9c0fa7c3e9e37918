"""One trial's measurement: the settings offered the workload on fresh topics of the target, in
the workload's shape (topics, partitions, producers, consumers, payload), created with the
trial's topic configs and replication factor, through scenarios.clients.pipeline, and the topics
deleted afterwards.

The target is a --bootstrap cluster, whose broker settings are its own, or the engine started
here: one broker, or a cluster (scenarios.clients.local_broker.LocalCluster) when the space
replicates; started again with a trial's broker settings when they differ from the running ones.

A Measurer is used from one thread (the search's); it holds one admin client.
"""

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from scenarios.clients import pipeline
from scenarios.clients.cluster import ClusterError
from scenarios.clients.local_broker import LocalBroker, LocalCluster
from scenarios.clients.topics import TopicAdmin
from scenarios.tuning import space as spaces
from scenarios.tuning.objective import Measurement, Slo
from scenarios.tuning.space import Space, Value
from scenarios.tuning.workload import MIN_RECORDS, Durations, Workload


class TuneError(Exception):
    """The search cannot start or go on; the message is one line for the user."""


class TrialFailed(Exception):
    """A trial's measurement did not complete (e.g. the consumer never got every record)."""


Measure = Callable[[dict[str, Value], float], Measurement]  # settings, offered records/s


class Measurer:
    """Measures settings on a fresh topic each time (named from `prefix`, deleted after)."""

    def __init__(
        self,
        target: "Target",
        workload: Workload,
        durations: Durations,
        slo: Slo,
        prefix: str,
    ) -> None:
        self.target = target
        self.workload = workload
        self.durations = durations
        self.slo = slo
        self.prefix = prefix
        self.admin = TopicAdmin(target.bootstrap)
        self.count = 0

    def __call__(self, settings: dict[str, Value], rate: float) -> Measurement:
        """The settings measured at `rate` records/s over the durations."""
        self.count += 1
        load, configs, replicas = self.load(settings, rate, f"{self.prefix}{self.count}")
        topic = load.topic
        broker = spaces.scoped(settings, "broker")
        if self.target.differs(broker):
            self.close()  # its broker goes
            self.target.restart(broker)
            self.admin = TopicAdmin(self.target.bootstrap)
        try:
            self.admin.create_all(
                load.topic_names, load.partitions, configs=configs, replication_factor=replicas
            )
            leader = self.admin.leader(load.topic_names[0])
        except Exception as exc:  # librdkafka's KafkaException, a timeout: not the settings'
            raise TuneError(
                f"cannot create topics {topic}... on {self.target.bootstrap}: {exc}"
            ) from None
        try:
            measured = pipeline.run(leader, load, broker_pid=self.target.pid(leader))
        except RuntimeError as exc:  # the pipeline's own account of a run that did not finish
            self.admin.delete_all(load.topic_names)
            raise TrialFailed(str(exc)) from None
        # not in a finally: after Ctrl-C the broker is going too, and tune() deletes what is left
        self.admin.delete_all(load.topic_names)
        return Measurement.of(measured, load, self.slo)

    def load(
        self, settings: dict[str, Value], rate: float, topic: str
    ) -> tuple[pipeline.Load, dict[str, str], int]:
        """What a measurement of `settings` at `rate` offers on `topic` (the workload's shape,
        its partitions unless the settings give their own), the topic configs to create it
        with, and its replication factor."""
        producer, consumer = spaces.client_properties(settings)
        configs = {k: str(v) for k, v in spaces.scoped(settings, "topic").items()}
        replicas = int(configs.pop("replication.factor", "1"))
        shape = self.workload.load_shape()
        shape["partitions"] = int(configs.pop("partitions", "0")) or shape["partitions"]
        warmup = round(rate * self.durations.warmup_s)
        load = pipeline.Load(
            topic,
            rate,
            warmup + max(round(rate * self.durations.test_s), MIN_RECORDS),
            warmup,
            producer=producer,
            consumer=consumer,
            publish_latency=self.slo.latency == "publish",
            **shape,
        )
        return load, configs, replicas

    @property
    def bootstrap(self) -> str:
        """The cluster measured now (the engine's address changes when it restarts)."""
        return self.target.bootstrap

    def close(self) -> None:
        """Drop the admin client before its broker stops, or librdkafka logs the disconnection
        on stderr."""
        self.__dict__.pop("admin", None)


class Target:
    """The cluster trials run on: `bootstrap` (None: the engine, started by start()), a
    cluster of `brokers` when given or when the space replicates (3, or the most replicas it
    allows; else one broker)."""

    def __init__(self, bootstrap: str | None, space: Space, brokers: int | None = None) -> None:
        self.external = bootstrap is not None
        self.bootstrap = bootstrap or ""
        replicas = space.highest("replication.factor")
        self.brokers = brokers or (max(3, replicas) if replicas > 1 else 0)  # 0: one broker
        self.restarts = any(p.searched for p in space.properties if p.scope == "broker")
        self.settings = spaces.scoped(space.baseline(), "broker")  # the running engine's
        self.root = "" if self.external else tempfile.mkdtemp(prefix="kbench-tune-")
        self.engine: LocalBroker | LocalCluster | None = None
        self.started = 0

    def describe(self) -> str:
        if self.external:
            return f"{self.bootstrap} (its broker settings are its own: kbench cannot set them)"
        what = f"engine cluster of {self.brokers} brokers" if self.brokers else "engine broker"
        metered = ", the partition leader's CPU metered" if self.brokers else ""
        restarts = (
            # measured here: a broker about 1 s, a cluster of 3 (and its controller) about 4 s
            "; restarted (about 1 s a broker) when a trial's broker settings differ from the "
            "running ones"
            if self.restarts
            else ""
        )
        return f"{what} {self.bootstrap}{metered}{restarts}"

    def differs(self, settings: dict[str, Value]) -> bool:
        """Whether `settings` (a trial's broker settings) need the engine restarted: never on a
        --bootstrap cluster, whose own are what the space holds none of."""
        return not self.external and bool(settings) and settings != self.settings

    def start(self, settings: dict[str, Value] | None = None) -> None:
        """The engine with `settings` over its defaults, on a fresh data directory."""
        self.settings = dict(settings or self.settings)
        given = {k: str(v) for k, v in spaces.differences(self.settings).items()}
        self.started += 1
        directory = os.path.join(self.root, str(self.started))
        if self.brokers:
            self.engine = LocalCluster(directory, self.brokers, given)
        else:
            self.engine = LocalBroker(os.path.join(directory, "broker"), given)
        try:
            self.engine.start()
        except (RuntimeError, ClusterError) as exc:
            raise TuneError(str(exc)) from None
        self.bootstrap = self.engine.bootstrap

    def restart(self, settings: dict[str, Value]) -> None:
        self.stop()
        self.start(settings)

    def stop(self) -> None:
        if self.engine is not None:
            self.engine.stop()
            shutil.rmtree(os.path.join(self.root, str(self.started)), ignore_errors=True)
            self.engine = None

    def pid(self, address: str) -> int | None:
        """The process of the engine's broker at `address` (the leader), None on --bootstrap."""
        if isinstance(self.engine, LocalCluster):
            return {b.bootstrap: b.pid for b in self.engine.brokers.values()}.get(address)
        return self.engine.pid if self.engine is not None else None


@contextmanager
def target(bootstrap: str | None, space: Space, brokers: int | None = None) -> Iterator[Target]:
    """The Target (see there), started, and stopped and its data removed afterwards (--bootstrap
    checked by tune() before the study is opened)."""
    running = Target(bootstrap, space, brokers)
    try:
        if not running.external:
            running.start()
        yield running
    finally:
        running.stop()
        if running.root:
            shutil.rmtree(running.root, ignore_errors=True)
