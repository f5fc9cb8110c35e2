"""The member's fallback pages (no return URL): the platform's name (escaped) and colours
(#rrggbb only), fit for a phone's web view, never asking to close a window."""

from __future__ import annotations

import pytest

from whoop_bridge import caches
from whoop_bridge.config import ConfigurationError, settings
from whoop_bridge.members import connect_page
from whoop_bridge.models.oauth_state import CallbackOutcome, CallbackStatus

VARIABLES = ("CONNECT_PAGE_NAME", "CONNECT_PAGE_COLOR", "CONNECT_PAGE_BACKGROUND_COLOR")


@pytest.fixture(autouse=True)
def environment(monkeypatch):
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    caches.reset_all()
    yield monkeypatch
    caches.reset_all()


def _configure(monkeypatch, **env):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    caches.reset_all()


@pytest.mark.parametrize("status", list(connect_page.PAGES))
def test_every_page_fits_a_web_view_and_never_asks_to_close_a_window(status):
    page = connect_page.page(status)

    body = page["body"]
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in body
    assert "close" not in body.lower() and "window" not in body.lower()
    assert f'data-status="{status}"' in body and page["headers"]["Cache-Control"] == "no-store"
    assert page["statusCode"] == connect_page.PAGES[status][0]


def test_the_platforms_name_and_colours_are_on_the_page(monkeypatch):
    _configure(
        monkeypatch,
        CONNECT_PAGE_NAME="Acme Health",
        CONNECT_PAGE_COLOR="#0A7CFF",
        CONNECT_PAGE_BACKGROUND_COLOR="#f5f5f5",
    )

    body = connect_page.page(CallbackStatus.CONNECTED)["body"]

    assert "<title>WHOOP connected · Acme Health</title>" in body
    assert "color: #0a7cff" in body and "background: #f5f5f5" in body
    assert "You can go back to Acme Health now." in body


def test_the_name_is_html_escaped(monkeypatch):
    _configure(monkeypatch, CONNECT_PAGE_NAME='<script>alert("x")</script> & Co')

    body = connect_page.page(CallbackStatus.DENIED)["body"]

    assert "<script>" not in body
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; Co" in body


def test_without_a_name_the_pages_speak_of_the_app():
    body = connect_page.page(CallbackStatus.USER_LIMIT)["body"]

    assert "The app cannot connect more WHOOP members yet." in body and "<title>WHOOP not connected</title>" in body


@pytest.mark.parametrize("colour", ["red", "#fff", "#12345g", "#123456; background:url(x)", "#1234567"])
def test_a_colour_other_than_rrggbb_is_refused_and_the_page_falls_back_to_the_defaults(monkeypatch, colour):
    _configure(monkeypatch, CONNECT_PAGE_COLOR=colour)

    with pytest.raises(ConfigurationError, match="CONNECT_PAGE_COLOR"):
        settings()
    body = connect_page.page(CallbackStatus.ERROR)["body"]
    assert "color: #1f2937" in body and f"color: {colour}" not in body


def test_an_outcome_with_a_return_url_is_a_redirect_with_the_status():
    answer = connect_page.answer(
        CallbackOutcome(CallbackStatus.LINK_EXPIRED, "https://platform.example/done?session=1", "member-1")
    )

    assert answer["statusCode"] == 302 and answer["body"] == ""
    assert answer["headers"]["Location"] == "https://platform.example/done?session=1&status=link_expired"
