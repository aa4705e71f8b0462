"""RDS for a gateway proxy (`core/gateway.go:buildGatewayHTTPRouteConfig`).

Layer: L4. Imports: compiler.{route_translate,provenance,draft}, model.{gateways,scope}, xDS protos.

For each Server behind the route name (``http.PORT`` merges every plain-HTTP server on the port,
``https.PORT.NAME.GATEWAY.NS`` is one HTTPS server) and each VirtualService bound to that
Server's Gateway (`VirtualServicesForGateway`, oldest first):

* the vhost hostnames are the intersection of the Server hosts (for the VirtualService's
  namespace: `NamesForNamespace`) and the VirtualService hosts (`host.Names.Intersection`: the
  more specific of two overlapping names);
* the routes come from `BuildHTTPRoutesForVirtualService` on the Server's own port number, with
  the Gateway as the only gateway name (a VirtualService whose rules all fail to match adds nothing);
* several VirtualServices for one hostname merge into one vhost, oldest first (unlike sidecars,
  which keep only one);
* ``httpsRedirect`` sets ``require_tls: ALL`` on the Server's vhosts and adds one per Server host
  that has none;
* no vhost at all gives ``blackhole:PORT`` (domains ``*``, no routes: Envoy answers 404 NR);
* vhosts with the same routes are collapsed into one with all their domains
  (`collapseDuplicateRoutes`), routes are sorted with catch-alls last (`SortVHostRoutes`) and
  vhosts by name (`SortVirtualHosts`); ``ignore_port_in_host_matching`` is true, so the Host
  header's port never matters.
"""

from __future__ import annotations

from typing import Any

from envoy.config.route.v3 import route_components_pb2 as rc_pb2
from envoy.config.route.v3 import route_pb2

from meshlens.compiler import provenance as prov
from meshlens.compiler.draft import Built
from meshlens.compiler.provenance import Origin
from meshlens.compiler.route_translate import (
    RouteEnv,
    build_http_routes,
    hash_for_destination,
    is_catch_all,
)
from meshlens.compiler.routes import MAX_DIRECT_RESPONSE_BODY
from meshlens.model.gateways import GatewayServer, MergedGateway, names_for_namespace
from meshlens.model.scope import host_subset_of, more_specific

VS_RULE = "virtual-service"


def intersection(a: list[str], b: list[str]) -> list[str]:
    """`host.Names.Intersection`: for each overlapping pair, the one that is a subset of the other.

    Example:
        >>> intersection(["*.example.com"], ["a.example.com", "b.other.com"])
        ['a.example.com']
        >>> intersection(["*"], ["*"])
        ['*']
    """
    out: list[str] = []
    for x in a:
        for y in b:
            pick = x if host_subset_of(x, y) else (y if host_subset_of(y, x) else None)
            if pick is not None and pick not in out:
                out.append(pick)
    return out


class _VHost:
    __slots__ = ("name", "domains", "routes", "origins", "require_tls")

    def __init__(self, name: str, domains: list[str]) -> None:
        self.name = name
        self.domains = domains
        self.routes: list[tuple[rc_pb2.Route, Origin]] = []
        self.origins: dict[str, Origin] = {}
        self.require_tls = False


class GatewayRouteBuilder:
    def __init__(self, ctx: Any, merged: MergedGateway) -> None:
        self.ctx = ctx
        self.merged = merged
        self.scope = ctx.scope
        self.cache: dict[tuple[str, int], list[tuple[rc_pb2.Route, Origin]]] = {}
        retry = ctx.mesh.mesh_config.get("defaultHttpRetryPolicy")
        self.default_retry = retry if isinstance(retry, dict) else None

    def _hash_for(self, dst: dict[str, Any]) -> dict[str, Any] | None:
        dest = dst.get("destination") if isinstance(dst.get("destination"), dict) else {}
        svc = self.scope.service(str(dest.get("host") or ""))
        return hash_for_destination(self.ctx.rule_for(svc) if svc is not None else None, dest)

    def routes_for(self, vs: Any, s: GatewayServer) -> list[tuple[rc_pb2.Route, Origin]]:
        """`BuildHTTPRoutesForVirtualService` for one Gateway, cached per VirtualService."""
        key = (s.gateway_name, id(vs))  # gatewayRoutes[gatewayName][vskey], per route configuration
        if key not in self.cache:
            proxy = self.ctx.proxy
            env = RouteEnv(listener_port=s.number, proxy_labels=dict(proxy.labels),
                           proxy_namespace=proxy.namespace, lookup_service=self.scope.service,
                           lookup_hash=self._hash_for, default_retry=self.default_retry,
                           gateways=frozenset({s.gateway_name}), is_tls=s.tls is not None)
            out = []
            for t in build_http_routes(vs, env):
                src = vs.http_source(t.http_index)
                path = src.path + (("match", t.match_index) if t.match_index is not None else ())
                out.append((t.route, prov.from_resource(src.resource, path, VS_RULE,
                                                        f"bound to gateway {s.gateway_name}")))
            self.cache[key] = out
        return self.cache[key]

    def build(self, name: str) -> Built:
        servers = self.merged.servers_by_route.get(name)
        self.cache = {}
        rc = route_pb2.RouteConfiguration(name=name)
        rc.validate_clusters.value = False
        if not servers:
            # "Gateway missing for route": an empty configuration
            return Built(rc, {"": prov.default("no gateway server has this route name")})
        vhosts: dict[str, _VHost] = {}
        for s in servers:
            redirect = bool((s.tls or {}).get("httpsRedirect"))
            for vs in self.scope.vs_index.for_namespace(self.ctx.proxy.namespace, s.gateway_name):
                hosts = intersection(names_for_namespace(s.hosts, vs.namespace), vs.hosts)
                if not hosts:
                    continue
                routes = self.routes_for(vs, s)
                if not routes:
                    continue  # "no routes matched": the VirtualService is skipped
                for h in hosts:
                    h = h.lower()
                    vh = vhosts.get(h)
                    if vh is None:
                        vh = vhosts[h] = _VHost(f"{h}:{s.number}", [h])
                        vh.origins[""] = prov.from_resource(
                            vs.resource, ("spec", "hosts"), VS_RULE,
                            f"host {h}: VirtualService hosts ∩ {s.gateway_name} server hosts")
                    vh.routes.extend(routes)
                    if redirect:
                        vh.require_tls = True
            if redirect:
                for h in s.hosts:
                    h = h.lower()
                    if h in vhosts:
                        vhosts[h].require_tls = True
                        continue
                    vh = vhosts[h] = _VHost(f"{h}:{s.number}", [h])
                    vh.require_tls = True
                    vh.origins[""] = prov.from_resource(s.gateway, s.path + ("tls", "httpsRedirect"),
                                                        "gateway", "httpsRedirect: 301 to https")
        built = Built(rc)
        if not vhosts:
            port = servers[0].number
            vh = rc.virtual_hosts.add(name=f"blackhole:{port}", domains=["*"])
            built.set("virtual_hosts[0]", prov.from_resource(
                servers[0].gateway, servers[0].path, "gateway",
                "no VirtualService bound to this server matches its hosts: every request gets 404 NR"))
        else:
            ordered = sorted(self._collapse(vhosts).values(), key=lambda v: v.name)
            for i, v in enumerate(ordered):
                rvh = rc.virtual_hosts.add(name=v.name, domains=v.domains,
                                           include_request_attempt_count=True)
                if v.require_tls:
                    rvh.require_tls = rc_pb2.VirtualHost.ALL
                routes = [r for r in v.routes if not is_catch_all(r[0])] + \
                         [r for r in v.routes if is_catch_all(r[0])]
                for j, (r, origin) in enumerate(routes):
                    rvh.routes.append(r)
                    built.set(f"virtual_hosts[{i}].routes[{j}]", origin)
                for rel, origin in v.origins.items():
                    built.set(f"virtual_hosts[{i}]" + (f".{rel}" if rel else ""), origin)
        rc.ignore_port_in_host_matching = True
        rc.max_direct_response_body_size_bytes.value = MAX_DIRECT_RESPONSE_BODY
        return built

    @staticmethod
    def _collapse(vhosts: dict[str, _VHost]) -> dict[str, _VHost]:
        """`collapseDuplicateRoutes`: identical route lists (the same routes, by identity) share
        one vhost, the most specific hostname first (`host.Names` order)."""
        from functools import cmp_to_key

        keys = sorted(vhosts, key=cmp_to_key(lambda a, b: -1 if more_specific(a, b) else 1))
        out: dict[str, _VHost] = {}
        known: dict[tuple[int, ...], str] = {}
        for h in keys:
            vh = vhosts[h]
            ident = tuple(id(r) for r, _ in vh.routes)
            first = known.get(ident)
            if first is not None and out[first].require_tls == vh.require_tls:
                out[first].domains.extend(vh.domains)
            else:
                known[ident] = h
                out[h] = vh
        return out


def build_gateway_route_configs(ctx: Any, names: list[str]) -> list[Built]:
    """The gateway's RouteConfigurations for the RDS names its listeners ask for, by name."""
    merged = getattr(ctx, "gateway", None)
    if merged is None:
        return []
    builder = GatewayRouteBuilder(ctx, merged)
    out = [builder.build(n) for n in dict.fromkeys(names)]
    out.sort(key=lambda b: b.message.name)
    return out
