"""ProducerIdManager: unique producer ids for InitProducerId, never reused across restarts.

File `producer-id-block` in the log directory holds one decimal number: the first id not yet
handed out in a block. Ids are reserved a block at a time and the file is replaced atomically
(written, fsynced, renamed) before any id of a new block is used, so a crash can skip ids but
never repeat one.
"""

import os

BLOCK_SIZE = 1000
FILE_NAME = "producer-id-block"


class ProducerIdManager:
    """Producer ids handed out in blocks reserved on disk. Not thread-safe: the event loop's thread
    alone uses it."""

    def __init__(self, log_dir: str) -> None:
        self._path = os.path.join(log_dir, FILE_NAME)
        try:
            with open(self._path, encoding="ascii") as f:
                self._next = int(f.read().strip())
        except FileNotFoundError:
            self._next = 0
        self._block_end = self._next  # nothing reserved yet in this process

    def generate_producer_id(self) -> int:
        if self._next >= self._block_end:
            self._block_end = self._next + BLOCK_SIZE
            with open(self._path + ".tmp", "w", encoding="ascii") as f:
                f.write(f"{self._block_end}\n")
                f.flush()
                os.fsync(f.fileno())
            os.replace(self._path + ".tmp", self._path)
        producer_id = self._next
        self._next += 1
        return producer_id
