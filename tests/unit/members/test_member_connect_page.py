"""The member's fallback pages (no return URL): the platform's name (escaped) and colours
(#rrggbb only), fit for a phone's web view, never asking to close a window."""

from __future__ import annotations

import pytest
from fakes.members import test_settings

from whoop_bridge.config import ConfigurationError
from whoop_bridge.members import connect_page
from whoop_bridge.models.oauth_state import CallbackOutcome, CallbackStatus


def _configure(monkeypatch, **look):
    monkeypatch.setattr(connect_page, "settings", lambda: test_settings(**look))


@pytest.mark.parametrize("status", list(connect_page.PAGES))
def test_every_page_fits_a_web_view_and_never_asks_to_close_a_window(monkeypatch, status):
    _configure(monkeypatch)
    page = connect_page.page(status)

    body = page["body"]
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in body
    assert "close" not in body.lower() and "window" not in body.lower()
    assert f'data-status="{status}"' in body and page["headers"]["Cache-Control"] == "no-store"
    assert page["statusCode"] == connect_page.PAGES[status][0]


def test_the_platforms_name_and_colours_are_on_the_page(monkeypatch):
    _configure(
        monkeypatch,
        connect_page_name="Acme Health",
        connect_page_color="#0a7cff",
        connect_page_background_color="#f5f5f5",
    )

    body = connect_page.page(CallbackStatus.CONNECTED)["body"]

    assert "<title>WHOOP connected · Acme Health</title>" in body
    assert "color: #0a7cff" in body and "background: #f5f5f5" in body
    assert "You can go back to Acme Health now." in body


def test_the_name_is_html_escaped(monkeypatch):
    _configure(monkeypatch, connect_page_name='<script>alert("x")</script> & Co')

    body = connect_page.page(CallbackStatus.DENIED)["body"]

    assert "<script>" not in body
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; Co" in body


def test_without_a_name_the_pages_speak_of_the_app(monkeypatch):
    _configure(monkeypatch)
    body = connect_page.page(CallbackStatus.USER_LIMIT)["body"]

    assert "The app cannot connect more WHOOP members yet." in body and "<title>WHOOP not connected</title>" in body


def test_with_settings_it_cannot_read_the_page_falls_back_to_the_default_look(monkeypatch):
    def invalid():
        raise ConfigurationError("CONNECT_PAGE_COLOR must be a colour as #rrggbb")

    monkeypatch.setattr(connect_page, "settings", invalid)

    body = connect_page.page(CallbackStatus.ERROR)["body"]
    assert "color: #1f2937" in body and "background: #ffffff" in body and "the app" in body


def test_an_outcome_with_a_return_url_is_a_redirect_with_the_status():
    answer = connect_page.answer(
        CallbackOutcome(CallbackStatus.LINK_EXPIRED, "https://platform.example/done?session=1", "member-1")
    )

    assert answer["statusCode"] == 302 and answer["body"] == ""
    assert answer["headers"]["Location"] == "https://platform.example/done?session=1&status=link_expired"
