"""The README's main command: the three-path demo on a fresh local stack."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET  # nosec B405 - parses the pictures the demo saved

from local.demo import MEMBER_PICTURE, ORDER_PICTURE, run_demo

SVG = "{http://www.w3.org/2000/svg}"


def _lanes(path, key: str) -> dict[str, list[str]]:
    """A saved picture's lanes by `key` (an attribute), each with its texts; it parses as XML."""
    root = ET.parse(path).getroot()  # nosec B314 - the demo's own picture
    assert root.tag == f"{SVG}svg"
    return {
        lane.get(key): [text.text or "" for text in lane.iter(f"{SVG}text")]
        for lane in root.iter(f"{SVG}g")
        if lane.get("class") == "lane"
    }


def test_demo_sends_all_three_paths_to_whoop_and_connects_a_member(tmp_path, capsys):
    log_path = tmp_path / "bridge.log"

    assert run_demo(log_path=log_path, parameters={}) == 0

    printed = capsys.readouterr().out
    assert "All three paths reached WHOOP as expected." in printed
    assert "The member connected, stayed fresh and disconnected as expected." in printed
    assert "sent them back to https://platform.example/whoop/done?status=connected" in printed
    for line in (
        "POST oauth token authorization_code → 200",
        "POST oauth token refresh_token → 200",
        "DELETE user/access → 204",
    ):
        assert line in printed
    for line in (
        r"LIPID_PANEL\s+POST results: partial report",
        r"LIPID_PANEL\s+PATCH FULL_RESULTS_READY",
        r"CBC\s+POST results: amended report",
        r"HBA1C\s+PATCH RESULTS_ISSUE",
    ):
        assert re.search(line, printed), line
    # The pictures of the order and of the member's backfill, next to the log, and where.
    order_picture, member_picture = tmp_path / ORDER_PICTURE, tmp_path / MEMBER_PICTURE
    assert f"The order as a picture (GET /lab/requisitions/{{id}}/timeline): {order_picture}" in printed
    assert f"backfill as a picture (GET /connections/demo-member-1/timeline): {member_picture}" in printed
    lanes = {
        texts[0]: (service_request_id, texts)
        for service_request_id, texts in _lanes(order_picture, "data-service-request-id").items()
    }
    assert set(lanes) == {"LIPID_PANEL", "CBC", "HBA1C"}
    for code, labels in {
        "LIPID_PANEL": [
            "ORDER_CONFIRMED",
            "APPOINTMENT_ATTENDED",
            "partial report",
            "PARTIAL_RESULTS_READY",
            "final report",
            "FULL_RESULTS_READY",
        ],
        "CBC": ["ORDER_CONFIRMED", "APPOINTMENT_ATTENDED", "final report", "FULL_RESULTS_READY", "amended report"],
        "HBA1C": ["ORDER_CONFIRMED", "APPOINTMENT_ATTENDED", "RESULTS_ISSUE"],
    }.items():
        service_request_id, texts = lanes[code]
        assert texts[1] == service_request_id and len(service_request_id) == 36, texts
        # Statuses in their order, reports in theirs (a report and its status may share a millisecond).
        for kind in (str.isupper, str.islower):
            assert [t for t in texts[4:] if kind(t) and t != "closed"] == [t for t in labels if kind(t)], texts
    assert lanes["HBA1C"][1][2:4] == ["now: RESULTS_ISSUE", "workflow: closed"]
    steps = _lanes(member_picture, "data-step")
    assert list(steps) == ["cycle", "sleep", "recovery", "workout", "profile"]
    assert all(texts[1] == "done" for texts in steps.values()), steps
    logs = log_path.read_text()
    assert '"service":"requisition_processor"' in logs.replace(" ", "")
    # No credential of the demo's WHOOP emulator in any log line.
    for secret in ("local-partner-secret", "local-webhook-secret", "local-member-secret"):
        assert secret not in logs
