"""Name resolution as a pod does it, and istio-iptables' capture decision.

Layer: L5. Imports: compiler (CompileResult).

A pod's ``/etc/resolv.conf`` (Kubernetes ``ClusterFirst``) has ``search NS.svc.cluster.local
svc.cluster.local cluster.local`` and ``options ndots:5``: a name with fewer than five dots is
tried with each search suffix first, then as written. Kubernetes DNS answers Service names
(``NAME.NS.svc.cluster.local``: the ClusterIP, a headless Service's pod IPs, an ExternalName's
CNAME) and NXDOMAIN for any other name in the cluster domain; other names go to the upstream
resolver, which meshlens assumes answers (outside the mesh). A single-label name that no
search suffix completes is NXDOMAIN.

Istio's DNS proxy (``ISTIO_META_DNS_CAPTURE: "true"`` in ``proxyMetadata`` of MeshConfig
``defaultConfig`` or the pod's ``proxy.istio.io/config``) answers first from the agent's name
table (`pkg/dns/server/name_table.go` `BuildNameTable`): Services and ServiceEntry hosts with
their addresses, and, with ``ISTIO_META_DNS_AUTO_ALLOCATE``, an address from 240.240.0.0/16 for
ServiceEntry hosts that have none.
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass, field
from typing import Any

from meshlens.compiler import CompileResult

CLUSTER_DOMAIN = "cluster.local"
NDOTS = 5
AUTO_ALLOCATE_NET = ipaddress.ip_network("240.240.0.0/16")


@dataclass(slots=True)
class Resolution:
    """What the app's ``getaddrinfo`` returns for a host."""

    ip: str | None
    how: str
    service: Any = None
    nxdomain: bool = False
    tried: list[str] = field(default_factory=list)
    dns_proxy: bool = False


def proxy_metadata(result: CompileResult) -> dict[str, str]:
    """``proxyMetadata`` of MeshConfig ``defaultConfig``, overridden by the pod's
    ``proxy.istio.io/config`` annotation (`mesh.ApplyProxyConfig`)."""
    dc = (result.mesh.mesh_config.get("defaultConfig") or {}) if result.mesh is not None else {}
    md = dict(dc.get("proxyMetadata") or {}) if isinstance(dc, dict) else {}
    note = result.proxy.workload.annotations.get("proxy.istio.io/config")
    if note:
        import yaml

        try:
            pc = yaml.safe_load(note)
        except yaml.YAMLError:
            pc = None
        if isinstance(pc, dict) and isinstance(pc.get("proxyMetadata"), dict):
            md.update(pc["proxyMetadata"])
    return {str(k): str(v) for k, v in md.items()}


def dns_proxy_modes(result: CompileResult) -> tuple[bool, bool]:
    """(DNS capture, auto-allocation) from proxyMetadata."""
    md = proxy_metadata(result)
    capture = md.get("ISTIO_META_DNS_CAPTURE", "").lower() == "true"
    return capture, capture and md.get("ISTIO_META_DNS_AUTO_ALLOCATE", "").lower() == "true"


def search_candidates(host: str, namespace: str) -> list[str]:
    """The names the resolver asks for, in order (search path, ndots:5).

    Example:
        >>> search_candidates("reviews", "default")
        ['reviews.default.svc.cluster.local', 'reviews.svc.cluster.local', 'reviews.cluster.local', 'reviews']
        >>> search_candidates("a.b.c.d.e.f", "x")[0]
        'a.b.c.d.e.f'
    """
    if host.endswith("."):
        return [host[:-1]]
    search = [f"{host}.{namespace}.svc.{CLUSTER_DOMAIN}", f"{host}.svc.{CLUSTER_DOMAIN}",
              f"{host}.{CLUSTER_DOMAIN}"]
    return [host, *search] if host.count(".") >= NDOTS else [*search, host]


def _auto_address(host: str) -> str:
    """A stand-in for istiod's allocator (`serviceentry/ipallocate`): deterministic per host."""
    n = int.from_bytes(hashlib.sha256(host.encode()).digest()[:2], "big") % 65533 + 1
    return str(AUTO_ALLOCATE_NET.network_address + n)


def _se_label(svc: Any) -> str:
    return f"ServiceEntry {svc.resource.namespace}/{svc.resource.name}"


def _kube_answer(result: CompileResult, name: str, depth: int = 0) -> Resolution | None:
    """Kubernetes DNS for one fully qualified name in the cluster domain (None: NXDOMAIN)."""
    for svc in result.mesh.registry.by_host.get(name, []):
        if svc.registry != "Kubernetes":
            continue
        if svc.alias_target and depth < 8:
            target = _kube_answer(result, svc.alias_target, depth + 1) \
                if svc.alias_target.endswith("." + CLUSTER_DOMAIN) else None
            if target is not None:
                target.how = f"ExternalName {svc.hostname} → CNAME {svc.alias_target}: {target.how}"
                return target
            return Resolution(None, f"ExternalName {svc.hostname} → CNAME {svc.alias_target}: "
                              "resolved outside the mesh", svc)
        if svc.vip:
            return Resolution(svc.vip, f"Service VIP of {svc.hostname}", svc)
        eps = result.mesh.registry.endpoints_of(svc)
        if eps:
            return Resolution(eps[0].address, f"headless Service {svc.hostname}: a pod IP", svc)
        return None
    return None


def _name_table(result: CompileResult, name: str, auto: bool) -> Resolution | None:
    """The DNS proxy's own answer for ``name`` (`BuildNameTable`), or None to forward it."""
    for svc in result.mesh.registry.by_host.get(name, []):
        if svc.registry == "Kubernetes":
            return _kube_answer(result, name)
        if svc.addresses:
            return Resolution(svc.addresses[0].split("/")[0],
                              f"DNS proxy: {_se_label(svc)} address", svc, dns_proxy=True)
        if auto and not name.startswith("*"):
            return Resolution(_auto_address(name), f"DNS proxy: auto-allocated address for {_se_label(svc)} "
                              "(istiod's allocator picks the exact 240.240.x.y)", svc, dns_proxy=True)
    return None


def lookup(result: CompileResult, host: str) -> Resolution:
    """Resolve ``host`` as the app in the proxy's pod would."""
    try:
        ipaddress.ip_address(host)
        return Resolution(host, "IP literal")
    except ValueError:
        pass
    host = host.lower()
    capture, auto = dns_proxy_modes(result)
    tried: list[str] = []
    for name in search_candidates(host, result.proxy.namespace):
        tried.append(name)
        if capture:
            ans = _name_table(result, name, auto)
            if ans is not None:
                ans.tried, ans.dns_proxy = list(tried), True
                return ans
        if name == CLUSTER_DOMAIN or name.endswith("." + CLUSTER_DOMAIN):
            ans = _kube_answer(result, name)
            if ans is not None:
                ans.tried = list(tried)
                return ans
            continue  # NXDOMAIN: the next search suffix
        if "." not in name:
            continue  # a single label: no upstream resolver answers it
        for svc in result.mesh.registry.by_host.get(name, []):
            if svc.addresses:
                return Resolution(svc.addresses[0].split("/")[0], f"{_se_label(svc)} address "
                                  "(the upstream DNS is assumed to answer it)", svc, tried=list(tried))
            return Resolution(None, f"{_se_label(svc)} has no address: real DNS resolves it to an "
                              "address outside the mesh", svc, tried=list(tried))
        return Resolution(None, "not a mesh service: real DNS resolves it outside the mesh",
                          tried=list(tried))
    why = (f"NXDOMAIN: no Service or ServiceEntry defines {host!r} "
           f"(asked {', '.join(tried)})")
    return Resolution(None, why, nxdomain=True, tried=tried, dns_proxy=capture)


def resolve(result: CompileResult, host: str) -> tuple[str | None, str, Any]:
    """Resolve a host as the pod's DNS would: (address or None, how, service or None)."""
    r = lookup(result, host)
    return r.ip, r.how, r.service


# -- capture ---------------------------------------------------------------------------------------

def annotation_list(annotations: dict[str, str], key: str) -> list[str]:
    return [x.strip() for x in annotations.get(key, "").split(",") if x.strip()]


def captured(annotations: dict[str, str], ip: str | None, port: int) -> tuple[bool, str]:
    """istio-iptables' ISTIO_OUTPUT chain for the app's (non-1337) traffic."""
    if ip is not None and ipaddress.ip_address(ip).is_loopback:
        return False, "destination 127.0.0.0/8: RETURN (not captured)"
    if str(port) in annotation_list(annotations, "traffic.sidecar.istio.io/excludeOutboundPorts"):
        return False, f"port {port} is in excludeOutboundPorts: RETURN"
    if ip is not None:
        addr = ipaddress.ip_address(ip)
        for cidr in annotation_list(annotations, "traffic.sidecar.istio.io/excludeOutboundIPRanges"):
            if addr in ipaddress.ip_network(cidr, strict=False):
                return False, f"{ip} is in excludeOutboundIPRanges {cidr}: RETURN"
        include = annotation_list(annotations, "traffic.sidecar.istio.io/includeOutboundIPRanges")
        if include and "*" not in include and not any(
                addr in ipaddress.ip_network(c, strict=False) for c in include):
            return False, f"{ip} is outside includeOutboundIPRanges: RETURN"
    return True, "ISTIO_OUTPUT → ISTIO_REDIRECT: REDIRECT --to-ports 15001"


#: ports istio-iptables never redirects inbound (agent, health, Prometheus, HBONE)
INBOUND_EXCLUDED = {15008, 15020, 15021, 15090}


def captured_inbound(annotations: dict[str, str], port: int) -> tuple[bool, str]:
    """istio-iptables' ISTIO_INBOUND chain (`tools/istio-iptables`, include ports ``*``)."""
    if port in INBOUND_EXCLUDED:
        return False, f"port {port} is one of Istio's own ports: RETURN"
    if str(port) in annotation_list(annotations, "traffic.sidecar.istio.io/excludeInboundPorts"):
        return False, f"port {port} is in excludeInboundPorts: RETURN"
    include = annotations.get("traffic.sidecar.istio.io/includeInboundPorts", "*")
    if include.strip() not in ("*", "") and str(port) not in annotation_list(
            annotations, "traffic.sidecar.istio.io/includeInboundPorts"):
        return False, f"port {port} is not in includeInboundPorts: RETURN"
    return True, "ISTIO_INBOUND → ISTIO_IN_REDIRECT: REDIRECT --to-ports 15006"
