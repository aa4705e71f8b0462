"""DestinationRule: istiod's ``ValidateDestinationRule`` (pkg/config/validation/validation.go).

The traffic policy checks it shares with Sidecar (connection pools) and with each subset are in
:mod:`.traffic_policy`; host and subset names in :mod:`.names`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from meshlens.resources.webhook.core import Collector, as_obj, as_str, has
from meshlens.resources.webhook.fields import validate_export_to, validate_workload_selector
from meshlens.resources.webhook.names import (
    validate_labels, validate_subset_name, validate_wildcard_domain,
)
from meshlens.resources.webhook.traffic_policy import validate_traffic_policy
from meshlens.source import FieldPath


def validate(v: Collector, spec: dict[str, Any], labels: Mapping[str, str]) -> None:
    """ValidateDestinationRule: host, traffic policy, subsets, exportTo, workloadSelector."""
    sp: FieldPath = ("spec",)
    v.err(sp + ("host",), validate_wildcard_domain(as_str(spec.get("host"))))
    validate_traffic_policy(v, sp + ("trafficPolicy",), spec.get("trafficPolicy"))
    names: set[str] = set()
    for p, s in v.entries(sp + ("subsets",), spec.get("subsets"), "subset may not be null"):
        name = as_str(s.get("name"))
        if name in names:
            v.err(p + ("name",), f"duplicate subset names: {name}")
        names.add(name)
        v.err(p + ("name",), validate_subset_name(name))
        v.errs(p + ("labels",), validate_labels(as_obj(s.get("labels")) or {}))
        validate_traffic_policy(v, p + ("trafficPolicy",), s.get("trafficPolicy"))
    validate_export_to(v, spec, dr_with_selector=has(spec, "workloadSelector"))
    validate_workload_selector(v, sp + ("workloadSelector",), spec.get("workloadSelector"))
