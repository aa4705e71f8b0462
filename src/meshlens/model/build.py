"""Build the mesh model (istiod's PushContext in miniature) from decoded resources.

Layer: L3. Imports: resources, diagnostics, model.*.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from meshlens.diagnostics import Diagnostic, report
from meshlens.model.destination_rules import DestinationRuleIndex
from meshlens.model.features import ModelFeatures
from meshlens.model.mesh import MeshConfig
from meshlens.model.peer_auth import PeerAuthentications
from meshlens.model.registry import InjectionPolicy, Registry, build_registry
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


def last_applied_wins(resources: list[Resource]) -> tuple[list[Resource], list[Diagnostic]]:
    """The same object (group, kind, namespace, name) twice: the last one wins, with a warning.

    ``kubectl apply -f a -f dir/`` applies files in ``-f`` order and a folder's files in lexical
    order (the loader's order), so the object left in the cluster is the last one read.

    Example:
        >>> last_applied_wins([])
        ([], [])
    """
    last: dict[tuple[str, str, str, str], int] = {}
    for i, r in enumerate(resources):
        last[(r.group, r.kind, r.namespace, r.name)] = i
    if len(last) == len(resources):
        return resources, []
    diags: list[Diagnostic] = []
    first: dict[tuple[str, str, str, str], Resource] = {}
    out: list[Resource] = []
    for i, r in enumerate(resources):
        key = (r.group, r.kind, r.namespace, r.name)
        if last[key] == i:
            out.append(r)
            if key in first:
                diags.append(report(
                    "ML0303", doc=r.doc, path=("metadata", "name"), resource=r.ref, kind=r.kind,
                    ref=f"{r.namespace}/{r.name}" if r.namespace else r.name,
                    last=str(r.span()), first=str(first[key].span())))
        else:
            first.setdefault(key, r)
    return out, diags


def build_mesh(resources: list[Resource], mesh_config: MeshConfig | None = None, *,
               features: ModelFeatures = ModelFeatures(),
               injection: InjectionPolicy = InjectionPolicy()) -> Mesh:
    """Index every resource the way istiod does for one push.

    Example:
        >>> m = build_mesh([])
        >>> m.mesh_config.root_namespace, len(m.registry.services)
        ('istio-system', 0)
    """
    mc = mesh_config or MeshConfig()
    resources, diags = last_applied_wins(resources)
    from meshlens.model.gatewayapi import convert

    gwapi = convert(resources, mc)
    registry = build_registry(resources + gwapi.infra, trust_domain=mc.trust_domain,
                              default_service_export=mc.export_to("defaultServiceExportTo"),
                              features=features, injection=injection)
    drs = DestinationRuleIndex.build(
        [r for r in resources if r.kind == "DestinationRule"], root_namespace=mc.root_namespace,
        default_export=mc.export_to("defaultDestinationRuleExportTo"))
    pas = PeerAuthentications([r for r in resources if r.kind == "PeerAuthentication"],
                              mc.root_namespace)
    diags += registry.diagnostics
    if registry.assumed_namespaces:
        diags.append(report("ML0304", namespaces=", ".join(sorted(registry.assumed_namespaces))))
    return Mesh(resources, mc, registry, drs, pas,
                [r for r in resources if r.kind == "Sidecar"],
                [r for r in resources if r.kind == "VirtualService"] + gwapi.virtual_services,
                list(mc.diagnostics) + diags,
                [r for r in resources if r.kind == "Gateway" and r.group == "networking.istio.io"]
                + gwapi.gateways, gwapi.statuses)
