"""LDS, inbound side: ``virtualInbound`` (15006) and the bind-to-port inbound listeners.

Layer: L4. Imports: model, compiler.{filters,inbound_tls,clusters,draft,names,provenance,retry},
xDS protos.

`core/listener_inbound.go`: one chain config per target port of the proxy's service targets (or per
Sidecar ``ingress`` listener), sorted by target port; per config, one filter chain per row of the
PeerAuthentication mode × protocol table (`inbound_tls.match_options`); in front of them the
blackhole chain and the passthrough chains (workload mode, then ``portLevelMtls`` ports no service
handles); listener filters (original_dst, TLS and HTTP inspectors with ``filter_disabled``
port predicates computed from the chains). HTTP chains get an HCM with the inline inbound route
(`core/httproute.go:buildSidecarInboundHTTPRouteConfig`), TCP chains a tcp_proxy to
``inbound|PORT||``. AuthorizationPolicy and RequestAuthentication filters (:mod:`meshlens.compiler.authz`) go on every
chain built here, passthrough chains included, but not on the blackhole chain.

The ``istio.stats`` filters come from :mod:`meshlens.compiler.telemetry` (only when MeshConfig
``defaultProviders.metrics`` names a Prometheus provider; the code default is empty -- Helm's
configmap sets one). Not emitted, as istiod with its default MeshConfig and no such resources:
user TLS on Sidecar ingress (ENABLE_TLS_ON_SIDECAR_INGRESS is off by default), the HBONE
listeners (ambient is off) and dual-stack additional addresses.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from envoy.config.core.v3 import base_pb2
from envoy.config.listener.v3 import listener_components_pb2 as lc_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2
from envoy.extensions.filters.listener.original_src.v3 import original_src_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.extensions.filters.network.mongo_proxy.v3 import mongo_proxy_pb2
from envoy.extensions.filters.network.redis_proxy.v3 import redis_proxy_pb2

from meshlens import durations
from meshlens.compiler import filters as flt
from meshlens.compiler import inbound_tls as itls
from meshlens.compiler import provenance as prov
from meshlens.compiler.authz import build_authz, record_provenance
from meshlens.compiler.clusters import service_targets
from meshlens.compiler.draft import Built
from meshlens.compiler.names import BLACKHOLE, INBOUND_PASSTHROUGH, cluster_name
from meshlens.compiler.provenance import Origin
from meshlens.compiler.retry import translate_inbound_retry_policy
from meshlens.compiler.telemetry import stats_http_filters, stats_network_filters
from meshlens.model import protocol

VIRTUAL_INBOUND = "virtualInbound"
CATCHALL_HTTP = "virtualInbound-catchall-http"
BLACKHOLE_CHAIN = "virtualInbound-blackhole"
SERVER_NAME = "istio-envoy"
#: a filter chain, the origin of its mTLS mode and the origin of its port (service or ingress)
Chain = tuple[lc_pb2.FilterChain, Origin, Origin | None]


@dataclass(slots=True)
class ChainConfig:
    """`inboundChainConfig`: what one set of filter chains is built for."""

    cluster: str
    port: int  # the service port (vhost name, decorator), 0 for passthrough
    target_port: int  # destination_port match, 0: none
    proto: str
    port_name: str
    bind: str = "0.0.0.0"
    bind_to_port: bool = False
    passthrough: bool = False
    hostname: str = ""  # telemetry InstanceHostname
    k8s_name: str = ""
    k8s_namespace: str = ""
    config_path: str = ""  # filter chain metadata istio.config (Sidecar ingress)
    origin: Origin | None = None  # the service port or Sidecar ingress it comes from

    def name(self, lp: str) -> str:
        """`inboundChainConfig.Name`."""
        if self.passthrough:
            return CATCHALL_HTTP if lp == itls.HTTP else VIRTUAL_INBOUND
        return f"{self.bind}_{self.target_port}"

    def http_stat_prefix(self) -> str:
        return (self.cluster if self.passthrough else f"inbound_{self.name(itls.HTTP)}") + ";"

    def short_hostname(self) -> str:
        return f"{self.k8s_name}.{self.k8s_namespace}" if self.k8s_name else self.hostname


def _interception(ctx: Any) -> str:
    mode = ctx.proxy.workload.annotations.get("sidecar.istio.io/interceptionMode", "REDIRECT")
    return mode if mode in ("REDIRECT", "TPROXY", "NONE") else "REDIRECT"


def _ipv6_only(ctx: Any) -> bool:
    try:
        return ipaddress.ip_address(ctx.proxy.ip).version == 6
    except ValueError:
        return False


def _wildcard(ctx: Any) -> str:
    return "::" if _ipv6_only(ctx) else "0.0.0.0"


def _global_unicast(ip: str) -> str:
    """`GlobalUnicastIP` (Go's ``IsGlobalUnicast``: private ranges count)."""
    try:
        a = ipaddress.ip_address(ip)
    except ValueError:
        return ""
    if a.is_unspecified or a.is_loopback or a.is_link_local or a.is_multicast \
            or str(a) == "255.255.255.255":
        return ""
    return str(a)


def _static_ports(ctx: Any) -> set[int]:
    """The sidecar's static listeners: status (15021) and Prometheus (15090)."""
    status = ctx.proxy.workload.annotations.get("status.sidecar.istio.io/port", "15021")
    return {int(status) if str(status).isdigit() else 15021, 15090}


def _mesh_port(mesh: Any, key: str, default: int) -> int:
    value = mesh.get(key)
    return int(value) if isinstance(value, int) else default


def _service_chain_configs(ctx: Any) -> list[ChainConfig]:
    """`getFilterChainsByServicePort`: first service target per target port wins."""
    mesh = ctx.mesh.mesh_config
    reserved = _static_ports(ctx) | {_mesh_port(mesh, "proxyListenPort", 15001),
                                     _mesh_port(mesh, "proxyInboundListenPort", 15006)}
    out: dict[int, ChainConfig] = {}
    for t in service_targets(ctx, ctx.proxy.workload):
        if t.target_port in reserved or t.target_port in out:
            continue  # CanBindToPort (reserved listener), then reportInboundConflict
        svc, port = t.service, t.port
        k8s = svc.registry == "Kubernetes"
        note = f"service {svc.name}.{svc.namespace} port {port.port} → targetPort {t.target_port}"
        if port.protocol == protocol.UDP:
            note += "; a UDP port gets TCP chains (istiod's protocol class is 'unknown')"
        out[t.target_port] = ChainConfig(
            cluster_name("inbound", t.target_port, "", ""), port.port, t.target_port, port.protocol,
            port.name, bind=_wildcard(ctx), hostname=svc.hostname,
            k8s_name=svc.name if k8s else "", k8s_namespace=svc.namespace if k8s else "",
            origin=prov.from_resource(svc.resource, ("spec", "ports", port.index), prov.REGISTRY,
                                      note))
    return [out[p] for p in sorted(out)]


def _sidecar_chain_configs(ctx: Any, sc: Any) -> list[ChainConfig]:
    """`buildInboundChainConfigs` with Sidecar ``ingress`` listeners (they replace the services)."""
    interception = _interception(ctx)
    out: dict[int, ChainConfig] = {}
    for i, ing in enumerate(sc.spec.get("ingress") or []):
        if not isinstance(ing, dict) or not isinstance(ing.get("port"), dict):
            continue
        number = int(ing["port"].get("number") or 0)
        proto = protocol.parse(str(ing["port"].get("protocol") or ""))
        capture = str(ing.get("captureMode") or "DEFAULT")
        bind_to_port = interception == "NONE" if capture == "DEFAULT" else capture == "NONE"
        bind = str(ing.get("bind") or "")
        # conflictWithReservedListener: only wildcard (or unset for HTTP) binds hit 15021/15090.
        if (bind == _wildcard(ctx) or (not bind and protocol.is_http(proto))) \
                and number in _static_ports(ctx):
            continue
        if not bind:
            bind = _global_unicast(ctx.proxy.ip) or _wildcard(ctx)
        if number in out:
            continue
        out[number] = ChainConfig(
            cluster_name("inbound", number, "", ""), number, number, proto,
            str(ing["port"].get("name") or ""), bind=bind, bind_to_port=bind_to_port,
            hostname=f"{sc.name}.{sc.namespace}",
            config_path=f"/apis/networking.istio.io/v1/namespaces/{sc.namespace}/sidecar/{sc.name}",
            origin=prov.from_resource(sc, ("spec", "ingress", i), "sidecar ingress",
                                      f"port {number}"))
    return [out[p] for p in sorted(out)]


def _ingress_ports(sc: Any) -> set[int]:
    return {int(ing["port"].get("number") or 0) for ing in sc.spec.get("ingress") or []
            if isinstance(ing, dict) and isinstance(ing.get("port"), dict)}


class _InboundBuilder:
    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx
        self.mesh = ctx.mesh.mesh_config
        self.options = ctx.options
        proxy = ctx.proxy
        self.mtls = ctx.mesh.peer_authentications.compose(proxy.namespace, proxy.labels)
        sc = ctx.scope.sidecar
        self.sidecar = sc if sc is not None and sc.spec.get("ingress") else None
        self.authz = build_authz(ctx.mesh, proxy)  # AuthorizationPolicy filters, built once

    # -- chain configs ------------------------------------------------------------------------
    def chain_configs(self) -> list[ChainConfig]:
        if self.sidecar is not None:
            return _sidecar_chain_configs(self.ctx, self.sidecar)
        if _interception(self.ctx) == "NONE":
            return []  # no Sidecar ingress: nothing may bind the application's ports
        return _service_chain_configs(self.ctx)

    def handled_ports(self) -> set[int]:
        """`needPerPortPassthroughFilterChain`: the ports a Sidecar ingress or a service target
        covers (no per-port passthrough chains for them)."""
        if self.sidecar is not None:
            return _ingress_ports(self.sidecar)
        return {t.target_port for t in service_targets(self.ctx, self.ctx.proxy.workload)}

    # -- filter chains ------------------------------------------------------------------------
    def chains(self, cc: ChainConfig, mtls: itls.MtlsSettings,
               opts: list[itls.MatchOption]) -> list[Chain]:
        """`inboundChainForOpts`: one filter chain per match option."""
        out = []
        for opt in opts:
            fc = lc_pb2.FilterChain(name=cc.name(opt.protocol))
            m = fc.filter_chain_match
            if cc.target_port > 0:
                m.destination_port.value = cc.target_port
            m.transport_protocol = opt.transport
            m.application_protocols.extend(opt.alpn)
            http = opt.protocol == itls.HTTP
            fc.filters.extend(self.http_filters(cc) if http else self.tcp_filters(cc))
            tls = mtls.context(opt)
            if tls is not None:
                fc.transport_socket.CopyFrom(itls.downstream_socket(tls))
            if cc.config_path:
                fc.metadata.filter_metadata["istio"].update({"config": cc.config_path})
            what = ("mTLS " if opt.tls else "") + f"{opt.protocol} over {opt.transport}"
            out.append((fc, mtls.origin(what), cc.origin))
        return out

    def http_filters(self, cc: ChainConfig) -> list[lc_pb2.Filter]:
        """`buildInboundNetworkFiltersForHTTP`: metadata exchange, then the HCM."""
        out = [flt.tcp_mx()] if self.options.metadata_exchange else []
        out.append(flt.network_filter(flt.HCM, self.hcm(cc)))
        return out

    def hcm(self, cc: ChainConfig) -> hcm_pb2.HttpConnectionManager:
        """`buildSidecarInboundHTTPOpts` + `buildHTTPConnectionManager` (inbound class)."""
        h = flt.base_hcm(cc.http_stat_prefix(), mesh=self.mesh)
        h.forward_client_cert_details = hcm_pb2.HttpConnectionManager.APPEND_FORWARD
        details = h.set_current_client_cert_details
        details.subject.value = True
        details.dns = True
        details.uri = True
        h.server_name = SERVER_NAME
        if protocol.is_http2(cc.proto):
            h.http2_protocol_options.SetInParent()
        _apply_path_normalization(h, self.mesh.get("pathNormalization"))
        h.route_config.CopyFrom(self.route_config(cc))
        if self.mesh.get("enableTracing"):
            h.tracing.CopyFrom(flt.tracing(self.ctx.proxy.labels, self.ctx.proxy.namespace))
        if self.options.metadata_exchange:
            h.http_filters.append(flt.peer_metadata(outbound=False))
        h.http_filters.extend(self.authz.http_filters(self.authz.custom_http))
        h.http_filters.extend(self.authz.authn_filters())
        h.http_filters.extend(self.authz.http_filters(self.authz.local_http))
        if cc.proto == protocol.GRPC_WEB:
            h.http_filters.append(flt.grpc_web())
        h.http_filters.extend([flt.grpc_stats(), flt.fault(), flt.cors()])
        h.http_filters.extend(stats_http_filters(self.mesh, inbound=True))
        h.http_filters.append(flt.router())
        return h

    def route_config(self, cc: ChainConfig) -> route_pb2.RouteConfiguration:
        """`buildSidecarInboundHTTPRouteConfig` / `BuildDefaultHTTPInboundRoute`."""
        rc = route_pb2.RouteConfiguration(name=cc.cluster)
        rc.validate_clusters.SetInParent()  # false
        vh = rc.virtual_hosts.add(name=f"inbound|http|{cc.port}", domains=["*"])
        r = vh.routes.add(name="default")
        r.match.prefix = "/"
        host = f"[{cc.hostname}]" if ":" in cc.hostname else cc.hostname
        r.decorator.operation = f"{host}:{cc.port}/*"
        action = r.route
        action.cluster = cc.cluster
        action.timeout.SetInParent()
        action.max_stream_duration.max_stream_duration.SetInParent()
        action.max_stream_duration.grpc_timeout_header_max.SetInParent()
        # reset-before-request retries break gRPC streaming: never on gRPC ports.
        if cc.proto not in (protocol.GRPC, protocol.GRPC_WEB):
            policy = translate_inbound_retry_policy(self.mesh.get("defaultInboundHttpRetryPolicy"))
            if policy is not None:
                action.retry_policy.CopyFrom(policy)
        return rc

    def tcp_filters(self, cc: ChainConfig) -> list[lc_pb2.Filter]:
        """`buildInboundNetworkFilters`: MX, the protocol filter (Mongo, Redis), tcp_proxy."""
        stat = cc.cluster
        pattern = self.mesh.get("inboundClusterStatName")
        if pattern:
            stat = _inbound_stat_prefix(str(pattern), cc)
        out = [flt.tcp_mx()] if self.options.metadata_exchange else []
        out.extend(self.authz.tcp_filters())
        out.extend(stats_network_filters(self.mesh, inbound=True))
        tcp = flt.tcp_proxy(stat, cc.cluster, logs=flt.access_logs(self.mesh))
        if cc.proto == protocol.MONGO:  # PILOT_ENABLE_MONGO_FILTER defaults to true
            out.append(flt.network_filter("envoy.filters.network.mongo_proxy",
                                          mongo_proxy_pb2.MongoProxy(stat_prefix=stat)))
        if cc.proto == protocol.REDIS and self.options.enable_redis_filter:
            out.append(_redis_filter(stat, cc.cluster))  # terminal: replaces tcp_proxy
        else:
            out.append(tcp)
        return out

    def blackhole(self) -> Chain:
        """`buildInboundBlackhole`: traffic to 15006 itself would loop."""
        fc = lc_pb2.FilterChain(name=BLACKHOLE_CHAIN)
        fc.filter_chain_match.destination_port.value = _mesh_port(
            self.mesh, "proxyInboundListenPort", 15006)
        if self.options.metadata_exchange:
            fc.filters.append(flt.tcp_mx())
        fc.filters.extend(stats_network_filters(self.mesh, inbound=True))
        fc.filters.append(flt.tcp_proxy(BLACKHOLE, BLACKHOLE))
        return fc, prov.default("direct connections to the inbound port would loop"), None

    def passthrough(self) -> list[Chain]:
        """`buildInboundPassthroughChains`: blackhole, then Auto-protocol chains to
        InboundPassthroughCluster for the workload mode and each unhandled port-level port."""
        out = [self.blackhole()]
        for mtls in itls.passthrough_settings(self.mtls, self.handled_ports(), mesh=self.mesh,
                                              options=self.options):
            cc = ChainConfig(INBOUND_PASSTHROUGH, 0, mtls.port, protocol.UNSUPPORTED,
                             VIRTUAL_INBOUND, passthrough=True)
            out.extend(self.chains(cc, mtls, itls.match_options(mtls.mode, itls.AUTO)))
        return out

    # -- listeners ----------------------------------------------------------------------------
    def listener(self, name: str, address: str, port: int, *, bind_to_port: bool,
                 chains: list[Chain], origin: Origin) -> Built:
        """`buildInboundListener`."""
        lst = listener_pb2.Listener(name=name)
        lst.address.socket_address.address = address
        lst.address.socket_address.port_value = port
        lst.traffic_direction = base_pb2.INBOUND
        lst.continue_on_listener_filters_timeout = True
        # MAX_CONNECTIONS_PER_SOCKET_EVENT_LOOP defaults to 1
        lst.max_connections_to_accept_per_socket_event.value = 1
        tproxy = _interception(self.ctx) == "TPROXY"
        if not bind_to_port and tproxy:
            lst.transparent.value = True
        built = Built(lst)
        built.set("address", origin)
        if not self.mesh.get("disableEnvoyListenerLog"):
            for log in flt.access_logs(self.mesh, nr_only=True):
                lst.access_log.append(log)
            if lst.access_log:
                built.set("access_log", Origin("mesh default", None, ("accessLogFile",),
                                               self.mesh.doc, "connections no chain matched (NR)"))
        for i, (fc, mode_origin, port_origin) in enumerate(chains):
            lst.filter_chains.append(fc)
            built.set(f"filter_chains[{i}]", mode_origin)
            record_provenance(built, i, fc, self.authz)
            if port_origin is not None:
                built.set(f"filter_chains[{i}].filter_chain_match.destination_port", port_origin)
        for i, (f, note) in enumerate(listener_filters(lst, bind_to_port=bind_to_port,
                                                       tproxy=tproxy)):
            lst.listener_filters.append(f)
            built.set(f"listener_filters[{i}]", prov.default(note))
        timeout = durations.parse_duration(self.mesh.get("protocolDetectionTimeout") or "0s") or 0
        lst.listener_filters_timeout.seconds, lst.listener_filters_timeout.nanos = \
            durations.split(timeout)
        lst.listener_filters_timeout.SetInParent()
        return built

    def build(self) -> list[Built]:
        """`buildInboundListeners`."""
        virtual: list[Chain] = []
        bound: list[Built] = []
        for cc in self.chain_configs():
            mtls = itls.settings(self.mtls, cc.target_port, mesh=self.mesh, options=self.options)
            lp = itls.listener_protocol(cc.proto)
            chains = self.chains(cc, mtls, itls.match_options(mtls.mode, lp))
            if cc.bind_to_port:
                bound.append(self.listener(cc.name(itls.TCP), cc.bind, cc.target_port,
                                           bind_to_port=True, chains=chains,
                                           origin=cc.origin or prov.default()))
            else:
                virtual.extend(chains)
        if _interception(self.ctx) == "NONE":
            return bound
        port = _mesh_port(self.mesh, "proxyInboundListenPort", 15006)
        vi = self.listener(VIRTUAL_INBOUND, _wildcard(self.ctx), port, bind_to_port=False,
                           chains=self.passthrough() + virtual,
                           origin=prov.default("inbound traffic is redirected here by iptables"))
        return [vi, *bound]


def _apply_path_normalization(h: hcm_pb2.HttpConnectionManager, setting: Any) -> None:
    """MeshConfig ``pathNormalization`` (`buildHTTPConnectionManager`); DEFAULT/BASE is the
    ``normalize_path: true`` base_hcm already sets."""
    mode = setting.get("normalization") if isinstance(setting, dict) else None
    if mode == "NONE":
        h.normalize_path.value = False
    elif mode in ("MERGE_SLASHES", "DECODE_AND_MERGE_SLASHES"):
        h.merge_slashes = True
        if mode == "DECODE_AND_MERGE_SLASHES":
            h.path_with_escaped_slashes_action = hcm_pb2.HttpConnectionManager.UNESCAPE_AND_FORWARD


def _inbound_stat_prefix(pattern: str, cc: ChainConfig) -> str:
    """`telemetry.BuildInboundStatPrefix` (no %TARGET_PORT% on inbound)."""
    out = pattern.replace("%SERVICE%", cc.short_hostname())
    out = out.replace("%SERVICE_NAME%", cc.k8s_name or cc.hostname)
    out = out.replace("%SERVICE_FQDN%", cc.hostname).replace("%SUBSET_NAME%", "")
    out = out.replace("%SERVICE_PORT%", str(cc.port))
    return out.replace("%SERVICE_PORT_NAME%", cc.port_name)


def _redis_filter(stat: str, cluster: str) -> lc_pb2.Filter:
    """`buildRedisFilter` (PILOT_ENABLE_REDIS_FILTER)."""
    cfg = redis_proxy_pb2.RedisProxy(stat_prefix=stat, latency_in_micros=True)
    cfg.settings.op_timeout.seconds = 5
    cfg.prefix_routes.catch_all_route.cluster = cluster
    return flt.network_filter("envoy.filters.network.redis_proxy", cfg)


def listener_filters(lst: listener_pb2.Listener, *, bind_to_port: bool,
                     tproxy: bool = False) -> list[tuple[lc_pb2.ListenerFilter, str]]:
    """`populateListenerFilters`: original_dst (and original_src for TPROXY) on the virtual
    listener, then the TLS and HTTP inspectors with their port predicates."""
    out: list[tuple[lc_pb2.ListenerFilter, str]] = []
    if not bind_to_port:
        out.append((flt.original_dst(), "recover the original destination of redirected traffic"))
        if tproxy:
            out.append((flt.listener_filter("envoy.filters.listener.original_src",
                                            original_src_pb2.OriginalSrc(mark=1337)),
                        "TPROXY: keep the client's source address"))
    return out + itls.inspector_filters(lst.filter_chains)


def build_inbound_listeners(ctx: Any) -> list[Built]:
    """The sidecar's inbound listeners: ``virtualInbound`` first (unless interception is NONE),
    then the bind-to-port listeners of Sidecar ``ingress`` entries with ``captureMode: NONE``.

    Args:
        ctx: a ``ClusterContext`` (mesh, proxy, scope, options).

    Returns:
        One ``Built`` per listener, with the PeerAuthentication (or default) that chose each
        filter chain's mTLS mode recorded at ``filter_chains[i]``.
    """
    if _mesh_port(ctx.mesh.mesh_config, "proxyListenPort", 15001) <= 0:
        return []  # buildSidecarListeners: no sidecar listeners at all
    return _InboundBuilder(ctx).build()
