"""Send one request through compiled config the way Envoy would, layer by layer.

Layer: L5. Imports: compiler, model, durations, xDS protos.

istiod's `pilot/pkg/simulation/traffic.go` in spirit: it evaluates Envoy's own matching rules on
the compiled xDS (not the YAML): iptables capture, the listener for the original destination,
filter-chain match, the route configuration's virtual host and route, the cluster, its
endpoints, and the server sidecar's inbound chain for the endpoint's port. The verdict is the
response flag Envoy would set, with the layer and the resource to fix. This is the one place
that decides verdicts; the CLI's trace and the lab's checks both use it.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from envoy.config.cluster.v3 import cluster_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2
from envoy.extensions.transport_sockets.tls.v3 import tls_pb2

from meshlens.compiler import CompileResult
from meshlens.compiler.names import BLACKHOLE, PASSTHROUGH, parse_cluster_name
from meshlens.compiler.provenance import Origin

OK, NR, NC, UH, UF, UC, BLACK = "ok", "NR", "NC", "UH", "UF", "UC", "BlackHole"


@dataclass(slots=True)
class Request:
    """One request: ``http://host[:port]/path`` (or https) or ``tcp://host:port``."""

    scheme: str
    host: str
    port: int
    path: str = "/"
    method: str = "GET"
    headers: dict[str, str] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, url: str, *, headers: list[str] | None = None, method: str = "GET") -> Request:
        """Parse a URL and ``name: value`` header strings.

        Example:
            >>> r = Request.parse("http://reviews:9080/r/1?u=2", headers=["x-user: jason"])
            >>> (r.host, r.port, r.path, r.headers["x-user"], r.query)
            ('reviews', 9080, '/r/1', 'jason', {'u': '2'})
        """
        parts = urlsplit(url if "://" in url else f"http://{url}")
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https", "tcp", "tls"):
            raise ValueError(f"unsupported scheme {scheme!r}: use http://, https://, tcp:// or tls://")
        if not parts.hostname:
            raise ValueError(f"no host in {url!r}")
        default = {"http": 80, "https": 443}.get(scheme)
        port = parts.port or default
        if port is None:
            raise ValueError(f"{scheme}:// needs a port, e.g. {scheme}://{parts.hostname}:5432")
        hdrs: dict[str, str] = {}
        for h in headers or []:
            name, sep, value = h.partition(":")
            if not sep or not name.strip():
                raise ValueError(f"header {h!r} is not 'name: value'")
            hdrs[name.strip().lower()] = value.strip()
        return cls(scheme, parts.hostname, port, parts.path or "/", method.upper(), hdrs,
                   dict(parse_qsl(parts.query)))

    @property
    def is_http(self) -> bool:
        return self.scheme in ("http", "https")

    @property
    def authority(self) -> str:
        return self.headers.get("host") or (self.host if self.port in (80, 443) and self.is_http
                                            else f"{self.host}:{self.port}")


@dataclass(slots=True)
class Layer:
    layer: str  # capture | listener | route | cluster | endpoint | inbound
    name: str
    port: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    ok: bool = True
    note: str = ""


@dataclass(slots=True)
class Trace:
    request: Request
    layers: list[Layer] = field(default_factory=list)
    clusters: list[dict[str, Any]] = field(default_factory=list)
    endpoints: list[dict[str, Any]] = field(default_factory=list)
    verdict: str = OK
    reason: str = ""
    fix: dict[str, Any] | None = None
    status: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "request": {"scheme": self.request.scheme, "host": self.request.host,
                        "port": self.request.port, "path": self.request.path,
                        "method": self.request.method, "headers": self.request.headers},
            "layers": [{"layer": x.layer, "name": x.name, "port": x.port, "ok": x.ok,
                        "note": x.note, "detail": x.detail} for x in self.layers],
            "clusters": self.clusters, "endpoints": self.endpoints, "verdict": self.verdict,
            "status": self.status, "reason": self.reason, "fix": self.fix,
        }

    def fail(self, verdict: str, reason: str, origin: Origin | None = None, status: int | None = None) -> Trace:
        self.verdict, self.reason, self.status = verdict, reason, status
        if self.layers:
            self.layers[-1].ok = False
        if origin is not None:
            self.fix = origin_dict(origin)
        return self


def origin_dict(o: Origin) -> dict[str, Any]:
    span = o.span
    from meshlens.source import render_path

    return {"rule": o.rule, "resource": str(o.resource) if o.resource else None,
            "yaml_path": render_path(o.field) if o.field else None,
            "file": span.path if span else None, "line": span.line if span else None,
            "column": span.col if span else None, "note": o.note or None}


# -- capture ---------------------------------------------------------------------------------------

def _annotation_list(annotations: dict[str, str], key: str) -> list[str]:
    return [x.strip() for x in annotations.get(key, "").split(",") if x.strip()]


def resolve(result: CompileResult, host: str) -> tuple[str | None, str, Any]:
    """Resolve a host as the pod's DNS would: (address or None, how, service or None)."""
    try:
        ipaddress.ip_address(host)
        return host, "IP literal", None
    except ValueError:
        pass
    mesh = result.mesh
    ns = result.proxy.namespace
    candidates = [host, f"{host}.svc.cluster.local", f"{host}.cluster.local",
                  f"{host}.{ns}.svc.cluster.local"]
    if host.count(".") == 0:
        candidates = [f"{host}.{ns}.svc.cluster.local"]
    for name in candidates:
        for svc in mesh.registry.by_host.get(name, []):
            if svc.registry == "Kubernetes":
                if svc.vip:
                    return svc.vip, f"Service VIP of {svc.hostname}", svc
                eps = mesh.registry.endpoints_of(svc)
                if eps:
                    return eps[0].address, f"headless Service {svc.hostname}: a pod IP", svc
                return None, f"headless Service {svc.hostname} has no endpoints (NXDOMAIN)", svc
    for svc in mesh.registry.by_host.get(host, []):
        if svc.addresses:
            addr = svc.addresses[0].split("/")[0]
            return addr, f"ServiceEntry {svc.resource.namespace}/{svc.resource.name} address", svc
        return None, (f"ServiceEntry {svc.resource.namespace}/{svc.resource.name} has no address: "
                      "real DNS resolves it to an address outside the mesh"), svc
    return None, "not a mesh service: real DNS resolves it outside the mesh", None


def _captured(annotations: dict[str, str], ip: str | None, port: int) -> tuple[bool, str]:
    """istio-iptables' ISTIO_OUTPUT chain for the app's (non-1337) traffic."""
    if ip is not None and ipaddress.ip_address(ip).is_loopback:
        return False, "destination 127.0.0.0/8: RETURN (not captured)"
    if str(port) in _annotation_list(annotations, "traffic.sidecar.istio.io/excludeOutboundPorts"):
        return False, f"port {port} is in excludeOutboundPorts: RETURN"
    if ip is not None:
        addr = ipaddress.ip_address(ip)
        for cidr in _annotation_list(annotations, "traffic.sidecar.istio.io/excludeOutboundIPRanges"):
            if addr in ipaddress.ip_network(cidr, strict=False):
                return False, f"{ip} is in excludeOutboundIPRanges {cidr}: RETURN"
        include = _annotation_list(annotations, "traffic.sidecar.istio.io/includeOutboundIPRanges")
        if include and "*" not in include and not any(
                addr in ipaddress.ip_network(c, strict=False) for c in include):
            return False, f"{ip} is outside includeOutboundIPRanges: RETURN"
    return True, "ISTIO_OUTPUT → ISTIO_REDIRECT: REDIRECT --to-ports 15001"


# -- listener / filter chain -----------------------------------------------------------------------

@dataclass(slots=True)
class Conn:
    """What a connection looks like to a listener's filter-chain match."""

    dst_ip: str | None
    dst_port: int
    transport: str = "raw_buffer"
    alpn: list[str] = field(default_factory=list)
    sni: str = ""


def _prefix_len(fcm: Any, ip: str | None) -> int | None:
    """-1 when no prefix_ranges, the longest matching prefix, or None for no match."""
    if not fcm.prefix_ranges:
        return -1
    if ip is None:
        return None
    addr = ipaddress.ip_address(ip)
    best = None
    for pr in fcm.prefix_ranges:
        net = ipaddress.ip_network(f"{pr.address_prefix}/{pr.prefix_len.value}", strict=False)
        if addr in net and (best is None or net.prefixlen > best):
            best = net.prefixlen
    return best


def _sni_match(names: list[str], sni: str) -> int | None:
    if not names:
        return 0
    if not sni:
        return None
    if sni in names:
        return 3
    for n in names:
        if n.startswith("*.") and sni.endswith(n[1:]):
            return 2
    return None


def match_filter_chain(listener: Any, conn: Conn) -> tuple[Any | None, str, int]:
    """Envoy's FilterChainManager: most specific destination port, IP, SNI, transport, ALPN."""
    chains = list(enumerate(listener.filter_chains))
    # 1. destination port: exact beats unset
    exact = [(i, c) for i, c in chains if c.filter_chain_match.HasField("destination_port")
             and c.filter_chain_match.destination_port.value == conn.dst_port]
    chains = exact or [(i, c) for i, c in chains if not c.filter_chain_match.HasField("destination_port")]
    # 2. destination IP: longest prefix
    scored = [(_prefix_len(c.filter_chain_match, conn.dst_ip), i, c) for i, c in chains]
    scored = [s for s in scored if s[0] is not None]
    if scored:
        best = max(s[0] for s in scored)
        chains = [(i, c) for p, i, c in scored if p == best]
    else:
        chains = []
    # 3. server names
    scored2 = [(_sni_match(list(c.filter_chain_match.server_names), conn.sni), i, c) for i, c in chains]
    scored2 = [s for s in scored2 if s[0] is not None]
    if scored2:
        best = max(s[0] for s in scored2)
        chains = [(i, c) for p, i, c in scored2 if p == best]
    else:
        chains = []
    # 4. transport protocol: exact beats unset
    tp = [(i, c) for i, c in chains if c.filter_chain_match.transport_protocol == conn.transport]
    chains = tp or [(i, c) for i, c in chains if not c.filter_chain_match.transport_protocol]
    # 5. application protocols: any overlap beats unset
    ap = [(i, c) for i, c in chains if set(c.filter_chain_match.application_protocols) & set(conn.alpn)]
    chains = ap or [(i, c) for i, c in chains if not c.filter_chain_match.application_protocols]
    if chains:
        i, c = chains[0]
        return c, c.name or f"filter_chains[{i}]", i
    if listener.HasField("default_filter_chain"):
        d = listener.default_filter_chain
        return d, d.name or "default_filter_chain", -1
    return None, "", -2


def _listener_filter_disabled(listener: Any, name: str, port: int) -> bool:
    for lf in listener.listener_filters:
        if lf.name != name:
            continue
        if not lf.HasField("filter_disabled"):
            return False
        return _predicate(lf.filter_disabled, port)
    return True  # absent: does not run


def _predicate(p: Any, port: int) -> bool:
    kind = p.WhichOneof("rule")
    if kind == "destination_port_range":
        return p.destination_port_range.start <= port < p.destination_port_range.end
    if kind == "or_match":
        return any(_predicate(r, port) for r in p.or_match.rules)
    if kind == "and_match":
        return all(_predicate(r, port) for r in p.and_match.rules)
    if kind == "not_match":
        return not _predicate(p.not_match, port)
    if kind == "any_match":
        return True
    return False


def _network_filter(chain: Any, cls: Any) -> Any | None:
    for f in chain.filters:
        if f.typed_config.Is(cls.DESCRIPTOR):
            msg = cls()
            f.typed_config.Unpack(msg)
            return msg
    return None


# -- routes ----------------------------------------------------------------------------------------

def _domain_score(domain: str, host: str) -> int | None:
    if domain == host:
        return 4_000_000
    if domain == "*":
        return 0
    if domain.startswith("*") and host.endswith(domain[1:]) and len(host) > len(domain) - 1:
        return 3_000_000 + len(domain)
    if domain.endswith("*") and host.startswith(domain[:-1]) and len(host) > len(domain) - 1:
        return 2_000_000 + len(domain)
    return None


def select_virtual_host(rc: Any, authority: str) -> tuple[Any | None, int]:
    host = authority.lower()
    if rc.ignore_port_in_host_matching and ":" in host and not host.startswith("["):
        host = host.rsplit(":", 1)[0]
    best, best_i, score = None, -1, -1
    for i, vh in enumerate(rc.virtual_hosts):
        for d in vh.domains:
            s = _domain_score(d.lower(), host)
            if s is not None and s > score:
                best, best_i, score = vh, i, s
    if best is None and rc.ignore_port_in_host_matching is False and ":" in host:
        return select_virtual_host_port_stripped(rc, host)
    return best, best_i


def select_virtual_host_port_stripped(rc: Any, host: str) -> tuple[Any | None, int]:
    return None, -1


def _string_match(m: Any, value: str | None) -> bool:
    if value is None:
        return False
    kind = m.WhichOneof("match_pattern")
    v, ic = value, m.ignore_case
    if ic:
        v = v.lower()
    if kind == "exact":
        return v == (m.exact.lower() if ic else m.exact)
    if kind == "prefix":
        return v.startswith(m.prefix.lower() if ic else m.prefix)
    if kind == "suffix":
        return v.endswith(m.suffix.lower() if ic else m.suffix)
    if kind == "contains":
        return (m.contains.lower() if ic else m.contains) in v
    if kind == "safe_regex":
        return re.fullmatch(_re2(m.safe_regex.regex), value) is not None
    return False


def _re2(rx: str) -> str:
    return rx


def _header_match(hm: Any, headers: dict[str, str]) -> bool:
    value = headers.get(hm.name.lower())
    kind = hm.WhichOneof("header_match_specifier")
    if kind == "present_match":
        ok = (value is not None) == hm.present_match
    elif kind == "string_match":
        ok = _string_match(hm.string_match, value)
    elif kind == "exact_match":
        ok = value == hm.exact_match
    elif kind == "prefix_match":
        ok = value is not None and value.startswith(hm.prefix_match)
    elif kind == "safe_regex_match":
        ok = value is not None and re.fullmatch(hm.safe_regex_match.regex, value) is not None
    elif kind is None:
        ok = value is not None
    else:
        ok = False
    if hm.treat_missing_header_as_empty and value is None:
        ok = False
    return ok != hm.invert_match


def route_matches(route: Any, req: Request, headers: dict[str, str]) -> tuple[bool, str]:
    """Envoy's route match: path, headers, query parameters. Returns (matched, why)."""
    m = route.match
    kind = m.WhichOneof("path_specifier")
    sensitive = not m.HasField("case_sensitive") or m.case_sensitive.value
    path = req.path
    p = path if sensitive else path.lower()

    def c(x: str) -> str:
        return x if sensitive else x.lower()

    if kind == "prefix":
        if not p.startswith(c(m.prefix)):
            return False, f"path {path} does not start with {m.prefix}"
    elif kind == "path":
        if p != c(m.path):
            return False, f"path {path} is not {m.path}"
    elif kind == "safe_regex":
        if re.fullmatch(m.safe_regex.regex, path) is None:
            return False, f"path {path} does not match regex {m.safe_regex.regex}"
    elif kind == "path_separated_prefix":
        pre = c(m.path_separated_prefix)
        if not (p == pre or p.startswith(pre + "/") or p.startswith(pre + "?")):
            return False, f"path {path} is not under {m.path_separated_prefix}"
    for hm in m.headers:
        if not _header_match(hm, headers):
            return False, f"header {hm.name} does not match"
    for qm in m.query_parameters:
        value = req.query.get(qm.name)
        if qm.HasField("string_match"):
            if not _string_match(qm.string_match, value):
                return False, f"query parameter {qm.name} does not match"
        elif qm.present_match and value is None:
            return False, f"query parameter {qm.name} is missing"
    return True, "matched"


# -- the whole path --------------------------------------------------------------------------------

def _cluster(result: CompileResult, name: str) -> Any | None:
    return next((c for c in result.clusters if c.name == name), None)


def _cla(result: CompileResult, cluster: Any) -> Any | None:
    if cluster.type == cluster_pb2.Cluster.EDS:
        name = cluster.eds_cluster_config.service_name or cluster.name
        return next((e for e in result.endpoints if e.cluster_name == name), None)
    if cluster.HasField("load_assignment"):
        return cluster.load_assignment
    return None


def _tls_of(cluster: Any, metadata: Any) -> tuple[str, list[str]]:
    """The client's transport toward one endpoint: ("tls"|"raw_buffer", ALPN offered)."""
    socket = None
    if cluster.transport_socket_matches:
        tm = metadata.filter_metadata.get("envoy.transport_socket_match") if metadata else None
        for m in cluster.transport_socket_matches:
            want = dict(m.match.items()) if m.match else {}
            have = dict(tm.items()) if tm is not None else {}
            if all(have.get(k) == v for k, v in want.items()):
                socket = m.transport_socket
                break
    elif cluster.HasField("transport_socket"):
        socket = cluster.transport_socket
    if socket is None or not socket.typed_config.Is(tls_pb2.UpstreamTlsContext.DESCRIPTOR):
        return "raw_buffer", []
    ctx = tls_pb2.UpstreamTlsContext()
    socket.typed_config.Unpack(ctx)
    return "tls", list(ctx.common_tls_context.alpn_protocols)


def _origin_of(result: CompileResult, kind: str, name: str, *prefixes: str) -> Origin | None:
    origins = result.provenance.of(kind, name)
    for p in prefixes:
        if p in origins:
            return origins[p]
    return None


def simulate(result: CompileResult, req: Request, *,
             server: Callable[[str], CompileResult | None] | None = None) -> Trace:
    """Trace ``req`` from the proxy of ``result``; ``server(ip)`` compiles the pod at ``ip``."""
    t = Trace(req)
    wl = result.proxy.workload
    ip, how, svc = resolve(result, req.host)
    captured, why = _captured(wl.annotations, ip, req.port)
    t.layers.append(Layer("capture", "15001" if captured else "not captured", 15001 if captured else None,
                          {"original_destination": f"{ip or req.host}:{req.port}", "resolved": how,
                           "iptables": why}))
    if not captured:
        t.reason = f"not captured by the sidecar ({why}): the app connects directly"
        return t
    listeners = {lst.name: lst for lst in result.listeners or []}
    lst = listeners.get(f"{ip}_{req.port}") if ip else None
    lst = lst or listeners.get(f"0.0.0.0_{req.port}")
    via = lst.name if lst is not None else "virtualOutbound"
    if lst is None:
        lst = listeners.get("virtualOutbound")
        if lst is None:
            return t.fail(NR, "no virtualOutbound listener")
    conn = Conn(ip, req.port)
    if req.scheme in ("https", "tls"):
        conn.transport, conn.sni = "tls", req.host
    elif req.is_http and not _listener_filter_disabled(lst, "envoy.filters.listener.http_inspector", req.port):
        conn.alpn = ["http/1.1"]
    chain, chain_name, _ = match_filter_chain(lst, conn)
    layer = Layer("listener", via, req.port, {"listener": lst.name, "filter_chain": chain_name,
                                              "transport_protocol": conn.transport,
                                              "application_protocols": conn.alpn})
    t.layers.append(layer)
    if chain is None:
        return t.fail(NR, f"no filter chain of {lst.name} matches the connection",
                      _origin_of(result, "listener", lst.name, "address"))
    hcm = _network_filter(chain, hcm_pb2.HttpConnectionManager)
    picks: list[tuple[str, int]] = []
    if hcm is not None:
        rds = hcm.rds.route_config_name if hcm.HasField("rds") else hcm.route_config.name
        rc = next((r for r in result.routes or [] if r.name == rds), None) if hcm.HasField("rds") \
            else hcm.route_config
        rlayer = Layer("route", rds or "(inline)", req.port, {})
        t.layers.append(rlayer)
        if rc is None:
            return t.fail(NR, f"route configuration {rds!r} does not exist", status=404)
        headers = dict(req.headers)
        headers.setdefault(":authority", req.authority)
        headers.setdefault("host", req.authority)
        headers.setdefault(":method", req.method)
        headers.setdefault(":path", req.path)
        vh, vi = select_virtual_host(rc, req.authority)
        if vh is None:
            return t.fail(NR, f"no virtual host of route {rc.name!r} has domain {req.authority!r}",
                          status=404)
        rlayer.detail["virtual_host"] = vh.name
        candidates = []
        chosen = None
        for ri, route in enumerate(vh.routes):
            ok, why_not = route_matches(route, req, headers)
            candidates.append({"route": route.name or f"routes[{ri}]", "matched": ok, "why": why_not})
            if ok:
                chosen = (ri, route)
                break
        rlayer.detail["candidates"] = candidates
        if chosen is None:
            return t.fail(NR, f"no route of virtual host {vh.name!r} matches {req.method} {req.path}",
                          status=404)
        ri, route = chosen
        origin = _origin_of(result, "route", rc.name, f"virtual_hosts[{vi}].routes[{ri}]")
        rlayer.name = f"{rc.name} / {vh.name} / {route.name or ri}"
        if origin is not None:
            rlayer.detail["origin"] = origin_dict(origin)
        action = route.WhichOneof("action")
        if action == "direct_response":
            status = route.direct_response.status
            if vh.name == "block_all" or route.name == "block_all":
                return t.fail(BLACK, "REGISTRY_ONLY: the host is not in the registry; "
                              f"route block_all answers {status}", origin, status=status)
            t.status = status
            t.reason = f"direct response {status}"
            return t
        if action == "redirect":
            t.status = 301
            t.reason = "redirect"
            return t
        ra = route.route
        if ra.HasField("weighted_clusters"):
            picks = [(w.name, w.weight.value) for w in ra.weighted_clusters.clusters]
        else:
            picks = [(ra.cluster, 100)]
        route_origin = origin
    else:
        tcp = _network_filter(chain, tcp_proxy_pb2.TcpProxy)
        if tcp is None:
            return t.fail(NR, f"filter chain {chain_name} has no HTTP or TCP proxy")
        if tcp.HasField("weighted_clusters"):
            picks = [(w.name, w.weight) for w in tcp.weighted_clusters.clusters]
        else:
            picks = [(tcp.cluster, 100)]
        route_origin = _origin_of(result, "listener", lst.name, "filter_chains[0]")
    total = sum(w for _, w in picks) or 1
    t.clusters = [{"name": n, "weight": w, "share": round(100 * w / total, 2)} for n, w in picks]
    verdicts: list[tuple[str, str, Any]] = []
    for name, weight in picks:
        if weight <= 0:
            continue
        v = _follow_cluster(result, t, name, ip, req, server, route_origin, svc)
        verdicts.append(v)
    bad = [v for v in verdicts if v[0] != OK]
    if bad and len(bad) == len(verdicts):
        return t.fail(bad[0][0], bad[0][1], bad[0][2], status=t.status)
    if bad:
        t.verdict = bad[0][0] if len(verdicts) == 1 else OK
        t.reason = ("some destinations fail: " + "; ".join(b[1] for b in bad)) if len(verdicts) > 1 else bad[0][1]
        if len(verdicts) > 1:
            t.verdict = "partial:" + ",".join(sorted({b[0] for b in bad}))
        return t
    t.reason = "routed"
    return t


def _follow_cluster(result: CompileResult, t: Trace, name: str, ip: str | None, req: Request,
                    server: Any, route_origin: Origin | None, svc: Any = None) -> tuple[str, str, Any]:
    cluster = _cluster(result, name)
    clayer = Layer("cluster", name, None, {})
    key = parse_cluster_name(name)
    if key is not None:
        clayer.port = key.port
        clayer.detail.update({"service_port": key.port, "subset": key.subset, "host": key.host})
    t.layers.append(clayer)
    if cluster is None:
        clayer.ok = False
        why = f"cluster {name} does not exist"
        if key is not None and key.subset:
            why += f" (no DestinationRule defines subset {key.subset!r} for {key.host})"
        elif key is not None:
            why += f" (no service {key.host} with port {key.port} is in this sidecar's scope)"
        return NC, why, route_origin
    clayer.detail.update(_cluster_summary(result, cluster))
    if name == BLACKHOLE:
        clayer.ok = False
        return BLACK, "REGISTRY_ONLY: traffic to a destination outside the registry goes to BlackHoleCluster", None
    if cluster.type == cluster_pb2.Cluster.ORIGINAL_DST:
        target = f"{ip}:{req.port}" if ip else f"{req.host}:{req.port}"
        t.endpoints.append({"cluster": name, "address": target, "health": "original destination"})
        t.layers.append(Layer("endpoint", target, req.port, {"note": "ORIGINAL_DST: the address the app connected to"}))
        if svc is not None and svc.registry == "Kubernetes" and ip == svc.vip and svc.port(req.port) is None:
            # The sidecar connects to VIP:port itself (uid 1337 is not captured again), and
            # kube-proxy has no rule for a port the Service does not expose.
            t.layers[-1].ok = False
            from meshlens.compiler import provenance as prov

            return UF, (f"{svc.hostname} has no port {req.port}: the passthrough connection to its "
                        f"VIP {ip}:{req.port} finds no kube-proxy rule and fails"), \
                prov.from_resource(svc.resource, ("spec", "ports"), prov.REGISTRY)
        if name == PASSTHROUGH:
            return OK, "passthrough", None
        return OK, "original destination", None
    cla = _cla(result, cluster)
    eps = []
    for loc in cla.endpoints if cla is not None else []:
        for lb in loc.lb_endpoints:
            sa = lb.endpoint.address.socket_address
            health = {0: "UNKNOWN", 1: "HEALTHY", 2: "UNHEALTHY", 3: "DRAINING"}.get(lb.health_status, "?")
            transport, alpn = _tls_of(cluster, lb.metadata)
            eps.append({"cluster": name, "address": sa.address, "port": sa.port_value, "health": health,
                        "transport": transport, "alpn": alpn, "priority": loc.priority})
    t.endpoints.extend(eps)
    usable = [e for e in eps if e["health"] in ("HEALTHY", "UNKNOWN")]
    elayer = Layer("endpoint", f"{len(usable)} of {len(eps)} usable", usable[0]["port"] if usable else None,
                   {"endpoints": eps})
    t.layers.append(elayer)
    if not usable:
        elayer.ok = False
        dr_origin = _origin_of(result, "cluster", name, "metadata.filter_metadata.istio.subset")
        why = f"cluster {name} has no healthy endpoint"
        if key is not None and key.subset and eps == []:
            why += f": subset {key.subset!r} selects no pod of {key.host}"
        return UH, why, dr_origin or route_origin
    if server is not None:
        return _inbound(result, t, cluster, usable[0], server, req)
    return OK, "routed", None


def _cluster_summary(result: CompileResult, c: Any) -> dict[str, Any]:
    th = c.circuit_breakers.thresholds[0] if c.circuit_breakers.thresholds else None
    out: dict[str, Any] = {
        "type": cluster_pb2.Cluster.DiscoveryType.Name(c.type),
        "lb_policy": cluster_pb2.Cluster.LbPolicy.Name(c.lb_policy),
        "connect_timeout": f"{c.connect_timeout.seconds + c.connect_timeout.nanos / 1e9:g}s",
    }
    if th is not None:
        out["circuit_breakers"] = {"max_connections": th.max_connections.value,
                                   "max_pending_requests": th.max_pending_requests.value,
                                   "max_requests": th.max_requests.value, "max_retries": th.max_retries.value}
    if c.HasField("outlier_detection"):
        od = c.outlier_detection
        out["outlier_detection"] = {"consecutive_5xx": od.consecutive_5xx.value if od.HasField("consecutive_5xx") else 5,
                                    "max_ejection_percent": od.max_ejection_percent.value if od.HasField("max_ejection_percent") else 10}
    if c.transport_socket_matches:
        out["tls"] = "auto mTLS (per endpoint tlsMode)"
    elif c.HasField("transport_socket"):
        out["tls"] = c.transport_socket.name
    else:
        out["tls"] = "plaintext"
    origins = result.provenance.of("cluster", c.name)
    out["provenance"] = {k: origin_dict(v) for k, v in origins.items()
                         if k.startswith(("circuit_breakers", "outlier_detection", "transport_socket",
                                          "lb_policy"))}
    return out


def _inbound(result: CompileResult, t: Trace, cluster: Any, ep: dict[str, Any], server: Any,
             req: Request) -> tuple[str, str, Any]:
    srv = server(ep["address"])
    if srv is None:
        note = "no sidecar at the endpoint (or not a pod in the input)"
        t.layers.append(Layer("inbound", "no sidecar", ep["port"], {"note": note}))
        if ep["transport"] == "tls":
            return UF, (f"the client sends TLS to {ep['address']}:{ep['port']}, which has no sidecar "
                        "to terminate it: the handshake fails"), _origin_of(result, "cluster", cluster.name,
                                                                           "transport_socket")
        return OK, "plaintext to a pod without a sidecar", None
    vi = next((x for x in srv.listeners or [] if x.name == "virtualInbound"), None)
    if vi is None:
        t.layers.append(Layer("inbound", "no virtualInbound", ep["port"], {}))
        return OK, "server has no inbound listener", None
    port = ep["port"]
    tls_seen = ep["transport"] == "tls" and not _listener_filter_disabled(
        vi, "envoy.filters.listener.tls_inspector", port)
    conn = Conn(ep["address"], port, "tls" if tls_seen else "raw_buffer")
    if tls_seen:
        alpn = list(ep["alpn"])
        if req.is_http and "istio" in alpn:
            # istio.alpn on the client's HCM rewrites the ALPN for HTTP upstreams.
            alpn = ["istio-h2", "istio", "h2"] if "h2" in alpn else ["istio-http/1.1", "istio", "http/1.1"]
        conn.alpn = alpn
    elif req.is_http and ep["transport"] != "tls" and not _listener_filter_disabled(
            vi, "envoy.filters.listener.http_inspector", port):
        conn.alpn = ["http/1.1"]
    chain, chain_name, chain_index = match_filter_chain(vi, conn)
    layer = Layer("inbound", f"{srv.proxy.name}.{srv.proxy.namespace} virtualInbound", port,
                  {"filter_chain": chain_name, "client_transport": ep["transport"],
                   "seen_as": conn.transport, "alpn": conn.alpn})
    t.layers.append(layer)
    pa_origin = _origin_of(srv, "listener", "virtualInbound", *[f"filter_chains[{i}]" for i in range(64)])
    if chain is None:
        layer.ok = False
        return UC, (f"the server's sidecar has no filter chain for {conn.transport} on port {port} "
                    "(PeerAuthentication STRICT?): it closes the connection"), pa_origin
    server_tls = bool(chain.HasField("transport_socket"))
    if ep["transport"] == "tls" and not server_tls:
        layer.ok = False
        return UF, (f"the client sends TLS but the server's chain {chain_name} on port {port} is "
                    "plaintext (PeerAuthentication DISABLE?): the handshake fails"), pa_origin
    layer.detail["server_tls"] = server_tls
    from meshlens.compiler.authz.evaluate import inbound_rbac

    rbac = inbound_rbac(srv, chain, chain_index, result, req, dest_ip=ep["address"], dest_port=port,
                        mtls=server_tls and ep["transport"] == "tls")
    if rbac is not None:
        layer.detail["rbac"] = rbac.detail
        if rbac.denied:
            layer.ok, t.status = False, rbac.status
            return rbac.verdict, rbac.reason, rbac.origin
    hcm = _network_filter(chain, hcm_pb2.HttpConnectionManager)
    tcp = _network_filter(chain, tcp_proxy_pb2.TcpProxy)
    target = None
    if hcm is not None and hcm.HasField("route_config") and hcm.route_config.virtual_hosts:
        r = hcm.route_config.virtual_hosts[0].routes[0] if hcm.route_config.virtual_hosts[0].routes else None
        target = r.route.cluster if r is not None else None
    elif tcp is not None:
        target = tcp.cluster
    layer.detail["inbound_cluster"] = target
    layer.detail["app_port"] = port
    return OK, "routed", None


__all__ = ["Request", "Trace", "simulate"]
