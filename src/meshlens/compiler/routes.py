"""RDS: the outbound RouteConfigurations a sidecar asks for, as istiod builds them.

Layer: L4. Imports: model, compiler.{draft,provenance,names,route_translate}, xDS protos.

`core/httproute.go`: `buildSidecarOutboundHTTPRouteConfig`, `BuildSidecarOutboundVirtualHosts`,
`selectVirtualServices`, `generateVirtualHostDomains`, `GenerateAltVirtualHosts`,
`dedupeDomains`, `getVirtualHostsForSniffedServicePort`, `mergeAllVirtualHosts`,
`buildCatchAllVirtualHost`; `core/route/route.go:BuildSidecarVirtualHostWrapper`,
`separateVSHostsAndServices`, `buildSidecarVirtualHostForService`.

Go map iteration in istiod (wrapper ports, default wrappers, port-0 merging) is replaced by
sorted order; the virtual host list is sorted by name in the end anyway.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from envoy.config.route.v3 import route_components_pb2 as rc_pb2
from envoy.config.route.v3 import route_pb2

from meshlens.compiler import provenance as prov
from meshlens.compiler.cache import RouteKey
from meshlens.compiler.draft import Built
from meshlens.compiler.names import BLACKHOLE, PASSTHROUGH, cluster_name
from meshlens.compiler.provenance import Origin
from meshlens.compiler.route_translate import (RouteEnv, build_http_routes, default_outbound_route,
                                               destination_cluster, gateway_semantics,
                                               hash_for_destination, hash_for_service)
from meshlens.model import protocol
from meshlens.model.registry import Service
from meshlens.model.scope import host_overlaps

HTTP_PROXY_ROUTE = "http_proxy"
UNIX_PREFIX = "unix://"
ALLOW_ANY = "allow_any"
BLOCK_ALL = "block_all"
ALLOW_ANY_DYNAMIC_DNS = "allow_any_dynamic_dns"
DYNAMIC_DNS_CLUSTER = "AllowAnyDynamicDNSCluster"
MAX_DIRECT_RESPONSE_BODY = 1024 * 1024
VS_RULE = "virtual-service"


@dataclass(slots=True)
class _Wrapper:
    """`VirtualHostWrapper`: one port's services/hosts sharing a route list."""

    port: int
    services: list[Service]
    vs_hosts: list[str]
    routes: list[rc_pb2.Route]
    origins: list[Origin]  # one per route
    vs: Any = None  # VirtualServiceView, None for a default wrapper
    hash_rule: Any = None  # the DestinationRule whose consistentHash a default route carries


@dataclass(slots=True)
class _VHost:
    vhost: rc_pb2.VirtualHost
    origins: dict[str, Origin] = field(default_factory=dict)  # relative to the vhost


def _join_host_port(host: str, port: int) -> str:
    """`net.JoinHostPort`."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _ipv6_compliant(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def extract_listener_port(name: str) -> tuple[int, bool, bool]:
    """`extractListenerPort` → (port, use_sniffing, parsed).

    Example:
        >>> extract_listener_port("9080"), extract_listener_port("reviews:9080")
        ((9080, False, True), (9080, True, True))
        >>> extract_listener_port("http_proxy")
        (0, False, False)
    """
    unix = name.startswith(UNIX_PREFIX)
    idx = name.find(":")
    rest = name if unix else name[idx + 1:]
    sniff = not unix and idx != -1
    digits = rest[1:] if rest[:1] in "+-" and len(rest) > 1 else rest
    if digits.isascii() and digits.isdigit():
        return int(rest), sniff, True
    return 0, sniff, False


# --- domains ------------------------------------------------------------------------------------

def _append_domain_port(domains: list[str], domain: str, port: int) -> None:
    domains.append(_ipv6_compliant(domain))
    if port:
        domains.append(_join_host_port(domain, port))


def _kube_alt_hosts(hostname: str, port: int, proxy_domain: str) -> list[str]:
    """`generateAltVirtualHostsForKubernetesService`."""
    before = proxy_domain.split(".svc.", 1)[0]
    ih = hostname.find(".svc.")
    if ih <= 0:
        return []
    ns = hostname.find(".")
    if ns + 1 >= len(hostname) or ns + 1 > ih:
        return []
    forms = ([hostname[:ns], hostname[:ih] + ".svc", hostname[:ih]] if hostname[ns + 1:ih] == before
             else [hostname[:ih], hostname[:ih] + ".svc"])
    out: list[str] = []
    for f in forms:
        _append_domain_port(out, f, port)
    return out


def generate_alt_virtual_hosts(hostname: str, port: int, proxy_domain: str) -> list[str]:
    """`GenerateAltVirtualHosts` with PILOT_ENABLE_ABSOLUTE_FQDN_VHOST_DOMAIN on.

    Example:
        >>> generate_alt_virtual_hosts("echo.default.svc.cluster.local", 0, "default.svc.cluster.local")
        ['echo.default.svc.cluster.local.', 'echo', 'echo.default.svc', 'echo.default']
        >>> generate_alt_virtual_hosts("foo.local.campus.net", 0, "remote.campus.net")
        ['foo.local.campus.net.', 'foo.local', 'foo.local.campus']
    """
    out: list[str] = []
    if not _is_ip(hostname):
        out.append(hostname + ".")
    if port:
        out.append(_join_host_port(hostname + ".", port))
    if ".svc." in proxy_domain:
        idx = proxy_domain.find(".svc.")
        suffix = proxy_domain[idx:] if idx > 0 else proxy_domain
        if hostname.endswith(suffix):
            return out + _kube_alt_hosts(hostname, port, proxy_domain)
        return out
    fqdn, pd = hostname.split("."), proxy_domain.split(".")
    shared: list[str] = []
    for a, b in zip(reversed(fqdn), reversed(pd), strict=False):
        if a != b:
            break
        shared.append(a)
    if not shared:
        return out
    unique = fqdn[:len(fqdn) - len(shared)]
    _append_domain_port(out, ".".join(unique), port)
    if len(unique) == 2:
        _append_domain_port(out, ".".join(unique) + "." + shared[-1], port)
    return out


def _ip_version(address: str) -> int:
    try:
        return ipaddress.ip_address(address).version
    except ValueError:
        return 0


def _addresses_for_proxy(svc: Service, proxy_ip: str,
                         ip_version: Callable[[str], int] = _ip_version) -> list[str]:
    """`GetAllAddressesForProxy`: the VIP(s) of the proxy's IP family; ServiceEntry addresses
    as written (a /32 or /128 CIDR is the bare IP). ``ip_version``: the run's parse of an
    address (``BuildCache.ip_version``: 4, 6, or 0 for no IP)."""
    v6 = ip_version(proxy_ip) == 6
    if svc.registry == "Kubernetes":
        out = []
        for a in svc.addresses or ([svc.vip] if svc.vip else []):
            version = ip_version(a)
            if version and (version == 6) == v6:
                out.append(a)
        return out
    if not svc.vip:
        return []
    addr = svc.vip
    if "/" in addr:
        try:
            net = ipaddress.ip_network(addr, strict=False)
            if net.prefixlen == net.max_prefixlen:
                addr = str(net.network_address)
        except ValueError:
            pass
    return [addr]


def service_aliases(services: list[Service]) -> dict[str, list[tuple[str, str]]]:
    """`PushContext.initServiceAliases`: concrete hostname → its ExternalName aliases
    ``(namespace, hostname)``, resolved through alias chains (a loop resolves to nothing),
    sorted by namespace then hostname."""
    raw = {(s.namespace, s.hostname): s.alias_target for s in services
           if s.resolution == "Alias" and s.alias_target}
    by_host = {h: t for (_, h), t in raw.items()}
    out: dict[str, list[tuple[str, str]]] = {}
    for alias, target in raw.items():
        seen = {alias[1], target}
        while target in by_host:
            nxt = by_host[target]
            if nxt in seen:
                target = ""
                break
            seen.add(nxt)
            target = nxt
        if target:
            out.setdefault(target, []).append(alias)
    return {k: sorted(v) for k, v in out.items()}


def generate_virtual_host_domains(svc: Service, listener_port: int, port: int, proxy_domain: str,
                                  proxy_ip: str, aliases: list[str] | None = None,
                                  ip_version: Callable[[str], int] = _ip_version
                                  ) -> tuple[list[str], list[str]]:
    """`generateVirtualHostDomains` → (domains, alternate forms); ``aliases`` are the
    ExternalName hostnames pointing at ``svc`` (`Service.Attributes.Aliases`)."""
    if listener_port != 0:
        port = 0  # ignore_port_in_host_matching: no ":port" forms
    domains: list[str] = []
    alt_all: list[str] = []
    for name in [svc.hostname, *(aliases or [])]:
        alt = generate_alt_virtual_hosts(name, port, proxy_domain)
        _append_domain_port(domains, name, port)
        domains += alt
        alt_all += alt
    if svc.resolution == "Passthrough" and svc.registry == "Kubernetes":
        domains += ["*." + d for d in list(domains)]
    for addr in _addresses_for_proxy(svc, proxy_ip, ip_version):
        if addr and addr != "0.0.0.0":
            _append_domain_port(domains, addr, port)
    return domains, alt_all


def _dedupe_domains(domains: list[str], used: set[str], expanded: list[str],
                    known_fqdn: set[str]) -> list[str]:
    out = []
    for d in domains:
        if d.lower() in used:
            continue
        if d in expanded and d in known_fqdn:
            continue
        out.append(d)
        used.add(d.lower())
    return out


# --- the route configuration --------------------------------------------------------------------

def _proxy_headers(ctx: Any) -> tuple[bool, bool]:
    """(include_request_attempt_count, append_x_forwarded_host) from ProxyConfig.proxyHeaders."""
    dc = ctx.mesh.mesh_config.get("defaultConfig") or {}
    ph = dc.get("proxyHeaders") if isinstance(dc, dict) else None
    if not isinstance(ph, dict):
        return True, False
    attempt = not bool((ph.get("attemptCount") or {}).get("disabled"))
    xfh = bool((ph.get("xForwardedHost") or {}).get("enabled"))
    return attempt, xfh


def _http_or_sniffed(p: str) -> bool:
    return protocol.is_http(p) or protocol.is_unsupported(p)


def _select_virtual_services(vss: list[Any], by_name: dict[str, Service]) -> list[Any]:
    """`selectVirtualServices` (httproute.go): keep VS with a host matching a service."""
    wild_svc = [h for h in by_name if h.startswith("*")]
    out = []
    for vs in vss:
        for h in vs.hosts:
            lh = h.lower()
            if lh in by_name:
                out.append(vs)
                break
            if lh.startswith("*"):
                if any(host_overlaps(lh, s) for s in by_name):
                    out.append(vs)
                    break
            elif any(host_overlaps(lh, s) for s in wild_svc):
                out.append(vs)
                break
    return out


def _separate_hosts(vs: Any, by_name: dict[str, Service],
                    most_specific: dict[str, Any]) -> tuple[list[str], list[Service]]:
    """`separateVSHostsAndServices`."""
    non_registry: list[str] = []
    matching: list[Service] = []
    wild: list[str] = []
    for h in vs.hosts:
        lh = h.lower()
        if lh.startswith("*"):
            wild.append(lh)
        elif lh in by_name:
            matching.append(by_name[lh])
        else:
            non_registry.append(h)
    for wh in wild:
        found = False
        for svc_host, svc in by_name.items():
            local = host_overlaps(svc_host, wh)
            found = found or local
            if not local:
                continue
            owner = most_specific.get(svc_host)
            if owner is None or (owner.namespace, owner.name) != (vs.namespace, vs.name):
                continue
            matching.append(svc)
        if not found:
            non_registry.append(wh)
    return non_registry, matching


class _RouteBuilder:
    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx
        self.scope = ctx.scope
        self.mesh_config = ctx.mesh.mesh_config
        self.proxy = ctx.proxy
        self.proxy_domain = f"{ctx.proxy.namespace}.svc.cluster.local"
        self.attempt_count, self.xfh = _proxy_headers(ctx)
        retry = self.mesh_config.get("defaultHttpRetryPolicy")
        self.default_retry = retry if isinstance(retry, dict) else None
        self.cache: dict[int, list[_VHost]] = {}
        self.domain_index: dict[int, dict[str, list[int]]] = {}
        self.aliases = service_aliases([s for ss in ctx.mesh.registry.by_host.values() for s in ss])

    # -- hashes ----------------------------------------------------------------------------------
    def _rule_for_host(self, host: str) -> Any:
        svc = self.scope.service(host)
        return self.ctx.rule_for(svc) if svc is not None else None

    def _hash_for(self, dst: dict[str, Any]) -> dict[str, Any] | None:
        dest = dst.get("destination") if isinstance(dst.get("destination"), dict) else {}
        return hash_for_destination(self._rule_for_host(str(dest.get("host") or "")), dest)

    # -- wrappers --------------------------------------------------------------------------------
    def _wrappers(self, by_name: dict[str, Service], originals: dict[str, Service], vss: list[Any],
                  listener_port: int, most_specific: dict[str, Any]) -> list[_Wrapper]:
        out: list[_Wrapper] = []
        env = RouteEnv(listener_port=listener_port, proxy_labels=dict(self.proxy.labels),
                       proxy_namespace=self.proxy.namespace, lookup_service=by_name.get,
                       lookup_hash=self._hash_for, default_retry=self.default_retry,
                       x_forwarded_host=self.xfh)
        for vs in vss:
            translated = build_http_routes(vs, env)
            if not translated:
                continue
            routes = [t.route for t in translated]
            origins = []
            for t in translated:
                src = vs.http_source(t.http_index)
                path = src.path + (("match", t.match_index) if t.match_index is not None else ())
                note = "" if src.resource is vs.resource else (
                    f"delegated from {vs.namespace}/{vs.name} {'.'.join(map(str, src.root_path))}")
                origins.append(prov.from_resource(src.resource, path, VS_RULE, note))
            non_registry, matching = _separate_hosts(vs, by_name, most_specific)
            if gateway_semantics(vs):
                # `BuildSidecarVirtualHostWrapper`: a GAMMA route applies from the Service's
                # namespace to every client, from the client's namespace to that namespace only
                matching = [s for s in matching if s.namespace == vs.namespace
                            or self.proxy.namespace == vs.namespace]
                if not matching:
                    continue
            by_port: dict[int, list[Service]] = {}
            for svc in matching:
                for p in svc.ports:
                    if _http_or_sniffed(p.protocol):
                        by_port.setdefault(p.port, []).append(svc)
            if not by_port and listener_port == 80:
                by_port[80] = []
            for port in sorted(by_port):
                out.append(_Wrapper(port, by_port[port], non_registry, routes, origins, vs))
        remaining = dict(by_name)
        for w in out:
            for svc in w.services:
                remaining.pop(svc.hostname, None)
        for key in sorted(remaining):
            svc = remaining[key]
            if svc.resolution == "Alias":
                continue
            for p in svc.ports:
                if not _http_or_sniffed(p.protocol):
                    continue
                rule = self.ctx.rule_for(originals.get(key, svc))
                ch = hash_for_service(rule, p.port)
                cluster = cluster_name("outbound", p.port, "", svc.hostname)
                r = default_outbound_route(cluster, f"{_join_host_port(svc.hostname, p.port)}/*",
                                           default_retry=self.default_retry, hash_=ch)
                origin = prov.default(f"no VirtualService for {svc.hostname}: default route")
                w = _Wrapper(p.port, [svc], [], [r], [origin])
                if ch is not None:
                    w.hash_rule = rule
                out.append(w)
        return out

    # -- virtual hosts ---------------------------------------------------------------------------
    def _vhost_origins(self, w: _Wrapper, svc: Service | None) -> dict[str, Origin]:
        origins: dict[str, Origin] = {}
        if svc is not None:
            origins[""] = prov.from_resource(svc.resource, (), prov.REGISTRY,
                                             f"service {svc.hostname} port {w.port}")
        elif w.vs is not None:
            origins[""] = prov.from_resource(w.vs.resource, ("spec", "hosts"), VS_RULE,
                                             "VirtualService host outside the registry")
        for j, o in enumerate(w.origins):
            origins[f"routes[{j}]"] = o
        if w.hash_rule is not None:
            origins["routes[0].route.hash_policy"] = prov.from_resource(
                w.hash_rule.resource, ("spec", "trafficPolicy", "loadBalancer", "consistentHash"),
                "destination-rule", "consistentHash")
        return origins

    def _virtual_hosts(self, route_name: str, listener_port: int) -> list[_VHost]:
        """`BuildSidecarOutboundVirtualHosts`."""
        eg = self.scope.egress_listener_for_rds(listener_port, route_name)
        if eg is None:
            return []
        if eg.port is not None and eg.protocol == protocol.HTTP_PROXY:
            listener_port = 0
        by_name: dict[str, Service] = {}
        originals: dict[str, Service] = {}
        for svc in eg.services:
            if listener_port == 0:
                by_name[svc.hostname] = svc
                originals[svc.hostname] = svc
                continue
            sp = svc.port(listener_port)
            if sp is None:
                continue
            h = svc.hostname.lower()
            by_name[h] = dataclasses.replace(svc, hostname=h, ports=[sp])
            originals[h] = svc
        vss = list(eg.virtual_services)
        if listener_port != 80:
            vss = _select_virtual_services(vss, by_name)
        wrappers = self._wrappers(by_name, originals, vss, listener_port, eg.most_specific_vs)
        names: set[str] = set()
        used: set[str] = set()
        known: set[str] = set()
        for w in wrappers:
            for svc in w.services:
                known.add(_join_host_port(svc.hostname, w.port))
                known.add(svc.hostname)
        by_port: dict[int, list[_VHost]] = {}
        for w in wrappers:
            if not w.routes:
                continue
            built: list[_VHost] = []
            for h in w.vs_hosts:
                vh = self._vhost(h.lower(), w, None, listener_port, names, used, known)
                if vh is not None:
                    built.append(vh)
            for svc in w.services:
                vh = self._vhost(svc.hostname, w, svc, listener_port, names, used, known)
                if vh is not None:
                    built.append(vh)
            by_port.setdefault(w.port, []).extend(built)
        if listener_port == 0:
            return self._merge_all(by_port)
        return by_port.get(listener_port, [])

    def _vhost(self, hostname: str, w: _Wrapper, svc: Service | None, listener_port: int,
               names: set[str], used: set[str], known: set[str]) -> _VHost | None:
        name = _join_host_port(hostname, w.port)
        if name in names:
            return None  # istiod: DuplicatedDomains metric, the first one wins
        names.add(name)
        if svc is None:
            domains, alt = [_ipv6_compliant(hostname)], []
        else:
            domains, alt = generate_virtual_host_domains(
                svc, listener_port, w.port, self.proxy_domain, self.proxy.ip,
                # `matchingAliasService`: only the aliases the Sidecar scope imports
                [h for _, h in self.aliases.get(svc.hostname, []) if self.scope.service(h) is not None],
                self.ctx.cache.ip_version)
        domains = _dedupe_domains(domains, used, alt, known)
        if not domains:
            return None
        vh = rc_pb2.VirtualHost(name=name, domains=domains,
                                include_request_attempt_count=self.attempt_count)
        vh.routes.extend(w.routes)  # extend copies each message
        return _VHost(vh, self._vhost_origins(w, svc))

    @staticmethod
    def _merge_all(by_port: dict[int, list[_VHost]]) -> list[_VHost]:
        """`mergeAllVirtualHosts`: only port 80 keeps domains without ``:port``."""
        out: list[_VHost] = []
        for port in sorted(by_port):
            for vh in by_port[port]:
                if port != 80:
                    keep = [d for d in vh.vhost.domains if ":" in d]
                    del vh.vhost.domains[:]
                    vh.vhost.domains.extend(keep)
                    if not keep:
                        continue
                out.append(vh)
        return out

    # -- catch-all -------------------------------------------------------------------------------
    def _catch_all(self) -> _VHost:
        """`buildCatchAllVirtualHost` by the scope's outbound traffic policy."""
        otp = self.scope.outbound_traffic_policy
        mode = str(otp.get("mode") or "ALLOW_ANY")
        sc = self.scope.sidecar
        if sc is not None and isinstance(sc.spec.get("outboundTrafficPolicy"), dict):
            origin = prov.from_resource(sc, ("spec", "outboundTrafficPolicy"), "sidecar",
                                        f"outboundTrafficPolicy {mode}")
        elif self.mesh_config.is_user_set("outboundTrafficPolicy"):
            origin = Origin("mesh default", None, ("outboundTrafficPolicy",),
                            self.mesh_config.doc, f"outboundTrafficPolicy {mode}")
        else:
            origin = prov.default(f"outboundTrafficPolicy {mode}")
        vh = rc_pb2.VirtualHost(domains=["*"], include_request_attempt_count=self.attempt_count)
        r = vh.routes.add()
        r.match.prefix = "/"
        if mode == "ALLOW_ANY_DYNAMIC_DNS":
            vh.name = r.name = ALLOW_ANY_DYNAMIC_DNS
            r.route.cluster = DYNAMIC_DNS_CLUSTER
        elif mode == "ALLOW_ANY":
            vh.name = r.name = ALLOW_ANY
            egress = otp.get("egressProxy")
            r.route.cluster = (destination_cluster(egress, None, 0) if isinstance(egress, dict)
                               else PASSTHROUGH)
        else:
            vh.name = r.name = BLOCK_ALL
            r.direct_response.status = 502
            return _VHost(vh, {"": origin, "routes[0]": origin})
        r.route.timeout.SetInParent()
        r.route.max_grpc_timeout.SetInParent()
        r.route.append_x_forwarded_host = self.xfh
        return _VHost(vh, {"": origin, "routes[0]": origin})

    def _domain_index(self, port: int) -> dict[str, list[int]]:
        """domain → positions in the cached vhost list of ``port`` (built once per port)."""
        key = -port - 1
        if key not in self.domain_index:
            index: dict[str, list[int]] = {}
            for i, vh in enumerate(self.cache[port]):
                for d in vh.vhost.domains:
                    index.setdefault(d, []).append(i)
            self.domain_index[key] = index
        return self.domain_index[key]

    # -- one route configuration -----------------------------------------------------------------
    def build(self, name: str) -> Built:
        port, sniff, parsed = extract_listener_port(name)
        if not parsed and name != HTTP_PROXY_ROUTE and not name.startswith(UNIX_PREFIX):
            rc = route_pb2.RouteConfiguration(name=name)
            rc.validate_clusters.value = False
            return Built(rc, {"": prov.default("unknown route name: empty configuration")})
        vhosts: list[_VHost] | None = None
        if sniff and port != 0 and port in self.cache:
            vhosts = _sniffed(self.cache[port], name, self._domain_index(port))
        if vhosts is None:
            vhosts = self._virtual_hosts(name, port)
            if port > 0:
                # Cached vhosts are never mutated: _sniffed copies the one it changes.
                self.cache[port] = list(vhosts)
            if sniff:
                vhosts = _sniffed(vhosts, name)
        vhosts.sort(key=lambda v: v.vhost.name)
        if not sniff:
            vhosts.append(self._catch_all())
        rc = route_pb2.RouteConfiguration(name=name, ignore_port_in_host_matching=True)
        rc.validate_clusters.value = False
        rc.max_direct_response_body_size_bytes.value = MAX_DIRECT_RESPONSE_BODY
        built = Built(rc)
        for i, vh in enumerate(vhosts):
            rc.virtual_hosts.append(vh.vhost)
            for rel, origin in vh.origins.items():
                built.set(f"virtual_hosts[{i}]" + (f".{rel}" if rel else ""), origin)
        return built


def _sniffed(vhosts: list[_VHost], route_name: str,
             index: dict[str, list[int]] | None = None) -> list[_VHost]:
    """`getVirtualHostsForSniffedServicePort`: the vhost for ``host:port``, domains → ``*``."""
    host = route_name.rsplit(":", 1)[0]
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if index is not None:
        hits = sorted(set(index.get(route_name, []) + index.get(host, [])))
        out = [vhosts[i] for i in hits]
    else:
        out = [vh for vh in vhosts if any(d in (route_name, host) for d in vh.vhost.domains)]
    if len(out) == 1:
        copy_ = type(out[0].vhost)()
        copy_.CopyFrom(out[0].vhost)
        del copy_.domains[:]
        copy_.domains.append("*")
        out = [_VHost(copy_, dict(out[0].origins))]
    return out


def build_route_configs(ctx: Any, names: list[str]) -> list[Built]:
    """The RouteConfigurations for the RDS names the listeners reference, sorted by name.

    ``ctx`` is a :class:`meshlens.compiler.clusters.ClusterContext`. Each configuration is
    built once per :class:`~meshlens.compiler.cache.RouteKey` and shared across the run.
    """
    builders: list[_RouteBuilder] = []

    def build(name: str) -> Built:
        if not builders:  # made on the first miss: a proxy whose routes are all shared needs none
            builders.append(_RouteBuilder(ctx))
        return builders[0].build(name)

    proxy = ctx.proxy
    labels = frozenset(proxy.labels.items())
    v6 = ctx.cache.ip_version(proxy.ip) == 6
    out = [ctx.cache.shared("routes", RouteKey(n, proxy.namespace, labels, v6), ctx.mesh,
                            lambda n=n: build(n), lambda b: [b.message])
           for n in dict.fromkeys(names)]
    out.sort(key=lambda b: b.message.name)
    return out


__all__ = ["build_route_configs", "extract_listener_port", "generate_alt_virtual_hosts",
           "generate_virtual_host_domains"]
