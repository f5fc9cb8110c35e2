"""Typed objects: WHOOP's shapes, the API bodies, and the things the bridge keeps, each with
its states as an enum and its rules as methods or pure functions. Imports only the standard
library, pydantic, `whoop_bridge.models.*` and `whoop_bridge.times`."""
