"""kbench tune's OpenMessaging Benchmark workload shapes: the payload file OMB would send, the
sizes and pools it would refuse, and one trial of several topics, partitions, producers and
consumers measured on a real broker, its topics created with their partitions and deleted."""

import os

import pytest

from scenarios.clients.topics import TopicAdmin
from scenarios.tuning import space as spaces
from scenarios.tuning import workload
from scenarios.tuning.measure import Measurer, Target
from scenarios.tuning.objective import parse_slo
from scenarios.tuning.space import default_space
from scenarios.tuning.workload import Durations, WorkloadError

SHAPED = """\
name: shaped
topics: 2
partitionsPerTopic: 2
messageSize: 256
payloadFile: "payload.data"
keyDistributor: "KEY_ROUND_ROBIN"
subscriptionsPerTopic: 1
consumerPerSubscription: 2
producersPerTopic: 1
producerRate: 1000
testDurationMinutes: 1
"""


def write(directory, text: str, payload: bytes | None = bytes(256)) -> str:
    path = directory / "workload.yaml"
    path.write_text(text)
    if payload is not None:
        (directory / "payload.data").write_bytes(payload)
    return str(path)


def refusal(path: str) -> str:
    with pytest.raises(WorkloadError) as error:
        workload.load(path)
    message = str(error.value)
    assert "\n" not in message
    return message


def test_the_payload_file_is_found_beside_the_workload_or_where_omb_looks(tmp_path, monkeypatch):
    read = workload.load(write(tmp_path, SHAPED))
    assert read.payload_file == str(tmp_path / "payload.data")
    assert read.load_shape()["payload_file"] == read.payload_file
    # OMB opens a relative payloadFile from its working directory: found there too
    (tmp_path / "omb" / "workloads").mkdir(parents=True)
    (tmp_path / "omb" / "payload.data").write_bytes(bytes(256))
    monkeypatch.chdir(tmp_path / "omb")
    elsewhere = write(tmp_path / "omb" / "workloads", SHAPED, payload=None)
    assert workload.load(elsewhere).payload_file == str(tmp_path / "omb" / "payload.data")


def test_a_payload_omb_would_refuse_is_refused_in_one_line(tmp_path):
    assert "payloadFile absent.data not found beside the workload file" in refusal(
        write(tmp_path, SHAPED.replace("payload.data", "absent.data"))
    )
    short = write(tmp_path, SHAPED, payload=bytes(100))
    assert "payloadFile payload.data holds 100 bytes, but messageSize is 256" in refusal(short)
    tiny = write(tmp_path, SHAPED.replace("messageSize: 256", "messageSize: 4"), bytes(4))
    assert "messageSize must be at least 8 bytes" in refusal(tiny)
    pool = SHAPED + "useRandomizedPayloads: true\nrandomizedPayloadPoolSize: 0\n"
    assert "randomizedPayloadPoolSize must be at least 1" in refusal(write(tmp_path, pool))
    ratio = SHAPED + "useRandomizedPayloads: true\nrandomBytesRatio: 2\n"
    assert "randomBytesRatio must be a number from 0 to 1, got 2" in refusal(write(tmp_path, ratio))


def test_randomized_payloads_take_the_place_of_the_file_as_in_omb(tmp_path):
    text = SHAPED.replace('"payload.data"', '"absent.data"')
    text += "useRandomizedPayloads: true\nrandomBytesRatio: 0.25\nrandomizedPayloadPoolSize: 3\n"
    shape = workload.load(write(tmp_path, text)).load_shape()
    assert shape["payload_file"] is None
    assert (shape["random_bytes_ratio"], shape["payload_pool"]) == (0.25, 3)


def test_a_trial_of_a_workload_shape_on_its_own_topics(broker, tmp_path):
    """Two topics of two partitions, a producer and two consumers each: the trial measures
    every record (the pipeline checks each subscription got each), then deletes its topics."""
    read = workload.load(write(tmp_path, SHAPED))
    assert read.unsupported() == [] and read.client_processes == 6
    durations = Durations(0.2, 1.0, "test")
    space = default_space()
    measure = Measurer(Target(broker.bootstrap, space), read, durations, parse_slo("p99<=1s"), "w-")
    try:
        measured = measure(space.baseline(), read.producer_rate)
        assert measured.p50_ms > 0 and measured.kept_fraction > 0
        topics = TopicAdmin(broker.bootstrap).client.list_topics(timeout=10).topics
        assert not [name for name in topics if name.startswith("w-")]
    finally:
        measure.close()
    assert os.path.isfile(read.payload_file or "")


def test_a_trial_has_the_workloads_partitions_unless_the_space_searches_them(tmp_path):
    """partitions: the workload's partitionsPerTopic by default (0 in the table); a space file
    that searches them gives each trial its own, created so and split among the consumers."""
    read = workload.load(write(tmp_path, SHAPED))
    space = default_space()
    measure = Measurer(Target("127.0.0.1:1", space), read, Durations(0.2, 1.0, "test"),
                       parse_slo("p99<=1s"), "w-")  # fmt: skip
    load, configs, _ = measure.load(space.baseline(), read.producer_rate, "t")
    assert load.partitions == read.partitions_per_topic == 2 and "partitions" not in configs
    assert "partitions=the workload's" in space.describe()
    (tmp_path / "space.yaml").write_text("partitions: [1, 8]\n")
    searched = spaces.require(spaces.load_space(str(tmp_path / "space.yaml")), [])
    settings = dict(searched.baseline(), partitions=8)
    load, configs, _ = measure.load(settings, read.producer_rate, "t")
    assert load.partitions == 8 and "partitions" not in configs
    topic = spaces.properties_file(settings, "topic", [], read.partitions_per_topic)
    assert "--partitions 8 " in topic and "partitions=8" in topic.splitlines()
