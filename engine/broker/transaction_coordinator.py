"""TransactionCoordinator: transactional ids, their producer ids and epochs, and the two-phase
end of their transactions (KIP-98, Kafka's TransactionCoordinator and TransactionStateManager).

The coordinator of every transactional id is the leader of `__transaction_state`'s one partition
(as kbench's group coordinator leads `__consumer_offsets`' one); its epoch is that partition's
leader epoch, carried in the markers so a deposed coordinator's are refused. On becoming leader
it replays the log (engine/broker/transaction_log.py) and finishes what it finds half done.

A transaction's life, each step appended to the log and acknowledged once on its ISR:
  InitProducerId   a producer id (new) or the next epoch (known id) -> Empty; an Ongoing
                   transaction of the old epoch is aborted first (the zombie is fenced) and the
                   producer told CONCURRENT_TRANSACTIONS until it is done
  AddPartitionsToTxn / AddOffsetsToTxn -> Ongoing, the partitions recorded
  EndTxn           -> PrepareCommit / PrepareAbort, answered; then a COMMIT / ABORT marker to
                   every partition's leader (WriteTxnMarkers; an appended control batch when
                   the leader is this broker; the group coordinator's pending offsets for
                   `__consumer_offsets`), retried until each is written -> CompleteCommit /
                   CompleteAbort
A transaction Ongoing longer than its transaction.timeout.ms is aborted by the periodic check
(transaction.abort.timed.out.transaction.cleanup.interval.ms) with the epoch bumped, so its
producer is fenced: its next request gets PRODUCER_FENCED (coordinator) or
INVALID_PRODUCER_EPOCH (partitions), as Kafka 4.0's clients expect. While a state change or
its markers are in flight, requests for that id get CONCURRENT_TRANSACTIONS (clients retry).

Not thread-safe: the event loop's thread alone uses it.
"""

import dataclasses
import functools
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kafka import errors as kafka_errors

from engine.broker.transaction_log import (
    TRANSACTION_STATE,
    TransactionLog,
    TransactionMetadata,
    TransactionState,
)
from engine.broker.transaction_markers import MarkerWriter
from engine.common import TopicPartition
from engine.errors import (
    COORDINATOR_NOT_AVAILABLE,
    INVALID_PRODUCER_EPOCH,
    INVALID_REQUEST,
    NONE,
    NOT_COORDINATOR,
    NOT_LEADER_OR_FOLLOWER,
    UNKNOWN_TOPIC_OR_PARTITION,
    KafkaError,
)
from engine.protocol.apis import APIS, ApiKeys

if TYPE_CHECKING:
    from engine.broker.broker_server import BrokerServer

log = logging.getLogger(__name__)

PRODUCER_FENCED = kafka_errors.ProducerFencedError.errno
CONCURRENT_TRANSACTIONS = kafka_errors.ConcurrentTransactionsError.errno
INVALID_TXN_STATE = kafka_errors.InvalidTxnStateError.errno
INVALID_PRODUCER_ID_MAPPING = kafka_errors.InvalidProducerIdMappingError.errno
INVALID_TRANSACTION_TIMEOUT = kafka_errors.InvalidTransactionTimeoutError.errno
OPERATION_NOT_ATTEMPTED = kafka_errors.OperationNotAttemptedError.errno
COORDINATOR_FENCED = kafka_errors.TransactionCoordinatorFencedError.errno

_MAX_EPOCH = 32_766  # Short.MaxValue - 1: past it a transactional id gets a new producer id
_MARKER_TIMEOUT_MS = 30_000
_MARKER_RETRY_MS = 100
STATE_PARTITION = TopicPartition(TRANSACTION_STATE, 0)
# marker errors after which the partition is done with: written, gone, or refused for good
_MARKER_FINAL = {NONE, UNKNOWN_TOPIC_OR_PARTITION, INVALID_PRODUCER_EPOCH, COORDINATOR_FENCED}

InitCallback = Callable[[int, int, int], None]  # error, producer id, epoch
ErrorCallback = Callable[[int], None]


class TransactionCoordinator:
    """Every transactional id this broker coordinates (see the module docstring)."""

    def __init__(self, broker: "BrokerServer", writer: MarkerWriter) -> None:
        self.broker = broker
        self.writer = writer
        self._time_ms = broker.time_ms
        self._partition: Any = None  # the __transaction_state partition loaded from
        self._epoch = -1
        self._log: TransactionLog | None = None
        self.transactions: dict[str, TransactionMetadata] = {}
        self._pending: set[str] = set()  # ids with a state change or markers in flight
        # the epoch before the last bump, by id: a producer that retries InitProducerId with
        # it is still the current one (Kafka's lastProducerEpoch)
        self._fenced_epochs: dict[str, int] = {}
        self._retries: list[Callable[[], None]] = []  # marker sends waiting for the next tick

    # -- loading --------------------------------------------------------------------------------
    def ensure_loaded(self) -> int:
        """NONE when this broker coordinates (loading the log on becoming leader), else
        NOT_COORDINATOR."""
        partition = self.broker.topics.partition(STATE_PARTITION)
        if partition is None or not partition.is_leader:
            if self._partition is not None:
                log.info("no longer the transaction coordinator")
            self._partition, self._log = None, None
            self.transactions, self._pending = {}, set()
            return NOT_COORDINATOR
        if partition is self._partition and partition.leader_epoch == self._epoch:
            return NONE
        self._partition, self._epoch = partition, partition.leader_epoch
        self._log = TransactionLog(partition)
        self.transactions, self._pending, self._retries = self._log.load(), set(), []
        self._fenced_epochs = {}
        log.info(
            "transaction coordinator in epoch %d: %d transactional ids loaded from %s",
            self._epoch,
            len(self.transactions),
            STATE_PARTITION,
        )
        for m in list(self.transactions.values()):  # finish what the last coordinator began
            if m.state in (TransactionState.PREPARE_COMMIT, TransactionState.PREPARE_ABORT):
                self._pending.add(m.transactional_id)
                self._send_markers(m)
            elif m.state is TransactionState.PREPARE_EPOCH_FENCE:
                self._abort(m, bump_epoch=False)
        return NONE

    @property
    def coordinator_epoch(self) -> int:
        return self._epoch

    # -- InitProducerId -------------------------------------------------------------------------
    def init_producer_id(
        self,
        transactional_id: str,
        timeout_ms: int,
        producer_id: int,
        producer_epoch: int,
        respond: InitCallback,
    ) -> None:
        # as Kafka's handleInitProducerId: the request's own faults before the coordinator's
        if not transactional_id:
            error = INVALID_REQUEST
        elif not 0 < timeout_ms <= self.broker.config.transaction_max_timeout_ms:
            error = INVALID_TRANSACTION_TIMEOUT
        else:
            error = self.ensure_loaded()
        if error == NONE and transactional_id in self._pending:
            error = CONCURRENT_TRANSACTIONS
        if error != NONE:
            respond(error, -1, -1)
            return
        m = self.transactions.get(transactional_id)
        if m is None:
            self._pending.add(transactional_id)

            def with_id(error: int, new_id: int) -> None:
                if error != NONE:
                    self._pending.discard(transactional_id)
                    respond(error, -1, -1)
                    return
                new = TransactionMetadata(
                    transactional_id, new_id, 0, timeout_ms, last_update_ms=self._time_ms()
                )
                self._write(new, lambda e: respond(e, new_id if e == NONE else -1, 0))

            self.broker.producer_ids.generate_producer_id(with_id)
            return
        if producer_id >= 0 and (
            producer_id != m.producer_id
            or producer_epoch not in (m.producer_epoch, self._fenced_epochs.get(transactional_id))
        ):
            respond(PRODUCER_FENCED, -1, -1)  # KIP-360: only the current producer may re-init
            return
        if m.state is TransactionState.ONGOING:
            self._abort(m, bump_epoch=True)  # fences the previous producer of this id
            respond(CONCURRENT_TRANSACTIONS, -1, -1)
            return
        if m.state not in (
            TransactionState.EMPTY,
            TransactionState.COMPLETE_COMMIT,
            TransactionState.COMPLETE_ABORT,
        ):
            respond(CONCURRENT_TRANSACTIONS, -1, -1)
            return
        self._pending.add(transactional_id)

        def bumped(new_id: int, epoch: int) -> None:
            if new_id == m.producer_id:  # a lost answer's retry names the epoch before
                self._fenced_epochs[transactional_id] = m.producer_epoch
            else:
                self._fenced_epochs.pop(transactional_id, None)
            new = dataclasses.replace(
                m,
                producer_id=new_id,
                producer_epoch=epoch,
                timeout_ms=timeout_ms,
                state=TransactionState.EMPTY,
                partitions=set(),
                last_update_ms=self._time_ms(),
                start_ms=-1,
            )
            self._write(
                new, lambda e: respond(e, new_id, epoch) if e == NONE else respond(e, -1, -1)
            )

        if m.producer_epoch < _MAX_EPOCH:
            bumped(m.producer_id, m.producer_epoch + 1)
            return

        def with_new_id(error: int, new_id: int) -> None:
            if error != NONE:
                self._pending.discard(transactional_id)
                respond(error, -1, -1)
            else:
                bumped(new_id, 0)

        self.broker.producer_ids.generate_producer_id(with_new_id)

    # -- AddPartitionsToTxn, AddOffsetsToTxn ----------------------------------------------------
    def add_partitions(
        self,
        transactional_id: str,
        producer_id: int,
        producer_epoch: int,
        partitions: list[TopicPartition],
        respond: Callable[[dict[TopicPartition, int]], None],
    ) -> None:
        def all_(error: int) -> None:
            respond(dict.fromkeys(partitions, error))

        m, error = self._current(transactional_id, producer_id, producer_epoch)
        if error != NONE or m is None:
            all_(error)
            return
        if m.state in (TransactionState.PREPARE_COMMIT, TransactionState.PREPARE_ABORT):
            all_(CONCURRENT_TRANSACTIONS)
            return
        if m.state is TransactionState.PREPARE_EPOCH_FENCE:
            all_(PRODUCER_FENCED)
            return
        image = self.broker.metadata_cache.image
        unknown = {tp for tp in partitions if image.partition(tp.topic, tp.partition) is None}
        if unknown:
            respond(
                {
                    tp: UNKNOWN_TOPIC_OR_PARTITION if tp in unknown else OPERATION_NOT_ATTEMPTED
                    for tp in partitions
                }
            )
            return
        if m.state is TransactionState.ONGOING and m.partitions.issuperset(partitions):
            all_(NONE)
            return
        now = self._time_ms()
        new = dataclasses.replace(
            m,
            state=TransactionState.ONGOING,
            partitions=m.partitions | set(partitions),
            start_ms=m.start_ms if m.state is TransactionState.ONGOING else now,
            last_update_ms=now,
        )
        self._pending.add(transactional_id)
        self._write(new, all_)

    # -- EndTxn ---------------------------------------------------------------------------------
    def end_transaction(
        self,
        transactional_id: str,
        producer_id: int,
        producer_epoch: int,
        commit: bool,
        respond: ErrorCallback,
    ) -> None:
        m, error = self._current(transactional_id, producer_id, producer_epoch)
        if error != NONE or m is None:
            respond(error)
            return
        state = m.state
        if state is TransactionState.ONGOING:
            prepared = dataclasses.replace(
                m,
                state=TransactionState.PREPARE_COMMIT if commit else TransactionState.PREPARE_ABORT,
                last_update_ms=self._time_ms(),
            )
            self._pending.add(transactional_id)

            def written(error: int) -> None:
                respond(error)
                if error == NONE:
                    self._pending.add(transactional_id)
                    self._send_markers(prepared)

            self._write(prepared, written)
            return
        done, preparing = (
            (TransactionState.COMPLETE_COMMIT, TransactionState.PREPARE_COMMIT)
            if commit
            else (TransactionState.COMPLETE_ABORT, TransactionState.PREPARE_ABORT)
        )
        if state is done:
            respond(NONE)  # a retry of an EndTxn that completed
        elif state is preparing:
            respond(CONCURRENT_TRANSACTIONS)
        elif state is TransactionState.PREPARE_EPOCH_FENCE:
            respond(PRODUCER_FENCED)
        else:
            respond(INVALID_TXN_STATE)

    def _current(
        self, transactional_id: str, producer_id: int, producer_epoch: int
    ) -> tuple[TransactionMetadata | None, int]:
        """The id's state if this producer may act on it, else why not."""
        error = self.ensure_loaded()
        if error != NONE:
            return None, error
        m = self.transactions.get(transactional_id)
        if m is None or m.producer_id != producer_id:
            return None, INVALID_PRODUCER_ID_MAPPING
        if producer_epoch != m.producer_epoch:
            return None, PRODUCER_FENCED
        if transactional_id in self._pending:
            return None, CONCURRENT_TRANSACTIONS
        return m, NONE

    # -- timeouts -------------------------------------------------------------------------------
    def tick(self) -> None:
        """The periodic task: abort the transactions that outlived their timeout (fencing their
        producers), and retry the markers that failed."""
        if self.ensure_loaded() != NONE:
            return
        retries, self._retries = self._retries, []
        for retry in retries:
            retry()
        now = self._time_ms()
        for m in list(self.transactions.values()):
            if (
                m.state is TransactionState.ONGOING
                and m.transactional_id not in self._pending
                and now > m.start_ms + m.timeout_ms
            ):
                log.info(
                    "aborting the transaction of %s (producer %d, epoch %d): older than its "
                    "timeout of %d ms",
                    m.transactional_id,
                    m.producer_id,
                    m.producer_epoch,
                    m.timeout_ms,
                )
                self._abort(m, bump_epoch=True)

    def _abort(self, m: TransactionMetadata, *, bump_epoch: bool) -> None:
        """Abort an ongoing transaction on the coordinator's own account (a timeout, a new
        producer of the id): the epoch is bumped first, so the old producer is fenced."""
        epoch = (
            m.producer_epoch + 1
            if bump_epoch and m.producer_epoch < _MAX_EPOCH
            else (m.producer_epoch)
        )
        if epoch != m.producer_epoch:
            self._fenced_epochs[m.transactional_id] = m.producer_epoch
        prepared = dataclasses.replace(
            m,
            producer_epoch=epoch,
            state=TransactionState.PREPARE_ABORT,
            last_update_ms=self._time_ms(),
        )
        self._pending.add(m.transactional_id)

        def written(error: int) -> None:
            if error == NONE:
                self._pending.add(m.transactional_id)
                self._send_markers(prepared)

        self._write(prepared, written)

    # -- markers --------------------------------------------------------------------------------
    def _send_markers(self, m: TransactionMetadata) -> None:
        """Write the outcome to every partition of the transaction, then complete it."""
        commit = m.state is TransactionState.PREPARE_COMMIT
        remaining = set(m.partitions)
        if not remaining:
            self._complete(m)
            return

        def answered(errors: dict[TopicPartition, int]) -> None:
            retry = []
            for tp, error in errors.items():
                if error in _MARKER_FINAL:
                    remaining.discard(tp)
                    if error not in (NONE, UNKNOWN_TOPIC_OR_PARTITION):
                        log.warning("marker of %s on %s refused: %d", m.transactional_id, tp, error)
                else:
                    retry.append(tp)
            if retry:
                self._later(lambda: send(retry))
            elif not remaining and self._log is not None:
                self._complete(m)

        def send(partitions: list[TopicPartition]) -> None:
            if self._log is None:  # no longer the coordinator: the next one finishes it
                return
            by_leader: dict[int, list[TopicPartition]] = {}
            image = self.broker.metadata_cache.image
            local = self.broker.config.node_id
            for tp in partitions:
                leader = image.leader_of(tp.topic, tp.partition)
                if leader is None and image.partition(tp.topic, tp.partition) is None:
                    answered({tp: UNKNOWN_TOPIC_OR_PARTITION})
                    continue
                by_leader.setdefault(leader.node_id if leader else -1, []).append(tp)
            for node_id, tps in by_leader.items():
                if node_id == local or self.broker.cluster is None:
                    self.writer.write_markers(
                        m.producer_id,
                        m.producer_epoch,
                        commit,
                        self._epoch,
                        tps,
                        _MARKER_TIMEOUT_MS,
                        answered,
                    )
                elif node_id < 0:  # no live leader yet
                    self._later(functools.partial(send, tps))
                else:
                    self._send_remote(image.brokers[node_id].address, m, commit, tps, answered)

        send(sorted(remaining))

    def _send_remote(
        self,
        address: str,
        m: TransactionMetadata,
        commit: bool,
        partitions: list[TopicPartition],
        answered: Callable[[dict[TopicPartition, int]], None],
    ) -> None:
        """WriteTxnMarkers to the leader of partitions, another broker."""
        cluster = self.broker.cluster
        assert cluster is not None
        request_class, response_class, _, version = APIS[ApiKeys.WRITE_TXN_MARKERS]
        cls = request_class[version]
        by_topic: dict[str, list[int]] = {}
        for tp in partitions:
            by_topic.setdefault(tp.topic, []).append(tp.partition)
        request = cls(
            markers=[
                cls.WritableTxnMarker(
                    producer_id=m.producer_id,
                    producer_epoch=m.producer_epoch,
                    transaction_result=commit,
                    topics=[
                        cls.WritableTxnMarker.WritableTxnMarkerTopic(
                            name=name, partition_indexes=indexes
                        )
                        for name, indexes in by_topic.items()
                    ],
                    coordinator_epoch=self._epoch,
                )
            ]
        )

        def on_response(response: Any, error: Exception | None) -> None:
            if response is None:  # unreachable: every partition again, later
                answered(dict.fromkeys(partitions, COORDINATOR_NOT_AVAILABLE))
                return
            answered(
                {
                    TopicPartition(t.name, p.partition_index): p.error_code
                    for marker in response.markers
                    for t in marker.topics
                    for p in t.partitions
                }
            )

        cluster.client.send(address, request, response_class, on_response)

    def _later(self, retry: Callable[[], None]) -> None:
        cluster = self.broker.cluster
        if cluster is not None:
            cluster.call_later(_MARKER_RETRY_MS, retry)
        else:
            self._retries.append(retry)  # the next periodic tick

    def _complete(self, m: TransactionMetadata) -> None:
        done = dataclasses.replace(
            m,
            state=TransactionState.COMPLETE_COMMIT
            if m.state is TransactionState.PREPARE_COMMIT
            else TransactionState.COMPLETE_ABORT,
            partitions=set(),
            last_update_ms=self._time_ms(),
        )
        self._write(done, _ignore)

    # -- the log --------------------------------------------------------------------------------
    def _write(self, new: TransactionMetadata, then: ErrorCallback) -> None:
        """Append new to the log; once on the ISR it is the id's state, then(error) is called
        and the id is no longer pending (markers mark it again)."""
        transactional_id = new.transactional_id

        def done(error: int) -> None:
            self._pending.discard(transactional_id)
            if error == NONE and self._log is not None:
                self.transactions[transactional_id] = new
            elif error in (NOT_COORDINATOR, NOT_LEADER_OR_FOLLOWER):
                error = NOT_COORDINATOR
            elif error != NONE:
                error = COORDINATOR_NOT_AVAILABLE
            then(error)

        transaction_log = self._log
        if transaction_log is None:
            done(NOT_COORDINATOR)
            return
        try:
            offset = transaction_log.append(new, self._time_ms())
        except KafkaError as exc:
            log.info("%s: state change of %s failed: %s", STATE_PARTITION, transactional_id, exc)
            done(exc.error_code)
            return
        replica_manager = self.broker.replica_manager
        replica_manager.high_watermark_moved(STATE_PARTITION)  # followers' fetches wake now
        replica_manager.await_replication(STATE_PARTITION, offset, _MARKER_TIMEOUT_MS, done)


def _ignore(error: int) -> None:
    """A completion's write: a failure leaves the transaction prepared, for the next
    coordinator to finish."""
