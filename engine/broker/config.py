"""KafkaConfig: the broker's settings under Kafka's property names, with Kafka's defaults and rules.

Sources, later ones winning: defaults, a server.properties file, `--set key=value` overrides.
The log.* settings become the default LogConfig of every topic; topics may override them with
topic-level names (segment.bytes, retention.ms, ...). Each setting is declared once, as a field
made by `setting()` (see engine/storage/config.py): a value outside what Kafka allows, or a
misspelt name, is refused at start with a one-line ValueError; names of Kafka settings this
broker does not have are kept in `unknown`, for a warning.
"""

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field

from engine.storage.config import (
    INT_MAX,
    LONG_MAX,
    LogConfig,
    NonEmpty,
    Range,
    check_settings,
    property_names,
    read_settings,
    setting,
)

_LOOPBACK = "127.0.0.1"


def parse_listener(value: str, default_host: str | None = None) -> tuple[str, int]:
    """HOST:PORT, or a Kafka listener such as PLAINTEXT://HOST:PORT; an empty host (Kafka's
    PLAINTEXT://:9092) is `default_host` when one is given."""
    address = value.split("://", 1)[-1]
    host, _, port = address.rpartition(":")
    host = host or (default_host or "")
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"listener {value!r}: expected HOST:PORT, e.g. 127.0.0.1:9092")
    return host.strip("[]"), int(port)


def _listener(value: str) -> tuple[str, int]:
    # The first of Kafka's listeners; an empty host, which Kafka binds to every interface and
    # advertises under the canonical host name, serves loopback here, as kbench's default.
    try:
        return parse_listener(value.split(",")[0].strip(), default_host=_LOOPBACK)
    except ValueError:
        raise ValueError(
            f"listeners must be HOST:PORT or NAME://HOST:PORT (PLAINTEXT://:9092), got {value!r}"
        ) from None


def _roles(value: str) -> tuple[str, ...]:
    return tuple(sorted({r.strip() for r in value.split(",") if r.strip()}))


def parse_voters(value: str) -> tuple[tuple[int, str, int], ...]:
    """controller.quorum.voters: ID@HOST:PORT,... as (id, host, port) tuples."""
    voters = []
    for entry in filter(None, (e.strip() for e in value.split(","))):
        node, at, address = entry.partition("@")
        if not at or not node.isdigit():
            raise ValueError(f"controller.quorum.voters must be ID@HOST:PORT,..., got {value!r}")
        host, port = parse_listener(address)
        voters.append((int(node), host, port))
    return tuple(voters)


STANDARD_AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"


def _authorizer(value: str) -> str:
    if value not in ("", STANDARD_AUTHORIZER):
        raise ValueError(
            f"authorizer.class.name must be empty or {STANDARD_AUTHORIZER} (KRaft's "
            f"authorizer, the one kbench has), got {value!r}"
        )
    return value


def _super_users(value: str) -> str:
    for principal in filter(None, (p.strip() for p in value.split(";"))):
        kind, colon, name = principal.partition(":")
        if not (colon and kind and name):
            raise ValueError(
                f"super.users must be principals TYPE:NAME separated by ';' "
                f"(User:admin;User:ANONYMOUS), got {principal!r}"
            )
    return value


_LISTENERS = ("listeners", "listen")  # listen: kbench's shorthand
_LOG_DIRS = ("log.dirs", "log.dir")
_LISTENERS_DOC = (
    "The addresses the broker listens on, as a comma-separated list of listener URIs "
    "(PLAINTEXT://host:port)."
)


@dataclass(frozen=True)
class KafkaConfig:
    node_id: int = setting(
        0,
        Range(0, INT_MAX),
        "node.id",
        "broker.id",
        doc="This server's id in the cluster, whether it runs as broker, controller or both.",
    )
    listen_host: str = setting(
        _LOOPBACK,
        None,
        *_LISTENERS,
        parse=lambda v: _listener(v)[0],
        doc=_LISTENERS_DOC,
    )
    listen_port: int = setting(
        9092,
        Range(0, 65535),
        *_LISTENERS,
        parse=lambda v: _listener(v)[1],
        doc=_LISTENERS_DOC,
    )
    # log.dirs: one directory, the first listed
    log_dir: str = setting(
        "/tmp/kbench-logs",
        NonEmpty("a directory"),
        *_LOG_DIRS,
        parse=lambda v: v.split(",")[0].strip(),
        doc="The directories the broker keeps its partitions' log data in.",
    )
    auto_create_topics_enable: bool = setting(
        True,
        None,
        "auto.create.topics.enable",
        doc="Whether the broker creates a topic that does not exist when a client asks for its "
        "metadata.",
    )
    num_partitions: int = setting(
        1,
        Range(1, INT_MAX),
        "num.partitions",
        doc="How many partitions a topic gets when it is created without a count, as an "
        "auto-created one is.",
    )
    # Kafka checks no range here, but its controller refuses topics of replication factor < 1
    default_replication_factor: int = setting(
        1,
        Range(1, INT_MAX),
        "default.replication.factor",
        doc="How many replicas each partition of a topic gets when it is created without a "
        "replication factor, as an auto-created one is.",
    )
    socket_request_max_bytes: int = setting(
        104_857_600,
        Range(1, INT_MAX),
        "socket.request.max.bytes",
        doc="The largest request, in bytes, the broker reads from a connection.",
    )
    zero_copy_enable: bool = setting(
        True,
        None,
        "zero.copy.enable",
        doc="kbench's own: whether fetch responses send log data straight from the file with "
        "sendfile (zero copy) rather than reading it into memory and sending it.",
    )
    # Kafka checks no range on the classic group timeouts; negative ones mean nothing
    group_min_session_timeout_ms: int = setting(
        6_000,
        Range(0, INT_MAX),
        "group.min.session.timeout.ms",
        doc="The shortest session timeout a consumer group member may ask for: shorter ones "
        "detect failures sooner but need more frequent heartbeats.",
    )
    group_max_session_timeout_ms: int = setting(
        1_800_000,
        Range(0, INT_MAX),
        "group.max.session.timeout.ms",
        doc="The longest session timeout a consumer group member may ask for: longer ones give "
        "members more time between heartbeats but detect failures later.",
    )
    group_initial_rebalance_delay_ms: int = setting(
        3_000,
        Range(0, INT_MAX),
        "group.initial.rebalance.delay.ms",
        doc="How long the group coordinator waits for more members to join an empty group "
        "before its first rebalance, so that fewer rebalances follow.",
    )
    log_retention_check_interval_ms: int = setting(
        300_000,
        Range(1, LONG_MAX),
        "log.retention.check.interval.ms",
        doc="How often the broker looks for log segments its retention settings allow it to "
        "delete.",
    )
    # Kafka checks no range here (<= 0: its flusher runs once); kbench's loop would flush on
    # every turn, or never.
    log_flush_scheduler_interval_ms: int = setting(
        1_000,
        Range(1, LONG_MAX),
        "log.flush.scheduler.interval.ms",
        doc="How often the log flusher checks whether a log is due to be flushed to disk by "
        "flush.ms.",
    )
    log_flush_offset_checkpoint_interval_ms: int = setting(
        60_000,
        Range(0, INT_MAX),
        "log.flush.offset.checkpoint.interval.ms",
        doc="How often the broker writes down the last flushed offset of each log, the point "
        "log recovery starts from after an unclean shutdown.",
    )
    # Kafka: any negative value keeps idle connections open; kbench keeps to -1
    connections_max_idle_ms: int = setting(
        600_000,
        Range(1, LONG_MAX, "never close"),
        "connections.max.idle.ms",
        doc="How long a connection may stay idle before the broker closes it.",
    )
    # Kafka allows 0 for both, meaningful only with per-listener or per-IP overrides, which
    # kbench does not have: 0 would refuse every client.
    max_connections: int = setting(
        INT_MAX,
        Range(1, INT_MAX),
        "max.connections",
        doc="How many connections the broker accepts at once.",
    )
    max_connections_per_ip: int = setting(
        INT_MAX,
        Range(1, INT_MAX),
        "max.connections.per.ip",
        doc="How many connections the broker accepts at once from a single IP address.",
    )
    # -1: unbounded (Kafka: any value <= 0). A bound must hold the largest request, as Kafka
    # requires (see __post_init__).
    queued_max_request_bytes: int = setting(
        -1,
        Range(1, LONG_MAX, "unbounded"),
        "queued.max.request.bytes",
        doc="How many bytes of requests, read but not yet answered, may be queued before the "
        "broker stops reading more; -1 sets no limit.",
    )
    max_broker_partitions: int = setting(
        10_000,
        Range(1, INT_MAX),
        "max.broker.partitions",
        doc="The most partition replicas this broker may hold; requests that would create more "
        "are refused.",
    )
    # Off, the value goes out as Kafka sends a sensitive one: clients here are never
    # authenticated, and an absolute path tells them about the host.
    describe_configs_paths_enable: bool = setting(
        False,
        None,
        "describe.configs.paths.enable",
        doc="kbench's own: whether DescribeConfigs shows the value of log.dirs; off, it is sent "
        "as a sensitive value, null.",
    )
    # client quotas (KIP-13, KIP-219; Kafka's QuotaConfig)
    quota_window_num: int = setting(
        11,
        Range(1, INT_MAX),
        "quota.window.num",
        doc="How many samples a client quota's byte rate is measured over.",
    )
    quota_window_size_seconds: int = setting(
        1,
        Range(1, INT_MAX),
        "quota.window.size.seconds",
        doc="How many seconds each sample of a client quota's byte rate spans.",
    )
    offsets_commit_timeout_ms: int = setting(
        5_000,
        Range(1, INT_MAX),
        "offsets.commit.timeout.ms",
        doc="How long an offset commit waits for every replica of the offsets topic to have it "
        "before it fails with a timeout.",
    )
    # -- the cluster (KRaft's names and defaults) --
    # both roles with no voters is the single-process broker of old
    process_roles: tuple[str, ...] = setting(
        ("broker", "controller"),
        None,
        "process.roles",
        parse=lambda v: _roles(v),
        doc="The roles this server plays in a KRaft cluster: broker, controller, or both.",
    )
    # empty: this process is its own controller (single process)
    controller_quorum_voters: tuple[tuple[int, str, int], ...] = setting(
        (),
        None,
        "controller.quorum.voters",
        parse=lambda v: parse_voters(v),
        doc="The controllers that vote in the metadata quorum, as a comma-separated list of "
        "id@host:port.",
    )
    broker_rack: str | None = setting(
        None,
        None,
        "broker.rack",
        doc="The rack this broker is in, used to spread replicas across racks and to let "
        "consumers fetch from a replica near them.",
    )
    advertised_listener: tuple[str, int] | None = setting(
        None,
        None,
        "advertised.listeners",
        parse=lambda v: _listener(v),
        doc="The addresses the broker gives clients in metadata, when they differ from the ones "
        "it listens on; unset, the listeners are advertised.",
    )
    broker_heartbeat_interval_ms: int = setting(
        2_000,
        Range(1, INT_MAX),
        "broker.heartbeat.interval.ms",
        doc="How often a broker sends a heartbeat to the active controller.",
    )
    broker_session_timeout_ms: int = setting(
        9_000,
        Range(1, INT_MAX),
        "broker.session.timeout.ms",
        doc="How long a broker stays alive in the controller's eyes without a heartbeat "
        "reaching it; after that it is fenced.",
    )
    controller_quorum_request_timeout_ms: int = setting(
        2_000,
        Range(1, INT_MAX),
        "controller.quorum.request.timeout.ms",
        doc="How long a request to the controller quorum waits for its answer before it is "
        "retried or fails.",
    )
    offsets_topic_replication_factor: int = setting(
        3,
        Range(1, 32_767),
        "offsets.topic.replication.factor",
        doc="The replication factor the internal offsets topic, __consumer_offsets, is created "
        "with.",
    )
    # transactions (KIP-98)
    transaction_max_timeout_ms: int = setting(
        900_000,
        Range(1, INT_MAX),
        "transaction.max.timeout.ms",
        doc="The longest transaction.timeout.ms a producer may ask for; a longer one is refused "
        "when the producer initializes its id.",
    )
    transaction_abort_timed_out_transaction_cleanup_interval_ms: int = setting(
        10_000,
        Range(1, INT_MAX),
        "transaction.abort.timed.out.transaction.cleanup.interval.ms",
        doc="How often the transaction coordinator looks for transactions that outlived their "
        "timeout, to abort them.",
    )
    replica_lag_time_max_ms: int = setting(
        30_000,
        Range(1, LONG_MAX),
        "replica.lag.time.max.ms",
        doc="A follower that has not caught up with the leader's log end for this long is "
        "removed from the ISR.",
    )
    replica_fetch_wait_max_ms: int = setting(
        500,
        Range(0, INT_MAX),
        "replica.fetch.wait.max.ms",
        doc="How long a follower's fetch may wait at the leader for data; keep it below "
        "replica.lag.time.max.ms.",
    )
    replica_fetch_min_bytes: int = setting(
        1,
        Range(1, INT_MAX),
        "replica.fetch.min.bytes",
        doc="How many bytes a follower's fetch waits for at the leader, up to "
        "replica.fetch.wait.max.ms, before it is answered.",
    )
    replica_fetch_max_bytes: int = setting(
        1_048_576,
        Range(0, INT_MAX),
        "replica.fetch.max.bytes",
        doc="How many bytes a follower fetches per partition at most; a first record batch "
        "larger than this still comes, so replication can progress.",
    )
    replica_fetch_response_max_bytes: int = setting(
        10_485_760,
        Range(0, INT_MAX),
        "replica.fetch.response.max.bytes",
        doc="How many bytes a follower's whole fetch response may carry; a first record batch "
        "larger than this still comes, so replication can progress.",
    )
    replica_fetch_backoff_ms: int = setting(
        1_000,
        Range(0, INT_MAX),
        "replica.fetch.backoff.ms",
        doc="How long a follower waits after a failed fetch before it fetches again.",
    )
    replica_socket_timeout_ms: int = setting(
        30_000,
        Range(1, INT_MAX),
        "replica.socket.timeout.ms",
        doc="The socket timeout of a follower's requests to the leader.",
    )
    replica_selector_class: str | None = setting(
        None,
        None,
        "replica.selector.class",
        doc="The class that picks the replica a consumer fetches from, e.g. "
        "org.apache.kafka.common.replica.RackAwareReplicaSelector (KIP-392); unset, consumers "
        "fetch from the leader.",
    )
    # -- authorization (Kafka's StandardAuthorizer; engine/broker/authorizer.py) --
    # empty: every request allowed and the ACL APIs answer SECURITY_DISABLED
    authorizer_class_name: str = setting(
        "",
        None,
        "authorizer.class.name",
        parse=lambda v: _authorizer(v),
        doc="The authorizer that checks each request against the ACLs; empty, no request is "
        "checked.",
    )
    super_users: str = setting(
        "",
        None,
        "super.users",
        parse=lambda v: _super_users(v),
        doc="Principals allowed every operation whatever the ACLs say, separated by ';' "
        "(User:admin;User:ANONYMOUS).",
    )
    allow_everyone_if_no_acl_found: bool = setting(
        False,
        None,
        "allow.everyone.if.no.acl.found",
        doc="Whether a resource no ACL matches is open to everyone; false leaves it to super "
        "users alone.",
    )
    # fetch sessions (KIP-227, engine/broker/fetch_session.py)
    max_incremental_fetch_session_cache_slots: int = setting(
        1_000,
        Range(0, INT_MAX),
        "max.incremental.fetch.session.cache.slots",
        doc="How many incremental fetch sessions the broker keeps at once.",
    )
    min_incremental_fetch_session_eviction_ms: int = setting(
        120_000,
        Range(0, LONG_MAX),
        "min.incremental.fetch.session.eviction.ms",
        doc="kbench's own (a constant, 120 s, in Kafka): how long a new fetch session is safe "
        "from eviction by a session with more partitions.",
    )
    log: LogConfig = field(default_factory=LogConfig)
    unknown: tuple[str, ...] = ()  # properties that are not broker settings, reported at start
    # the settings' properties as given (server.properties, --set): DescribeConfigs reports them
    # as STATIC_BROKER_CONFIG
    static_properties: Mapping[str, str] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        check_settings(self)
        # Settings that only make sense together.
        if self.group_max_session_timeout_ms < self.group_min_session_timeout_ms:
            raise ValueError(
                "group.max.session.timeout.ms must be at least group.min.session.timeout.ms "
                f"({self.group_min_session_timeout_ms}), got {self.group_max_session_timeout_ms}"
            )
        if self.queued_max_request_bytes != -1 and (
            self.queued_max_request_bytes < self.socket_request_max_bytes
        ):
            raise ValueError(
                "queued.max.request.bytes must be -1 (unbounded) or at least "
                f"socket.request.max.bytes ({self.socket_request_max_bytes}), "
                f"got {self.queued_max_request_bytes}"
            )
        # Stricter than Kafka, which starts and then fails every acks=all produce to a topic of
        # the default replication factor with NOT_ENOUGH_REPLICAS.
        if self.log.min_insync_replicas > self.default_replication_factor:
            raise ValueError(
                "min.insync.replicas must be at most default.replication.factor "
                f"({self.default_replication_factor}), got {self.log.min_insync_replicas}"
            )
        if not self.process_roles or not set(self.process_roles) <= {"broker", "controller"}:
            raise ValueError(
                "process.roles must be broker, controller or broker,controller, got "
                f"{','.join(self.process_roles)!r}"
            )
        if self.process_roles == ("broker",) and not self.controller_quorum_voters:
            raise ValueError(
                "a broker without the controller role needs controller.quorum.voters (ID@HOST:PORT)"
            )
        if self.broker_session_timeout_ms <= self.broker_heartbeat_interval_ms:
            raise ValueError(
                "broker.session.timeout.ms must be larger than broker.heartbeat.interval.ms "
                f"({self.broker_heartbeat_interval_ms}), got {self.broker_session_timeout_ms}"
            )

    @property
    def listener(self) -> str:
        return f"{self.listen_host}:{self.listen_port}"

    @property
    def is_broker(self) -> bool:
        return "broker" in self.process_roles

    @property
    def is_controller(self) -> bool:
        return "controller" in self.process_roles

    @property
    def in_cluster(self) -> bool:
        """Part of a cluster with a controller (voters configured), rather than the single
        process that is its own controller with the topics on its disk."""
        return bool(self.controller_quorum_voters)


# Every name kbench reads; a name close to one of these is taken for a typo of it.
KNOWN_SETTINGS = tuple(
    sorted(property_names(KafkaConfig).keys() | property_names(LogConfig).keys())
)
# difflib ratio: a one-letter slip in a name of 7 letters (node.di) scores 0.857
_TYPO_CUTOFF = 0.85
# Kafka's own broker and topic settings (from its ConfigDefs, up to 4.x) that score 0.84 or
# more against a kbench name: settings kbench does not have, to warn about, not typos.
_KAFKA_LOOKALIKES = frozenset(
    {
        "group.consumer.max.session.timeout.ms",
        "group.consumer.min.session.timeout.ms",
        "group.consumer.session.timeout.ms",
        "group.share.max.session.timeout.ms",
        "group.share.min.session.timeout.ms",
        "group.share.session.timeout.ms",
        "group.streams.max.session.timeout.ms",
        "group.streams.min.session.timeout.ms",
        "group.streams.session.timeout.ms",
        "local.retention.bytes",
        "local.retention.ms",
        "log.flush.start.offset.checkpoint.interval.ms",
        "log.local.retention.bytes",
        "log.local.retention.ms",
        "offsets.retention.check.interval.ms",
        "queued.max.requests",
    }
)


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


def kafka_config(properties: Mapping[str, str]) -> KafkaConfig:
    """A KafkaConfig from Kafka property names; ValueError (one line) naming a misspelt name or
    a bad value and what is allowed."""
    unknown = []
    for key in properties:
        if key in KNOWN_SETTINGS:
            continue
        close = difflib.get_close_matches(key, KNOWN_SETTINGS, n=1, cutoff=_TYPO_CUTOFF)
        if close and key not in _KAFKA_LOOKALIKES:
            raise ValueError(f"unknown setting {key}: did you mean {close[0]}?")
        unknown.append(key)
    node_id, broker_id = properties.get("node.id"), properties.get("broker.id")
    if node_id is not None and broker_id is not None and node_id.strip() != broker_id.strip():
        raise ValueError(f"node.id and broker.id must be equal, got {node_id} and {broker_id}")
    return KafkaConfig(
        log=LogConfig.from_properties(properties),
        unknown=tuple(unknown),
        static_properties={k: v for k, v in properties.items() if k in KNOWN_SETTINGS},
        **read_settings(KafkaConfig, properties),
    )
