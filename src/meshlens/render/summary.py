"""The demo's view of a compiled sidecar: each cluster with its four port layers.

Layer: L6. Imports: compiler.

Layer 1 (capture 15001) and layer 2 (the virtual listener for the original port) come with
the listeners; this view shows the cluster (layer 3: the Service port in the name) and its
endpoints (layer 4: the targetPort), with the circuit breaker limits and TLS mode of each.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from envoy.config.cluster.v3 import cluster_pb2
from envoy.extensions.transport_sockets.tls.v3 import tls_pb2

from meshlens.compiler import CompileResult
from meshlens.compiler.names import parse_cluster_name

_TYPES = {v: k for k, v in cluster_pb2.Cluster.DiscoveryType.items()}
_LB = {v: k for k, v in cluster_pb2.Cluster.LbPolicy.items()}
_HEALTH = {0: "UNKNOWN", 1: "HEALTHY", 2: "UNHEALTHY", 3: "DRAINING", 4: "TIMEOUT", 5: "DEGRADED"}


@dataclass(frozen=True, slots=True)
class EndpointRow:
    address: str
    port: int
    health: str
    tls_mode: str
    workload: str


@dataclass(slots=True)
class ClusterSummary:
    name: str
    direction: str
    service_port: int | None
    subset: str
    host: str
    type: str
    lb_policy: str
    limits: dict[str, int]
    tls: str
    endpoints: list[EndpointRow] = field(default_factory=list)


def tls_mode(c: cluster_pb2.Cluster) -> str:
    """A short description of the cluster's upstream TLS."""
    if c.transport_socket_matches:
        names = [m.name for m in c.transport_socket_matches]
        return "auto mTLS (" + ", ".join(names) + ")"
    if c.HasField("transport_socket"):
        ts = c.transport_socket
        if ts.name == "envoy.transport_sockets.tls":
            ctx = tls_pb2.UpstreamTlsContext()
            ts.typed_config.Unpack(ctx)
            certs = [s.name for s in ctx.common_tls_context.tls_certificate_sds_secret_configs]
            if "default" in certs:
                return f"ISTIO_MUTUAL (sni {ctx.sni})"
            return "MUTUAL" if certs else "SIMPLE"
        return ts.name.rsplit(".", 1)[-1]
    return "plaintext"


def summarize(result: CompileResult) -> list[ClusterSummary]:
    eds = {cla.cluster_name: cla for cla in result.endpoints}
    out = []
    for c in result.clusters:
        key = parse_cluster_name(c.name)
        limits: dict[str, Any] = {}
        if c.circuit_breakers.thresholds:
            th = c.circuit_breakers.thresholds[0]
            limits = {"max_connections": th.max_connections.value,
                      "max_pending_requests": th.max_pending_requests.value,
                      "max_requests": th.max_requests.value, "max_retries": th.max_retries.value}
        s = ClusterSummary(
            name=c.name, direction=key.direction if key else "", service_port=key.port if key else None,
            subset=key.subset if key else "", host=key.host if key else "",
            type=_TYPES.get(c.type, str(c.type)), lb_policy=_LB.get(c.lb_policy, str(c.lb_policy)),
            limits=limits, tls=tls_mode(c))
        cla = eds.get(c.eds_cluster_config.service_name or c.name) if c.type == cluster_pb2.Cluster.EDS \
            else (c.load_assignment if c.HasField("load_assignment") else None)
        for loc in cla.endpoints if cla is not None else []:
            for lb in loc.lb_endpoints:
                sa = lb.endpoint.address.socket_address
                fm = lb.metadata.filter_metadata
                tlsm = fm["envoy.transport_socket_match"].fields["tlsMode"].string_value \
                    if "envoy.transport_socket_match" in fm else "-"
                wl = fm["istio"].fields["workload"].string_value.split(";")[0] if "istio" in fm else ""
                s.endpoints.append(EndpointRow(sa.address, sa.port_value,
                                               _HEALTH.get(lb.health_status, "?"), tlsm, wl))
        out.append(s)
    return out


def notes(result: CompileResult, name: str) -> list[str]:
    """What a user wrote that did not reach this cluster, and values istiod could not express."""
    out = []
    for d in result.provenance.dropped.get(("cluster", name), []):
        b = d.block
        where = f"{b.resource.ref} {b.resource.span(b.path)}" if b.resource else "MeshConfig"
        out.append(f"{b.name} at {where} did not reach this cluster: {d.reason}")
    for path, origin in result.provenance.of("cluster", name).items():
        if origin.rule == "quirk" and origin.note:
            span = origin.span
            out.append(f"{path}: {origin.note}" + (f" ({span})" if span else ""))
    return out


def _hcm_or_tcp(chain: Any) -> str:
    from envoy.extensions.filters.network.http_connection_manager.v3 import (
        http_connection_manager_pb2 as hcm_pb2,
    )
    from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2

    for f in chain.filters:
        if f.typed_config.Is(hcm_pb2.HttpConnectionManager.DESCRIPTOR):
            h = hcm_pb2.HttpConnectionManager()
            f.typed_config.Unpack(h)
            return f"HTTP route {h.rds.route_config_name}" if h.HasField("rds") else "HTTP (inline routes)"
        if f.typed_config.Is(tcp_proxy_pb2.TcpProxy.DESCRIPTOR):
            t = tcp_proxy_pb2.TcpProxy()
            f.typed_config.Unpack(t)
            if t.HasField("weighted_clusters"):
                return "TCP " + ", ".join(c.name for c in t.weighted_clusters.clusters)
            return f"TCP {t.cluster}"
    return "-"


def listener_rows(result: CompileResult) -> list[tuple[str, str, str, str]]:
    """One row per listener: name, address, number of chains, where the first chains lead."""
    out = []
    for lst in result.listeners or []:
        sa = lst.address.socket_address
        chains = list(lst.filter_chains) + ([lst.default_filter_chain]
                                            if lst.HasField("default_filter_chain") else [])
        dests = []
        for c in chains:
            d = _hcm_or_tcp(c)
            if d not in dests:
                dests.append(d)
        shown = "; ".join(dests[:3]) + (" ..." if len(dests) > 3 else "")
        out.append((lst.name, f"{sa.address}:{sa.port_value}", str(len(chains)), shown))
    return out


def _match_text(route: Any) -> str:
    m = route.match
    kind = m.WhichOneof("path_specifier")
    parts = [f"{kind} {getattr(m, kind) if kind != 'safe_regex' else m.safe_regex.regex}"] if kind else []
    for h in m.headers:
        sm = h.string_match
        which = sm.WhichOneof("match_pattern") if h.HasField("string_match") else None
        val = getattr(sm, which) if which and which != "safe_regex" else (sm.safe_regex.regex if which else "")
        parts.append(f"{h.name} {which or 'present'} {val}".strip())
    return ", ".join(parts)


def _dest_text(route: Any) -> str:
    action = route.WhichOneof("action")
    if action == "route":
        ra = route.route
        if ra.HasField("weighted_clusters"):
            return ", ".join(f"{c.name} {c.weight.value}%" for c in ra.weighted_clusters.clusters)
        return ra.cluster
    if action == "direct_response":
        return f"direct response {route.direct_response.status}"
    return action or "-"


def route_rows(result: CompileResult, only: tuple[str, ...] = ()) -> list[tuple[str, list[tuple[str, str, str, str]]]]:
    out = []
    for rc in result.routes or []:
        if only and rc.name not in only:
            continue
        rows = []
        for vh in rc.virtual_hosts:
            for r in vh.routes:
                rows.append((vh.name, r.name or "-", _match_text(r), _dest_text(r)))
        out.append((rc.name, rows))
    return out
