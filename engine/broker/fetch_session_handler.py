"""The client side of a fetch session (Kafka's FetchSessionHandler, KIP-227), for a follower's
replica fetcher: which partitions the next Fetch must send, which it forgets, and the session id
and epoch it carries; and what a response means for the session.

The first Fetch is full (session 0, epoch 0) and names every partition; a leader with room
answers with a session id, and from then on each Fetch (epoch 1, 2, ...) names only partitions
added or whose position changed (fetch offset, log start offset, leader epoch, max bytes), and
forgets those no longer fetched; the response carries only partitions with news, and a partition
it leaves out had nothing new. A session error (FETCH_SESSION_ID_NOT_FOUND: evicted or the leader
restarted; INVALID_FETCH_SESSION_EPOCH) makes the next Fetch full again, and the error response's
partitions are ignored: it has none.

Sans-I/O, not thread-safe: the event loop's thread alone uses it.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kafka.errors import FetchSessionIdNotFoundError

from engine.common import TopicPartition
from engine.errors import NONE
from engine.protocol.client import FetchPosition

INVALID_SESSION_ID = 0
INITIAL_EPOCH = 0
_MAX_EPOCH = 2**31 - 1


@dataclass(frozen=True, slots=True)
class FetchRequestData:
    """What the next Fetch carries."""

    session_id: int
    epoch: int
    to_send: list[FetchPosition]
    to_forget: list[TopicPartition]

    @property
    def is_full(self) -> bool:
        return self.epoch == INITIAL_EPOCH


class FetchSessionHandler:
    """One leader's session, as its follower holds it."""

    def __init__(self) -> None:
        self.session_id = INVALID_SESSION_ID
        self.epoch = INITIAL_EPOCH
        self._sent: dict[TopicPartition, FetchPosition] = {}  # the session's partitions

    def build(self, positions: Sequence[FetchPosition]) -> FetchRequestData:
        """The next Fetch, for the partitions to fetch now at these positions."""
        wanted = {TopicPartition(p.topic, p.partition): p for p in positions}
        if self.epoch == INITIAL_EPOCH:
            self._sent = wanted
            return FetchRequestData(self.session_id, INITIAL_EPOCH, list(positions), [])
        sent = self._sent
        to_send = [p for tp, p in wanted.items() if sent.get(tp) != p]
        to_forget = [tp for tp in sent if tp not in wanted]
        self._sent = wanted
        return FetchRequestData(self.session_id, self.epoch, to_send, to_forget)

    def handle_response(self, response: Any, request: FetchRequestData) -> bool:
        """Take the response to `request` into the session; False when it is a session error,
        whose (empty) response carries nothing to process."""
        if response.error_code != NONE:
            if response.error_code == FetchSessionIdNotFoundError.errno:
                self.session_id = INVALID_SESSION_ID
            self.epoch = INITIAL_EPOCH  # start over (closing the session, if it still exists)
            return False
        if response.session_id == INVALID_SESSION_ID:  # no room for one, or the session ended
            self.session_id, self.epoch = INVALID_SESSION_ID, INITIAL_EPOCH
        elif request.is_full:
            self.session_id, self.epoch = response.session_id, 1
        else:
            self.epoch = 1 if self.epoch == _MAX_EPOCH else self.epoch + 1
        return True

    def handle_error(self) -> None:
        """The request failed (no response): the next one is full, closing this session."""
        self.epoch = INITIAL_EPOCH
