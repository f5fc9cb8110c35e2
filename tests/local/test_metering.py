"""The bill's meter: DynamoDB's sizing rules and what counts as billed."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from local import metering
from local.metering import Meter, _item_size, _read_units, _write_units


def test_item_size_follows_dynamodbs_rules() -> None:
    # name + value: strings by their UTF-8 bytes, numbers about one byte per two digits plus one.
    assert _item_size({"pk": {"S": "MEMBER#1"}}) == 2 + 8
    assert _item_size({"n": {"N": "12345"}}) == 1 + 5 // 2 + 2
    assert _item_size({"é": {"S": "é"}}) == 2 + 2
    assert _item_size({"ok": {"BOOL": True}, "none": {"NULL": True}}) == 2 + 1 + 4 + 1
    # A map and a list cost three bytes plus one a member, then their contents.
    assert _item_size({"m": {"M": {"a": {"S": "xy"}}}}) == 1 + 3 + 1 + 1 + 2
    assert _item_size({"l": {"L": [{"S": "xy"}, {"S": "z"}]}}) == 1 + 3 + (1 + 2) + (1 + 1)


@pytest.mark.parametrize(
    ("size", "consistent", "units"),
    [(0, False, 0.5), (4096, False, 0.5), (4097, False, 1.0), (4097, True, 2), (100, True, 1)],
)
def test_read_units_are_started_4kb_halved_when_eventually_consistent(
    size: int, consistent: bool, units: float
) -> None:
    item = {"x": {"S": "a" * (size - 1)}} if size else None
    assert _read_units([item], consistent) == units


@pytest.mark.parametrize(("size", "units"), [(1, 1), (1024, 1), (1025, 2), (3000, 3)])
def test_write_units_are_started_kilobytes(size: int, units: int) -> None:
    assert _write_units(size) == units


def _meter() -> Meter:
    """A meter over a stack of one table with one index on `gsi1pk`/`gsi1sk`."""
    template = {
        "Globals": {"Function": {"MemorySize": 512}},
        "Resources": {
            "Table": {
                "Type": "AWS::DynamoDB::Table",
                "Properties": {
                    "GlobalSecondaryIndexes": [
                        {"KeySchema": [{"AttributeName": "gsi1pk"}, {"AttributeName": "gsi1sk"}]}
                    ]
                },
            },
            "Fn": {"Type": "AWS::Serverless::Function", "Properties": {"MemorySize": 1024}},
        },
    }
    stack = SimpleNamespace(
        template=template,
        physical={"Table": "table-1"},
        invoke=lambda logical_id, event: None,
        run_schedule=lambda *args: None,
        log_stream=None,
    )
    return Meter(stack)


def test_a_write_also_bills_each_index_the_item_is_in() -> None:
    meter = _meter()
    plain = {"pk": {"S": "a"}, "sk": {"S": "b"}}
    meter.record("dynamodb", "PutItem", {"TableName": "table-1", "Item": plain}, {})
    assert meter.write_units == 1
    indexed = {**plain, "gsi1pk": {"S": "x"}, "gsi1sk": {"S": "y"}}
    meter.record("dynamodb", "PutItem", {"TableName": "table-1", "Item": indexed}, {})
    assert meter.write_units == 1 + 2
    assert meter.units_by_table == {"Table write": 3, "Table read": 0}


def test_a_transaction_bills_twice_and_a_query_its_items_together() -> None:
    meter = _meter()
    item = {"pk": {"S": "a" * 1500}}
    meter.record("dynamodb", "TransactWriteItems", {"TransactItems": [{"Put": {"TableName": "t", "Item": item}}]}, {})
    assert meter.write_units == 2 * 2
    meter.record("dynamodb", "Query", {"TableName": "t"}, {"Items": [item, item, item]})
    assert meter.read_units == 1.0  # 4.5 KB together: two 4 KB units, halved


def test_only_calls_made_inside_a_function_are_billed_and_a_bench_request_is_not() -> None:
    meter = _meter()
    seen = []

    def invoke(logical_id: str, event: dict) -> None:
        seen.append(meter.inside_function())

    meter._original_invoke = invoke
    assert not meter.inside_function()
    meter._invoke("Fn", {"httpMethod": "GET", "headers": {}})
    meter._invoke("Fn", {"httpMethod": "GET", "headers": {"X-Bench-Unmetered": "1"}})
    meter._invoke("Fn", {"Records": [{}, {}]})
    assert seen == [True, False, True]
    counts = meter.counts()
    assert counts["api_requests"] == 1
    assert counts["lambda_invocations"] == 2
    assert counts["sqs_requests"] == 2 + 2  # two messages sent, one receive, one delete
    assert metering._memory_by_function(meter.stack.template) == {"Fn": 1024}
