"""The lab's own languages beside WHOOP's JSON: FHIR R4 and HL7 v2 (README "Connect your LIS").

- `negotiation`: which language a lab API request speaks (Content-Type, Accept), the
  translation of its body into WHOOP's JSON before the one results path, and of the answer
  back into the sender's language. Standard library only: a JSON request loads nothing more.
- `fhir`: FHIR R4 (fhir.resources' R4B models) — DiagnosticReport or Bundle in, Bundle of
  the order out, OperationOutcome answers.
- `hl7`: HL7 v2 (the `hl7` package) — ORU^R01 in, ORM^O01 v2.5.1 out, ACK answers.
- `codes`: the operator's optional code map (SSM Parameter Store).
- `problems`: what a message translator finds wrong, with the sender's own location.

- `orders`: the order in a language, for the GET and for the bus (lab/order_push.py).

`fhir` and `hl7` import their libraries (the lis layer, attached to the lab API and the
requisition processor) when a request of their content type arrives or an order is pushed
in their language, never at module import of anything else.
"""
