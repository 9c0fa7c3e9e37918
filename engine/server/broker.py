"""`kbench broker`: start the engine on a listener and serve until SIGTERM or SIGINT.

A clean shutdown answers what is in flight, flushes every log and writes the checkpoints and the
clean-shutdown marker, so the next start skips recovery.
"""

import logging
import signal
import sys

from engine.broker.config import KafkaConfig
from engine.broker.kafka_apis import KafkaApis
from engine.server.socket_server import SocketServer

log = logging.getLogger("kbench.broker")


def run_broker(config: KafkaConfig) -> int:
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for key in config.unknown:
        log.warning("ignoring %s: not a setting this broker has", key)
    apis = KafkaApis(config)
    server = SocketServer(apis)
    try:
        host, port = server.bind()
    except OSError as exc:
        apis.shutdown()
        log.error("cannot listen on %s: %s", config.listener, exc.strerror)
        return 1
    apis.advertise(host, port)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: server.stop())
    log.info(
        "node %d serving %s from %s (zero.copy.enable=%s)",
        config.node_id,
        f"{host}:{port}",
        config.log_dir,
        str(config.zero_copy_enable).lower(),
    )
    print(f"kbench broker listening on {host}:{port}", flush=True)
    try:
        server.serve()
    finally:
        apis.shutdown()
        log.info("stopped cleanly")
    return 0
