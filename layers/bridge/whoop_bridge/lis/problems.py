"""What a translator found wrong with a lab's message, named in the sender's own terms."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Problem:
    """One problem: `where` in the sender's language (a FHIRPath such as
    `DiagnosticReport.contained[0].valueQuantity.value`, or an HL7 location such as
    `OBX[2]-5`), `text` what is wrong (never the value), `kind` its class: `invalid`
    (content), `required` (missing), `code` (a value outside its table), `structure`
    (not a message of the accepted kind)."""

    where: str
    text: str
    kind: str = "invalid"


@dataclass
class Unreadable(Exception):
    """The message cannot be mapped to WHOOP's report: every problem found. `rejected`:
    the message as a whole is not one the bridge takes (HL7 AR rather than AE)."""

    problems: list[Problem]
    rejected: bool = False
    status: int = 400
    extra: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{len(self.problems)} problem(s)"


NOT_BODY = ("header.", "query.", "path.")


def place_of(field: str, places: dict[str, str]) -> str | None:
    """The sender's location of a lab API problem's field (`observations.0.value_text`,
    api/bodies.py Problem; `body` the whole body): the nearest enclosing field a translator
    placed (`places` keys are `body.<path>`); None for a header, query or path field."""
    if field.startswith(NOT_BODY):
        return None
    parts = ["body", *field.removeprefix("body").lstrip(".").split(".")] if field not in ("", "body") else ["body"]
    while parts:
        key = ".".join(part for part in parts if part)
        if key in places:
            return places[key]
        parts.pop()
    return None
