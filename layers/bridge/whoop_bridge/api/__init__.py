"""The front of the lab and member APIs, shared by both handlers.

A handler declares its routes (`openapi.Routes`), calls `openapi.configure(app, ...)` once
with the answers its domain errors get (`errors.for_lab()` / `errors.for_members()`), and answers
through `guard.lambda_handler(app, logger)`. The modules:

- `bodies`: the answers' JSON bodies (problem, not found, busy, ...) and their models.
- `guard`: whatever API Gateway delivers, checked before the event handler reads it.
- `idempotency`: `Idempotency-Key` on every POST.
- `audit`: one audit record per call, in the stack's audit log group.
- `errors`: the one mapping from the layer's exceptions to those answers.
- `openapi`: answer and route declarations, the served OpenAPI document, `configure`.

Answers (all `application/json`, `Cache-Control: no-store`):

- 400 `{"error": "invalid_request", "problems": [{"field", "problem"}]}`: every problem of
  the request at once (body, query, path, headers); input values are never echoed.
- 413 `{"error": "payload_too_large", "problems": [...]}`: a body over API_MAX_BODY_BYTES
  (the problem names the limit).
- 415 `{"error": "unsupported_media_type", "problems": [...]}`: a body that is not
  `application/json` (UTF-8).
- 404 `{"error": "not_found", "message"}`; 503 `{"error": "not_configured", "message"}`.
- 409 `{"error": "busy", "message", "retryable": true}` with `Retry-After` (seconds).
- 422 `{"error": "idempotency_key_reused", "problems": [...]}`: the `Idempotency-Key` was
  first used with another body.
- 500 `{"error": "internal_error", "message"}`: a fault of the bridge, never of the input.
"""
