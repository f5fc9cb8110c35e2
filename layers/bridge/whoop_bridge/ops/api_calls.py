"""The bridge's own lab API, called as an operator: resume a failed test or order, read an
order's timeline. Calls to a deployed stack are signed with SigV4 (service `execute-api`,
the operator's credentials: the routes use IAM authorization); the local stack takes them
unsigned."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest

from whoop_bridge.ops.errors import FAILED, UNREACHABLE, OpsError
from whoop_bridge.ops.stack import Stack

TIMEOUT_SECONDS = 30
SVG = "image/svg+xml"
# What the command may print of an answer: the API's own fields, which name ids, statuses
# and errors (its error messages never echo an input).
ANSWER_KEYS = (
    "error", "message", "state",
    "service_request_id", "execution", "workflow", "resumes", "resending",
    "requisition_id", "outcome", "resumed_from", "retry_until",
)  # fmt: skip
RESUME_PATHS = {
    "service-request": "/lab/service-requests/{id}/resume",
    "requisition": "/lab/requisitions/{id}/resume",
}


@dataclass
class Answer:
    status: int
    content_type: str
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None


def call(stack: Stack, method: str, path: str, accept: str = "application/json", body: Any = None) -> Answer:
    """`method` `path` (below the API's stage) on `stack`'s API, with `body` as JSON when
    given; an Answer for any status, OpsError (exit 3) when nothing answers."""
    url = f"{stack.api_url}{path}"
    headers = {"Accept": accept}
    data = b""
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if stack.signed:
        credentials = stack.session.get_credentials()
        if credentials is None:
            raise OpsError("no AWS credentials to sign the API call with", UNREACHABLE)
        request = AWSRequest(method=method, url=url, data=data, headers=headers)
        SigV4Auth(credentials.get_frozen_credentials(), "execute-api", stack.region).add_auth(request)
        headers = dict(request.headers.items())
    try:
        answer = requests.request(method, url, headers=headers, data=data, timeout=TIMEOUT_SECONDS)
    except requests.RequestException as error:
        raise OpsError(
            f"the API at {stack.api_url} could not be reached: {type(error).__name__}", UNREACHABLE
        ) from None
    return Answer(answer.status_code, answer.headers.get("Content-Type", ""), answer.content)


def summary(answer: Answer) -> str:
    """`STATUS key=value ...` of the answer's allow-listed fields."""
    body = answer.json()
    fields = body if isinstance(body, dict) else {}
    shown = " ".join(f"{key}={_text(fields[key])}" for key in ANSWER_KEYS if _text(fields.get(key)) is not None)
    return f"{answer.status} {shown}".rstrip()


def _text(value: Any) -> str | None:
    """A scalar as text, a list of scalars joined with commas (`resending`), else None."""
    if isinstance(value, str | int | bool):
        return str(value)
    if isinstance(value, list) and all(isinstance(item, str | int) for item in value):
        return ",".join(str(item) for item in value) or "-"
    return None


def refused(answer: Answer, what: str) -> OpsError:
    """The error for an answer that is not a success."""
    if answer.status == 403:
        # API Gateway's 403 also answers a route the API does not have.
        return OpsError(
            f"403 {what}: refused by the API (no such route in this stack's version, "
            "or credentials without the execute-api:Invoke right)"
        )
    return OpsError(f"{summary(answer)} ({what})", FAILED)


def resume(stack: Stack, kind: str, identifier: str) -> Answer:
    """POST the resume route of `kind` (`service-request` or `requisition`) with its body `{}`:
    202 with the new execution's name (a test) or the intake's new deadline (an order);
    OpsError on 404 (unknown), 409 (not failed: `state` names where it is) or any other refusal."""
    answer = call(stack, "POST", RESUME_PATHS[kind].format(id=quote(identifier, safe="")), body={})
    if answer.status not in (200, 202):
        raise refused(answer, f"resume {kind}")
    return answer


def timeline(stack: Stack, requisition_id: str, svg: bool = False) -> Answer:
    """GET an order's timeline, as JSON or (svg) as the SVG picture; OpsError on 404."""
    path = f"/lab/requisitions/{quote(requisition_id, safe='')}/timeline"
    answer = call(stack, "GET", path, accept=SVG if svg else "application/json")
    if answer.status != 200:
        raise refused(answer, "timeline")
    return answer


def timeline_rows(timeline_body: dict[str, Any]) -> list[str]:
    """A compact text table of an order's timeline JSON: the order's line, then per test its
    line and one line per entry (time, kind, label). An issue's `reason` (the lab's text) is
    not printed."""
    lines = [
        f"requisition {timeline_body.get('requisition_id')}  outcome={timeline_body.get('outcome')}  "
        f"received={timeline_body.get('received_at')}  open={timeline_body.get('open')}"
    ]
    for test in timeline_body.get("service_requests", []):
        lines.append(
            f"  {test.get('service_request_id')}  {test.get('code')}  workflow={test.get('workflow')}  "
            f"status={test.get('task_business_status')}"
        )
        for entry in test.get("entries", []):
            lines.append(f"    {entry.get('at', ''):24}  {entry.get('kind', ''):9}  {entry.get('label', '')}")
    return lines
