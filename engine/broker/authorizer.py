"""StandardAuthorizer: Kafka's KRaft authorizer (org.apache.kafka.metadata.authorizer), over the
ACLs of the broker's metadata image, switched on by authorizer.class.name.

Who asks: the engine has no SASL or TLS listener, so every client is User:ANONYMOUS from the
host it connects from, as on Kafka's PLAINTEXT listener. The engine's brokers call each other
(a follower's Fetch and OffsetForLeaderEpoch) with client id `kbench-broker-<node id>`; in a
cluster, a request with another broker's client id, from the host that broker registered, is
that broker and is allowed everything, as Kafka's brokers are, authenticated as super users. With no
authentication that identity is claimed, not proven, as every PLAINTEXT identity is. The
controller does not authorize: only brokers call it, and a broker authorizes a client's request
before it forwards it.

How an action (principal, host, operation, resource) is decided, as StandardAuthorizerData does:
a super user (super.users, ';'-separated) is allowed; otherwise the ACLs whose pattern covers the
resource (the literal name, the literal "*", and every PREFIXED pattern the name starts with)
and whose principal (or User:*) and host (or *) match are looked at: any DENY for the operation
(or ALL) denies; else an ALLOW for it (or ALL, or one that implies it: READ, WRITE, DELETE and
ALTER imply DESCRIBE; ALTER_CONFIGS implies DESCRIBE_CONFIGS) allows; else, if no ACL at all
covers the resource, allow.everyone.if.no.acl.found decides; else it is denied.

Not thread-safe: the event loop's thread alone uses it (it reads immutable images).
"""

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from kafka.admin import ACLOperation, ACLPermissionType, ACLResourcePatternType

from engine.broker.config import KafkaConfig
from engine.broker.request_context import RequestContext
from engine.metadata.acl import CLUSTER_NAME, WILDCARD, WILDCARD_PRINCIPAL, StandardAcl
from engine.metadata.image import ClusterImage

log = logging.getLogger(__name__)

ANONYMOUS = "User:ANONYMOUS"  # KafkaPrincipal.ANONYMOUS, what PLAINTEXT clients are
BROKER_CLIENT_ID = "kbench-broker-"  # + node id: the client id a broker calls others with

_IMPLIES_DESCRIBE = frozenset(
    {
        ACLOperation.DESCRIBE,
        ACLOperation.READ,
        ACLOperation.WRITE,
        ACLOperation.DELETE,
        ACLOperation.ALTER,
    }
)
_IMPLIES_DESCRIBE_CONFIGS = frozenset({ACLOperation.DESCRIBE_CONFIGS, ACLOperation.ALTER_CONFIGS})


def client_host(context: RequestContext) -> str:
    """The address the client connects from (host of host:port, IPv6 without brackets)."""
    return context.client_address.rpartition(":")[0].strip("[]")


class StandardAuthorizer:
    def __init__(
        self, config: KafkaConfig, image: Callable[[], ClusterImage], in_cluster: bool
    ) -> None:
        """`image` gives the current metadata image; `in_cluster`: other brokers call this one
        (a single broker is called by clients only, whatever client id they give)."""
        self.super_users = frozenset(p.strip() for p in config.super_users.split(";") if p.strip())
        self.allow_if_no_acl = config.allow_everyone_if_no_acl_found
        self._image = image
        self._node_id = config.node_id
        self._in_cluster = in_cluster
        # the ACLs of the last image seen (an image's ACLs never change), indexed: by resource
        # type; by (type, name) the LITERAL ones ("*" too) and, apart, the PREFIXED ones, so a
        # decision looks at the ACLs that cover the resource only
        self._indexed_acls: Mapping[Any, StandardAcl] | None = None
        self._by_type: dict[int, list[StandardAcl]] = {}
        self._literal: dict[tuple[int, str], list[StandardAcl]] = {}
        self._prefixed: dict[tuple[int, str], list[StandardAcl]] = {}

    # -- who --------------------------------------------------------------------------------------
    def principal(self, context: RequestContext) -> str | None:
        """The request's principal; None for one of the cluster's brokers (see the module)."""
        client_id = context.header.client_id or ""
        if self._in_cluster and client_id.startswith(BROKER_CLIENT_ID):
            node = client_id[len(BROKER_CLIENT_ID) :]
            peer = int(node) if node.isdigit() and int(node) != self._node_id else None
            broker = self._image().brokers.get(peer) if peer is not None else None
            if broker is not None and broker.host == client_host(context):
                return None
        return ANONYMOUS

    # -- decisions --------------------------------------------------------------------------------
    def authorize(
        self,
        context: RequestContext,
        operation: int,
        resource_type: int,
        name: str = CLUSTER_NAME,
    ) -> bool:
        """Whether the request's principal may do `operation` on the resource."""
        principal = self.principal(context)
        if principal is None or principal in self.super_users:
            return True
        host = client_host(context)
        covered, allowed = False, False
        for acl in self._covering(resource_type, name):
            covered = True
            result = _result(acl, operation, principal, host)
            if result is ACLPermissionType.DENY:
                # debug: a client retrying, or a listing filtered, would flood an info log
                log.debug("%s from %s denied %s on %s by %s", principal, host, operation, name, acl)
                return False
            allowed = allowed or result is ACLPermissionType.ALLOW
        if allowed:
            return True
        return self.allow_if_no_acl and not covered

    def unauthorized(
        self, context: RequestContext, operation: int, resource_type: int, names: Iterable[str]
    ) -> set[str]:
        """The names among `names` the principal may not do `operation` on."""
        return {n for n in set(names) if not self.authorize(context, operation, resource_type, n)}

    def authorize_by_resource_type(
        self, context: RequestContext, operation: int, resource_type: int
    ) -> bool:
        """Whether the principal may do `operation` on some resource of the type (Kafka's
        Authorizer.authorizeByResourceType): an ALLOW that no DENY dominates (a DENY of the
        same literal name, or a PREFIXED DENY that the allowed name starts with)."""
        if self.authorize(context, operation, resource_type, "hardcode"):
            return True  # a super user, or no ACL covers a resource of that name
        principal, host = self.principal(context), client_host(context)
        deny_literal: set[str] = set()
        deny_prefixed: set[str] = set()
        allow: set[tuple[bool, str]] = set()
        for acl in self._acls(resource_type):
            if acl.host not in (host, WILDCARD) or acl.principal not in (
                principal,
                WILDCARD_PRINCIPAL,
            ):
                continue
            if acl.operation not in (operation, ACLOperation.ALL):
                continue
            literal = acl.pattern_type == ACLResourcePatternType.LITERAL
            if acl.permission_type == ACLPermissionType.DENY:
                if literal and acl.resource_name == WILDCARD:
                    return False
                (deny_literal if literal else deny_prefixed).add(acl.resource_name)
            elif acl.permission_type == ACLPermissionType.ALLOW:
                if literal and acl.resource_name == WILDCARD:
                    return True
                allow.add((literal, acl.resource_name))
        for literal, name in allow:
            if literal and name in deny_literal:
                continue
            if not any(name[:i] in deny_prefixed for i in range(1, len(name) + 1)):
                return True
        return False

    def _acls(self, resource_type: int) -> list[StandardAcl]:
        self._index()
        return self._by_type.get(resource_type, [])

    def _covering(self, resource_type: int, name: str) -> Iterator[StandardAcl]:
        """The ACLs whose pattern applies to the resource: its LITERAL name, the LITERAL "*",
        and every PREFIXED pattern the name starts with."""
        self._index()
        yield from self._literal.get((resource_type, name), ())
        if name != WILDCARD:
            yield from self._literal.get((resource_type, WILDCARD), ())
        if self._prefixed:
            for end in range(1, len(name) + 1):
                yield from self._prefixed.get((resource_type, name[:end]), ())

    def _index(self) -> None:
        acls = self._image().acls
        if acls is self._indexed_acls:
            return
        self._by_type, self._literal, self._prefixed = {}, {}, {}
        for acl in acls.values():
            self._by_type.setdefault(acl.resource_type, []).append(acl)
            prefixed = acl.pattern_type == ACLResourcePatternType.PREFIXED
            index = self._prefixed if prefixed else self._literal
            index.setdefault((acl.resource_type, acl.resource_name), []).append(acl)
        self._indexed_acls = acls


def _result(
    acl: StandardAcl, operation: int, principal: str, host: str
) -> ACLPermissionType | None:
    """What the ACL says of the action, or None when it does not apply (findResult): implied
    operations count for ALLOW ACLs only."""
    if acl.principal not in (principal, WILDCARD_PRINCIPAL):
        return None
    if acl.host not in (WILDCARD, host):
        return None
    if acl.operation != ACLOperation.ALL:
        if acl.permission_type == ACLPermissionType.ALLOW:
            if operation == ACLOperation.DESCRIBE:
                implied = acl.operation in _IMPLIES_DESCRIBE
            elif operation == ACLOperation.DESCRIBE_CONFIGS:
                implied = acl.operation in _IMPLIES_DESCRIBE_CONFIGS
            else:
                implied = acl.operation == operation
            if not implied:
                return None
        elif acl.operation != operation:
            return None
    return ACLPermissionType(acl.permission_type)
