"""The upstream side: clusters, endpoints, and what the router does with the upstream's answer
(retries, per-try and route timeouts).

Layer: L5. Imports: compiler, simulate.{types,http}, xDS protos.

Retries follow Envoy's `RetryStateImpl`: ``retry_on`` conditions (``5xx``, ``gateway-error``,
``reset``, ``connect-failure``, ``retriable-4xx``, ``retriable-status-codes`` with its code
list), ``num_retries``, ``per_try_timeout`` (a per-try timeout is retried under ``5xx`` and
``gateway-error``), host predicates (``previous_hosts``: each retry picks another host).
The route timeout covers every attempt and starts at the router, i.e. after the fault filter's
delay. Exhausted retries add ``URX``; a timeout answers ``504 UT``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from envoy.config.cluster.v3 import cluster_pb2
from envoy.extensions.transport_sockets.tls.v3 import tls_pb2

from meshlens.compiler import CompileResult
from meshlens.compiler.provenance import Origin
from meshlens.simulate.http import fmt_seconds, seconds
from meshlens.simulate.types import Request, origin_dict

#: Envoy's default route timeout when a route sets none (Istio always sets one)
ENVOY_DEFAULT_TIMEOUT = 15.0


def cluster_by_name(result: CompileResult, name: str) -> Any | None:
    return result.cluster(name)


def load_assignment(result: CompileResult, cluster: Any) -> Any | None:
    if cluster.type == cluster_pb2.Cluster.EDS:
        name = cluster.eds_cluster_config.service_name or cluster.name
        return result.assignment(name)
    if cluster.HasField("load_assignment"):
        return cluster.load_assignment
    return None


def origin_of(result: CompileResult, kind: str, name: str, *prefixes: str) -> Origin | None:
    origins = result.provenance.of(kind, name)
    for p in prefixes:
        if p in origins:
            return origins[p]
    return None


def tls_of(cluster: Any, metadata: Any) -> tuple[str, list[str], bool]:
    """The client's transport toward one endpoint: (tls|raw_buffer, ALPN offered, client cert)."""
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
        return "raw_buffer", [], False
    ctx = tls_pb2.UpstreamTlsContext()
    socket.typed_config.Unpack(ctx)
    cc = ctx.common_tls_context
    has_cert = bool(cc.tls_certificate_sds_secret_configs or cc.tls_certificates)
    return "tls", list(cc.alpn_protocols), has_cert


def endpoints_of(result: CompileResult, cluster: Any) -> list[dict[str, Any]]:
    cla = load_assignment(result, cluster)
    eps = []
    for loc in cla.endpoints if cla is not None else []:
        for lb in loc.lb_endpoints:
            sa = lb.endpoint.address.socket_address
            health = {0: "UNKNOWN", 1: "HEALTHY", 2: "UNHEALTHY", 3: "DRAINING"}.get(lb.health_status, "?")
            transport, alpn, cert = tls_of(cluster, lb.metadata)
            eps.append({"cluster": cluster.name, "address": sa.address, "port": sa.port_value,
                        "health": health, "transport": transport, "alpn": alpn, "client_cert": cert,
                        "priority": loc.priority})
    return eps


def cluster_summary(result: CompileResult, c: Any) -> dict[str, Any]:
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
        out["outlier_detection"] = {
            "consecutive_5xx": od.consecutive_5xx.value if od.HasField("consecutive_5xx") else 5,
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


# -- retries and timeouts --------------------------------------------------------------------------

@dataclass(slots=True)
class RouterResult:
    """What the router returns downstream after every attempt."""

    status: int | None
    flags: list[str]
    attempts: int
    reason: str
    log: list[dict[str, Any]] = field(default_factory=list)


def _conditions(rp: Any | None) -> set[str]:
    return {c.strip() for c in rp.retry_on.split(",") if c.strip()} if rp is not None else set()


def retriable_status(rp: Any | None, status: int) -> str | None:
    """The ``retry_on`` condition that retries an upstream answer ``status``, or None."""
    on = _conditions(rp)
    if "5xx" in on and status >= 500:
        return "5xx"
    if "gateway-error" in on and status in (502, 503, 504):
        return "gateway-error"
    if "retriable-4xx" in on and status == 409:
        return "retriable-4xx"
    if "retriable-status-codes" in on and rp is not None and status in rp.retriable_status_codes:
        return "retriable-status-codes"
    return None


def retriable_reset(rp: Any | None) -> str | None:
    on = _conditions(rp)
    return next((c for c in ("5xx", "gateway-error", "reset") if c in on), None)


def retriable_connect_failure(rp: Any | None) -> str | None:
    on = _conditions(rp)
    return next((c for c in ("connect-failure", "5xx", "gateway-error", "reset") if c in on), None)


def max_attempts(rp: Any | None) -> int:
    if rp is None:
        return 1
    return 1 + (rp.num_retries.value if rp.HasField("num_retries") else 1)


def route_timeout(route: Any) -> float:
    """Seconds (0: none)."""
    ra = route.route
    return seconds(ra.timeout) if ra.HasField("timeout") else ENVOY_DEFAULT_TIMEOUT


def run_router(req: Request, rp: Any | None, timeout: float, hosts: list[str], *,
               server_sidecar: bool = False) -> RouterResult:
    """Attempts against an upstream that answers ``req.upstream_status`` (200) after
    ``req.upstream_delay``, or resets (``req.upstream_reset``). Behind a server sidecar, an app's
    reset reaches the client as that sidecar's ``503`` (its own log says UC; its inbound route
    retries only ``reset-before-request``)."""
    per_try = seconds(rp.per_try_timeout) if rp is not None and rp.HasField("per_try_timeout") else 0.0
    predicates = [p.name for p in rp.retry_host_predicate] if rp is not None else []
    other_hosts = any("previous_hosts" in p for p in predicates)
    status = 503 if req.upstream_reset and server_sidecar else (req.upstream_status or 200)
    delay = req.upstream_delay
    limit = max_attempts(rp)
    elapsed = 0.0
    log: list[dict[str, Any]] = []
    for k in range(1, limit + 1):
        host = hosts[(k - 1) % len(hosts)] if other_hosts and hosts else (hosts[0] if hosts else "?")
        if per_try and delay >= per_try:
            kind, took, cond = "per-try timeout", per_try, next(
                (c for c in ("5xx", "gateway-error") if c in _conditions(rp)), None)
        elif req.upstream_reset and server_sidecar:
            kind, took, cond = "503", delay, retriable_status(rp, 503)
        elif req.upstream_reset:
            kind, took, cond = "reset", delay, retriable_reset(rp)
        else:
            kind, took, cond = str(status), delay, retriable_status(rp, status)
        if timeout and elapsed + took >= timeout:
            log.append({"attempt": k, "host": host, "result": "route timeout"})
            return RouterResult(504, ["UT"], k, f"the route timeout {fmt_seconds(timeout)} expired during "
                                f"attempt {k} (the upstream takes {fmt_seconds(delay)}): 504 UT", log)
        elapsed += took
        log.append({"attempt": k, "host": host, "result": kind,
                    "retried_by": cond if cond and k < limit else None})
        if cond is None or k == limit:
            exhausted = cond is not None and limit > 1
            urx = ["URX"] if exhausted else []
            tries = f"{k} attempts ({k - 1} retries, retry_on {cond})" if exhausted else (
                f"{k} attempt{'s' if k > 1 else ''}")
            if kind == "per-try timeout":
                return RouterResult(504, [*urx, "UT"], k, f"every attempt hit the per-try timeout "
                                    f"{fmt_seconds(per_try)}: {tries}; 504 UT", log)
            if kind == "reset":
                return RouterResult(503, [*urx, "UC"], k, f"the upstream reset the connection: {tries}; "
                                    "503 UC (upstream connection termination)", log)
            if exhausted:
                return RouterResult(status, urx, k, f"the upstream answered {status} to each of {tries}: "
                                    f"{status} URX (retry limit exceeded)", log)
            why = ""
            if req.upstream_reset and server_sidecar:
                why = " (the app reset the connection; the server's sidecar answered 503 UC in its own log)"
            elif status >= 500 and rp is not None:
                why = f" (not retried: retry_on {rp.retry_on!r} does not cover {status})"
            return RouterResult(status, [], k, f"the upstream answered {status}{why}", log)
    raise AssertionError("unreachable")
