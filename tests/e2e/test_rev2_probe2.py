import time

import pytest
import requests
from conftest import running_harness
from test_member_connect_outcomes import _link, _member, _state_item_key, _table

_OUT = open("/tmp/rev2-out2.txt", "a")


def out(*a):
    _OUT.write(" ".join(str(x) for x in a) + "\n")
    _OUT.flush()


@pytest.fixture(scope="module")
def _module_bridge():
    yield from running_harness(
        {"ConnectPageName": "</title><script>alert(1)</script>{app}%s", "ConnectPageColor": "#ABCDEF"}
    )


def _pages(bridge, url, n=3):
    consent = requests.get(url, allow_redirects=False, timeout=10)
    cb = consent.headers["Location"]
    return [requests.get(cb, allow_redirects=False, timeout=30) for _ in range(n)]


def test_probe_reloads(bridge):
    cases = {}
    bridge.emulator.inject_fault("POST", r"^/oauth/oauth2/token$", status=503, count=20)
    cases["error"] = _pages(bridge, _link(bridge, _member(), None))
    bridge.emulator.clear_faults()
    bridge.emulator.user_limit = len(bridge.emulator.authorized_members())
    cases["user_limit"] = _pages(bridge, _link(bridge, _member(), None))
    bridge.emulator.user_limit = None
    bridge.emulator.withhold_scopes = {"read:profile"}
    cases["scopes_missing"] = _pages(bridge, _link(bridge, _member(), None))
    bridge.emulator.withhold_scopes = {"offline"}
    cases["offline"] = _pages(bridge, _link(bridge, _member(), None))
    bridge.emulator.withhold_scopes = set()
    url = _link(bridge, _member(), None)
    consent = requests.get(url, allow_redirects=False, timeout=10)
    _table(bridge).update_item(
        Key=_state_item_key(url),
        UpdateExpression="SET expires_at = :past",
        ExpressionAttributeValues={":past": int(time.time()) - 60},
    )
    cases["link_expired"] = [
        requests.get(consent.headers["Location"], allow_redirects=False, timeout=30) for _ in range(3)
    ]
    cases["invalid"] = [
        requests.get(f"{bridge.stack.url}/oauth/whoop/callback?state=nope&code=x", timeout=30) for _ in range(2)
    ]
    for name, pages in cases.items():
        out(
            name,
            [p.status_code for p in pages],
            len({p.text for p in pages}) == 1,
            "<script>" in pages[0].text,
            "close" in pages[0].text.lower(),
        )
    out(cases["error"][0].text)
    out(dict(cases["error"][0].headers))
