"""What one proxy can see: services and VirtualServices by exportTo and the Sidecar's egress.

Layer: L3. Imports: model.registry, model.proxy, model.virtual_services, model.protocol, resources.

`model/sidecar.go`: `convertToSidecarScope`, `initSidecarScopeInternalIndexes`,
`convertIstioListenerToWrapper`, `selectServices`, `collectImportedServices`,
`appendSidecarServices`, `computeWildcardHostVirtualServiceIndex`, `GetEgressListenerForRDS`;
`model/virtualservice.go:SelectVirtualServices`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from meshlens.model import protocol
from meshlens.model.proxy import Proxy
from meshlens.model.registry import Registry, Service
from meshlens.model.virtual_services import (VirtualServiceIndex, VirtualServiceView, destinations,
                                             index_virtual_services)
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


def _wild(h: str) -> bool:
    return h.startswith("*")


def host_overlaps(a: str, b: str) -> bool:
    """`host.Name.Matches`: symmetric overlap.

    Example:
        >>> host_overlaps("*.com", "foo.com"), host_overlaps("*.foo.com", "foo.com")
        (True, False)
    """
    if _wild(a):
        if _wild(b):
            return b[1:].endswith(a[1:]) if len(a) < len(b) else a[1:].endswith(b[1:])
        return b.endswith(a[1:])
    if _wild(b):
        return a.endswith(b[1:])
    return a == b


def host_subset_of(a: str, b: str) -> bool:
    """`host.Name.SubsetOf`: every name matched by ``a`` is matched by ``b``.

    Example:
        >>> host_subset_of("foo.com", "*.com"), host_subset_of("*.com", "foo.com")
        (True, False)
    """
    if _wild(a):
        if _wild(b):
            return len(a) >= len(b) and a[1:].endswith(b[1:])
        return False
    if _wild(b):
        return a.endswith(b[1:])
    return a == b


def more_specific(a: str, b: str) -> bool:
    """`host.MoreSpecific`: non-wildcards first, then longer, then alphabetical."""
    wa, wb = _wild(a), _wild(b)
    if wa != wb:
        return not wa
    if len(a) == len(b):
        return a < b
    return len(a) > len(b)


@dataclass(slots=True)
class EgressHost:
    namespace: str  # "*", ".", "~" or a namespace
    host: str
    listener: int  # index of the egress listener


@dataclass(slots=True)
class _Hosts:
    """`hostClassification`: the egress hosts of one namespace group."""

    exact: set[str] = field(default_factory=set)
    all: list[str] = field(default_factory=list)
    excluded: list[str] = field(default_factory=list)

    def is_excluded(self, h: str) -> bool:
        return any(host_subset_of(h, e) for e in self.excluded)

    def matches(self, h: str) -> bool:
        if h in self.exact:
            return True
        return any((_wild(h) or _wild(i)) and host_subset_of(h, i) for i in self.all)

    def vs_matches(self, h: str) -> bool:
        if h in self.exact:
            return True
        return any((_wild(h) or _wild(i)) and host_overlaps(h, i) for i in self.all)


@dataclass(eq=False, slots=True)
class EgressListener:
    """`IstioEgressListenerWrapper`: one Sidecar egress listener and what it imports.

    ``port`` is None for the catch-all listener (no port); 0 for a unix-socket listener.
    ``services`` are trimmed to ``port`` (copies with that one port) when the listener has one
    (unless its protocol is HTTP_PROXY). ``virtual_services`` are in import order.
    """

    index: int
    port: int | None
    protocol: str | None
    port_name: str
    bind: str
    capture_mode: str
    services: list[Service] = field(default_factory=list)
    virtual_services: list[VirtualServiceView] = field(default_factory=list)
    #: service hostname → the VirtualService with the most specific host match
    most_specific_vs: dict[str, VirtualServiceView] = field(default_factory=dict)
    spec: dict[str, Any] | None = None  # the Sidecar's egress[index], None for the default scope

    @property
    def is_catch_all(self) -> bool:
        return self.port is None

    @property
    def match_port(self) -> bool:
        """`needsPortMatch`: a numbered port that is not HTTP_PROXY restricts services."""
        return bool(self.port) and self.protocol != protocol.HTTP_PROXY


@dataclass(slots=True)
class SidecarScope:
    proxy_namespace: str
    sidecar: Resource | None
    services: list[Service] = field(default_factory=list)
    egress: list[EgressHost] = field(default_factory=list)
    egress_listeners: list[EgressListener] = field(default_factory=list)
    #: ``{"mode": "ALLOW_ANY"|"REGISTRY_ONLY"|"ALLOW_ANY_DYNAMIC_DNS", "egressProxy": {...}?}``
    outbound_traffic_policy: dict[str, Any] = field(default_factory=lambda: {"mode": "ALLOW_ANY"})
    vs_index: VirtualServiceIndex | None = None
    _by_host: dict[str, Service] | None = None
    _indexed_len: int = -1

    def service(self, hostname: str) -> Service | None:
        # Indexed on first use; `services` is complete once the scope is built.
        index = self._by_host
        if index is None or self._indexed_len != len(self.services):
            index = {}
            for s in self.services:
                index.setdefault(s.hostname, s)
            self._by_host = index
            self._indexed_len = len(self.services)
        return index.get(hostname)

    @property
    def virtual_services(self) -> list[VirtualServiceView]:
        """All imported VirtualServices (union over egress listeners, first-seen order)."""
        out: list[VirtualServiceView] = []
        seen: set[int] = set()
        for eg in self.egress_listeners:
            for vs in eg.virtual_services:
                if id(vs) not in seen:
                    seen.add(id(vs))
                    out.append(vs)
        return out

    @property
    def outbound_mode(self) -> str:
        return str(self.outbound_traffic_policy.get("mode", "ALLOW_ANY"))

    def egress_listener_for_rds(self, port: int, name: str) -> EgressListener | None:
        """`GetEgressListenerForRDS`: the listener for ``port`` (port 0: bind == route name),
        else the catch-all. None only when a Sidecar has no catch-all and no port matches."""
        for e in self.egress_listeners:
            if e.port is None:
                return e
            if e.port == port:
                if port == 0:
                    if e.bind == name:
                        return e
                    continue
                return e
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


# --- egress listeners (sidecar.go:convertIstioListenerToWrapper) --------------------------------

def _classify(hosts: list[Any], config_ns: str) -> tuple[dict[str, _Hosts], bool]:
    by_ns: dict[str, _Hosts] = {}
    all_exact = True
    for raw in hosts:
        h = str(raw)
        if h.count("/") != 1:
            continue  # istiod logs "Illegal host in sidecar resource"
        ns, _, name = h.partition("/")
        excluded = ns.startswith("~")
        if excluded:
            ns = ns[1:] or "*"
        if ns == ".":
            ns = config_ns
        hc = by_ns.setdefault(ns, _Hosts())
        if excluded:
            hc.excluded.append(name)
            continue
        if not _wild(name):
            hc.exact.add(name)
        else:
            all_exact = False
        if ns == "*":
            all_exact = False
        hc.all.append(name)
    return by_ns, all_exact


def _trim_to_port(svc: Service, port: int) -> Service | None:
    """`serviceMatchingListenerPort`: the service with only ``port``, or None."""
    for p in svc.ports:
        if p.port == port:
            return svc if len(svc.ports) == 1 else dataclasses.replace(svc, ports=[p])
    return None


def _trim_to_ports(svc: Service, ports: set[int]) -> Service | None:
    """`serviceMatchingVirtualServicePorts` (0 = every port)."""
    if not ports or 0 in ports:
        return svc
    found = [p for p in svc.ports if p.port in ports]
    if len(found) == len(svc.ports):
        return svc
    return dataclasses.replace(svc, ports=found) if found else None


def _select_services(candidates: list[Service], config_ns: str, by_ns: dict[str, _Hosts],
                     port: int | None) -> list[Service]:
    """`selectServices` with PILOT_UNIFIED_SIDECAR_SCOPE (one namespace per hostname)."""
    wild = by_ns.get("*")
    imported: list[Service] = []
    for s in candidates:
        own = by_ns.get(s.namespace)
        if (own and own.is_excluded(s.hostname)) or (wild and wild.is_excluded(s.hostname)):
            continue
        for hc in (own, wild):
            if hc is not None and hc.matches(s.hostname):
                svc = _trim_to_port(s, port) if port else s
                if svc is not None:
                    imported.append(svc)
                    break
    chosen: dict[str, tuple[str, bool]] = {}
    for s in imported:
        np = (s.namespace, s.registry == "Kubernetes")
        ex = chosen.get(s.hostname)
        if ex is None or s.namespace == config_ns:
            chosen[s.hostname] = np
        elif not ex[1] and np[1] and (np[0] == config_ns or ex[0] != config_ns):
            chosen[s.hostname] = np
    return [s for s in imported if chosen[s.hostname][0] == s.namespace]


def _gw_exact(vs: VirtualServiceView, ns: str) -> bool:
    return vs.namespace == ns and vs.resource.annotations.get("internal.istio.io/route-semantics") == "gateway"


def _select_virtual_services(index: VirtualServiceIndex, config_ns: str,
                             by_ns: dict[str, _Hosts]) -> list[VirtualServiceView]:
    """`SelectVirtualServices`: private, exported, public; any host of the VS must be imported
    by the VS's own namespace group or the ``*`` group (bidirectional wildcard overlap)."""
    out: list[VirtualServiceView] = []
    seen: set[int] = set()
    wild = by_ns.get("*")
    ordered: list[VirtualServiceView] = []
    for bucket in (index.private.get((config_ns, "mesh"), []), index.exported.get((config_ns, "mesh"), []),
                   index.public.get("mesh", [])):
        # PILOT_UNIFIED_SIDECAR_SCOPE (on): per bucket, Gateway API routes of the proxy's own
        # namespace first (GAMMA's consumer override), then the rest
        ordered += [v for v in bucket if _gw_exact(v, config_ns)]
        ordered += [v for v in bucket if not _gw_exact(v, config_ns)]
    for vs in ordered:
        own = by_ns.get(vs.namespace)
        for hc in (own, wild):
            if hc is None or id(vs) in seen:
                continue
            for h in vs.hosts:
                if not hc.vs_matches(h):
                    continue
                if (own and own.is_excluded(h)) or (wild and wild.is_excluded(h)):
                    continue
                out.append(vs)
                seen.add(id(vs))
                break
    return out


def _most_specific_vs(vss: list[VirtualServiceView],
                      services: list[Service]) -> dict[str, VirtualServiceView]:
    """`computeWildcardHostVirtualServiceIndex`: exact host first, else most specific wildcard;
    the first VS in import order keeps a host."""
    exact: dict[str, VirtualServiceView] = {}
    wildcard: dict[str, VirtualServiceView] = {}
    for vs in vss:
        for h in vs.hosts:
            (wildcard if _wild(h) else exact).setdefault(h, vs)
    out: dict[str, VirtualServiceView] = {}
    for s in services:
        h = s.hostname
        if _wild(h) and h in wildcard:
            out[h] = wildcard[h]
            continue
        if not _wild(h) and h in exact:
            out[h] = exact[h]
            continue
        needle = h[1:] if _wild(h) else h
        best: str | None = None
        for w in wildcard:
            if needle.endswith(w[1:]) and (best is None or more_specific(w, best)):
                best = w
        if best is not None:
            out[h] = wildcard[best]
    return out


def _build_listener(i: int, eg: dict[str, Any] | None, config_ns: str, visible: list[Service],
                    index: VirtualServiceIndex) -> EgressListener:
    eg = eg or {}
    port_spec = eg.get("port") if isinstance(eg.get("port"), dict) else None
    port = int(port_spec.get("number") or 0) if port_spec is not None else None
    proto = protocol.parse(str(port_spec.get("protocol") or "")) if port_spec is not None else None
    hosts = eg.get("hosts") or ["*/*"]
    by_ns, all_exact = _classify(list(hosts), config_ns)
    listener = EgressListener(
        index=i, port=port, protocol=proto,
        port_name=str(port_spec.get("name") or "") if port_spec is not None else "",
        bind=str(eg.get("bind") or ""), capture_mode=str(eg.get("captureMode") or "DEFAULT"),
        spec=eg or None)
    listener.virtual_services = _select_virtual_services(index, config_ns, by_ns)
    if all_exact:
        # `servicesForExactHosts`: direct lookups, then creation order.
        candidates = [s for s in visible if s.hostname in by_ns.get(s.namespace, _Hosts()).exact]
        candidates.sort(key=lambda s: (s.resource.creation, s.name, s.namespace))
    else:
        candidates = visible
    listener.services = _select_services(candidates, config_ns, by_ns,
                                         port if listener.match_port else None)
    listener.most_specific_vs = _most_specific_vs(listener.virtual_services, listener.services)
    return listener


# --- the CDS service set (sidecar.go:collectImportedServices, appendSidecarServices) ------------

def _same_ports(a: Service, b: Service) -> bool:
    return [(p.name, p.port, p.protocol) for p in a.ports] == [(p.name, p.port, p.protocol)
                                                               for p in b.ports]


def _can_merge(a: Service, b: Service) -> bool:
    return (a.namespace == b.namespace and a.resolution == b.resolution
            and a.registry == b.registry and a.labels == b.labels and a.selector == b.selector
            and a.export_to == b.export_to)


class _ServiceSet:
    def __init__(self) -> None:
        self.services: list[Service] = []
        self.at: dict[str, int] = {}

    def add(self, s: Service | None) -> None:
        if s is None:
            return
        i = self.at.get(s.hostname)
        if i is None:
            self.at[s.hostname] = len(self.services)
            self.services.append(s)
            return
        existing = self.services[i]
        if s is existing:
            return
        if existing.registry == "Kubernetes" and s.registry != "Kubernetes":
            return
        if existing.registry != "Kubernetes" and s.registry == "Kubernetes":
            self.services[i] = s
            return
        if _same_ports(existing, s) or not _can_merge(existing, s):
            return
        extra = [p for p in s.ports if all(p.port != q.port for q in existing.ports)]
        if extra:  # istiod merges the ports of partial copies of one service
            self.services[i] = dataclasses.replace(existing, ports=list(existing.ports) + extra)


def _host_index(registry: Registry) -> dict[str, dict[str, Service]]:
    """`ServiceIndex.HostnameAndNamespace`: oldest per (host, ns); Kubernetes displaces others."""
    out: dict[str, dict[str, Service]] = {}
    for s in sorted(registry.services, key=lambda s: (s.resource.creation, s.name, s.namespace)):
        by_ns = out.setdefault(s.hostname, {})
        ex = by_ns.get(s.namespace)
        if ex is None or (ex.registry != "Kubernetes" and s.registry == "Kubernetes"):
            by_ns[s.namespace] = s
    return out


def _pick_namespace(by_ns: dict[str, Service], config_ns: str) -> str:
    """`pickBestVisibleNamespace`: a visible Kubernetes service, else the oldest visible one."""
    best: Service | None = None
    for ns in sorted(by_ns):
        svc = by_ns[ns]
        if exported_to(svc.export_to, svc.namespace, config_ns):
            if svc.registry == "Kubernetes":
                return ns
            if best is None or svc.resource.creation < best.resource.creation:
                best = svc
    return best.namespace if best is not None else ""


def _collect_services(listeners: list[EgressListener], registry: Registry,
                      config_ns: str) -> list[Service]:
    out = _ServiceSet()
    hosts = _host_index(registry)
    for eg in listeners:
        for s in eg.services:
            out.add(s)
        for vs in eg.virtual_services:
            for h, ports in destinations(vs, config_ns).items():
                by_ns = hosts.get(h) or {}
                ns = config_ns if config_ns in by_ns else _pick_namespace(by_ns, config_ns)
                if not ns:
                    continue
                svc = by_ns[ns]
                if eg.match_port:
                    assert eg.port is not None
                    out.add(_trim_to_port(svc, eg.port))
                else:
                    out.add(_trim_to_ports(svc, ports))
    return out.services


def _outbound_policy(sidecar: Resource | None, mesh_config: Any) -> dict[str, Any]:
    """Sidecar ``outboundTrafficPolicy`` replaces MeshConfig's (`initSidecarScopeInternalIndexes`);
    an empty Sidecar policy means REGISTRY_ONLY (the enum's zero value)."""
    otp = sidecar.spec.get("outboundTrafficPolicy") if sidecar is not None else None
    if isinstance(otp, dict):
        out: dict[str, Any] = {"mode": str(otp.get("mode") or "REGISTRY_ONLY")}
        if isinstance(otp.get("egressProxy"), dict):
            out["egressProxy"] = otp["egressProxy"]
        return out
    mode = getattr(mesh_config, "outbound_mode", None) if mesh_config is not None else None
    return {"mode": str(mode or "ALLOW_ANY")}


def build_scope(registry: Registry, proxy: Proxy, sidecar: Resource | None,
                virtual_services: VirtualServiceIndex | list[Resource],
                mesh_config: Any = None) -> SidecarScope:
    """`convertToSidecarScope` for ``proxy`` (``sidecar`` None: the default ``*/*`` scope).

    ``virtual_services`` is the mesh's :class:`VirtualServiceIndex` (a list of VirtualService
    resources is indexed here with ``mesh_config``'s defaults).
    """
    ns = proxy.namespace
    index = (virtual_services if isinstance(virtual_services, VirtualServiceIndex)
             else index_virtual_services(list(virtual_services), mesh_config))
    visible = _ordered_services(registry, ns)
    specs: list[Any] = list(sidecar.spec.get("egress") or []) if sidecar is not None else []
    if not specs:
        specs = [None]  # `initSidecarScopeInternalIndexes`: default "*/*" listener
    listeners = [_build_listener(i, eg if isinstance(eg, dict) else None, ns, visible, index)
                 for i, eg in enumerate(specs)]
    egress: list[EgressHost] = []
    if sidecar is not None:
        egress = _egress_hosts(sidecar) if sidecar.spec.get("egress") else [EgressHost("*", "*", 0)]
    return SidecarScope(ns, sidecar, _collect_services(listeners, registry, ns), egress, listeners,
                        _outbound_policy(sidecar, mesh_config), index)
