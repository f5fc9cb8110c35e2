"""Resuming a failed test and a requisition that failed intake, against in-memory ports:
which states may resume, what the new execution sends WHOOP again (and what it never sends
twice), its name, and two concurrent resumes."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError
from fakes.emf import emf_lines, points
from fakes.lab import FakePartnerClient, fake_ports
from pydantic import ValidationError

from whoop_bridge import caches
from whoop_bridge.lab import lifecycle, resume
from whoop_bridge.lab.errors import NotFound, NotResumable, ReportUncertain
from whoop_bridge.lab.intake import Unsettled, handle_partner_event
from whoop_bridge.lab.status_updates import apply_status_update, submit_results
from whoop_bridge.models import resume as rules
from whoop_bridge.models.lab_results import DiagnosticReport, LabStatusEvent
from whoop_bridge.models.requisition import RequisitionOutcome, RequisitionRecord
from whoop_bridge.models.resume import ServiceRequestResume
from whoop_bridge.models.service_request import Decision, ServiceRequestRecord, TokenPhase, WorkflowState
from whoop_bridge.models.task_status import TaskBusinessStatus as S
from whoop_bridge.whoop.http import WhoopNotFound, WhoopRequestRejected, WhoopTransientError

SR = "sr-1"
REQ = "req-1"
FINAL = {"status": "final", "observations": [{"code": "HDL", "value_numeric": 52}]}


SETTINGS = {
    "LAB_EVENT_TIMEOUT_DAYS": "30",
    "CORRECTION_WINDOW_DAYS": "30",
    "REQUISITION_FETCH_RETRY_SECONDS": "900",
    "ACCEPTED_TEST_CODES": "CBC",
}


@pytest.fixture(autouse=True)
def lab_settings(monkeypatch):
    for name, value in SETTINGS.items():
        monkeypatch.setenv(name, value)
    caches.reset_all()
    yield
    caches.reset_all()


@pytest.fixture
def ports():
    ports = fake_ports()
    ports.service_requests.add(
        ServiceRequestRecord(
            SR,
            REQ,
            code="CBC",
            decision=Decision.CONFIRM,
            task_business_status=S.ORDER_CONFIRMED,
            last_event_id="ORDER_CONFIRMED",
            history=[{"task_business_status": "ORDER_CONFIRMED", "at": "2026-12-01T00:00:00Z"}],
            task_token="token-1",
            token_phase=TokenPhase.LAB_EVENT,
            workflow=WorkflowState.AWAITING_LAB_EVENT,
        )
    )
    return ports


class WhoopDown(FakePartnerClient):
    """WHOOP answers 503 to every call, as during an outage that outlasts every retry."""

    def update_service_request_status(self, service_request_id, status, reason) -> None:
        raise WhoopTransientError("503", 503)

    def submit_diagnostic_report(self, service_request_id, report) -> None:
        raise WhoopTransientError("503", 503)


class AnswerLost(FakePartnerClient):
    """WHOOP takes the report, but its answer never arrives (a read timeout past retries)."""

    def submit_diagnostic_report(self, service_request_id, report) -> None:
        super().submit_diagnostic_report(service_request_id, report)
        raise WhoopTransientError("POST results: ReadTimeout after retries")


class WhoopRefuses(FakePartnerClient):
    """WHOOP answers `status` to the results POST."""

    def __init__(self, status: int) -> None:
        super().__init__()
        self.status = status

    def submit_diagnostic_report(self, service_request_id, report) -> None:
        raise WhoopRequestRejected(str(self.status), self.status)


def run_lab_event(client, lab_event, ports) -> None:
    """What the execution does with the lab's update (RouteLabEvent and its steps), failing
    as the state machine would: the step's error, then RecordFailure."""
    try:
        if lab_event["kind"] == "report":
            lifecycle.submit_diagnostic_report(client, SR, lab_event["report_id"], ports=ports)
            status = {"partial": "PARTIAL_RESULTS_READY", "final": "FULL_RESULTS_READY"}[lab_event["report_kind"]]
        else:
            status = lab_event["task_business_status"]
        lifecycle.set_status(client, SR, status, lab_event.get("reason"), lab_event["event_id"], ports=ports)
    except (WhoopTransientError, WhoopRequestRejected) as error:  # the step's Catch: States.ALL
        lifecycle.record_failure(SR, type(error).__name__, str(error), ports=ports)


def fail_with_attended(ports) -> dict:
    """The lab's APPOINTMENT_ATTENDED, which WHOOP never acknowledged: the test is failed."""
    apply_status_update(SR, LabStatusEvent(status=S.APPOINTMENT_ATTENDED), ports=ports)
    [(_, lab_event)] = ports.executions.resumed
    run_lab_event(WhoopDown(), lab_event, ports)
    assert ports.service_requests.get(SR).workflow is WorkflowState.FAILED
    return lab_event


def test_a_failed_status_update_is_sent_again_exactly_once_by_the_new_execution(ports, capsys, monkeypatch):
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "lab_api")
    lab_event = fail_with_attended(ports)
    capsys.readouterr()

    answer = resume.resume_service_request(SR, ports=ports)

    assert answer == {
        "service_request_id": SR,
        "execution": f"{SR}-resume-1",
        "workflow": "starting",
        "resumes": 1,
        "resending": ["APPOINTMENT_ATTENDED"],
    }
    out = capsys.readouterr().out
    assert points(out, "Resumed") == [({"resource": "service_request"}, 1.0)]
    assert SR not in json.dumps(emf_lines(out, "Resumed"))  # no ids in metrics
    started = ports.executions.started[f"{SR}-resume-1"]
    assert started["decision"] == "lab_event" and started["lab_event"] == lab_event
    assert started["lab_event_timeout_seconds"] == 30 * 86400 and started["resume"] == 1
    stored = ports.service_requests.get(SR)
    assert stored.workflow is WorkflowState.STARTING and stored.failure is None and stored.resumes == 1
    entry = stored.history[-1]
    assert entry["event"] == "resumed" and entry["execution"] == f"{SR}-resume-1"
    assert entry["resending"] == ["APPOINTMENT_ATTENDED"] and entry["failure"]["error"] == "WhoopTransientError"

    client = FakePartnerClient()
    run_lab_event(client, started["lab_event"], ports)  # the new execution, WHOOP healed
    run_lab_event(client, started["lab_event"], ports)  # a retried step sends nothing more
    assert client.statuses == [(SR, "APPOINTMENT_ATTENDED", None)]
    assert ports.service_requests.get(SR).task_business_status is S.APPOINTMENT_ATTENDED


def test_a_submitted_report_is_never_sent_again_only_the_status_after_it(ports):
    submit_results(SR, DiagnosticReport.model_validate(FINAL), FINAL, ports=ports)
    [(_, lab_event)] = ports.executions.resumed

    class StatusDown(FakePartnerClient):
        def update_service_request_status(self, service_request_id, status, reason) -> None:
            raise WhoopTransientError("503")

    first = StatusDown()
    run_lab_event(first, lab_event, ports)  # the report goes through, FULL_RESULTS_READY does not
    assert len(first.reports) == 1

    answer = resume.resume_service_request(SR, ports=ports)

    assert answer["resending"] == ["FULL_RESULTS_READY"]
    client = FakePartnerClient()
    run_lab_event(client, ports.executions.started[f"{SR}-resume-1"]["lab_event"], ports)
    assert client.reports == [] and client.statuses == [(SR, "FULL_RESULTS_READY", None)]


def test_a_report_whoop_took_whose_bus_message_failed_is_not_named_as_sent_again(ports):
    # WHOOP answered 201 and the report is marked submitted, but publishing its bus message
    # failed past every retry: the new execution only publishes it; WHOOP gets no second report.
    submit_results(SR, DiagnosticReport.model_validate(FINAL), FINAL, ports=ports)
    [(_, lab_event)] = ports.executions.resumed
    first = FakePartnerClient()
    lifecycle.submit_diagnostic_report(first, SR, lab_event["report_id"], ports=ports)
    [report] = ports.reports.records
    report.outbox = {"detail_type": "service_request.report_submitted", "detail": {"service_request_id": SR}}
    lifecycle.record_failure(SR, "PublishFailed", "bus down", ports=ports)

    answer = resume.resume_service_request(SR, ports=ports)

    assert answer["resending"] == ["FULL_RESULTS_READY"]
    client = FakePartnerClient()
    run_lab_event(client, ports.executions.started[f"{SR}-resume-1"]["lab_event"], ports)
    assert client.reports == [] and len(first.reports) == 1


def test_a_report_whoop_never_took_is_sent_with_its_status(ports):
    submit_results(SR, DiagnosticReport.model_validate(FINAL), FINAL, ports=ports)
    [(_, lab_event)] = ports.executions.resumed
    run_lab_event(WhoopRefuses(422), lab_event, ports)  # WHOOP said no: it does not hold it

    assert resume.resume_service_request(SR, ports=ports)["resending"] == ["diagnostic_report", "FULL_RESULTS_READY"]
    client = FakePartnerClient()
    run_lab_event(client, ports.executions.started[f"{SR}-resume-1"]["lab_event"], ports)
    assert client.reports == [(SR, FINAL)]


@pytest.mark.parametrize(
    ("decision", "status", "expected_decision", "resending"),
    [
        (Decision.CONFIRM, None, "confirm", ["ORDER_CONFIRMED"]),  # WHOOP down at ConfirmOrder
        (Decision.CONFIRM, S.ORDER_CONFIRMED, "confirm", []),  # the lab-event timeout after it
        (Decision.REJECT, None, "reject", ["ORDER_ISSUE"]),
        (Decision.RESUME, S.APPOINTMENT_ATTENDED, "resume", []),  # intake found it under way
    ],
)
def test_without_a_lab_update_the_new_execution_starts_as_intake_decided(
    decision, status, expected_decision, resending
):
    ports = fake_ports()
    recorded = {"last_event_id": status.value} if decision is Decision.CONFIRM and status else {}
    ports.service_requests.add(
        ServiceRequestRecord(
            SR,
            REQ,
            decision=decision,
            decision_reason="Test code X is not offered by this lab." if decision is Decision.REJECT else None,
            task_business_status=status,
            workflow=WorkflowState.FAILED,
            failure={"error": "LabEventTimeout", "cause": "", "at": "2026-12-01T00:00:00Z"},
            **recorded,
        )
    )

    answer = resume.resume_service_request(SR, ports=ports)

    started = ports.executions.started[f"{SR}-resume-1"]
    assert started["decision"] == expected_decision and "lab_event" not in started
    assert started["reason"] == ports.service_requests.get(SR).decision_reason
    assert answer["resending"] == resending


@pytest.mark.parametrize(
    "workflow",
    [state for state in WorkflowState if state is not WorkflowState.FAILED],
)
def test_only_a_failed_test_resumes_any_other_is_a_409_naming_its_state(ports, workflow):
    ports.service_requests.records[SR].workflow = workflow

    with pytest.raises(NotResumable) as refused:
        resume.resume_service_request(SR, ports=ports)

    assert refused.value.state == workflow.value and workflow.value in str(refused.value)
    assert ports.executions.started == {}


def test_an_unknown_test_is_not_found(ports):
    with pytest.raises(NotFound):
        resume.resume_service_request("sr-unknown", ports=ports)


def test_of_two_concurrent_resumes_one_starts_an_execution_the_other_is_a_409(ports):
    fail_with_attended(ports)
    answers = []
    ports.service_requests.before_claim = lambda: answers.append(resume.resume_service_request(SR, ports=ports))

    with pytest.raises(NotResumable) as refused:
        resume.resume_service_request(SR, ports=ports)

    assert refused.value.state == "starting" and "another resume" in str(refused.value)
    assert [answer["execution"] for answer in answers] == [f"{SR}-resume-1"]
    assert list(ports.executions.started) == [f"{SR}-resume-1"]
    assert [entry.get("event") for entry in ports.service_requests.get(SR).history].count("resumed") == 1


def test_a_second_failure_resumes_under_the_next_name(ports):
    lab_event = fail_with_attended(ports)
    resume.resume_service_request(SR, ports=ports)
    run_lab_event(WhoopDown(), lab_event, ports)  # WHOOP still down: failed again

    assert resume.resume_service_request(SR, ports=ports)["execution"] == f"{SR}-resume-2"
    assert list(ports.executions.started) == [f"{SR}-resume-1", f"{SR}-resume-2"]


def test_an_execution_that_cannot_start_leaves_the_test_failed_and_the_next_resume_takes_a_new_name(ports):
    fail_with_attended(ports)
    before = ports.service_requests.get(SR)
    ports.executions.fail_start = ClientError({"Error": {"Code": "ThrottlingException"}}, "StartExecution")

    with pytest.raises(ClientError):
        resume.resume_service_request(SR, ports=ports)

    after = ports.service_requests.get(SR)
    assert after.workflow is WorkflowState.FAILED and after.failure == before.failure
    assert after.history == before.history and after.resumes == 1
    assert resume.resume_service_request(SR, ports=ports)["execution"] == f"{SR}-resume-2"


@pytest.mark.parametrize("earlier_resumes", [0, 1])
def test_a_failed_execution_still_running_is_a_409_and_nothing_starts_until_it_ended(ports, earlier_resumes):
    # The failed execution is still in its RecordFailure step (e.g. retrying the bus message
    # after writing `failed`): a new one now would have its state overwritten by that retry.
    lab_event = fail_with_attended(ports)
    for _ in range(earlier_resumes):
        resume.resume_service_request(SR, ports=ports)
        run_lab_event(WhoopDown(), lab_event, ports)
    ending = resume.rules.execution_name(SR, earlier_resumes)
    ports.executions.running.add(ending)
    before = ports.service_requests.get(SR)

    with pytest.raises(NotResumable) as refused:
        resume.resume_service_request(SR, ports=ports)

    assert refused.value.state == "failed" and ending in str(refused.value) and "still running" in str(refused.value)
    assert ports.service_requests.get(SR) == before
    assert len(ports.executions.started) == earlier_resumes
    ports.executions.running.discard(ending)
    answer = resume.resume_service_request(SR, ports=ports)
    assert answer["execution"] == f"{SR}-resume-{earlier_resumes + 1}"


def test_a_name_taken_already_leaves_the_test_failed_not_starting_with_nothing_running(ports):
    # StartExecution answers ExecutionAlreadyExists (the port's False) for a name used before
    # with another input: no execution of this resume runs, so the test must not wait in `starting`.
    fail_with_attended(ports)
    ports.executions.started[f"{SR}-resume-1"] = {"service_request_id": "another test"}

    with pytest.raises(NotResumable) as refused:
        resume.resume_service_request(SR, ports=ports)

    assert refused.value.state == "failed" and f"{SR}-resume-1" in str(refused.value)
    after = ports.service_requests.get(SR)
    assert after.workflow is WorkflowState.FAILED and after.failure is not None
    assert resume.resume_service_request(SR, ports=ports)["execution"] == f"{SR}-resume-2"


def test_the_lab_can_send_its_next_update_once_the_new_execution_waits(ports):
    lab_event = fail_with_attended(ports)
    resume.resume_service_request(SR, ports=ports)
    run_lab_event(FakePartnerClient(), lab_event, ports)
    lifecycle.await_lab_event(SR, "lab_event", "token-2", ports=ports)

    accepted = submit_results(SR, DiagnosticReport.model_validate(FINAL), FINAL, ports=ports)

    assert accepted["accepted"] == "report"
    assert ports.executions.resumed[-1][0] == "token-2"


# Requisitions ---------------------------------------------------------------------------


def stored_requisition(ports, outcome: RequisitionOutcome) -> None:
    ports.requisitions.records[REQ] = RequisitionRecord(REQ, outcome, published=True)


@pytest.mark.parametrize("outcome", [RequisitionOutcome.NOT_FOUND, RequisitionOutcome.INVALID])
def test_a_requisition_that_failed_intake_is_fetched_again_and_taken_in(ports, outcome, capsys):
    stored_requisition(ports, outcome)

    answer = resume.resume_requisition(REQ, ports=ports)

    assert points(capsys.readouterr().out, "Resumed") == [({"resource": "requisition"}, 1.0)]
    assert answer["outcome"] == "awaiting_whoop" and answer["resumed_from"] == outcome.value
    [message] = ports.queue.messages
    assert message["event_type"] == "lab_requisition.created" and message["resource_id"] == REQ
    assert message["not_found_attempt"] == 0 and message["not_found_since"]
    client = FakePartnerClient()
    client.requisitions[REQ] = {
        "id": REQ,
        "patient": {},
        "service_requests": [{"id": "sr-9", "code": "CBC", "status": "active", "intent": "order"}],
    }
    assert handle_partner_event(message, client, ports=ports) == "received"
    assert ports.requisitions.get(REQ).outcome is RequisitionOutcome.RECEIVED
    assert list(ports.executions.started) == ["sr-9"]


def test_a_resumed_requisition_still_missing_goes_on_with_the_intakes_own_retries(ports):
    stored_requisition(ports, RequisitionOutcome.NOT_FOUND)
    resume.resume_requisition(REQ, ports=ports)
    client = FakePartnerClient()
    client.requisitions[REQ] = WhoopNotFound("404")

    with pytest.raises(Unsettled) as raised:
        handle_partner_event(ports.queue.messages[0], client, ports=ports)

    assert raised.value.outcome == "retrying"
    assert ports.queue.messages[-1]["not_found_attempt"] == 1 and ports.queue.messages[-1]["delay_seconds"] > 0


@pytest.mark.parametrize("outcome", [RequisitionOutcome.RECEIVED, RequisitionOutcome.AWAITING_WHOOP])
def test_a_requisition_that_did_not_fail_intake_is_a_409(ports, outcome):
    stored_requisition(ports, outcome)

    with pytest.raises(NotResumable) as refused:
        resume.resume_requisition(REQ, ports=ports)

    assert refused.value.state == outcome.value and ports.queue.messages == []


def test_a_second_requisition_resume_finds_it_awaiting_whoop(ports):
    stored_requisition(ports, RequisitionOutcome.INVALID)
    resume.resume_requisition(REQ, ports=ports)

    with pytest.raises(NotResumable) as refused:
        resume.resume_requisition(REQ, ports=ports)

    assert refused.value.state == "awaiting_whoop" and len(ports.queue.messages) == 1


def test_an_unknown_requisition_is_not_found(ports):
    with pytest.raises(NotFound):
        resume.resume_requisition("req-unknown", ports=ports)


def fail_with_answer_lost(ports) -> AnswerLost:
    """The lab's final report: WHOOP takes it, its answer is lost past every retry, the test fails."""
    submit_results(SR, DiagnosticReport.model_validate(FINAL), FINAL, ports=ports)
    [(_, lab_event)] = ports.executions.resumed
    whoop = AnswerLost()
    run_lab_event(whoop, lab_event, ports)
    assert ports.service_requests.get(SR).workflow is WorkflowState.FAILED
    assert len(whoop.reports) == 1
    return whoop


def test_a_report_whose_answer_was_lost_is_uncertain_and_a_plain_resume_is_a_409_naming_it(ports):
    fail_with_answer_lost(ports)
    [report] = ports.reports.records
    assert report.uncertain and report.submission_started_at and report.submitted_at is None

    with pytest.raises(ReportUncertain) as refused:
        resume.resume_service_request(SR, ports=ports)

    assert refused.value.report_id == report.report_id
    assert refused.value.submission_started_at == report.submission_started_at
    assert ports.executions.started == {}  # nothing started, the test stays failed, nothing claimed
    stored = ports.service_requests.get(SR)
    assert stored.workflow is WorkflowState.FAILED and stored.resumes == 0
    with pytest.raises(ReportUncertain):
        resume.resume_service_request(SR, ServiceRequestResume(), ports=ports)


def test_report_taken_records_it_submitted_and_whoop_gets_only_the_status_after_it(ports):
    first = fail_with_answer_lost(ports)

    answer = resume.resume_service_request(SR, ServiceRequestResume(report_taken=True), ports=ports)

    assert answer["resending"] == ["FULL_RESULTS_READY"]
    [report] = ports.reports.records
    assert report.submitted_at and not report.uncertain
    entry = ports.service_requests.get(SR).history[-1]
    assert entry["uncertain_report"] == "taken" and entry["resending"] == ["FULL_RESULTS_READY"]
    client = FakePartnerClient()
    run_lab_event(client, ports.executions.started[f"{SR}-resume-1"]["lab_event"], ports)
    assert client.reports == [] and len(first.reports) == 1
    assert client.statuses == [(SR, "FULL_RESULTS_READY", None)]
    # the platform still hears the report was submitted, once, from the stored outbox
    [published] = ports.bus.of("service_request.report_submitted")
    assert published["report_id"] == ports.reports.records[0].report_id


def test_resend_uncertain_report_posts_it_again_with_its_status(ports):
    fail_with_answer_lost(ports)

    answer = resume.resume_service_request(SR, ServiceRequestResume(resend_uncertain_report=True), ports=ports)

    assert answer["resending"] == ["diagnostic_report", "FULL_RESULTS_READY"]
    assert ports.service_requests.get(SR).history[-1]["uncertain_report"] == "resend"
    client = FakePartnerClient()
    run_lab_event(client, ports.executions.started[f"{SR}-resume-1"]["lab_event"], ports)
    assert client.reports == [(SR, FINAL)] and client.statuses == [(SR, "FULL_RESULTS_READY", None)]


def test_a_report_whoop_refused_with_a_4xx_is_not_uncertain(ports):
    submit_results(SR, DiagnosticReport.model_validate(FINAL), FINAL, ports=ports)
    [(_, lab_event)] = ports.executions.resumed
    run_lab_event(WhoopRefuses(422), lab_event, ports)
    [report] = ports.reports.records
    assert report.submission_started_at and report.submission_answer == 422 and not report.uncertain


@pytest.mark.parametrize("client", [WhoopDown(), WhoopRefuses(409), WhoopRefuses(429)], ids=["503", "409", "429"])
def test_an_answer_that_settles_nothing_leaves_the_report_uncertain(ports, client):
    """A 5xx or 429 past the in-call retries (an earlier attempt, whose answer was lost, may
    have been taken) or a 409 (WHOOP may hold it already): a resume asks the operator."""
    submit_results(SR, DiagnosticReport.model_validate(FINAL), FINAL, ports=ports)
    [(_, lab_event)] = ports.executions.resumed
    run_lab_event(client, lab_event, ports)
    [report] = ports.reports.records
    assert report.submission_answer is None and report.uncertain
    assert ports.service_requests.get(SR).workflow is WorkflowState.FAILED
    with pytest.raises(ReportUncertain):
        resume.resume_service_request(SR, ServiceRequestResume(), ports=ports)


def test_report_taken_without_an_uncertain_report_is_a_409_and_nothing_is_marked(ports):
    submit_results(SR, DiagnosticReport.model_validate(FINAL), FINAL, ports=ports)
    [(_, lab_event)] = ports.executions.resumed
    run_lab_event(WhoopRefuses(422), lab_event, ports)  # answered 422: WHOOP does not hold it

    with pytest.raises(NotResumable):
        resume.resume_service_request(SR, ServiceRequestResume(report_taken=True), ports=ports)

    [report] = ports.reports.records
    assert report.submitted_at is None and ports.executions.started == {}


@pytest.mark.parametrize(
    ("body", "problems"),
    [
        ({"resend_uncertain_report": True, "report_taken": True}, ["contradict"]),
        ({"report_taken": "yes"}, ["report_taken"]),
        ({"resend_uncertain_report": 1, "extra": 2}, ["resend_uncertain_report", "extra"]),
    ],
)
def test_the_resume_body_is_validated_strictly_naming_each_problem(body, problems):
    with pytest.raises(ValidationError) as invalid:
        ServiceRequestResume.model_validate(body)
    text = str(invalid.value)
    assert all(problem in text for problem in problems)
    assert invalid.value.error_count() == len(problems)


@pytest.mark.parametrize("length", [1, 36, 69, 70, 71, 72, 75, 80])
def test_execution_names_fit_step_functions_limit_and_stay_distinct_and_deterministic(length):
    identifier = ("a1b2c3d4-" * 10)[:length]
    names = {rules.execution_name(identifier, number) for number in (1, 2, 10, 999)}
    assert len(names) == 4 and all(len(name) <= rules.EXECUTION_NAME_LIMIT for name in names)
    assert rules.execution_name(identifier, 3) == rules.execution_name(identifier, 3)
    if length + len("-resume-1") <= 80:
        assert rules.execution_name(identifier, 1) == f"{identifier}-resume-1"
    other = identifier[:-1] + "z"  # ids sharing a long prefix still get different names
    assert rules.execution_name(other, 1) != rules.execution_name(identifier, 1)


def test_a_long_id_resumes_under_a_short_name(ports):
    long_id = "x" * 76
    record = ports.service_requests.get(SR)
    record.service_request_id = long_id
    ports.service_requests.add(record)
    apply_status_update(long_id, LabStatusEvent(status=S.APPOINTMENT_ATTENDED), ports=ports)
    [(_, lab_event)] = ports.executions.resumed
    try:
        lifecycle.set_status(WhoopDown(), long_id, "APPOINTMENT_ATTENDED", None, lab_event["event_id"], ports=ports)
    except WhoopTransientError as error:
        lifecycle.record_failure(long_id, "WhoopTransientError", str(error), ports=ports)

    answer = resume.resume_service_request(long_id, ports=ports)

    assert len(answer["execution"]) <= 80 and answer["execution"].endswith("-resume-1")
    assert answer["execution"] in ports.executions.started
