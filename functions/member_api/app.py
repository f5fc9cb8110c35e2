"""The platform's member API (IAM): connect links, connection status, disconnect, and the
member's stored data.

Behind the shared guard and error mapping (whoop_bridge.api); `POST /connections` takes
`Idempotency-Key`. The OpenAPI document (every route, answer, body and header, SigV4) is
served at /members/openapi.json.
"""

from typing import Annotated, Any, Optional

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from aws_lambda_powertools.logging import correlation_paths
from pydantic import AfterValidator, AwareDatetime, BeforeValidator

from whoop_bridge import api
from whoop_bridge.api import JSON, IdempotencyKey, answers
from whoop_bridge.config import ConfigurationError
from whoop_bridge.members import connections, disconnect, views
from whoop_bridge.models import member_record as records
from whoop_bridge.models.connect_request import ConnectRequest
from whoop_bridge.models.member_record import InvalidWindow
from whoop_bridge.observability import get_logger
from whoop_bridge.secrets import SecretNotConfigured
from whoop_bridge.store.dynamo import InvalidPageToken
from whoop_bridge.validation import query_date_time

logger = get_logger("member_api")
app = APIGatewayRestResolver(enable_validation=True)

ClientUserId = Annotated[
    str, Path(pattern=connections.CLIENT_USER_ID.pattern, description="the platform's own id of its user")
]


def _in_utc(moment: Any) -> Any:
    """A bound the store can put in UTC (years 1-9999); else a ValueError naming the parameter."""
    if moment is not None:
        records.normalize_timestamp(moment)
    return moment


# Window bounds: ISO-8601 date-times with an offset; naive times are ambiguous, so refused.
# An offset's `+` that API Gateway decoded to a space is put back.
WindowBound = Annotated[
    Optional[AwareDatetime],
    BeforeValidator(query_date_time),
    AfterValidator(_in_utc),
    Query(description="ISO-8601 date-time with a UTC offset or Z"),
]


def _ok(status: int, description: str, schema: dict[str, Any]) -> dict:
    return {status: {"description": description, "content": {JSON: {"schema": schema}}}}


_TIME = {"type": ["string", "null"], "format": "date-time"}
_LINK = {
    "type": "object",
    "required": ["authorization_url", "expires_at"],
    "properties": {
        "authorization_url": {
            "type": "string",
            "format": "uri",
            "description": "send the member here (WHOOP's consent page)",
        },
        "expires_at": {"type": "string"},
    },
}
_CONNECTION = {
    "type": "object",
    "required": ["client_user_id", "status"],
    "properties": {
        "client_user_id": {"type": "string"},
        "status": {"type": "string"},
        "user_id": {"type": ["integer", "string", "null"]},
        "access_token_expires_at": _TIME,
    },
}
_PROFILE = {
    "type": "object",
    "required": ["user_id"],
    "properties": {key: {} for key in connections.PROFILE_FIELDS} | {"updated_at": {}},
}
_RECORDS = {
    "type": "object",
    "required": ["records", "next_token"],
    "properties": {
        "records": {"type": "array", "items": {"type": "object"}},
        "next_token": {"type": ["string", "null"], "description": "pass as next_token for the next page"},
    },
}
TAGS = ["members"]


@app.exception_handler(connections.ReturnUrlNotAllowed)
def _return_url(error: connections.ReturnUrlNotAllowed) -> Response:
    problem = "not one of the stack's AllowedReturnUrls (https, same host and path; only the query may differ)"
    return api.problem(400, [{"field": "return_url", "problem": problem}])


@app.exception_handler(SecretNotConfigured)
def _not_configured(error: SecretNotConfigured) -> Response:
    # Fail closed, and say so to the operator without naming a value.
    logger.error("member API refused: the bridge is not configured", extra={"detail": str(error)})
    return api.message(503, "not_configured", "the WHOOP member app credentials are not configured")


@app.exception_handler(ConfigurationError)
def _misconfigured(error: ConfigurationError) -> Response:
    logger.error("member API refused: a stack setting is invalid", extra={"detail": str(error)})
    return api.message(503, "not_configured", "a stack setting is invalid; the function's log names it")


@app.exception_handler(InvalidPageToken)
def _page_token(error: InvalidPageToken) -> Response:
    return api.problem(400, [{"field": "query.next_token", "problem": str(error)}])


@app.exception_handler(InvalidWindow)
def _window(error: InvalidWindow) -> Response:
    return api.problem(400, [{"field": "query.end", "problem": str(error)}])


@app.post(
    "/connections",
    operation_id="createConnection",
    summary="A link to WHOOP's consent page for one of the platform's users",
    tags=TAGS,
    responses=answers(_ok(201, "The link (single use, short-lived)", _LINK), *api.POST, 503),
)
def create_connection(request: Annotated[ConnectRequest, Body()], idempotency_key: IdempotencyKey = None):
    event = app.current_event
    callback_url = connections.redirect_uri(event.raw_event.get("requestContext") or {}, event.headers)
    return api.json_response(201, connections.create_link(request.client_user_id, request.return_url, callback_url))


@app.get(
    "/connections/<client_user_id>",
    operation_id="getConnection",
    summary="The connection's status (never a token)",
    tags=TAGS,
    responses=answers(_ok(200, "The connection", _CONNECTION), 404),
)
def get_connection(client_user_id: ClientUserId):
    found = views.connection_status(client_user_id)
    if found is None:
        return api.not_found("no connection for this client_user_id")
    return api.json_response(200, found)


@app.delete(
    "/connections/<client_user_id>",
    operation_id="deleteConnection",
    summary="Disconnect: revoke at WHOOP and drop the tokens; repeating it changes nothing",
    tags=TAGS,
    responses=answers({204: {"description": "Disconnected (or never connected)", "content": {}}}, 404, 503),
)
def delete_connection(client_user_id: ClientUserId):
    disconnect.disconnect(client_user_id)
    return Response(status_code=204, body="", headers={"Cache-Control": "no-store"})


@app.get(
    "/members/<client_user_id>/profile",
    operation_id="getMemberProfile",
    summary="The member's stored WHOOP profile",
    tags=TAGS,
    responses=answers(_ok(200, "The profile", _PROFILE), 404),
)
def get_profile(client_user_id: ClientUserId):
    profile = views.profile(client_user_id)
    if profile is None:
        return api.not_found("no stored profile for this client_user_id")
    return api.json_response(200, profile)


def _record_route(record_type: str) -> None:
    """`GET /members/{client_user_id}/<record_type>`: one static path per type, so the
    profile route is never taken for a record type."""

    def read_records(
        client_user_id: ClientUserId,
        start: WindowBound = None,
        end: WindowBound = None,
        limit: Annotated[int, Query(ge=1, le=100, description="records per page")] = 25,
        next_token: Annotated[
            Optional[str], Query(min_length=1, max_length=2048, description="the previous page's next_token")
        ] = None,
    ):
        try:
            found = views.record_page(
                client_user_id, record_type, start=start, end=end, limit=limit, next_token=next_token
            )
        except views.NoConnection:
            return api.not_found("no connection for this client_user_id")
        return api.json_response(200, found)

    read_records.__name__ = f"list_{record_type}_records"
    read_records.__doc__ = f"The member's stored {record_type} records, newest first, in [start, end)."
    app.get(
        f"/members/<client_user_id>/{record_type}",
        operation_id=f"list{record_type.capitalize()}Records",
        summary=f"The member's stored {record_type} records, newest first, in [start, end)",
        tags=TAGS,
        responses=answers(_ok(200, f"A page of {record_type} records", _RECORDS), 404),
    )(read_records)


for _record_type in records.RECORD_TYPES:
    _record_route(_record_type)


def _link(operation_id: str, description: str, **parameters: str) -> dict[str, Any]:
    return {"operationId": operation_id, "description": description, "parameters": parameters}


_MEMBER = "$request.path.client_user_id"
_MEMBER_LINKS = {"GetMemberProfile": _link("getMemberProfile", "the member's profile", client_user_id=_MEMBER)} | {
    f"List{kind.capitalize()}Records": _link(
        f"list{kind.capitalize()}Records", f"the member's {kind} records", client_user_id=_MEMBER
    )
    for kind in records.RECORD_TYPES
}
LINKS = {
    # The connection exists once the member consents at WHOOP, so no link to GET it here.
    ("/connections", "post", 201): {
        "DeleteConnection": _link(
            "deleteConnection", "give up the connection", client_user_id="$request.body#/client_user_id"
        ),
    },
    ("/connections/{client_user_id}", "get", 200): {
        "DeleteConnection": _link("deleteConnection", "disconnect", client_user_id=_MEMBER),
        **_MEMBER_LINKS,
    },
    ("/connections/{client_user_id}", "delete", 204): {
        "GetConnection": _link("getConnection", "the connection, now disconnected", client_user_id=_MEMBER),
    },
}

api.configure(
    app,
    title="WHOOP Bridge member API",
    description="The platform's members: WHOOP connect links, connection status, disconnect, and each member's stored WHOOP data. Every route is IAM-authorized (SigV4).",
    schema_path="/members/openapi.json",
    links=LINKS,
)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def handler(event, context):
    return api.resolve(app, event, context)
