"""Deployments selected by several Services that disagree on a port's protocol or on which
port maps to a targetPort (istioctl `deployment.MultiServiceAnalyzer`).

Layer: L6. Imports: analyze.core, analyze._istio.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from meshlens.analyze._istio import SelectorIndex, full_name
from meshlens.analyze.core import (CodeDoc, Context, Finding, Metadata, as_dict, finding, goq, gov,
                                   iter_dicts)
from meshlens.resources import Resource

METADATA = Metadata(
    name="deployment.MultiServiceAnalyzer",
    description="Checks association between services and pods",
    inputs=("Service", "Deployment", "Namespace"),
    codes=("ML1133", "ML1134"),
)

DOCS = {
    "ML1133": CodeDoc(
        checks="For each in-mesh Deployment, the Services of its namespace that select its pods: "
               "the same port number with different protocols (TCP/UDP/SCTP) across them "
               "(istioctl deployment.MultiServiceAnalyzer, IST0116).",
        matters="The sidecar builds one inbound listener per port; services that disagree on the "
                "protocol of that port leave one of them misrouted.",
        quiet="Deployments outside the mesh; one protocol per port number.",
        example="Service a: ports [{port: 53, protocol: TCP}]; Service b: ports [{port: 53, "
                "protocol: UDP}]; both select app=dns."),
    "ML1134": CodeDoc(
        checks="For each in-mesh Deployment, the ports of the Services selecting it that map "
               "the same targetPort from different port numbers (also within one Service), as "
               "istioctl does (IST0137).",
        matters="The sidecar has one inbound chain per targetPort; two service ports on it with "
                "different protocols or settings conflict, and istiod keeps only one.",
        quiet="One service port per targetPort; Deployments outside the mesh; waypoints.",
        example="ports: [{name: http, port: 80, targetPort: 8080}, {name: web, port: 81, "
                "targetPort: 8080}]"),
}


def deployment_in_mesh(dep: Resource, namespaces: dict[str, Resource]) -> bool:
    """`DeploymentInMesh`: istio-proxy container, the pod's inject label/annotation, else the
    namespace's ``istio-injection=enabled``."""
    template = as_dict(dep.spec.get("template"))
    meta = as_dict(template.get("metadata"))
    containers = list(iter_dicts(as_dict(template.get("spec")).get("containers")))
    if any(c.get("name") == "istio-proxy" and c.get("image") for c in containers):
        return True
    for source in (as_dict(meta.get("labels")), as_dict(meta.get("annotations"))):
        if "sidecar.istio.io/inject" in source:
            return str(source["sidecar.istio.io/inject"]) == "true"
    ns = namespaces.get(dep.namespace)
    return ns is not None and ns.labels.get("istio-injection") == "enabled"


def _matching(dep: Resource, services: list[Resource], index: SelectorIndex) -> list[Resource]:
    """Services of the Deployment's namespace whose non-empty selector matches its pods."""
    labels = {str(k): str(v) for k, v in as_dict(as_dict(as_dict(dep.spec.get("template"))
                                                         .get("metadata")).get("labels")).items()}
    return [services[i] for i in index.matching(dep.namespace, labels)]


def _selector_index(services: list[Resource]) -> SelectorIndex:
    return SelectorIndex([(svc.namespace, {str(k): str(v) for k, v in
                                           as_dict(svc.spec.get("selector")).items()})
                          for svc in services])


def _target(port: dict[str, Any]) -> str:
    t = port.get("targetPort")
    if t in (None, 0, "", "0"):
        return str(port.get("port"))
    return str(t)


def analyze(ctx: Context) -> Iterator[Finding]:
    namespaces = {r.name: r for r in ctx.of_kind("Namespace")}
    by_ns: dict[str, list[Resource]] = {}
    for svc in ctx.of_kind("Service"):
        by_ns.setdefault(svc.namespace, []).append(svc)
    indexes = {ns: _selector_index(svcs) for ns, svcs in by_ns.items()}
    for dep in ctx.of_kind("Deployment"):
        services = by_ns.get(dep.namespace, [])
        if dep.labels.get("gateway.istio.io/managed") == "istio.io-mesh-controller":
            continue
        if not deployment_in_mesh(dep, namespaces):
            continue
        svcs = _matching(dep, services, indexes[dep.namespace]) if services else []
        by_port: dict[int, dict[str, list[str]]] = {}
        by_target: dict[str, dict[int, str]] = {}
        for svc in svcs:
            for p in iter_dicts(svc.spec.get("ports")):
                if not isinstance(p.get("port"), int):
                    continue
                proto = str(p.get("protocol") or "TCP")
                by_port.setdefault(p["port"], {}).setdefault(proto, []).append(full_name(svc))
                by_target.setdefault(_target(p), {})[p["port"]] = full_name(svc)
        for port, protos in by_port.items():
            if len(protos) > 1:
                names = sorted(n for ns in protos.values() for n in ns)
                yield finding("ML1133", dep, ("metadata", "name"), name=dep.name, port=port,
                              services=gov(names))
        for target, ports in by_target.items():
            if len(ports) > 1:
                yield finding("ML1134", dep, ("metadata", "name"), name=dep.name,
                              services=gov(sorted(ports.values())), target=goq(target),
                              ports=gov(sorted(ports)), fix={"target": target})
