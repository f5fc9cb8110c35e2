"""The stack's CloudWatch dashboard (template.yaml `Dashboard`), as an operator would use it:
its body, once CloudFormation has substituted it, holds every widget issue 12 names, each
plotting what the stack really has (its queues, its state machine) and, for the bridge's own
metrics (namespace WhoopBridge), only metrics the code writes under exactly the plotted
dimensions. What the code writes is read from its source: every `emf.put`, `add_metric`,
`Count` (member_sync's) and `single_metric` call, and which function's handler imports the
module that writes it (a `service` dimension names that function)."""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from local.cfn import Resolver, load_template, resources_of
from whoop_bridge.members.views import LISTED_STATUSES
from whoop_bridge.models.connection import ConnectionStatus
from whoop_bridge.models.task_status import ISSUE_STATUSES, TaskBusinessStatus
from whoop_bridge.whoop import routes

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "layers" / "bridge" / "whoop_bridge"
FUNCTIONS = ROOT / "functions"
NAMESPACE = "WhoopBridge"
PSEUDO = {
    "AWS::Region": "eu-west-1",
    "AWS::StackName": "whoop-bridge-sandbox",
    "AWS::AccountId": "123456789012",
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
}
# The values a dimension can take where the code writes a variable: the enums it comes from.
DIMENSION_VALUES = {
    "task_business_status": {status.value for status in TaskBusinessStatus},
    "status": {status.value for status in ConnectionStatus},
    "route": set(routes.TEMPLATES),
}
# ... and where one metric's variable takes other values than the enum of its dimension's name.
METRIC_DIMENSION_VALUES = {("MembersByStatus", "status"): set(LISTED_STATUSES)}  # also not_connected
SEARCH = re.compile(r"SEARCH\('\{(?P<namespace>[^,}]+),(?P<keys>[^}]*)\} MetricName=\"(?P<name>\w+)\"'")


# What the dashboard plots --------------------------------------------------------------------


@dataclass(frozen=True)
class Plotted:
    widget: str
    namespace: str
    name: str
    dimensions: dict[str, str]
    stat: str | None


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


def resolver(template: dict[str, Any]) -> Resolver:
    """CloudFormation's substitution, with each resource's id as `<Name>` and attribute as `<Name.Attr>`."""
    return Resolver(
        template,
        {},
        {name: f"<{name}>" for name in template["Resources"]},
        lambda resource, attribute: f"<{resource}.{attribute}>",
        PSEUDO,
    )


@pytest.fixture(scope="module")
def body(template) -> dict[str, Any]:
    (dashboard,) = resources_of(template, "AWS::CloudWatch::Dashboard").values()
    return json.loads(resolver(template).resolve(dashboard["Properties"]["DashboardBody"]))


@pytest.fixture(scope="module")
def plotted(body) -> list[Plotted]:
    rows = []
    for widget in body["widgets"]:
        properties = widget["properties"]
        for row in properties.get("metrics", []):
            if isinstance(row, dict):  # an expression: a SEARCH of one metric by its dimension names
                match = SEARCH.search(row["expression"])
                assert match, row
                keys = {key.strip() for key in match["keys"].split(",") if key.strip()}
                dimensions = dict.fromkeys(keys, "*")
                rows.append(Plotted(properties["title"], match["namespace"], match["name"], dimensions, None))
                continue
            options = row[-1] if isinstance(row[-1], dict) else {}
            names = row[:-1] if options else row
            assert "..." not in names, f"{properties['title']}: write every row in full"
            namespace, name, *pairs = names
            dimensions = dict(zip(pairs[::2], pairs[1::2], strict=True))
            stat = options.get("stat", properties.get("stat"))
            rows.append(Plotted(properties["title"], namespace, name, dimensions, stat))
    return rows


def rows_of(plotted: list[Plotted], name: str, namespace: str = NAMESPACE, **dimensions: str) -> list[Plotted]:
    return [
        row
        for row in plotted
        if row.namespace == namespace
        and row.name == name
        and all(row.dimensions.get(key) == value for key, value in dimensions.items())
    ]


# What the code writes ---------------------------------------------------------------------------


@dataclass
class Emission:
    """One place the code writes a metric: its dimension names (`service` included when the
    call names it) and, per name, the values written when they are literals (None: a variable)."""

    name: str
    module: str
    kind: str  # "own" (emf.put: with and without service), "shared" (the handler's set: service), "single"
    keys: frozenset[str]
    values: dict[str, set[str] | None] = field(default_factory=dict)
    literals: frozenset[str] = frozenset()


def _module_files() -> dict[str, Path]:
    files = {f"functions.{path.parent.name}.app": path for path in FUNCTIONS.glob("*/app.py")}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return files


def _text(node: ast.AST | None, constants: dict[str, str]) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name):
        return constants.get(node.id)
    return None


def _keyword(call: ast.Call, name: str) -> ast.AST | None:
    return next((keyword.value for keyword in call.keywords if keyword.arg == name), None)


def _dimensions(
    node: ast.AST | None, constants: dict[str, str], dicts: dict[str, ast.Dict]
) -> dict[str, set[str] | None]:
    if isinstance(node, ast.Name):  # a dict literal assigned to a name first
        node = dicts.get(node.id)
    assert isinstance(node, ast.Dict), "dimensions are written as a dict literal"
    found: dict[str, set[str] | None] = {}
    for key, value in zip(node.keys, node.values, strict=True):
        name = _text(key, constants)
        assert name is not None, "dimension names are literals"
        text = _text(value, constants)
        found[name] = {text} if text is not None else None
    return found


def _emissions(module: str, tree: ast.Module) -> list[Emission]:
    constants = {
        target.id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    dicts = {
        target.id: node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    literals = frozenset(
        node.value for node in ast.walk(tree) if isinstance(node, ast.Constant) and isinstance(node.value, str)
    )
    found = []
    for call in (node for node in ast.walk(tree) if isinstance(node, ast.Call)):
        function = call.func
        called = function.attr if isinstance(function, ast.Attribute) else getattr(function, "id", None)
        owner = (
            function.value.id if isinstance(function, ast.Attribute) and isinstance(function.value, ast.Name) else None
        )
        if called == "put" and owner == "emf":
            name = _text(call.args[0], constants)
            values = _dimensions(call.args[1], constants, dicts)
            kind = "own"
        elif called in ("add_metric", "Count"):
            name, values, kind = _text(_keyword(call, "name"), constants), {"service": None}, "shared"
        elif called == "single_metric":
            name = _text(_keyword(call, "name"), constants)
            values, kind = _dimensions(_keyword(call, "default_dimensions"), constants, dicts), "single"
        else:
            continue
        if name is not None:
            found.append(Emission(name, module, kind, frozenset(values), values, literals))
    return found


def _imports(module: str, tree: ast.Module, modules: set[str]) -> set[str]:
    """The bridge modules `module` imports (anywhere in it, lazy imports included)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name in modules}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("whoop_bridge"):
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names} & modules
    return found & modules


@dataclass
class Code:
    emissions: dict[str, list[Emission]]
    imports: dict[str, set[str]]
    flushing: set[str]  # the functions whose handler flushes the shared metric set (log_metrics)
    services: set[str]  # the functions of the stack, by POWERTOOLS_SERVICE_NAME

    def reaches(self, function: str, module: str) -> bool:
        """Whether `functions/<function>/app.py` imports `module`, directly or not."""
        seen, todo = set(), [f"functions.{function}.app"]
        while todo:
            current = todo.pop()
            if current == module:
                return True
            if current not in seen:
                seen.add(current)
                todo.extend(self.imports.get(current, ()))
        return False


@pytest.fixture(scope="module")
def code(template) -> Code:
    files = _module_files()
    trees = {module: ast.parse(path.read_text()) for module, path in files.items()}
    emissions: dict[str, list[Emission]] = {}
    for module, tree in trees.items():
        for emission in _emissions(module, tree):
            emissions.setdefault(emission.name, []).append(emission)
    services = {
        (spec["Properties"].get("Environment") or {}).get("Variables", {}).get("POWERTOOLS_SERVICE_NAME")
        for spec in resources_of(template, "AWS::Serverless::Function").values()
    }
    return Code(
        emissions=emissions,
        imports={module: _imports(module, tree, set(files)) for module, tree in trees.items()},
        flushing={path.parent.name for path in FUNCTIONS.glob("*/app.py") if "log_metrics" in path.read_text()},
        services=services - {None},
    )


def _values_fit(emission: Emission, dimensions: dict[str, str]) -> bool:
    for key, value in dimensions.items():
        if key == "service" or value == "*":
            continue
        written = emission.values.get(key)
        known = METRIC_DIMENSION_VALUES.get((emission.name, key)) or DIMENSION_VALUES.get(key, emission.literals)
        possible = written if written is not None else known
        if value not in possible:
            return False
    return True


def _service_fits(code: Code, emission: Emission, service: str) -> bool:
    if emission.kind == "single":
        return emission.values.get("service") in ({service}, None)
    if service not in code.services:
        return False
    if emission.kind == "shared" and service not in code.flushing:
        return False  # nothing would ever write the handler's set
    return code.reaches(service, emission.module)


def written_as(code: Code, name: str, dimensions: dict[str, str]) -> bool:
    """Whether some place in the code writes `name` under exactly these dimensions."""
    keys = set(dimensions)
    for emission in code.emissions.get(name, []):
        own = emission.keys - {"service"}
        if emission.kind == "own" and keys not in (set(own), set(own) | {"service"}):
            continue
        if emission.kind != "own" and keys != set(emission.keys):
            continue
        if "service" in keys and not _service_fits(code, emission, dimensions["service"]):
            continue
        if _values_fit(emission, dimensions):
            return True
    return False


# The tests ---------------------------------------------------------------------------------------


def test_every_bridge_metric_the_dashboard_plots_is_written_by_the_code_with_those_dimensions(plotted, code):
    own = [row for row in plotted if row.namespace == NAMESPACE]
    assert len(own) > 20
    missing = [(row.widget, row.name, row.dimensions) for row in own if not written_as(code, row.name, row.dimensions)]
    assert missing == []


def test_the_check_refuses_what_the_code_does_not_write(code):
    # A status the code never sends, a function that never calls WHOOP, a function whose
    # handler flushes no metrics, a dimension set the code does not write, an unknown name.
    assert written_as(code, "StatusSent", {"task_business_status": "ORDER_CONFIRMED"})
    assert not written_as(code, "StatusSent", {"task_business_status": "SPECIMEN_LOST"})
    assert written_as(code, "WhoopCalls", {"service": "member_sync", "route": "GET /v2/cycle/{id}"})
    assert not written_as(code, "WhoopCalls", {"service": "webhook_intake", "route": "GET /v2/cycle/{id}"})
    assert not written_as(code, "RequisitionReceived", {"service": "lab_api"})
    assert not written_as(code, "RequisitionReceived", {"service": "requisition_processor", "route": "x"})
    assert not written_as(code, "OrdersReceived", {"service": "requisition_processor"})


def test_orders_reports_and_tests_per_status(plotted):
    assert rows_of(plotted, "RequisitionReceived", service="requisition_processor")
    assert rows_of(plotted, "DiagnosticReportSubmitted", service="service_request_tasks")
    per_status = {row.dimensions["task_business_status"] for row in rows_of(plotted, "StatusSent")}
    assert per_status == {status.value for status in TaskBusinessStatus}
    issue_widgets = {row.widget for row in rows_of(plotted, "StatusSent", task_business_status="ORDER_ISSUE")}
    assert any(
        {row.dimensions["task_business_status"] for row in rows_of(plotted, "StatusSent") if row.widget == widget}
        == {status.value for status in ISSUE_STATUSES}
        for widget in issue_widgets
    )


@pytest.mark.parametrize("status", ["ORDER_CONFIRMED", "FULL_RESULTS_READY"])
def test_time_from_the_order_to_a_status_is_shown_as_p50_and_p95(plotted, status):
    rows = rows_of(plotted, "TimeFromOrderReceived", task_business_status=status)
    assert {row.stat for row in rows} == {"p50", "p95"}


def test_failed_and_timed_out_executions_of_the_stacks_state_machine(plotted):
    for metric in ("ExecutionsFailed", "ExecutionsTimedOut"):
        (row,) = rows_of(plotted, metric, "AWS/States")
        assert row.dimensions == {"StateMachineArn": "<ServiceRequestStateMachine>"}


def test_whoop_calls_and_errors_by_route_template(plotted):
    for metric in ("WhoopCalls", "WhoopCallErrors"):
        (row,) = rows_of(plotted, metric)
        assert row.dimensions == {"route": "*"}


def test_the_rate_budgets_use_of_the_minute_and_day_limits(plotted):
    assert {row.dimensions["window"] for row in rows_of(plotted, "RateBudgetUsed")} == {"minute", "day"}


def test_webhooks_accepted_and_refused_per_face(plotted):
    shown = {(row.dimensions["webhook"], row.dimensions["outcome"]) for row in rows_of(plotted, "Webhooks")}
    assert {(face, outcome) for face in ("partner", "member") for outcome in ("accepted", "refused")} <= shown


def test_members_connected_and_needing_reauthorization(plotted):
    shown = {row.dimensions["status"] for row in rows_of(plotted, "MemberConnectionChanges")}
    assert {"connected", "reauthorization_required"} <= shown


def test_members_per_status_now_beside_the_changes(plotted):
    gauge = rows_of(plotted, "MembersByStatus")
    assert sorted(row.dimensions["status"] for row in gauge) == sorted(LISTED_STATUSES)
    assert {row.stat for row in gauge} == {"Maximum"}  # a level, not a sum of the 10-minute points
    widgets = {row.widget for row in gauge}
    assert len(widgets) == 1 and widgets == {row.widget for row in rows_of(plotted, "MemberConnectionChanges")}
    assert "offline_not_granted" in next(iter(widgets))  # says where lapsed offline connections are counted
    assert [row.dimensions for row in rows_of(plotted, "MembersNotCounted")] == [{"status": "*"}]


def test_the_gauge_is_written_by_member_sync_only_for_the_listed_statuses(code):
    assert written_as(code, "MembersByStatus", {"status": "not_connected"})
    assert written_as(code, "MembersByStatus", {"service": "member_sync", "status": "reauthorization_required"})
    assert not written_as(code, "MembersByStatus", {"service": "member_api", "status": "connected"})
    assert not written_as(code, "MembersByStatus", {"status": "pending"})
    assert not written_as(code, "MemberConnectionChanges", {"status": "not_connected"})


def test_depth_and_age_of_every_queue_and_the_dead_letters(template, plotted):
    queues = set(resources_of(template, "AWS::SQS::Queue"))
    for metric in ("ApproximateNumberOfMessagesVisible", "ApproximateAgeOfOldestMessage"):
        shown = {row.dimensions["QueueName"] for row in rows_of(plotted, metric, "AWS/SQS")}
        assert shown == {f"<{queue}.QueueName>" for queue in queues}, metric
    dead_letter_queues = {
        spec["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
        for spec in resources_of(template, "AWS::SQS::Queue").values()
        if "RedrivePolicy" in spec.get("Properties", {})
    } | {"ScheduleDeadLetterQueue"}
    widgets = {}
    for row in rows_of(plotted, "ApproximateNumberOfMessagesVisible", "AWS/SQS"):
        widgets.setdefault(row.widget, set()).add(row.dimensions["QueueName"])
    assert {f"<{queue}.QueueName>" for queue in dead_letter_queues} in widgets.values()


def test_one_dashboard_per_stack_and_its_url_is_an_output(template):
    (dashboard,) = resources_of(template, "AWS::CloudWatch::Dashboard").values()
    name = resolver(template).resolve(dashboard["Properties"]["DashboardName"])
    assert PSEUDO["AWS::StackName"] in name
    url = resolver(template).resolve(template["Outputs"]["DashboardUrl"]["Value"])
    assert url.startswith("https://eu-west-1.console.aws.amazon.com/cloudwatch/") and url.endswith("<Dashboard>")


def test_every_widget_is_in_the_stacks_region(body):
    for widget in body["widgets"]:
        if widget["type"] == "metric":
            assert widget["properties"]["region"] == PSEUDO["AWS::Region"], widget["properties"]["title"]
