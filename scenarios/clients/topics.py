"""TopicAdmin: the topics a scenario creates and deletes on the run's cluster, through
confluent-kafka's AdminClient (CreateTopics, DeleteTopics, Metadata), so it works against any
Kafka-protocol cluster. Scenarios that measure on a fresh topic per sample call probe() in setup,
to find out before the first measurement whether the cluster lets them.

Thread-safe as librdkafka's AdminClient is; it holds no other state.
"""

import time
from collections.abc import Iterator
from contextlib import contextmanager


class TopicAdmin:
    def __init__(self, bootstrap: str) -> None:
        from confluent_kafka.admin import AdminClient  # a runtime dependency, loaded on use

        self.bootstrap = bootstrap
        self.client = AdminClient({"bootstrap.servers": bootstrap})

    def create(
        self,
        topic: str,
        partitions: int = 1,
        timeout_s: float = 60,
        *,
        replication_factor: int = 1,
        configs: dict[str, str] | None = None,
    ) -> None:
        from confluent_kafka.admin import NewTopic

        new = NewTopic(
            topic,
            num_partitions=partitions,
            replication_factor=replication_factor,
            config=dict(configs or {}),
        )
        for future in self.client.create_topics([new], request_timeout=timeout_s).values():
            future.result(timeout=timeout_s)

    def delete(self, topic: str, timeout_s: float = 60) -> None:
        for future in self.client.delete_topics([topic], request_timeout=timeout_s).values():
            future.result(timeout=timeout_s)

    @contextmanager
    def fresh(self, topic: str, partitions: int = 1) -> Iterator[str]:
        """A topic created for one measurement and deleted after it, however it ends."""
        self.create(topic, partitions)
        try:
            yield topic
        finally:
            self.delete(topic)

    def leader(self, topic: str, partition: int = 0, timeout_s: float = 60) -> str:
        """host:port of the partition's leader, waited for until one is elected."""
        deadline = time.monotonic() + timeout_s
        while True:
            metadata = self.client.list_topics(topic, timeout=timeout_s)
            partitions = metadata.topics[topic].partitions if topic in metadata.topics else {}
            leader = partitions[partition].leader if partition in partitions else -1
            if leader in metadata.brokers:
                broker = metadata.brokers[leader]
                return f"{broker.host}:{broker.port}"
            if time.monotonic() > deadline:
                raise RuntimeError(f"{topic}-{partition} has no leader after {timeout_s:g} s")
            time.sleep(0.05)

    def probe(self, topic: str, timeout_s: float = 15) -> str | None:
        """Create and delete `topic`: None when the cluster allows it, else why not (for a
        Skip)."""
        try:
            self.create(topic, timeout_s=timeout_s)
            self.delete(topic, timeout_s=timeout_s)
        except Exception as error:
            return (
                f"the broker at {self.bootstrap} did not create and delete a topic ({error!r}): "
                "each measurement needs a fresh topic (CreateTopics, DeleteTopics)"
            )
        return None
