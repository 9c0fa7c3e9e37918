"""`kbench broker`: start the engine on a listener and serve until SIGTERM or SIGINT.

With process.roles=controller the process is a cluster's controller (ControllerServer); with
process.roles=broker and controller.quorum.voters, a broker of that cluster (a stop is then a
controlled shutdown: its leaderships move first); with neither (broker,controller and no voters,
the default), one broker that is its own controller.

At start the soft RLIMIT_NOFILE is raised to the hard limit, as Kafka's documentation advises for
brokers, with a warning when it stays low: half of it is the budget of open segment files, and
segments beyond it are reopened when used (see engine/storage/file_handles.py).

A clean shutdown answers what is in flight, flushes every log and writes the checkpoints and the
clean-shutdown marker, so the next start skips recovery; only then is "stopped cleanly" logged
(exit status 0). If the event loop fails, the logs are left as a crash leaves them, without the
marker, so the next start recovers them; that, and a shutdown that could not flush or write the
checkpoints, is logged as an error with exit status 1.
"""

import gc
import logging
import signal
import sys

from engine.broker.broker_server import BrokerServer
from engine.broker.config import KafkaConfig
from engine.controller.controller_server import ControllerServer
from engine.records.validator import RECORD_WALK
from engine.server.socket_server import SocketServer
from engine.storage.file_handles import raise_open_files_limit, segment_files_budget

log = logging.getLogger("kbench.broker")

# Below this many descriptors the broker says so: Kafka's docs suggest 100,000 for brokers.
_LOW_OPEN_FILES_LIMIT = 4096


def run_broker(config: KafkaConfig) -> int:
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for key in config.unknown:
        log.warning("ignoring %s: not a setting this broker has", key)
    soft, hard = raise_open_files_limit()
    budget = segment_files_budget(soft)
    if soft < _LOW_OPEN_FILES_LIMIT:
        log.warning(
            "the open-files limit (RLIMIT_NOFILE) is %d and its hard limit %d: at most %d "
            "segment files stay open, others are reopened when used; raise it (ulimit -n, "
            "systemd LimitNOFILE=) for many partitions",
            soft,
            hard,
            budget,
        )
    if config.is_controller and config.is_broker and config.in_cluster:
        log.error(
            "process.roles=broker,controller with controller.quorum.voters is not supported: "
            "run the controller as its own process (process.roles=controller)"
        )
        return 1
    node: BrokerServer | ControllerServer
    try:
        # a broker loads every log, recovering them after a crash
        node = BrokerServer(config) if config.is_broker else ControllerServer(config)
    except (OSError, RuntimeError, ValueError) as exc:
        log.error("cannot open the log directory %s: %s", config.log_dir, exc)
        return 1
    if isinstance(node, ControllerServer):
        return _serve(node, config, "controller")
    broker = node
    segments = broker.log_manager.segment_count
    log.info(
        "%d partitions, %d segments; up to %d segment files open at once (RLIMIT_NOFILE %d); "
        "records validated by the %s walk",
        len(broker.log_manager.logs),
        segments,
        budget,
        soft,
        RECORD_WALK,
    )
    return _serve(broker, config, "broker")


def _serve(node: "BrokerServer | ControllerServer", config: KafkaConfig, role: str) -> int:
    server = SocketServer(node)
    try:
        host, port = server.bind()
    except OSError as exc:
        node.shutdown()
        log.error("cannot listen on %s: %s", config.listener, exc.strerror)
        return 1
    node.advertise(host, port)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: server.stop())
    log.info(
        "node %d serving %s as %s from %s (zero.copy.enable=%s)",
        config.node_id,
        f"{host}:{port}",
        role,
        config.log_dir,
        str(config.zero_copy_enable).lower(),
    )
    # What starting made (modules, the loaded logs, metadata) lives as long as the process: out
    # of the collector's sight, a full collection no longer walks those ~45,000 objects, which
    # stalled the event loop 15-30 ms at a time (measured at 10 MB/s, issue 11).
    gc.collect()
    gc.freeze()
    print(f"kbench {role} listening on {host}:{port}", flush=True)
    try:
        server.serve()
    except Exception:
        log.exception(
            "the event loop failed: stopping without a clean shutdown; the next start recovers "
            "the logs"
        )
        node.close_unclean()
        return 1
    try:
        node.shutdown()
    except Exception as exc:
        log.error("the shutdown was not clean: %s; the next start recovers the logs", exc)
        return 1
    if node.failed:
        log.error("stopped: %s", node.failed)
        return 1
    log.info("stopped cleanly")
    return 0
