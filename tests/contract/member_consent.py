"""The OAuth steps a WHOOP member takes, against the emulator (for the contract tests)."""

from __future__ import annotations

import urllib.parse

import requests

from local.emulator import WhoopEmulator

REDIRECT = "http://127.0.0.1:9/whoop/callback"  # port 9: never contacted, only the Location header is read
ALL_SCOPES = (
    "offline",
    "read:profile",
    "read:body_measurement",
    "read:cycles",
    "read:sleep",
    "read:recovery",
    "read:workout",
)


def authorization_code(emu: WhoopEmulator, http: requests.Session, scopes: tuple[str, ...] = ALL_SCOPES) -> str:
    """A member approves the app at WHOOP's consent page; the code from the redirect."""
    query = urllib.parse.urlencode(
        {
            "response_type": "code",
            "client_id": emu.member_client_id,
            "redirect_uri": REDIRECT,
            "scope": " ".join(scopes),
            "state": "state-0123456789",
        }
    )
    redirect = http.get(f"{emu.base_url}/oauth/oauth2/auth?{query}", allow_redirects=False, timeout=5)
    assert redirect.status_code == 302, redirect.text
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(redirect.headers["Location"]).query))["code"]


def member_tokens(emu: WhoopEmulator, http: requests.Session, scopes: tuple[str, ...] = ALL_SCOPES) -> dict:
    """The token answer of a member's code exchange."""
    answer = http.post(
        f"{emu.base_url}/oauth/oauth2/token",
        data={
            "grant_type": "authorization_code",
            "code": authorization_code(emu, http, scopes),
            "redirect_uri": REDIRECT,
            "client_id": emu.member_client_id,
            "client_secret": emu.member_client_secret,
        },
        timeout=5,
    )
    assert answer.status_code == 200, answer.text
    return answer.json()
