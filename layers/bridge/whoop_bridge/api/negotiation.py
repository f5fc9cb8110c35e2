"""Content negotiation (RFC 9110 §12.5.1): which of a route's media types an `Accept`
header asks for, q-values respected, and a route's answer in JSON or as an SVG picture.

No `Accept` (or `*/*`) gets the route's first media type (JSON); an `Accept` that admits
none of them is a 406 naming what is offered.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.event_handler import Response

from whoop_bridge.api.bodies import JSON, json_response, message
from whoop_bridge.pictures.svg import SVG_MEDIA_TYPE

# A JSON body or an SVG picture of it: the timeline routes' media types, JSON first.
JSON_OR_SVG = (JSON, SVG_MEDIA_TYPE)


class NotAcceptable(ValueError):
    """The `Accept` header admits none of the offered media types."""


def _ranges(accept: str) -> list[tuple[str, str, float]]:
    """(type, subtype, q) of each media range; one with an unreadable q is left out."""
    found = []
    for part in accept.split(","):
        media, *parameters = (piece.strip() for piece in part.split(";"))
        kind, _, sub = media.lower().partition("/")
        if not kind or not sub:
            continue
        quality = 1.0
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value.strip())
                except ValueError:
                    quality = -1.0
        if 0.0 <= quality <= 1.0:
            found.append((kind, sub, quality))
    return found


def _quality(media_type: str, ranges: list[tuple[str, str, float]]) -> float:
    """The q the most specific matching range gives `media_type` (0 when none matches)."""
    kind, _, sub = media_type.partition("/")
    best, specificity = 0.0, -1
    for range_kind, range_sub, quality in ranges:
        if (range_kind, range_sub) == (kind, sub):
            level = 2
        elif (range_kind, range_sub) == (kind, "*"):
            level = 1
        elif (range_kind, range_sub) == ("*", "*"):
            level = 0
        else:
            continue
        if level > specificity:
            best, specificity = quality, level
    return best


def choose(accept: str | None, offered: tuple[str, ...]) -> str:
    """The offered media type `accept` prefers (the first offered on a tie, or with no or
    an empty `Accept`). NotAcceptable when it admits none."""
    if accept is None or not accept.strip():
        return offered[0]
    ranges = _ranges(accept)
    scored = [(_quality(media, ranges), -index, media) for index, media in enumerate(offered)]
    quality, _, media = max(scored)
    if quality <= 0:
        raise NotAcceptable(", ".join(offered))
    return media


def accept_header(event: Any) -> str | None:
    """The request's `Accept`, its repeated headers joined (API Gateway's proxy event)."""
    repeated = event.multi_value_headers.get("accept") if event.multi_value_headers else None
    return ", ".join(repeated) if repeated else event.headers.get("accept")


def json_or_svg(accept: str | None, load: Callable[[], Any], picture: Callable[[Any], str]) -> Response:
    """200 with what `load()` returns (an object with `as_dict()`) as JSON, or `picture` of
    it as `image/svg+xml` (text, so API Gateway passes it as it is), as `accept` prefers;
    406 `not_acceptable` naming the offered types (before anything is loaded)."""
    try:
        media = choose(accept, JSON_OR_SVG)
    except NotAcceptable:
        offered = list(JSON_OR_SVG)
        text = f"the Accept header admits none of the media types offered: {', '.join(offered)}"
        return message(406, "not_acceptable", text, {"Vary": "Accept"}, offered=offered)
    found = load()
    if media == SVG_MEDIA_TYPE:
        headers = {"Cache-Control": "no-store", "Vary": "Accept"}
        return Response(status_code=200, content_type=SVG_MEDIA_TYPE, body=picture(found), headers=headers)
    return json_response(200, found.as_dict(), {"Vary": "Accept"})
