"""The operator command's arguments, outputs and exit codes, against a fake SQS and a stub
of the bridge's API (no AWS)."""

from __future__ import annotations

import io
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from whoop_bridge.ops import __main__ as ops
from whoop_bridge.ops import dead_letters
from whoop_bridge.ops.errors import FAILED, UNREACHABLE, USAGE, OpsError
from whoop_bridge.ops.stack import Resource, Stack

DLQ_ARN = "arn:aws:sqs:us-east-1:123456789012:partner-dlq"
SOURCE_ARN = "arn:aws:sqs:us-east-1:123456789012:partner"


class FakeSqs:
    """Two queues: `partner` redrives to `partner-dlq`, which holds `messages`."""

    def __init__(self, messages: list[dict[str, Any]], task_statuses: list[str] | None = None) -> None:
        self.messages = messages
        self.hidden: set[str] = set()
        self.visibility_resets: list[str] = []
        self.task_statuses = list(task_statuses or ["COMPLETED"])
        self.started: list[dict[str, Any]] = []

    def get_queue_attributes(self, QueueUrl: str, AttributeNames: list[str]) -> dict[str, Any]:
        if "QueueArn" in AttributeNames:
            if QueueUrl.endswith("/partner"):
                return {
                    "Attributes": {
                        "QueueArn": SOURCE_ARN,
                        "RedrivePolicy": json.dumps({"deadLetterTargetArn": DLQ_ARN}),
                    }
                }
            return {"Attributes": {"QueueArn": DLQ_ARN}}
        visible = [m for m in self.messages if m["MessageId"] not in self.hidden]
        return {
            "Attributes": {
                "ApproximateNumberOfMessages": str(len(visible)),
                "ApproximateNumberOfMessagesNotVisible": str(len(self.hidden)),
            }
        }

    def receive_message(
        self, QueueUrl: str, MaxNumberOfMessages: int, VisibilityTimeout: int, **_: Any
    ) -> dict[str, Any]:
        assert VisibilityTimeout <= 30
        batch = [m for m in self.messages if m["MessageId"] not in self.hidden][:MaxNumberOfMessages]
        self.hidden.update(m["MessageId"] for m in batch)
        return {"Messages": [{**m, "ReceiptHandle": f"rh-{m['MessageId']}"} for m in batch]}

    def change_message_visibility_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        for entry in Entries:
            assert entry["VisibilityTimeout"] == 0
            message_id = entry["ReceiptHandle"].removeprefix("rh-")
            self.hidden.discard(message_id)
            self.visibility_resets.append(message_id)
        return {"Successful": [{"Id": e["Id"]} for e in Entries], "Failed": []}

    def start_message_move_task(self, SourceArn: str, DestinationArn: str) -> dict[str, Any]:
        self.started.append({"SourceArn": SourceArn, "DestinationArn": DestinationArn})
        return {"TaskHandle": "h"}

    def list_message_move_tasks(self, SourceArn: str, MaxResults: int) -> dict[str, Any]:
        status = self.task_statuses.pop(0) if len(self.task_statuses) > 1 else self.task_statuses[0]
        task = {"Status": status, "ApproximateNumberOfMessagesMoved": 0, "ApproximateNumberOfMessagesToMove": 2}
        if status == "COMPLETED":
            task["ApproximateNumberOfMessagesMoved"] = len(self.messages)
            self.messages = []
        if status == "FAILED":
            task["FailureReason"] = "AWS.SimpleQueueService.NonExistentQueue"
        return {"Results": [task]}


class FakeSession:
    def __init__(self, sqs: FakeSqs) -> None:
        self.sqs = sqs

    def client(self, service: str, **_: Any) -> FakeSqs:
        assert service == "sqs"
        return self.sqs


def fake_stack(sqs: FakeSqs) -> Stack:
    resources = [
        Resource("PartnerEventsQueue", "AWS::SQS::Queue", "https://sqs/123/partner"),
        Resource("PartnerEventsDeadLetterQueue", "AWS::SQS::Queue", "https://sqs/123/partner-dlq"),
        Resource("LabTable", "AWS::DynamoDB::Table", "lab"),
    ]
    return Stack("s", "us-east-1", {}, resources, FakeSession(sqs), signed=False)


def letter(message_id: str, body: dict[str, Any], **attributes: str) -> dict[str, Any]:
    return {
        "MessageId": message_id,
        "Body": json.dumps(body),
        "Attributes": {
            "SentTimestamp": "1764561600000",
            "ApproximateFirstReceiveTimestamp": "1764561601000",
            "ApproximateReceiveCount": "7",
        },
        "MessageAttributes": {name: {"StringValue": value, "DataType": "String"} for name, value in attributes.items()},
    }


def run(stack: Stack, argv: list[str], monkeypatch: pytest.MonkeyPatch) -> tuple[int, str, str]:
    monkeypatch.setattr(ops, "open_stack", lambda arguments: stack)
    out, err = io.StringIO(), io.StringIO()
    code = ops.main(["--stack", "s", *argv], out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_listing_prints_ids_times_and_errors_and_leaves_every_message_in_the_queue(monkeypatch):
    sqs = FakeSqs(
        [
            letter("m1", {"event_type": "lab_requisition.created", "resource_id": "req-1", "patient": "Jordan"}),
            letter("m2", {"action": "reconcile"}, ERROR_CODE="AWS.Lambda.Throttled", SECRET="x"),
        ]
    )
    code, out, _ = run(fake_stack(sqs), ["dead-letters", "list"], monkeypatch)
    assert code == 0
    assert "partner-events (PartnerEventsDeadLetterQueue -> PartnerEventsQueue): 2 messages, 0 in flight" in out
    assert "m1  sent=2025-12-01T04:00:00Z  first_received=2025-12-01T04:00:01Z  receives=6" in out
    assert "ids: event_type=lab_requisition.created resource_id=req-1 (+1 keys not shown)" in out
    assert "error: ERROR_CODE=AWS.Lambda.Throttled" in out and "error: not recorded" in out
    assert "Jordan" not in out and "SECRET" not in out
    assert sorted(sqs.visibility_resets) == ["m1", "m2"] and not sqs.hidden


def test_listing_shows_visibility_again_even_when_a_read_fails(monkeypatch):
    sqs = FakeSqs([letter("m1", {"id": "r1"})])
    original = sqs.receive_message
    calls = []

    def failing_second(**arguments: Any) -> dict[str, Any]:
        calls.append(1)
        if len(calls) > 1:
            raise RuntimeError("connection dropped")
        return original(**arguments)

    sqs.receive_message = failing_second  # type: ignore[method-assign]
    queue = dead_letters.find(fake_stack(sqs))[0]
    with pytest.raises(RuntimeError):
        dead_letters.peek(fake_stack(sqs), queue, 10)
    assert sqs.visibility_resets == ["m1"]


def test_replay_moves_to_the_source_queue_and_polls_the_task_to_its_end(monkeypatch):
    sqs = FakeSqs([letter("m1", {"id": "r1"}), letter("m2", {"id": "r2"})], ["RUNNING", "RUNNING", "COMPLETED"])
    monkeypatch.setattr(dead_letters.time, "sleep", lambda seconds: None)
    code, out, _ = run(fake_stack(sqs), ["dead-letters", "replay", "partner-events"], monkeypatch)
    assert code == 0
    assert sqs.started == [{"SourceArn": DLQ_ARN, "DestinationArn": SOURCE_ARN}]
    assert "partner-events: moving 2 messages to PartnerEventsQueue" in out
    assert "move task COMPLETED: 2 moved of 2" in out
    assert "partner-events now holds 0 messages, 0 in flight" in out


def test_a_failed_move_task_exits_1_with_its_reason(monkeypatch):
    sqs = FakeSqs([letter("m1", {"id": "r1"})], ["FAILED"])
    code, out, err = run(fake_stack(sqs), ["dead-letters", "replay", "partner-events"], monkeypatch)
    assert code == FAILED
    assert "failure: AWS.SimpleQueueService.NonExistentQueue" in out
    assert err == "error: the move task ended FAILED\n"


def test_replaying_an_empty_queue_starts_no_task(monkeypatch):
    sqs = FakeSqs([])
    code, out, _ = run(fake_stack(sqs), ["dead-letters", "replay", "partner-events"], monkeypatch)
    assert code == 0 and "partner-events: empty (0 in flight), nothing to replay" in out
    assert sqs.started == []


def test_a_move_task_still_running_at_the_timeout_is_reported_not_waited_for_forever():
    sqs = FakeSqs([letter("m1", {"id": "r1"})], ["RUNNING"])
    stack = fake_stack(sqs)
    queue = dead_letters.find(stack)[0]
    with pytest.raises(OpsError, match="still RUNNING after 4 s"):
        dead_letters.replay(stack, queue, timeout_seconds=4, interval_seconds=2, sleep=lambda seconds: None)


def test_a_queue_without_a_source_is_not_replayed():
    queue = dead_letters.DeadLetterQueue("schedule", "ScheduleDeadLetterQueue", "u", "a")
    with pytest.raises(OpsError, match="schedule has no source queue"):
        dead_letters.check_replayable(queue)


@pytest.mark.parametrize(
    "argv",
    [
        ["dead-letters", "list"],  # neither --stack nor --local
        ["--stack", "s", "--local", "http://x", "dead-letters", "list"],
        ["--stack", "s", "dead-letters"],
        ["--stack", "s", "resume", "test", "id-1"],
        ["--stack", "s", "timeline", "requisition"],
        ["--stack", "s", "dead-letters", "list", "--max", "0"],
        ["--stack", "s", "dead-letters", "list", "--max", "ten"],
    ],
)
def test_bad_arguments_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exited:
        ops.main(argv)
    assert exited.value.code == 2


def test_the_arguments_name_the_stack_region_profile_and_command():
    arguments = ops.parser().parse_args(
        [
            "--stack",
            "whoop-bridge",
            "--region",
            "eu-west-1",
            "--profile",
            "ops",
            "dead-letters",
            "replay",
            "member-jobs",
        ]
    )
    assert (arguments.stack, arguments.region, arguments.profile) == ("whoop-bridge", "eu-west-1", "ops")
    assert (arguments.command, arguments.action, arguments.queue) == ("dead-letters", "replay", "member-jobs")


class StubApi(BaseHTTPRequestHandler):
    """The bridge's lab API as far as the command needs it, and `/_local/stack`."""

    answers: dict[tuple[str, str], tuple[int, str, bytes]] = {}
    seen: list[tuple[str, str, str]] = []
    bodies: list[tuple[bytes, str]] = []

    def log_message(self, *args: Any) -> None:
        return

    def _answer(self) -> None:
        self.seen.append((self.command, self.path, self.headers.get("Accept", "")))
        length = int(self.headers.get("Content-Length") or 0)
        self.bodies.append((self.rfile.read(length), self.headers.get("Content-Type", "")))
        if self.path == "/_local/stack":
            port = self.server.server_address[1]
            body = {
                "stack_name": "whoop-bridge-local",
                "region": "us-east-1",
                "aws_endpoint": "http://127.0.0.1:1",
                "outputs": {"ApiUrl": f"http://127.0.0.1:{port}/v1"},
                "resources": [],
            }
            status, content_type, data = 200, "application/json", json.dumps(body).encode()
        else:
            status, content_type, data = self.answers.get(
                (self.command, self.path), (403, "application/json", b'{"message":"Missing Authentication Token"}')
            )
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = _answer


@pytest.fixture
def stub_api():
    StubApi.answers, StubApi.seen, StubApi.bodies = {}, [], []
    server = ThreadingHTTPServer(("127.0.0.1", 0), StubApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def local(url: str, argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    return ops.main(["--local", url, *argv], out=out, err=err), out.getvalue(), err.getvalue()


def answer(status: int, body: dict[str, Any]) -> tuple[int, str, bytes]:
    return status, "application/json", json.dumps(body).encode()


def test_resume_prints_the_new_execution(stub_api):
    StubApi.answers[("POST", "/v1/lab/service-requests/sr%2F1/resume")] = answer(
        202,
        {
            "service_request_id": "sr/1",
            "execution": "sr-1-resume-1",
            "workflow": "starting",
            "resumes": 1,
            "resending": ["RESULTS_READY", "diagnostic_report"],
            "extra": {"x": "y"},
        },
    )
    code, out, err = local(stub_api, ["resume", "service-request", "sr/1"])
    assert code == 0, err
    assert out == (
        "resumed service-request sr/1: 202 service_request_id=sr/1 execution=sr-1-resume-1 workflow=starting "
        "resumes=1 resending=RESULTS_READY,diagnostic_report\n"
    )
    assert StubApi.bodies[-1] == (b"{}", "application/json")


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (
            409,
            {"error": "not_resumable", "message": "only a failed intake can be resumed", "state": "accepted"},
            "error: 409 error=not_resumable message=only a failed intake can be resumed state=accepted (resume requisition)\n",
        ),
        (
            404,
            {"error": "not_found", "message": "no such requisition"},
            "error: 404 error=not_found message=no such requisition (resume requisition)\n",
        ),
    ],
)
def test_a_refused_resume_prints_the_apis_error_and_exits_1(stub_api, status, body, expected):
    StubApi.answers[("POST", "/v1/lab/requisitions/req-1/resume")] = answer(status, body)
    code, out, err = local(stub_api, ["resume", "requisition", "req-1"])
    assert (code, out, err) == (FAILED, "", expected)


def test_a_route_the_stack_lacks_is_a_plain_403(stub_api):
    code, _, err = local(stub_api, ["resume", "requisition", "req-1"])
    assert code == FAILED and err.startswith("error: 403 resume requisition: refused by the API")


def test_the_timeline_prints_a_table_without_an_issues_reason(stub_api):
    StubApi.answers[("GET", "/v1/lab/requisitions/req-1/timeline")] = answer(
        200,
        {
            "requisition_id": "req-1",
            "received_at": "2026-12-01T04:00:00Z",
            "outcome": "accepted",
            "open": False,
            "service_requests": [
                {
                    "service_request_id": "sr-1",
                    "code": "CBC",
                    "workflow": "closed",
                    "task_business_status": "ORDER_ISSUE",
                    "entries": [
                        {"at": "2026-12-01T04:00:01Z", "kind": "status", "label": "ORDER_CONFIRMED"},
                        {
                            "at": "2026-12-01T04:00:02Z",
                            "kind": "issue",
                            "label": "ORDER_ISSUE",
                            "reason": "Jordan left",
                        },
                    ],
                }
            ],
        },
    )
    code, out, _ = local(stub_api, ["timeline", "requisition", "req-1"])
    assert code == 0
    assert out.splitlines() == [
        "requisition req-1  outcome=accepted  received=2026-12-01T04:00:00Z  open=False",
        "  sr-1  CBC  workflow=closed  status=ORDER_ISSUE",
        "    2026-12-01T04:00:01Z      status     ORDER_CONFIRMED",
        "    2026-12-01T04:00:02Z      issue      ORDER_ISSUE",
    ]
    assert StubApi.seen[-1] == ("GET", "/v1/lab/requisitions/req-1/timeline", "application/json")


def test_the_timeline_picture_is_asked_for_as_svg_and_saved(stub_api, tmp_path):
    picture = b"<svg xmlns='http://www.w3.org/2000/svg'></svg>"
    StubApi.answers[("GET", "/v1/lab/requisitions/req-1/timeline")] = (200, "image/svg+xml", picture)
    target = tmp_path / "order.svg"
    code, out, _ = local(stub_api, ["timeline", "requisition", "req-1", "--svg", str(target)])
    assert code == 0 and target.read_bytes() == picture
    assert out == f"saved the timeline picture of requisition req-1 to {target}\n"
    assert StubApi.seen[-1][2] == "image/svg+xml"


def test_an_svg_file_that_cannot_be_written_is_one_line_and_exit_2(stub_api, tmp_path):
    picture = b"<svg xmlns='http://www.w3.org/2000/svg'></svg>"
    StubApi.answers[("GET", "/v1/lab/requisitions/req-1/timeline")] = (200, "image/svg+xml", picture)
    target = tmp_path / "no-such-folder" / "order.svg"
    code, out, err = local(stub_api, ["timeline", "requisition", "req-1", "--svg", str(target)])
    assert code == USAGE and out == "" and not target.exists()
    assert err == f"error: cannot write {target}: FileNotFoundError\n"


def test_an_unknown_order_timeline_exits_1(stub_api):
    StubApi.answers[("GET", "/v1/lab/requisitions/nope/timeline")] = answer(
        404, {"error": "not_found", "message": "no such requisition"}
    )
    code, _, err = local(stub_api, ["timeline", "requisition", "nope"])
    assert code == FAILED and "404 error=not_found" in err


def test_nothing_answering_at_the_local_url_exits_3_without_a_traceback():
    code, out, err = local("http://127.0.0.1:9", ["dead-letters", "list"])
    assert code == UNREACHABLE and out == ""
    assert err == "error: nothing answers at http://127.0.0.1:9: is `python -m local serve` running?\n"


class CredentialSession:
    def get_credentials(self) -> Any:
        from botocore.credentials import Credentials

        return Credentials("AKIDEXAMPLE", "secret-example")


def test_a_deployed_stacks_api_call_is_signed_for_execute_api(stub_api):
    from whoop_bridge.ops import api_calls

    StubApi.answers[("POST", "/v1/lab/service-requests/sr-1/resume")] = answer(202, {"execution_name": "e"})
    headers: dict[str, str] = {}
    original = StubApi._answer

    def keep_headers(handler: StubApi) -> None:
        headers.update(handler.headers.items())
        original(handler)

    StubApi.do_POST = keep_headers  # type: ignore[method-assign]
    try:
        stack = Stack("s", "eu-west-1", {"ApiUrl": f"{stub_api}/v1"}, [], CredentialSession(), signed=True)
        api_calls.resume(stack, "service-request", "sr-1")
    finally:
        StubApi.do_POST = original  # type: ignore[method-assign]
    assert headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/eu-west-1/execute-api/aws4_request" in headers["Authorization"]
    assert "X-Amz-Date" in headers


class RefusingCloudFormation:
    def __init__(self, code: str) -> None:
        self.code = code
        self.meta = type("Meta", (), {"region_name": "eu-west-1"})()

    def describe_stacks(self, StackName: str) -> dict[str, Any]:
        from botocore.exceptions import ClientError

        raise ClientError(
            {"Error": {"Code": self.code, "Message": f"Stack with id {StackName} does not exist"}}, "DescribeStacks"
        )


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("ValidationError", "stack nope not found in eu-west-1"),
        ("ExpiredToken", "CloudFormation refused: ExpiredToken"),
    ],
)
def test_a_missing_stack_or_refused_credentials_exit_3_plainly(monkeypatch, code, expected):
    from whoop_bridge.ops import stack as stack_module

    class Session:
        def __init__(self, **_: Any) -> None:
            pass

        def client(self, service: str) -> RefusingCloudFormation:
            return RefusingCloudFormation(code)

    monkeypatch.setattr(stack_module.boto3, "Session", Session)
    out, err = io.StringIO(), io.StringIO()
    assert ops.main(["--stack", "nope", "dead-letters", "list"], out=out, err=err) == UNREACHABLE
    assert err.getvalue() == f"error: {expected}\n"


@pytest.mark.parametrize(
    ("flag", "sent"),
    [
        ("--report-taken", {"report_taken": True}),
        ("--resend-uncertain-report", {"resend_uncertain_report": True}),
    ],
)
def test_resume_passes_the_operators_answer_for_an_uncertain_report(stub_api, flag, sent):
    StubApi.answers[("POST", "/v1/lab/service-requests/sr-1/resume")] = answer(
        202,
        {
            "service_request_id": "sr-1",
            "execution": "sr-1-resume-1",
            "workflow": "starting",
            "resumes": 1,
            "resending": [],
        },
    )
    code, out, err = local(stub_api, ["resume", "service-request", "sr-1", flag])
    assert code == 0, err
    assert json.loads(StubApi.bodies[-1][0]) == sent


def test_an_uncertain_report_is_named_with_when_its_submission_started(stub_api):
    StubApi.answers[("POST", "/v1/lab/service-requests/sr-1/resume")] = answer(
        409,
        {
            "error": "report_uncertain",
            "message": "answer lost",
            "report_id": "rep-1",
            "submission_started_at": "2026-12-01T05:00:00.000Z",
        },
    )
    code, out, err = local(stub_api, ["resume", "service-request", "sr-1"])
    assert (code, out) == (FAILED, "")
    assert err == (
        "error: 409 error=report_uncertain message=answer lost report_id=rep-1 "
        "submission_started_at=2026-12-01T05:00:00.000Z (resume service-request)\n"
    )


def test_both_answers_at_once_or_an_answer_for_a_requisition_are_bad_arguments(stub_api):
    with pytest.raises(SystemExit) as both:
        local(stub_api, ["resume", "service-request", "sr-1", "--report-taken", "--resend-uncertain-report"])
    assert both.value.code == 2
    code, _, err = local(stub_api, ["resume", "requisition", "req-1", "--report-taken"])
    assert code == 2 and "service request only" in err
    assert not [seen for seen in StubApi.seen if seen[0] == "POST"]  # nothing was resumed
