"""CDS: which clusters a sidecar gets, and how each is built.

Layer: L4. Imports: model, compiler.{draft,names,provenance,traffic_policy,tls,endpoints}.

`core/cluster.go:buildClusters/buildOutboundClusters/buildInboundClusters` and
`core/cluster_builder.go`: default clusters per service port, one subset cluster per
DestinationRule subset, BlackHole/Passthrough, inbound clusters, InboundPassthroughCluster.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from collections.abc import Container
from typing import Any

from envoy.config.cluster.v3 import cluster_pb2, filter_pb2
from envoy.config.core.v3 import health_check_pb2
from envoy.config.endpoint.v3 import endpoint_components_pb2 as ec_pb2
from envoy.extensions.network.dns_resolver.cares.v3 import cares_dns_resolver_pb2
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2 as hpo_pb2
from google.protobuf import struct_pb2
from udpa.type.v1 import typed_struct_pb2

from meshlens import durations
from meshlens.compiler import endpoints as eds
from meshlens.compiler import provenance as prov
from meshlens.compiler import tls as tlsmod
from meshlens.compiler import traffic_policy as tp
from meshlens.compiler.cache import BuildCache, ClusterKey
from meshlens.compiler.draft import HPO_KEY, ClusterDraft, fill_struct_value
from meshlens.compiler.names import (BLACKHOLE, INBOUND_PASSTHROUGH, PASSTHROUGH, cluster_name,
                                     sni_name)
from meshlens.compiler.provenance import Origin
from meshlens.model import protocol
from meshlens.model.destination_rules import ConsolidatedRule, choose
from meshlens.model.peer_auth import DISABLE
from meshlens.model.policy import Policy, mesh_overlay, port_level, subset_policy
from meshlens.model.registry import CLUSTER_ID, Endpoint, Service, ServicePort, Workload

Cluster = cluster_pb2.Cluster
_RESOLUTION = {"ClientSideLB": Cluster.EDS, "DNSLB": Cluster.STRICT_DNS,
               "DNSRoundRobinLB": Cluster.LOGICAL_DNS, "Passthrough": Cluster.ORIGINAL_DST}
MX_TYPE_URL = "type.googleapis.com/envoy.tcp.metadataexchange.config.MetadataExchange"


@dataclass(slots=True)
class BuiltCluster:
    cluster: cluster_pb2.Cluster
    origins: dict[str, Origin]
    dropped: list[Any]
    service: Service | None = None
    port: ServicePort | None = None
    subset: str = ""
    rule: ConsolidatedRule | None = None


@dataclass(slots=True)
class ClusterContext:
    """Everything the cluster builders read for one proxy; ``cache`` is the run's shared
    :class:`~meshlens.compiler.cache.BuildCache`."""

    mesh: Any  # model.Mesh
    proxy: Any  # model.Proxy
    scope: Any  # model.scope.SidecarScope
    options: Any  # CompileOptions
    policy_ctx: tp.PolicyContext
    cache: BuildCache = field(default_factory=BuildCache)
    rule_cache: dict[tuple[str, str], ConsolidatedRule | None] = field(default_factory=dict)
    proxy_keys: dict[Any, Any] = field(default_factory=dict)  # RuleKey → this proxy's ProxyKey
    gateway: Any = None  # model.gateways.MergedGateway, for a router (gateway) proxy

    def __post_init__(self) -> None:
        self.cache.bind(self.mesh)

    def rule_for(self, svc: Service, *, outbound: bool = True) -> ConsolidatedRule | None:
        key = (svc.hostname, "out" if outbound else "in")
        if key not in self.rule_cache:
            rules = self.mesh.destination_rules.lookup(self.proxy.namespace, svc.hostname, svc.namespace)
            self.rule_cache[key] = choose(rules, outbound=outbound, proxy_ns=self.proxy.namespace,
                                          proxy_labels=self.proxy.labels)
        return self.rule_cache[key]

    def sans(self, svc: Service) -> list[str]:
        """`PushContext.ServiceAccounts`: endpoint identities ∪ declared ones, sorted (per
        service, from the mesh alone: shared by every proxy of the run)."""
        return self.cache.memo("sans", (svc.hostname, svc.namespace, id(svc)),  # type: ignore[no-any-return]
                               lambda: _service_accounts(self.mesh, svc))


def _service_accounts(mesh: Any, svc: Service) -> list[str]:
    out = {ep.service_account for ep in mesh.registry.endpoints_of(svc) if ep.service_account}
    out |= set(svc.service_accounts)
    td = mesh.mesh_config.trust_domain
    for alias in mesh.mesh_config.get("trustDomainAliases") or []:
        out |= {s.replace(f"spiffe://{td}/", f"spiffe://{alias}/", 1) for s in list(out)
                if s.startswith(f"spiffe://{td}/")}
    return sorted(out)


def _proxy_ipv6_only(ctx: ClusterContext) -> bool:
    """`Proxy.GetIPMode() == IPv6`: the proxy's (single) pod IP is an IPv6 address."""
    return ctx.cache.ip_version(ctx.proxy.ip) == 6


def _passthrough_bind_ip(ctx: ClusterContext) -> str:
    """`getPassthroughBindIPs`: 127.0.0.6, or ::6 for an IPv6-only proxy."""
    return "::6" if _proxy_ipv6_only(ctx) else "127.0.0.6"


def _mx_filter() -> filter_pb2.Filter:
    ts = typed_struct_pb2.TypedStruct(type_url=MX_TYPE_URL)
    ts.value.update({"protocol": "istio-peer-exchange", "enable_discovery": True})
    f = filter_pb2.Filter(name="istio.metadata_exchange")
    f.typed_config.Pack(ts)
    return f


def _set_upstream_protocol(d: ClusterDraft, port: ServicePort, *, sidecar: bool = True) -> None:
    """`setUpstreamProtocol`: explicit h2 for HTTP2/gRPC, downstream protocol for auto ports
    (sidecars only: gateways do no protocol detection)."""
    if protocol.is_http2(port.protocol):
        d.http_options().explicit_http_config.http2_protocol_options.SetInParent()
        d.set("typed_extension_protocol_options.explicit_http_config.http2_protocol_options",
              prov.from_resource(d.service.resource, _port_path(d.service, port), prov.REGISTRY,
                                 f"port protocol {port.protocol}"))
    elif protocol.is_unsupported(port.protocol) and sidecar:
        u = d.http_options().use_downstream_protocol_config
        u.http_protocol_options.SetInParent()
        u.http2_protocol_options.SetInParent()
        d.set("typed_extension_protocol_options.use_downstream_protocol_config",
              prov.from_resource(d.service.resource, _port_path(d.service, port), prov.REGISTRY,
                                 "protocol not declared: detected from traffic, the upstream "
                                 "protocol follows the downstream one"))


def _port_path(svc: Service, port: ServicePort) -> tuple[str | int, ...]:
    if svc.registry == "Kubernetes":
        return ("spec", "ports", port.index)
    return ("spec", "ports", port.index)


def _as_value(value: Any) -> struct_pb2.Value:
    v = struct_pb2.Value()
    fill_struct_value(v, value)
    return v


def _services_meta(svc: Service) -> list[dict[str, str]]:
    return [{"host": svc.hostname, "name": svc.name, "namespace": svc.namespace}]


def _base_cluster(ctx: ClusterContext, name: str, ctype: int, svc: Service, port: ServicePort,
                  subset: str, lb_eps: list[ec_pb2.LocalityLbEndpoints] | None) -> ClusterDraft | None:
    """`buildCluster`: name, type, DNS fields, load_assignment, protocol, telemetry metadata."""
    d = ClusterDraft(name, service=svc, port=port, subset=subset)
    c = d.c
    c.type = ctype
    c.common_lb_config.SetInParent()
    d.set("type", prov.from_resource(svc.resource, ("spec",), prov.REGISTRY,
                                     f"{svc.registry} service resolution {svc.resolution}"))
    if ctype in (Cluster.STRICT_DNS, Cluster.LOGICAL_DNS):
        # `util.SelectDNSLookupFamily`: IPv6-only proxy → V6_ONLY; RACE_FIRST_TCP_CONNECT → ALL.
        c.dns_lookup_family = Cluster.ALL if svc.connect_strategy else (
            Cluster.V6_ONLY if _proxy_ipv6_only(ctx) else Cluster.V4_ONLY)
        c.typed_dns_resolver_config.name = "envoy.network.dns_resolver.cares"
        c.typed_dns_resolver_config.typed_config.Pack(cares_dns_resolver_pb2.CaresDnsResolverConfig(
            udp_max_queries={"value": ctx.options.dns_cares_udp_max_queries}))
        c.dns_jitter.seconds, c.dns_jitter.nanos = durations.split(ctx.options.dns_jitter_nanos)
        c.dns_refresh_rate.seconds, c.dns_refresh_rate.nanos = durations.split(
            durations.parse_duration(ctx.mesh.mesh_config.get("dnsRefreshRate")) or 60_000_000_000)
        c.respect_dns_ttl = True
        d.set("dns_refresh_rate", prov.default("MeshConfig.dnsRefreshRate"))
    if ctype in (Cluster.STRICT_DNS, Cluster.LOGICAL_DNS, Cluster.STATIC):
        if not lb_eps:
            return None  # a DNS cluster without endpoints is not generated
        c.load_assignment.cluster_name = name
        c.load_assignment.endpoints.extend(lb_eps)
        d.set("load_assignment", prov.from_resource(svc.resource, ("spec",), prov.REGISTRY))
    if ctype == Cluster.ORIGINAL_DST and port.port in svc.passthrough_target_ports:
        c.original_dst_lb_config.upstream_port_override.value = svc.passthrough_target_ports[port.port]
        d.set("original_dst_lb_config.upstream_port_override",
              prov.from_resource(svc.resource, ("spec", "ports", port.index, "targetPort"), prov.REGISTRY))
    _set_upstream_protocol(d, port, sidecar=not ctx.proxy.is_router)
    if ctx.options.telemetry_label:
        # the same list value in every cluster of the service: built once (`buildServiceMetadata`)
        d.meta["services"] = ctx.cache.memo(
            "services_meta", (svc.hostname, svc.name, svc.namespace),
            lambda: _as_value(_services_meta(svc)))
        d.set("metadata.filter_metadata.istio.services",
              prov.from_resource(svc.resource, ("metadata", "name"), prov.REGISTRY,
                                 "telemetry: the service this cluster belongs to"))
    d.set("alt_stat_name", prov.default("the cluster name and ';' (stats prefix)"))
    c.alt_stat_name = _alt_stat_name(ctx, name, svc, port, subset)
    if ctx.mesh.mesh_config.get("outboundClusterStatName"):
        d.set("alt_stat_name", Origin("mesh default", None, ("outboundClusterStatName",),
                                      ctx.mesh.mesh_config.doc))
    return d


def _alt_stat_name(ctx: ClusterContext, name: str, svc: Service, port: ServicePort, subset: str) -> str:
    stat = ctx.mesh.mesh_config.get("outboundClusterStatName")
    return _stat_prefix(str(stat), svc, subset, port, 0) + ";" if stat else name + ";"


def _stat_prefix(pattern: str, svc: Service, subset: str, port: ServicePort, target: int) -> str:
    """`telemetry.BuildStatPrefix`."""
    service = f"{svc.name}.{svc.namespace}" if svc.registry == "Kubernetes" else svc.hostname
    out = pattern
    for token, value in (("%SERVICE%", service), ("%SERVICE_NAME%", svc.name),
                         ("%SERVICE_FQDN%", svc.hostname), ("%SUBSET_NAME%", subset),
                         ("%TARGET_PORT%", str(target)), ("%SERVICE_PORT%", str(port.port)),
                         ("%SERVICE_PORT_NAME%", port.name)):
        out = out.replace(token, value)
    return out


def infer_mtls_mode(ctx: ClusterContext, svc: Service, raw_tp: Any, port: ServicePort) -> str:
    """`BestEffortInferServiceMTLSMode`."""
    if svc.mesh_external:
        return "UNKNOWN"
    lb = raw_tp.tp.get("loadBalancer") if raw_tp is not None else None
    passthrough = isinstance(lb, dict) and lb.get("simple") == "PASSTHROUGH"
    if svc.resolution == "Passthrough" or passthrough:
        eps = [e for e in ctx.mesh.registry.endpoints_of(svc) if e.service_port_name == port.name]
        if not eps or any(e.tls_mode == "disabled" for e in eps):
            return DISABLE
    mode = ctx.mesh.peer_authentications.namespace_mode(svc.namespace).mode
    return mode if mode != "UNSET" else "PERMISSIVE"


def _apply_policy(ctx: ClusterContext, d: ClusterDraft, pol: Policy, *, svc: Service,
                  port: ServicePort, subset: str, mtls_mode: str, rule: ConsolidatedRule | None,
                  tls: bool = True) -> None:
    """`applyTrafficPolicy` for an outbound cluster (``tls`` False: SNI-DNAT mode, no TLS)."""
    _apply_policy_head(ctx, d, pol, svc=svc, port=port)
    _apply_policy_tls(ctx, d, pol, svc=svc, port=port, subset=subset, mtls_mode=mtls_mode, rule=rule,
                      tls=tls)


def _apply_policy_head(ctx: ClusterContext, d: ClusterDraft, pol: Policy, *, svc: Service,
                       port: ServicePort) -> None:
    """The part of `applyTrafficPolicy` that does not depend on the subset name or the cluster
    name (connection pool, outlier detection, load balancer): equal for a service port's
    default cluster and each subset without a policy of its own (see :func:`_build_subset`)."""
    pctx = ctx.policy_ctx
    cp = pol.get("connectionPool")
    tp.apply_h2_upgrade(d, cp, port.protocol, pctx)
    tp.apply_connection_pool(d, cp, pol.get("retryBudget"), pctx)
    forces = ctx.options.send_unhealthy_endpoints or bool(svc.traffic_distribution)
    tp.apply_outlier_detection(d, pol.get("outlierDetection"), pctx, forces)
    supports = ctx.options.auto_send_unhealthy_endpoints or forces

    def locality(draft: ClusterDraft, lb: Any) -> None:
        _apply_locality(ctx, draft, lb, svc)

    tp.apply_load_balancer(d, pol.get("loadBalancer"), pctx, supports_unhealthy=supports,
                           locality_apply=locality)


def _apply_policy_tls(ctx: ClusterContext, d: ClusterDraft, pol: Policy, *, svc: Service,
                      port: ServicePort, subset: str, mtls_mode: str, rule: ConsolidatedRule | None,
                      tls: bool = True) -> None:
    """The rest of `applyTrafficPolicy`: upstream TLS (its SNI names the subset), proxy protocol."""
    pctx = ctx.policy_ctx
    tls_block = pol.get("tls") if tls else None
    choice = None if not tls else tlsmod.choose_tls(
        tls_block, sans=ctx.sans(svc), default_sni=sni_name("outbound", port.port, subset, svc.hostname),
        auto_mtls=ctx.mesh.mesh_config.auto_mtls, mesh_external=svc.mesh_external, mtls_mode=mtls_mode,
        origin_of=lambda b, *sub: prov.from_block(b, *sub))
    if choice is not None and choice.mode in ("SIMPLE", "MUTUAL"):
        tlsmod.auto_sni_san(d, choice)
    if choice is not None:
        context = tlsmod.build_context(
            choice, h2=d.is_h2(), options=ctx.options,
            external_sans=ctx.sans(svc) if svc.registry == "External" else None,
            sidecar_selector=bool(rule and rule.selector is not None) or ctx.proxy.is_router,
            mesh=ctx.mesh.mesh_config, memo=ctx.cache.memo)
        if context is None and choice.mode in ("SIMPLE", "MUTUAL"):
            d.set("transport_socket", Origin(prov.QUIRK, choice.origin.resource, choice.origin.field,
                                             choice.origin.doc,
                                             "no TLS is sent: credentialName needs a workloadSelector "
                                             "on sidecars, or MUTUAL lacks clientCertificate/privateKey"))
        tlsmod.apply_tls(d, choice, context, original_dst=d.c.type == Cluster.ORIGINAL_DST)
    if tls_block is not None and tls_block.value.get("mode") in ("SIMPLE", "MUTUAL"):
        d.meta["alpn_override"] = "false"
    if tls_block is not None and tls_block.value.get("mode") == "DISABLE":
        # No transport socket is set; record why, so a plaintext-to-STRICT trace can point here.
        d.set("transport_socket", prov.from_block(tls_block, "mode", note="tls.mode DISABLE: plaintext"))
    tp.apply_proxy_protocol(d, pol.get("proxyProtocol"), pctx)
    if d.c.type == Cluster.ORIGINAL_DST:
        d.c.lb_policy = Cluster.CLUSTER_PROVIDED


def effective_lb_setting(mesh_config: Any, lbv: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """`loadbalancer.GetEffectiveLbSetting` (without traffic distribution): DR zoneAware, DR
    locality, mesh zoneAware, mesh locality; ("zone", s) or ("locality", s), None when off."""
    za, loc = lbv.get("zoneAwareLbSetting"), lbv.get("localityLbSetting")
    if isinstance(za, dict):
        return "zone", za
    if not isinstance(loc, dict):
        za = mesh_config.get("zoneAwareLbSetting")
        if isinstance(za, dict):
            return "zone", za
        loc = mesh_config.get("localityLbSetting") or {}
    if not isinstance(loc, dict) or loc.get("enabled") is False:
        return None
    return "locality", loc


def _apply_locality(ctx: ClusterContext, d: ClusterDraft, lb: Any, svc: Service | None = None) -> None:
    """`GetEffectiveLbSetting` + `ApplyToCluster` (cluster part and inline load_assignment)."""
    c = d.c
    lbv = lb.value if lb else {}
    eff = effective_lb_setting(ctx.mesh.mesh_config, lbv)
    if eff is None:
        return
    kind, setting = eff
    if kind == "zone":
        _apply_zone_aware(ctx, d, lb, setting)
        return
    force = False
    enable_failover = force or c.HasField("outlier_detection")
    if ctx.options.locality_weighted_lb_config or (enable_failover and (
            setting.get("failover") or setting.get("failoverPriority"))) or setting.get("distribute"):
        c.common_lb_config.locality_weighted_lb_config.SetInParent()
        d.set("common_lb_config.locality_weighted_lb_config",
              prov.from_block(lb, "localityLbSetting") if lb and "localityLbSetting" in lbv
              else Origin("mesh default", None, ("localityLbSetting",), ctx.mesh.mesh_config.doc))
    if c.HasField("load_assignment"):
        locs = list(c.load_assignment.endpoints)
        eps = ctx.mesh.registry.endpoints_of(svc) if svc is not None else []
        apply_locality_to_endpoints(locs, setting, enable_failover, ctx.policy_ctx.proxy_locality,
                                    proxy_labels=failover_proxy_labels(ctx), endpoints=eps)
        c.load_assignment.ClearField("endpoints")
        c.load_assignment.endpoints.extend(locs)


def _apply_zone_aware(ctx: ClusterContext, d: ClusterDraft, lb: Any, setting: dict[str, Any]) -> None:
    """`ZoneAwareLBSettings.ApplyToCluster`: zone_aware_lb_config, region bucketing if enabled."""
    cfg = d.c.common_lb_config.zone_aware_lb_config
    cfg.SetInParent()
    if isinstance(setting.get("minClusterSize"), int):
        cfg.min_cluster_size.value = setting["minClusterSize"]
    d.set("common_lb_config.zone_aware_lb_config",
          prov.from_block(lb, "zoneAwareLbSetting") if lb and "zoneAwareLbSetting" in lb.value
          else Origin("mesh default", None, ("zoneAwareLbSetting",), ctx.mesh.mesh_config.doc))
    if setting.get("enabled") is False:
        cfg.routing_enabled.SetInParent()  # routing_enabled: 0% suppresses Envoy's zone routing
        return
    if d.c.HasField("load_assignment"):
        eds.apply_zone_aware_failover(list(d.c.load_assignment.endpoints),
                                      ctx.policy_ctx.proxy_locality, list(setting.get("failover") or []))


def apply_locality_to_endpoints(locs: list[Any], setting: dict[str, Any], enable_failover: bool,
                                proxy_locality: str, *, proxy_labels: dict[str, str] | None = None,
                                endpoints: list[Endpoint] | None = None) -> None:
    """`ApplyLocalityLoadBalancer`: distribute, else (with failover enabled) failoverPriority
    then explicit failover, or the default locality failover. ``locs`` is rewritten in place."""
    if setting.get("distribute"):
        eds.apply_distribute(locs, proxy_locality, list(setting["distribute"]))
    elif enable_failover:
        priorities = [str(x) for x in setting.get("failoverPriority") or []]
        if priorities:
            if proxy_labels:
                by_addr = {(e.address, e.port): e.labels for e in endpoints or []}
                locs[:] = apply_failover_priorities(locs, proxy_labels, priorities,
                                                    lambda a, p: by_addr.get((a, p), {}))
            if setting.get("failover"):
                eds.apply_failover(locs, proxy_locality, list(setting["failover"]))
        else:
            eds.apply_failover(locs, proxy_locality, list(setting.get("failover") or []))


def failover_proxy_labels(ctx: ClusterContext) -> dict[str, str]:
    """The proxy's labels as `applyFailoverPriorities` sees them (`label.AugmentLabels`)."""
    wl = ctx.proxy.workload
    out = dict(wl.labels)
    parts = (ctx.policy_ctx.proxy_locality.split("/") + ["", "", ""])[:3]
    for key, value in zip(("topology.kubernetes.io/region", "topology.kubernetes.io/zone",
                           "topology.istio.io/subzone"), parts, strict=True):
        if value:
            out[key] = value
    out.setdefault("topology.istio.io/cluster", CLUSTER_ID)
    if wl.node:
        out.setdefault("kubernetes.io/hostname", wl.node)
    return out


def apply_failover_priorities(locs: list[Any], proxy_labels: dict[str, str], priorities: list[str],
                              labels_of: Any) -> list[Any]:
    """`applyFailoverPriorities` / `applyFailoverPriorityPerLocality`: split each locality by how
    many leading failoverPriority labels an endpoint shares with the proxy (``label=value``
    overrides the proxy's value; a leading network label that differs only lowers the rest),
    then renumber priorities 0..N without gaps."""
    names = [p.split("=", 1)[0] for p in priorities]
    overrides = {p.split("=", 1)[0]: p.split("=", 1)[1] for p in priorities if "=" in p}
    lowest = len(priorities)
    includes_network = bool(names) and names[0] == "topology.istio.io/network"
    out: list[Any] = []
    for loc in locs:
        groups: dict[int, list[Any]] = {}
        for lbe in loc.lb_endpoints:
            sa = lbe.endpoint.address.socket_address
            ep_labels = labels_of(sa.address, sa.port_value)
            priority = adjust = 0
            for j, name in enumerate(names):
                want = overrides.get(name, proxy_labels.get(name))
                if want != ep_labels.get(name):
                    if j == 0 and includes_network:
                        adjust = lowest
                        continue
                    priority = lowest - j
                    break
            groups.setdefault(priority + adjust, []).append(lbe)
        for priority in sorted(groups):
            clone = ec_pb2.LocalityLbEndpoints()
            clone.CopyFrom(loc)
            del clone.lb_endpoints[:]
            clone.lb_endpoints.extend(groups[priority])
            clone.priority = priority
            clone.load_balancing_weight.value = sum(e.load_balancing_weight.value for e in groups[priority])
            out.append(clone)
    rank = {p: i for i, p in enumerate(sorted({x.priority for x in out}))}
    for x in out:
        x.priority = rank[x.priority]
    return out


def _finalize_outbound(ctx: ClusterContext, d: ClusterDraft, svc: Service,
                       rule: ConsolidatedRule | None, *, subset: str) -> None:
    c = d.c
    if c.type == Cluster.EDS:
        ecc = c.eds_cluster_config
        ecc.service_name = c.name
        ecc.eds_config.ads.SetInParent()
        ecc.eds_config.initial_fetch_timeout.SetInParent()
        ecc.eds_config.resource_api_version = 2  # V3
        d.set("eds_cluster_config", prov.default("EDS over ADS"))
    if ctx.options.metadata_exchange:
        c.filters.append(ctx.cache.memo("mx_filter", None, _mx_filter))
        d.set("filters", prov.default("PILOT_ENABLE_METADATA_EXCHANGE"))
    if not subset and svc.mesh_external:
        d.meta["external"] = True
    if rule is not None:
        d.meta["config"] = (f"/apis/networking.istio.io/v1/namespaces/{rule.resource.namespace}"
                            f"/destination-rule/{rule.resource.name}")
        d.set("metadata.filter_metadata.istio.config",
              prov.from_resource(rule.resource, ("metadata", "name"), "destination-level"))
    if subset:
        d.meta["subset"] = subset


def _dns_endpoints(ctx: ClusterContext, svc: Service, port: ServicePort, rule: ConsolidatedRule | None,
                   subset: str, labels: dict[str, str] | None) -> list[ec_pb2.LocalityLbEndpoints]:
    eps = eds.select(ctx.mesh.registry.endpoints_of(svc), svc, port, labels, eds=False,
                     unhealthy_ok=eds.supports_unhealthy(svc, rule, subset, port.port, ctx.options))
    return eds.build_locality_endpoints(
        eps, mtls=eds.mtls_checker(rule, subset, port.port, ctx.mesh.peer_authentications),
        telemetry=ctx.options.endpoint_telemetry_label)


def build_outbound(ctx: ClusterContext, svc: Service, *, sni_dnat: bool = False) -> list[BuiltCluster]:
    """Default and subset clusters for every port of one service (`buildOutboundClusters`).

    ``sni_dnat``: `buildOutboundSniDnatClusters`' clusters for AUTO_PASSTHROUGH gateways, named
    ``outbound_.PORT_.SUBSET_.HOST`` and without TLS (the client's mTLS passes through).

    Built once per :class:`~meshlens.compiler.cache.ClusterKey` (`clusterCache`) and shared
    with every proxy of the run whose key is equal; the shared clusters are never mutated."""
    if svc.resolution == "Alias" or svc.resolution == "DynamicDNS":
        return []
    rule = ctx.rule_for(svc)
    rkey = ctx.cache.rule_key(rule)
    key = ClusterKey((svc.hostname, svc.namespace), rkey, proxy_key(ctx, rkey), ctx.options, sni_dnat)
    built: list[BuiltCluster] = ctx.cache.shared(
        "clusters", key, svc, lambda: _build_outbound(ctx, svc, rule, sni_dnat),
        lambda bs: [b.cluster for b in bs])
    if built and built[0].rule is not rule:  # an equal rule from another index: name this proxy's
        built = [BuiltCluster(b.cluster, b.origins, b.dropped, b.service, b.port, b.subset, rule)
                 for b in built]
    return built


def proxy_key(ctx: ClusterContext, rule: Any) -> Any:
    """This proxy's part of the cluster and endpoint keys (see ``cache.ProxyKey``)."""
    key = ctx.proxy_keys.get(rule)
    if key is None:
        key = ctx.proxy_keys[rule] = ctx.cache.proxy_key(
            ctx.proxy, ctx.policy_ctx.proxy_locality, rule, lambda: failover_proxy_labels(ctx))
    return key


def _build_outbound(ctx: ClusterContext, svc: Service, rule: ConsolidatedRule | None,
                    sni_dnat: bool) -> list[BuiltCluster]:
    naming = sni_name if sni_dnat else cluster_name
    out: list[BuiltCluster] = []
    mesh_tp = ctx.mesh.mesh_config.default_traffic_policy
    for port in svc.ports:
        if port.protocol == protocol.UDP:
            continue
        ctype = _RESOLUTION.get(svc.resolution, Cluster.EDS)
        if ctype == Cluster.ORIGINAL_DST and (ctx.proxy.is_router or (
                svc.registry == "Kubernetes" and ctx.options.eds_for_headless)):
            ctype = Cluster.EDS  # `convertResolution`: gateways cannot use passthrough clusters
        name = naming("outbound", port.port, "", svc.hostname)
        lb_eps = _dns_endpoints(ctx, svc, port, rule, "", None) if ctype in (
            Cluster.STRICT_DNS, Cluster.LOGICAL_DNS) else None
        d = _base_cluster(ctx, name, ctype, svc, port, "", lb_eps)
        if d is None:
            continue
        if svc.persistent_session:
            # buildOutboundClusters (cluster.go): SupportsDrainingEndpoints keeps DRAINING hosts
            # for cookie/header overrides. Named enums: DEGRADED is 5 (4 would be TIMEOUT).
            d.c.common_lb_config.override_host_status.statuses.extend([
                health_check_pb2.HEALTHY, health_check_pb2.DRAINING, health_check_pb2.UNKNOWN,
                health_check_pb2.DEGRADED])
        pol, _ = port_level(rule.policy if rule else None, port.port)
        pol = mesh_overlay(mesh_tp, pol)
        mtls_mode = infer_mtls_mode(ctx, svc, rule.policy if rule else None, port)
        _apply_policy_head(ctx, d, pol, svc=svc, port=port)
        head = _HeadSnapshot(d) if rule and rule.subsets and not svc.persistent_session \
            and ctype in (Cluster.EDS, Cluster.ORIGINAL_DST) else None
        _apply_policy_tls(ctx, d, pol, svc=svc, port=port, subset="", mtls_mode=mtls_mode, rule=rule,
                          tls=not sni_dnat)
        _finalize_outbound(ctx, d, svc, rule, subset="")
        out.append(BuiltCluster(d.build(), d.origins, pol.dropped, svc, port, "", rule))
        for sub in rule.subsets if rule else []:
            built = _build_subset(ctx, svc, port, rule, sub, pol, ctype, naming=naming, head=head)
            if built is not None:
                out.append(built)
    return out


def _build_subset(ctx: ClusterContext, svc: Service, port: ServicePort, rule: ConsolidatedRule,
                  sub: Any, parent: Policy, parent_type: int, naming: Any = cluster_name,
                  head: _HeadSnapshot | None = None) -> BuiltCluster | None:
    """`buildSubsetCluster`.

    ``head``: the default cluster's draft after `buildCluster` and the subset-independent part
    of `applyTrafficPolicy`; a subset without a traffic policy of its own starts from a copy of
    it (the same fields, set in the same order, as building it afresh) with its own name."""
    mtls_mode = infer_mtls_mode(ctx, svc, sub.policy, port)
    name = naming("outbound", port.port, sub.name, svc.hostname)
    if head is not None and sub.policy is None:
        d = head.draft(name, sub.name, _alt_stat_name(ctx, name, svc, port, sub.name))
        _apply_policy_tls(ctx, d, parent, svc=svc, port=port, subset=sub.name, mtls_mode=mtls_mode,
                          rule=rule, tls=naming is cluster_name)
        return _finish_subset(ctx, d, svc, rule, sub, parent)
    lb = sub.policy.tp.get("loadBalancer") if sub.policy else None
    ctype = Cluster.ORIGINAL_DST if isinstance(lb, dict) and lb.get("simple") == "PASSTHROUGH" \
        else parent_type
    lb_eps = None
    if ctype not in (Cluster.EDS, Cluster.ORIGINAL_DST):
        lb_eps = _dns_endpoints(ctx, svc, port, rule, sub.name, sub.labels or None)
        if not lb_eps:
            return None
    d = _base_cluster(ctx, name, ctype, svc, port, sub.name, lb_eps)
    if d is None:
        return None
    pol = subset_policy(parent, sub.policy, port.port)
    _apply_policy(ctx, d, pol, svc=svc, port=port, subset=sub.name, mtls_mode=mtls_mode, rule=rule,
                  tls=naming is cluster_name)
    return _finish_subset(ctx, d, svc, rule, sub, pol)


def _finish_subset(ctx: ClusterContext, d: ClusterDraft, svc: Service, rule: ConsolidatedRule,
                   sub: Any, pol: Policy) -> BuiltCluster:
    _finalize_outbound(ctx, d, svc, rule, subset=sub.name)
    d.set("metadata.filter_metadata.istio.subset",
          prov.from_resource(sub.resource, ("spec", "subsets", sub.index, "name"), "subset"))
    return BuiltCluster(d.build(), d.origins, pol.dropped, svc, d.port, sub.name, rule)


class _HeadSnapshot:
    """A copy of a draft between `applyTrafficPolicy`'s subset-independent part and its TLS."""

    __slots__ = ("c", "hpo", "origins", "meta", "service", "port")

    def __init__(self, d: ClusterDraft) -> None:
        self.c = cluster_pb2.Cluster()
        self.c.CopyFrom(d.c)
        self.hpo = None
        if d.hpo is not None:
            self.hpo = hpo_pb2.HttpProtocolOptions()
            self.hpo.CopyFrom(d.hpo)
        self.origins = dict(d.origins)
        self.meta = dict(d.meta)
        self.service, self.port = d.service, d.port

    def draft(self, name: str, subset: str, alt_stat_name: str) -> ClusterDraft:
        d = ClusterDraft(name, service=self.service, port=self.port, subset=subset)
        d.c.CopyFrom(self.c)
        d.c.name, d.c.alt_stat_name = name, alt_stat_name
        if self.hpo is not None:
            d.hpo = hpo_pb2.HttpProtocolOptions()
            d.hpo.CopyFrom(self.hpo)
        d.origins = dict(self.origins)
        d.meta = dict(self.meta)
        return d


def _circuit_breaker_defaults(ctx: ClusterContext, d: ClusterDraft) -> None:
    mesh_tp = ctx.mesh.mesh_config.default_traffic_policy or {}
    cp = None
    if isinstance(mesh_tp.get("connectionPool"), dict):
        from meshlens.model.policy import MESH, Block

        cp = Block("connectionPool", mesh_tp["connectionPool"], None,
                   ("defaultTrafficPolicy", "connectionPool"), MESH)
    throwaway = d.hpo
    tp.apply_connection_pool(d, cp, None, ctx.policy_ctx)
    d.hpo = throwaway  # istiod writes HTTP options computed here to a throw-away wrapper


def build_blackhole(ctx: ClusterContext) -> BuiltCluster:
    d = ClusterDraft(BLACKHOLE)
    c = d.c
    c.type = Cluster.STATIC
    c.connect_timeout.seconds, c.connect_timeout.nanos = durations.split(
        ctx.mesh.mesh_config.connect_timeout_nanos)
    c.lb_policy = Cluster.ROUND_ROBIN
    c.alt_stat_name = BLACKHOLE + ";"
    d.set("type", prov.default("BlackHoleCluster: STATIC with no endpoints; traffic is dropped"))
    return BuiltCluster(d.build(), d.origins, [])


def _passthrough_hpo() -> hpo_pb2.HttpProtocolOptions:
    h = hpo_pb2.HttpProtocolOptions()
    h.common_http_protocol_options.idle_timeout.seconds = 300
    h.use_downstream_protocol_config.http_protocol_options.SetInParent()
    h.use_downstream_protocol_config.http2_protocol_options.SetInParent()
    return h


def build_passthrough(ctx: ClusterContext, *, inbound: bool = False) -> BuiltCluster:
    d = ClusterDraft(INBOUND_PASSTHROUGH if inbound else PASSTHROUGH)
    c = d.c
    c.type = Cluster.ORIGINAL_DST
    c.lb_policy = Cluster.CLUSTER_PROVIDED
    c.typed_extension_protocol_options[HPO_KEY].Pack(_passthrough_hpo())
    c.alt_stat_name = PASSTHROUGH + ";"  # InboundPassthroughCluster copies it (a quirk istiod has)
    _circuit_breaker_defaults(ctx, d)
    d.set("type", prov.default("original destination: the address the app connected to"))
    if inbound:
        c.upstream_bind_config.source_address.address = _passthrough_bind_ip(ctx)
        c.upstream_bind_config.source_address.port_value = 0
        d.set("alt_stat_name", Origin(prov.QUIRK, note="copied from PassthroughCluster, not recomputed"))
    elif ctx.options.metadata_exchange:
        c.filters.append(ctx.cache.memo("mx_filter", None, _mx_filter))
    return BuiltCluster(d.build(), d.origins, [])


@dataclass(slots=True)
class ServiceTarget:
    service: Service
    port: ServicePort
    target_port: int


def service_targets(ctx: ClusterContext, wl: Workload, *, dedupe: bool = True) -> list[ServiceTarget]:
    """`Proxy.SetServiceTargets`: the Kubernetes Services selecting the pod
    (`GetProxyServiceTargetsByPod`) and the ServiceEntries with an endpoint at the pod's IP in
    its namespace (`serviceentry.Controller.GetProxyServiceTargets`), targetPorts resolved, in
    order of creation then hostname. ``dedupe`` keeps the first per (targetPort, protocol)."""
    out: list[ServiceTarget] = []
    seen: set[tuple[int, str]] = set()
    services = sorted(ctx.mesh.registry.services, key=lambda s: (s.resource.creation, s.hostname))
    for svc in services:
        if svc.namespace != wl.namespace:
            continue
        for port, target in _targets_on(ctx, svc, wl):
            key = (target, port.protocol)
            if dedupe and key in seen:
                continue
            seen.add(key)
            out.append(ServiceTarget(svc, port, target))
    return out


def _targets_on(ctx: ClusterContext, svc: Service, wl: Workload) -> list[tuple[ServicePort, int]]:
    if svc.registry != "Kubernetes":
        by_name = {p.name: p for p in svc.ports}
        return [(by_name[e.service_port_name], e.port) for e in ctx.mesh.registry.endpoints_of(svc)
                if e.address == wl.ip and e.service_port_name in by_name]
    if not svc.selector or any(wl.labels.get(k) != v for k, v in svc.selector.items()):
        return []
    out = []
    for port in svc.ports:
        target = port.target_port if port.target_port is not None else port.port
        if isinstance(target, str):
            found = [cp.port for cp in wl.container_ports if cp.name == target]
            if not found:
                continue
            target = found[0]
        out.append((port, int(target)))
    return out


def _inbound_bind(ctx: ClusterContext) -> str:
    """`buildInboundClustersFromServiceInstances`: STATIC to localhost under MeshConfig
    inboundTrafficPolicy LOCALHOST, else ORIGINAL_DST (PASSTHROUGH)."""
    itp = ctx.mesh.mesh_config.get("inboundTrafficPolicy")
    if isinstance(itp, dict) and itp.get("mode") == "LOCALHOST":
        return "::1" if _proxy_ipv6_only(ctx) else "127.0.0.1"
    return ""


def build_inbound(ctx: ClusterContext) -> list[BuiltCluster]:
    """`buildInboundClusters`: from the Sidecar's ``ingress`` listeners if it has any, else
    one cluster per target port of the proxy's own service targets (none in NONE mode)."""
    sc = ctx.scope.sidecar
    if sc is not None and sc.spec.get("ingress"):
        return _build_inbound_from_sidecar(ctx, sc)
    if ctx.proxy.workload.annotations.get("sidecar.istio.io/interceptionMode") == "NONE":
        return []  # no inbound listeners without a Sidecar ingress in NONE mode
    out: list[BuiltCluster] = []
    targets = service_targets(ctx, ctx.proxy.workload, dedupe=False)
    by_port: dict[int, list[ServiceTarget]] = {}
    for t in targets:
        if t.port.protocol == protocol.UDP:
            continue
        by_port.setdefault(t.target_port, []).append(t)
    bind = _inbound_bind(ctx)
    for target_port, group in by_port.items():
        out.append(_inbound_cluster(ctx, target_port, bind, target_port, group))
    return out


def _inbound_cluster(ctx: ClusterContext, cluster_port: int, bind: str, endpoint_port: int,
                     group: list[ServiceTarget]) -> BuiltCluster:
    """`ClusterBuilder.buildInboundCluster`: ORIGINAL_DST (bind "") or STATIC to ``bind``."""
    primary = group[0]
    name = cluster_name("inbound", cluster_port, "", "")
    d = ClusterDraft(name, service=primary.service, port=primary.port, direction="inbound")
    c = d.c
    c.common_lb_config.SetInParent()
    c.alt_stat_name = name + ";"
    if bind:
        c.type = Cluster.STATIC
        lb = c.load_assignment.endpoints.add().lb_endpoints.add()
        if bind.startswith("unix://"):
            lb.endpoint.address.pipe.path = bind[len("unix://"):]
        else:
            lb.endpoint.address.socket_address.address = bind
            lb.endpoint.address.socket_address.port_value = endpoint_port
        c.load_assignment.cluster_name = name
        if ctx.scope.sidecar is not None and ctx.scope.sidecar.spec.get("ingress"):
            d.set("type", prov.from_resource(ctx.scope.sidecar, ("spec", "ingress"), "sidecar ingress",
                                             "defaultEndpoint"))
        else:
            d.set("type", Origin("mesh default", None, ("inboundTrafficPolicy", "mode"),
                                 ctx.mesh.mesh_config.doc, "inboundTrafficPolicy LOCALHOST"))
    else:
        c.type = Cluster.ORIGINAL_DST
        c.lb_policy = Cluster.CLUSTER_PROVIDED
        c.cleanup_interval.seconds = 9223372035
        d.set("type", prov.default("inbound PASSTHROUGH mode: original destination"))
    stat = ctx.mesh.mesh_config.get("inboundClusterStatName")
    if stat:
        c.alt_stat_name = _stat_prefix(str(stat), primary.service, "", primary.port, cluster_port) + ";"
        d.set("alt_stat_name", Origin("mesh default", None, ("inboundClusterStatName",),
                                      ctx.mesh.mesh_config.doc))
    if bind not in ("127.0.0.1", "::1"):
        c.upstream_bind_config.source_address.address = _passthrough_bind_ip(ctx)
        c.upstream_bind_config.source_address.port_value = 0
        d.set("upstream_bind_config", prov.default("inbound traffic is sent from 127.0.0.6"))
    _set_upstream_protocol(d, primary.port)
    if ctx.options.telemetry_label:
        services, seen_hosts = [], set()
        for t in group:
            if t.port.port == primary.port.port and not t.service.mesh_external \
                    and t.service.hostname not in seen_hosts:
                seen_hosts.add(t.service.hostname)
                services.extend(_services_meta(t.service))
        if services:
            d.meta["services"] = services
    rule = ctx.rule_for(primary.service, outbound=False)
    pol = Policy()
    if rule is not None and rule.policy is not None:
        pol, _ = port_level(rule.policy, primary.port.port)
        d.meta["config"] = (f"/apis/networking.istio.io/v1/namespaces/{rule.resource.namespace}"
                            f"/destination-rule/{rule.resource.name}")
    pol = mesh_overlay(ctx.mesh.mesh_config.default_traffic_policy, pol)
    cp = _sidecar_inbound_pool(ctx, cluster_port) or pol.get("connectionPool")
    tp.apply_connection_pool(d, cp, pol.get("retryBudget"), ctx.policy_ctx)
    return BuiltCluster(d.build(), d.origins, pol.dropped, primary.service, primary.port)


def _ingress_endpoint(ctx: ClusterContext, default_endpoint: str) -> tuple[str, int] | None:
    """The (address, port) of a Sidecar ingress ``defaultEndpoint``
    (`buildInboundClustersFromSidecar`); ("", 0) means ORIGINAL_DST, None skips the entry."""
    if not default_endpoint:
        return "", 0
    if default_endpoint.startswith("unix://"):
        return default_endpoint, 0
    host, sep, port = default_endpoint.rpartition(":")
    if not sep or not port.isdigit():
        return None
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    ipv6 = _proxy_ipv6_only(ctx)  # actualLocalHosts: [127.0.0.1] or [::1] (single-IP proxies)
    if host == "0.0.0.0":
        return (ctx.proxy.ip if not ipv6 else "127.0.0.1"), int(port)
    if host == "::":
        return (ctx.proxy.ip if ipv6 else "::1"), int(port)
    if host in ("127.0.0.1", "::1"):
        return ("::1" if ipv6 else "127.0.0.1"), int(port)
    return "", int(port)


def _build_inbound_from_sidecar(ctx: ClusterContext, sc: Any) -> list[BuiltCluster]:
    """`buildInboundClustersFromSidecar`: one cluster per Sidecar ingress listener."""
    out: list[BuiltCluster] = []
    targets = service_targets(ctx, ctx.proxy.workload)
    for i, ing in enumerate(sc.spec.get("ingress") or []):
        if not isinstance(ing, dict) or not isinstance(ing.get("port"), dict):
            continue
        number = int(ing["port"].get("number") or 0)
        ep = _ingress_endpoint(ctx, str(ing.get("defaultEndpoint") or ""))
        if ep is None:
            continue
        listen = ServicePort(str(ing["port"].get("name", "")), number,
                             protocol.parse(str(ing["port"].get("protocol", ""))), ep[1], i)
        # `findOrCreateService`: the service whose target port is the ingress port, else a dummy.
        svc = next((t.service for t in targets if t.target_port == number), None)
        if svc is None:
            svc = Service(hostname=f"{sc.name}.{sc.namespace}", name=sc.name, namespace=sc.namespace,
                          registry="", ports=[listen], resolution="ClientSideLB", resource=sc,
                          mesh_external=True)
        out.append(_inbound_cluster(ctx, number, ep[0], ep[1], [ServiceTarget(svc, listen, ep[1])]))
    return out


def _sidecar_inbound_pool(ctx: ClusterContext, port: int) -> Any:
    sc = ctx.scope.sidecar
    if sc is None:
        return None
    from meshlens.model.policy import Block

    for i, ing in enumerate(sc.spec.get("ingress") or []):
        if isinstance(ing, dict) and (ing.get("port") or {}).get("number") == port \
                and isinstance(ing.get("connectionPool"), dict):
            return Block("connectionPool", ing["connectionPool"], sc,
                         ("spec", "ingress", i, "connectionPool"), "sidecar ingress")
    pool = sc.spec.get("inboundConnectionPool")
    if isinstance(pool, dict):
        return Block("connectionPool", pool, sc, ("spec", "inboundConnectionPool"), "sidecar")
    return None


def build_clusters(ctx: ClusterContext, *, hosts: Container[str] | None = None) -> list[BuiltCluster]:
    """The whole CDS response for one sidecar, in istiod's order (``hosts``: only these
    services' outbound clusters, for a targeted compile)."""
    out: list[BuiltCluster] = []
    for svc in ctx.scope.services:
        if hosts is None or svc.hostname in hosts:
            out.extend(build_outbound(ctx, svc))
    out.append(build_blackhole(ctx))
    out.append(build_passthrough(ctx))
    out.extend(build_inbound(ctx))
    out.append(build_passthrough(ctx, inbound=True))
    return out


