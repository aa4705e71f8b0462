"""Send one request through compiled config the way Envoy would, layer by layer, and decide the
verdict, the status the app receives and the response flags.

Layer: L5. Imports: compiler, simulate.*.

istiod's `pilot/pkg/simulation/traffic.go` in spirit: Envoy's own matching on the compiled xDS
(not the YAML): the pod's DNS, iptables capture, the listener for the original destination,
filter-chain match, virtual host and route, the fault filter, the cluster and its endpoints, the
server sidecar's inbound chain, then the router's retries and timeouts against the upstream the
user describes (``--upstream-status/--upstream-delay/--upstream-reset``; by default it answers
200 at once). This is the one place that decides verdicts; the CLI's trace and the lab's checks
both use it.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from envoy.config.cluster.v3 import cluster_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2

from meshlens.compiler import CompileResult
from meshlens.compiler import provenance as prov
from meshlens.compiler.names import BLACKHOLE, PASSTHROUGH, parse_cluster_name
from meshlens.compiler.provenance import Origin
from meshlens.simulate.dns import captured, lookup
from meshlens.simulate.http import (FAULT_FILTER, fault_of, fault_summary, fmt_seconds, redirect_effect,
                                    retry_of, route_effects, route_matches, seconds, select_virtual_host)
from meshlens.simulate.inbound import Peer, match_inbound, trace_inbound
from meshlens.simulate.listener import client_conn, listener_for, match_filter_chain, network_filter
from meshlens.simulate.types import (BLACK, DI, FI, NC, NR, NXDOMAIN, OK, UF, UH, Layer, Outcome, Request,
                                     Trace, origin_dict, sort_flags)
from meshlens.simulate.upstream import (cluster_by_name, cluster_summary, endpoints_of, max_attempts,
                                        origin_of, retriable_connect_failure, retriable_reset,
                                        route_timeout, run_router)

Server = Callable[[str], CompileResult | None]
#: which flag decides the verdict when several are set
_DECIDING = ["FI", "UT", "URX", "UC", "UF", "UH", "NC", "NR", "DPE", "DI"]
#: the status Envoy answers with for a local verdict
#: Verdicts of the server sidecar's own answer (compiler.authz.evaluate.InboundVerdict).
_ANSWERED_BY_SERVER = frozenset({"rbac_access_denied", "jwt_authn_access_denied"})
_STATUS = {"NR": 404, "NC": 503, "UH": 503, "UF": 503, "UC": 503, "DPE": 400}


@dataclass(slots=True)
class Leg:
    """The fate of the connection toward one weighted cluster."""

    verdict: str
    reason: str
    origins: list[Origin]
    hosts: list[str]
    sidecar: bool = False  # a server sidecar stands between the client and the app
    status: int | None = None  # the server sidecar answered itself (403 RBAC, 401 JWT)


def _deciding(flags: list[str]) -> str:
    return next((f for f in _DECIDING if f in flags), OK)


def simulate(result: CompileResult, req: Request, *, server: Server | None = None) -> Trace:
    """Trace ``req`` from the proxy of ``result``; ``server(ip)`` compiles the pod at ``ip``."""
    if req.inbound:
        return trace_inbound(result, req)
    t = Trace(req)
    wl = result.proxy.workload
    res = lookup(result, req.host)
    if res.nxdomain:
        t.layers.append(Layer("capture", "no connection", None,
                              {"resolved": res.how, "dns_queries": res.tried, "dns_proxy": res.dns_proxy}))
        hint = _did_you_mean(result, req.host)
        return t.fail(NXDOMAIN, f"{res.how}: the app's lookup fails before Envoy sees anything{hint}",
                      flags=[])
    ip, svc = res.ip, res.service
    is_captured, why = captured(wl.annotations, ip, req.port)
    detail: dict[str, Any] = {"original_destination": f"{ip or req.host}:{req.port}", "resolved": res.how,
                              "iptables": why}
    if res.dns_proxy:
        detail["dns_proxy"] = True
    t.layers.append(Layer("capture", "15001" if is_captured else "not captured",
                          15001 if is_captured else None, detail))
    if not is_captured:
        t.reason = f"not captured by the sidecar ({why}): the app connects directly"
        t.status = 200 if req.is_http else None
        return t
    lst, bound = listener_for(result.listeners_on(req.port), ip, req.port)
    if lst is None:
        lst = result.listener("virtualOutbound")
        bound = "no listener for the address: stays on virtualOutbound"
        if lst is None:
            return t.fail(NR, "no listener for the address and no virtualOutbound listener", flags=["NR"])
    alpn = req.alpn if req.alpn is not None else []
    conn = client_conn(lst, ip, req.port, tls=req.tls, sni=req.sni if req.sni is not None else req.host,
                       alpn=alpn, http=req.is_http, http2=req.http2)
    chain, chain_name, _ = match_filter_chain(lst, conn)
    layer = Layer("listener", lst.name, req.port, {"listener": lst.name, "selected_by": bound,
                                                    "filter_chain": chain_name,
                                                    "transport_protocol": conn.transport,
                                                    "application_protocols": conn.alpn})
    if conn.sni:
        layer.detail["server_name"] = conn.sni
    t.layers.append(layer)
    if chain is None:
        return t.fail(NR, f"no filter chain of {lst.name} matches the connection",
                      origin_of(result, "listener", lst.name, "address"), flags=["NR"])
    hcm = network_filter(chain, hcm_pb2.HttpConnectionManager)
    if hcm is not None:
        return _http(result, t, hcm, ip, svc, server)
    tcp = network_filter(chain, tcp_proxy_pb2.TcpProxy)
    if tcp is None:
        return t.fail(NR, f"filter chain {chain_name} has no HTTP or TCP proxy", flags=["NR"])
    if tcp.HasField("weighted_clusters"):
        picks = [(w.name, w.weight) for w in tcp.weighted_clusters.clusters]
    else:
        picks = [(tcp.cluster, 100)]
    origin = origin_of(result, "listener", lst.name, "filter_chains[0]")
    legs = _follow(result, t, picks, ip, svc, server, origin)
    return _finish_tcp(t, legs)


def _did_you_mean(result: CompileResult, host: str) -> str:
    names = sorted({h for h in result.mesh.registry.by_host})
    short = {n.split(".")[0]: n for n in names}
    close = difflib.get_close_matches(host.split(".")[0], list(short), n=1, cutoff=0.75)
    return f" (did you mean {short[close[0]]}?)" if close else ""


def _http(result: CompileResult, t: Trace, hcm: Any, ip: str | None, svc: Any, server: Server | None) -> Trace:
    req = t.request
    rds = hcm.rds.route_config_name if hcm.HasField("rds") else hcm.route_config.name
    rc = result.route(rds) if hcm.HasField("rds") else hcm.route_config
    rlayer = Layer("route", rds or "(inline)", req.port, {})
    t.layers.append(rlayer)
    if rc is None:
        return t.fail(NR, f"route configuration {rds!r} does not exist", status=404)
    headers = {":authority": req.authority, "host": req.authority, ":method": req.method,
               ":path": req.path, **req.headers}
    vh, vi = select_virtual_host(rc, req.authority)
    if vh is None:
        return t.fail(NR, f"no virtual host of route {rc.name!r} has domain {req.authority!r}", status=404)
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
        return t.fail(NR, f"no route of virtual host {vh.name!r} matches {req.method} {req.path}", status=404)
    ri, route = chosen
    origin = origin_of(result, "route", rc.name, f"virtual_hosts[{vi}].routes[{ri}]")
    rlayer.name = f"{rc.name} / {vh.name} / {route.name or ri}"
    if origin is not None:
        rlayer.detail["origin"] = origin_dict(origin)
    if vh.require_tls and not req.tls:
        t.status, t.reason = 301, (f"virtual host {vh.name} requires TLS (require_tls): the plaintext "
                                   "request is redirected to https")
        return t
    action = route.WhichOneof("action")
    rlayer.detail.update(route_effects(route, req))
    if action == "direct_response":
        status = route.direct_response.status
        if vh.name == "block_all" or route.name == "block_all":
            return t.fail(BLACK, "REGISTRY_ONLY: the host is not in the registry; "
                          f"route block_all answers {status}", origin, status=status, flags=[])
        body = route.direct_response.body.inline_string if route.direct_response.HasField("body") else ""
        rlayer.detail["direct_response"] = {"status": status, "body": body}
        t.status, t.reason = status, f"direct response {status} from the route (no upstream)"
        return t
    if action == "redirect":
        status, location = redirect_effect(route, req)
        rlayer.detail["redirect"] = {"status": status, "location": location}
        t.status, t.reason = status, f"redirect: {status} Location: {location}"
        return t
    ra = route.route
    if ra.HasField("weighted_clusters"):
        picks = [(w.name, w.weight.value) for w in ra.weighted_clusters.clusters]
    else:
        picks = [(ra.cluster, 100)]
    fault = fault_of(route, vh) if any(f.name == FAULT_FILTER for f in hcm.http_filters) else None
    if fault is not None and (fault.HasField("delay") or fault.HasField("abort")):
        t.layers.append(Layer("fault", "envoy.filters.http.fault", req.port, fault_summary(fault)))
    legs = _follow(result, t, picks, ip, svc, server, origin)
    rp = retry_of(route, vh)
    timeout = route_timeout(route)
    return _finish_http(t, legs, fault, rp, timeout, origin)


def _follow(result: CompileResult, t: Trace, picks: list[tuple[str, int]], ip: str | None, svc: Any,
            server: Server | None, origin: Origin | None) -> list[Leg]:
    total = sum(w for _, w in picks) or 1
    t.clusters = [{"name": n, "weight": w, "share": round(100 * w / total, 2)} for n, w in picks]
    return [_follow_cluster(result, t, name, ip, svc, server, origin) for name, w in picks if w > 0]


def _follow_cluster(result: CompileResult, t: Trace, name: str, ip: str | None, svc: Any,
                    server: Server | None, route_origin: Origin | None) -> Leg:
    req = t.request
    cluster = cluster_by_name(result, name)
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
        return Leg(NC, why, [route_origin] if route_origin else [], [])
    clayer.detail.update(cluster_summary(result, cluster))
    if name == BLACKHOLE:
        clayer.ok = False
        return Leg(BLACK, "REGISTRY_ONLY: traffic to a destination outside the registry goes to "
                   "BlackHoleCluster", [], [])
    if cluster.type == cluster_pb2.Cluster.ORIGINAL_DST:
        target = f"{ip}:{req.port}" if ip else f"{req.host}:{req.port}"
        t.endpoints.append({"cluster": name, "address": target, "health": "original destination"})
        t.layers.append(Layer("endpoint", target, req.port, {"note": "ORIGINAL_DST: the address the app connected to"}))
        if svc is not None and svc.registry == "Kubernetes" and ip == svc.vip and svc.port(req.port) is None:
            # The sidecar connects to VIP:port itself (uid 1337 is not captured again), and
            # kube-proxy has no rule for a port the Service does not expose.
            t.layers[-1].ok = False
            return Leg(UF, f"{svc.hostname} has no port {req.port}: the passthrough connection to its "
                       f"VIP {ip}:{req.port} finds no kube-proxy rule and fails",
                       [prov.from_resource(svc.resource, ("spec", "ports"), prov.REGISTRY)], [])
        return Leg(OK, "passthrough" if name == PASSTHROUGH else "original destination", [], [target])
    eps = endpoints_of(result, cluster)
    t.endpoints.extend(eps)
    usable = [e for e in eps if e["health"] in ("HEALTHY", "UNKNOWN")]
    elayer = Layer("endpoint", f"{len(usable)} of {len(eps)} usable", usable[0]["port"] if usable else None,
                   {"endpoints": eps})
    t.layers.append(elayer)
    if not usable:
        elayer.ok = False
        dr_origin = origin_of(result, "cluster", name, "metadata.filter_metadata.istio.subset")
        why = f"cluster {name} has no healthy endpoint"
        if key is not None and key.subset and eps == []:
            why += f": subset {key.subset!r} selects no pod of {key.host}"
        return Leg(UH, why, [o for o in (dr_origin or route_origin,) if o is not None], [])
    hosts = [f"{e['address']}:{e['port']}" for e in usable]
    if server is None:
        return Leg(OK, "routed", [], hosts)
    return _server_leg(result, t, cluster, usable[0], server, hosts)


def _server_leg(result: CompileResult, t: Trace, cluster: Any, ep: dict[str, Any], server: Server,
                hosts: list[str]) -> Leg:
    req = t.request
    srv = server(ep["address"])
    tls_origin = origin_of(result, "cluster", cluster.name, "transport_socket", "transport_socket_matches")
    client_origins = [tls_origin] if tls_origin is not None else []
    if srv is None:
        t.layers.append(Layer("inbound", "no sidecar", ep["port"],
                              {"note": "no sidecar at the endpoint (or not a pod in the input)"}))
        if ep["transport"] == "tls":
            t.layers[-1].ok = False
            return Leg(UF, f"TLS handshake fails: the client sends TLS to {ep['address']}:{ep['port']}, which "
                       "has no sidecar to terminate it", client_origins, hosts)
        return Leg(OK, "plaintext to a pod without a sidecar", [], hosts)
    alpn = list(ep["alpn"])
    if req.is_http and "istio" in alpn:
        # istio.alpn on the client's HCM rewrites the ALPN for HTTP upstreams.
        alpn = ["istio-h2", "istio", "h2"] if "h2" in alpn else ["istio-http/1.1", "istio", "http/1.1"]
    peer = Peer(ep["transport"] == "tls", bool(ep.get("client_cert")), alpn, "", req.is_http, req.http2,
                "mTLS" if ep.get("client_cert") else ("TLS" if ep["transport"] == "tls" else "plaintext"))
    r = match_inbound(srv, t, ep["address"], ep["port"], peer, client_side=True, req=req,
                      extra_origins=client_origins, client=result)
    if t.layers and t.layers[-1].layer == "inbound":
        t.layers[-1].detail["client_transport"] = ep["transport"]
    return Leg(r.verdict, r.reason, r.origins, hosts, sidecar=True,
               status=r.status if r.verdict in _ANSWERED_BY_SERVER else None)


def _legs_verdict(t: Trace, legs: list[Leg]) -> Leg | None:
    """The failing leg when every destination fails (None when at least one works)."""
    bad = [leg for leg in legs if leg.verdict != OK]
    if bad and len(bad) == len(legs):
        return bad[0]
    if bad:
        t.reason = "some destinations fail: " + "; ".join(b.reason for b in bad)
    return None


def _finish_tcp(t: Trace, legs: list[Leg]) -> Trace:
    failed = _legs_verdict(t, legs)
    if failed is not None:
        # BlackHoleCluster has no endpoints: Envoy logs UH for it
        flags = [failed.verdict] if failed.verdict != BLACK else ["UH"]
        if failed.verdict == UF:
            flags.append("URX")  # tcp_proxy: its connect attempts (1 by default) are exhausted
        return t.fail(failed.verdict, failed.reason, failed.origins, flags=flags)
    bad = sorted({leg.verdict for leg in legs if leg.verdict != OK})
    if bad:
        t.verdict = "partial:" + ",".join(bad)
        return t
    t.reason = t.reason or "routed"
    return t


def _connect_failure(leg: Leg, rp: Any) -> tuple[int | None, list[str], str, int]:
    """Status, flags, reason and attempts for a leg that fails before the upstream answers."""
    if leg.status is not None:
        # the server's sidecar answered (RBAC 403, JWT 401): the client relays it, no flag
        return leg.status, [], leg.reason, 1
    status = _STATUS.get(leg.verdict, 503)
    if leg.verdict == UF:
        cond = retriable_connect_failure(rp)
    elif leg.verdict == "UC":
        cond = retriable_reset(rp)
    else:
        cond = None
    limit = max_attempts(rp)
    flags = ["UH"] if leg.verdict == BLACK else [leg.verdict]  # BlackHoleCluster: no endpoints
    if cond is not None and limit > 1:
        shown = ",".join(sort_flags(["URX", *flags]))
        return status, ["URX", *flags], (f"{leg.reason}; retried {limit - 1} times (retry_on {cond}): "
                                         f"{status} {shown}"), limit
    return status, flags, leg.reason, 1


def _finish_http(t: Trace, legs: list[Leg], fault: Any, rp: Any, timeout: float,
                 route_origin: Origin | None) -> Trace:
    req = t.request
    failed = _legs_verdict(t, legs)
    base_origins: list[Origin] = [route_origin] if route_origin else []
    if failed is not None:
        status, flags, reason, attempts = _connect_failure(failed, rp)
        base = (failed.verdict, status, flags, reason, failed.origins, attempts)
    else:
        ok_legs = [leg for leg in legs if leg.verdict == OK]
        hosts = ok_legs[0].hosts if ok_legs else []
        rr = run_router(req, rp, timeout, hosts, server_sidecar=bool(ok_legs and ok_legs[0].sidecar))
        if req.upstream_status is not None or req.upstream_delay or req.upstream_reset:
            t.layers.append(Layer("upstream", f"{rr.status} after {rr.attempts} attempt(s)", None,
                                  {"attempts": rr.log, "route_timeout": fmt_seconds(timeout) if timeout else "none",
                                   "retry_policy": rp.retry_on if rp is not None else None},
                                  ok=not rr.flags))
        verdict = _deciding(rr.flags)
        reason = rr.reason if (rr.flags or rr.status != 200) else (t.reason or "routed")
        key = "timeout" if "UT" in rr.flags and rr.reason.startswith("the route timeout") else "retries"
        base = (verdict, rr.status, rr.flags, reason, _rule_origin(route_origin, key) if rr.flags else [],
                rr.attempts)
    outcomes = _fault_outcomes(fault, base, t, _rule_origin(route_origin, "fault"))
    best = max(outcomes, key=lambda o: o[0])
    prob, (verdict, status, flags, reason, origins, attempts) = best
    t.attempts = attempts
    if len(outcomes) > 1:
        t.outcomes = [Outcome(p, o[0], o[1], sort_flags(o[2]), o[3]) for p, o in outcomes]
    if verdict != OK:
        t.fail(verdict, reason, origins or base_origins, status=status, flags=flags)
        if verdict == DI:
            t.layers[-1].ok = True
            for x in t.layers:
                if x.layer == "fault":
                    x.ok = False
    else:
        t.status, t.flags, t.reason = status, sort_flags(flags), reason
        bad = sorted({leg.verdict for leg in legs if leg.verdict != OK})
        if bad:
            # some weighted destinations fail (the share is in `clusters`)
            t.verdict = "partial:" + ",".join(bad)
            t.reason = "some destinations fail: " + "; ".join(leg.reason for leg in legs if leg.verdict != OK)
    if len(outcomes) > 1:
        t.reason += f" (probability {prob:.0%}; see outcomes)"
    return t


def _rule_origin(route_origin: Origin | None, key: str) -> list[Origin]:
    """``.spec.http[i].KEY`` of the VirtualService rule behind the route, when it is written
    there (else the rule itself)."""
    if route_origin is None or route_origin.resource is None:
        return []
    f = route_origin.field
    doc = route_origin.doc
    if len(f) >= 3 and f[:2] == ("spec", "http") and doc is not None:
        rules = (doc.data.get("spec") or {}).get("http") or []
        i = f[2]
        if isinstance(i, int) and i < len(rules) and isinstance(rules[i], dict) and key in rules[i]:
            return [Origin(route_origin.rule, route_origin.resource, (*f[:3], key), doc)]
    return [route_origin]


def _fault_outcomes(fault: Any, base: tuple[Any, ...], t: Trace,
                    fault_origins: list[Origin]) -> list[tuple[float, tuple[Any, ...]]]:
    """The fault filter's delay and abort, each with its probability, ahead of the router."""
    if fault is None or not (fault.HasField("delay") or fault.HasField("abort")):
        return [(1.0, base)]
    summary = fault_summary(fault)
    pd = summary["delay"]["probability"] if "delay" in summary else 0.0
    pa = summary["abort"]["probability"] if "abort" in summary else 0.0
    delay = seconds(fault.delay.fixed_delay) if "delay" in summary else 0.0
    out: dict[tuple[Any, ...], float] = {}
    keys: dict[tuple[Any, ...], tuple[Any, ...]] = {}
    verdict, status, flags, reason, origins, attempts = base
    for delayed, p1 in ((True, pd), (False, 1 - pd)):
        for aborted, p2 in ((True, pa), (False, 1 - pa)):
            p = p1 * p2
            if p <= 0:
                continue
            pre = [DI] if delayed else []
            note = f"the fault filter delays the request {fmt_seconds(delay)} (DI); " if delayed else ""
            if aborted:
                a = fault.abort
                code = a.http_status if a.WhichOneof("error_type") == "http_status" else 200
                grpc = f" with grpc-status {a.grpc_status}" if a.WhichOneof("error_type") == "grpc_status" else ""
                o = (FI, code, [*pre, FI], f"{note}the fault filter aborts the request: {code}{grpc} FI "
                     "(no upstream is contacted)", fault_origins, 0)
            elif delayed:
                v = verdict if verdict != OK else DI
                o = (v, status, [*pre, *flags], note + reason + (
                    "; the route timeout starts at the router, after the delay" if verdict == OK else ""),
                    origins if verdict != OK else fault_origins, attempts)
            else:
                o = base
            k = (o[0], o[1], tuple(sort_flags(o[2])))
            out[k] = out.get(k, 0.0) + p
            keys.setdefault(k, o)
    return [(p, keys[k]) for k, p in out.items()]


__all__ = ["NXDOMAIN", "Request", "Trace", "simulate"]
