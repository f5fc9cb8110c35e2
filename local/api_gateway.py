"""API Gateway as the local stack plays it: an HTTP server that turns each request into
the REST proxy event (payload 1.0) of the template's route, runs the function in-process
and answers with what it returned; unknown routes get API Gateway's 403."""

from __future__ import annotations

import base64
import json
import re
import sys
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from local.functions import Function, HandlerError
from local.resources import ACCOUNT

if TYPE_CHECKING:
    from local.stack import LocalStack

STAGE = "v1"


def serve_api(stack: LocalStack, port: int) -> ThreadingHTTPServer:
    """A server (not yet serving) for every route of `stack`'s template on 127.0.0.1:`port`."""
    compiled = [
        (
            method,
            path,
            iam,
            function,
            re.compile("^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(path)) + "$"),
        )
        for method, path, iam, function in stack.routes()
    ]
    handler = type("ApiGatewayHandler", (_Handler,), {"stack": stack, "compiled": compiled})
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    return server


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    stack: LocalStack  # set on the per-stack subclass
    compiled: list[tuple[str, str, bool, Function, re.Pattern[str]]]

    def log_message(self, *args: Any) -> None:  # quiet: the demo prints its own timeline
        return

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        path = parts.path
        if path.startswith(f"/{STAGE}/"):
            path = path[len(STAGE) + 1 :]
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if path == "/_local/health" and self.command == "GET":
            status = 200 if self.stack.ready.is_set() else 503
            return self._reply(
                status,
                {"Content-Type": "application/json"},
                json.dumps({"ready": self.stack.ready.is_set()}).encode(),
            )
        if path == "/_local/stack" and self.command == "GET":
            return self._reply(200, {"Content-Type": "application/json"}, json.dumps(self.stack.description()).encode())
        for method, template_path, iam, function, pattern in self.compiled:
            match = pattern.match(path)
            if match and method == self.command:
                if iam and self.stack.require_authorization and not self.headers.get("Authorization"):
                    return self._reply(
                        403, {"Content-Type": "application/json"}, b'{"message":"Missing Authentication Token"}'
                    )
                # API Gateway hands path parameters over percent-decoded.
                parameters = {name: unquote(value) for name, value in match.groupdict().items()}
                event = _api_event(self, template_path, path, parameters, parts.query, body)
                try:
                    answer = self.stack.invoke(function.logical_id, event)
                except HandlerError as error:
                    print(f"local: {function.logical_id} raised {error.error_type}: {error}", file=sys.stderr)
                    return self._reply(
                        502, {"Content-Type": "application/json"}, b'{"message": "Internal server error"}'
                    )
                return self._answer(answer)
        # API Gateway's answer for a route it does not have.
        self._reply(403, {"Content-Type": "application/json"}, b'{"message":"Missing Authentication Token"}')

    def _answer(self, answer: dict[str, Any]) -> None:
        headers = dict(answer.get("headers") or {})
        for key, values in (answer.get("multiValueHeaders") or {}).items():
            headers[key] = ", ".join(str(value) for value in values)
        body = answer.get("body") or ""
        data = base64.b64decode(body) if answer.get("isBase64Encoded") else body.encode()
        self._reply(int(answer.get("statusCode", 200)), headers, data)

    def _reply(self, status: int, headers: dict[str, str], data: bytes) -> None:
        self.send_response(status)
        for key, value in headers.items():
            if key.lower() != "content-length":
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    # Every method reaches the route table: API Gateway answers 403 to what it lacks.
    def __getattr__(self, name: str) -> Any:
        if name.startswith("do_"):
            return self._serve
        raise AttributeError(name)


def _api_event(
    request: BaseHTTPRequestHandler, resource: str, path: str, path_parameters: dict[str, str], query: str, body: bytes
) -> dict[str, Any]:
    """API Gateway's REST proxy event (payload 1.0) for one request, body byte-exact."""
    # API Gateway adds X-Forwarded-Proto; locally the scheme is plain http.
    received = [*request.headers.items(), ("X-Forwarded-Proto", "http")]
    headers = dict(received)
    multi_headers: dict[str, list[str]] = {}
    for key, value in received:
        multi_headers.setdefault(key, []).append(value)
    multi_query = parse_qs(query, keep_blank_values=True) if query else {}
    try:
        text: str | None = body.decode("utf-8") if body else None
        encoded = False
    except UnicodeDecodeError:
        text, encoded = base64.b64encode(body).decode(), True
    return {
        "resource": resource,
        # Percent-decoded, as API Gateway hands it over.
        "path": unquote(path),
        "httpMethod": request.command,
        "headers": headers or None,
        "multiValueHeaders": multi_headers or None,
        "queryStringParameters": {key: values[-1] for key, values in multi_query.items()} or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": path_parameters or None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": resource,
            "httpMethod": request.command,
            "path": f"/{STAGE}{path}",
            "stage": STAGE,
            "requestId": str(uuid.uuid4()),
            "accountId": ACCOUNT,
            "apiId": "local",
            "domainName": request.headers.get("Host") or f"127.0.0.1:{request.server.server_address[1]}",
            "identity": {"sourceIp": request.client_address[0], "userAgent": request.headers.get("User-Agent")},
        },
        "body": text,
        "isBase64Encoded": encoded,
    }
