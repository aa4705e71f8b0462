"""What one proxy can see: services by exportTo and the Sidecar's egress hosts.

Layer: L3. Imports: model.registry, resources.

`model/sidecar.go:DefaultSidecarScopeForNamespace` and `ConvertToSidecarScope`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from meshlens.model.proxy import Proxy
from meshlens.model.registry import Registry, Service
from meshlens.resources import Resource


def exported_to(export: frozenset[str], owner_ns: str, ns: str) -> bool:
    if "*" in export:
        return True
    if "~" in export:
        return False
    return ns in export or (ns == owner_ns and "." in export)


def host_matches(pattern: str, hostname: str) -> bool:
    """Istio host matching: ``*`` everything, ``*.foo.com`` suffix, else exact."""
    if pattern == "*":
        return True
    if pattern.startswith("*"):
        if hostname.startswith("*"):
            return hostname[1:].endswith(pattern[1:])
        return hostname.endswith(pattern[1:])
    return pattern == hostname


@dataclass(slots=True)
class EgressHost:
    namespace: str  # "*", ".", "~" or a namespace
    host: str
    listener: int  # index of the egress listener


@dataclass(slots=True)
class SidecarScope:
    proxy_namespace: str
    sidecar: Resource | None
    services: list[Service] = field(default_factory=list)
    egress: list[EgressHost] = field(default_factory=list)

    def service(self, hostname: str) -> Service | None:
        for s in self.services:
            if s.hostname == hostname:
                return s
        return None


def select_sidecar(sidecars: list[Resource], proxy: Proxy, root_ns: str) -> Resource | None:
    """Workload-selected Sidecar in the proxy namespace, else namespace-wide, else root namespace."""
    ordered = sorted(sidecars, key=lambda r: (r.creation, r.doc.index))
    for r in ordered:
        sel = r.spec.get("workloadSelector")
        labels = sel.get("labels") if isinstance(sel, dict) else None
        if r.namespace == proxy.namespace and labels and all(
                proxy.labels.get(k) == v for k, v in labels.items()):
            return r
    for ns in (proxy.namespace, root_ns):
        for r in ordered:
            sel = r.spec.get("workloadSelector")
            if r.namespace == ns and not (isinstance(sel, dict) and sel.get("labels")):
                return r
    return None


def _ordered_services(registry: Registry, ns: str) -> list[Service]:
    """`servicesExportedToNamespace`: private/explicit exports first, then public; each by age."""
    def age(s: Service) -> tuple[str, str, str]:
        return (s.resource.creation, s.name, s.namespace)

    ordered = sorted(registry.services, key=age)
    private = [s for s in ordered if "*" not in s.export_to and exported_to(s.export_to, s.namespace, ns)]
    public = [s for s in ordered if "*" in s.export_to]
    return private + public


def _dedupe(services: list[Service]) -> list[Service]:
    """Hostname collisions: a Kubernetes Service beats others; otherwise the first one wins."""
    out: dict[str, Service] = {}
    for s in services:
        existing = out.get(s.hostname)
        if existing is None:
            out[s.hostname] = s
        elif existing.registry != "Kubernetes" and s.registry == "Kubernetes":
            out[s.hostname] = s
    return list(out.values())


def _egress_hosts(sidecar: Resource) -> list[EgressHost]:
    out = []
    for i, eg in enumerate(sidecar.spec.get("egress") or []):
        for h in (eg or {}).get("hosts") or []:
            ns, _, host = str(h).partition("/")
            out.append(EgressHost(ns, host, i))
    return out


def egress_allows(egress: list[EgressHost], proxy_ns: str, svc_ns: str, hostname: str) -> bool:
    for e in egress:
        ns_ok = e.namespace == "*" or (e.namespace == "." and svc_ns == proxy_ns) or (
            e.namespace == svc_ns)
        if e.namespace == "~":
            ns_ok = False
        if ns_ok and host_matches(e.host, hostname):
            return True
    return False


def build_scope(registry: Registry, proxy: Proxy, sidecar: Resource | None,
                virtual_services: list[Resource]) -> SidecarScope:
    ns = proxy.namespace
    visible = _ordered_services(registry, ns)
    if sidecar is None:
        return SidecarScope(ns, None, _dedupe(visible))
    # `initSidecarScopeInternalIndexes`: a Sidecar without egress gets a default "*/*" listener.
    egress = _egress_hosts(sidecar) if sidecar.spec.get("egress") else [EgressHost("*", "*", 0)]
    chosen = [s for s in visible if egress_allows(egress, ns, s.namespace, s.hostname)]
    # Hosts used as destinations by VirtualServices the Sidecar imports are in scope too.
    extra: list[str] = []
    for vs in virtual_services:
        if not exported_to(frozenset(vs.spec.get("exportTo") or ["*"]), vs.namespace, ns):
            continue
        hosts = [str(h) for h in vs.spec.get("hosts") or []]
        if not any(egress_allows(egress, ns, vs.namespace, _fqdn(h, vs.namespace)) for h in hosts):
            continue
        for section in ("http", "tcp", "tls"):
            for rule in vs.spec.get(section) or []:
                for dest in (rule or {}).get("route") or []:
                    host = ((dest or {}).get("destination") or {}).get("host")
                    if isinstance(host, str):
                        extra.append(_fqdn(host, vs.namespace))
    names = {s.hostname for s in chosen}
    for s in visible:
        if s.hostname in extra and s.hostname not in names:
            chosen.append(s)
            names.add(s.hostname)
    return SidecarScope(ns, sidecar, _dedupe(chosen), egress)


def _fqdn(host: str, ns: str) -> str:
    return host if "." in host or host == "*" else f"{host}.{ns}.svc.cluster.local"
