"""The Kubernetes Gateway API, converted as istiod converts it (`pilot/pkg/config/kube/gateway/`).

Layer: L3. Imports: resources, model.gatewayapi.*.

The conversion produces what the rest of meshlens already understands: Istio Gateways (one per
listener), VirtualServices with Gateway API route semantics, and the Kubernetes objects istiod's
deployment controller creates for each managed Gateway (``NAME-istio`` ServiceAccount,
Deployment and Service), plus the status conditions istiod would write (``meshlens status``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from meshlens.model.gatewayapi.gateways import GROUP, convert_gateways
from meshlens.model.gatewayapi.routes import convert_routes, reference_grants
from meshlens.model.gatewayapi.status import Condition, ObjectStatus
from meshlens.resources import Resource


@dataclass(slots=True)
class GatewayAPIResult:
    infra: list[Resource] = field(default_factory=list)
    gateways: list[Resource] = field(default_factory=list)
    virtual_services: list[Resource] = field(default_factory=list)
    statuses: list[ObjectStatus] = field(default_factory=list)


def convert(resources: list[Resource], mesh_config: Any = None) -> GatewayAPIResult:
    """Convert every Gateway API object and Ingress in ``resources`` (none: an empty result)."""
    out = GatewayAPIResult()
    if any(r.kind == "Ingress" for r in resources):
        from meshlens.model.gatewayapi.ingress import convert_ingresses

        out.gateways, out.virtual_services = convert_ingresses(resources, mesh_config)
    if not any(r.group == GROUP for r in resources):
        return out
    namespaces = {r.name: dict(r.labels) for r in resources if r.kind == "Namespace" and r.group == ""}
    grants = reference_grants(resources)
    gws = convert_gateways(resources, namespaces, grants)
    routes = convert_routes(resources + gws.infra, gws.listeners, grants)
    return GatewayAPIResult(gws.infra, out.gateways + gws.gateways,
                            out.virtual_services + routes.virtual_services, gws.statuses + routes.statuses)


__all__ = ["GROUP", "Condition", "GatewayAPIResult", "ObjectStatus", "convert"]
