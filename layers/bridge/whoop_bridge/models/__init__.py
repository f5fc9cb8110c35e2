"""Typed objects the bridge keeps and the WHOOP shapes it reads and sends; no AWS, no I/O."""
