"""The platform's member API (IAM): connect links, connection status, disconnect, and the
member's stored data.

Behind the shared guard and error mapping (whoop_bridge.api); `POST /connections` takes
`Idempotency-Key`. The OpenAPI document (every route, answer, body and header, SigV4) is
served at /members/openapi.json.
"""

from typing import Annotated, Any, Literal, Optional

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from pydantic import AfterValidator, AwareDatetime, BeforeValidator

from whoop_bridge.api import errors, timelines
from whoop_bridge.api.bodies import json_response, not_found
from whoop_bridge.api.guard import lambda_handler
from whoop_bridge.api.idempotency import IdempotencyKey
from whoop_bridge.api.negotiation import accept_header
from whoop_bridge.api.openapi import Routes, configure, link, ok, ok_or_picture
from whoop_bridge.members import connections, disconnect, views
from whoop_bridge.models import member_record as records
from whoop_bridge.models.connect_request import ConnectRequest
from whoop_bridge.observability import get_logger
from whoop_bridge.validation import query_date_time

logger = get_logger("member_api")
app = APIGatewayRestResolver(enable_validation=True)
routes = Routes(app, "members")

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
        "last_attempt": {
            "type": ["object", "null"],
            "description": "the member's last connect attempt (never WHOOP's text)",
            "required": ["outcome", "reason", "at"],
            "properties": {
                "outcome": {"type": "string", "description": "the status word the return URL got"},
                "reason": {"type": ["string", "null"], "description": "WHOOP's OAuth error code or the bridge's word"},
                "at": {"type": "string", "format": "date-time"},
            },
        },
    },
}
_CONNECTIONS = {
    "type": "object",
    "required": ["connections", "next_token"],
    "properties": {
        "connections": {"type": "array", "items": _CONNECTION},
        "next_token": {"type": ["string", "null"], "description": "pass as next_token for the next page"},
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


@routes.post(
    "/connections",
    "createConnection",
    "A link to WHOOP's consent page for one of the platform's users",
    ok(201, "The link (single use, short-lived)", _LINK),
    503,
)
def create_connection(request: Annotated[ConnectRequest, Body()], idempotency_key: IdempotencyKey = None):
    event = app.current_event
    callback_url = connections.redirect_uri(event.raw_event.get("requestContext") or {}, event.headers)
    return json_response(201, connections.create_link(request.client_user_id, request.return_url, callback_url))


@routes.get(
    "/connections",
    "listConnections",
    "The connections with one status (or the members who tried and never connected), by client_user_id",
    ok(200, "A page of connections", _CONNECTIONS),
)
def list_connections(
    status: Annotated[
        Literal[views.LISTED_STATUSES],  # type: ignore[valid-type]
        Query(description="connected, offline_not_granted, reauthorization_required, disconnected or not_connected"),
    ],
    limit: Annotated[int, Query(ge=1, le=100, description="connections per page")] = 25,
    next_token: Annotated[
        Optional[str], Query(min_length=1, max_length=2048, description="the previous page's next_token")
    ] = None,
):
    return json_response(200, views.connection_page(status, limit, next_token))


@routes.get(
    "/connections/<client_user_id>",
    "getConnection",
    "The connection's status (never a token)",
    ok(200, "The connection", _CONNECTION),
    404,
)
def get_connection(client_user_id: ClientUserId):
    found = views.connection_status(client_user_id)
    if found is None:
        return not_found("no connection for this client_user_id")
    return json_response(200, found)


@routes.get(
    "/connections/<client_user_id>/timeline",
    "getConnectionTimeline",
    "The member's backfill and reconciliation on a time axis (JSON, or an SVG picture by Accept)",
    ok_or_picture(200, "The member's sync jobs (Accept: image/svg+xml for the picture)", timelines.MEMBER_TIMELINE),
    404,
    406,
)
def get_connection_timeline(client_user_id: ClientUserId):
    try:
        return timelines.member_timeline(client_user_id, accept_header(app.current_event))
    except views.NoConnection:
        return not_found("no connection for this client_user_id")


@routes.delete(
    "/connections/<client_user_id>",
    "deleteConnection",
    "Disconnect: revoke at WHOOP and drop the tokens; repeating it changes nothing",
    {204: {"description": "Disconnected (or never connected)", "content": {}}},
    404,
    503,
)
def delete_connection(client_user_id: ClientUserId):
    disconnect.disconnect(client_user_id)
    return Response(status_code=204, body="", headers={"Cache-Control": "no-store"})


@routes.get(
    "/members/<client_user_id>/profile",
    "getMemberProfile",
    "The member's stored WHOOP profile",
    ok(200, "The profile", _PROFILE),
    404,
)
def get_profile(client_user_id: ClientUserId):
    profile = views.profile(client_user_id)
    if profile is None:
        return not_found("no stored profile for this client_user_id")
    return json_response(200, profile)


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
            found = views.record_page(records.RecordQuery(client_user_id, record_type, start, end, limit, next_token))
        except views.NoConnection:
            return not_found("no connection for this client_user_id")
        return json_response(200, found)

    read_records.__name__ = f"list_{record_type}_records"
    read_records.__doc__ = f"The member's stored {record_type} records, newest first, in [start, end)."
    routes.get(
        f"/members/<client_user_id>/{record_type}",
        f"list{record_type.capitalize()}Records",
        f"The member's stored {record_type} records, newest first, in [start, end)",
        ok(200, f"A page of {record_type} records", _RECORDS),
        404,
    )(read_records)


for _record_type in records.RECORD_TYPES:
    _record_route(_record_type)


_MEMBER = "$request.path.client_user_id"
_MEMBER_LINKS = {"GetMemberProfile": link("getMemberProfile", "the member's profile", client_user_id=_MEMBER)} | {
    f"List{kind.capitalize()}Records": link(
        f"list{kind.capitalize()}Records", f"the member's {kind} records", client_user_id=_MEMBER
    )
    for kind in records.RECORD_TYPES
}
LINKS = {
    # The connection exists once the member consents at WHOOP, so no link to GET it here.
    ("/connections", "post", 201): {
        "DeleteConnection": link(
            "deleteConnection", "give up the connection", client_user_id="$request.body#/client_user_id"
        ),
    },
    ("/connections/{client_user_id}", "get", 200): {
        "DeleteConnection": link("deleteConnection", "disconnect", client_user_id=_MEMBER),
        **_MEMBER_LINKS,
    },
    ("/connections/{client_user_id}", "delete", 204): {
        "GetConnection": link("getConnection", "the connection, now disconnected", client_user_id=_MEMBER),
    },
}

TITLE = "WHOOP Bridge member API"
DESCRIPTION = "The platform's members: WHOOP connect links, connection status, disconnect, and each member's stored WHOOP data. Every route is IAM-authorized (SigV4)."
configure(app, TITLE, DESCRIPTION, "/members/openapi.json", links=LINKS, errors=errors.for_members())
handler = lambda_handler(app, logger)
