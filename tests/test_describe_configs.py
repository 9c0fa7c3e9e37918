"""DescribeConfigs of the broker through a real admin client: host paths go out as Kafka sends
a sensitive value (null, is_sensitive) unless describe.configs.paths.enable says otherwise."""

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType

from tests.conftest import broker_process


def _broker_configs(bootstrap: str) -> dict:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    resource = ConfigResource(ResourceType.BROKER, "0")
    return admin.describe_configs([resource])[resource].result(timeout=30)


@pytest.mark.parametrize("reveal", [False, True])
def test_log_dirs_is_shown_only_when_configured(tmp_path, reveal):
    data_dir = str(tmp_path / "data")
    settings = {"describe.configs.paths.enable": "true"} if reveal else {}
    broker = broker_process(data_dir, **settings).start()
    try:
        configs = _broker_configs(broker.bootstrap)
    finally:
        broker.stop()
    log_dirs = configs["log.dirs"]
    assert log_dirs.is_sensitive is not reveal
    assert log_dirs.value == (data_dir if reveal else None)
    assert configs["num.partitions"].value == "1"  # the rest as before
