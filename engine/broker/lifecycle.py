"""BrokerLifecycleManager: a broker's standing with the controller (Kafka's
BrokerLifecycleManager).

STARTING: learn the cluster id (DescribeCluster; a new log directory takes the controller's,
a formatted one must match it), then register (BrokerRegistration, with a new incarnation id per
process start) and get the broker epoch. RECOVERY: heartbeat, asking to stay fenced until the
metadata applied here has caught up with the registration; RUNNING once the controller unfences
the broker. PENDING_CONTROLLED_SHUTDOWN (after stop): heartbeat WantShutDown until the controller
has moved every leadership away and answers ShouldShutDown; then SHUTTING_DOWN and the process
may exit. Heartbeats go every broker.heartbeat.interval.ms (sooner while starting or stopping);
a failed call is retried after a backoff; STALE_BROKER_EPOCH (the controller forgot us, or we
were replaced) registers again.

Not thread-safe: the event loop's thread alone uses it.
"""

import enum
import logging
import uuid
from collections.abc import Callable
from typing import Any

from kafka.protocol.admin.cluster import DescribeClusterRequest, DescribeClusterResponse

from engine.broker.config import KafkaConfig
from engine.errors import DUPLICATE_BROKER_REGISTRATION, NONE, STALE_BROKER_EPOCH
from engine.metadata.records import METADATA_VERSION
from engine.protocol.kraft_messages import (
    BrokerHeartbeatRequest,
    BrokerHeartbeatResponse,
    BrokerRegistrationRequest,
    BrokerRegistrationResponse,
)
from engine.protocol.network_client import NetworkClient

log = logging.getLogger(__name__)

_STARTING_INTERVAL_MS = 10  # Kafka heartbeats this soon while catching up
_SHUTDOWN_INTERVAL_MS = 50
_RETRY_BACKOFF_MS = 100


class BrokerState(enum.Enum):
    STARTING = "STARTING"
    RECOVERY = "RECOVERY"
    RUNNING = "RUNNING"
    PENDING_CONTROLLED_SHUTDOWN = "PENDING_CONTROLLED_SHUTDOWN"
    SHUTTING_DOWN = "SHUTTING_DOWN"


class FatalLifecycleError(Exception):
    """The broker cannot join this cluster (another cluster's log directory)."""


class BrokerLifecycleManager:
    def __init__(
        self,
        config: KafkaConfig,
        client: NetworkClient,
        controller: str,
        time_ms: Callable[[], int],
        cluster_id: str | None,
        metadata_offset: Callable[[], int],
        on_cluster_id: Callable[[str], None],
    ) -> None:
        self.config = config
        self.client = client
        self.controller = controller  # host:port
        self._time_ms = time_ms
        self.cluster_id = cluster_id
        self._metadata_offset = metadata_offset
        self._on_cluster_id = on_cluster_id
        self.incarnation_id = uuid.uuid4()
        self.state = BrokerState.STARTING
        self.broker_epoch = -1
        self.fatal: str | None = None
        self._cluster_checked = False
        self._in_flight = False
        self._next_ms = 0

    @property
    def registered(self) -> bool:
        return self.broker_epoch >= 0

    def begin_controlled_shutdown(self) -> None:
        if self.state in (BrokerState.RECOVERY, BrokerState.RUNNING):
            self.state = BrokerState.PENDING_CONTROLLED_SHUTDOWN
            self._next_ms = min(self._next_ms, self._time_ms() + _SHUTDOWN_INTERVAL_MS)
        elif self.state is BrokerState.STARTING:
            self.state = BrokerState.SHUTTING_DOWN

    @property
    def ready_to_stop(self) -> bool:
        return self.state is BrokerState.SHUTTING_DOWN or self.fatal is not None

    def tick(self) -> None:
        now = self._time_ms()
        if self._in_flight or now < self._next_ms or self.ready_to_stop:
            return
        self._in_flight = True  # one call at a time; its callback clears this
        if not self._cluster_checked:
            self._describe_cluster()
        elif not self.registered:
            self._register()
        else:
            self._heartbeat()

    def next_deadline_ms(self) -> int | None:
        return None if self._in_flight or self.ready_to_stop else self._next_ms

    def _retry_later(self, what: str, error: object) -> None:
        self._in_flight = False
        self._next_ms = self._time_ms() + _RETRY_BACKOFF_MS
        log.debug("%s failed (%s); retrying", what, error)

    # -- cluster id -----------------------------------------------------------------------------
    def _describe_cluster(self) -> None:
        request = DescribeClusterRequest(version=0, include_cluster_authorized_operations=False)
        self.client.send(self.controller, request, DescribeClusterResponse, self._on_cluster)

    def _on_cluster(self, response: Any, error: Exception | None) -> None:
        if error is not None or response.error_code != NONE:
            self._retry_later("DescribeCluster", error or response.error_code)
            return
        self._in_flight = False
        cluster_id = response.cluster_id
        if self.cluster_id is None:
            self.cluster_id = cluster_id
            self._on_cluster_id(cluster_id)
        elif self.cluster_id != cluster_id:
            self.fatal = (
                f"{self.config.log_dir} belongs to cluster {self.cluster_id}, but the controller "
                f"at {self.controller} runs cluster {cluster_id}"
            )
            log.error("%s; stopping", self.fatal)
            return
        self._cluster_checked = True
        self._next_ms = self._time_ms()

    # -- registration ---------------------------------------------------------------------------
    def _register(self) -> None:
        host, port = self.config.advertised_listener or (
            self.config.listen_host,
            self.config.listen_port,
        )
        request = BrokerRegistrationRequest(
            version=2,
            broker_id=self.config.node_id,
            cluster_id=self.cluster_id,
            incarnation_id=self.incarnation_id,
            listeners=[
                BrokerRegistrationRequest.Listener(
                    name="PLAINTEXT", host=host, port=port, security_protocol=0
                )
            ],
            features=[
                BrokerRegistrationRequest.Feature(
                    name="metadata.version",
                    min_supported_version=1,
                    max_supported_version=METADATA_VERSION,
                )
            ],
            rack=self.config.broker_rack,
            is_migrating_zk_broker=False,
            log_dirs=[],
        )
        self.client.send(self.controller, request, BrokerRegistrationResponse, self._on_registered)

    def _on_registered(self, response: Any, error: Exception | None) -> None:
        if error is not None:
            self._retry_later("registration", error)
            return
        if response.error_code != NONE:
            if response.error_code == DUPLICATE_BROKER_REGISTRATION:
                log.info(
                    "node %d: the controller still holds the previous process's session; "
                    "registering again when it expires",
                    self.config.node_id,
                )
            self._retry_later("registration", response.error_code)
            return
        self._in_flight = False
        self.broker_epoch = response.broker_epoch
        self.state = BrokerState.RECOVERY
        self._next_ms = self._time_ms()
        log.info("node %d registered with broker epoch %d", self.config.node_id, self.broker_epoch)

    # -- heartbeats -----------------------------------------------------------------------------
    def _heartbeat(self) -> None:
        request = BrokerHeartbeatRequest(
            version=0,
            broker_id=self.config.node_id,
            broker_epoch=self.broker_epoch,
            current_metadata_offset=self._metadata_offset(),
            want_fence=self.state is BrokerState.RECOVERY
            and self._metadata_offset() < self.broker_epoch,
            want_shut_down=self.state is BrokerState.PENDING_CONTROLLED_SHUTDOWN,
        )
        self.client.send(self.controller, request, BrokerHeartbeatResponse, self._on_heartbeat)

    def _on_heartbeat(self, response: Any, error: Exception | None) -> None:
        if error is not None:
            self._retry_later("heartbeat", error)
            return
        self._in_flight = False
        now = self._time_ms()
        if response.error_code == STALE_BROKER_EPOCH:
            log.warning(
                "node %d: stale broker epoch %d; registering again",
                self.config.node_id,
                self.broker_epoch,
            )
            self.broker_epoch = -1
            self.incarnation_id = uuid.uuid4()
            if self.state is not BrokerState.PENDING_CONTROLLED_SHUTDOWN:
                self.state = BrokerState.STARTING
            else:
                self.state = BrokerState.SHUTTING_DOWN
            self._next_ms = now
            return
        if response.error_code != NONE:
            self._retry_later("heartbeat", response.error_code)
            return
        if self.state is BrokerState.PENDING_CONTROLLED_SHUTDOWN:
            if response.should_shut_down:
                self.state = BrokerState.SHUTTING_DOWN
                log.info("node %d: controlled shutdown complete", self.config.node_id)
            self._next_ms = now + _SHUTDOWN_INTERVAL_MS
            return
        if self.state is BrokerState.RECOVERY and not response.is_fenced:
            self.state = BrokerState.RUNNING
            log.info("node %d is running (unfenced)", self.config.node_id)
        elif self.state is BrokerState.RUNNING and response.is_fenced:
            self.state = BrokerState.RECOVERY  # fenced by the controller: catch up again
        interval = (
            self.config.broker_heartbeat_interval_ms
            if self.state is BrokerState.RUNNING
            else _STARTING_INTERVAL_MS
        )
        self._next_ms = now + interval
