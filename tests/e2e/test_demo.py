"""The README's main command: the three-path demo on a fresh local stack."""

from __future__ import annotations

import re

from local.demo import run_demo


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
    logs = log_path.read_text()
    assert '"service":"requisition_processor"' in logs.replace(" ", "")
    # No credential of the demo's WHOOP emulator in any log line.
    for secret in ("local-partner-secret", "local-webhook-secret", "local-member-secret"):
        assert secret not in logs
