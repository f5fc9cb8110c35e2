"""Limits on the ids WHOOP sends (no pydantic here: the webhook intake imports it)."""

from __future__ import annotations

# WHOOP's ids are uuids; a longer one names nothing, and DynamoDB and S3 refuse over-long keys.
MAX_RESOURCE_ID_LENGTH = 128
