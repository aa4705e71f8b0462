"""LDS, outbound side: virtualOutbound and the per-port outbound listeners.

Layer: L4. Imports: model, compiler.{filters,draft,names,provenance,clusters}, xDS protos.

`core/listener.go:buildSidecarOutboundListeners` / `buildSidecarOutboundListener` /
`buildListenerFromEntry`, `core/listener_builder.go:buildVirtualOutboundListener`,
`core/networkfilter.go`. Listeners are keyed ``BIND_PORT``; services are visited in the scope's
order (oldest first), so the oldest service wins a conflict, as in istiod. istiod emits the
per-port listeners in Go map order; meshlens sorts them by name (Envoy keys them by name).

Not emitted: the ``istio.stats`` filters, which istiod adds only when a Prometheus metrics
provider is configured (Helm sets one; istiod's own MeshConfig default has none).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Container
from dataclasses import dataclass, field
from typing import Any

from envoy.config.core.v3 import address_pb2, base_pb2
from envoy.config.listener.v3 import listener_components_pb2 as lc_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.extensions.filters.network.mongo_proxy.v3 import mongo_proxy_pb2
from google.protobuf import struct_pb2

from meshlens import durations
from meshlens.compiler import filters as flt
from meshlens.compiler import provenance as prov
from meshlens.compiler.draft import Built
from meshlens.compiler.names import BLACKHOLE, PASSTHROUGH, cluster_name
from meshlens.compiler.provenance import Origin
from meshlens.compiler.telemetry import stats_http_filters, stats_network_filters
from meshlens.compiler.routes import generate_alt_virtual_hosts, service_aliases
from meshlens.model import protocol
from meshlens.model.registry import Service, ServicePort

WILDCARD = "0.0.0.0"
ALLOW_ANY_DYNAMIC_DNS_NAME = "allow_any_dynamic_dns"
HTTP, TCP, AUTO = "HTTP", "TCP", "Auto"
RESERVED = {15001, 15006, 15021, 15090}


def listener_class(proto: str) -> str | None:
    """`ModelProtocolToListenerProtocol`."""
    if protocol.is_http(proto):
        return HTTP
    if protocol.is_tcp(proto):
        return TCP
    if protocol.is_unsupported(proto):
        return AUTO
    return None  # UDP and unknown: no listener


@dataclass(slots=True)
class Chain:
    """One filter chain option before assembly (`filterChainOpts`)."""

    kind: str  # "http" | "tcp"
    filters: list[lc_pb2.Filter] = field(default_factory=list)
    alpn: list[str] = field(default_factory=list)
    transport: str = ""
    server_names: list[str] = field(default_factory=list)
    prefixes: list[str] = field(default_factory=list)
    rds: str = ""
    metadata: str = ""  # istio config path of the VirtualService that made it
    origin: Origin | None = None
    service: Service | None = None

    def match_all(self) -> bool:
        sni = [s for s in self.server_names if s != "*"] if "*" not in self.server_names else []
        return not sni and not self.alpn and not self.transport and not self.prefixes


@dataclass(slots=True)
class Entry:
    bind: str
    port: int
    proto: str  # recorded class: HTTP | TCP | Auto (an HTTP entry on 0.0.0.0 records Auto)
    chains: list[Chain]
    service: Service
    bind_to_port: bool = False
    locked: bool = False
    http_port_proto: str = ""  # the first service port's protocol (grpc-web filter)

    @property
    def name(self) -> str:
        return f"{self.bind}_{self.port}"


class OutboundBuilder:
    """Builds the outbound listeners for one proxy (state shared across services)."""

    def __init__(self, ctx: Any, ports: Container[int] | None = None) -> None:
        self.ctx = ctx
        self.mesh = ctx.mesh.mesh_config
        self.ports = ports  # a targeted compile: only the listeners on these ports
        self.entries: dict[tuple[str, int], Entry] = {}
        self._aliases: dict[str, list[tuple[str, str]]] | None = None
        self._vs_index: dict[int, tuple[list[Any], dict[str, list[int]], list[int]]] = {}

    def alias_sni(self, hostname: str) -> list[str]:
        """`buildSidecarOutboundTLSFilterChainOpts`: each ExternalName alias of the service and
        its alternate forms (`GenerateAltVirtualHosts`) are server names too."""
        if self._aliases is None:
            self._aliases = service_aliases(
                [s for ss in self.ctx.mesh.registry.by_host.values() for s in ss])
        out: list[str] = []
        for _, alias in self._aliases.get(hostname, []):
            if self.ctx.scope.service(alias) is None:
                continue  # `matchingAliasService`: not imported by the Sidecar scope
            domain = f"{self.ctx.proxy.namespace}.svc.cluster.local"
            out += [alias, *generate_alt_virtual_hosts(alias, 0, domain)]
        return out

    def vs_for_host(self, vss: list[Any], hostname: str) -> list[Any]:
        """VirtualServices (in import order) with a host that `Matches` ``hostname``."""
        key = id(vss)
        index = self._vs_index.get(key)
        if index is None:
            exact: dict[str, list[int]] = {}
            wild: list[int] = []
            for i, vs in enumerate(vss):
                if not (vs.spec.get("tcp") or vs.spec.get("tls")):
                    continue  # only tcp/tls routes matter to TCP listeners
                for h in vs.hosts:
                    if "*" in h:
                        wild.append(i)
                    else:
                        exact.setdefault(h, []).append(i)
            index = self._vs_index[key] = (vss, exact, wild)
        _, exact, wild = index
        picks = set(exact.get(hostname, []))
        picks.update(i for i in wild if any(_hosts_match(h, hostname) for h in vss[i].hosts))
        if hostname.startswith("*"):
            picks.update(i for hs in exact.values() for i in hs
                         if any(_hosts_match(h, hostname) for h in vss[i].hosts))
        return [vss[i] for i in sorted(picks)]

    # -- fallthrough (PassthroughCluster or BlackHoleCluster) ---------------------------------
    def fallthrough_cluster(self) -> str:
        otp = getattr(self.ctx.scope, "outbound_traffic_policy", None)
        mode = (otp or {}).get("mode") if isinstance(otp, dict) else None
        mode = mode or self.mesh.outbound_mode
        egress = (otp or {}).get("egressProxy") if isinstance(otp, dict) else None
        if mode == "REGISTRY_ONLY":
            return BLACKHOLE
        if isinstance(egress, dict) and egress.get("host"):
            port = (egress.get("port") or {}).get("number", 0) if isinstance(egress.get("port"), dict) else 0
            return cluster_name("outbound", int(port or 0), str(egress.get("subset", "")), str(egress["host"]))
        return PASSTHROUGH

    def fallthrough_filters(self) -> list[lc_pb2.Filter]:
        cluster = self.fallthrough_cluster()
        return [*stats_network_filters(self.mesh, inbound=False),
                flt.tcp_proxy(cluster, cluster, logs=flt.access_logs(self.mesh))]

    # -- per service port -----------------------------------------------------------------------
    def tcp_filters(self, svc: Service, port: ServicePort, cluster: str, subset: str = "",
                    *, weighted: list[tuple[str, int]] | None = None, stat: str = "") -> list[lc_pb2.Filter]:
        """`buildOutboundNetworkFiltersWithSingleDestination` (or weighted clusters)."""
        rule = self.ctx.rule_for(svc) if svc is not None else None
        tp = rule.policy.tp if rule is not None and rule.policy is not None else {}
        tcp = ((tp.get("connectionPool") or {}).get("tcp") or {}) if isinstance(tp, dict) else {}
        idle = mcd = None
        if tcp.get("idleTimeout") is not None:
            idle = _duration(tcp["idleTimeout"])
        if tcp.get("maxConnectionDuration") is not None:
            mcd = _duration(tcp["maxConnectionDuration"])
        source_ip = False
        if rule is not None:
            lb = tp.get("loadBalancer") or {}
            source_ip = bool(((lb.get("consistentHash") or {}) if isinstance(lb, dict) else {}).get("useSourceIp"))
            sub = rule.subset(subset) if subset else None
            if sub is not None and sub.policy is not None and isinstance(sub.policy.tp.get("loadBalancer"), dict):
                ch = sub.policy.tp["loadBalancer"].get("consistentHash")
                source_ip = bool(ch.get("useSourceIp")) if isinstance(ch, dict) else False
        out: list[lc_pb2.Filter] = list(stats_network_filters(self.mesh, inbound=False))
        if port.protocol == protocol.MONGO:
            out.append(flt.network_filter("envoy.filters.network.mongo_proxy",
                                          mongo_proxy_pb2.MongoProxy(stat_prefix=stat or cluster)))
        out.append(flt.tcp_proxy(stat or cluster, cluster, weighted=weighted,
                                 logs=flt.access_logs(self.mesh), idle_timeout=idle,
                                 source_ip_hash=source_ip and not weighted, max_connection_duration=mcd))
        return out

    def tcp_chains(self, svc: Service, port: ServicePort, listen_port: int, bind: str,
                   vss: list[Any], *, tls: bool) -> list[Chain]:
        """`buildSidecarOutboundTCPListenerOpts` / `buildSidecarOutboundTLSFilterChainOpts`."""
        chains: list[Chain] = []
        cidrs = _service_cidrs(svc, bind)
        proxy = self.ctx.proxy
        for vs in self.vs_for_host(vss, svc.hostname):
            section = "tls" if tls else "tcp"
            for ri, rule in enumerate(vs.spec.get(section) or []):
                routes = (rule or {}).get("route") or []
                if not routes:
                    continue
                matches = rule.get("match") or []
                origin = prov.from_resource(vs.resource, ("spec", section, ri), "virtual-service")
                meta = _vs_path(vs.resource)
                filters = self.route_filters(svc, port, listen_port, routes, vs)
                if tls:
                    seen: set[tuple[tuple[str, ...], tuple[str, ...]]] = set()
                    for m in matches:
                        if not _static_match(m, proxy, listen_port):
                            continue
                        key = (tuple(sorted(m.get("sniHosts") or [])),
                               tuple(sorted(m.get("destinationSubnets") or [])))
                        if key in seen:
                            continue
                        seen.add(key)
                        chains.append(Chain("tcp", filters, server_names=sorted(m.get("sniHosts") or []),
                                            prefixes=list(m.get("destinationSubnets") or []) or cidrs,
                                            metadata=meta, origin=origin, service=svc))
                    continue
                if not matches:
                    chains.append(Chain("tcp", filters, prefixes=cidrs, metadata=meta, origin=origin,
                                        service=svc))
                    return chains
                subnets: list[str] = []
                for m in matches:
                    if not _static_match(m, proxy, listen_port):
                        continue
                    if not m.get("destinationSubnets") or listen_port == 0:
                        chains.append(Chain("tcp", filters, prefixes=cidrs, metadata=meta,
                                            origin=origin, service=svc))
                        return chains
                    subnets.extend(str(s) for s in m["destinationSubnets"])
                if subnets:
                    chains.append(Chain("tcp", filters, prefixes=subnets, metadata=meta, origin=origin,
                                        service=svc))
                    if sorted(_norm_cidrs(subnets)) == sorted(_norm_cidrs(cidrs)):
                        return chains
        if tls and chains:
            return chains
        p = port.port if len(svc.ports) == 1 else listen_port
        cluster = cluster_name("outbound", p, "", svc.hostname)
        sni: list[str] = []
        # `buildSidecarOutboundTLSFilterChainOpts`: SNI only when the listener cannot tell services
        # apart otherwise: CIDR destinations, or a wildcard address on a wildcard listener (a
        # headless Service's per-pod listener is bound to the pod IP: no SNI), or a wildcard
        # DYNAMIC_DNS host.
        address = se_address(svc.vip) or WILDCARD
        if tls and (cidrs or "/" in address or (address == WILDCARD and bind == WILDCARD)
                    or (svc.hostname.startswith("*") and svc.resolution == "DynamicDNS")):
            sni = [svc.hostname, *self.alias_sni(svc.hostname)]
        chains.append(Chain("tcp", self.tcp_filters(svc, port, cluster), server_names=sni,
                            prefixes=cidrs,
                            origin=prov.from_resource(svc.resource, ("spec", "ports", port.index),
                                                      prov.REGISTRY, f"{port.protocol} port"),
                            service=svc))
        return chains

    def route_filters(self, svc: Service, port: ServicePort, listen_port: int,
                      routes: list[dict[str, Any]], vs: Any) -> list[lc_pb2.Filter]:
        """Network filters for a VirtualService tcp/tls route (`GetDestinationCluster`)."""
        def dest_cluster(d: dict[str, Any]) -> tuple[str, str]:
            host = str(d.get("host", ""))
            target = self.ctx.scope.service(host) if hasattr(self.ctx.scope, "service") else None
            pnum = (d.get("port") or {}).get("number") if isinstance(d.get("port"), dict) else None
            if not pnum:
                pnum = target.ports[0].port if target is not None and len(target.ports) == 1 else listen_port
            if target is not None and target.alias_target:
                host = target.alias_target
            return cluster_name("outbound", int(pnum), str(d.get("subset", "")), host), str(d.get("subset", ""))

        dests = [r for r in routes if isinstance(r, dict) and isinstance(r.get("destination"), dict)]
        if len(dests) == 1:
            name, subset = dest_cluster(dests[0]["destination"])
            target = self.ctx.scope.service(str(dests[0]["destination"].get("host", "")))
            return self.tcp_filters(target or svc, port, name, subset)
        weighted = [(dest_cluster(r["destination"])[0], int(r.get("weight", 0) or 0)) for r in dests]
        weighted = [(n, w) for n, w in weighted if w > 0]
        stat = f"{vs.resource.name}.{vs.resource.namespace}"
        return self.tcp_filters(svc, port, weighted[0][0] if weighted else "", weighted=weighted, stat=stat)

    def http_chain(self, rds: str, bind: str, origin: Origin, svc: Service) -> Chain:
        c = Chain("http", rds=rds, origin=origin, service=svc)
        if bind == WILDCARD:
            c.alpn = list(flt.ALPN_PLAIN_HTTP)
            c.transport = "raw_buffer"
        return c

    def add_service_port(self, svc: Service, port: ServicePort, *, listen_port: int, proto: str,
                         bind: str, bind_to_port: bool, vss: list[Any]) -> None:
        """`buildSidecarOutboundListener` for one (service, port): make an entry, resolve conflicts."""
        cls = listener_class(proto)
        if cls is None or svc.resolution == "Alias":
            return
        if self.ports is not None and listen_port not in self.ports:
            return  # an entry only touches the listener on its own port: skipping it is exact
        if listen_port in RESERVED and (bind == WILDCARD or (not bind and cls == HTTP)):
            return
        origin = prov.from_resource(svc.resource, ("spec", "ports", port.index), prov.REGISTRY,
                                    f"Service port {port.port} ({port.protocol})")
        explicit_bind = bool(bind)
        cidr_bind = False
        if not bind:
            if cls == HTTP:
                bind = WILDCARD
            else:
                addr = se_address(svc.vip) or WILDCARD
                if "/" in addr:
                    bind, cidr_bind = WILDCARD, True
                else:
                    bind = addr
        chains: list[Chain] = []
        recorded = cls
        if cls == HTTP:
            chains.append(self.http_chain(str(listen_port), bind, origin, svc))
            if bind == WILDCARD:
                recorded = AUTO
        elif cls == TCP:
            chains.extend(self.tcp_chains(svc, port, listen_port, bind, vss,
                                          tls=port.protocol in (protocol.TLS, protocol.HTTPS)))
        else:
            chains.extend(self.tcp_chains(svc, port, listen_port, bind, vss, tls=False))
            rds = f"{svc.hostname}:{listen_port}" if bind != WILDCARD else str(listen_port)
            hc = self.http_chain(rds, WILDCARD, origin, svc)  # auto: always the ALPN match
            chains.append(hc)
        del explicit_bind, cidr_bind
        key = (bind, listen_port)
        cur = self.entries.get(key)
        if cur is None:
            self.entries[key] = Entry(bind, listen_port, recorded, chains, svc, bind_to_port,
                                      http_port_proto=port.protocol)
            return
        if cur.locked:
            return
        well_known = {protocol.MONGO, protocol.MYSQL}
        cur_proto = cur.service.port(listen_port).protocol if cur.service.port(listen_port) else ""
        if (port.protocol in well_known or cur_proto in well_known) and port.protocol != cur_proto:
            return
        tcp_new = [c for c in chains if c.kind == "tcp"]
        http_new = [c for c in chains if c.kind == "http"]
        if cls == HTTP:
            if cur.proto == TCP:  # HTTP over TCP
                cur.chains.extend(http_new)
                cur.proto = AUTO
            return  # HTTP over HTTP/Auto: the vhost is added through RDS
        if cls == TCP:
            _merge_tcp(cur, tcp_new)
            if cur.proto == HTTP:
                cur.proto = AUTO
            return
        # incoming Auto
        if cur.proto == TCP:
            _merge_tcp(cur, tcp_new)
            cur.chains.extend(http_new)
            cur.proto = AUTO
        elif cur.proto == HTTP:
            self.entries[key] = Entry(bind, listen_port, AUTO, chains, svc, bind_to_port,
                                      http_port_proto=port.protocol)
        else:
            _merge_tcp(cur, tcp_new)

    def add_headless(self, svc: Service, port: ServicePort, vss: list[Any]) -> None:
        """`buildSidecarOutboundListeners` for services without a VIP (2.3.6): per-pod listeners."""
        eps = [e for e in self.ctx.mesh.registry.endpoints_of(svc) if e.service_port_name == port.name]
        if svc.registry != "Kubernetes" and not eps and not svc.selector:
            self.add_service_port(svc, port, listen_port=port.port, proto=port.protocol, bind=WILDCARD,
                                  bind_to_port=False, vss=vss)
            return
        seen: set[str] = set()
        for ep in eps:
            if ep.address == self.ctx.proxy.ip or ep.address in seen or not _is_ip(ep.address):
                continue
            seen.add(ep.address)
            self.add_service_port(svc, port, listen_port=port.port, proto=port.protocol,
                                  bind=ep.address, bind_to_port=False, vss=vss)

    def build(self) -> list[Built]:
        scope = self.ctx.scope
        egress = list(getattr(scope, "egress_listeners", None) or [])
        explicit = [e for e in egress if e.port]
        catch_all = [e for e in egress if not e.port]
        for el in explicit:
            proto = protocol.parse(el.protocol) if el.protocol else protocol.UNSUPPORTED
            bind_to_port = el.capture_mode == "NONE" or (el.bind or "").startswith("unix://")
            for svc in el.services:
                for port in svc.ports:
                    self.add_service_port(svc, port, listen_port=int(el.port), proto=proto,
                                          bind=el.bind or ("127.0.0.1" if bind_to_port else ""),
                                          bind_to_port=bind_to_port, vss=el.virtual_services)
        for entry in self.entries.values():
            entry.locked = True
        for el in catch_all:
            bind_to_port = el.capture_mode == "NONE" or (el.bind or "").startswith("unix://")
            for svc in el.services:
                for port in svc.ports:
                    bind = el.bind or ("127.0.0.1" if bind_to_port else "")
                    if not bind and svc.resolution == "Passthrough" and not svc.vip and (
                            listener_class(port.protocol) in (TCP, AUTO)):
                        self.add_headless(svc, port, el.virtual_services)
                        continue
                    self.add_service_port(svc, port, listen_port=port.port, proto=port.protocol,
                                          bind=bind, bind_to_port=bind_to_port,
                                          vss=el.virtual_services)
        return [self.assemble(e) for e in sorted(self.entries.values(), key=lambda e: e.name)]

    # -- assembly ---------------------------------------------------------------------------------
    def hcm_filter(self, chain: Chain, listener_name: str, port_proto: str) -> lc_pb2.Filter:
        """`buildHTTPConnectionManager` for an outbound chain."""
        h = flt.base_hcm(f"outbound_{listener_name};", mesh=self.mesh)
        h.rds.config_source.CopyFrom(flt.ads_config_source())
        h.rds.route_config_name = chain.rds
        if self.mesh.get("enableTracing") is not False:
            proxy = self.ctx.proxy
            h.tracing.CopyFrom(flt.tracing(proxy.labels, proxy.namespace))
        h.http_filters.append(flt.peer_metadata(outbound=True))
        if port_proto == protocol.GRPC_WEB:
            h.http_filters.append(flt.grpc_web())
        h.http_filters.append(flt.grpc_stats())
        h.http_filters.append(flt.alpn())
        h.http_filters.append(flt.fault())
        h.http_filters.append(flt.cors())
        h.http_filters.extend(stats_http_filters(self.mesh, inbound=False))
        h.http_filters.append(flt.router())
        return flt.network_filter(flt.HCM, h)

    def to_filter_chain(self, chain: Chain, listener_name: str, port_proto: str) -> lc_pb2.FilterChain:
        fc = lc_pb2.FilterChain()
        m = fc.filter_chain_match
        if chain.server_names and "*" not in chain.server_names:
            m.server_names.extend(sorted(chain.server_names))
        for cidr in sorted(_norm_cidrs(chain.prefixes)):
            if cidr.startswith("0.0.0.0"):
                continue
            net = ipaddress.ip_network(cidr, strict=False)
            m.prefix_ranges.add(address_prefix=str(net.network_address), prefix_len={"value": net.prefixlen})
        if chain.transport:
            m.transport_protocol = chain.transport
        if chain.alpn:
            m.application_protocols.extend(chain.alpn)
        if chain.kind == "http":
            fc.filters.append(self.hcm_filter(chain, listener_name, port_proto))
        else:
            fc.filters.extend(chain.filters)
        if chain.metadata:
            fc.metadata.filter_metadata["istio"].CopyFrom(struct_pb2.Struct(
                fields={"config": struct_pb2.Value(string_value=chain.metadata)}))
        fc.transport_socket_connect_timeout.seconds = 15
        if not fc.filter_chain_match.ListFields():
            fc.ClearField("filter_chain_match")
        return fc

    def assemble(self, e: Entry) -> Built:
        """`buildListenerFromEntry`."""
        lst = listener_pb2.Listener(name=e.name)
        sa = lst.address.socket_address
        sa.address, sa.port_value = e.bind, e.port
        lst.traffic_direction = base_pb2.OUTBOUND
        lst.continue_on_listener_filters_timeout = True
        if e.bind_to_port:
            lst.max_connections_to_accept_per_socket_event.value = 1
        else:
            lst.bind_to_port.value = False
            lst.bind_to_port.SetInParent()
        built = Built(lst)
        built.set("address", e.chains[0].origin or prov.default())
        chains = [self.to_filter_chain(c, e.name, e.http_port_proto) for c in e.chains]
        origins = [c.origin for c in e.chains]
        default = None
        default_origin: Origin | None = None
        keep: list[tuple[lc_pb2.FilterChain, Origin | None]] = []
        for fc, chain, origin in zip(chains, e.chains, origins, strict=True):
            if chain.match_all():
                default, default_origin = fc, origin
            else:
                keep.append((fc, origin))
        had_match_all = default is not None
        if default is not None and not keep:
            keep.append((default, default_origin))
            default = None
        needs_tls = any(c.server_names for c in e.chains)
        needs_http = any(c.alpn for c in e.chains)
        if needs_tls:
            lst.listener_filters.append(flt.tls_inspector())
        if needs_http:
            lst.listener_filters.append(flt.http_inspector())
        timeout = durations.parse_duration(self.mesh.get("protocolDetectionTimeout") or "0s") or 0
        if needs_http and timeout:
            lst.listener_filters_timeout.seconds, lst.listener_filters_timeout.nanos = durations.split(timeout)
        else:
            lst.listener_filters_timeout.SetInParent()
        for i, (fc, origin) in enumerate(keep):
            lst.filter_chains.append(fc)
            built.set(f"filter_chains[{i}]", origin or prov.default())
        if default is not None:
            lst.default_filter_chain.CopyFrom(default)
            built.set("default_filter_chain", default_origin or prov.default())
        elif not had_match_all:
            d = lst.default_filter_chain
            d.name = "PassthroughFilterChain"
            d.filter_chain_match.SetInParent()
            d.filters.extend(self.fallthrough_filters())
            built.set("default_filter_chain", prov.default(
                f"no chain matched: fall through to {self.fallthrough_cluster()} "
                "(outboundTrafficPolicy)"))
        return built

    def outbound_mode(self) -> str:
        otp = getattr(self.ctx.scope, "outbound_traffic_policy", None)
        mode = (otp or {}).get("mode") if isinstance(otp, dict) else None
        return str(mode or self.mesh.outbound_mode)

    def dynamic_dns_chain(self, lst: listener_pb2.Listener) -> None:
        """`buildOutboundCatchAllNetworkFilterChains` under ALLOW_ANY_DYNAMIC_DNS: the HTTP inspector
        on virtualOutbound and `buildAllowAnyDynamicDNSHTTPFilterChain` (plaintext HTTP ALPNs →
        an HCM whose inline route config ``allow_any_dynamic_dns`` routes to
        AllowAnyDynamicDNSCluster). Not yet emitted: the dynamic forward proxy HTTP filter and
        the AllowAnyDynamicDNSCluster itself."""
        lst.listener_filters.append(flt.http_inspector())
        fc = lst.filter_chains.add(name="virtualOutbound-catchall-tcp-http")
        fc.filter_chain_match.application_protocols.extend(["http/1.1", "h2c"])
        h = flt.base_hcm("outbound_virtualOutbound_allow_any_dynamic_dns;", mesh=self.mesh)
        rc = h.route_config
        rc.name = ALLOW_ANY_DYNAMIC_DNS_NAME
        rc.validate_clusters.value = False
        rc.validate_clusters.SetInParent()
        rc.max_direct_response_body_size_bytes.value = 1024 * 1024
        rc.ignore_port_in_host_matching = True
        vh = rc.virtual_hosts.add(name=ALLOW_ANY_DYNAMIC_DNS_NAME, domains=["*"])
        r = vh.routes.add(name=ALLOW_ANY_DYNAMIC_DNS_NAME)
        r.match.prefix = "/"
        r.route.cluster = "AllowAnyDynamicDNSCluster"
        r.route.timeout.SetInParent()
        r.route.max_grpc_timeout.SetInParent()
        h.http_filters.append(flt.router())
        fc.filters.append(flt.network_filter("envoy.filters.network.http_connection_manager", h))

    def virtual_outbound(self) -> Built:
        """`buildVirtualOutboundListener`."""
        lst = listener_pb2.Listener(name="virtualOutbound")
        sa = lst.address.socket_address
        sa.address, sa.port_value = WILDCARD, int(self.mesh.get("proxyListenPort") or 15001)
        lst.use_original_dst.value = True
        lst.traffic_direction = base_pb2.OUTBOUND
        lst.max_connections_to_accept_per_socket_event.value = 1
        for log in flt.access_logs(self.mesh, nr_only=True):
            lst.access_log.append(log)
        bh = lst.filter_chains.add(name="virtualOutbound-blackhole")
        bh.filter_chain_match.destination_port.value = sa.port_value
        bh.filters.extend(stats_network_filters(self.mesh, inbound=False))
        bh.filters.append(flt.tcp_proxy(BLACKHOLE, BLACKHOLE))
        dynamic = self.outbound_mode() == "ALLOW_ANY_DYNAMIC_DNS"
        if dynamic:
            self.dynamic_dns_chain(lst)
        catch = lst.filter_chains.add(name="virtualOutbound-catchall-tcp")
        catch.filters.extend(self.fallthrough_filters())
        built = Built(lst)
        built.set("filter_chains[0]", prov.default("direct connections to 15001 would loop: blackhole"))
        if dynamic:
            built.set("filter_chains[1]", prov.default(
                "ALLOW_ANY_DYNAMIC_DNS: plaintext HTTP to an unknown destination goes to "
                "AllowAnyDynamicDNSCluster"))
        built.set(f"filter_chains[{len(lst.filter_chains) - 1}]", prov.default(
            f"traffic to a port without a listener goes to {self.fallthrough_cluster()} "
            f"(outboundTrafficPolicy {self.mesh.outbound_mode})"))
        return built


def _merge_tcp(cur: Entry, incoming: list[Chain]) -> None:
    """`mergeTCPFilterChains`: drop incoming chains whose match equals an existing one."""
    def key(c: Chain) -> tuple[Any, ...]:
        return (c.transport, tuple(c.alpn), frozenset(s for s in c.server_names if s != "*"),
                frozenset(p for p in _norm_cidrs(c.prefixes) if not p.startswith("0.0.0.0")))

    existing = {key(c) for c in cur.chains}
    http_pos = next((i for i, c in enumerate(cur.chains) if c.kind == "http"), len(cur.chains))
    for c in incoming:
        if key(c) in existing:
            continue
        cur.chains.insert(http_pos, c)
        http_pos += 1
        existing.add(key(c))


def _duration(value: Any) -> Any:
    from google.protobuf import duration_pb2

    nanos = durations.parse_duration(value)
    if nanos is None:
        return None
    d = duration_pb2.Duration()
    d.seconds, d.nanos = durations.split(nanos)
    return d


def _is_ip(addr: str) -> bool:
    try:
        ipaddress.ip_address(addr)
    except ValueError:
        return False
    return True


def _norm_cidrs(values: list[str]) -> list[str]:
    out = []
    for v in values:
        try:
            net = ipaddress.ip_network(v, strict=False)
        except ValueError:
            continue
        out.append(f"{net.network_address}/{net.prefixlen}")
    return out


def se_address(address: str) -> str:
    """`serviceentry/conversion.go` `convertServices`: a prefix of full length (/32 for IPv4,
    /128 for IPv6) is a single host and becomes the bare IP; any shorter prefix (an IPv6 /32
    too) stays a CIDR.

    Example:
        >>> se_address("10.1.2.3/32"), se_address("2001:db8::1/128"), se_address("2001:db8::/32")
        ('10.1.2.3', '2001:db8::1', '2001:db8::/32')
    """
    if "/" not in address:
        return address
    try:
        net = ipaddress.ip_network(address, strict=False)
    except ValueError:
        return address
    return str(net.network_address) if net.prefixlen == net.max_prefixlen else address


def _service_cidrs(svc: Service, bind: str) -> list[str]:
    """Destination CIDRs a chain must match: the service's CIDR addresses (SE), else none."""
    return [a for a in (se_address(x) for x in svc.addresses) if "/" in a]


def _hosts_match(a: str, b: str) -> bool:
    """`host.Name.Matches`: symmetric wildcard overlap."""
    if a == "*" or b == "*":
        return True
    if a.startswith("*") and b.startswith("*"):
        return a[1:].endswith(b[1:]) or b[1:].endswith(a[1:])
    if a.startswith("*"):
        return b.endswith(a[1:])
    if b.startswith("*"):
        return a.endswith(b[1:])
    return a == b


def _static_match(m: dict[str, Any], proxy: Any, listen_port: int) -> bool:
    labels = m.get("sourceLabels") or {}
    if any(proxy.labels.get(k) != v for k, v in labels.items()):
        return False
    gws = m.get("gateways") or []
    if gws and "mesh" not in gws:
        return False
    p = m.get("port")
    if p and listen_port and int(p) != listen_port:
        return False
    ns = m.get("sourceNamespace")
    return not ns or ns == proxy.namespace


def _vs_path(res: Any) -> str:
    return f"/apis/networking.istio.io/v1/namespaces/{res.namespace}/virtual-service/{res.name}"


def build_outbound_listeners(ctx: Any, *, ports: Container[int] | None = None) -> list[Built]:
    """Per-port outbound listeners (sorted by name; ``ports``: only those), then virtualOutbound."""
    b = OutboundBuilder(ctx, ports)
    out = b.build()
    out.append(b.virtual_outbound())
    return out
