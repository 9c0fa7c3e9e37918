"""LocalBroker and LocalCluster: `kbench broker` processes started on free loopback ports, and
stopped.

A LocalCluster is a controller (process.roles=controller, node id 3000 as in Kafka's examples)
and N brokers (node ids 1..N, process.roles=broker, controller.quorum.voters naming the
controller), each a process with its own data directory, port and log file under the cluster's
directory; it is ready once the controller has unfenced every broker. Stopping sends SIGTERM to
the brokers together (each shuts down in a controlled way), then to the controller.

Scenarios and tests reach the engine through this and the Kafka protocol only, as any user would.
"""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping

from kafka.protocol.metadata.metadata import MetadataRequest, MetadataResponse

from scenarios.clients.cluster import ClusterError, KafkaConnection

CONTROLLER_ID = 3000
_READY_TIMEOUT_S = 60.0


class LocalBroker:
    def __init__(
        self, data_dir: str, settings: dict[str, str] | None = None, log_path: str | None = None
    ):
        self.data_dir = data_dir
        self.settings = dict(settings or {})
        self.log_path = log_path or os.path.join(
            os.path.dirname(data_dir.rstrip("/")), "broker.log"
        )
        self.process: subprocess.Popen | None = None
        self.bootstrap = ""

    @property
    def port(self) -> int:
        return int(self.bootstrap.rsplit(":", 1)[1])

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError("the broker has not been started")
        return self.process.pid

    def start(self, port: int = 0) -> "LocalBroker":
        args = [sys.executable, "-m", "engine.cli", "broker", "--data-dir", self.data_dir]
        args += ["--listen", f"127.0.0.1:{port}"]
        for key, value in self.settings.items():
            args += ["--set", f"{key}={value}"]
        os.makedirs(os.path.dirname(self.log_path) or ".", exist_ok=True)  # beside a new data dir
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=log, text=True)
        assert self.process.stdout is not None  # stdout=PIPE
        line = self.process.stdout.readline()
        if not line.startswith(("kbench broker listening on ", "kbench controller listening on ")):
            self.process.wait(timeout=10)
            raise RuntimeError(f"the broker did not start; see {self.log_path}")
        self.bootstrap = line.rsplit(" ", 1)[1].strip()
        return self

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Stop it (clean shutdown on SIGTERM) and return its exit status."""
        if self.process is None:
            return 0
        assert self.process.stdout is not None  # stdout=PIPE
        if self.process.stdout.closed:
            return self.process.returncode
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            code = self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        self.process.stdout.close()
        return code

    def restart(self) -> "LocalBroker":
        port = self.port
        self.stop()
        return self.start(port)

    def __enter__(self) -> "LocalBroker":
        return self.start()

    def __exit__(self, *_) -> None:
        self.stop()


class LocalCluster:
    """A controller and `brokers` broker processes; `settings` go to every process (topic
    defaults are the controller's to apply, replication settings the brokers')."""

    def __init__(
        self,
        directory: str,
        brokers: int = 3,
        settings: Mapping[str, str] | None = None,
        racks: list[str] | None = None,
    ) -> None:
        if brokers < 1:
            raise ValueError(f"a cluster needs at least 1 broker, got {brokers}")
        if racks is not None and len(racks) != brokers:
            raise ValueError(f"{len(racks)} racks for {brokers} brokers")
        self.directory = directory
        self.settings = {
            "offsets.topic.replication.factor": str(min(3, brokers)),
            **(settings or {}),
        }
        self.racks = racks
        self.controller = LocalBroker(
            os.path.join(directory, "controller"),
            {**self.settings, "process.roles": "controller", "node.id": str(CONTROLLER_ID)},
            log_path=os.path.join(directory, "controller.log"),
        )
        self.brokers: dict[int, LocalBroker] = {}
        self._count = brokers

    @property
    def bootstrap(self) -> str:
        """The addresses of the brokers running now: a client handed a killed broker's address
        backs off from it, longer each time, and under load can spend its whole bootstrap
        timeout (kafka-python: 30 s) before it tries a live one."""
        return ",".join(
            b.bootstrap
            for b in self.brokers.values()
            if b.process is not None and b.process.poll() is None
        )

    def _broker(self, node_id: int) -> LocalBroker:
        settings = {
            **self.settings,
            "process.roles": "broker",
            "node.id": str(node_id),
            "controller.quorum.voters": f"{CONTROLLER_ID}@{self.controller.bootstrap}",
        }
        if self.racks is not None:
            settings["broker.rack"] = self.racks[node_id - 1]
        return LocalBroker(
            os.path.join(self.directory, f"broker-{node_id}"),
            settings,
            log_path=os.path.join(self.directory, f"broker-{node_id}.log"),
        )

    def start(self) -> "LocalCluster":
        os.makedirs(self.directory, exist_ok=True)
        try:
            self.controller.start()
            for node_id in range(1, self._count + 1):
                self.brokers[node_id] = self._broker(node_id).start()
            self.wait_for_brokers(set(self.brokers))
        except BaseException:
            self.stop()
            raise
        return self

    def wait_for_brokers(self, node_ids: set[int], timeout_s: float = _READY_TIMEOUT_S) -> None:
        """Until Metadata from a broker lists exactly these brokers as alive (registered and
        unfenced); ClusterError when it does not within timeout_s."""
        deadline = time.monotonic() + timeout_s
        seen: set[int] = set()
        while time.monotonic() < deadline:
            for node_id, broker in self.brokers.items():
                if node_id not in node_ids or broker.process is None:
                    continue
                try:
                    with KafkaConnection(broker.bootstrap, timeout_s=5) as connection:
                        response = connection.request(
                            MetadataRequest[12](topics=[], allow_auto_topic_creation=False),
                            MetadataResponse,
                        )
                    seen = {b.node_id for b in response.brokers}
                except (OSError, ClusterError):
                    continue
                if seen == node_ids:
                    return
                break
            time.sleep(0.1)
        raise ClusterError(
            f"brokers {sorted(node_ids)} did not all become alive in {timeout_s:.0f} s "
            f"(alive: {sorted(seen)}); see the logs in {self.directory}"
        )

    def kill(self, node_id: int) -> None:
        """SIGKILL a broker: no controlled shutdown, the controller fences it when its session
        runs out."""
        self.brokers[node_id].stop(signal.SIGKILL)

    def stop_broker(self, node_id: int) -> int:
        return self.brokers[node_id].stop()

    def restart(self, node_id: int) -> LocalBroker:
        """Start a stopped or killed broker again on its port."""
        broker = self.brokers[node_id]
        broker.stop()
        return broker.start(broker.port)

    def stop(self) -> None:
        running = [b for b in self.brokers.values() if b.process and b.process.poll() is None]
        for broker in running:  # all at once: each moves its leaderships away
            assert broker.process is not None
            broker.process.send_signal(signal.SIGTERM)
        for broker in self.brokers.values():
            broker.stop()
        self.controller.stop()

    def __enter__(self) -> "LocalCluster":
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
