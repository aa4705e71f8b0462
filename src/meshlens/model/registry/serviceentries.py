"""ServiceEntries and WorkloadEntries as istiod's serviceentry registry converts them.

Layer: L3. Imports: resources, model.protocol, model.registry.{types,services}.

`serviceregistry/serviceentry/conversion.go` (`convertServices`, `convertEndpoint`,
`convertWorkloadEntryToServiceInstances`).
"""

from __future__ import annotations

from typing import Any

from meshlens.model import protocol
from meshlens.model.registry.services import export_set
from meshlens.model.registry.types import (
    TLS_MODE_LABEL,
    Endpoint,
    Service,
    ServicePort,
    Workload,
    augment_labels,
    locality_label,
    selects,
    spiffe,
)
from meshlens.model.registry.endpointslices import build_endpoint
from meshlens.model.registry.pods import in_ip_index
from meshlens.resources import Resource

_SE_RESOLUTION = {"NONE": "Passthrough", "STATIC": "ClientSideLB", "DNS": "DNSLB",
                  "DNS_ROUND_ROBIN": "DNSRoundRobinLB", "DYNAMIC_DNS": "DynamicDNS"}


def service_entry(res: Resource, default_export: list[str]) -> list[Service]:
    spec = res.spec
    ports = []
    for i, p in enumerate(spec.get("ports") or []):
        ports.append(ServicePort(str(p.get("name", "")), int(p["number"]),
                                 protocol.parse(str(p.get("protocol", ""))) if p.get("protocol")
                                 else protocol.UNSUPPORTED, p.get("targetPort"), i))
    resolution = _SE_RESOLUTION.get(str(spec.get("resolution", "NONE")), "Passthrough")
    external = spec.get("location", "MESH_EXTERNAL") != "MESH_INTERNAL"
    addresses = [str(a) for a in spec.get("addresses") or []]
    passthrough = {p.port: int(p.target_port) for p in ports
                   if resolution == "Passthrough" and isinstance(p.target_port, int) and p.target_port > 0}
    strategy = res.annotations.get("istio.io/connect-strategy", "")
    out = []
    for host in spec.get("hosts") or []:
        out.append(Service(
            hostname=str(host), name=str(host), namespace=res.namespace, registry="External",
            ports=ports, resolution=resolution, resource=res, mesh_external=external,
            vip=addresses[0] if addresses else "", addresses=addresses,
            export_to=export_set(spec.get("exportTo"), default_export),
            selector=dict((spec.get("workloadSelector") or {}).get("labels") or {}) or None,
            service_accounts=[str(s) for s in spec.get("subjectAltNames") or []],
            labels=dict(res.labels),
            connect_strategy="RACE_FIRST_TCP_CONNECT" if strategy.upper() == "RACE_FIRST_TCP_CONNECT" else "",
            passthrough_target_ports=passthrough))
    return out


def se_endpoints(svc: Service, res: Resource, pods: list[Workload], wes: list[Resource],
                  trust_domain: str) -> list[Endpoint]:
    spec = res.spec
    out: list[Endpoint] = []
    if svc.resolution in ("DNSLB", "DNSRoundRobinLB") and not spec.get("endpoints") \
            and not spec.get("workloadSelector"):
        for sp in svc.ports:
            tp = sp.target_port if isinstance(sp.target_port, int) and sp.target_port > 0 else sp.port
            out.append(Endpoint(address=svc.hostname, port=tp, service_port_name=sp.name, labels={},
                                tls_mode="disabled", namespace=svc.namespace, workload_name="",
                                health="UNKNOWN", source=res))
        return out

    def we_endpoint(we: dict[str, Any], meta_labels: dict[str, str], source: Resource,
                    path: tuple[str | int, ...], name: str) -> None:
        labels = {**{str(k): str(v) for k, v in (we.get("labels") or {}).items()}, **meta_labels}
        locality = str(we.get("locality", "")) or locality_label(labels)
        sa = we.get("serviceAccount")
        tls = labels.get(TLS_MODE_LABEL) or ("istio" if sa else "disabled")
        addr = str(we.get("address", ""))
        for sp in svc.ports:
            wports = we.get("ports") or {}
            if addr.startswith("unix://"):
                port = 0
            elif isinstance(wports.get(sp.name), int) and wports[sp.name] > 0:
                port = wports[sp.name]
            elif isinstance(sp.target_port, int) and sp.target_port > 0:
                port = sp.target_port
            else:
                port = sp.port
            out.append(Endpoint(
                address=addr, port=port, service_port_name=sp.name,
                labels=augment_labels(labels, locality, "", str(we.get("network", ""))), tls_mode=tls,
                namespace=source.namespace, workload_name=name, health="UNKNOWN",
                service_account=spiffe(trust_domain, source.namespace, str(sa)) if sa else "",
                locality=locality, weight=int(we.get("weight", 0) or 0),
                network=str(we.get("network", "")), source=source, source_path=path))

    for i, we in enumerate(spec.get("endpoints") or []):
        if isinstance(we, dict):
            we_endpoint(we, {}, res, ("spec", "endpoints", i), res.name)
    selector = (spec.get("workloadSelector") or {}).get("labels")
    if selector:
        for w in wes:
            if w.namespace == svc.namespace and selects(selector, {**(w.spec.get("labels") or {}),
                                                                   **w.labels}):
                we_endpoint(w.spec, w.labels, w, ("spec",), w.name)
        for pod in pods:
            # PodCache.onEvent → notifyWorkloadHandlers: only ready pods with an IP reach the
            # ServiceEntry registry, as Healthy endpoints built by NewEndpointBuilder(pod).
            if pod.namespace == svc.namespace and selects(selector, pod.labels) and in_ip_index(pod):
                for sp in svc.ports:
                    tp = sp.target_port if isinstance(sp.target_port, int) and sp.target_port > 0 else sp.port
                    out.append(build_endpoint(pod, pod.ip, tp, sp.name, "HEALTHY", trust_domain,
                                              None, (), ""))
    return out
