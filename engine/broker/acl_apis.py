"""The ACL APIs (DescribeAcls, CreateAcls, DeleteAcls), as Kafka 4.0's brokers answer them
(AclApis).

Without an authorizer (authorizer.class.name empty): SECURITY_DISABLED, for the request
(DescribeAcls: "No Authorizer is configured on the broker") or each creation and filter ("No
Authorizer is configured.").

With one: DescribeAcls needs DESCRIBE on the cluster, CreateAcls and DeleteAcls ALTER on it
(CLUSTER_AUTHORIZATION_FAILED otherwise). DescribeAcls is answered from this broker's metadata
image, ACLs grouped by resource pattern. CreateAcls and DeleteAcls change the ACLs by Kafka's
rules (engine/metadata/acl.py): in a cluster they are forwarded to the controller, which writes
AccessControlEntryRecords and RemoveAccessControlEntryRecords to the metadata log, and answered
once this broker's image shows the change; a single broker applies the same records to its
AclStore (engine/broker/acl_store.py), which keeps them across restarts. Not thread-safe: the
event loop's thread alone uses them, as KafkaApis.
"""

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kafka.admin import ACLOperation, ResourceType
from kafka.protocol.api_message import ApiMessage

from engine.broker.request_context import RequestContext
from engine.errors import CLUSTER_AUTHORIZATION_FAILED, INVALID_REQUEST, NONE, SECURITY_DISABLED
from engine.metadata.acl import (
    AclBindingFilter,
    AclError,
    StandardAcl,
    acl_creation_records,
    acl_deletion_records,
)
from engine.metadata.image import ClusterImage
from engine.protocol.apis import APIS, ApiKeys

if TYPE_CHECKING:
    from engine.broker.api_handlers import Respond
    from engine.broker.kafka_apis import KafkaApis

NO_AUTHORIZER = "No Authorizer is configured."
NO_AUTHORIZER_ON_BROKER = "No Authorizer is configured on the broker"  # DescribeAcls' words
_CLUSTER_DENIED = "Cluster authorization failed."


def acl_handlers(apis: "KafkaApis") -> dict[int, Callable[..., Any]]:
    """api key -> handler(context, request, respond)."""

    def describe(context: RequestContext, request: ApiMessage, respond: "Respond") -> None:
        response_class = apis._response_class(context)
        error, message, resources = NONE, None, []
        if apis.authorizer is None:
            error, message = SECURITY_DISABLED, NO_AUTHORIZER_ON_BROKER
        elif not apis.authorizer.authorize(context, ACLOperation.DESCRIBE, ResourceType.CLUSTER):
            error, message = CLUSTER_AUTHORIZATION_FAILED, _CLUSTER_DENIED
        else:
            wanted = AclBindingFilter.from_request(request)
            try:
                wanted.validate()
                acls = apis.broker.metadata_cache.image.acls.values()
                matched = (a for a in acls if wanted.matches(a))
                resources = described_resources(response_class, matched)
            except AclError as exc:
                error, message = INVALID_REQUEST, str(exc)
        response = response_class(
            throttle_time_ms=0, error_code=error, error_message=message, resources=resources
        )
        apis._reply(context, respond, response)

    def alter(
        context: RequestContext, request: ApiMessage, respond: "Respond", change: AclChange
    ) -> None:
        """CreateAcls or DeleteAcls: refused whole, forwarded (a cluster) or done here."""
        refused = _refused(apis, context)
        response_class = apis._response_class(context)
        if refused is not None:
            answers = [refused] * len(getattr(request, change.items))
            apis._reply(context, respond, change.response(response_class, answers))
            return
        if apis.broker.cluster is not None:
            apis._forward(context, request, respond)
            return
        store = apis.broker.acl_store
        assert store is not None
        records, results = change.records(store.acls, request)
        apis.broker.apply_acl_records(records)
        apis._reply(context, respond, change.response(response_class, results))

    return {
        ApiKeys.DESCRIBE_ACLS: describe,
        ApiKeys.CREATE_ACLS: lambda c, r, respond: alter(c, r, respond, ACL_CREATION),
        ApiKeys.DELETE_ACLS: lambda c, r, respond: alter(c, r, respond, ACL_DELETION),
    }


@dataclass(frozen=True)
class AclChange:
    """CreateAcls or DeleteAcls: the request's list, the records (and per item results) it
    makes over the current ACLs, and its response from those results."""

    items: str
    records: Callable[[Mapping[uuid.UUID, StandardAcl], Any], tuple[list[Any], list[Any]]]
    response: Callable[[Any, list[Any]], ApiMessage]


def creation_response(response_class: Any, results: list[AclError | None]) -> ApiMessage:
    """CreateAclsResponse: one result per creation, in the request's order."""
    answers = []
    for exc in results:
        error, message = _error(exc)
        answers.append(response_class.AclCreationResult(error_code=error, error_message=message))
    return response_class(throttle_time_ms=0, results=answers)


class _Refused(AclError):
    def __init__(self, error_code: int, message: str) -> None:
        super().__init__(message)
        self.error_code = error_code


def _refused(apis: "KafkaApis", context: RequestContext) -> "_Refused | None":
    """Why CreateAcls or DeleteAcls is refused as a whole, if it is."""
    if apis.authorizer is None:
        return _Refused(SECURITY_DISABLED, NO_AUTHORIZER)
    if not apis.authorizer.authorize(context, ACLOperation.ALTER, ResourceType.CLUSTER):
        return _Refused(CLUSTER_AUTHORIZATION_FAILED, _CLUSTER_DENIED)
    return None


def _error(exc: AclError | None) -> tuple[int, str | None]:
    if exc is None:
        return NONE, None
    return getattr(exc, "error_code", INVALID_REQUEST), str(exc)


def described_resources(response_class: Any, acls: Iterable[StandardAcl]) -> list[Any]:
    """DescribeAclsResponse.aclsResources: the ACLs grouped by resource pattern."""
    resource_class = response_class.DescribeAclsResource
    by_pattern: dict[tuple[int, str, int], list[Any]] = {}
    for acl in sorted(acls, key=_order):
        by_pattern.setdefault((acl.resource_type, acl.resource_name, acl.pattern_type), []).append(
            resource_class.AclDescription(
                principal=acl.principal,
                host=acl.host,
                operation=acl.operation,
                permission_type=acl.permission_type,
            )
        )
    return [
        resource_class(resource_type=kind, resource_name=name, pattern_type=pattern, acls=acls)
        for (kind, name, pattern), acls in by_pattern.items()
    ]


def _order(acl: StandardAcl) -> tuple[Any, ...]:
    return (
        acl.resource_type,
        acl.resource_name,
        acl.pattern_type,
        acl.principal,
        acl.host,
        acl.operation,
        acl.permission_type,
    )


def deletion_response(
    response_class: Any, results: list[list[StandardAcl] | AclError]
) -> ApiMessage:
    """DeleteAclsResponse: per filter its error, or the ACLs it deleted."""
    result_class = response_class.DeleteAclsFilterResult
    answers = []
    for result in results:
        if isinstance(result, AclError):
            error, message = _error(result)
            answers.append(result_class(error_code=error, error_message=message, matching_acls=[]))
            continue
        matching = [
            result_class.DeleteAclsMatchingAcl(
                error_code=NONE,
                error_message=None,
                resource_type=acl.resource_type,
                resource_name=acl.resource_name,
                pattern_type=acl.pattern_type,
                principal=acl.principal,
                host=acl.host,
                operation=acl.operation,
                permission_type=acl.permission_type,
            )
            for acl in sorted(result, key=_order)
        ]
        answers.append(result_class(error_code=NONE, error_message=None, matching_acls=matching))
    return response_class(throttle_time_ms=0, filter_results=answers)


def acls_visible(request: ApiMessage, response: ApiMessage, image: ClusterImage) -> bool | None:
    """Whether a broker's image shows what a forwarded CreateAcls or DeleteAcls did; None for
    any other request."""
    present = set(image.acls.values())
    if isinstance(request, APIS[ApiKeys.CREATE_ACLS][0]):
        return all(
            StandardAcl.from_record(c) in present
            for c, r in zip(request.creations, response.results, strict=False)
            if r.error_code == NONE
        )
    if isinstance(request, APIS[ApiKeys.DELETE_ACLS][0]):
        return not any(
            StandardAcl.from_record(m) in present
            for r in response.filter_results
            for m in r.matching_acls
        )
    return None


ACL_CREATION = AclChange(
    "creations",
    lambda acls, request: acl_creation_records(
        acls, [StandardAcl.from_record(c) for c in request.creations]
    ),
    creation_response,
)
ACL_DELETION = AclChange(
    "filters",
    lambda acls, request: acl_deletion_records(
        acls, [AclBindingFilter.from_request(f) for f in request.filters]
    ),
    deletion_response,
)
