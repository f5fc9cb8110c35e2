"""The platform's member API (IAM): connect links, connection status, disconnect, and the
member's stored data. The OpenAPI schema is served at /members/openapi.json.
"""

from typing import Annotated, Optional

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from aws_lambda_powertools.logging import correlation_paths
from pydantic import AwareDatetime, BeforeValidator

from whoop_bridge.config import ConfigurationError
from whoop_bridge.members import connections, records
from whoop_bridge.members.models import ConnectRequest
from whoop_bridge.observability import get_logger
from whoop_bridge.secrets import SecretNotConfigured
from whoop_bridge.store import member_store, record_store
from whoop_bridge.validation import problems, query_date_time

logger = get_logger("member_api")
app = APIGatewayRestResolver(enable_validation=True)

ClientUserId = Annotated[str, Path(pattern=connections.CLIENT_USER_ID.pattern)]
# Window bounds: ISO-8601 date-times with an offset; naive times are ambiguous, so refused.
# An offset's `+` that API Gateway decoded to a space is put back.
WindowBound = Annotated[Optional[AwareDatetime], BeforeValidator(query_date_time), Query(description="ISO-8601 date-time with a UTC offset or Z")]


def _json(status: int, body: dict) -> Response:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body, headers={"Cache-Control": "no-store"})


@app.exception_handler(RequestValidationError)
def _invalid(error: RequestValidationError) -> Response:
    return _json(400, {"error": "invalid_request", "problems": problems(error)})


@app.exception_handler(connections.ReturnUrlNotAllowed)
def _return_url(error: connections.ReturnUrlNotAllowed) -> Response:
    problem = "not one of the stack's AllowedReturnUrls (https, same host and path; only the query may differ)"
    return _json(400, {"error": "invalid_request", "problems": [{"field": "return_url", "problem": problem}]})


@app.exception_handler(SecretNotConfigured)
def _not_configured(error: SecretNotConfigured) -> Response:
    # Fail closed, and say so to the operator without naming a value.
    logger.error("member API refused: the bridge is not configured", extra={"detail": str(error)})
    return _json(503, {"error": "not_configured", "message": "the WHOOP member app credentials are not configured"})


@app.exception_handler(ConfigurationError)
def _misconfigured(error: ConfigurationError) -> Response:
    logger.error("member API refused: a stack setting is invalid", extra={"detail": str(error)})
    return _json(503, {"error": "not_configured", "message": "a stack setting is invalid; the function's log names it"})


@app.post("/connections")
def create_connection(request: Annotated[ConnectRequest, Body()]):
    event = app.current_event
    callback_url = connections.redirect_uri(event.raw_event.get("requestContext") or {}, event.headers)
    return _json(201, connections.create_link(request.client_user_id, request.return_url, callback_url))


@app.get("/connections/<client_user_id>")
def get_connection(client_user_id: ClientUserId):
    found = connections.status(client_user_id)
    if found is None:
        return _json(404, {"error": "not_found", "message": "no connection for this client_user_id"})
    return _json(200, found)


@app.delete("/connections/<client_user_id>")
def delete_connection(client_user_id: ClientUserId):
    connections.disconnect(client_user_id)
    return Response(status_code=204, body="")


@app.get("/members/<client_user_id>/profile")
def get_profile(client_user_id: ClientUserId):
    profile = member_store.get_record(client_user_id, "PROFILE")
    if profile is None:
        return _json(404, {"error": "not_found", "message": "no stored profile for this client_user_id"})
    return _json(200, {key: profile.get(key) for key in connections.PROFILE_FIELDS} | {"updated_at": profile.get("updated_at")})


@app.exception_handler(record_store.InvalidPageToken)
def _page_token(error: record_store.InvalidPageToken) -> Response:
    return _json(400, {"error": "invalid_request", "problems": [{"field": "query.next_token", "problem": str(error)}]})


@app.exception_handler(record_store.InvalidWindow)
def _window(error: record_store.InvalidWindow) -> Response:
    return _json(400, {"error": "invalid_request", "problems": [{"field": "query.end", "problem": str(error)}]})


def _record_route(record_type: str) -> None:
    """`GET /members/{client_user_id}/<record_type>`: one static path per type, so the
    profile route is never taken for a record type."""

    def read_records(
        client_user_id: ClientUserId,
        start: WindowBound = None,
        end: WindowBound = None,
        limit: Annotated[int, Query(ge=1, le=100, description="records per page")] = 25,
        next_token: Annotated[Optional[str], Query(min_length=1, max_length=2048, description="the previous page's next_token")] = None,
    ):
        if member_store.get_connection(client_user_id) is None:
            return _json(404, {"error": "not_found", "message": "no connection for this client_user_id"})
        found, token = record_store.page(client_user_id, record_type, start=start, end=end, limit=limit, next_token=next_token)
        return _json(200, {"records": found, "next_token": token})

    read_records.__name__ = f"list_{record_type}_records"
    read_records.__doc__ = f"The member's stored {record_type} records, newest first, in [start, end)."
    app.get(f"/members/<client_user_id>/{record_type}")(read_records)


for _record_type in records.RECORD_TYPES:
    _record_route(_record_type)


@app.get("/members/openapi.json", include_in_schema=False)
def openapi():
    return Response(
        status_code=200,
        content_type=content_types.APPLICATION_JSON,
        body=app.get_openapi_json_schema(title="WHOOP Bridge member API", version="1.0.0"),
    )


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def handler(event, context):
    return app.resolve(event, context)
