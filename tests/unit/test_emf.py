"""whoop_bridge.emf: a metric with dimensions of its own, written at once as one EMF line,
under the emitting function's `service` with its dimensions and under its dimensions alone."""

from __future__ import annotations

from fakes.emf import dimension_sets, emf_lines

from whoop_bridge import emf


def test_a_metric_is_written_with_and_without_the_service(monkeypatch, capsys):
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "member_sync")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "WhoopBridge")
    capsys.readouterr()

    emf.put("WhoopCalls", {"route": "GET /v2/cycle/{id}"})

    (line,) = emf_lines(capsys.readouterr().out, "WhoopCalls")
    assert dimension_sets(line) == [{"service", "route"}, {"route"}]
    assert (line["service"], line["route"], line["WhoopCalls"]) == ("member_sync", "GET /v2/cycle/{id}", [1.0])
    assert line["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "WhoopBridge"


def test_without_the_settings_it_is_written_in_the_bridges_namespace_under_its_dimensions(monkeypatch, capsys):
    monkeypatch.delenv("POWERTOOLS_SERVICE_NAME", raising=False)
    monkeypatch.delenv("POWERTOOLS_METRICS_NAMESPACE", raising=False)
    capsys.readouterr()

    emf.put("TimeFromOrderReceived", {"task_business_status": "ORDER_CONFIRMED"}, 42.5, emf.MetricUnit.Seconds)

    (line,) = emf_lines(capsys.readouterr().out, "TimeFromOrderReceived")
    (directive,) = line["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "WhoopBridge"
    assert directive["Dimensions"] == [["task_business_status"]]
    assert directive["Metrics"] == [{"Name": "TimeFromOrderReceived", "Unit": "Seconds"}]
    assert line["TimeFromOrderReceived"] == [42.5]


def test_a_metric_that_cannot_be_written_never_fails_the_caller(monkeypatch, capsys):
    warned = []
    monkeypatch.setattr(emf.logger, "warning", lambda message, extra: warned.append((message, extra)))
    capsys.readouterr()

    emf.put("Webhooks", {"webhook": "partner"}, unit="Parsecs")  # Powertools refuses the unit

    assert emf_lines(capsys.readouterr().out, "Webhooks") == []
    assert warned == [("metric not written", {"kind": "Webhooks", "error_type": "MetricUnitError"})]
