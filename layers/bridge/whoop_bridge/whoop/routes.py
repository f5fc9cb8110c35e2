"""WHOOP's routes as templates (`GET /v2/cycle/{id}`), the name a call is counted under.

A metric's dimension must never hold an id: a call's URL is matched against this fixed
list, and one that matches none is counted as `<METHOD> other`. The paths are those the
clients call (docs/whoop.md#partner-endpoints, docs/whoop.md#data-api), after whatever
prefix the base URL has (`/developer`, or an emulator's).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

TEMPLATES = (
    # Partner API (whoop/partner.py)
    "POST /v2/partner/token",
    "GET /v2/partner/requisition/{id}",
    "PATCH /v2/partner/requisition/{id}/status",
    "GET /v2/partner/service-request/{id}",
    "PATCH /v2/partner/service-request/{id}/status",
    "POST /v2/partner/service-request/{id}/results",
    "POST /v2/partner/development/add-test-data",
    "GET /v2/partner/document/{id}",
    "GET /v2/partner/document/{id}/content",
    "GET /v2/partner/clinical-report-review/{id}",
    # Member API and OAuth (whoop/member.py)
    "POST /oauth/oauth2/token",
    "GET /v2/user/profile/basic",
    "GET /v2/user/measurement/body",
    "DELETE /v2/user/access",
    "GET /v2/cycle/{id}",
    "GET /v2/cycle/{id}/recovery",
    "GET /v2/activity/sleep/{id}",
    "GET /v2/activity/workout/{id}",
    "GET /v2/cycle",
    "GET /v2/recovery",
    "GET /v2/activity/sleep",
    "GET /v2/activity/workout",
)
OTHER = "other"
_MATCHERS = tuple(
    (method, re.compile("(?:/.*)?" + re.escape(path).replace(re.escape("{id}"), "[^/]+") + "/?"), f"{method} {path}")
    for method, path in (template.split(" ", 1) for template in TEMPLATES)
)


def template(method: str, url: str) -> str:
    """The route template of a call, `<METHOD> <path template>`, or `<METHOD> other` for a
    path not in `TEMPLATES`; never the path itself."""
    method = method.upper()
    path = urlsplit(url).path
    for wanted, matcher, name in _MATCHERS:
        if wanted == method and matcher.fullmatch(path):
            return name
    return f"{method} {OTHER}" if method.isalpha() and len(method) <= 7 else OTHER
