"""Producer ids for InitProducerId, unique in the cluster and never reused across restarts.

A single broker (ProducerIdManager) reserves blocks in its log directory: file
`producer-id-block` holds one decimal number, the first id not yet handed out in a block; it is
replaced atomically (written, fsynced, renamed) before any id of a new block is used, so a crash
can skip ids but never repeat one. A cluster member (RpcProducerIdManager) gets its blocks from
the controller (AllocateProducerIds), which records each in the metadata log, so an idempotent
producer keeps its id whichever broker leads its partitions.

Not thread-safe: the event loop's thread alone uses them.
"""

import logging
import os
from collections.abc import Callable
from typing import Any

from engine.errors import COORDINATOR_LOAD_IN_PROGRESS, NONE
from engine.protocol.kraft_messages import (
    AllocateProducerIdsRequest,
    AllocateProducerIdsResponse,
)
from engine.protocol.network_client import NetworkClient

log = logging.getLogger(__name__)

# (error code, producer id); the id is -1 unless the error is NONE
ProducerIdCallback = Callable[[int, int], None]

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

    def generate_producer_id(self, callback: ProducerIdCallback) -> None:
        callback(NONE, self._next_id())

    def _next_id(self) -> int:
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


class RpcProducerIdManager:
    """Blocks of producer ids from the controller; callers wait while a block is fetched."""

    def __init__(
        self, client: NetworkClient, controller: str, node_id: int, broker_epoch: Callable[[], int]
    ) -> None:
        self.client = client
        self.controller = controller
        self.node_id = node_id
        self._broker_epoch = broker_epoch
        self._next = self._block_end = 0
        self._waiting: list[ProducerIdCallback] = []
        self._failing = False

    def generate_producer_id(self, callback: ProducerIdCallback) -> None:
        if self._next < self._block_end:
            self._next += 1
            callback(NONE, self._next - 1)
            return
        self._waiting.append(callback)
        if len(self._waiting) == 1:
            request = AllocateProducerIdsRequest(
                version=0, broker_id=self.node_id, broker_epoch=self._broker_epoch()
            )
            self.client.send(self.controller, request, AllocateProducerIdsResponse, self._on_block)

    def _on_block(self, response: Any, error: Exception | None) -> None:
        waiting, self._waiting = self._waiting, []
        if error is not None or response.error_code != NONE:
            # once per run of failures: producers retry InitProducerId every 100 ms or so
            log.log(
                logging.DEBUG if self._failing else logging.INFO,
                "AllocateProducerIds failed: %s",
                error or response.error_code,
            )
            self._failing = True
            for callback in waiting:  # retriable: the producer asks again
                callback(COORDINATOR_LOAD_IN_PROGRESS, -1)
            return
        self._failing = False
        self._next = response.producer_id_start
        self._block_end = self._next + response.producer_id_len
        for callback in waiting:
            self.generate_producer_id(callback)
