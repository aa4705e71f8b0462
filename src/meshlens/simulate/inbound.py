"""The inbound side: a connection arriving at a sidecar's ``virtualInbound`` (15006), from
another sidecar (the server leg of an outbound trace) or from any peer (``trace --inbound``).

Layer: L5. Imports: compiler, simulate.{types,dns,listener,http,upstream}, xDS protos.

The outcome contract: no listener → ``NR`` without a listener layer; no matching filter chain →
``NR`` with the listener layer not ok (seen from a client sidecar: ``UC``, the server closes the
connection); two chains matching alike → ``NR`` "multiple filter chains"; TLS bytes on a
plaintext HTTP chain → ``DPE``; a TLS or mTLS handshake that cannot succeed → ``UF`` with a
reason starting "TLS" or "mTLS"; ``require_tls`` on the virtual host → 301. The fix names the
PeerAuthentication (and the client's DestinationRule TLS block) with file:line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2
from envoy.extensions.transport_sockets.tls.v3 import tls_pb2

from meshlens.compiler import CompileResult
from meshlens.compiler.provenance import Origin
from meshlens.simulate.dns import captured_inbound, lookup
from meshlens.simulate.http import route_matches, select_virtual_host
from meshlens.simulate.listener import candidate_chains, client_conn, listener_for, network_filter
from meshlens.simulate.types import BLACK, DPE, NR, OK, UC, UF, Layer, Request, Trace, origin_dict
from meshlens.simulate.upstream import origin_of

VIRTUAL_INBOUND = "virtualInbound"


@dataclass(slots=True)
class Peer:
    """What the connecting side sends."""

    tls: bool
    client_cert: bool
    alpn: list[str]
    sni: str = ""
    http: bool = True
    http2: bool = False
    label: str = "plaintext"


@dataclass(slots=True)
class InboundResult:
    verdict: str
    reason: str
    origins: list[Origin] = field(default_factory=list)
    status: int | None = None


def peer_of(req: Request) -> Peer:
    """``--peer``, ``--alpn``, ``--sni``, ``--http2`` as the peer's ClientHello and bytes."""
    http = req.is_http
    if req.peer == "mtls":
        default = ["istio-h2" if req.http2 else "istio-http/1.1"] if http else ["istio"]
        return Peer(True, True, req.alpn if req.alpn is not None else default, req.sni or "",
                    http, req.http2, "mTLS")
    if req.peer == "tls" or req.scheme in ("https", "tls"):
        sni = req.sni if req.sni is not None else (req.host if req.scheme in ("https", "tls") else "")
        return Peer(True, False, req.alpn or [], sni, http, req.http2, "TLS")
    return Peer(False, False, [], "", http, req.http2, "plaintext")


def _pa_origins(srv: CompileResult, listener: Any, port: int) -> list[Origin]:
    """The PeerAuthentication(s) that shaped the server's chains for ``port`` (the chains bound
    to that port, else the catch-all ones)."""
    by_port: dict[bool, list[Origin]] = {True: [], False: []}
    origins = srv.provenance.of("listener", listener.name)
    for i, chain in enumerate(listener.filter_chains):
        o = origins.get(f"filter_chains[{i}]")
        if o is None or o.resource is None or o.resource.kind != "PeerAuthentication":
            continue
        fcm = chain.filter_chain_match
        exact = fcm.HasField("destination_port") and fcm.destination_port.value == port
        if (exact or not fcm.HasField("destination_port")) and all(
                (o.resource, o.field) != (x.resource, x.field) for x in by_port[exact]):
            by_port[exact].append(o)
    return by_port[True] or by_port[False]


def _downstream_tls(chain: Any) -> Any | None:
    if not chain.HasField("transport_socket"):
        return None
    ts = chain.transport_socket
    if not ts.typed_config.Is(tls_pb2.DownstreamTlsContext.DESCRIPTOR):
        return None
    ctx = tls_pb2.DownstreamTlsContext()
    ts.typed_config.Unpack(ctx)
    return ctx


def match_inbound(srv: CompileResult, t: Trace, ip: str, port: int, peer: Peer, *,
                  client_side: bool, req: Request, extra_origins: list[Origin] | None = None,
                  client: CompileResult | None = None) -> InboundResult:
    """Match a connection to ``ip:port`` against the server's ``virtualInbound`` and its chain."""
    vi = srv.listener(VIRTUAL_INBOUND)
    label = f"{srv.proxy.name}.{srv.proxy.namespace}"
    if vi is None:
        lst, _ = listener_for(srv.listeners_on(port), ip, port)
        if lst is None:
            return InboundResult(NR, f"{label} has no listener for {ip}:{port}")
        vi = lst
    conn = client_conn(vi, ip, port, tls=peer.tls, sni=peer.sni, alpn=peer.alpn, http=peer.http,
                       http2=peer.http2)
    layer = Layer("inbound", f"{label} {vi.name}", port,
                  {"peer": peer.label, "seen_as": conn.transport, "alpn": conn.alpn, "sni": conn.sni or None})
    t.layers.append(layer)
    pa = _pa_origins(srv, vi, port)
    origins = [*(extra_origins or []), *pa]
    chains = candidate_chains(vi, conn)
    if len(chains) > 1:
        layer.ok = False
        return InboundResult(NR, f"multiple filter chains of {vi.name} match {conn.transport} on port {port}: "
                             + ", ".join(c.name or f"filter_chains[{i}]" for i, c in chains), origins)
    if not chains:
        layer.ok = False
        modes = "; ".join(o.note for o in pa if o.note) or "no PeerAuthentication: PERMISSIVE"
        what = f"{'TLS' if conn.transport == 'tls' else 'plaintext'}" + (
            f" with ALPN {conn.alpn}" if conn.alpn else "")
        why = f"no filter chain of {label} {vi.name} matches {what} on port {port} ({modes})"
        if client_side:
            return InboundResult(UC, f"the server's sidecar has no filter chain for {conn.transport} on "
                                 f"port {port} ({modes}): it closes the connection", origins, 503)
        return InboundResult(NR, why, origins)
    i, chain = chains[0]
    layer.detail["filter_chain"] = chain.name or f"filter_chains[{i}]"
    dtls = _downstream_tls(chain)
    layer.detail["server_tls"] = dtls is not None
    chain_origin = origin_of(srv, "listener", vi.name, f"filter_chains[{i}]")
    if chain_origin is not None:
        layer.detail["origin"] = origin_dict(chain_origin)
    hcm = network_filter(chain, hcm_pb2.HttpConnectionManager)
    tcp = network_filter(chain, tcp_proxy_pb2.TcpProxy)
    if peer.tls and conn.transport != "tls" and dtls is None:
        layer.ok = False
        if client_side:
            # The server's sidecar logs DPE; the client's handshake reads its plaintext 400.
            return InboundResult(UF, f"TLS handshake fails: the client sends TLS to port {port}, where the "
                                 f"server's chain {layer.detail['filter_chain']} is plaintext (the server "
                                 "answers 400 DPE in plaintext)", origins)
        if hcm is not None:
            return InboundResult(DPE, f"the peer sends TLS to port {port}, where the server does not look for "
                                 f"TLS (TLS inspector off) and chain {layer.detail['filter_chain']} is plaintext "
                                 "HTTP: the codec sees a ClientHello, 400 DPE", origins, 400)
        return InboundResult(UF, f"TLS handshake fails: port {port} is plaintext TCP at the server; the "
                             "ClientHello goes to the app, which does not speak TLS", origins)
    if peer.tls and dtls is None:
        layer.ok = False
        if client_side:
            return InboundResult(UF, f"TLS handshake fails: the client sends TLS but the server's chain "
                                 f"{layer.detail['filter_chain']} on port {port} is plaintext "
                                 "(PeerAuthentication DISABLE?)", origins)
        return InboundResult(UF, f"TLS handshake fails: chain {layer.detail['filter_chain']} on port {port} "
                             "passes TLS through to the app, which does not speak TLS", origins)
    if not peer.tls and dtls is not None:
        layer.ok = False
        return InboundResult(UF, f"TLS expected: chain {layer.detail['filter_chain']} on port {port} "
                             "terminates TLS, but the peer sends plaintext", origins)
    if dtls is not None and dtls.require_client_certificate.value and not peer.client_cert:
        layer.ok = False
        return InboundResult(UF, f"mTLS required: the server on port {port} asks for a client certificate "
                             "(Istio mTLS) and the peer presents none", origins)
    denied = _authorize(srv, chain, i, client, req, ip, port, dtls is not None and peer.client_cert, layer)
    if denied is not None:
        return denied
    if hcm is not None:
        return _inbound_http(srv, t, layer, hcm, req, port)
    layer.detail["inbound_cluster"] = tcp.cluster if tcp is not None else None
    layer.detail["app_port"] = port
    if tcp is not None and tcp.cluster == "BlackHoleCluster":
        layer.ok = False
        return InboundResult(BLACK, f"chain {layer.detail['filter_chain']} sends port {port} to BlackHoleCluster "
                             "(a direct connection to the inbound capture port would loop)", origins)
    return InboundResult(OK, "routed")


def _authorize(srv: CompileResult, chain: Any, index: int, client: CompileResult | None, req: Request,
               ip: str, port: int, mtls: bool, layer: Layer) -> InboundResult | None:
    """The server's RBAC (and jwt_authn) decision on its chain (``compiler.authz.evaluate``):
    None when allowed or when the chain has no such filter."""
    from types import SimpleNamespace

    from meshlens.compiler.authz.evaluate import inbound_rbac

    if client is None:  # an inbound call: the peer's identity is not known (no client sidecar)
        client = SimpleNamespace(proxy=SimpleNamespace(ip="0.0.0.0", workload=SimpleNamespace(
            namespace="", service_account="")), mesh=None)
        mtls = False
    rbac = inbound_rbac(srv, chain, index, client, req, dest_ip=ip, dest_port=port, mtls=mtls)
    if rbac is None:
        return None
    layer.detail["rbac"] = rbac.detail
    if not rbac.denied:
        return None
    layer.ok = False
    return InboundResult(rbac.verdict, rbac.reason, [rbac.origin] if rbac.origin is not None else [],
                         rbac.status)


def _inbound_http(srv: CompileResult, t: Trace, layer: Layer, hcm: Any, req: Request,
                  port: int) -> InboundResult:
    rc = hcm.route_config if hcm.HasField("route_config") else None
    if rc is None:
        rds = hcm.rds.route_config_name
        rc = srv.route(rds)
    if rc is None:
        return InboundResult(NR, "the inbound HCM has no route configuration", status=404)
    vh, _ = select_virtual_host(rc, req.authority)
    if vh is None:
        layer.ok = False
        return InboundResult(NR, f"no virtual host of inbound route {rc.name!r} has domain {req.authority!r}",
                             status=404)
    headers = {":authority": req.authority, "host": req.authority, ":method": req.method,
               ":path": req.path, **req.headers}
    route = next((r for r in vh.routes if route_matches(r, req, headers)[0]), None)
    if route is None:
        layer.ok = False
        return InboundResult(NR, f"no route of inbound virtual host {vh.name!r} matches {req.path}", status=404)
    if vh.require_tls and not req.tls:
        layer.ok = False
        return InboundResult(OK, f"virtual host {vh.name} requires TLS (require_tls): a plaintext request "
                             "is redirected to https", status=301)
    target = route.route.cluster if route.WhichOneof("action") == "route" else None
    layer.detail.update({"virtual_host": vh.name, "inbound_cluster": target, "app_port": port})
    return InboundResult(OK, "routed")


def _target_port(svc: Any, port: int, wl: Any) -> int | None:
    sp = svc.port(port)
    if sp is None:
        return None
    tp = sp.target_port
    if isinstance(tp, str) and not tp.isdigit():
        return next((c.port for c in wl.container_ports if c.name == tp), None)
    return int(tp) if tp else port


def trace_inbound(result: CompileResult, req: Request) -> Trace:
    """``trace --inbound``: a connection from outside arriving at this proxy's pod."""
    t = Trace(req)
    wl = result.proxy.workload
    res = lookup(result, req.host)
    ip, port, how = res.ip, req.port, res.how
    svc = res.service
    if svc is not None and ip == getattr(svc, "vip", None):
        target = _target_port(svc, req.port, wl)
        if target is not None:
            how += f"; kube-proxy sends {ip}:{req.port} to pod {wl.ip}:{target}"
            ip, port = wl.ip, target
    t.layers.append(Layer("capture", "", port, {"destination": f"{ip or req.host}:{port}", "resolved": how}))
    if ip != wl.ip:
        return t.fail(NR, f"{req.host}:{req.port} does not reach pod {wl.name}.{wl.namespace} ({wl.ip}): "
                      "no listener of this proxy receives it")
    capture, why = captured_inbound(wl.annotations, port)
    t.layers[0].name = "15006" if capture else "not captured"
    t.layers[0].detail["iptables"] = why
    if not capture:
        t.reason = f"not captured by the sidecar ({why}): the app receives the connection directly"
        t.status = 200 if req.is_http else None
        return t
    r = match_inbound(result, t, ip, port, peer_of(req), client_side=False, req=req)
    if r.verdict != OK:
        t.fail(r.verdict, r.reason, r.origins, status=r.status,
               flags=["UH"] if r.verdict == BLACK else None)  # BlackHoleCluster has no endpoints
        if r.verdict == NR and r.status is None and req.is_http and "filter chain" not in r.reason:
            t.status = 404
        return t
    t.reason, t.status = r.reason, r.status if r.status is not None else (200 if req.is_http else None)
    if r.status == 301:
        t.layers[-1].ok = False
        t.fix = next((origin_dict(o) for o in r.origins), None)
    return t
