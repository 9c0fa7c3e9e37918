"""The ACL APIs (DescribeAcls, CreateAcls, DeleteAcls) as Kafka 4.0's brokers answer them
without an authorizer (KafkaApis with `authorizer` empty): SECURITY_DISABLED, "No Authorizer is
configured.", for the request (DescribeAcls) or each creation and filter, so admin clients get
Kafka's clean error rather than UNSUPPORTED_VERSION. Every broker answers them itself; nothing
reaches the controller. Not thread-safe: the event loop's thread alone uses them, as KafkaApis.
"""

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kafka.protocol.api_message import ApiMessage

from engine.broker.request_context import RequestContext
from engine.errors import SECURITY_DISABLED
from engine.protocol.apis import ApiKeys

if TYPE_CHECKING:
    from engine.broker.api_handlers import Respond
    from engine.broker.kafka_apis import KafkaApis

NO_AUTHORIZER = "No Authorizer is configured."


def acl_handlers(apis: "KafkaApis") -> dict[int, Callable[..., Any]]:
    """api key -> handler(context, request, respond)."""

    def describe(context: RequestContext, request: ApiMessage, respond: "Respond") -> None:
        response_class = apis._response_class(context)
        response = response_class(
            throttle_time_ms=0,
            error_code=SECURITY_DISABLED,
            error_message=NO_AUTHORIZER,
            resources=[],
        )
        apis._reply(context, respond, response)

    def create(context: RequestContext, request: ApiMessage, respond: "Respond") -> None:
        response_class = apis._response_class(context)
        results = [
            response_class.AclCreationResult(
                error_code=SECURITY_DISABLED, error_message=NO_AUTHORIZER
            )
            for _ in request.creations
        ]
        apis._reply(context, respond, response_class(throttle_time_ms=0, results=results))

    def delete(context: RequestContext, request: ApiMessage, respond: "Respond") -> None:
        response_class = apis._response_class(context)
        results = [
            response_class.DeleteAclsFilterResult(
                error_code=SECURITY_DISABLED, error_message=NO_AUTHORIZER, matching_acls=[]
            )
            for _ in request.filters
        ]
        apis._reply(context, respond, response_class(throttle_time_ms=0, filter_results=results))

    return {
        ApiKeys.DESCRIBE_ACLS: describe,
        ApiKeys.CREATE_ACLS: create,
        ApiKeys.DELETE_ACLS: delete,
    }
