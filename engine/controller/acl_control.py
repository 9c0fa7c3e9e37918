"""AclControlManager: CreateAcls and DeleteAcls on the controller, which brokers forward after
authorizing them: AccessControlEntryRecords and RemoveAccessControlEntryRecords in the metadata
log (engine/metadata/acl.py's rules), so every broker's authorizer sees the same ACLs and they
outlive restarts. A request's records are written together, so a deletion is all or nothing.
Not thread-safe: the controller's event loop alone uses it, as ControllerApis.
"""

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from engine.broker.acl_apis import ACL_CREATION, ACL_DELETION, AclChange
from engine.broker.request_context import RequestContext
from engine.protocol.apis import ApiKeys

if TYPE_CHECKING:
    from engine.broker.api_handlers import Respond
    from engine.controller.controller_apis import ControllerApis


def acl_control_handlers(apis: "ControllerApis") -> dict[int, Callable[..., Any]]:
    """api key -> handler(context, request, respond)."""

    def alter(context: RequestContext, request: Any, respond: "Respond", change: AclChange) -> None:
        records, results = change.records(apis.controller.image.acls, request)
        if records:
            apis.controller.write(records)
        apis._reply(context, respond, change.response(apis._response_class(context), results))
        apis._wake_fetches()

    return {
        ApiKeys.CREATE_ACLS: lambda c, r, respond: alter(c, r, respond, ACL_CREATION),
        ApiKeys.DELETE_ACLS: lambda c, r, respond: alter(c, r, respond, ACL_DELETION),
    }
