"""Metrics with dimensions of their own, each written at once as one CloudWatch embedded
metric format (EMF) line through Powertools' `EphemeralMetrics`.

The handlers' shared `Metrics` set has one dimension set per flush (`service`), and some
handlers (the API functions, the webhook intake) flush none; a metric counted per status,
per WHOOP route or per webhook needs its own line. Each is written under two dimension
sets: the emitting function's `service` with its dimensions, and its dimensions alone,
summed over every function (what the stack's dashboard plots). Dimension values are few by
design (statuses, route templates, names of kinds): never an id, a patient field or a token.
"""

from __future__ import annotations

import logging
import os

from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

# The stack sets POWERTOOLS_METRICS_NAMESPACE; without it Powertools would raise out of the caller.
NAMESPACE = "WhoopBridge"

logger = logging.getLogger(__name__)


def put(name: str, dimensions: dict[str, str], value: float = 1, unit: MetricUnit = MetricUnit.Count) -> None:
    """Write the metric `name` (a count of 1 unless `value`/`unit` say otherwise) now, under
    `{service, **dimensions}` and `dimensions`. A metric never fails its caller: an error of
    the metrics library is swallowed (the work it counts is what matters)."""
    try:
        metrics = EphemeralMetrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or NAMESPACE)
        for key, text in dimensions.items():
            metrics.add_dimension(name=key, value=text)
        if metrics.service:  # without a service the primary set is already `dimensions`
            metrics.add_dimensions(**dimensions)
        metrics.add_metric(name=name, unit=unit, value=value)
        metrics.flush_metrics()
    except Exception as error:  # noqa: BLE001 - counting must never fail the counted work
        logger.warning("metric not written", extra={"kind": name, "error_type": type(error).__name__})
