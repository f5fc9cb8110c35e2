"""A local emulator of WHOOP's Healthcare Partner API and of its standard developer API.

`WhoopEmulator` runs a small HTTP server on 127.0.0.1 that answers the partner API the way
WHOOP documents it (paths, field names, status codes, the `WHOOP-Signed` webhook signature),
sends signed partner webhooks, and exposes a control API under `/_emulator/` plus a Python
API so tests and demos can create orders, inject faults and inspect what a client did.

It follows WHOOP's OpenAPI document (`contracts/whoop/openapi.json`; `tests/contract/`
validates every answer against it): fields WHOOP marks "only present if" are absent, never
null, and where the document lists a route's answers no other status is invented: a request
WHOOP's rules refuse gets the documented answer and is listed in `contract_violations()`.

One module per WHOOP face, over a small shared core (WHOOP facts: docs/whoop.md):

- `core`: paths, requests and answers, routing, and the shared state (lock, clock,
  credentials, member directory, credentials issued, contract violations);
- `server`: the HTTP server; `whoop_emulator`: `WhoopEmulator`, the faces assembled and the
  dispatch (faults, then rate limits, then routing, then the record of the call);
- `partner` (tokens, requisitions, statuses, results, add-test-data) over `lab_orders`
  (the made-up requisitions and WHOOP's rules, pure) and `documents`;
- `oauth`: the authorization code flow with refresh-token rotation and the user limit,
  and the member endpoints (profile, body measurement, revoking access);
- `data_api` (collections with `limit`/`start`/`end`/`nextToken`, by-id routes) over
  `member_data` (the records and their changes), `records` (WHOOP's record shapes and
  made-up scores, pure) and `history` (a made-up history, pure);
- `webhooks`: signed partner and data webhooks; `rate_limits`: WHOOP's per-app fixed
  windows and `X-RateLimit-*` headers on the clock; `faults`: injected answers and delays;
  `calls`: what clients did and the timeline; `control`: the `/_emulator/` routes.

Standard library and the layer's clock only, so it runs anywhere the bridge's tests run.
"""

from local.emulator.documents import SAMPLE_DOCUMENT
from local.emulator.whoop_emulator import WhoopEmulator

__all__ = ["SAMPLE_DOCUMENT", "WhoopEmulator"]
