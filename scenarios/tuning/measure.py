"""One trial's measurement: the settings offered the workload on fresh topics of the target
(an engine broker started here, or a --bootstrap cluster), in the workload's shape (topics,
partitions, producers, consumers, payload), through scenarios.clients.pipeline, and the topics
deleted afterwards.

A Measurer is used from one thread (the search's); it holds one admin client.
"""

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from scenarios.clients import pipeline
from scenarios.clients.local_broker import LocalBroker
from scenarios.clients.topics import TopicAdmin
from scenarios.tuning import space as spaces
from scenarios.tuning.objective import Measurement, Slo
from scenarios.tuning.space import Value
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
        bootstrap: str,
        broker_pid: int | None,
        workload: Workload,
        durations: Durations,
        slo: Slo,
        prefix: str,
    ) -> None:
        self.bootstrap = bootstrap
        self.broker_pid = broker_pid
        self.workload = workload
        self.durations = durations
        self.slo = slo
        self.prefix = prefix
        self.admin = TopicAdmin(bootstrap)
        self.count = 0

    def __call__(self, settings: dict[str, Value], rate: float) -> Measurement:
        """The settings measured at `rate` records/s over the durations."""
        self.count += 1
        topic = f"{self.prefix}{self.count}"
        producer, consumer = spaces.client_properties(settings)
        warmup = round(rate * self.durations.warmup_s)
        load = pipeline.Load(
            topic,
            rate,
            warmup + max(round(rate * self.durations.test_s), MIN_RECORDS),
            warmup,
            producer=producer,
            consumer=consumer,
            **self.workload.load_shape(),
        )
        try:
            self.admin.create_all(load.topic_names, load.partitions)
            leader = self.admin.leader(load.topic_names[0])
        except Exception as exc:  # librdkafka's KafkaException, a timeout: not the settings'
            raise TuneError(f"cannot create topic {topic} on {self.bootstrap}: {exc}") from None
        try:
            measured = pipeline.run(leader, load, broker_pid=self.broker_pid)
        except RuntimeError as exc:  # the pipeline's own account of a run that did not finish
            self.admin.delete_all(load.topic_names)
            raise TrialFailed(str(exc)) from None
        # not in a finally: after Ctrl-C the broker is going too, and tune() deletes what is left
        self.admin.delete_all(load.topic_names)
        return Measurement.of(measured, load, self.slo)

    def close(self) -> None:
        """Drop the admin client before its broker stops, or librdkafka logs the disconnection
        on stderr."""
        del self.admin


@contextmanager
def target(bootstrap: str | None) -> Iterator[tuple[str, int | None]]:
    """The cluster to measure: --bootstrap (checked by tune() before the study is opened), or
    an engine broker started here on a temporary data directory, stopped and removed
    afterwards. Yields (bootstrap, broker pid)."""
    if bootstrap is not None:
        yield bootstrap, None
        return
    root = tempfile.mkdtemp(prefix="kbench-tune-")
    broker = LocalBroker(os.path.join(root, "broker"))
    try:
        try:
            broker.start()
        except RuntimeError as exc:
            raise TuneError(str(exc)) from None
        yield broker.bootstrap, broker.pid
    finally:
        broker.stop()
        shutil.rmtree(root, ignore_errors=True)
