"""Content negotiation (api/negotiation.py): q-values, wildcards, the default, and the 406."""

from __future__ import annotations

import json

import pytest

from whoop_bridge.api.negotiation import JSON_OR_SVG, NotAcceptable, choose, json_or_svg

SVG = "image/svg+xml"
JSON = "application/json"


@pytest.mark.parametrize(
    ("accept", "chosen"),
    [
        (None, JSON),
        ("", JSON),
        ("*/*", JSON),
        (SVG, SVG),
        ("image/*", SVG),
        ("IMAGE/SVG+XML", SVG),
        (f"{JSON};q=0.5, {SVG}", SVG),
        (f"{SVG};q=0.4, {JSON};q=0.9", JSON),
        (f"{SVG}, {JSON}", JSON),  # a tie: the route's first
        (f"text/html, {SVG};q=0.8, */*;q=0.1", SVG),
        (f"*/*;q=0.9, {JSON};q=0", SVG),  # JSON refused outright, the rest admitted
        ("application/*;q=0.2, image/svg+xml;q=0.3", SVG),
        (f"{SVG};q=bogus, {JSON};q=0.1", JSON),  # an unreadable q: that range is ignored
    ],
)
def test_the_preferred_offered_type_is_chosen(accept, chosen):
    assert choose(accept, JSON_OR_SVG) == chosen


@pytest.mark.parametrize("accept", ["text/html", "application/xml", f"{SVG};q=0, {JSON};q=0", "garbage", "image/png"])
def test_an_accept_admitting_neither_is_not_acceptable(accept):
    with pytest.raises(NotAcceptable):
        choose(accept, JSON_OR_SVG)


class _Found:
    def as_dict(self):
        return {"id": "x"}


def test_the_answer_is_json_or_the_picture_and_a_406_names_what_is_offered_without_loading():
    loaded = []

    def load():
        loaded.append(1)
        return _Found()

    as_json = json_or_svg(None, load, lambda found: "<svg/>")
    as_svg = json_or_svg(SVG, load, lambda found: "<svg/>")
    refused = json_or_svg("text/csv", load, lambda found: "<svg/>")

    assert (as_json.status_code, as_json.content_type, as_json.body) == (200, JSON, {"id": "x"})
    assert (as_svg.status_code, as_svg.content_type, as_svg.body) == (200, SVG, "<svg/>")
    assert as_svg.headers["Vary"] == "Accept" and as_svg.headers["Cache-Control"] == "no-store"
    assert refused.status_code == 406
    assert json.loads(json.dumps(refused.body)) == {
        "error": "not_acceptable",
        "message": "the Accept header admits none of the media types offered: application/json, image/svg+xml",
        "offered": [JSON, SVG],
    }
    assert len(loaded) == 2
