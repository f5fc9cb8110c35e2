"""A webhook refused for a bad signature is counted even where the namespace is not set
(the stack sets POWERTOOLS_METRICS_NAMESPACE; without it Powertools would raise, turning
the 401 into a 503). The integration tests check the line the deployed intake writes."""

from __future__ import annotations

import json

from whoop_bridge import webhooks


def test_a_refused_signature_is_counted_in_the_bridges_namespace_without_the_setting(monkeypatch, capsys):
    monkeypatch.delenv("POWERTOOLS_METRICS_NAMESPACE", raising=False)
    capsys.readouterr()

    answer = webhooks._signature_refused("member", "the signature timestamp is malformed")

    assert answer == webhooks.Answer(401, "bad signature")
    (line,) = [
        json.loads(text) for text in capsys.readouterr().out.splitlines() if webhooks.SIGNATURE_REFUSED_METRIC in text
    ]
    assert line["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "WhoopBridge"
    assert (line["webhook"], line[webhooks.SIGNATURE_REFUSED_METRIC]) == ("member", [1.0])
