"""Typed objects the bridge keeps and the WHOOP shapes it reads and sends, each with its
states as an enum and its rules as methods or pure functions; no AWS, no I/O. Imports only
the standard library, pydantic, `whoop_bridge.models.*` and `whoop_bridge.times`."""
