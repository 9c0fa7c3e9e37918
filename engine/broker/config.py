"""KafkaConfig: the broker's settings under Kafka's property names, with Kafka's defaults.

Sources, later ones winning: defaults, a server.properties file, `--set key=value` overrides.
The log.* settings become the default LogConfig of every topic; topics may override them with
topic-level names (segment.bytes, retention.ms, ...).
"""

from collections.abc import Mapping
from dataclasses import dataclass, field

from engine.storage.config import PROPERTY_NAMES, LogConfig

_INT_MAX = (1 << 31) - 1


@dataclass(frozen=True)
class KafkaConfig:
    node_id: int = 0  # node.id (broker.id)
    listen_host: str = "127.0.0.1"
    listen_port: int = 9092
    log_dir: str = "/tmp/kbench-logs"  # log.dirs: one directory
    auto_create_topics_enable: bool = True  # auto.create.topics.enable
    num_partitions: int = 1  # num.partitions
    default_replication_factor: int = 1  # default.replication.factor
    socket_request_max_bytes: int = 104_857_600  # socket.request.max.bytes
    zero_copy_enable: bool = True  # zero.copy.enable: os.sendfile, or read + send
    group_min_session_timeout_ms: int = 6_000
    group_max_session_timeout_ms: int = 1_800_000
    group_initial_rebalance_delay_ms: int = 3_000
    min_insync_replicas: int = 1  # min.insync.replicas
    log_retention_check_interval_ms: int = 300_000  # log.retention.check.interval.ms
    log_flush_scheduler_interval_ms: int = 1_000  # how often flush.ms is looked at
    log_flush_offset_checkpoint_interval_ms: int = 60_000
    connections_max_idle_ms: int = 600_000  # connections.max.idle.ms
    max_connections: int = _INT_MAX  # max.connections
    max_connections_per_ip: int = _INT_MAX  # max.connections.per.ip
    # queued.max.request.bytes: bytes of requests read but not yet answered, across all
    # connections, before reading stops (Kafka: -1, bounded by queued.max.requests instead)
    queued_max_request_bytes: int = -1
    # max.broker.partitions (KIP-578's name): partitions this broker may hold; requests that
    # would exceed it are refused
    max_broker_partitions: int = 10_000
    log: LogConfig = field(default_factory=LogConfig)
    unknown: tuple[str, ...] = ()  # properties that are not broker settings, reported at start

    @property
    def listener(self) -> str:
        return f"{self.listen_host}:{self.listen_port}"


_INT_SETTINGS = {
    "node.id": "node_id",
    "broker.id": "node_id",
    "num.partitions": "num_partitions",
    "default.replication.factor": "default_replication_factor",
    "socket.request.max.bytes": "socket_request_max_bytes",
    "group.min.session.timeout.ms": "group_min_session_timeout_ms",
    "group.max.session.timeout.ms": "group_max_session_timeout_ms",
    "group.initial.rebalance.delay.ms": "group_initial_rebalance_delay_ms",
    "min.insync.replicas": "min_insync_replicas",
    "log.retention.check.interval.ms": "log_retention_check_interval_ms",
    "log.flush.scheduler.interval.ms": "log_flush_scheduler_interval_ms",
    "log.flush.offset.checkpoint.interval.ms": "log_flush_offset_checkpoint_interval_ms",
    "connections.max.idle.ms": "connections_max_idle_ms",
    "max.connections": "max_connections",
    "max.connections.per.ip": "max_connections_per_ip",
    "queued.max.request.bytes": "queued_max_request_bytes",
    "max.broker.partitions": "max_broker_partitions",
}
_BOOL_SETTINGS = {
    "auto.create.topics.enable": "auto_create_topics_enable",
    "zero.copy.enable": "zero_copy_enable",
}


def parse_properties(text: str) -> dict[str, str]:
    """Java .properties, the subset server.properties uses: key=value or key: value, # comments."""
    properties = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in "#!":
            continue
        separator = min((i for i in (line.find("="), line.find(":")) if i > 0), default=-1)
        if separator < 0:
            raise ValueError(f"line {number}: expected key=value, got {raw!r}")
        properties[line[:separator].strip()] = line[separator + 1 :].strip()
    return properties


def parse_listener(value: str) -> tuple[str, int]:
    """HOST:PORT, or a Kafka listener such as PLAINTEXT://HOST:PORT."""
    address = value.split("://", 1)[-1]
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"listener {value!r}: expected HOST:PORT, e.g. 127.0.0.1:9092")
    return host.strip("[]"), int(port)


def kafka_config(properties: Mapping[str, str]) -> KafkaConfig:
    """A KafkaConfig from Kafka property names; raises ValueError naming a bad value."""
    values: dict[str, object] = {}
    unknown = []
    for key, raw in properties.items():
        if key in _INT_SETTINGS:
            try:
                values[_INT_SETTINGS[key]] = int(raw)
            except ValueError:
                raise ValueError(f"{key} must be an integer, got {raw!r}") from None
        elif key in _BOOL_SETTINGS:
            if raw.lower() not in ("true", "false"):
                raise ValueError(f"{key} must be true or false, got {raw!r}")
            values[_BOOL_SETTINGS[key]] = raw.lower() == "true"
        elif key in ("listeners", "listen"):
            values["listen_host"], values["listen_port"] = parse_listener(raw.split(",")[0])
        elif key in ("log.dirs", "log.dir"):
            values["log_dir"] = raw.split(",")[0]
        elif key not in PROPERTY_NAMES:
            unknown.append(key)
    log_config = LogConfig.from_properties(properties)
    config = KafkaConfig(log=log_config, unknown=tuple(unknown), **values)  # type: ignore[arg-type]
    if config.num_partitions < 1:
        raise ValueError(f"num.partitions must be at least 1, got {config.num_partitions}")
    return config
