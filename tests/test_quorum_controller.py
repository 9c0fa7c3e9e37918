"""QuorumController over a real MetadataLog, with a clock the tests move: broker registration
and epochs, the heartbeat state machine (unfence once caught up, fence at session expiry,
controlled shutdown), elections, AlterPartition validation, producer id blocks and topic admin,
each judged by Kafka's rules (ClusterControlManager, BrokerHeartbeatManager,
ReplicationControlManager, ProducerIdControlManager)."""

import random
import uuid
from collections.abc import Iterator

import pytest

from engine.controller.metadata_log import MetadataLog
from engine.controller.quorum_controller import (
    PRODUCER_ID_BLOCK_SIZE,
    ControllerError,
    ControllerSettings,
    Endpoint,
    HeartbeatResult,
    QuorumController,
)
from engine.errors import (
    DUPLICATE_BROKER_REGISTRATION,
    FENCED_LEADER_EPOCH,
    INCONSISTENT_CLUSTER_ID,
    INELIGIBLE_REPLICA,
    INVALID_CONFIG,
    INVALID_PARTITIONS,
    INVALID_REPLICA_ASSIGNMENT,
    INVALID_REPLICATION_FACTOR,
    INVALID_REQUEST,
    INVALID_TOPIC_EXCEPTION,
    INVALID_UPDATE_VERSION,
    NONE,
    NOT_CONTROLLER,
    STALE_BROKER_EPOCH,
    TOPIC_ALREADY_EXISTS,
    UNKNOWN_TOPIC_ID,
    UNKNOWN_TOPIC_OR_PARTITION,
)
from engine.metadata.image import NO_LEADER, RECOVERED, RECOVERING, PartitionRegistration
from engine.metadata.records import (
    BrokerRegistrationChangeRecord,
    ConfigRecord,
    FeatureLevelRecord,
    PartitionChangeRecord,
    PartitionRecord,
    RegisterBrokerRecord,
    TopicRecord,
    read_metadata_records,
)
from engine.records import iter_batches

CLUSTER_ID = "kbench-test-cluster"
CONTROLLER_ID = 3000
SESSION_MS = 9_000


class Clock:
    """time_ms for the controller and its log: moves only when a test says so."""

    def __init__(self) -> None:
        self.now = 1_700_000_000_000

    def __call__(self) -> int:
        return self.now

    def advance(self, ms: int) -> None:
        self.now += ms


class Cluster:
    """A controller on a metadata log in a directory, and the brokers' side of the RPCs: each
    broker's incarnation and epoch, heartbeats that report what the controller wrote."""

    def __init__(self, directory: str, clock: Clock) -> None:
        self.directory = directory
        self.clock = clock
        self.incarnations: dict[int, uuid.UUID] = {}
        self.epochs: dict[int, int] = {}
        self._open()

    def _open(self) -> None:
        self.log = MetadataLog(self.directory, CONTROLLER_ID, self.clock)
        self.controller = QuorumController(
            self.log,
            CLUSTER_ID,
            CONTROLLER_ID,
            ControllerSettings(broker_session_timeout_ms=SESSION_MS, default_replication_factor=1),
            self.clock,
            random.Random(7),
        )

    def restart(self) -> None:
        self.log.close()
        self._open()

    def close(self) -> None:
        self.log.close()

    @property
    def image(self):
        return self.controller.image

    @property
    def offset(self) -> int:
        """The last offset the controller wrote (a caught-up broker has applied it)."""
        return self.controller.image.offset

    def register(self, broker_id: int, rack: str | None = None, new_process: bool = False) -> int:
        if new_process or broker_id not in self.incarnations:
            self.incarnations[broker_id] = uuid.uuid4()
        epoch = self.controller.register_broker(
            broker_id,
            CLUSTER_ID,
            self.incarnations[broker_id],
            [Endpoint("127.0.0.1", 9000 + broker_id)],
            rack,
        )
        self.epochs[broker_id] = epoch
        return epoch

    def heartbeat(
        self,
        broker_id: int,
        offset: int | None = None,
        want_fence: bool = False,
        want_shut_down: bool = False,
    ) -> HeartbeatResult:
        return self.controller.heartbeat(
            broker_id,
            self.epochs[broker_id],
            self.offset if offset is None else offset,
            want_fence,
            want_shut_down,
        )

    def start(self, *broker_ids: int, racks: dict[int, str] | None = None) -> None:
        """Brokers registered, caught up and unfenced."""
        for broker_id in broker_ids:
            self.register(broker_id, (racks or {}).get(broker_id))
            result = self.heartbeat(broker_id)
            assert not result.is_fenced
        assert all(self.image.brokers[b].active for b in broker_ids)

    def keep_alive(self, *broker_ids: int) -> None:
        for broker_id in broker_ids:
            self.heartbeat(broker_id)

    def partition(self, topic: str, index: int = 0) -> PartitionRegistration:
        registration = self.image.partition(topic, index)
        assert registration is not None
        return registration

    def alter_isr(
        self,
        broker_id: int,
        topic: str,
        index: int,
        isr: list[int],
        leader_epoch: int | None = None,
        partition_epoch: int | None = None,
        recovery: int = RECOVERED,
        topic_image=None,
    ):
        current = self.partition(topic, index)
        return self.controller.alter_partition(
            broker_id,
            self.epochs[broker_id],
            self.image.topics[topic] if topic_image is None else topic_image,
            index,
            current.leader_epoch if leader_epoch is None else leader_epoch,
            current.partition_epoch if partition_epoch is None else partition_epoch,
            isr,
            recovery,
        )

    def records(self):
        return [record for _, record in self.log.records()]

    def last_batch(self):
        """The records of the last batch the controller wrote."""
        data = self.log.read(0, 1 << 24).read()
        *_, last = iter_batches(data)
        return [record for _, record in read_metadata_records(last.view())]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def cluster(tmp_path, clock) -> Iterator[Cluster]:
    cluster = Cluster(str(tmp_path), clock)
    yield cluster
    cluster.close()


def _error(call) -> int:
    with pytest.raises(ControllerError) as info:
        call()
    return info.value.error_code


# -- registration -------------------------------------------------------------------------------
def test_a_new_controller_writes_the_metadata_version_first(cluster):
    assert cluster.records() == [FeatureLevelRecord(name="metadata.version", feature_level=12)]
    assert cluster.image.features == {"metadata.version": 12}
    assert cluster.log.epoch == 1


def test_broker_epochs_are_the_offsets_of_their_registrations(cluster):
    one = cluster.register(1, rack="a")
    two = cluster.register(2)
    offsets = {
        record.broker_id: (offset, record.broker_epoch)
        for offset, record in cluster.log.records()
        if isinstance(record, RegisterBrokerRecord)
    }
    assert offsets == {1: (one, one), 2: (two, two)}
    assert two > one
    broker = cluster.image.brokers[1]
    assert broker.epoch == one and broker.fenced and broker.rack == "a"
    assert broker.incarnation_id == cluster.incarnations[1]
    assert (broker.host, broker.port) == ("127.0.0.1", 9001)


def test_the_same_incarnation_registering_again_keeps_its_epoch(cluster):
    epoch = cluster.register(1)
    end = cluster.log.end_offset
    assert cluster.register(1) == epoch
    assert cluster.log.end_offset == end  # nothing written
    cluster.heartbeat(1)
    assert cluster.register(1) == epoch and not cluster.image.brokers[1].fenced


def test_another_incarnation_is_refused_while_the_old_session_is_alive(cluster, clock):
    cluster.start(1)
    old = cluster.epochs[1]
    clock.advance(SESSION_MS)  # the session lasts the whole timeout
    assert _error(lambda: cluster.register(1, new_process=True)) == DUPLICATE_BROKER_REGISTRATION
    assert cluster.image.brokers[1].epoch == old
    clock.advance(1)  # now it has run out
    cluster.incarnations[1] = uuid.uuid4()
    new = cluster.register(1)
    assert new > old
    broker = cluster.image.brokers[1]
    assert broker.epoch == new and broker.fenced
    assert broker.incarnation_id == cluster.incarnations[1]
    # the old process's heartbeats are stale now
    assert (
        _error(lambda: cluster.controller.heartbeat(1, old, cluster.offset, False, False))
        == STALE_BROKER_EPOCH
    )


def test_a_fenced_broker_may_register_a_new_incarnation_at_once(cluster):
    first = cluster.register(1)
    assert cluster.register(1, new_process=True) > first


def test_a_crashed_leader_that_comes_back_before_being_fenced_loses_its_leaderships(cluster, clock):
    cluster.start(1, 2)
    cluster.controller.create_topic("foo", 1, 2, {}, assignments={0: [1, 2]})
    clock.advance(SESSION_MS + 1)  # broker 1 crashed; fence_stale_brokers has not run yet
    cluster.keep_alive(2)
    epoch = cluster.register(1, new_process=True)
    assert cluster.image.brokers[1].epoch == epoch and cluster.image.brokers[1].fenced
    foo = cluster.partition("foo")
    assert (foo.leader, foo.isr, foo.leader_epoch) == (2, (2,), 1)


def test_a_broker_of_another_cluster_is_refused(cluster):
    code = _error(
        lambda: cluster.controller.register_broker(
            1, "another-cluster", uuid.uuid4(), [Endpoint("127.0.0.1", 9001)], None
        )
    )
    assert code == INCONSISTENT_CLUSTER_ID
    assert cluster.image.brokers == {}


# -- heartbeats ---------------------------------------------------------------------------------
def test_a_heartbeat_with_a_stale_or_unknown_epoch_is_refused(cluster):
    epoch = cluster.register(1)
    heartbeat = cluster.controller.heartbeat
    assert _error(lambda: heartbeat(1, epoch - 1, epoch, False, False)) == STALE_BROKER_EPOCH
    assert _error(lambda: heartbeat(7, epoch, epoch, False, False)) == STALE_BROKER_EPOCH


def test_a_broker_is_unfenced_only_once_it_has_caught_up_to_its_registration(cluster):
    epoch = cluster.register(1)
    behind = cluster.heartbeat(1, offset=epoch - 1)
    assert (behind.error_code, behind.is_caught_up, behind.is_fenced) == (NONE, False, True)
    assert cluster.image.brokers[1].fenced
    wants_fence = cluster.heartbeat(1, offset=epoch, want_fence=True)
    assert (wants_fence.is_caught_up, wants_fence.is_fenced) == (True, True)
    assert cluster.image.brokers[1].fenced
    end = cluster.log.end_offset
    caught_up = cluster.heartbeat(1, offset=epoch)
    assert (caught_up.is_caught_up, caught_up.is_fenced, caught_up.should_shut_down) == (
        True,
        False,
        False,
    )
    assert cluster.image.brokers[1].active
    assert cluster.last_batch() == [
        BrokerRegistrationChangeRecord(broker_id=1, broker_epoch=epoch, fenced=-1)
    ]
    assert cluster.log.end_offset == end + 1
    # an unfenced broker's heartbeats write nothing
    cluster.heartbeat(1)
    assert cluster.log.end_offset == end + 1


def test_a_fenced_broker_that_wants_to_shut_down_may_at_once(cluster):
    cluster.register(1)
    result = cluster.heartbeat(1, want_shut_down=True)
    assert result.should_shut_down and result.is_fenced


def test_an_unfenced_broker_that_asks_to_be_fenced_is(cluster):
    cluster.start(1, 2)
    cluster.controller.create_topic("foo", 1, 2, {}, assignments={0: [1, 2]})
    result = cluster.heartbeat(1, want_fence=True)
    assert result.is_fenced and not result.should_shut_down
    assert cluster.image.brokers[1].fenced
    assert cluster.partition("foo").leader == 2


def test_an_unfenced_broker_that_asks_to_be_fenced_and_to_shut_down_may_at_once(cluster):
    cluster.start(1)
    result = cluster.heartbeat(1, want_fence=True, want_shut_down=True)
    assert (result.is_fenced, result.should_shut_down) == (True, True)
    assert cluster.image.brokers[1].fenced


# -- topics -------------------------------------------------------------------------------------
def test_a_new_topic_is_placed_over_the_unfenced_brokers(cluster):
    cluster.start(1, 2, 3, 4, racks={1: "a", 2: "a", 3: "b", 4: "b"})
    cluster.register(5, rack="b")  # registered, still fenced: no replicas
    created = cluster.controller.create_topic("foo", 8, 3, {"retention.ms": "1000"})
    assert created.error_code == NONE and created.message is None
    assert (created.num_partitions, created.replication_factor) == (8, 3)
    assert created.configs == {"retention.ms": "1000"}
    topic = cluster.image.topics["foo"]
    assert topic.topic_id == created.topic_id
    assert cluster.image.topic_configs("foo") == {"retention.ms": "1000"}
    assert sorted(topic.partitions) == list(range(8))
    for registration in topic.partitions.values():
        assert len(set(registration.replicas)) == 3
        assert set(registration.replicas) <= {1, 2, 3, 4}
        assert {"a", "b"} == {cluster.image.brokers[r].rack for r in registration.replicas}
        assert registration.leader == registration.replicas[0]
        assert registration.isr == registration.replicas
        assert (registration.leader_epoch, registration.partition_epoch) == (0, 0)
        assert registration.leader_recovery_state == RECOVERED
    leaders = sorted(r.leader for r in topic.partitions.values())
    assert leaders == [1, 1, 2, 2, 3, 3, 4, 4]
    # one batch: the topic, its configs, its partitions
    batch = cluster.last_batch()
    assert isinstance(batch[0], TopicRecord) and batch[0].name == "foo"
    assert isinstance(batch[1], ConfigRecord) and (batch[1].name, batch[1].value) == (
        "retention.ms",
        "1000",
    )
    assert [type(r) for r in batch[2:]] == [PartitionRecord] * 8


def test_topic_defaults_and_explicit_assignments(cluster):
    cluster.start(1, 2)
    created = cluster.controller.create_topic("defaults", -1, -1, {})
    assert (created.error_code, created.num_partitions, created.replication_factor) == (NONE, 1, 1)
    assigned = cluster.controller.create_topic("assigned", -1, -1, {}, {0: [2, 1], 1: [1, 2]})
    assert (assigned.num_partitions, assigned.replication_factor) == (2, 2)
    assert cluster.partition("assigned", 0).replicas == (2, 1)
    assert cluster.partition("assigned", 0).leader == 2
    assert cluster.partition("assigned", 1).leader == 1


@pytest.mark.parametrize(
    ("name", "partitions", "replication_factor", "configs", "assignments", "code"),
    [
        pytest.param("foo", 1, 1, {}, None, TOPIC_ALREADY_EXISTS, id="exists"),
        pytest.param("a/b", 1, 1, {}, None, INVALID_TOPIC_EXCEPTION, id="slash"),
        pytest.param("", 1, 1, {}, None, INVALID_TOPIC_EXCEPTION, id="empty"),
        pytest.param("..", 1, 1, {}, None, INVALID_TOPIC_EXCEPTION, id="dots"),
        pytest.param("x" * 250, 1, 1, {}, None, INVALID_TOPIC_EXCEPTION, id="too-long"),
        pytest.param("bar", 1, 1, {"no.such.config": "1"}, None, INVALID_CONFIG, id="unknown"),
        pytest.param("bar", 1, 1, {"min.insync.replicas": "0"}, None, INVALID_CONFIG, id="bad"),
        pytest.param("bar", 1, 3, {}, None, INVALID_REPLICATION_FACTOR, id="rf-too-large"),
        pytest.param("bar", 1, 0, {}, None, INVALID_REPLICATION_FACTOR, id="rf-zero"),
        pytest.param("bar", 0, 1, {}, None, INVALID_PARTITIONS, id="no-partitions"),
        pytest.param("bar", -1, -1, {}, {0: [1], 2: [2]}, INVALID_REPLICA_ASSIGNMENT, id="gap"),
        pytest.param(
            "bar", -1, -1, {}, {0: [1], 1: [1, 2]}, INVALID_REPLICA_ASSIGNMENT, id="uneven"
        ),
        pytest.param("bar", -1, -1, {}, {0: [1, 1]}, INVALID_REPLICA_ASSIGNMENT, id="twice"),
        pytest.param(
            "bar", -1, -1, {}, {0: [1, 9]}, INVALID_REPLICA_ASSIGNMENT, id="unknown-broker"
        ),
    ],
)
def test_topic_creation_errors_write_nothing(
    cluster, name, partitions, replication_factor, configs, assignments, code
):
    cluster.start(1, 2)
    cluster.controller.create_topic("foo", 1, 1, {})
    end = cluster.log.end_offset
    created = cluster.controller.create_topic(
        name, partitions, replication_factor, configs, assignments
    )
    assert created.error_code == code and created.message
    assert cluster.log.end_offset == end
    assert sorted(cluster.image.topics) == ["foo"]


def test_validate_only_checks_and_writes_nothing(cluster):
    cluster.start(1, 2)
    end = cluster.log.end_offset
    checked = cluster.controller.create_topic("foo", 3, 2, {}, validate_only=True)
    assert (checked.error_code, checked.num_partitions, checked.replication_factor) == (NONE, 3, 2)
    assert cluster.log.end_offset == end and "foo" not in cluster.image.topics
    refused = cluster.controller.create_topic("foo", 3, 3, {}, validate_only=True)
    assert refused.error_code == INVALID_REPLICATION_FACTOR


def test_delete_topic(cluster):
    cluster.start(1)
    old = cluster.controller.create_topic("foo", 2, 1, {"retention.ms": "5"}).topic_id
    assert cluster.controller.delete_topic("foo") == old
    assert "foo" not in cluster.image.topics
    assert cluster.image.topic_configs("foo") == {}
    assert _error(lambda: cluster.controller.delete_topic("foo")) == UNKNOWN_TOPIC_OR_PARTITION
    again = cluster.controller.create_topic("foo", 1, 1, {})
    assert again.error_code == NONE and again.topic_id != old


def test_create_partitions(cluster):
    cluster.start(1, 2, 3)
    cluster.controller.create_topic("foo", 2, 2, {})
    cluster.controller.create_partitions("foo", 4)
    topic = cluster.image.topics["foo"]
    assert sorted(topic.partitions) == [0, 1, 2, 3]
    for index in (2, 3):
        registration = topic.partitions[index]
        assert len(set(registration.replicas)) == 2
        assert registration.leader == registration.replicas[0]
        assert registration.isr == registration.replicas
    cluster.controller.create_partitions("foo", 5, assignments=[[3, 1]])
    assert cluster.partition("foo", 4).replicas == (3, 1)
    end = cluster.log.end_offset
    cluster.controller.create_partitions("foo", 6, validate_only=True)
    assert cluster.log.end_offset == end and len(cluster.image.topics["foo"].partitions) == 5


@pytest.mark.parametrize(
    ("name", "count", "assignments", "code"),
    [
        pytest.param("bar", 3, None, UNKNOWN_TOPIC_OR_PARTITION, id="unknown-topic"),
        pytest.param("foo", 2, None, INVALID_PARTITIONS, id="same-count"),
        pytest.param("foo", 1, None, INVALID_PARTITIONS, id="fewer"),
        pytest.param("foo", 4, [[1, 2]], INVALID_REPLICA_ASSIGNMENT, id="too-few-assignments"),
        pytest.param("foo", 3, [[1]], INVALID_REPLICA_ASSIGNMENT, id="other-rf"),
        pytest.param("foo", 3, [[1, 9]], INVALID_REPLICA_ASSIGNMENT, id="unknown-broker"),
    ],
)
def test_create_partitions_errors_write_nothing(cluster, name, count, assignments, code):
    cluster.start(1, 2)
    cluster.controller.create_topic("foo", 2, 2, {})
    end = cluster.log.end_offset
    assert _error(lambda: cluster.controller.create_partitions(name, count, assignments)) == code
    assert cluster.log.end_offset == end


def test_placement_uses_a_fenced_broker_as_follower_when_it_must(cluster, clock):
    """As Kafka's placer: a broker that is down (fenced) still takes replicas the active
    brokers cannot, never as leader and outside the ISR; beyond the registered brokers, no."""
    cluster.start(1, 2)
    cluster.controller.create_topic("foo", 1, 2, {})
    clock.advance(SESSION_MS + 1)
    cluster.keep_alive(1)
    assert cluster.controller.fence_stale_brokers() == [2]
    cluster.controller.create_partitions("foo", 2)
    added = cluster.partition("foo", 1)
    assert (added.replicas, added.leader, added.isr) == ((1, 2), 1, (1,))
    code = _error(lambda: cluster.controller.create_partitions("foo", 3, [[1, 2, 3]]))
    assert code == INVALID_REPLICA_ASSIGNMENT
    created = cluster.controller.create_topic("wide", 1, 3, {})
    assert created.error_code == INVALID_REPLICATION_FACTOR


# -- fencing and elections ----------------------------------------------------------------------
def test_a_silent_broker_is_fenced_at_session_expiry_with_new_leaders_in_one_batch(cluster, clock):
    cluster.start(1, 2, 3)
    cluster.controller.create_topic("foo", -1, -1, {}, assignments={0: [1, 2, 3], 1: [2, 1, 3]})
    cluster.controller.create_topic("bar", -1, -1, {}, assignments={0: [3, 2]})
    clock.advance(SESSION_MS // 2)
    cluster.keep_alive(2, 3)
    clock.advance(SESSION_MS // 2)  # exactly the timeout since broker 1's last heartbeat
    assert cluster.controller.fence_stale_brokers() == []
    clock.advance(1)
    end = cluster.log.end_offset
    assert cluster.controller.fence_stale_brokers() == [1]
    assert cluster.image.brokers[1].fenced
    led = cluster.partition("foo", 0)  # broker 1 led: the next replica in the ISR leads
    assert (led.leader, led.isr, led.leader_epoch, led.partition_epoch) == (2, (2, 3), 1, 1)
    followed = cluster.partition("foo", 1)  # broker 1 followed: an ISR shrink, same leader epoch
    assert (followed.leader, followed.isr, followed.leader_epoch) == (2, (2, 3), 0)
    assert followed.partition_epoch == 1
    untouched = cluster.partition("bar", 0)
    assert (untouched.isr, untouched.partition_epoch) == ((3, 2), 0)
    # the ISR changes, the elections and the fencing are one batch: brokers see them at once
    batch = cluster.last_batch()
    assert [type(r) for r in batch] == [
        PartitionChangeRecord,
        PartitionChangeRecord,
        BrokerRegistrationChangeRecord,
    ]
    assert batch[-1].fenced == 1 and batch[-1].broker_epoch == cluster.epochs[1]
    assert cluster.log.end_offset == end + 3
    assert cluster.controller.fence_stale_brokers() == []  # already fenced: nothing more
    assert cluster.log.end_offset == end + 3


def test_heartbeats_keep_a_broker_unfenced(cluster, clock):
    cluster.start(1)
    for _ in range(5):
        clock.advance(SESSION_MS)
        cluster.keep_alive(1)
        assert cluster.controller.fence_stale_brokers() == []
    assert cluster.image.brokers[1].active


def _fence_by_expiry(cluster: Cluster, clock: Clock, broker_id: int, alive: list[int]) -> None:
    clock.advance(SESSION_MS + 1)
    cluster.keep_alive(*alive)
    assert cluster.controller.fence_stale_brokers() == [broker_id]


def _only_1_in_isr(cluster: Cluster, configs: dict[str, str]) -> None:
    """foo-0 on brokers 1 and 2, led by 1 with broker 2 out of the ISR."""
    cluster.start(1, 2)
    cluster.controller.create_topic("foo", -1, -1, configs, assignments={0: [1, 2]})
    assert cluster.alter_isr(1, "foo", 0, [1]).error_code == NONE
    assert cluster.partition("foo").isr == (1,)


def test_the_last_isr_member_fenced_leaves_the_partition_leaderless_with_its_isr(cluster, clock):
    _only_1_in_isr(cluster, {})
    _fence_by_expiry(cluster, clock, 1, alive=[2])
    foo = cluster.partition("foo")
    assert (foo.leader, foo.isr, foo.leader_epoch, foo.partition_epoch) == (NO_LEADER, (1,), 1, 2)
    # broker 2, active but not in the ISR, is not elected
    clock.advance(SESSION_MS)
    cluster.keep_alive(2)
    assert cluster.controller.fence_stale_brokers() == []
    assert cluster.partition("foo").leader == NO_LEADER
    # broker 1 comes back: unfenced, it leads again with everything it had
    cluster.register(1, new_process=True)
    result = cluster.heartbeat(1)
    assert not result.is_fenced
    foo = cluster.partition("foo")
    assert (foo.leader, foo.isr, foo.leader_epoch) == (1, (1,), 2)
    assert foo.leader_recovery_state == RECOVERED


def test_unclean_election_enabled_for_the_topic_elects_a_stale_replica(cluster, clock):
    _only_1_in_isr(cluster, {"unclean.leader.election.enable": "true"})
    _fence_by_expiry(cluster, clock, 1, alive=[2])
    foo = cluster.partition("foo")
    assert (foo.leader, foo.isr, foo.leader_epoch) == (2, (2,), 1)
    assert foo.leader_recovery_state == RECOVERING
    # only a lone leader may be RECOVERING
    invalid = cluster.alter_isr(2, "foo", 0, [1, 2], recovery=RECOVERING)
    assert invalid.error_code == INVALID_REQUEST
    # the new leader, recovered, says so with its next ISR change
    result = cluster.alter_isr(2, "foo", 0, [2], recovery=RECOVERED)
    assert (result.error_code, result.leader_recovery_state) == (NONE, RECOVERED)
    assert cluster.partition("foo").leader_recovery_state == RECOVERED


def test_unclean_election_when_a_stale_replica_returns(cluster, clock):
    _only_1_in_isr(cluster, {"unclean.leader.election.enable": "true"})
    _fence_by_expiry(cluster, clock, 2, alive=[1])
    _fence_by_expiry(cluster, clock, 1, alive=[])
    assert cluster.partition("foo").leader == NO_LEADER  # nobody to elect, clean or not
    cluster.register(2, new_process=True)
    cluster.heartbeat(2)
    foo = cluster.partition("foo")
    assert (foo.leader, foo.isr, foo.leader_recovery_state) == (2, (2,), RECOVERING)


def test_the_unclean_setting_stays_off_by_default(cluster, clock):
    _only_1_in_isr(cluster, {"unclean.leader.election.enable": "false"})
    _fence_by_expiry(cluster, clock, 1, alive=[2])
    assert cluster.partition("foo").leader == NO_LEADER


# -- controlled shutdown ------------------------------------------------------------------------
def test_controlled_shutdown_moves_leaderships_then_waits_for_the_other_brokers(cluster):
    cluster.start(1, 2, 3)
    cluster.controller.create_topic("foo", -1, -1, {}, assignments={0: [1, 2, 3], 1: [2, 1, 3]})
    first = cluster.heartbeat(1, want_shut_down=True)
    assert (first.is_fenced, first.should_shut_down) == (False, False)
    broker = cluster.image.brokers[1]
    assert broker.in_controlled_shutdown and not broker.fenced and not broker.active
    shutdown_offset = cluster.offset  # the last record of the controlled-shutdown batch
    led = cluster.partition("foo", 0)
    assert (led.leader, led.isr, led.leader_epoch) == (2, (2, 3), 1)
    followed = cluster.partition("foo", 1)
    assert (followed.leader, followed.isr, followed.leader_epoch) == (2, (2, 3), 0)
    assert all(1 not in r.isr for r in cluster.image.topics["foo"].partitions.values())
    # not before every other active broker has seen the shutdown records
    assert not cluster.heartbeat(1, want_shut_down=True).should_shut_down
    cluster.heartbeat(2, offset=shutdown_offset)
    cluster.heartbeat(3, offset=shutdown_offset - 1)
    assert not cluster.heartbeat(1, want_shut_down=True).should_shut_down
    cluster.heartbeat(3, offset=shutdown_offset)
    done = cluster.heartbeat(1, want_shut_down=True)
    assert (done.should_shut_down, done.is_fenced) == (True, True)
    assert cluster.image.brokers[1].fenced
    assert cluster.partition("foo", 0).leader == 2


def test_controlled_shutdown_of_the_last_isr_member_leaves_no_leader(cluster):
    cluster.start(1, 2)
    cluster.controller.create_topic("foo", -1, -1, {}, assignments={0: [1, 2]})
    assert cluster.alter_isr(1, "foo", 0, [1]).error_code == NONE
    cluster.heartbeat(1, want_shut_down=True)
    foo = cluster.partition("foo")
    assert (foo.leader, foo.isr) == (NO_LEADER, (1,))
    cluster.heartbeat(2)
    assert cluster.heartbeat(1, want_shut_down=True).should_shut_down


def test_a_broker_leading_nothing_shuts_down_at_once(cluster):
    cluster.start(1, 2)
    cluster.controller.create_topic("foo", -1, -1, {}, assignments={0: [1, 2]})
    result = cluster.heartbeat(2, want_shut_down=True)
    assert (result.should_shut_down, result.is_fenced) == (True, True)
    assert cluster.image.brokers[2].fenced
    assert cluster.partition("foo").isr == (1,)


def test_a_broker_in_controlled_shutdown_is_no_isr_candidate(cluster):
    cluster.start(1, 2, 3)
    cluster.controller.create_topic("foo", -1, -1, {}, assignments={0: [1, 2, 3], 1: [3, 1, 2]})
    cluster.heartbeat(3, want_shut_down=True)  # it leads foo-1, so it waits for the others
    assert cluster.image.brokers[3].in_controlled_shutdown and not cluster.image.brokers[3].fenced
    result = cluster.alter_isr(1, "foo", 0, [1, 2, 3])
    assert result.error_code == INELIGIBLE_REPLICA


# -- AlterPartition -----------------------------------------------------------------------------
@pytest.fixture
def led_by_2(cluster) -> Cluster:
    """foo-0 on [1, 2, 3], led by 2 in leader epoch 1 after broker 1 was fenced, partition
    epoch 1, ISR [2, 3], broker 1 unfenced again but not back in the ISR."""
    cluster.start(1, 2, 3)
    cluster.controller.create_topic("foo", -1, -1, {}, assignments={0: [1, 2, 3]})
    cluster.heartbeat(1, want_fence=True)
    cluster.heartbeat(1)
    assert cluster.image.brokers[1].active
    foo = cluster.partition("foo")
    assert (foo.leader, foo.leader_epoch, foo.partition_epoch, foo.isr) == (2, 1, 1, (2, 3))
    return cluster


@pytest.mark.parametrize(
    ("broker", "leader_epoch", "partition_epoch", "isr", "code"),
    [
        pytest.param(2, 0, 1, [2, 3], FENCED_LEADER_EPOCH, id="old-leader-epoch"),
        pytest.param(2, 2, 1, [2, 3], NOT_CONTROLLER, id="future-leader-epoch"),
        pytest.param(2, 1, 2, [2, 3], NOT_CONTROLLER, id="future-partition-epoch"),
        pytest.param(3, 1, 1, [2, 3], INVALID_REQUEST, id="not-the-leader"),
        pytest.param(2, 1, 0, [1, 2, 3], INVALID_UPDATE_VERSION, id="old-partition-epoch"),
        pytest.param(2, 1, 1, [2, 3, 4], INVALID_REQUEST, id="isr-outside-the-replicas"),
        pytest.param(2, 1, 1, [3], INVALID_REQUEST, id="isr-without-the-leader"),
        pytest.param(2, 1, 1, [2, 3, 3], INVALID_REQUEST, id="isr-with-a-duplicate"),
    ],
)
def test_alter_partition_errors(led_by_2, broker, leader_epoch, partition_epoch, isr, code):
    end = led_by_2.log.end_offset
    result = led_by_2.alter_isr(broker, "foo", 0, isr, leader_epoch, partition_epoch)
    assert result.error_code == code
    assert led_by_2.log.end_offset == end
    assert led_by_2.partition("foo").isr == (2, 3)


def test_alter_partition_unknown_topic_or_partition_and_stale_broker_epoch(led_by_2):
    controller = led_by_2.controller
    epoch = led_by_2.epochs[2]
    assert controller.alter_partition(2, epoch, None, 0, 1, 1, [2], 0).error_code == (
        UNKNOWN_TOPIC_ID
    )
    foo = led_by_2.image.topics["foo"]
    assert controller.alter_partition(2, epoch, foo, 5, 1, 1, [2], 0).error_code == (
        UNKNOWN_TOPIC_OR_PARTITION
    )
    code = _error(lambda: controller.alter_partition(2, epoch - 1, foo, 0, 1, 1, [2], 0))
    assert code == STALE_BROKER_EPOCH


def test_alter_partition_adding_a_fenced_broker_is_refused(led_by_2):
    led_by_2.heartbeat(1, want_fence=True)
    assert led_by_2.image.brokers[1].fenced
    result = led_by_2.alter_isr(2, "foo", 0, [1, 2, 3])
    assert result.error_code == INELIGIBLE_REPLICA
    assert led_by_2.partition("foo").isr == (2, 3)


def test_alter_partition_expands_and_shrinks_the_isr(led_by_2):
    result = led_by_2.alter_isr(2, "foo", 0, [3, 2, 1])
    assert result.error_code == NONE
    foo = led_by_2.partition("foo")
    assert sorted(foo.isr) == [1, 2, 3]
    assert (foo.leader, foo.leader_epoch, foo.partition_epoch) == (2, 1, 2)
    assert (result.leader, result.leader_epoch, result.partition_epoch) == (2, 1, 2)
    assert sorted(result.isr) == [1, 2, 3] and result.leader_recovery_state == RECOVERED
    shrunk = led_by_2.alter_isr(2, "foo", 0, [2])
    assert (shrunk.error_code, shrunk.isr, shrunk.leader_epoch, shrunk.partition_epoch) == (
        NONE,
        [2],
        1,
        3,
    )


def test_alter_partition_to_the_same_isr_writes_nothing(led_by_2):
    end = led_by_2.log.end_offset
    result = led_by_2.alter_isr(2, "foo", 0, [3, 2])
    assert (result.error_code, result.partition_epoch, sorted(result.isr)) == (NONE, 1, [2, 3])
    assert led_by_2.log.end_offset == end


def test_alter_partition_is_judged_on_the_current_partition_not_the_callers_copy(led_by_2):
    before = led_by_2.image.topics["foo"]
    assert led_by_2.alter_isr(2, "foo", 0, [1, 2, 3]).error_code == NONE
    # a second request built from the same (now old) partition epoch is stale
    stale = led_by_2.alter_isr(2, "foo", 0, [2], 1, 1, topic_image=before)
    assert stale.error_code == INVALID_UPDATE_VERSION
    assert sorted(led_by_2.partition("foo").isr) == [1, 2, 3]


def test_alter_partition_leader_recovery_state_rules(led_by_2):
    # a recovered partition cannot go back to RECOVERING
    assert led_by_2.alter_isr(2, "foo", 0, [2], recovery=RECOVERING).error_code == INVALID_REQUEST
    assert led_by_2.partition("foo").leader_recovery_state == RECOVERED


# -- producer ids -------------------------------------------------------------------------------
def test_producer_id_blocks_are_consecutive_and_survive_a_restart(cluster):
    cluster.start(1, 2)
    allocate = cluster.controller.allocate_producer_ids
    assert allocate(1, cluster.epochs[1]) == (0, PRODUCER_ID_BLOCK_SIZE)
    assert allocate(2, cluster.epochs[2]) == (1000, 1000)
    assert allocate(1, cluster.epochs[1]) == (2000, 1000)
    assert _error(lambda: allocate(1, cluster.epochs[1] - 1)) == STALE_BROKER_EPOCH
    cluster.restart()
    assert cluster.image.next_producer_id == 3000
    assert cluster.controller.allocate_producer_ids(2, cluster.epochs[2]) == (3000, 1000)


# -- restart ------------------------------------------------------------------------------------
def test_a_restarted_controller_keeps_topics_and_brokers_in_a_new_epoch(cluster, clock):
    cluster.start(1, 2, racks={1: "a", 2: "b"})
    cluster.register(3)  # still fenced
    cluster.controller.create_topic("foo", 4, 2, {"retention.ms": "7"})
    cluster.controller.create_topic("bar", 1, 1, {})
    cluster.controller.delete_topic("bar")
    before = cluster.image
    assert cluster.log.epoch == 1
    cluster.restart()
    after = cluster.image
    assert cluster.log.epoch == 2
    assert dict(after.brokers) == dict(before.brokers)
    assert dict(after.topics) == dict(before.topics)
    assert after.topic_configs("foo") == {"retention.ms": "7"}
    assert after.offset == before.offset
    # written once, on the first start only
    assert sum(isinstance(r, FeatureLevelRecord) for r in cluster.records()) == 1
    # the brokers carry on with the epochs they had
    assert not cluster.heartbeat(1).is_fenced
    assert not cluster.heartbeat(3).is_fenced
    # every registered broker gets a full session from the new controller, then is fenced
    clock.advance(SESSION_MS)
    cluster.keep_alive(1, 3)
    assert cluster.controller.fence_stale_brokers() == []
    clock.advance(1)
    assert cluster.controller.fence_stale_brokers() == [2]
    # and new writes go on after the old ones
    created = cluster.controller.create_topic("baz", 1, 1, {})
    assert created.error_code == NONE
    assert cluster.image.offset > after.offset
