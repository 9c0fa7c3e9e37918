"""The cluster image: immutable, what Metadata and FindCoordinator answer from, republished on
every topic change; offline replicas and fenced brokers as a cluster's image will have them."""

import uuid

import pytest
from kafka.protocol.metadata.find_coordinator import FindCoordinatorRequest
from kafka.protocol.metadata.metadata import MetadataRequest

from engine.broker.broker_server import BrokerServer
from engine.broker.config import KafkaConfig
from engine.broker.request_context import RequestContext
from engine.metadata import (
    BrokerRegistration,
    ClusterImage,
    MetadataCache,
    PartitionRegistration,
    TopicImage,
)
from engine.protocol.apis import APIS, ApiKeys
from engine.protocol.codec import decode_request


def _three_brokers() -> ClusterImage:
    brokers = {
        1: BrokerRegistration(1, "127.0.0.1", 9001, rack="a"),
        2: BrokerRegistration(2, "127.0.0.1", 9002, rack="b"),
        3: BrokerRegistration(3, "127.0.0.1", 9003, fenced=True),
    }
    partitions = {
        0: PartitionRegistration((1, 2, 3), (1, 2), leader=1, leader_epoch=4, partition_epoch=7),
        1: PartitionRegistration((3, 4), (3,), leader=3),
    }
    topic = TopicImage("t", uuid.uuid4(), partitions)
    return ClusterImage("cluster", 1, brokers, {"t": topic})


def test_an_image_cannot_be_changed_by_whoever_holds_it():
    image = _three_brokers()
    with pytest.raises(TypeError):
        image.topics["u"] = image.topics["t"]  # type: ignore[index]
    with pytest.raises(AttributeError):
        image.controller_id = 2  # type: ignore[misc]


def test_leaders_offline_replicas_and_alive_brokers():
    image = _three_brokers()
    assert [b.node_id for b in image.alive_brokers()] == [1, 2]  # 3 is fenced
    assert image.leader_of("t", 0) == image.brokers[1]
    assert image.leader_of("t", 1) is None  # its leader is fenced
    assert image.leader_of("t", 9) is None and image.leader_of("u", 0) is None
    assert image.partition("t", 0).offline_replicas(image.brokers) == [3]
    assert image.partition("t", 1).offline_replicas(image.brokers) == [3, 4]  # 4 never came


def test_the_cache_publishes_whole_images():
    cache = MetadataCache(_three_brokers())
    first = cache.image
    cache.publish(ClusterImage("cluster", 2))
    assert cache.version == 1 and cache.image.controller_id == 2 and first.controller_id == 1


def _ask(broker: BrokerServer, request, version: int):
    request.with_header(correlation_id=9, client_id="tests")
    header, decoded = decode_request(bytes(request.encode(header=True)))
    answers = []
    context = RequestContext(header, "127.0.0.1:1", broker.config.listener)
    broker.apis.handle(context, decoded, answers.append)
    [parts] = answers
    api = ApiKeys(request.API_KEY)
    return APIS[api][1].decode(b"".join(parts), version=version, header=True, framed=True)


def test_metadata_and_find_coordinator_answer_from_the_image(tmp_path):
    broker = BrokerServer(KafkaConfig(log_dir=str(tmp_path), node_id=5))
    try:
        broker.advertise("127.0.0.1", 19092)
        published = broker.metadata_cache.version
        broker.topics.create_topic("events", 3)
        assert broker.metadata_cache.version == published + 1
        assert set(broker.metadata_cache.image.topics) == {"__consumer_offsets", "events"}
        response = _ask(broker, MetadataRequest[12](topics=None), 12)
        assert [(b.node_id, b.port) for b in response.brokers] == [(5, 19092)]
        assert response.controller_id == 5
        [events] = [t for t in response.topics if t.name == "events"]
        assert [p.leader_id for p in events.partitions] == [5, 5, 5]

        # a cluster's image (as a controller's metadata log will publish): the handlers follow
        broker.metadata_cache.publish(_three_brokers())
        response = _ask(broker, MetadataRequest[12](topics=None), 12)
        assert [b.node_id for b in response.brokers] == [1, 2]
        [topic] = response.topics
        assert [(p.leader_id, p.leader_epoch, p.offline_replicas) for p in topic.partitions] == [
            (1, 4, [3]),
            (-1, 0, [3, 4]),  # its leader is fenced: no leader, as Kafka answers
        ]
        coordinator = _ask(broker, FindCoordinatorRequest[3](key="g", key_type=0), 3)
        assert coordinator.error_code != 0  # no __consumer_offsets in that image
        broker.topics.delete_topic("events")  # a change republishes the broker's own image
        assert "events" not in broker.metadata_cache.image.topics
        coordinator = _ask(broker, FindCoordinatorRequest[3](key="g", key_type=0), 3)
        assert (coordinator.error_code, coordinator.node_id, coordinator.port) == (0, 5, 19092)
    finally:
        broker.shutdown()
