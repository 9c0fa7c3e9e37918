"""The controller's replica admin, over a real MetadataLog with a clock the tests move, judged by
Kafka's rules (ReplicationControlManager.electLeaders, alterPartitionReassignments,
listPartitionReassignments; PartitionReassignmentReplicas and PartitionChangeBuilder for how a
reassignment runs and completes; KafkaRaftClient for DescribeQuorum): preferred and unclean
elections, KIP-455 reassignments (started, completed by an ISR expansion or at once, cancelled),
their listing, and the quorum as DescribeQuorum describes it; then the same through ControllerApis
with kafka-python's request and response classes."""

from collections.abc import Iterator

import pytest
from kafka.protocol.api_message import ApiMessage

from engine.broker.request_context import RequestContext
from engine.controller.controller_apis import ControllerApis
from engine.controller.quorum_controller import (
    OBSERVER_SESSION_TIMEOUT_MS,
    PREFERRED_ELECTION,
    UNCLEAN_ELECTION,
    ControllerError,
    OngoingReassignment,
    PartitionResult,
    QuorumReplica,
)
from engine.errors import (
    ELECTION_NOT_NEEDED,
    ELIGIBLE_LEADERS_NOT_AVAILABLE,
    FENCED_LEADER_EPOCH,
    INVALID_REPLICA_ASSIGNMENT,
    INVALID_REQUEST,
    NEW_LEADER_ELECTED,
    NO_REASSIGNMENT_IN_PROGRESS,
    NONE,
    PREFERRED_LEADER_NOT_AVAILABLE,
    UNKNOWN_TOPIC_OR_PARTITION,
)
from engine.metadata.image import NO_LEADER, RECOVERED, RECOVERING
from engine.metadata.records import PartitionChangeRecord
from engine.protocol.apis import CONTROLLER_APIS, ApiKeys
from engine.protocol.codec import decode_request
from engine.protocol.kraft_messages import AlterPartitionRequest
from tests.test_quorum_controller import CONTROLLER_ID, Clock, Cluster


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def cluster(tmp_path, clock) -> Iterator[Cluster]:
    cluster = Cluster(str(tmp_path), clock)
    yield cluster
    cluster.close()


def _topic(cluster: Cluster, name: str, assignments: dict[int, list[int]], **configs: str):
    created = cluster.controller.create_topic(
        name, -1, -1, {k.replace("_", "."): v for k, v in configs.items()}, assignments
    )
    assert created.error_code == NONE, created.message


def _fence(cluster: Cluster, broker_id: int) -> None:
    cluster.heartbeat(broker_id, want_fence=True)
    assert cluster.image.brokers[broker_id].fenced


def _return(cluster: Cluster, broker_id: int) -> None:
    """A fenced broker's new process registers and is unfenced once caught up."""
    cluster.register(broker_id, new_process=True)
    assert not cluster.heartbeat(broker_id).is_fenced


def _elect(cluster: Cluster, kind: int, wanted) -> dict[str, list[tuple[int, int]]]:
    results = cluster.controller.elect_leaders(kind, wanted)
    return {topic: [(r.partition, r.error_code) for r in rs] for topic, rs in results.items()}


def _reassign(cluster: Cluster, topic: str, *targets) -> list[tuple[int, int]]:
    [(name, results)] = cluster.controller.alter_partition_reassignments([(topic, list(targets))])
    assert name == topic
    return [(r.partition, r.error_code) for r in results]


def _listed(cluster: Cluster, wanted=None) -> dict[str, list[OngoingReassignment]]:
    return dict(cluster.controller.list_partition_reassignments(wanted))


def _state(cluster: Cluster, topic: str, index: int = 0):
    p = cluster.partition(topic, index)
    return {
        "replicas": list(p.replicas),
        "isr": sorted(p.isr),
        "leader": p.leader,
        "adding": list(p.adding_replicas),
        "removing": list(p.removing_replicas),
    }


# -- ElectLeaders -------------------------------------------------------------------------------
@pytest.fixture
def preferred_away(cluster) -> Cluster:
    """foo-0 on [1, 2, 3] led by 2 (leader epoch 1) after broker 1 was fenced; broker 1 is back
    and, once its leader adds it, in the ISR again; foo-1 on [2, 3, 1] is led by its preferred
    replica 2 all along."""
    cluster.start(1, 2, 3)
    _topic(cluster, "foo", {0: [1, 2, 3], 1: [2, 3, 1]})
    _fence(cluster, 1)
    _return(cluster, 1)
    assert cluster.alter_isr(2, "foo", 0, [1, 2, 3]).error_code == NONE
    assert (cluster.partition("foo").leader, cluster.partition("foo").leader_epoch) == (2, 1)
    return cluster


def test_a_preferred_election_moves_leadership_back_to_the_first_replica(preferred_away):
    cluster = preferred_away
    before = cluster.partition("foo")
    assert _elect(cluster, PREFERRED_ELECTION, {"foo": [0, 1]}) == {
        "foo": [(0, NONE), (1, ELECTION_NOT_NEEDED)]
    }
    after = cluster.partition("foo")
    assert after.leader == 1
    assert after.leader_epoch == before.leader_epoch + 1
    assert after.partition_epoch == before.partition_epoch + 1
    assert after.isr == before.isr
    [record] = cluster.last_batch()
    assert isinstance(record, PartitionChangeRecord)
    assert (record.partition_id, record.leader, record.isr) == (0, 1, None)
    # done: a second election is not needed, and writes nothing
    end = cluster.log.end_offset
    assert _elect(cluster, PREFERRED_ELECTION, {"foo": [0]}) == {"foo": [(0, ELECTION_NOT_NEEDED)]}
    assert cluster.log.end_offset == end


def test_a_preferred_replica_out_of_the_isr_or_fenced_is_not_available(cluster):
    cluster.start(1, 2, 3)
    _topic(cluster, "foo", {0: [1, 2, 3]})
    _fence(cluster, 1)
    end = cluster.log.end_offset
    assert _elect(cluster, PREFERRED_ELECTION, {"foo": [0]}) == {
        "foo": [(0, PREFERRED_LEADER_NOT_AVAILABLE)]
    }
    assert cluster.log.end_offset == end
    _return(cluster, 1)  # active again, but not yet back in the ISR
    end = cluster.log.end_offset
    assert _elect(cluster, PREFERRED_ELECTION, {"foo": [0]}) == {
        "foo": [(0, PREFERRED_LEADER_NOT_AVAILABLE)]
    }
    assert cluster.log.end_offset == end
    assert cluster.partition("foo").leader == 2


def test_unknown_topics_and_partitions(cluster):
    cluster.start(1)
    _topic(cluster, "foo", {0: [1]})
    end = cluster.log.end_offset
    for kind in (PREFERRED_ELECTION, UNCLEAN_ELECTION):
        assert _elect(cluster, kind, {"foo": [0, 7], "nope": [0]}) == {
            "foo": [(0, ELECTION_NOT_NEEDED), (7, UNKNOWN_TOPIC_OR_PARTITION)],
            "nope": [(0, UNKNOWN_TOPIC_OR_PARTITION)],
        }
    assert cluster.log.end_offset == end


def test_every_partition_leaves_out_those_whose_election_is_not_needed(preferred_away):
    cluster = preferred_away
    _topic(cluster, "bar", {0: [3, 1]})
    assert _elect(cluster, PREFERRED_ELECTION, None) == {"bar": [], "foo": [(0, NONE)]}
    assert cluster.partition("foo").leader == 1
    assert _elect(cluster, PREFERRED_ELECTION, None) == {"bar": [], "foo": []}


def test_a_partition_named_twice_is_elected_once(preferred_away):
    cluster = preferred_away
    epoch = cluster.partition("foo").leader_epoch
    assert _elect(cluster, PREFERRED_ELECTION, {"foo": [0, 0]}) == {
        "foo": [(0, NONE), (0, ELECTION_NOT_NEEDED)]
    }
    assert cluster.partition("foo").leader_epoch == epoch + 1
    assert len(cluster.last_batch()) == 1


def test_an_unclean_election_elects_a_replica_out_of_the_isr(cluster):
    """The topic does not enable unclean election; asking for one does it all the same."""
    cluster.start(1, 2)
    _topic(cluster, "foo", {0: [1, 2]})
    assert cluster.alter_isr(1, "foo", 0, [1]).error_code == NONE
    _fence(cluster, 1)
    foo = cluster.partition("foo")
    assert (foo.leader, foo.isr) == (NO_LEADER, (1,))
    assert _elect(cluster, UNCLEAN_ELECTION, {"foo": [0]}) == {"foo": [(0, NONE)]}
    foo = cluster.partition("foo")
    assert (foo.leader, foo.isr, foo.leader_recovery_state) == (2, (2,), RECOVERING)
    # it has a leader now
    assert _elect(cluster, UNCLEAN_ELECTION, {"foo": [0]}) == {"foo": [(0, ELECTION_NOT_NEEDED)]}


def test_an_unclean_election_with_no_live_replica_is_not_possible(cluster):
    cluster.start(1, 2)
    _topic(cluster, "foo", {0: [1, 2]})
    _fence(cluster, 2)
    _fence(cluster, 1)
    assert cluster.partition("foo").leader == NO_LEADER
    end = cluster.log.end_offset
    assert _elect(cluster, UNCLEAN_ELECTION, {"foo": [0]}) == {
        "foo": [(0, ELIGIBLE_LEADERS_NOT_AVAILABLE)]
    }
    assert cluster.log.end_offset == end


def test_an_unknown_election_type_is_an_invalid_request(cluster):
    with pytest.raises(ControllerError) as info:
        cluster.controller.elect_leaders(2, None)
    assert info.value.error_code == INVALID_REQUEST


# -- AlterPartitionReassignments ----------------------------------------------------------------
@pytest.fixture
def moving(cluster) -> Cluster:
    """foo-0 on [1, 2, 3] (ISR all, led by 1) being moved to [2, 3, 4]."""
    cluster.start(1, 2, 3, 4)
    _topic(cluster, "foo", {0: [1, 2, 3], 1: [1, 2, 3]})
    assert _reassign(cluster, "foo", (0, [2, 3, 4])) == [(0, NONE)]
    return cluster


def test_a_reassignment_adds_the_target_replicas_first(moving):
    """Kafka's order: the target, then the replicas leaving; the leader and its epoch stay (no
    replica left yet), the ISR is untouched."""
    foo = moving.partition("foo")
    assert _state(moving, "foo") == {
        "replicas": [2, 3, 4, 1],
        "isr": [1, 2, 3],
        "leader": 1,
        "adding": [4],
        "removing": [1],
    }
    assert (foo.leader_epoch, foo.partition_epoch) == (0, 1)
    assert _listed(moving) == {
        "foo": [OngoingReassignment(0, [2, 3, 4, 1], adding=[4], removing=[1])]
    }


def test_the_isr_expansion_that_takes_in_every_target_replica_completes_it(moving):
    """Leader 1 is leaving: the completion elects 2 (the first target replica in the ISR), and
    the leader that asked is told NEW_LEADER_ELECTED."""
    result = moving.alter_isr(1, "foo", 0, [1, 2, 3, 4])
    assert result.error_code == NEW_LEADER_ELECTED
    foo = moving.partition("foo")
    assert _state(moving, "foo") == {
        "replicas": [2, 3, 4],
        "isr": [2, 3, 4],
        "leader": 2,
        "adding": [],
        "removing": [],
    }
    assert (foo.leader_epoch, foo.partition_epoch) == (1, 2)
    assert _listed(moving) == {}
    [record] = moving.last_batch()
    assert (record.replicas, record.adding_replicas, record.removing_replicas) == (
        [2, 3, 4],
        [],
        [],
    )


def test_an_expansion_short_of_the_target_does_not_complete_it(cluster):
    cluster.start(1, 2, 3, 4, 5)
    _topic(cluster, "foo", {0: [1, 2, 3]})
    assert _reassign(cluster, "foo", (0, [3, 4, 5])) == [(0, NONE)]
    assert cluster.alter_isr(1, "foo", 0, [1, 2, 3, 4]).error_code == NONE
    assert _state(cluster, "foo") == {
        "replicas": [3, 4, 5, 1, 2],
        "isr": [1, 2, 3, 4],
        "leader": 1,
        "adding": [4, 5],
        "removing": [1, 2],
    }
    assert cluster.alter_isr(1, "foo", 0, [1, 2, 3, 4, 5]).error_code == NEW_LEADER_ELECTED
    assert _state(cluster, "foo")["replicas"] == [3, 4, 5]
    assert cluster.partition("foo").leader == 3


def test_a_leader_that_stays_gets_a_new_epoch_when_replicas_leave(cluster):
    cluster.start(1, 2, 3, 4)
    _topic(cluster, "foo", {0: [1, 2, 3]})
    assert _reassign(cluster, "foo", (0, [1, 2, 4])) == [(0, NONE)]
    assert _state(cluster, "foo")["replicas"] == [1, 2, 4, 3]
    result = cluster.alter_isr(1, "foo", 0, [1, 2, 3, 4])
    assert result.error_code == NONE
    foo = cluster.partition("foo")
    assert (list(foo.replicas), sorted(foo.isr), foo.leader, foo.leader_epoch) == (
        [1, 2, 4],
        [1, 2, 4],
        1,
        1,
    )
    assert (result.leader, result.leader_epoch, sorted(result.isr)) == (1, 1, [1, 2, 4])


def test_a_target_already_in_the_isr_completes_at_once(cluster):
    cluster.start(1, 2, 3)
    _topic(cluster, "foo", {0: [1, 2, 3]})
    assert _reassign(cluster, "foo", (0, [3, 2])) == [(0, NONE)]
    foo = cluster.partition("foo")
    assert _state(cluster, "foo") == {
        "replicas": [3, 2],
        "isr": [2, 3],
        "leader": 3,
        "adding": [],
        "removing": [],
    }
    assert foo.leader_epoch == 1
    assert _listed(cluster) == {}
    assert len(cluster.last_batch()) == 1


def test_reordering_the_replicas_keeps_the_leader_until_a_preferred_election(cluster):
    cluster.start(1, 2, 3)
    _topic(cluster, "foo", {0: [1, 2, 3]})
    assert _reassign(cluster, "foo", (0, [3, 1, 2])) == [(0, NONE)]
    foo = cluster.partition("foo")
    assert (list(foo.replicas), foo.leader, foo.leader_epoch, foo.partition_epoch) == (
        [3, 1, 2],
        1,
        0,
        1,
    )
    assert _elect(cluster, PREFERRED_ELECTION, {"foo": [0]}) == {"foo": [(0, NONE)]}
    assert cluster.partition("foo").leader == 3


def test_the_current_replicas_as_target_change_nothing(cluster):
    cluster.start(1, 2)
    _topic(cluster, "foo", {0: [1, 2]})
    end = cluster.log.end_offset
    assert _reassign(cluster, "foo", (0, [1, 2])) == [(0, NONE)]
    assert cluster.log.end_offset == end


@pytest.mark.parametrize(
    ("target", "code"),
    [
        pytest.param([], INVALID_REPLICA_ASSIGNMENT, id="empty"),
        pytest.param([1, 9], INVALID_REPLICA_ASSIGNMENT, id="unregistered-broker"),
        pytest.param([1, 2, 1], INVALID_REPLICA_ASSIGNMENT, id="duplicate"),
        pytest.param(None, NO_REASSIGNMENT_IN_PROGRESS, id="cancel-without-one"),
    ],
)
def test_refused_reassignments_write_nothing(cluster, target, code):
    cluster.start(1, 2, 3)
    _topic(cluster, "foo", {0: [1, 2]})
    end = cluster.log.end_offset
    assert _reassign(cluster, "foo", (0, target)) == [(0, code)]
    assert cluster.log.end_offset == end
    assert _state(cluster, "foo")["replicas"] == [1, 2]


def test_unknown_topics_and_partitions_beside_a_valid_move_in_one_batch(cluster):
    cluster.start(1, 2, 3)
    _topic(cluster, "foo", {0: [1, 2], 1: [2, 3]})
    results = cluster.controller.alter_partition_reassignments(
        [("foo", [(0, [1, 3]), (5, [1, 2]), (1, [3, 9])]), ("nope", [(0, [1])])]
    )
    assert [(name, [(r.partition, r.error_code) for r in rs]) for name, rs in results] == [
        ("foo", [(0, NONE), (5, UNKNOWN_TOPIC_OR_PARTITION), (1, INVALID_REPLICA_ASSIGNMENT)]),
        ("nope", [(0, UNKNOWN_TOPIC_OR_PARTITION)]),
    ]
    assert all(r.message for _, rs in results for r in rs if r.error_code != NONE)
    [record] = cluster.last_batch()
    assert (record.partition_id, record.replicas) == (0, [1, 3, 2])
    assert _state(cluster, "foo", 1)["replicas"] == [2, 3]


def test_cancelling_returns_to_the_original_replicas(moving):
    """Kafka's PartitionReassignmentRevert: the replicas without the adding ones, in the order
    the reassignment gave them (the target's first), and the ISR without them."""
    assert moving.alter_isr(1, "foo", 0, [1, 2]).error_code == NONE  # 3 fell behind meanwhile
    assert _reassign(moving, "foo", (0, None)) == [(0, NONE)]
    foo = moving.partition("foo")
    assert _state(moving, "foo") == {
        "replicas": [2, 3, 1],
        "isr": [1, 2],
        "leader": 1,
        "adding": [],
        "removing": [],
    }
    assert foo.leader_epoch == 1  # broker 4 left the replicas
    assert _listed(moving) == {}
    assert _reassign(moving, "foo", (0, None)) == [(0, NO_REASSIGNMENT_IN_PROGRESS)]


def test_cancelling_takes_the_adding_replicas_out_of_the_isr_and_leadership(cluster):
    cluster.start(1, 2, 3, 4)
    _topic(cluster, "foo", {0: [1, 2]})
    assert _reassign(cluster, "foo", (0, [3, 4])) == [(0, NONE)]
    assert cluster.alter_isr(1, "foo", 0, [1, 2, 3]).error_code == NONE
    _fence(cluster, 1)  # 3 leads: the first replica, in the new order, in the ISR
    assert cluster.partition("foo").leader == 3
    assert _reassign(cluster, "foo", (0, None)) == [(0, NONE)]
    assert _state(cluster, "foo") == {
        "replicas": [1, 2],
        "isr": [2],
        "leader": 2,
        "adding": [],
        "removing": [],
    }


@pytest.mark.parametrize("unclean", ["false", "true"])
def test_cancelling_when_only_adding_replicas_are_in_sync_needs_unclean_election(cluster, unclean):
    cluster.start(1, 2, 3, 4)
    _topic(cluster, "foo", {0: [1, 2]}, unclean_leader_election_enable=unclean)
    assert _reassign(cluster, "foo", (0, [3, 4])) == [(0, NONE)]
    assert cluster.alter_isr(1, "foo", 0, [1, 2, 3]).error_code == NONE
    _fence(cluster, 1)
    _fence(cluster, 2)
    _return(cluster, 2)
    assert _state(cluster, "foo")["isr"] == [3] and cluster.partition("foo").leader == 3
    if unclean == "false":
        assert _reassign(cluster, "foo", (0, None)) == [(0, INVALID_REPLICA_ASSIGNMENT)]
        assert _state(cluster, "foo")["adding"] == [3, 4]
        return
    assert _reassign(cluster, "foo", (0, None)) == [(0, NONE)]
    foo = cluster.partition("foo")
    # broker 1, the first original replica, is fenced: the first live one leads, unclean
    assert (list(foo.replicas), foo.isr, foo.leader) == ([1, 2], (2,), 2)
    assert foo.leader_recovery_state == RECOVERING


def test_a_fenced_adding_replica_does_not_block_a_cancel(moving):
    _fence(moving, 4)
    assert _reassign(moving, "foo", (0, None)) == [(0, NONE)]
    assert _state(moving, "foo")["replicas"] == [2, 3, 1]


def test_a_new_target_during_a_reassignment_starts_from_the_replicas_as_they_are(moving):
    """Kafka's rule: the current replicas (adding ones included) are what the new target is
    compared with; back to the original replicas, which are all in sync, it is done at once."""
    assert _reassign(moving, "foo", (0, [1, 2, 3])) == [(0, NONE)]
    assert _state(moving, "foo") == {
        "replicas": [1, 2, 3],
        "isr": [1, 2, 3],
        "leader": 1,
        "adding": [],
        "removing": [],
    }


def test_a_reassignment_in_progress_survives_a_controller_restart(moving):
    moving.restart()
    assert _listed(moving) == {
        "foo": [OngoingReassignment(0, [2, 3, 4, 1], adding=[4], removing=[1])]
    }
    assert moving.alter_isr(1, "foo", 0, [1, 2, 3, 4]).error_code == NEW_LEADER_ELECTED
    moving.restart()
    assert _state(moving, "foo")["replicas"] == [2, 3, 4]


# -- ListPartitionReassignments -----------------------------------------------------------------
def test_listing_named_partitions_leaves_out_the_rest(moving):
    _topic(moving, "bar", {0: [1]})
    assert _reassign(moving, "bar", (0, [2])) == [(0, NONE)]
    everything = _listed(moving)
    assert sorted(everything) == ["bar", "foo"]
    assert everything["bar"] == [OngoingReassignment(0, [2, 1], adding=[2], removing=[1])]
    assert _listed(moving, {"foo": [0, 1, 9], "nope": [0]}) == {"foo": everything["foo"]}
    assert _listed(moving, {"foo": [1]}) == {}


# -- DescribeQuorum -----------------------------------------------------------------------------
def test_the_quorum_is_this_controller_with_the_brokers_as_observers(cluster, clock):
    cluster.start(1, 2)
    quorum = cluster.controller.describe_quorum()
    end = cluster.log.end_offset
    assert (quorum.leader_id, quorum.leader_epoch, quorum.high_watermark) == (
        CONTROLLER_ID,
        1,
        end,
    )
    assert quorum.voters == [QuorumReplica(CONTROLLER_ID, end, clock.now, clock.now)]
    # what the brokers' heartbeats said they applied, until they fetch
    assert [(o.replica_id, o.log_end_offset, o.last_fetch_ms) for o in quorum.observers] == [
        (1, cluster.epochs[1] + 1, -1),
        (2, cluster.epochs[2] + 1, -1),
    ]
    cluster.restart()
    assert cluster.controller.describe_quorum().leader_epoch == 2


def test_observers_are_described_by_their_fetches(cluster, clock):
    cluster.start(1)
    controller = cluster.controller
    start = clock.now
    controller.replica_fetched(1, cluster.log.end_offset)  # at the end: caught up now
    _topic(cluster, "foo", {0: [1]})
    clock.advance(100)
    behind = cluster.log.end_offset - 1
    controller.replica_fetched(1, behind)  # behind the end: still caught up as of before
    [one] = controller.describe_quorum().observers
    assert (one.log_end_offset, one.last_fetch_ms, one.last_caught_up_ms) == (
        behind,
        start + 100,
        start,
    )
    clock.advance(100)
    controller.replica_fetched(1, behind + 1)  # everything the log had at its last fetch
    [one] = controller.describe_quorum().observers
    assert (one.log_end_offset, one.last_caught_up_ms) == (behind + 1, start + 200)
    # a replica that is not a registered broker, silent for too long, is no longer described
    controller.replica_fetched(77, 0)
    assert [o.replica_id for o in controller.describe_quorum().observers] == [1, 77]
    clock.advance(OBSERVER_SESSION_TIMEOUT_MS + 1)
    assert [o.replica_id for o in controller.describe_quorum().observers] == [1]


# -- through ControllerApis, with kafka-python's classes -------------------------------------------
def _exchange(apis: ControllerApis, api: ApiKeys, version: int, request: ApiMessage) -> ApiMessage:
    request.with_header(correlation_id=7, client_id="tests")
    header, decoded = decode_request(bytes(request.encode(header=True)), CONTROLLER_APIS)
    answers: list = []
    apis.handle(RequestContext(header, "127.0.0.1:1", "127.0.0.1:9093"), decoded, answers.append)
    [parts] = answers
    frame = b"".join(p if isinstance(p, bytes) else p.read() for p in parts)
    return CONTROLLER_APIS[api][1].decode(frame, version=version, header=True, framed=True)


@pytest.fixture
def apis(preferred_away, clock) -> ControllerApis:
    return ControllerApis(preferred_away.controller, preferred_away.log, clock)


@pytest.mark.parametrize("version", [0, 1, 2])
def test_elect_leaders_over_the_wire(apis, preferred_away, version):
    cls = CONTROLLER_APIS[ApiKeys.ELECT_LEADERS][0][version]
    request = cls(
        election_type=PREFERRED_ELECTION,
        topic_partitions=[cls.TopicPartitions(topic="foo", partitions=[0, 1, 4])],
        timeout_ms=1000,
    )
    response = _exchange(apis, ApiKeys.ELECT_LEADERS, version, request)
    [result] = response.replica_election_results
    assert result.topic == "foo"
    assert [(p.partition_id, p.error_code) for p in result.partition_result] == [
        (0, NONE),
        (1, ELECTION_NOT_NEEDED),
        (4, UNKNOWN_TOPIC_OR_PARTITION),
    ]
    assert preferred_away.partition("foo").leader == 1


def test_an_unknown_election_type_over_the_wire(apis):
    cls = CONTROLLER_APIS[ApiKeys.ELECT_LEADERS][0][2]
    request = cls(
        election_type=5,
        topic_partitions=[cls.TopicPartitions(topic="foo", partitions=[0])],
        timeout_ms=1000,
    )
    response = _exchange(apis, ApiKeys.ELECT_LEADERS, 2, request)
    assert response.error_code == INVALID_REQUEST
    [result] = response.replica_election_results
    assert [(p.partition_id, p.error_code) for p in result.partition_result] == [
        (0, INVALID_REQUEST)
    ]


def test_reassignments_over_the_wire(apis, preferred_away):
    cls = CONTROLLER_APIS[ApiKeys.ALTER_PARTITION_REASSIGNMENTS][0][0]
    topic = cls.ReassignableTopic
    request = cls(
        timeout_ms=1000,
        topics=[
            topic(
                name="foo",
                partitions=[
                    topic.ReassignablePartition(partition_index=0, replicas=[2, 3]),
                    topic.ReassignablePartition(partition_index=1, replicas=None),
                ],
            )
        ],
    )
    response = _exchange(apis, ApiKeys.ALTER_PARTITION_REASSIGNMENTS, 0, request)
    assert response.error_code == NONE
    [result] = response.responses
    assert [(p.partition_index, p.error_code) for p in result.partitions] == [
        (0, NONE),
        (1, NO_REASSIGNMENT_IN_PROGRESS),
    ]
    assert result.partitions[1].error_message
    assert list(preferred_away.partition("foo").replicas) == [2, 3]  # done at once: in sync

    preferred_away.start(4)
    assert _reassign(preferred_away, "foo", (1, [4, 3, 1])) == [(1, NONE)]
    cls = CONTROLLER_APIS[ApiKeys.LIST_PARTITION_REASSIGNMENTS][0][0]
    for topics in (None, [cls.ListPartitionReassignmentsTopics(name="foo", partition_indexes=[1])]):
        response = _exchange(
            apis, ApiKeys.LIST_PARTITION_REASSIGNMENTS, 0, cls(timeout_ms=1000, topics=topics)
        )
        [listed] = response.topics
        [ongoing] = listed.partitions
        assert (listed.name, ongoing.partition_index) == ("foo", 1)
        assert (ongoing.replicas, ongoing.adding_replicas, ongoing.removing_replicas) == (
            [4, 3, 1, 2],
            [4],
            [2],
        )


def test_new_leader_elected_is_fenced_leader_epoch_before_alter_partition_v2(cluster, clock):
    cluster.start(1, 2, 3, 4)
    _topic(cluster, "foo", {0: [1, 2, 3]})
    assert _reassign(cluster, "foo", (0, [2, 3, 4])) == [(0, NONE)]
    apis = ControllerApis(cluster.controller, cluster.log, clock)
    foo = cluster.partition("foo")
    request = AlterPartitionRequest(
        version=1,
        broker_id=1,
        broker_epoch=cluster.epochs[1],
        topics=[
            AlterPartitionRequest.TopicData(
                topic_name="foo",
                partitions=[
                    AlterPartitionRequest.TopicData.PartitionData(
                        partition_index=0,
                        leader_epoch=foo.leader_epoch,
                        new_isr=[1, 2, 3, 4],
                        leader_recovery_state=RECOVERED,
                        partition_epoch=foo.partition_epoch,
                    )
                ],
            )
        ],
    )
    response = _exchange(apis, ApiKeys.ALTER_PARTITION, 1, request)
    [topic] = response.topics
    [partition] = topic.partitions
    assert partition.error_code == FENCED_LEADER_EPOCH
    assert cluster.partition("foo").leader == 2


@pytest.mark.parametrize("version", [0, 1, 2])
def test_describe_quorum_over_the_wire(apis, preferred_away, clock, version):
    cls = CONTROLLER_APIS[ApiKeys.DESCRIBE_QUORUM][0][version]
    controller = preferred_away.controller
    controller.replica_fetched(2, preferred_away.log.end_offset)
    request = cls(
        topics=[
            cls.TopicData(
                topic_name="__cluster_metadata",
                partitions=[cls.TopicData.PartitionData(partition_index=0)],
            )
        ]
    )
    response = _exchange(apis, ApiKeys.DESCRIBE_QUORUM, version, request)
    assert response.error_code == NONE
    [topic] = response.topics
    [partition] = topic.partitions
    end = preferred_away.log.end_offset
    assert (partition.error_code, partition.leader_id, partition.leader_epoch) == (
        NONE,
        CONTROLLER_ID,
        preferred_away.log.epoch,
    )
    assert partition.high_watermark == end
    [voter] = partition.current_voters
    assert (voter.replica_id, voter.log_end_offset) == (CONTROLLER_ID, end)
    assert [(o.replica_id, o.log_end_offset) for o in partition.observers] == [
        (1, controller.broker_offsets[1] + 1),  # heartbeats only so far
        (2, end),  # fetched at the end
        (3, controller.broker_offsets[3] + 1),
    ]
    if version >= 1:
        assert voter.last_fetch_timestamp == clock.now
        assert partition.observers[1].last_caught_up_timestamp == clock.now
    if version >= 2:
        [node] = response.nodes
        [listener] = node.listeners
        assert (node.node_id, listener.name, listener.host, listener.port) == (
            CONTROLLER_ID,
            "CONTROLLER",
            "127.0.0.1",
            9093,
        )


def test_describe_quorum_of_another_partition_is_unknown(apis):
    cls = CONTROLLER_APIS[ApiKeys.DESCRIBE_QUORUM][0][2]
    request = cls(
        topics=[
            cls.TopicData(
                topic_name="foo", partitions=[cls.TopicData.PartitionData(partition_index=0)]
            )
        ]
    )
    response = _exchange(apis, ApiKeys.DESCRIBE_QUORUM, 2, request)
    [topic] = response.topics
    [partition] = topic.partitions
    assert (topic.topic_name, partition.error_code) == ("foo", UNKNOWN_TOPIC_OR_PARTITION)


def test_partition_results_carry_messages_for_errors_only(preferred_away):
    results = preferred_away.controller.elect_leaders(PREFERRED_ELECTION, {"foo": [0, 3]})
    assert results["foo"][0] == PartitionResult(0)
    assert results["foo"][1].error_code == UNKNOWN_TOPIC_OR_PARTITION and results["foo"][1].message
