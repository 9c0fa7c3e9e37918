"""Which ACL each request needs, as Kafka's KafkaApis checks them, and the errors a refusal is
answered with (TOPIC_, GROUP_, CLUSTER_ and TRANSACTIONAL_ID_AUTHORIZATION_FAILED), around the
handlers of KafkaApis when an authorizer is set.

A rule looks at a request before its handler runs and says one of: allowed (the handler runs
untouched, the common case, at the cost of the checks alone); refused as a whole (the rule
answers, the handler never runs); or partly refused: the rule takes the refused items (topics,
partitions, groups, config resources) out of the request, the handler does the rest, and the
refused items are added to its response with their error (the response is decoded, amended and
encoded again; only then). Read-only APIs may instead be amended after the handler ran: topics
the principal may not describe are dropped from an all-topics answer, or replaced by their
error. Fetch is checked in KafkaApis itself (its response is file slices); the ACL APIs in
acl_apis.

Not thread-safe: the event loop's thread alone uses it.
"""

import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kafka.admin import ACLOperation, ConfigResourceType, ResourceType
from kafka.protocol.api_message import ApiMessage

from engine.broker.api_handlers import Handler, Parts, Respond
from engine.broker.authorizer import StandardAuthorizer
from engine.broker.cluster_admin import (
    CLUSTER_OPERATIONS,
    GROUP_OPERATIONS,
    TOPIC_OPERATIONS,
    bit_field,
)
from engine.broker.replica_manager import FetchPartition, FetchPartitionData
from engine.broker.request_context import RequestContext
from engine.errors import (
    CLUSTER_AUTHORIZATION_FAILED,
    GROUP_AUTHORIZATION_FAILED,
    NONE,
    OPERATION_NOT_ATTEMPTED,
    TOPIC_AUTHORIZATION_FAILED,
    TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
)
from engine.protocol.apis import ApiKeys

if TYPE_CHECKING:
    from engine.broker.kafka_apis import KafkaApis

TOPIC, GROUP, CLUSTER = ResourceType.TOPIC, ResourceType.GROUP, ResourceType.CLUSTER
TRANSACTIONAL_ID = ResourceType.TRANSACTIONAL_ID
_COORDINATOR_TRANSACTION = 1  # FindCoordinator's key type of a transactional id
_BROKER_RESOURCES = (ConfigResourceType.BROKER, ConfigResourceType.BROKER_LOGGER)


@dataclass
class Outcome:
    """A partly or wholly refused request: `response` answers it instead of the handler, or
    `amend` fixes what the handler answers."""

    response: ApiMessage | None = None
    amend: Callable[[ApiMessage], None] | None = None


Rule = Callable[["_Check"], Outcome | None]  # None: allowed as it is


@dataclass
class _Check:
    """One request under a rule: what the rule needs to decide and to answer."""

    authorizer: StandardAuthorizer
    apis: "KafkaApis"
    context: RequestContext
    request: Any

    @property
    def response_class(self) -> Any:
        return self.apis._response_class(self.context)

    def allows(self, operation: int, resource_type: int, name: str = "kafka-cluster") -> bool:
        return self.authorizer.authorize(self.context, operation, resource_type, name)

    def refused_topics(self, operation: int, names: list[str]) -> set[str]:
        return self.authorizer.unauthorized(self.context, operation, TOPIC, names)

    def whole(self, error: int, **fields: Any) -> Outcome:
        """The response class with `error` in its top-level error code and defaults else."""
        cls = self.response_class
        values = {"throttle_time_ms": 0, "error_code": error, **fields}
        return Outcome(response=cls(**{k: v for k, v in values.items() if k in cls.fields}))


def authorized_handlers(
    apis: "KafkaApis", authorizer: StandardAuthorizer, handlers: dict[int, Handler]
) -> dict[int, Handler]:
    """`handlers`, each behind its API's rule (an API with none stays as it is)."""
    wrapped = dict(handlers)
    for key, rule in RULES.items():
        if key in handlers:
            wrapped[key] = _guarded(apis, authorizer, handlers[key], rule)
    return wrapped


def _guarded(
    apis: "KafkaApis", authorizer: StandardAuthorizer, handler: Handler, rule: Rule
) -> Handler:
    def handle(context: RequestContext, request: Any, respond: Respond) -> None:
        outcome = rule(_Check(authorizer, apis, context, request))
        if outcome is None:
            handler(context, request, respond)
        elif outcome.response is not None:
            apis._reply(context, respond, outcome.response)
        else:
            amend = outcome.amend
            assert amend is not None

            def amended(parts: Parts | None) -> None:
                if parts is None:  # acks=0: nothing is answered
                    respond(None)
                    return
                frame = b"".join(p for p in parts if isinstance(p, bytes))
                try:
                    response = apis._response_class(context).decode(
                        io.BytesIO(frame[4:]), version=context.api_version, header=True
                    )
                except Exception:  # a bare error frame (a forward that timed out): as it is
                    respond(parts)
                    return
                amend(response)
                apis._reply(context, respond, response)

            handler(context, request, amended)

    return handle


# -- topics -------------------------------------------------------------------------------------
def _per_item(
    c: _Check,
    operation: int,
    items: str,
    name: Callable[[Any], str],
    answers: str,
    refused_answer: Callable[[Any, Any, int], Any],
    error: int = TOPIC_AUTHORIZATION_FAILED,
    refused: set[str] | None = None,
) -> Outcome | None:
    """The request's `items` (named by `name`) the principal may not `operation` (as topics;
    or those named in `refused`) are taken out and answered, in the response's list
    `answers`, by refused_answer(response class, item, error)."""
    wanted = getattr(c.request, items) or []
    if refused is None:
        refused = c.refused_topics(operation, [name(i) for i in wanted])
    if not refused:
        return None
    cls = c.response_class
    denied = [refused_answer(cls, i, error) for i in wanted if name(i) in refused]
    setattr(c.request, items, [i for i in wanted if name(i) not in refused])
    if not getattr(c.request, items):
        return c.whole(NONE, **{answers: denied})

    def amend(response: Any) -> None:
        getattr(response, answers).extend(denied)

    return Outcome(amend=amend)


def _produce(c: _Check) -> Outcome | None:
    def answer(cls: Any, t: Any, error: int) -> Any:
        topic = cls.TopicProduceResponse
        return topic(
            name=t.name,
            partition_responses=[
                topic.PartitionProduceResponse(
                    index=p.index,
                    error_code=error,
                    base_offset=-1,
                    log_append_time_ms=-1,
                    log_start_offset=-1,
                )
                for p in t.partition_data
            ],
        )

    outcome = _per_item(c, ACLOperation.WRITE, "topic_data", _name, "responses", answer)
    if outcome is not None and outcome.response is not None and c.request.acks == 0:
        return None  # nothing left to append, nothing to answer: the handler says so
    return outcome


def _list_offsets(c: _Check) -> Outcome | None:
    def answer(cls: Any, t: Any, error: int) -> Any:
        topic = cls.ListOffsetsTopicResponse
        return topic(
            name=t.name,
            partitions=[
                topic.ListOffsetsPartitionResponse(
                    partition_index=p.partition_index, error_code=error, timestamp=-1, offset=-1
                )
                for p in t.partitions
            ],
        )

    return _per_item(c, ACLOperation.DESCRIBE, "topics", _name, "topics", answer)


def _offset_for_leader_epoch(c: _Check) -> Outcome | None:
    if c.allows(ACLOperation.CLUSTER_ACTION, CLUSTER):  # a follower (a broker)
        return None

    def answer(cls: Any, t: Any, error: int) -> Any:
        topic = cls.OffsetForLeaderTopicResult
        return topic(
            topic=t.topic,
            partitions=[
                topic.EpochEndOffset(
                    error_code=error, partition=p.partition, leader_epoch=-1, end_offset=-1
                )
                for p in t.partitions
            ],
        )

    return _per_item(c, ACLOperation.DESCRIBE, "topics", lambda t: t.topic, "topics", answer)


def _delete_records(c: _Check) -> Outcome | None:
    def answer(cls: Any, t: Any, error: int) -> Any:
        topic = cls.DeleteRecordsTopicResult
        return topic(
            name=t.name,
            partitions=[
                topic.DeleteRecordsPartitionResult(
                    partition_index=p.partition_index, low_watermark=-1, error_code=error
                )
                for p in t.partitions
            ],
        )

    return _per_item(c, ACLOperation.DELETE, "topics", _name, "topics", answer)


def _create_topics(c: _Check) -> Outcome | None:
    if c.allows(ACLOperation.CREATE, CLUSTER):
        return None

    def answer(cls: Any, t: Any, error: int) -> Any:
        return cls.CreatableTopicResult(
            name=t.name,
            error_code=error,
            error_message=None,
            num_partitions=-1,
            replication_factor=-1,
            configs=[],
        )

    return _per_item(c, ACLOperation.CREATE, "topics", _name, "topics", answer)


def _delete_topics(c: _Check) -> Outcome | None:
    if c.context.api_version < 6:
        return _per_item(
            c,
            ACLOperation.DELETE,
            "topic_names",
            str,
            "responses",
            lambda cls, n, error: cls.DeletableTopicResult(name=n, error_code=error),
        )
    image = c.apis.broker.metadata_cache.image

    def name(t: Any) -> str:
        if t.name is not None:
            return str(t.name)
        topic = image.topic_by_id(t.topic_id)
        return topic.name if topic is not None else ""

    return _per_item(
        c,
        ACLOperation.DELETE,
        "topics",
        name,
        "responses",
        lambda cls, t, error: cls.DeletableTopicResult(
            name=t.name, topic_id=t.topic_id, error_code=error
        ),
    )


def _create_partitions(c: _Check) -> Outcome | None:
    return _per_item(
        c,
        ACLOperation.ALTER,
        "topics",
        _name,
        "results",
        lambda cls, t, error: cls.CreatePartitionsTopicResult(name=t.name, error_code=error),
    )


def _metadata(c: _Check) -> Outcome | None:
    """DESCRIBE on each topic: an all-topics request leaves out the others, a request naming
    them gets TOPIC_AUTHORIZATION_FAILED; a topic it would create needs CREATE on the cluster
    or on the topic."""
    request, version = c.request, c.context.api_version
    image = c.apis.broker.metadata_cache.image
    if request.topics is None or (version == 0 and not request.topics):
        hidden = c.refused_topics(ACLOperation.DESCRIBE, list(image.topics))
        if not hidden:
            return None

        def drop(response: Any) -> None:
            response.topics = [t for t in response.topics if t.name not in hidden]

        return Outcome(amend=drop)
    names = [t.name for t in request.topics if t.name is not None]
    refused = c.refused_topics(ACLOperation.DESCRIBE, names)
    config = c.apis.config
    creating = [n for n in names if n not in refused and n not in image.topics]
    if (
        creating
        and config.auto_create_topics_enable
        and (version < 4 or request.allow_auto_topic_creation)
        and not c.allows(ACLOperation.CREATE, CLUSTER)
    ):
        refused |= c.refused_topics(ACLOperation.CREATE, creating)
    if not refused:
        return None
    kept = {n for n in names if n not in refused}
    topic_class = c.response_class.MetadataResponseTopic
    denied = [
        topic_class(error_code=TOPIC_AUTHORIZATION_FAILED, name=n, partitions=[])
        for n in dict.fromkeys(names)
        if n in refused
    ]
    request.topics = [t for t in request.topics if t.name in kept]

    def amend(response: Any) -> None:
        # (a v0 request left with no topic asks for all of them: keep only those it named)
        response.topics = [t for t in response.topics if t.name in kept] + denied

    return Outcome(amend=amend)


def _describe_topic_partitions(c: _Check) -> Outcome | None:
    """DESCRIBE on each topic: left out of an all-topics answer (no topic named), else
    answered TOPIC_AUTHORIZATION_FAILED without partitions."""
    all_topics = not c.request.topics

    def amend(response: Any) -> None:
        hidden = c.refused_topics(ACLOperation.DESCRIBE, [t.name for t in response.topics])
        for t in response.topics:
            if t.name not in hidden and t.error_code == NONE:
                t.topic_authorized_operations = _operations(
                    c, TOPIC_OPERATIONS, TOPIC, t.name, t.topic_authorized_operations
                )
        response.topics = [
            t
            if t.name not in hidden
            else type(t)(error_code=TOPIC_AUTHORIZATION_FAILED, name=t.name, partitions=[])
            for t in response.topics
            if not (all_topics and t.name in hidden)
        ]

    return Outcome(amend=amend)


# -- configs ------------------------------------------------------------------------------------
def _configs(operation: int, answers: str, answer_class: str) -> Rule:
    """DescribeConfigs (DESCRIBE_CONFIGS) and the AlterConfigs (ALTER_CONFIGS): a topic's on the
    topic, a broker's or broker logger's on the cluster."""

    def rule(c: _Check) -> Outcome | None:
        errors = {}
        for r in c.request.resources:
            if r.resource_type == ConfigResourceType.TOPIC:
                if not c.allows(operation, TOPIC, r.resource_name):
                    errors[(r.resource_type, r.resource_name)] = TOPIC_AUTHORIZATION_FAILED
            elif r.resource_type in _BROKER_RESOURCES and not c.allows(operation, CLUSTER):
                errors[(r.resource_type, r.resource_name)] = CLUSTER_AUTHORIZATION_FAILED
        if not errors:
            return None
        cls = getattr(c.response_class, answer_class)
        denied = [
            cls(error_code=error, resource_type=kind, resource_name=name)
            for (kind, name), error in errors.items()
        ]
        kept = [r for r in c.request.resources if (r.resource_type, r.resource_name) not in errors]
        c.request.resources = kept
        if not kept:
            return c.whole(NONE, **{answers: denied})
        return Outcome(amend=lambda response: getattr(response, answers).extend(denied))

    return rule


# -- groups -------------------------------------------------------------------------------------
def _group(operation: int) -> Rule:
    """A request about one group (JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetDelete):
    refused as a whole."""

    def rule(c: _Check) -> Outcome | None:
        if c.allows(operation, GROUP, c.request.group_id):
            return None
        return c.whole(GROUP_AUTHORIZATION_FAILED, member_id=getattr(c.request, "member_id", ""))

    return rule


def _offset_commit(c: _Check) -> Outcome | None:
    def answer(cls: Any, t: Any, error: int) -> Any:
        topic = cls.OffsetCommitResponseTopic
        return topic(
            name=t.name,
            partitions=[
                topic.OffsetCommitResponsePartition(
                    partition_index=p.partition_index, error_code=error
                )
                for p in t.partitions
            ],
        )

    if not c.allows(ACLOperation.READ, GROUP, c.request.group_id):
        refused = {t.name for t in c.request.topics}
        return _per_item(
            c, 0, "topics", _name, "topics", answer, GROUP_AUTHORIZATION_FAILED, refused
        )
    return _per_item(c, ACLOperation.READ, "topics", _name, "topics", answer)


def _offset_fetch(c: _Check) -> Outcome | None:
    """DESCRIBE on the group (GROUP_AUTHORIZATION_FAILED); committed offsets of topics the
    principal may not describe are left out of an all-topics answer, or answered
    TOPIC_AUTHORIZATION_FAILED."""
    batched = c.context.api_version >= 8
    groups = [g.group_id for g in c.request.groups] if batched else [c.request.group_id]
    refused_groups = {g for g in groups if not c.allows(ACLOperation.DESCRIBE, GROUP, g)}
    if not batched and refused_groups:
        return c.whole(GROUP_AUTHORIZATION_FAILED, topics=[])

    def fix_topics(topics: list[Any], all_topics: bool) -> list[Any]:
        hidden = c.refused_topics(ACLOperation.DESCRIBE, [t.name for t in topics])
        kept = []
        for t in topics:
            if t.name not in hidden:
                kept.append(t)
            elif not all_topics:
                for p in t.partitions:
                    p.error_code, p.committed_offset = TOPIC_AUTHORIZATION_FAILED, -1
                kept.append(t)
        return kept

    def amend(response: Any) -> None:
        if not batched:
            response.topics = fix_topics(response.topics, c.request.topics is None)
            return
        asked = {g.group_id: g.topics is None for g in c.request.groups}
        for g in response.groups:
            if g.group_id in refused_groups:
                g.error_code, g.topics = GROUP_AUTHORIZATION_FAILED, []
            else:
                g.topics = fix_topics(g.topics, asked.get(g.group_id, False))

    return Outcome(amend=amend)


def _find_coordinator(c: _Check) -> Outcome | None:
    def refused(key: str, key_type: int) -> int:
        if key_type == _COORDINATOR_TRANSACTION:
            allowed = c.allows(ACLOperation.DESCRIBE, ResourceType.TRANSACTIONAL_ID, key)
            return NONE if allowed else TRANSACTIONAL_ID_AUTHORIZATION_FAILED
        allowed = c.allows(ACLOperation.DESCRIBE, GROUP, key)
        return NONE if allowed else GROUP_AUTHORIZATION_FAILED

    if c.context.api_version < 4:
        error = refused(c.request.key, c.request.key_type)
        if error == NONE:
            return None
        return c.whole(error, node_id=-1, host="", port=-1)
    errors = {k: refused(k, c.request.key_type) for k in c.request.coordinator_keys}
    if not any(errors.values()):
        return None

    def amend(response: Any) -> None:
        for coordinator in response.coordinators:
            error = errors.get(coordinator.key, NONE)
            if error != NONE:
                coordinator.error_code, coordinator.node_id = error, -1
                coordinator.host, coordinator.port = "", -1

    return Outcome(amend=amend)


def _describe_groups(c: _Check) -> Outcome | None:
    refused = {g for g in c.request.groups if not c.allows(ACLOperation.DESCRIBE, GROUP, g)}
    with_operations = c.context.api_version >= 3 and c.request.include_authorized_operations
    if not refused and not with_operations:
        return None

    def amend(response: Any) -> None:
        for g in response.groups:
            if with_operations and g.error_code == NONE and g.group_id not in refused:
                g.authorized_operations = _operations(
                    c, GROUP_OPERATIONS, GROUP, g.group_id, g.authorized_operations
                )
        response.groups = [
            g
            if g.group_id not in refused
            else type(g)(
                error_code=GROUP_AUTHORIZATION_FAILED,
                group_id=g.group_id,
                group_state="",
                protocol_type="",
                protocol_data="",
                members=[],
            )
            for g in response.groups
        ]

    return Outcome(amend=amend)


def _list_groups(c: _Check) -> Outcome | None:
    if c.allows(ACLOperation.DESCRIBE, CLUSTER):
        return None

    def amend(response: Any) -> None:
        response.groups = [
            g for g in response.groups if c.allows(ACLOperation.DESCRIBE, GROUP, g.group_id)
        ]

    return Outcome(amend=amend)


def _delete_groups(c: _Check) -> Outcome | None:
    refused = {g for g in c.request.groups_names if not c.allows(ACLOperation.DELETE, GROUP, g)}
    if not refused:
        return None
    return _per_item(
        c,
        0,
        "groups_names",
        str,
        "results",
        lambda cls, g, error: cls.DeletableGroupResult(group_id=g, error_code=error),
        GROUP_AUTHORIZATION_FAILED,
        refused,
    )


def _offset_delete(c: _Check) -> Outcome | None:
    if not c.allows(ACLOperation.DELETE, GROUP, c.request.group_id):
        return c.whole(GROUP_AUTHORIZATION_FAILED, topics=[])

    def answer(cls: Any, t: Any, error: int) -> Any:
        topic = cls.OffsetDeleteResponseTopic
        return topic(
            name=t.name,
            partitions=[
                topic.OffsetDeleteResponsePartition(
                    partition_index=p.partition_index, error_code=error
                )
                for p in t.partitions
            ],
        )

    return _per_item(c, ACLOperation.READ, "topics", _name, "topics", answer)


# -- producers and the cluster ------------------------------------------------------------------
def _init_producer_id(c: _Check) -> Outcome | None:
    """An idempotent producer needs IDEMPOTENT_WRITE on the cluster or WRITE on some topic
    (KIP-679); a transactional one WRITE on its transactional id."""
    transactional_id = c.request.transactional_id
    if transactional_id is not None:
        if c.allows(ACLOperation.WRITE, ResourceType.TRANSACTIONAL_ID, transactional_id):
            return None
        return c.whole(TRANSACTIONAL_ID_AUTHORIZATION_FAILED, producer_id=-1, producer_epoch=-1)
    if c.allows(ACLOperation.IDEMPOTENT_WRITE, CLUSTER) or (
        c.authorizer.authorize_by_resource_type(c.context, ACLOperation.WRITE, TOPIC)
    ):
        return None
    return c.whole(CLUSTER_AUTHORIZATION_FAILED, producer_id=-1, producer_epoch=-1)


def _describe_cluster(c: _Check) -> Outcome | None:
    """No ACL needed; the cluster's authorized operations are the principal's."""
    if not c.request.include_cluster_authorized_operations:
        return None

    def amend(response: Any) -> None:
        response.authorized_operations = _operations(
            c, CLUSTER_OPERATIONS, CLUSTER, "kafka-cluster", response.authorized_operations
        )

    return Outcome(amend=amend)


def _operations(c: _Check, supported: Iterable[int], kind: int, name: str, shown: Any) -> Any:
    """The operations the principal may do on the resource, among those its type supports
    (Kafka's authorizedOperations), in the form the response holds them: a set of bit
    positions, or the signed 32-bit field."""
    allowed = {op for op in supported if c.allows(op, kind, name)}
    return allowed if isinstance(shown, (set, frozenset)) or shown is None else bit_field(allowed)


def _cluster(operation: int) -> Rule:
    """An API that needs `operation` on the cluster, refused as a whole."""

    def rule(c: _Check) -> Outcome | None:
        if c.allows(operation, CLUSTER):
            return None
        return c.whole(CLUSTER_AUTHORIZATION_FAILED)

    return rule


def _alter_replica_log_dirs(c: _Check) -> Outcome | None:
    """ALTER on the cluster, else every partition CLUSTER_AUTHORIZATION_FAILED."""
    if c.allows(ACLOperation.ALTER, CLUSTER):
        return None
    topic_class = c.response_class.AlterReplicaLogDirTopicResult
    partition_class = topic_class.AlterReplicaLogDirPartitionResult
    partitions: dict[str, list[int]] = {}
    for d in c.request.dirs:
        for t in d.topics:
            partitions.setdefault(t.name, []).extend(t.partitions)
    results = [
        topic_class(
            topic_name=name,
            partitions=[
                partition_class(partition_index=i, error_code=CLUSTER_AUTHORIZATION_FAILED)
                for i in indexes
            ],
        )
        for name, indexes in partitions.items()
    ]
    return c.whole(NONE, results=results)


def _alter_client_quotas(c: _Check) -> Outcome | None:
    """ALTER_CONFIGS on the cluster, else every entry CLUSTER_AUTHORIZATION_FAILED (the
    response has no top-level error)."""
    if c.allows(ACLOperation.ALTER_CONFIGS, CLUSTER):
        return None
    entry_class = c.response_class.EntryData
    entity_class = entry_class.EntityData
    entries = [
        entry_class(
            error_code=CLUSTER_AUTHORIZATION_FAILED,
            error_message=None,
            entity=[
                entity_class(entity_type=e.entity_type, entity_name=e.entity_name)
                for e in entry.entity
            ],
        )
        for entry in c.request.entries
    ]
    return c.whole(NONE, entries=entries)


# -- transactions (KafkaApis' handlers of KIP-98's APIs) ---------------------------------------
def _add_partitions_to_txn(c: _Check) -> Outcome | None:
    """WRITE on the transactional id, else every partition TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
    then WRITE on each topic: if any is refused, nothing is added (the refused topics'
    partitions TOPIC_AUTHORIZATION_FAILED, the others OPERATION_NOT_ATTEMPTED)."""
    request = c.request
    topics = request.v3_and_below_topics or []
    names = [t.name for t in topics]
    if not c.allows(ACLOperation.WRITE, TRANSACTIONAL_ID, request.v3_and_below_transactional_id):
        errors = dict.fromkeys(names, TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
    else:
        refused = c.refused_topics(ACLOperation.WRITE, names)
        if not refused:
            return None
        errors = {
            n: TOPIC_AUTHORIZATION_FAILED if n in refused else OPERATION_NOT_ATTEMPTED
            for n in names
        }
    topic_class = c.response_class.AddPartitionsToTxnTopicResult
    partition_class = topic_class.AddPartitionsToTxnPartitionResult
    results = [
        topic_class(
            name=t.name,
            results_by_partition=[
                partition_class(partition_index=p, partition_error_code=errors[t.name])
                for p in t.partitions
            ],
        )
        for t in topics
    ]
    return c.whole(NONE, results_by_topic_v3_and_below=results, results_by_transaction=[])


def _add_offsets_to_txn(c: _Check) -> Outcome | None:
    """WRITE on the transactional id, then READ on the group."""
    if not c.allows(ACLOperation.WRITE, TRANSACTIONAL_ID, c.request.transactional_id):
        return c.whole(TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
    if not c.allows(ACLOperation.READ, GROUP, c.request.group_id):
        return c.whole(GROUP_AUTHORIZATION_FAILED)
    return None


def _end_txn(c: _Check) -> Outcome | None:
    if c.allows(ACLOperation.WRITE, TRANSACTIONAL_ID, c.request.transactional_id):
        return None
    return c.whole(TRANSACTIONAL_ID_AUTHORIZATION_FAILED)


def _txn_offset_commit(c: _Check) -> Outcome | None:
    """WRITE on the transactional id, then READ on the group, each else every partition with
    its error; then READ on each topic, the refused ones answered beside the rest."""
    request = c.request
    if not c.allows(ACLOperation.WRITE, TRANSACTIONAL_ID, request.transactional_id):
        whole: int | None = TRANSACTIONAL_ID_AUTHORIZATION_FAILED
    elif not c.allows(ACLOperation.READ, GROUP, request.group_id):
        whole = GROUP_AUTHORIZATION_FAILED
    else:
        whole = None

    def answer(cls: Any, t: Any, error: int) -> Any:
        topic = cls.TxnOffsetCommitResponseTopic
        return topic(
            name=t.name,
            partitions=[
                topic.TxnOffsetCommitResponsePartition(
                    partition_index=p.partition_index, error_code=error
                )
                for p in t.partitions
            ],
        )

    if whole is not None:
        return c.whole(NONE, topics=[answer(c.response_class, t, whole) for t in request.topics])
    return _per_item(c, ACLOperation.READ, "topics", _name, "topics", answer)


def _write_txn_markers(c: _Check) -> Outcome | None:
    """CLUSTER_ACTION on the cluster (a broker, the coordinator), else every partition
    CLUSTER_AUTHORIZATION_FAILED."""
    if c.allows(ACLOperation.CLUSTER_ACTION, CLUSTER):
        return None
    marker_class = c.response_class.WritableTxnMarkerResult
    topic_class = marker_class.WritableTxnMarkerTopicResult
    partition_class = topic_class.WritableTxnMarkerPartitionResult
    markers = [
        marker_class(
            producer_id=m.producer_id,
            topics=[
                topic_class(
                    name=t.name,
                    partitions=[
                        partition_class(partition_index=i, error_code=CLUSTER_AUTHORIZATION_FAILED)
                        for i in t.partition_indexes
                    ],
                )
                for t in m.topics
            ],
        )
        for m in c.request.markers
    ]
    return c.whole(NONE, markers=markers)


def _describe_transactions(c: _Check) -> Outcome | None:
    """DESCRIBE on each transactional id (else TRANSACTIONAL_ID_AUTHORIZATION_FAILED for it);
    the topics of a described transaction the principal may not DESCRIBE are left out."""

    def amend(response: Any) -> None:
        for state in response.transaction_states:
            if state.error_code == NONE and not c.allows(
                ACLOperation.DESCRIBE, TRANSACTIONAL_ID, state.transactional_id
            ):
                state.error_code = TRANSACTIONAL_ID_AUTHORIZATION_FAILED
                state.topics = []
            elif state.topics:
                hidden = c.refused_topics(ACLOperation.DESCRIBE, [t.topic for t in state.topics])
                state.topics = [t for t in state.topics if t.topic not in hidden]

    return Outcome(amend=amend)


def _list_transactions(c: _Check) -> Outcome | None:
    """Only the transactional ids the principal may DESCRIBE."""

    def amend(response: Any) -> None:
        response.transaction_states = [
            s
            for s in response.transaction_states
            if c.allows(ACLOperation.DESCRIBE, TRANSACTIONAL_ID, s.transactional_id)
        ]

    return Outcome(amend=amend)


def _describe_producers(c: _Check) -> Outcome | None:
    def answer(cls: Any, t: Any, error: int) -> Any:
        topic = cls.TopicResponse
        return topic(
            name=t.name,
            partitions=[
                topic.PartitionResponse(
                    partition_index=i, error_code=error, error_message=None, active_producers=[]
                )
                for i in t.partition_indexes
            ],
        )

    return _per_item(c, ACLOperation.READ, "topics", _name, "topics", answer)


def _name(item: Any) -> str:
    return str(item.name)


RULES: dict[int, Rule] = {
    ApiKeys.PRODUCE: _produce,
    ApiKeys.LIST_OFFSETS: _list_offsets,
    ApiKeys.OFFSET_FOR_LEADER_EPOCH: _offset_for_leader_epoch,
    ApiKeys.DELETE_RECORDS: _delete_records,
    ApiKeys.METADATA: _metadata,
    ApiKeys.DESCRIBE_TOPIC_PARTITIONS: _describe_topic_partitions,
    ApiKeys.CREATE_TOPICS: _create_topics,
    ApiKeys.DELETE_TOPICS: _delete_topics,
    ApiKeys.CREATE_PARTITIONS: _create_partitions,
    ApiKeys.DESCRIBE_CONFIGS: _configs(
        ACLOperation.DESCRIBE_CONFIGS, "results", "DescribeConfigsResult"
    ),
    ApiKeys.ALTER_CONFIGS: _configs(
        ACLOperation.ALTER_CONFIGS, "responses", "AlterConfigsResourceResponse"
    ),
    ApiKeys.INCREMENTAL_ALTER_CONFIGS: _configs(
        ACLOperation.ALTER_CONFIGS, "responses", "AlterConfigsResourceResponse"
    ),
    ApiKeys.FIND_COORDINATOR: _find_coordinator,
    ApiKeys.JOIN_GROUP: _group(ACLOperation.READ),
    ApiKeys.SYNC_GROUP: _group(ACLOperation.READ),
    ApiKeys.HEARTBEAT: _group(ACLOperation.READ),
    ApiKeys.LEAVE_GROUP: _group(ACLOperation.READ),
    ApiKeys.OFFSET_COMMIT: _offset_commit,
    ApiKeys.OFFSET_FETCH: _offset_fetch,
    ApiKeys.OFFSET_DELETE: _offset_delete,
    ApiKeys.DESCRIBE_GROUPS: _describe_groups,
    ApiKeys.LIST_GROUPS: _list_groups,
    ApiKeys.DELETE_GROUPS: _delete_groups,
    ApiKeys.INIT_PRODUCER_ID: _init_producer_id,
    ApiKeys.ELECT_LEADERS: _cluster(ACLOperation.ALTER),
    ApiKeys.ALTER_PARTITION_REASSIGNMENTS: _cluster(ACLOperation.ALTER),
    ApiKeys.LIST_PARTITION_REASSIGNMENTS: _cluster(ACLOperation.DESCRIBE),
    ApiKeys.ALTER_REPLICA_LOG_DIRS: _alter_replica_log_dirs,
    ApiKeys.DESCRIBE_LOG_DIRS: _cluster(ACLOperation.DESCRIBE),
    ApiKeys.DESCRIBE_QUORUM: _cluster(ACLOperation.DESCRIBE),
    ApiKeys.DESCRIBE_CLUSTER: _describe_cluster,
    ApiKeys.DESCRIBE_CLIENT_QUOTAS: _cluster(ACLOperation.DESCRIBE_CONFIGS),
    ApiKeys.ALTER_CLIENT_QUOTAS: _alter_client_quotas,
    ApiKeys.ADD_PARTITIONS_TO_TXN: _add_partitions_to_txn,
    ApiKeys.ADD_OFFSETS_TO_TXN: _add_offsets_to_txn,
    ApiKeys.END_TXN: _end_txn,
    ApiKeys.TXN_OFFSET_COMMIT: _txn_offset_commit,
    ApiKeys.WRITE_TXN_MARKERS: _write_txn_markers,
    ApiKeys.DESCRIBE_TRANSACTIONS: _describe_transactions,
    ApiKeys.LIST_TRANSACTIONS: _list_transactions,
    ApiKeys.DESCRIBE_PRODUCERS: _describe_producers,
}


def refused_fetches(
    authorizer: StandardAuthorizer,
    context: RequestContext,
    replica_id: int,
    partitions: list[FetchPartition],
) -> tuple[list[FetchPartition], list[FetchPartitionData]]:
    """Fetch (KafkaApis.handleFetch): a follower's needs CLUSTER_ACTION on the cluster, a
    consumer's READ on each topic; (the partitions to read, the refused ones answered)."""
    if replica_id >= 0:
        if authorizer.authorize(context, ACLOperation.CLUSTER_ACTION, CLUSTER):
            return partitions, []
        refused = {p.tp.topic for p in partitions}
    else:
        refused = authorizer.unauthorized(
            context, ACLOperation.READ, TOPIC, (p.tp.topic for p in partitions)
        )
    if not refused:
        return partitions, []
    return (
        [p for p in partitions if p.tp.topic not in refused],
        [
            FetchPartitionData(p.tp, TOPIC_AUTHORIZATION_FAILED)
            for p in partitions
            if p.tp.topic in refused
        ],
    )
