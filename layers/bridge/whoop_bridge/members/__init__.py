"""Members of a health platform who connect their WHOOP account (standard WHOOP API)."""
