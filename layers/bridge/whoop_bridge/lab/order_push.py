"""`requisition.received` on the bus, with the order itself for a lab that prefers push
(README "Connect your LIS"; the template's OrderPushFormat, the setting ORDER_PUSH_FORMAT).

- `none` (the default): `{requisition_id, service_requests: [{service_request_id, code,
  decision}]}`: ids and decisions only, no patient data.
- `json`, `fhir`, `hl7`: the same, and `order: {content_type, body}`, the order as
  `GET /lab/requisitions/{id}` answers it in that language (lis/orders.py, the one builder):
  the JSON view or a FHIR R4 Bundle as a JSON object, an HL7 v2.5.1 ORM^O01 as ER7 text.
  The order is read back from the stores once they hold it; `based_on` is what the bridge
  knows then (documents are fetched after the message is published).
- An order that would make the entry larger than EventBridge takes (256 KB): the message
  without it and with `order_omitted: "too_large"` (counted as RequisitionOrderOmitted);
  the lab reads it with GET.

The patient data in `order` reaches whoever may read the bus and its archive (README
"Security and privacy"). CodeMapUnavailable (lis/codes.py) is raised: the queue message is
tried again and, failing, kept in the partner events dead-letter queue (alarmed).
"""

from __future__ import annotations

import logging
from typing import Any

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

from whoop_bridge import bus
from whoop_bridge.config import settings
from whoop_bridge.lab import views
from whoop_bridge.lab.ports import REAL, LabPorts

logger = logging.getLogger(__name__)
metrics = Metrics()

RECEIVED = "requisition.received"
TOO_LARGE = "too_large"


def received_detail(requisition_id: str, decisions: list[dict[str, Any]], ports: LabPorts = REAL) -> dict[str, Any]:
    """The detail of `requisition.received` for a stored, received requisition."""
    detail: dict[str, Any] = {"requisition_id": requisition_id, "service_requests": decisions}
    push = settings().order_push_format
    if push == "none":
        return detail
    from whoop_bridge.lis.orders import PUSH_FORMATS, order_in  # standard library only until FHIR or HL7

    media = PUSH_FORMATS[push]
    pushed = {
        **detail,
        "order": {"content_type": media, "body": order_in(media, views.get_requisition(requisition_id, ports))},
    }
    size = bus.entry_bytes(RECEIVED, pushed)
    if size <= bus.MAX_ENTRY_BYTES:
        return pushed
    metrics.add_metric(name="RequisitionOrderOmitted", unit=MetricUnit.Count, value=1)
    logger.warning(
        "order too large for the bus; published without it",
        extra={"requisition_id": requisition_id, "entry_bytes": size, "limit_bytes": bus.MAX_ENTRY_BYTES},
    )
    return {**detail, "order_omitted": TOO_LARGE}
