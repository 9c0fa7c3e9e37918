"""AclControlManager: CreateAcls and DeleteAcls on the controller, which brokers forward after
authorizing them: AccessControlEntryRecords and RemoveAccessControlEntryRecords in the metadata
log (engine/metadata/acl.py's rules), so every broker's authorizer sees the same ACLs and they
outlive restarts. A request's records are written together, so a deletion is all or nothing.
Not thread-safe: the controller's event loop alone uses it, as ControllerApis.
"""

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from engine.broker.acl_apis import creation_response, deletion_response
from engine.broker.request_context import RequestContext
from engine.metadata.acl import (
    AclBindingFilter,
    StandardAcl,
    acl_creation_records,
    acl_deletion_records,
)
from engine.protocol.apis import ApiKeys

if TYPE_CHECKING:
    from engine.broker.api_handlers import Respond
    from engine.controller.controller_apis import ControllerApis


def acl_control_handlers(apis: "ControllerApis") -> dict[int, Callable[..., Any]]:
    """api key -> handler(context, request, respond)."""

    def create(context: RequestContext, request: Any, respond: "Respond") -> None:
        creations = [StandardAcl.from_record(c) for c in request.creations]
        records, results = acl_creation_records(apis.controller.image.acls, creations)
        if records:
            apis.controller.write(records)
        apis._reply(context, respond, creation_response(apis._response_class(context), results))
        apis._wake_fetches()

    def delete(context: RequestContext, request: Any, respond: "Respond") -> None:
        filters = [AclBindingFilter.from_request(f) for f in request.filters]
        records, results = acl_deletion_records(apis.controller.image.acls, filters)
        if records:
            apis.controller.write(records)
        apis._reply(context, respond, deletion_response(apis._response_class(context), results))
        apis._wake_fetches()

    return {ApiKeys.CREATE_ACLS: create, ApiKeys.DELETE_ACLS: delete}
