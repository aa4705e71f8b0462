"""Trace a request arriving at a gateway proxy (router mode).

Layer: L6 (above simulate, which it drives). Imports: simulate, compiler, model.gateways.

A gateway has no iptables capture: the client connects to the gateway Service's port, kube-proxy
sends it to the targetPort, and Envoy's listener on that port (``0.0.0.0_8080`` for Service port
80 of Istio's ingress gateway) takes it. From there on the request follows the same matching as
a sidecar's (:func:`meshlens.simulate.simulate`): filter chain by SNI for https/tls, the HCM's
route configuration (``http.PORT`` or ``https.PORT.NAME.GATEWAY.NS``), the virtual host by
Host header (its port ignored: the gateway's route configurations set
``ignore_port_in_host_matching``), the route, the cluster, its endpoints and the server sidecar.

Verdicts beyond the sidecar's: ``refused`` (no listener on the target port: no Gateway server
resolves to it, so the TCP connection is refused), and 404 ``NR`` with the reason a gateway gives
(the ``blackhole:PORT`` virtual host of a server no VirtualService is bound to, or a host that
no bound VirtualService serves).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from meshlens.compiler import CompileResult
from meshlens.model.gateways import proxy_service_targets
from meshlens.simulate import NR, Layer, Request, Trace, simulate

REFUSED = "refused"


def listener_port(result: CompileResult, port: int) -> tuple[int, str]:
    """The port Envoy sees for a request to ``port``, and how it got there.

    A Service port of the gateway pod → its targetPort (kube-proxy); any other port is taken as
    the pod's own port.
    """
    for t in proxy_service_targets(result.mesh.registry, result.proxy.workload):
        if t.port.port == port:
            return t.target_port, (f"Service {t.service.namespace}/{t.service.name} port {port} "
                                   f"→ targetPort {t.target_port} (kube-proxy)")
    return port, f"port {port}: no Service port of the gateway pod; sent to the pod's port as is"


def _gateway_note(result: CompileResult, t: Trace, port: int) -> None:
    """Explain a 404 NR the way the gateway's config causes it."""
    route = next((x for x in t.layers if x.layer == "route"), None)
    vh = route.detail.get("virtual_host", "") if route is not None else ""
    if vh.startswith("blackhole:"):
        merged = getattr(result, "gateway", None)
        servers = [s for srv in (merged.servers_by_route.values() if merged else []) for s in srv
                   if s.route_name == route.name.split(" / ")[0]] if route is not None else []
        which = ", ".join(sorted({s.gateway_name for s in servers})) or "its Gateway"
        t.reason = (f"404 NR: no VirtualService is bound to {which} for any host of this server "
                    f"(route {route.name.split(' / ')[0]} has only the blackhole:{port} virtual host)")
    elif t.reason.startswith("no virtual host"):
        t.reason += ": no VirtualService bound to this gateway serves that host"


def simulate_gateway(result: CompileResult, req: Request, *,
                     server: Callable[[str], CompileResult | None] | None = None) -> Trace:
    """Trace ``req`` sent to the gateway of ``result`` at the request's port."""
    lport, how = listener_port(result, req.port)
    listeners = [lst for lst in result.listeners_on(lport)
                 if lst.address.socket_address.port_value == lport]
    entry = Layer("gateway", f"{result.proxy.name}.{result.proxy.namespace}", lport,
                  {"entry": how, "listener": listeners[0].name if listeners else None,
                   "host": req.headers.get("host") or req.authority, "sni": req.host
                   if req.scheme in ("https", "tls") else None})
    if not listeners:
        t = Trace(req, [entry])
        known = sorted(lst.name for lst in result.all_listeners())
        return t.fail(REFUSED, f"no listener on port {lport} (listeners: {', '.join(known) or 'none'}): "
                               "no Gateway server resolves to this port; the connection is refused")
    headers = dict(req.headers)
    headers.setdefault("host", req.authority)
    inner = replace(req, port=lport, headers=headers)
    t = simulate(result, inner, server=server)
    t.request = req
    if t.layers and t.layers[0].layer == "capture":
        t.layers[0] = entry
    else:
        t.layers.insert(0, entry)
    if t.verdict == NR:
        _gateway_note(result, t, lport)
    return t
