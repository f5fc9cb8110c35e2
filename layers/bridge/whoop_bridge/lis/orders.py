"""The order in the lab's language: one builder for both ways it leaves the bridge, the answer
to `GET /lab/requisitions/{id}` (lis/negotiation.py, by `Accept`) and the order on the bus's
`requisition.received` (lab/order_push.py, by the template's OrderPushFormat).

Standard library only here: lis/fhir.py and lis/hl7.py (and their libraries, the lis layer)
are imported when the order is wanted in their language; JSON needs neither, nor the code map.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from whoop_bridge.lis.negotiation import FHIR, HL7, JSON

# The template's OrderPushFormat (but `none`) -> the media type of the order on the bus.
PUSH_FORMATS = {"json": JSON, "fhir": FHIR, "hl7": HL7}


def _code_map() -> Any:
    from whoop_bridge.lis.codes import code_map

    return code_map()


def order_in(media: str, view: dict[str, Any], load_codes: Callable[[], Any] = _code_map) -> dict[str, Any] | str:
    """The requisition view (lab/views.py `get_requisition`) as `media`: the view itself for
    JSON, a FHIR R4 Bundle (a JSON object) for FHIR, an ORM^O01 v2.5.1 message (ER7 text,
    segments ended by a carriage return) for HL7. The code map maps test codes out for FHIR
    and HL7 (codes it does not name counted as LisCodeUnmapped). Raises CodeMapUnavailable
    (lis/codes.py) when the operator's map cannot be read; ValueError for another media."""
    if media == JSON:
        return view
    if media not in (FHIR, HL7):
        raise ValueError(f"no order in {media}")
    codes = load_codes()
    if media == FHIR:
        from whoop_bridge.lis import fhir

        built: dict[str, Any] | str = fhir.requisition_bundle(view, codes)
    else:
        from whoop_bridge.lis import hl7

        built = hl7.order_message(view, codes)
    codes.publish_counts()
    return built
