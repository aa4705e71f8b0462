"""Build the mesh model (istiod's PushContext in miniature) from decoded resources.

Layer: L3. Imports: resources, diagnostics, model.*.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from meshlens.diagnostics import Diagnostic
from meshlens.model.destination_rules import DestinationRuleIndex
from meshlens.model.mesh import MeshConfig
from meshlens.model.peer_auth import PeerAuthentications
from meshlens.model.registry import Registry, build_registry
from meshlens.resources import Resource


@dataclass(slots=True)
class Mesh:
    resources: list[Resource]
    mesh_config: MeshConfig
    registry: Registry
    destination_rules: DestinationRuleIndex
    peer_authentications: PeerAuthentications
    sidecars: list[Resource]
    virtual_services: list[Resource]
    diagnostics: list[Diagnostic] = field(default_factory=list)
    #: Istio Gateways: networking.istio.io ones and those converted from the Gateway API
    gateways: list[Resource] = field(default_factory=list)
    #: status conditions istiod would write on Gateway API objects
    gateway_api_status: list[Any] = field(default_factory=list)

    def of_kind(self, kind: str) -> list[Resource]:
        return [r for r in self.resources if r.kind == kind]


def build_mesh(resources: list[Resource], mesh_config: MeshConfig | None = None) -> Mesh:
    """Index every resource the way istiod does for one push.

    Example:
        >>> m = build_mesh([])
        >>> m.mesh_config.root_namespace, len(m.registry.services)
        ('istio-system', 0)
    """
    mc = mesh_config or MeshConfig()
    from meshlens.model.gatewayapi import convert

    gwapi = convert(resources, mc)
    registry = build_registry(resources + gwapi.infra, trust_domain=mc.trust_domain,
                              default_service_export=mc.export_to("defaultServiceExportTo"))
    drs = DestinationRuleIndex.build(
        [r for r in resources if r.kind == "DestinationRule"], root_namespace=mc.root_namespace,
        default_export=mc.export_to("defaultDestinationRuleExportTo"))
    pas = PeerAuthentications([r for r in resources if r.kind == "PeerAuthentication"],
                              mc.root_namespace)
    return Mesh(resources, mc, registry, drs, pas,
                [r for r in resources if r.kind == "Sidecar"],
                [r for r in resources if r.kind == "VirtualService"] + gwapi.virtual_services,
                list(mc.diagnostics) + list(registry.diagnostics),
                [r for r in resources if r.kind == "Gateway" and r.group == "networking.istio.io"]
                + gwapi.gateways, gwapi.statuses)
