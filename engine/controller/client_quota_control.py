"""ClientQuotaControlManager: AlterClientQuotas on the controller, as ClientQuotaRecords in the
metadata log, so every broker's image holds the cluster's client quotas and they outlive
restarts. The rules are client_quotas'; each entity passes or fails on its own, and the records
of those that pass are written as one batch. A record per changed key: the new value, or
remove=true for a key removed. Safe from the controller's event loop only, as ControllerApis.
"""

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from engine.broker.client_quota_apis import alter_response, alterations
from engine.broker.client_quotas import QuotaChange, altered_quotas
from engine.broker.request_context import RequestContext
from engine.metadata.image import ClusterImage
from engine.metadata.records import ClientQuotaRecord
from engine.protocol.apis import ApiKeys

if TYPE_CHECKING:
    from engine.broker.api_handlers import Respond
    from engine.controller.controller_apis import ControllerApis


def client_quota_records(changes: list[QuotaChange]) -> list[Any]:
    return [
        ClientQuotaRecord(
            version=0,
            entity=[ClientQuotaRecord.EntityData(entity_type=t, entity_name=n) for t, n in entity],
            key=key,
            value=0.0 if value is None else value,
            remove=value is None,
        )
        for entity, key, value in changes
    ]


def client_quota_controller_handlers(apis: "ControllerApis") -> dict[int, Callable[..., Any]]:
    """api key -> handler(context, request, respond)."""

    def alter(context: RequestContext, request: Any, respond: "Respond") -> None:
        image: ClusterImage = apis.controller.image
        results, changes = altered_quotas(image.client_quotas, alterations(request))
        if changes and not request.validate_only:
            apis.controller.write(client_quota_records(changes))
        response = alter_response(apis._response_class(context), request, results)
        apis._reply(context, respond, response)
        apis._wake_fetches()

    return {ApiKeys.ALTER_CLIENT_QUOTAS: alter}
