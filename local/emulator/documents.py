"""Partner documents (lab order forms): `GET /v2/partner/document/{id}` and its `/content`
(`POST /_emulator/documents` in the control API adds one)."""

from __future__ import annotations

import copy
import re
import uuid
from collections.abc import Callable
from typing import Any

from local.emulator.core import PARTNER_PREFIX, Core, Handler, Request, Response, RouteSpec, error, utc_iso

# A tiny, valid one-page PDF: what a lab order form from WHOOP looks like to the bridge.
SAMPLE_DOCUMENT = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 612 792]>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
)


class Documents:
    """The documents this partner owns; `authed` puts a partner route behind its token."""

    def __init__(self, core: Core, authed: Callable[[Handler], Handler]) -> None:
        self._core = core
        self._authed = authed
        self._documents: dict[str, tuple[dict[str, Any], bytes | None]] = {}  # id -> (PartnerDocument, content)

    def add_document(
        self,
        *,
        document_type: str = "LAB_ORDER_FORM",
        content: bytes | None = SAMPLE_DOCUMENT,
        url: str | None = None,
    ) -> dict[str, Any]:
        """Store a document this partner owns; returns its `PartnerDocument` (a copy).

        `GET /v2/partner/document/{id}` answers the PartnerDocument (`url` and `bundle_id`
        absent unless set), `/content` the raw `content` bytes. A link-only document (`url`
        given, `content=None`) has no content: `/content` answers 404 for it, as for an id
        this partner does not own. Reference it from a service request with
        `{"type": "DocumentReference", "id": document["id"]}` in `based_on`.
        """
        if not isinstance(document_type, str) or not document_type:
            raise ValueError("document_type must be a non-empty string")
        if content is not None and not isinstance(content, (bytes, bytearray)):
            raise ValueError("content must be bytes or None")
        if url is not None and (not isinstance(url, str) or not url):
            raise ValueError("url must be a non-empty string or None")
        if content is None and url is None:
            raise ValueError("a document needs content, a url, or both")
        now = utc_iso()
        document: dict[str, Any] = {
            "id": str(uuid.uuid4()),
            "document_type": document_type,
            "created_at": now,
            "updated_at": now,
        }
        if url is not None:
            document["url"] = url
        with self._core.lock:
            self._documents[document["id"]] = (document, bytes(content) if content is not None else None)
        return copy.deepcopy(document)

    def routes(self) -> list[RouteSpec]:
        p = re.escape(PARTNER_PREFIX)
        ident = r"(?P<ident>[^/]+)"
        return [
            ("GET", p + rf"/document/{ident}", self._authed(self._get_document)),
            ("GET", p + rf"/document/{ident}/content", self._authed(self._get_document_content)),
        ]

    def _get_document(self, request: Request, ident: str) -> Response:
        with self._core.lock:
            found = self._documents.get(ident)
            if found is None:
                raise error(404, "not_found")
            return Response(200, copy.deepcopy(found[0]))

    def _get_document_content(self, request: Request, ident: str) -> Response:
        with self._core.lock:
            found = self._documents.get(ident)
        if found is None or found[1] is None:
            raise error(404, "not_found")
        content = found[1]
        media = "application/pdf" if content.startswith(b"%PDF-") else "application/octet-stream"
        return Response(200, None, {"Content-Type": media}, raw=content)
