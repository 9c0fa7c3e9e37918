"""Cluster metadata: what the cluster looks like (brokers, topics, partitions with their leader,
epoch, replicas and ISR) as one immutable image, and the cache the broker's handlers read it from.
"""

from engine.metadata.cache import MetadataCache
from engine.metadata.image import (
    BrokerRegistration,
    ClusterImage,
    LocalChanges,
    MetadataDelta,
    PartitionRegistration,
    TopicImage,
)

__all__ = [
    "BrokerRegistration",
    "ClusterImage",
    "LocalChanges",
    "MetadataCache",
    "MetadataDelta",
    "PartitionRegistration",
    "TopicImage",
]
