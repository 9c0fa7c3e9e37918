"""The scheduler runs periodic work when due, and the event loop sleeps until the earliest
deadline of anything: a periodic task, a waiting fetch or a group timer."""

from engine.broker.broker_server import BrokerServer
from engine.broker.config import KafkaConfig
from engine.broker.kafka_apis import KafkaApis
from engine.broker.request_context import RequestContext
from engine.broker.scheduler import Scheduler
from engine.protocol.apis import APIS, ApiKeys
from engine.protocol.codec import decode_request


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000

    def __call__(self) -> int:
        return self.now


def test_tasks_run_when_due_each_once_per_turn():
    clock = Clock()
    scheduler = Scheduler(clock)
    ran: list[str] = []
    scheduler.schedule("a", 100, lambda: ran.append("a"))
    scheduler.schedule("b", 250, lambda: ran.append("b"))
    scheduler.schedule("zero", 0, lambda: ran.append("zero"))
    assert scheduler.next_deadline_ms() == clock.now
    assert scheduler.run_due() == ["zero"]  # an interval of 0: once per turn, not in a loop
    assert scheduler.next_deadline_ms() == clock.now + 1
    clock.now += 250
    assert scheduler.run_due() == ["zero", "a", "b"]
    assert scheduler.next_deadline_ms() == clock.now + 1
    assert scheduler.run_due() == []
    clock.now += 100
    assert sorted(scheduler.run_due()) == ["a", "zero"]


def _join(apis: KafkaApis, session_timeout_ms: int) -> None:
    version = 5
    cls = APIS[ApiKeys.JOIN_GROUP][0][version]
    request = cls(
        group_id="g",
        session_timeout_ms=session_timeout_ms,
        rebalance_timeout_ms=session_timeout_ms,
        member_id="",
        group_instance_id=None,
        protocol_type="consumer",
        protocols=[cls.JoinGroupRequestProtocol(name="range", metadata=b"\x00")],
    )
    request.with_header(correlation_id=1, client_id="tests")
    header, decoded = decode_request(bytes(request.encode(header=True)))
    apis.handle(
        RequestContext(header, "127.0.0.1:1", "127.0.0.1:9092"), decoded, lambda parts: None
    )


def test_the_loop_wakes_for_a_group_timer_not_a_fixed_tick(tmp_path):
    clock = Clock()
    config = KafkaConfig(
        log_dir=str(tmp_path),
        group_min_session_timeout_ms=10,
        group_initial_rebalance_delay_ms=0,
    )
    broker = BrokerServer(config, time_ms=clock)
    periodic = broker.scheduler.next_deadline_ms()
    assert periodic is not None and broker.next_deadline_ms() == periodic
    _join(broker.apis, session_timeout_ms=30)  # a pending member id, expiring in 30 ms
    assert broker.next_deadline_ms() == clock.now + 30 < periodic
    broker.shutdown()
