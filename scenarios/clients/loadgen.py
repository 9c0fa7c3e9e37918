"""BatchProducer: the fast load generator. It sends prebuilt record batches over the Kafka
protocol, so what a measurement sees is the broker, not a client library's batching.

Frames are built once per partition (ProduceRequest v7, acks=1, one ~64 KiB batch of 100-byte
records) and sent round robin over the partitions, a window of requests in flight on one
connection. Works against any Kafka-protocol broker.

Unlimited, it sends as fast as the window allows and a request's latency runs from its send.
With a rate (an open-loop run), request i is due at start + i/rate and its latency runs from
that intended time, so a stall of the broker shows in every request it held up, not only in the
one that was in flight (coordinated omission, as wrk2 and HdrHistogram's docs describe it).
"""

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from hdrh.histogram import HdrHistogram
from kafka.errors import TopicAlreadyExistsError, for_code
from kafka.protocol.admin.topics import CreateTopicsRequest, CreateTopicsResponse
from kafka.protocol.producer.produce import ProduceRequest, ProduceResponse

from engine.records import SimpleRecord, build_batch
from scenarios.clients.cluster import KafkaConnection
from scenarios.clients.schedule import OpenLoopSchedule

_PRODUCE_VERSION = 7
_CREATE_TOPICS_VERSION = 4


class LoadError(Exception):
    pass


@dataclass
class ProduceStats:
    bytes: int
    requests: int  # acknowledged
    seconds: float  # from the start (the schedule's, in open loop) to the last acknowledgement
    p50_latency_us: float
    p99_latency_us: float
    # ns per request, from its send (or, in open loop, its due time) to its acknowledgement
    latency: HdrHistogram = field(repr=False)
    # requests that were to be sent (total_bytes' worth); more than `requests` when the
    # deadline came first
    planned: int = 0
    # from the start to the last request's send: in open loop, how long the requests took to
    # go out (behind the schedule when the window was full)
    sending_seconds: float = 0.0


class BatchProducer:
    def __init__(self, bootstrap: str, *, record_size: int = 100, records_per_batch: int = 600):
        self.connection = KafkaConnection(bootstrap, timeout_s=60, client_id="kbench-loadgen")
        self.sock = self.connection.sock
        self.batch = bytes(
            build_batch([SimpleRecord(bytes(record_size))] * records_per_batch, timestamp=1)
        )

    def close(self) -> None:
        self.connection.close()

    def create_topic(
        self,
        topic: str,
        partitions: int,
        replication_factor: int = 1,
        configs: dict[str, str] | None = None,
    ) -> None:
        cls = CreateTopicsRequest[_CREATE_TOPICS_VERSION]
        request = cls(
            topics=[
                cls.CreatableTopic(
                    name=topic,
                    num_partitions=partitions,
                    replication_factor=replication_factor,
                    assignments=[],
                    configs=[
                        cls.CreatableTopic.CreatableTopicConfig(name=k, value=v)
                        for k, v in (configs or {}).items()
                    ],
                )
            ],
            timeout_ms=30_000,
            validate_only=False,
        )
        response = self.connection.request(request, CreateTopicsResponse)
        error = response.topics[0].error_code
        if error not in (0, TopicAlreadyExistsError.errno):
            raise LoadError(
                f"creating {topic}: {for_code(error).__name__} {response.topics[0].error_message}"
            )

    def produce(
        self,
        topic: str,
        partitions: int | Sequence[int],
        total_bytes: int,
        window: int = 8,
        rate_per_s: float | None = None,
        acks: int = 1,
        start_ns: int | None = None,
        deadline_ns: int | None = None,
    ) -> ProduceStats:
        """Send about total_bytes of batches round robin over the topic's partitions (a count:
        0..n-1, or the partition ids), as fast as the window allows, or at rate_per_s requests
        per second (open loop, see above), to the broker this producer is connected to (the
        partitions' leader). start_ns: when the open loop's first request is due
        (time.perf_counter_ns(), CLOCK_MONOTONIC on Linux, which every process on the machine
        shares); default now. deadline_ns: no request is sent from then on (those in flight are
        still awaited), so a load the broker cannot keep up with ends on time; what was
        acknowledged is `requests`, what was to be sent `planned`. acks=0: the broker answers
        nothing, so a request counts as acknowledged, and its latency ends, once it is written
        to the socket (what the broker stored is the log end offset's to tell)."""
        cls = ProduceRequest[_PRODUCE_VERSION]
        ids = list(range(partitions)) if isinstance(partitions, int) else list(partitions)
        frames = [
            self.connection.frame(
                cls(
                    transactional_id=None,
                    acks=acks,
                    timeout_ms=30_000,
                    topic_data=[
                        cls.TopicProduceData(
                            name=topic,
                            partition_data=[
                                cls.TopicProduceData.PartitionProduceData(
                                    index=p, records=self.batch
                                )
                            ],
                        )
                    ],
                )
            )
            for p in ids
        ]
        requests = max(total_bytes // len(self.batch), 1)
        histogram = HdrHistogram(1, 60_000_000_000, 3)
        sent_at: list[int] = []
        started = time.perf_counter_ns() if start_ns is None else start_ns
        schedule = None if rate_per_s is None else OpenLoopSchedule(started, rate_per_s)
        sent = received = 0
        planned = requests
        while True:
            while sent < requests and sent - received < window:
                now = time.perf_counter_ns()
                due = now if schedule is None else schedule.due_ns(sent)
                if deadline_ns is not None and max(now, due) >= deadline_ns:
                    requests = sent  # the rest is not sent: the deadline came first
                    break
                if due > now:
                    if sent > received:
                        break  # read the response in flight before the next one is due
                    time.sleep((due - now) / 1e9)
                sent_at.append(time.perf_counter_ns())
                self.sock.sendall(frames[sent % len(frames)])
                sent += 1
                if acks == 0:  # no response comes: a request counts once it is written
                    latency = time.perf_counter_ns() - (sent_at[-1] if schedule is None else due)
                    histogram.record_value(max(latency, 1))
                    received += 1
            if received == sent:  # all sent (or the deadline came) and answered
                break
            response = ProduceResponse.decode(
                bytes(self.connection.read_frame()), version=_PRODUCE_VERSION, header=True
            )
            now = time.perf_counter_ns()
            if schedule is None:
                latency = now - sent_at[received]
            else:
                latency = schedule.latency_ns(received, now)
            histogram.record_value(max(latency, 1))
            error = response.responses[0].partition_responses[0].error_code
            if error:
                raise LoadError(f"produce to {topic} failed: {for_code(error).__name__}")
            received += 1
        seconds = (time.perf_counter_ns() - started) / 1e9
        return ProduceStats(
            bytes=requests * len(self.batch),
            requests=requests,
            seconds=seconds,
            p50_latency_us=histogram.get_value_at_percentile(50) / 1000,
            p99_latency_us=histogram.get_value_at_percentile(99) / 1000,
            latency=histogram,
            planned=planned,
            sending_seconds=(sent_at[-1] - started) / 1e9 if sent_at else 0.0,
        )
