"""MetadataDelta: metadata records replayed onto a ClusterImage with Kafka's rules
(PartitionRegistration.merge, ClusterDelta, TopicsDelta, ConfigurationsDelta,
TopicDelta.localChanges). Every record goes through records.py's batch encoding and back before
it is replayed, so the field names the replay reads are the schemas' names."""

import uuid

import pytest

from engine.common import TopicPartition
from engine.metadata.image import (
    CONFIG_RESOURCE_BROKER,
    CONFIG_RESOURCE_TOPIC,
    NO_LEADER,
    NO_LEADER_CHANGE,
    RECOVERED,
    RECOVERING,
    ClusterImage,
    MetadataDelta,
    MetadataError,
    PartitionRegistration,
)
from engine.metadata.records import (
    BrokerRegistrationChangeRecord,
    ConfigRecord,
    FeatureLevelRecord,
    FenceBrokerRecord,
    NoOpRecord,
    PartitionChangeRecord,
    PartitionRecord,
    ProducerIdsRecord,
    RegisterBrokerRecord,
    RemoveTopicRecord,
    TopicRecord,
    UnfenceBrokerRecord,
    UnregisterBrokerRecord,
    build_metadata_batch,
    decode_record,
    encode_record,
    read_metadata_records,
)

FOO = uuid.UUID("00000000-0000-0000-0000-0000000000f0")
BAR = uuid.UUID("00000000-0000-0000-0000-0000000000b0")
INCARNATION = uuid.UUID("11111111-2222-3333-4444-555555555555")


def _through_the_log(records, base_offset=0):
    """(offset, record) as a broker reads them back from a metadata batch."""
    batch = build_metadata_batch(
        records, base_offset=base_offset, leader_epoch=1, timestamp_ms=1_000
    )
    return list(read_metadata_records(batch))


def _replay(image: ClusterImage, *records, base_offset=None) -> MetadataDelta:
    start = image.offset + 1 if base_offset is None else base_offset
    delta = MetadataDelta(image)
    for offset, record in _through_the_log(records, start):
        delta.replay(record, offset)
    return delta


def _apply(image: ClusterImage, *records) -> ClusterImage:
    return _replay(image, *records).apply()


def _empty() -> ClusterImage:
    return ClusterImage("cluster", 1000)


def _register(broker_id, epoch, *, rack=None, fenced=True, incarnation=INCARNATION, port=None):
    return RegisterBrokerRecord(
        broker_id=broker_id,
        incarnation_id=incarnation,
        broker_epoch=epoch,
        end_points=[
            RegisterBrokerRecord.BrokerEndpoint(
                name="PLAINTEXT",
                host=f"host-{broker_id}",
                port=port or 9090 + broker_id,
                security_protocol=0,
            )
        ],
        features=[
            RegisterBrokerRecord.BrokerFeature(
                name="metadata.version", min_supported_version=1, max_supported_version=12
            )
        ],
        rack=rack,
        fenced=fenced,
        in_controlled_shutdown=False,
        is_migrating_zk_broker=False,
    )


def _partition(topic_id, index, replicas, isr=None, leader=None, leader_epoch=0, epoch=0):
    isr = list(replicas) if isr is None else isr
    return PartitionRecord(
        partition_id=index,
        topic_id=topic_id,
        replicas=list(replicas),
        isr=isr,
        removing_replicas=[],
        adding_replicas=[],
        leader=isr[0] if leader is None else leader,
        leader_epoch=leader_epoch,
        partition_epoch=epoch,
    )


def _change(topic_id=FOO, index=0, **fields):
    return PartitionChangeRecord(partition_id=index, topic_id=topic_id, **fields)


def _decoded(record):
    return decode_record(encode_record(record))


# -- PartitionRegistration.merge ----------------------------------------------------------------
BASE = PartitionRegistration(
    replicas=(1, 2, 3),
    isr=(1, 2),
    leader=1,
    leader_epoch=10,
    partition_epoch=20,
    removing_replicas=(3,),
    adding_replicas=(4,),
    leader_recovery_state=RECOVERING,
)


def test_a_change_with_only_an_isr_keeps_everything_else_and_moves_the_partition_epoch():
    merged = BASE.merge(_decoded(_change(isr=[1])))
    assert merged == PartitionRegistration(
        replicas=(1, 2, 3),
        isr=(1,),
        leader=1,  # Leader absent (-2): leader and leader epoch stay
        leader_epoch=10,
        partition_epoch=21,
        removing_replicas=(3,),  # absent lists keep theirs
        adding_replicas=(4,),
        leader_recovery_state=RECOVERING,  # absent (-1) keeps
    )


def test_an_empty_change_still_moves_the_partition_epoch():
    record = _decoded(_change())
    assert record.leader == NO_LEADER_CHANGE and record.isr is None
    assert record.leader_recovery_state == -1
    assert BASE.merge(record) == PartitionRegistration(
        (1, 2, 3), (1, 2), 1, 10, 21, (3,), (4,), RECOVERING
    )


@pytest.mark.parametrize(
    ("leader", "expected_leader"),
    [
        pytest.param(2, 2, id="new-leader"),
        pytest.param(1, 1, id="same-leader-still-bumps"),
        pytest.param(NO_LEADER, NO_LEADER, id="no-leader-bumps"),
    ],
)
def test_any_leader_but_no_change_sets_the_leader_and_bumps_the_leader_epoch(
    leader, expected_leader
):
    merged = BASE.merge(_decoded(_change(leader=leader)))
    assert merged.leader == expected_leader
    assert merged.leader_epoch == 11
    assert merged.partition_epoch == 21
    assert merged.isr == (1, 2) and merged.replicas == (1, 2, 3)


@pytest.mark.parametrize("state", [RECOVERED, RECOVERING])
def test_a_leader_recovery_state_in_the_change_replaces_the_old_one(state):
    recovered = PartitionRegistration((1, 2), (1, 2), leader=1, leader_recovery_state=RECOVERED)
    change = _decoded(_change(leader_recovery_state=state))
    assert recovered.merge(change).leader_recovery_state == state
    assert BASE.merge(change).leader_recovery_state == state


def test_merge_as_kafkas_partition_registration_test():
    # testPartitionControlInfoMergeAndDiff
    a = PartitionRegistration((1, 2, 3), (1, 2), leader=1, leader_epoch=0, partition_epoch=0)
    assert a.merge(_decoded(_change(leader=3, isr=[3]))) == PartitionRegistration(
        (1, 2, 3), (3,), leader=3, leader_epoch=1, partition_epoch=1
    )
    # testMergePartitionChangeRecordWithReassignmentData
    p0 = PartitionRegistration(
        (1, 2, 3), (1, 2, 3), leader=1, leader_epoch=100, partition_epoch=200
    )
    p1 = p0.merge(
        _decoded(_change(removing_replicas=[3], adding_replicas=[4], replicas=[1, 2, 3, 4]))
    )
    assert p1 == PartitionRegistration((1, 2, 3, 4), (1, 2, 3), 1, 100, 201, (3,), (4,))
    p2 = p1.merge(
        _decoded(
            _change(isr=[1, 2, 4], removing_replicas=[], adding_replicas=[], replicas=[1, 2, 4])
        )
    )
    assert p2 == PartitionRegistration((1, 2, 4), (1, 2, 4), 1, 100, 202, (), ())


# -- brokers ------------------------------------------------------------------------------------
def test_a_registered_broker_is_in_the_image_as_its_record_says():
    image = _apply(_empty(), _register(1, 0, rack="r1", port=19092))
    broker = image.brokers[1]
    assert (broker.host, broker.port, broker.rack) == ("host-1", 19092, "r1")
    assert broker.epoch == 0 and broker.incarnation_id == INCARNATION
    assert broker.fenced and not broker.in_controlled_shutdown and not broker.active
    assert image.alive_brokers() == []


def test_fencing_changes_follow_the_records_fenced_field():
    image = _apply(_empty(), _register(1, 5), _register(2, 6))
    unfenced = _apply(image, BrokerRegistrationChangeRecord(broker_id=1, broker_epoch=5, fenced=-1))
    assert not unfenced.brokers[1].fenced and unfenced.brokers[1].active
    assert unfenced.brokers[2].fenced  # another broker is untouched
    unchanged = _apply(unfenced, BrokerRegistrationChangeRecord(broker_id=1, broker_epoch=5))
    assert unchanged.brokers[1] == unfenced.brokers[1]
    fenced = _apply(unfenced, BrokerRegistrationChangeRecord(broker_id=1, broker_epoch=5, fenced=1))
    assert fenced.brokers[1].fenced
    assert [b.node_id for b in unfenced.alive_brokers()] == [1] and fenced.alive_brokers() == []


def test_controlled_shutdown_is_entered_and_kept_through_fencing_changes():
    image = _apply(
        _empty(),
        _register(1, 5),
        BrokerRegistrationChangeRecord(broker_id=1, broker_epoch=5, fenced=-1),
    )
    shutting = _apply(
        image, BrokerRegistrationChangeRecord(broker_id=1, broker_epoch=5, in_controlled_shutdown=1)
    )
    broker = shutting.brokers[1]
    assert broker.in_controlled_shutdown and not broker.fenced and not broker.active
    fenced = _apply(shutting, BrokerRegistrationChangeRecord(broker_id=1, broker_epoch=5, fenced=1))
    assert fenced.brokers[1].fenced and fenced.brokers[1].in_controlled_shutdown
    # a new registration starts over: fenced, not shutting down, with its new epoch
    again = _apply(fenced, _register(1, 9, incarnation=uuid.uuid4()))
    assert again.brokers[1].epoch == 9 and not again.brokers[1].in_controlled_shutdown


def test_the_older_fence_and_unfence_records_still_replay():
    image = _apply(_empty(), _register(3, 7))
    unfenced = _apply(image, UnfenceBrokerRecord(id=3, epoch=7))
    assert not unfenced.brokers[3].fenced
    assert _apply(unfenced, FenceBrokerRecord(id=3, epoch=7)).brokers[3].fenced


@pytest.mark.parametrize(
    "record",
    [
        pytest.param(
            BrokerRegistrationChangeRecord(broker_id=1, broker_epoch=4, fenced=-1), id="change"
        ),
        pytest.param(FenceBrokerRecord(id=1, epoch=4), id="fence"),
        pytest.param(UnfenceBrokerRecord(id=1, epoch=4), id="unfence"),
        pytest.param(UnregisterBrokerRecord(broker_id=1, broker_epoch=4), id="unregister"),
        pytest.param(
            BrokerRegistrationChangeRecord(broker_id=2, broker_epoch=5, fenced=-1), id="unknown"
        ),
    ],
)
def test_a_broker_change_for_another_epoch_or_broker_is_refused(record):
    image = _apply(_empty(), _register(1, 5))
    with pytest.raises(MetadataError):
        _replay(image, record)


def test_unregistering_removes_the_broker():
    image = _apply(_empty(), _register(1, 5), _register(2, 6))
    after = _apply(image, UnregisterBrokerRecord(broker_id=1, broker_epoch=5))
    assert sorted(after.brokers) == [2]
    assert sorted(image.brokers) == [1, 2]  # the base image is untouched


# -- topics and configs -------------------------------------------------------------------------
def _foo_and_bar() -> ClusterImage:
    return _apply(
        _empty(),
        TopicRecord(name="foo", topic_id=FOO),
        ConfigRecord(
            resource_type=CONFIG_RESOURCE_TOPIC, resource_name="foo", name="retention.ms", value="1"
        ),
        _partition(FOO, 0, [1, 2, 3]),
        _partition(FOO, 1, [2, 3, 1]),
        _partition(FOO, 2, [2, 3]),
        TopicRecord(name="bar", topic_id=BAR),
        ConfigRecord(
            resource_type=CONFIG_RESOURCE_TOPIC, resource_name="bar", name="retention.ms", value="2"
        ),
        _partition(BAR, 0, [3, 1]),
    )


def test_topics_with_their_partitions_and_configs():
    image = _foo_and_bar()
    assert sorted(image.topics) == ["bar", "foo"]
    foo = image.topics["foo"]
    assert foo.topic_id == FOO and not foo.internal and image.topic_by_id(FOO) is foo
    assert sorted(foo.partitions) == [0, 1, 2]
    assert image.partition("foo", 1) == PartitionRegistration((2, 3, 1), (2, 3, 1), leader=2)
    assert image.topic_configs("foo") == {"retention.ms": "1"}
    assert image.offset == 7  # the last offset replayed


def test_the_consumer_offsets_topic_is_internal():
    image = _apply(_empty(), TopicRecord(name="__consumer_offsets", topic_id=FOO))
    assert image.topics["__consumer_offsets"].internal


def test_a_partition_added_to_an_existing_topic():
    image = _apply(_foo_and_bar(), _partition(BAR, 1, [1, 3]))
    assert sorted(image.topics["bar"].partitions) == [0, 1]
    assert image.topics["bar"].partitions[1].leader == 1


def test_a_removed_topic_goes_with_its_partitions_and_configs():
    image = _foo_and_bar()
    after = _apply(image, RemoveTopicRecord(topic_id=FOO))
    assert sorted(after.topics) == ["bar"] and after.topic_by_id(FOO) is None
    assert after.topic_configs("foo") == {}
    assert (CONFIG_RESOURCE_TOPIC, "foo") not in after.configs
    assert after.topic_configs("bar") == {"retention.ms": "2"}
    # a topic of the same name can come back, with a new id and nothing of the old one
    again = _apply(after, TopicRecord(name="foo", topic_id=uuid.uuid4()))
    assert again.topics["foo"].partitions == {} and again.topic_configs("foo") == {}


@pytest.mark.parametrize(
    "record",
    [
        pytest.param(RemoveTopicRecord(topic_id=uuid.uuid4()), id="remove-unknown-topic"),
        pytest.param(_change(topic_id=uuid.uuid4(), isr=[1]), id="change-unknown-topic"),
        pytest.param(_change(topic_id=FOO, index=7, isr=[1]), id="change-unknown-partition"),
        pytest.param(_partition(uuid.uuid4(), 0, [1]), id="partition-of-unknown-topic"),
    ],
)
def test_a_record_for_a_topic_or_partition_that_is_not_there_is_refused(record):
    with pytest.raises(MetadataError):
        _replay(_foo_and_bar(), record)


def test_config_records_set_and_delete_keys():
    image = _apply(
        _empty(),
        ConfigRecord(resource_type=CONFIG_RESOURCE_TOPIC, resource_name="foo", name="a", value="1"),
        ConfigRecord(resource_type=CONFIG_RESOURCE_TOPIC, resource_name="foo", name="b", value="2"),
        ConfigRecord(resource_type=CONFIG_RESOURCE_BROKER, resource_name="", name="a", value="x"),
    )
    assert image.topic_configs("foo") == {"a": "1", "b": "2"}
    assert image.configs[(CONFIG_RESOURCE_BROKER, "")] == {"a": "x"}
    changed = _apply(
        image,
        ConfigRecord(resource_type=CONFIG_RESOURCE_TOPIC, resource_name="foo", name="a", value="3"),
        ConfigRecord(
            resource_type=CONFIG_RESOURCE_TOPIC, resource_name="foo", name="b", value=None
        ),
    )
    assert changed.topic_configs("foo") == {"a": "3"}
    emptied = _apply(
        changed,
        ConfigRecord(
            resource_type=CONFIG_RESOURCE_TOPIC, resource_name="foo", name="a", value=None
        ),
    )
    assert (CONFIG_RESOURCE_TOPIC, "foo") not in emptied.configs  # no empty resource left
    assert emptied.configs[(CONFIG_RESOURCE_BROKER, "")] == {"a": "x"}
    assert image.topic_configs("foo") == {"a": "1", "b": "2"}  # older images stay as they were


def test_features_producer_ids_and_no_ops():
    image = _apply(
        _empty(),
        FeatureLevelRecord(name="metadata.version", feature_level=12),
        FeatureLevelRecord(name="kraft.version", feature_level=1),
        ProducerIdsRecord(broker_id=1, broker_epoch=0, next_producer_id=1000),
        NoOpRecord(),
    )
    assert image.features == {"metadata.version": 12, "kraft.version": 1}
    assert image.next_producer_id == 1000 and image.offset == 3
    after = _apply(image, FeatureLevelRecord(name="kraft.version", feature_level=0))
    assert after.features == {"metadata.version": 12}  # level 0 removes the feature


def test_a_partition_change_replays_through_the_delta():
    image = _apply(_foo_and_bar(), _register(1, 0), _register(2, 1), _register(3, 2))
    after = _apply(image, _change(index=0, leader=2, isr=[2, 3]), _change(index=0, isr=[2]))
    assert after.partition("foo", 0) == PartitionRegistration(
        (1, 2, 3), (2,), leader=2, leader_epoch=1, partition_epoch=2
    )
    assert image.topics["foo"].partitions[0].partition_epoch == 0  # the base is untouched


# -- local changes --------------------------------------------------------------------------------
def _led(changes):
    return {tp: registration.leader for tp, (_, registration) in changes.leaders.items()}


def test_new_partitions_are_led_or_followed_by_their_replicas():
    delta = _replay(
        _empty(),
        TopicRecord(name="foo", topic_id=FOO),
        _partition(FOO, 0, [1, 2, 3]),
        _partition(FOO, 1, [2, 3, 1]),
        _partition(FOO, 2, [2, 3]),
    )
    one = delta.local_changes(1)
    assert one.deletes == []
    assert _led(one) == {TopicPartition("foo", 0): 1}
    assert sorted(one.followers) == [TopicPartition("foo", 1)]
    topic_id, registration = one.followers[TopicPartition("foo", 1)]
    assert topic_id == FOO and registration.replicas == (2, 3, 1)
    two = delta.local_changes(2)
    assert sorted(two.leaders) == [TopicPartition("foo", 1), TopicPartition("foo", 2)]
    assert sorted(two.followers) == [TopicPartition("foo", 0)]
    nobody = delta.local_changes(9)
    assert (nobody.deletes, nobody.leaders, nobody.followers) == ([], {}, {})


def test_changed_partitions_move_between_leading_following_and_deleting():
    image = _foo_and_bar()
    delta = _replay(
        image,
        _change(index=0, leader=2, isr=[2, 3]),  # broker 1 loses the leadership
        _change(index=1, replicas=[2, 3], isr=[2, 3]),  # broker 1 is no longer a replica
        # foo-2: no record, nothing for anyone
    )
    one = delta.local_changes(1)
    assert one.leaders == {}
    assert sorted(one.followers) == [TopicPartition("foo", 0)]
    assert one.deletes == [TopicPartition("foo", 1)]
    two = delta.local_changes(2)
    assert _led(two) == {TopicPartition("foo", 0): 2, TopicPartition("foo", 1): 2}
    assert two.followers == {} and two.deletes == []
    three = delta.local_changes(3)
    assert sorted(three.followers) == [TopicPartition("foo", 0), TopicPartition("foo", 1)]


def test_an_isr_change_alone_is_a_local_change_for_every_replica():
    delta = _replay(_foo_and_bar(), _change(index=0, isr=[1, 2]))
    assert _led(delta.local_changes(1)) == {TopicPartition("foo", 0): 1}
    assert sorted(delta.local_changes(3).followers) == [TopicPartition("foo", 0)]


def test_a_partition_whose_epoch_did_not_move_asks_nothing():
    image = _foo_and_bar()
    # the same registration written again (as a snapshot would): same partition epoch
    delta = _replay(image, _partition(FOO, 0, [1, 2, 3]), _partition(BAR, 0, [3, 1]))
    for broker in (1, 2, 3):
        changes = delta.local_changes(broker)
        assert (changes.deletes, changes.leaders, changes.followers) == ([], {}, {})


def test_a_removed_topic_deletes_its_replicas():
    delta = _replay(_foo_and_bar(), RemoveTopicRecord(topic_id=FOO))
    assert sorted(delta.local_changes(1).deletes) == [
        TopicPartition("foo", 0),
        TopicPartition("foo", 1),
    ]
    assert sorted(delta.local_changes(2).deletes) == [
        TopicPartition("foo", 0),
        TopicPartition("foo", 1),
        TopicPartition("foo", 2),
    ]
    assert delta.local_changes(4).deletes == []


def test_a_topic_changed_then_removed_in_one_delta_is_only_deleted():
    delta = _replay(_foo_and_bar(), _change(index=0, leader=2), RemoveTopicRecord(topic_id=FOO))
    two = delta.local_changes(2)
    assert TopicPartition("foo", 0) in two.deletes and two.leaders == {}


def test_a_topic_created_and_removed_in_one_delta_asks_nothing():
    delta = _replay(
        _empty(),
        TopicRecord(name="foo", topic_id=FOO),
        _partition(FOO, 0, [1]),
        RemoveTopicRecord(topic_id=FOO),
    )
    changes = delta.local_changes(1)
    assert (changes.deletes, changes.leaders, changes.followers) == ([], {}, {})
    assert delta.apply().topics == {}
