"""LDS for a gateway proxy (`core/gateway.go:buildGatewayListeners`).

Layer: L4. Imports: compiler.{filters,listeners,inbound_tls,provenance,draft,gateway.tls},
model.{gateways,protocol}, xDS protos.

One listener per merged server port, ``BIND_PORT`` (``0.0.0.0_8080``: the port after
`resolvePorts`' targetPort translation), bound to the port (gateways have no iptables capture):

* an HTTP port: one filter chain, the gateway HCM (`buildGatewayConnectionManager`:
  ``use_remote_address``, ``server_name: istio-envoy``, XFCC ``SANITIZE_SET`` with
  ``set_current_client_cert_details``, an empty ``http_protocol_options``) asking RDS for
  ``http.PORT``;
* HTTPS/TLS ports: per server (`buildGatewayTCPBasedFilterChains`), an HCM chain with the server's
  TLS context and its SNI hosts for an HTTPS server that terminates TLS (RDS
  ``https.PORT.NAME.GATEWAY.NS``, stat prefix the server's ``name``), a ``tcp_proxy`` chain for a
  TCP/TLS server from the first matching VirtualService ``tcp`` route (`buildGatewayNetworkFiltersFromTCPRoutes`),
  one SNI chain per VirtualService ``tls`` match for PASSTHROUGH (`buildGatewayNetworkFiltersFromTLSRoutes`);
* the TLS inspector when a chain matches SNI or offers ALPN (`buildGatewayListener`);
* a listener whose servers produce no chain is left out, as istiod omits it.

istiod builds the listeners in Go map order; meshlens sorts them by name, as for sidecars.
QUIC listeners are not built (PILOT_ENABLE_QUIC_LISTENERS is off by default).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from envoy.config.core.v3 import base_pb2
from envoy.config.listener.v3 import listener_components_pb2 as lc_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from google.protobuf import struct_pb2

from meshlens.compiler import filters as flt
from meshlens.compiler import provenance as prov
from meshlens.compiler.draft import Built
from meshlens.compiler.gateway.tls import build_server_tls
from meshlens.compiler.inbound_tls import downstream_socket
from meshlens.compiler.listeners import Chain, OutboundBuilder
from meshlens.compiler.provenance import Origin
from meshlens.model import protocol
from meshlens.model.gateways import (
    GatewayServer,
    MergedGateway,
    is_https_terminating,
    is_passthrough,
)
from meshlens.model.registry import ServicePort
from meshlens.compiler.names import sni_name
from meshlens.model.scope import host_overlaps, host_subset_of

WILDCARD = "0.0.0.0"
GATEWAY_RULE = "gateway"
#: features.GatewayTransportSocketConnectTimeout
TRANSPORT_SOCKET_CONNECT_TIMEOUT_S = 15


@dataclass(slots=True)
class GwChain:
    """`filterChainOpts` for one gateway chain."""

    origin: Origin
    rds: str = ""  # an HCM chain when set
    stat_prefix: str = ""
    sni: list[str] = field(default_factory=list)
    tls: Any = None  # DownstreamTlsContext
    alpn: list[str] = field(default_factory=list)
    filters: list[lc_pb2.Filter] = field(default_factory=list)
    metadata: str = ""


def server_origin(s: GatewayServer, note: str = "") -> Origin:
    return prov.from_resource(s.gateway, s.path, GATEWAY_RULE, note)


def pick_matching_hosts(server_hosts: list[str], vs: Any) -> dict[str, str]:
    """`pickMatchingGatewayHosts`: VirtualService host → the Server host it matched."""
    out: dict[str, str] = {}
    for vh in vs.hosts:
        for gh in server_hosts:
            match = gh
            if "/" in gh:
                ns, _, match = gh.partition("/")
                if ns != vs.namespace:
                    continue
            if host_overlaps(match, vh):
                out[vh] = gh
    return out


def _l4_match(m: dict[str, Any], s: GatewayServer, gateway: str) -> bool:
    """`l4SingleMatch`: the match's port (if any) is the server port, its gateways include ours."""
    port = int(m.get("port") or 0)
    gws = [str(g) for g in m.get("gateways") or []]
    return (port == 0 or port == s.number) and (not gws or gateway in gws)


def _vs_meta(vs: Any) -> str:
    return f"/apis/networking.istio.io/v1/namespaces/{vs.namespace}/virtual-service/{vs.name}"


class GatewayListenerBuilder:
    """Builds the listeners of one gateway proxy."""

    def __init__(self, ctx: Any, merged: MergedGateway) -> None:
        self.ctx = ctx
        self.merged = merged
        self.mesh = ctx.mesh.mesh_config
        self.ob = OutboundBuilder(ctx)
        self.sni_by_port: dict[int, dict[str, str]] = {}

    def vss_for(self, gateway: str) -> list[Any]:
        """`PushContext.VirtualServicesForGateway` for the proxy's namespace."""
        return self.ctx.scope.vs_index.for_namespace(self.ctx.proxy.namespace, gateway)

    # -- chains -----------------------------------------------------------------------------------
    def http_chain(self, s: GatewayServer, rds: str, *, tls: bool) -> GwChain:
        """`createGatewayHTTPFilterChainOpts`."""
        if not tls:
            return GwChain(server_origin(s, f"HTTP server on port {s.number}: route {rds}"), rds=rds)
        return GwChain(server_origin(s, f"HTTPS server terminating TLS: route {rds}"), rds=rds,
                       stat_prefix=s.stat_name, sni=list(s.sni_hosts),
                       tls=build_server_tls(s, mesh=self.mesh, options=self.ctx.options))

    def tcp_route_filters(self, s: GatewayServer, routes: list[Any], vs: Any) -> list[lc_pb2.Filter]:
        """`buildOutboundNetworkFilters` for a route list, on the server's port."""
        sp = ServicePort(s.port_name, s.number, s.protocol)
        first = next((r for r in routes if isinstance(r, dict) and isinstance(r.get("destination"), dict)), None)
        svc = self.ctx.scope.service(str(first["destination"].get("host", ""))) if first else None
        return self.ob.route_filters(svc, sp, s.number, routes, vs)

    def tcp_chains(self, s: GatewayServer) -> list[GwChain]:
        """`createGatewayTCPFilterChainOpts`."""
        gateway = s.gateway_name
        if s.tls is None or not is_passthrough(s):
            for vs in self.vss_for(gateway):
                if not pick_matching_hosts(s.hosts, vs):
                    continue
                for ri, tcp in enumerate(vs.spec.get("tcp") or []):
                    if not isinstance(tcp, dict):
                        continue
                    matches = [m for m in tcp.get("match") or [] if isinstance(m, dict)]
                    if (not matches or any(_l4_match(m, s, gateway) for m in matches)) and tcp.get("route"):
                        origin = prov.from_resource(vs.resource, ("spec", "tcp", ri), "virtual-service",
                                                    f"tcp route bound to {gateway}")
                        chain = GwChain(origin, filters=self.tcp_route_filters(s, tcp["route"], vs),
                                        metadata=_vs_meta(vs))
                        if s.tls is not None:
                            chain.sni = list(s.sni_hosts)
                            chain.tls = build_server_tls(s, mesh=self.mesh, options=self.ctx.options,
                                                         tcp_terminating=True)
                        return [chain]
            return []
        if s.tls_mode == "AUTO_PASSTHROUGH":
            return self.auto_passthrough_chains(s)
        out: list[GwChain] = []
        known = self.sni_by_port.setdefault(s.number, {})
        for vs in self.vss_for(gateway):
            if not pick_matching_hosts(s.hosts, vs):
                continue
            for ri, tls in enumerate(vs.spec.get("tls") or []):
                if not isinstance(tls, dict) or not tls.get("route"):
                    continue
                for mi, m in enumerate(tls.get("match") or []):
                    if not isinstance(m, dict) or not _l4_match(m, s, gateway):
                        continue
                    snis = [str(h) for h in m.get("sniHosts") or []]
                    if [h for h in snis if known.get(h) == s.bind]:
                        continue  # CheckDuplicates: Envoy would reject two chains with one SNI
                    for h in snis:
                        known[h] = s.bind
                    origin = prov.from_resource(vs.resource, ("spec", "tls", ri, "match", mi),
                                                "virtual-service", f"tls route bound to {gateway}")
                    out.append(GwChain(origin, sni=snis, filters=self.tcp_route_filters(s, tls["route"], vs),
                                       metadata=_vs_meta(vs)))
        return out

    def auto_passthrough_chains(self, s: GatewayServer) -> list[GwChain]:
        """`builtAutoPassthroughFilterChains`: per service port (and DestinationRule subset) whose
        hostname is within a server host, a chain matching SNI ``outbound_.PORT_.SUBSET_.HOST`` and
        Istio's mTLS ALPNs, proxying to the SNI-DNAT cluster of that name."""
        out: list[GwChain] = []
        for svc in self.ctx.scope.services:
            if svc.mesh_external or not any(host_subset_of(svc.hostname, h) for h in s.sni_hosts):
                continue
            rule = self.ctx.rule_for(svc)
            for port in svc.ports:
                if port.protocol == protocol.UDP:
                    continue
                for subset in [""] + [sub.name for sub in (rule.subsets if rule else [])]:
                    name = sni_name("outbound", port.port, subset, svc.hostname)
                    out.append(GwChain(server_origin(s, f"AUTO_PASSTHROUGH to {svc.hostname}:{port.port}"),
                                       sni=[name], alpn=list(flt.ALPN_ALL_ISTIO),
                                       filters=self.ob.tcp_filters(svc, port, name, subset, stat=name)))
        return out

    # -- assembly ---------------------------------------------------------------------------------
    def hcm(self, chain: GwChain, listener_name: str, port_proto: str) -> lc_pb2.Filter:
        """`buildGatewayConnectionManager` + `buildHTTPConnectionManager` (class gateway)."""
        f = self.ob.hcm_filter(Chain("http", rds=chain.rds), listener_name, port_proto)
        h = hcm_pb2.HttpConnectionManager()
        f.typed_config.Unpack(h)  # the outbound HCM (same filters: class gateway is not inbound)
        if chain.stat_prefix:
            h.stat_prefix = chain.stat_prefix
        h.use_remote_address.value = True
        h.server_name = "istio-envoy"
        h.forward_client_cert_details = hcm_pb2.HttpConnectionManager.SANITIZE_SET
        cc = h.set_current_client_cert_details
        cc.subject.value, cc.cert, cc.dns, cc.uri = True, True, True, True
        h.http_protocol_options.SetInParent()
        return flt.network_filter(flt.HCM, h)

    def filter_chain(self, chain: GwChain, listener_name: str, port_proto: str) -> lc_pb2.FilterChain:
        """`buildGatewayListener`'s chain: match (`toFilterChainMatch`), TLS socket, filters."""
        fc = lc_pb2.FilterChain()
        if chain.sni and "*" not in chain.sni:
            fc.filter_chain_match.server_names.extend(sorted(chain.sni))
        if chain.alpn:
            fc.filter_chain_match.application_protocols.extend(chain.alpn)
        if chain.tls is not None:
            fc.transport_socket.CopyFrom(downstream_socket(chain.tls))
        fc.transport_socket_connect_timeout.seconds = TRANSPORT_SOCKET_CONNECT_TIMEOUT_S
        if chain.metadata:
            fc.metadata.filter_metadata["istio"].CopyFrom(struct_pb2.Struct(
                fields={"config": struct_pb2.Value(string_value=chain.metadata)}))
        fc.filters.extend([self.hcm(chain, listener_name, port_proto)] if chain.rds else chain.filters)
        return fc

    def build(self) -> list[Built]:
        """`buildGatewayListeners`."""
        by_name: dict[str, tuple[int, str, str, list[GwChain]]] = {}
        for sp in self.merged.server_ports:
            ms = self.merged.merged.get(sp)
            if ms is None:
                continue
            bind = sp.bind or WILDCARD
            name = f"{bind}_{sp.number}"
            proto = protocol.parse(sp.protocol)
            chains: list[GwChain] = []
            if protocol.is_http(proto):
                chains.append(self.http_chain(ms.servers[0], ms.route_name, tls=False))
            else:
                for s in ms.servers:
                    if is_https_terminating(s):
                        chains.append(self.http_chain(s, s.route_name, tls=True))
                    else:
                        chains.extend(self.tcp_chains(s))
            if name in by_name:
                by_name[name][3].extend(chains)
            else:
                by_name[name] = (sp.number, bind, proto, chains)
        out = []
        for name in sorted(by_name):
            port, bind, proto, chains = by_name[name]
            if chains:  # `MutableGatewayListener.build`: no chain, no listener
                out.append(self.assemble(name, bind, port, proto, chains))
        return out

    def assemble(self, name: str, bind: str, port: int, proto: str, chains: list[GwChain]) -> Built:
        lst = listener_pb2.Listener(name=name)
        lst.address.socket_address.address = bind
        lst.address.socket_address.port_value = port
        lst.traffic_direction = base_pb2.OUTBOUND
        built = Built(lst)
        built.set("address", chains[0].origin)
        if any(c.sni or (c.tls is not None and c.tls.common_tls_context.alpn_protocols) for c in chains):
            lst.listener_filters.append(flt.tls_inspector())
            built.set("listener_filters", prov.default("TLS inspector: a chain matches SNI or offers ALPN"))
        for i, c in enumerate(chains):
            lst.filter_chains.append(self.filter_chain(c, name, proto))
            built.set(f"filter_chains[{i}]", c.origin)
        lst.max_connections_to_accept_per_socket_event.value = 1
        for log in flt.access_logs(self.mesh, nr_only=True):
            lst.access_log.append(log)
        return built


def build_gateway_listeners(ctx: Any) -> list[Built]:
    """The gateway's listeners, or none when no Gateway selects the proxy."""
    merged = getattr(ctx, "gateway", None)
    if merged is None:
        return []
    return GatewayListenerBuilder(ctx, merged).build()
