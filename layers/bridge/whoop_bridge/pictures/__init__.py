"""SVG pictures of timelines: one order (order.py), one member's sync jobs (member.py), over
the shared pieces of svg.py. Ids, codes, statuses and times only: no patient data."""
