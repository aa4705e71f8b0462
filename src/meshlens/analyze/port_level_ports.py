"""portLevelSettings entries for a port the destination does not have (typically the
targetPort: port-level settings are keyed by the Service port, the number in the cluster name).

Layer: L6. Imports: analyze.core, model.

The entry never matches, so its settings never apply and the destination-level policy is used
on every port.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from meshlens.analyze.core import CodeDoc, Context, Finding, Metadata, as_dict, finding, iter_dicts
from meshlens.model.destination_rules import resolve_short_name
from meshlens.model.registry import Service
from meshlens.source import FieldPath

METADATA = Metadata(
    name="meshlens.PortLevelPortAnalyzer",
    description="portLevelSettings for a port that is not a port of the destination",
    inputs=("DestinationRule", "Service", "ServiceEntry"),
    codes=("ML1212",),
)

DOCS = {
    "ML1212": CodeDoc(
        checks="DestinationRule portLevelSettings[].port.number (destination level and subsets) "
               "against the ports of the host's Services/ServiceEntries.",
        matters="Port-level settings are keyed by the Service port (the number in the cluster "
                "name); an entry for another number (often the targetPort) never matches, and "
                "the destination-level policy applies on every port.",
        quiet="The number is a port of the service.",
        example="Service port 80 -> targetPort 8080; portLevelSettings: [{port: {number: 8080}, "
                "...}]"),
}


def _policies(spec: dict[str, Any]) -> Iterator[tuple[FieldPath, dict[str, Any]]]:
    yield ("spec", "trafficPolicy"), as_dict(spec.get("trafficPolicy"))
    for i, s in enumerate(spec.get("subsets") or []):
        if isinstance(s, dict):
            yield ("spec", "subsets", i, "trafficPolicy"), as_dict(s.get("trafficPolicy"))


def analyze(ctx: Context) -> Iterator[Finding]:
    for dr in ctx.of_kind("DestinationRule"):
        host = resolve_short_name(str(dr.spec.get("host", "")), dr.namespace)
        services: list[Service] = ctx.mesh.registry.by_host.get(host, [])
        if not services:
            continue
        ports = sorted({p.port for s in services for p in s.ports})
        targets = {p.target_port: p.port for s in services for p in s.ports
                   if isinstance(p.target_port, int)}
        name = services[0].hostname
        for base, tp in _policies(dr.spec):
            for i, pls in enumerate(iter_dicts(tp.get("portLevelSettings"))):
                number = as_dict(pls.get("port")).get("number")
                if not isinstance(number, int) or number in ports:
                    continue
                svc_port = targets.get(number)
                hint = f"; {number} is the targetPort of port {svc_port}" if svc_port else ""
                yield finding("ML1212", dr, base + ("portLevelSettings", i, "port", "number"),
                              index=i, port=number, service=name,
                              ports=", ".join(map(str, ports)), hint=hint,
                              fix={"target_hint": f" ({svc_port})" if svc_port else ""})
