"""The compiler: model in, xDS protos out, with the provenance of every field.

Layer: L4. Imports: model, resources, source, diagnostics, durations, xDS protos.

Pure: ``compile_proxy`` reads no files, environment, clock or network. Its stages run in the
order of :data:`STAGES` (the sqlglot ``RULES`` idea); each builds one xDS type.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2

from meshlens.compiler.cache import BuildCache
from meshlens.compiler.clusters import BuiltCluster, ClusterContext, build_clusters
from meshlens.compiler.eds import build_endpoints
from meshlens.compiler.options import CompileOptions
from meshlens.compiler.provenance import Provenance
from meshlens.compiler.traffic_policy import PolicyContext
from meshlens.compiler.wanted import Wanted, bound_ports, targetable
from meshlens.diagnostics import Diagnostic
from meshlens.model import Mesh, Proxy
from meshlens.model.scope import SidecarScope, build_scope, select_sidecar
from meshlens.model.virtual_services import index_virtual_services


@dataclass(slots=True)
class CompileResult:
    """What istiod would push to one sidecar, and where every field came from."""

    proxy: Proxy
    scope: SidecarScope
    mesh: Any = None
    clusters: list[cluster_pb2.Cluster] = field(default_factory=list)
    endpoints: list[endpoint_pb2.ClusterLoadAssignment] = field(default_factory=list)
    built: list[BuiltCluster] = field(default_factory=list)
    listeners: list[Any] | None = None
    routes: list[Any] | None = None
    secrets: list[Any] | None = None
    bootstrap: Any = None
    provenance: Provenance = field(default_factory=Provenance)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    options: CompileOptions = field(default_factory=CompileOptions)
    gateway: Any = None  # model.gateways.MergedGateway for a router
    #: ECDS resources (compiler.envoyfilter.extension.ExtensionConfig) from EnvoyFilters
    extension_configs: list[Any] = field(default_factory=list)
    #: a targeted result: what is compiled so far (None: everything); its lookups below
    #: compile the rest on demand (see :func:`compile_more`)
    only: Wanted | None = None
    context: Any = None  # the ClusterContext a targeted result keeps for compile_more

    def cluster(self, name: str) -> cluster_pb2.Cluster | None:
        if self.only is not None:
            compile_more(self, Wanted(clusters=frozenset({name})))
        for c in self.clusters:
            if c.name == name:
                return c
        return None

    def assignment(self, name: str) -> endpoint_pb2.ClusterLoadAssignment | None:
        """The ClusterLoadAssignment of EDS service ``name`` (its cluster's name)."""
        if self.only is not None:
            compile_more(self, Wanted(clusters=frozenset({name})))
        return next((e for e in self.endpoints if e.cluster_name == name), None)

    def listener(self, name: str) -> Any | None:
        if self.only is not None:
            compile_more(self, Wanted(listeners=frozenset({name})))
        return next((x for x in self.listeners or [] if x.name == name), None)

    def listeners_on(self, port: int) -> list[Any]:
        """The listeners bound to ``port``, in LDS order."""
        if self.only is not None:
            compile_more(self, Wanted(ports=frozenset({port})))
        return [x for x in self.listeners or [] if port in bound_ports(x)]

    def all_listeners(self) -> list[Any]:
        if self.only is not None:
            compile_more(self, Wanted(every_listener=True))
        return list(self.listeners or [])

    def route(self, name: str) -> Any | None:
        if self.only is not None:
            compile_more(self, Wanted(routes=frozenset({name})))
        return next((r for r in self.routes or [] if r.name == name), None)


def _stage_clusters(ctx: ClusterContext, out: CompileResult) -> None:
    hosts = out.only.hosts() if out.only is not None else None
    if out.only is not None and not out.only.clusters:
        return
    if ctx.proxy.is_router:
        from meshlens.compiler.gateway import build_gateway_clusters

        out.built = build_gateway_clusters(ctx, hosts=hosts)
    else:
        out.built = build_clusters(ctx, hosts=hosts)
    if out.only is not None:
        out.built = [b for b in out.built if b.cluster.name in out.only.clusters]
    out.clusters = [b.cluster for b in out.built]
    for b in out.built:
        out.provenance.fields[("cluster", b.cluster.name)] = b.origins
        if b.dropped:
            out.provenance.dropped[("cluster", b.cluster.name)] = b.dropped


def _stage_endpoints(ctx: ClusterContext, out: CompileResult) -> None:
    out.endpoints = build_endpoints(ctx, out.built)


def _stage_bootstrap(ctx: ClusterContext, out: CompileResult) -> None:
    """The bootstrap pilot-agent renders for the proxy's pod, from the pod's own identity."""
    if out.only is not None:
        return
    from meshlens.compiler.bootstrap import BootstrapInputs, PodPort, build_bootstrap
    from meshlens.compiler.bootstrap.node import pod_proxy_config

    wl = ctx.proxy.workload
    overlay, env = pod_proxy_config(wl, ctx.mesh.mesh_config.get("defaultConfig"))
    parts = (wl.locality.split("/") + ["", "", ""])[:3]
    out.bootstrap = build_bootstrap(BootstrapInputs(
        node_ip=wl.ip, pod_name=wl.name, namespace=wl.namespace, labels=dict(wl.labels),
        service_account=wl.service_account, workload_name=wl.workload_name,
        app_name="", istio_version=ctx.options.istio_version,
        trust_domain=ctx.mesh.mesh_config.trust_domain, node_name=wl.node, owner=wl.owner,
        app_containers=wl.app_containers,
        pod_ports=tuple(PodPort(container_port=p.port, protocol=p.protocol, name=p.name)
                        for p in wl.container_ports),
        region=parts[0], zone=parts[1], sub_zone=parts[2], proxy_config=overlay, proxy_env=env,
        proxy_type=ctx.proxy.type))


def _stage_listeners(ctx: ClusterContext, out: CompileResult) -> None:
    """LDS in istiod's order: outbound per-port listeners (sorted), virtualOutbound, inbound."""
    from meshlens.compiler.listener_inbound import build_inbound_listeners
    from meshlens.compiler.listeners import build_outbound_listeners

    only = out.only
    if only is not None and not only.wants_listeners():
        built = []
    elif ctx.proxy.is_router:
        from meshlens.compiler.gateway import build_gateway_listeners

        built = build_gateway_listeners(ctx)
    else:
        ports = only.outbound_ports() if only is not None else None
        built = build_outbound_listeners(ctx, ports=ports) + build_inbound_listeners(ctx)
    if only is not None:
        built = [b for b in built if only.wants_listener(b.message)]
    out.listeners = [b.message for b in built]
    for b in built:
        out.provenance.fields[("listener", b.message.name)] = b.origins


def rds_names(listeners: list[Any]) -> list[str]:
    """Route configuration names the listeners' HCMs ask for over RDS, in first-use order."""
    from envoy.extensions.filters.network.http_connection_manager.v3 import (
        http_connection_manager_pb2 as hcm_pb2,
    )

    names: list[str] = []
    for lst in listeners:
        chains = list(lst.filter_chains)
        if lst.HasField("default_filter_chain"):
            chains.append(lst.default_filter_chain)
        for fc in chains:
            for f in fc.filters:
                if f.typed_config.Is(hcm_pb2.HttpConnectionManager.DESCRIPTOR):
                    h = hcm_pb2.HttpConnectionManager()
                    f.typed_config.Unpack(h)
                    if h.HasField("rds") and h.rds.route_config_name not in names:
                        names.append(h.rds.route_config_name)
    return names


def _stage_routes(ctx: ClusterContext, out: CompileResult) -> None:
    from meshlens.compiler.routes import build_route_configs

    # A targeted compile builds the names asked for (a trace asks for names its listeners use).
    names = sorted(out.only.routes) if out.only is not None else rds_names(out.listeners or [])
    if out.only is not None and not names:
        return
    if ctx.proxy.is_router:
        from meshlens.compiler.gateway import build_gateway_route_configs

        built = build_gateway_route_configs(ctx, names)
    else:
        built = build_route_configs(ctx, names)
    out.routes = [b.message for b in built]
    for b in built:
        out.provenance.fields[("route", b.message.name)] = b.origins


def _stage_secrets(ctx: ClusterContext, out: CompileResult) -> None:
    if out.only is not None:
        return
    from meshlens.compiler.secrets import build_secrets

    out.secrets = build_secrets(out.clusters, out.listeners or [], memo=ctx.cache.per_message)


def _stage_envoy_filters(ctx: ClusterContext, out: CompileResult) -> None:
    if out.only is not None:
        return  # a targeted compile is only made without EnvoyFilters (wanted.targetable)
    from meshlens.compiler.envoyfilter import apply_envoy_filters

    if ctx.cache.memo("has_envoy_filters", None,
                      lambda: any(r.kind == "EnvoyFilter" for r in ctx.mesh.resources)):
        _unshare(out)  # patches change messages in place: this proxy gets its own copies
    apply_envoy_filters(ctx, out)


def _unshare(out: CompileResult) -> None:
    """Replace the shared (cached) clusters, endpoints, routes and their provenance with copies."""
    copies: dict[int, Any] = {}

    def own(m: Any) -> Any:
        if id(m) not in copies:
            c = type(m)()
            c.CopyFrom(m)
            copies[id(m)] = c
        return copies[id(m)]

    out.built = [BuiltCluster(own(b.cluster), dict(b.origins), list(b.dropped), b.service, b.port,
                              b.subset, b.rule) for b in out.built]
    out.clusters = [own(c) for c in out.clusters]
    out.endpoints = [own(e) for e in out.endpoints]
    if out.routes is not None:
        out.routes = [own(r) for r in out.routes]
    out.provenance.fields = {k: dict(v) for k, v in out.provenance.fields.items()}
    out.provenance.dropped = {k: list(v) for k, v in out.provenance.dropped.items()}


STAGES = (_stage_bootstrap, _stage_clusters, _stage_endpoints, _stage_listeners, _stage_routes,
          _stage_secrets, _stage_envoy_filters)


def compile_proxy(mesh: Mesh, proxy: Proxy, *, options: CompileOptions | None = None,
                  only: Wanted | None = None, cache: BuildCache | None = None) -> CompileResult:
    """Compile the config istiod would push to ``proxy``.

    ``only``: a targeted compile (``meshlens trace``): build just these resources; the result's
    lookups (``cluster``, ``route``, ``listener``, ``listeners_on``, ``assignment``) compile
    the others when first asked for. Without a proof that the parts equal the whole (an
    EnvoyFilter in the input: :func:`~meshlens.compiler.wanted.targetable`), everything is built.

    ``cache``: the run's :class:`~meshlens.compiler.cache.BuildCache`, to share clusters and
    endpoints with the other proxies compiled in the same run (a fresh one by default). The
    output is the same with or without it.
    """
    opts = options or CompileOptions()
    cache = cache if cache is not None else BuildCache()
    cache.bind(mesh)
    sidecars = mesh.sidecars
    if proxy.is_router:  # `SetSidecarScope`: a gateway's scope ignores workload selectors
        sidecars = [s for s in sidecars if not (s.spec.get("workloadSelector") or {}).get("labels")]
    sidecar = select_sidecar(sidecars, proxy, mesh.mesh_config.root_namespace)
    scope = build_scope(mesh.registry, proxy, sidecar,
                        cache.memo("vs_index", None, lambda: index_virtual_services(
                            mesh.virtual_services, mesh.mesh_config)),
                        mesh.mesh_config)
    pctx = PolicyContext(mesh.mesh_config, opts, mesh.mesh_config.doc, proxy.workload.locality)
    ctx = ClusterContext(mesh, proxy, scope, opts, pctx, cache)
    if proxy.is_router:
        from meshlens.model.gateways import merge_gateways, proxy_service_targets, select_gateways

        targets = proxy_service_targets(mesh.registry, proxy.workload)
        ctx.gateway = merge_gateways(select_gateways(mesh.gateways, proxy.workload, targets))
    out = CompileResult(proxy, scope, mesh, options=opts)
    if scope.vs_index is not None:
        out.diagnostics.extend(scope.vs_index.diagnostics)
    out.gateway = ctx.gateway
    if only is not None and targetable(mesh):
        out.only, out.context = Wanted(), ctx
        compile_more(out, only)
        return out
    for stage in STAGES:
        stage(ctx, out)
    return out


def compile_more(result: CompileResult, wanted: Wanted) -> None:
    """Grow a targeted ``result`` by the parts of ``wanted`` it lacks: the stages run again for
    those keys only (same context, so shared memos), and their resources are appended. Each
    key is built whole in one run, so a lookup by key finds what the full compile has."""
    assert result.only is not None
    new = wanted - result.only
    if not new:
        return
    part = CompileResult(result.proxy, result.scope, result.mesh, options=result.options, only=new)
    part.gateway = result.gateway
    for stage in STAGES:
        stage(result.context, part)
    result.only = result.only | new
    have = {x.name for x in result.listeners or []}
    result.listeners = (result.listeners or []) + [x for x in part.listeners or [] if x.name not in have]
    result.routes = (result.routes or []) + list(part.routes or [])
    result.built += part.built
    result.clusters += part.clusters
    result.endpoints += part.endpoints
    for key, origins in part.provenance.fields.items():
        result.provenance.fields.setdefault(key, origins)
    for key, dropped in part.provenance.dropped.items():
        result.provenance.dropped.setdefault(key, dropped)


__all__ = ["STAGES", "BuildCache", "CompileOptions", "CompileResult", "Wanted", "compile_more",
           "compile_proxy"]
