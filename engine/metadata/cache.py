"""MetadataCache: the ClusterImage the broker's handlers answer from (Kafka's KRaftMetadataCache).

Publishing replaces the image; readers take `image` once per request and keep that one.

Not thread-safe to publish from several threads; reading the current image is safe anywhere
(the reference is replaced whole, and images are immutable).
"""

from engine.metadata.image import ClusterImage


class MetadataCache:
    def __init__(self, image: ClusterImage) -> None:
        self.image = image
        self.version = 0  # how many images were published after the first

    def publish(self, image: ClusterImage) -> None:
        self.image = image
        self.version += 1
