"""The operator command, `python -m whoop_bridge.ops` (run from the repository with
`PYTHONPATH=layers/bridge`): dead letters listed (ids and errors only) and replayed, failed
tests and orders resumed, an order's timeline printed or saved as a picture; against a
deployed stack (`--stack NAME`, the operator's AWS credentials) or `python -m local serve`
(`--local URL`). See the README's "Operate" section.

No Lambda handler imports this package (tests/unit/test_layering.py checks it), so it adds
nothing to any function's cold start.
"""
