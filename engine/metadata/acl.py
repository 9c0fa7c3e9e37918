"""ACLs as the metadata log holds them (Kafka's StandardAcl, AclBinding and AclBindingFilter):
one access control entry bound to a resource pattern, and the filters DescribeAcls and
DeleteAcls select them with.

An ACL is (resource type, resource name, pattern type, principal, host, operation, permission)
with Kafka's codes (kafka-python's enums carry the same numbers). A resource pattern is LITERAL
(the name exactly, or every name when the name is "*") or PREFIXED (every name that starts with
it). A filter's pattern type may also be ANY (any pattern, the name compared exactly) or MATCH
(the patterns that would apply to a resource of that name: the literal name, "*", and every
prefix of it); a null name, principal or host in a filter matches any. Creating and deleting
ACLs makes AccessControlEntryRecords and RemoveAccessControlEntryRecords (AclControlManager's
rules), which the controller writes to the metadata log and a single broker keeps itself. Plain
values and functions: safe from any thread.
"""

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kafka.admin import ACLOperation, ACLPermissionType, ACLResourcePatternType, ResourceType

from engine.metadata.records import AccessControlEntryRecord, RemoveAccessControlEntryRecord

WILDCARD = "*"  # ResourcePattern.WILDCARD_RESOURCE, and AccessControlEntry's any host
WILDCARD_PRINCIPAL = "User:*"
CLUSTER_NAME = "kafka-cluster"  # the one name of the CLUSTER resource

# the values an ACL itself may hold (AclControlManager.validateNewAcl)
ACL_RESOURCE_TYPES = frozenset(
    t for t in ResourceType if t not in (ResourceType.UNKNOWN, ResourceType.ANY)
)
ACL_PATTERN_TYPES = frozenset({ACLResourcePatternType.LITERAL, ACLResourcePatternType.PREFIXED})
ACL_OPERATIONS = frozenset(
    op for op in ACLOperation if op not in (ACLOperation.UNKNOWN, ACLOperation.ANY)
) | {15}  # TWO_PHASE_COMMIT (KIP-939), which kafka-python's enum lacks
ACL_PERMISSIONS = frozenset({ACLPermissionType.ALLOW, ACLPermissionType.DENY})


class AclError(ValueError):
    """An ACL or filter Kafka refuses (INVALID_REQUEST), with Kafka's message."""


@dataclass(frozen=True, slots=True)
class StandardAcl:
    resource_type: int
    resource_name: str
    pattern_type: int
    principal: str  # "Type:name", e.g. User:alice; User:* is every principal
    host: str  # an address, or * for any
    operation: int
    permission_type: int

    @classmethod
    def from_record(cls, record: Any) -> "StandardAcl":
        """From an AccessControlEntryRecord, or a CreateAcls creation (same field names but
        the pattern type's)."""
        pattern = getattr(record, "pattern_type", None)
        if pattern is None:
            pattern = record.resource_pattern_type
        return cls(
            record.resource_type,
            record.resource_name,
            pattern,
            record.principal,
            record.host,
            record.operation,
            record.permission_type,
        )

    def to_record(self, acl_id: uuid.UUID) -> Any:
        return AccessControlEntryRecord(
            version=0,
            id=acl_id,
            resource_type=self.resource_type,
            resource_name=self.resource_name,
            pattern_type=self.pattern_type,
            principal=self.principal,
            host=self.host,
            operation=self.operation,
            permission_type=self.permission_type,
        )

    def validate(self) -> None:
        """Kafka's checks of a new ACL (AclApis, AclControlManager); AclError if refused."""
        if self.resource_type not in ACL_RESOURCE_TYPES:
            raise AclError(f"Invalid resourceType {_name(ResourceType, self.resource_type)}")
        if self.pattern_type not in ACL_PATTERN_TYPES:
            raise AclError(
                f"Invalid patternType {_name(ACLResourcePatternType, self.pattern_type)}"
            )
        if self.operation not in ACL_OPERATIONS:
            raise AclError(f"Invalid operation {_name(ACLOperation, self.operation)}")
        if self.permission_type not in ACL_PERMISSIONS:
            raise AclError(
                f"Invalid permissionType {_name(ACLPermissionType, self.permission_type)}"
            )
        if self.resource_type == ResourceType.CLUSTER and self.resource_name != CLUSTER_NAME:
            raise AclError(f"The only valid name for the CLUSTER resource is {CLUSTER_NAME}")
        if not self.resource_name:
            raise AclError("Invalid empty resource name")
        check_principal(self.principal)


def check_principal(principal: str) -> None:
    """SecurityUtils.parseKafkaPrincipal's rule: TYPE:NAME, neither empty."""
    kind, colon, name = principal.partition(":")
    if not colon:
        raise AclError(
            f"Could not parse principal from `{principal}` (no colon is present separating "
            "the principal type from the principal name)"
        )
    if not kind or not name:
        raise AclError(f"Could not parse principal from `{principal}`")


def _name(enum: Any, value: int) -> str:
    try:
        return str(enum(value).name)
    except ValueError:
        return "UNKNOWN"


@dataclass(frozen=True, slots=True)
class AclBindingFilter:
    """DescribeAcls' filter, or one of DeleteAcls' (Kafka's AclBindingFilter)."""

    resource_type: int
    resource_name: str | None
    pattern_type: int
    principal: str | None
    host: str | None
    operation: int
    permission_type: int

    @classmethod
    def from_request(cls, f: Any) -> "AclBindingFilter":
        """From DescribeAclsRequest or a DeleteAclsFilter (the same fields)."""
        return cls(
            f.resource_type_filter,
            f.resource_name_filter,
            f.pattern_type_filter,
            f.principal_filter,
            f.host_filter,
            f.operation,
            f.permission_type,
        )

    def validate(self) -> None:
        """AclControlManager.validateFilter: no UNKNOWN field."""
        if self.resource_type == ResourceType.UNKNOWN or (
            self.pattern_type == ACLResourcePatternType.UNKNOWN
        ):
            raise AclError("Unknown patternFilter.")
        if self.operation == ACLOperation.UNKNOWN or (
            self.permission_type == ACLPermissionType.UNKNOWN
        ):
            raise AclError("Unknown entryFilter.")

    def matches(self, acl: StandardAcl) -> bool:
        """ResourcePatternFilter.matches and AccessControlEntryFilter.matches, both."""
        return self._matches_pattern(acl) and self._matches_entry(acl)

    def _matches_pattern(self, acl: StandardAcl) -> bool:
        if self.resource_type not in (ResourceType.ANY, acl.resource_type):
            return False
        any_pattern = (ACLResourcePatternType.ANY, ACLResourcePatternType.MATCH)
        if self.pattern_type not in any_pattern and self.pattern_type != acl.pattern_type:
            return False
        if self.resource_name is None:
            return True
        if self.pattern_type in (ACLResourcePatternType.ANY, acl.pattern_type):
            return self.resource_name == acl.resource_name
        # MATCH: the patterns that apply to a resource named resource_name
        if acl.pattern_type == ACLResourcePatternType.LITERAL:
            return acl.resource_name in (self.resource_name, WILDCARD)
        return self.resource_name.startswith(acl.resource_name)

    def _matches_entry(self, acl: StandardAcl) -> bool:
        if self.principal is not None and self.principal != acl.principal:
            return False
        if self.host is not None and self.host != acl.host:
            return False
        if self.operation not in (ACLOperation.ANY, acl.operation):
            return False
        return self.permission_type in (ACLPermissionType.ANY, acl.permission_type)


def acl_creation_records(
    acls: Mapping[uuid.UUID, StandardAcl], creations: Iterable[StandardAcl]
) -> tuple[list[Any], list[AclError | None]]:
    """AclControlManager.createAcls: the AccessControlEntryRecords that add the new ACLs (one
    already there, or asked for twice, is added once and still succeeds), and per creation
    None or why it is refused."""
    existing = set(acls.values())
    taken = set(acls)
    records: list[Any] = []
    results: list[AclError | None] = []
    for acl in creations:
        try:
            acl.validate()
        except AclError as exc:
            results.append(exc)
            continue
        results.append(None)
        if acl in existing:
            continue
        existing.add(acl)
        acl_id = uuid.uuid4()
        while acl_id in taken:
            acl_id = uuid.uuid4()
        taken.add(acl_id)
        records.append(acl.to_record(acl_id))
    return records, results


def acl_deletion_records(
    acls: Mapping[uuid.UUID, StandardAcl], filters: Iterable[AclBindingFilter]
) -> tuple[list[Any], list[list[StandardAcl] | AclError]]:
    """AclControlManager.deleteAcls: the RemoveAccessControlEntryRecords (an ACL two filters
    match is removed once, and listed under both), and per filter the ACLs it matched or why
    it is refused."""
    removed: dict[uuid.UUID, Any] = {}
    results: list[list[StandardAcl] | AclError] = []
    for f in filters:
        try:
            f.validate()
        except AclError as exc:
            results.append(exc)
            continue
        matched = []
        for acl_id, acl in acls.items():
            if f.matches(acl):
                matched.append(acl)
                removed.setdefault(acl_id, RemoveAccessControlEntryRecord(version=0, id=acl_id))
        results.append(matched)
    return list(removed.values()), results
