"""EnvoyFilter: the last compiler stage, patching what the other stages built.

Layer: L4. Imports: compiler.envoyfilter.*, compiler.clusters (service targets), compiler.provenance.

istiod applies EnvoyFilter patches while it builds each resource type; the result is the same as
patching the finished resources in the same order, which this stage does:

- clusters (`buildClusters` with a ``clusterPatcher``): outbound clusters, BlackHole and
  Passthrough in SIDECAR_OUTBOUND, then the outbound ADDs; inbound clusters and
  InboundPassthroughCluster in SIDECAR_INBOUND, then the inbound ADDs;
- inbound route configurations inline in the inbound HCMs (`buildSidecarInboundHTTPRouteConfig`
  patches them in SIDECAR_INBOUND before the listener patches);
- listeners (`ListenerBuilder.patchListeners`): ``virtualOutbound`` (SIDECAR_OUTBOUND, no ADDs),
  ``virtualInbound`` (SIDECAR_INBOUND, no ADDs), the other inbound listeners (SIDECAR_INBOUND),
  the outbound listeners (SIDECAR_OUTBOUND); the list keeps istiod's order (outbound, then
  virtualOutbound, then inbound);
- RDS route configurations (`BuildSidecarOutboundVirtualHosts` caller) in SIDECAR_OUTBOUND.

A gateway (router) gets everything in the GATEWAY context (`buildClusters` default branch:
service clusters, BlackHoleCluster, the SNI-DNAT clusters, then the ADDs;
`ListenerBuilder.patchListeners` for ``Router``: all listeners with ADDs; `BuildHTTPRoutes` for
``Router``: every route configuration, matched by gateway, port name and server port). A
WAYPOINT patch never applies: istiod builds no sidecar or gateway config in that context (the
webhook skips its validation too) and meshlens compiles no waypoints. ``normalizeClusters``
keeps the first of the non-service clusters (BlackHole, Passthrough, inbound, SNI-DNAT, ADDs)
that share a name.

EXTENSION_CONFIG ADD patches become the ECDS resources (:mod:`.extension`,
`InsertedExtensionConfigurations`) that the filters' ``config_discovery`` ask for. BOOTSTRAP
patches change nothing: since Istio 1.21 (BDS removed, ``agent: remove BDS``) neither istiod
nor pilot-agent applies them; each is recorded as not applied and reported (ML1304).

Every applied patch is recorded in the provenance of what it changed ("patched by EnvoyFilter
NS/NAME" with the patch's file:line), and under ``("envoyfilter", "NS/NAME")`` per patch, which
the analyzers read to find patches that match nothing. Endpoints of a removed cluster are
dropped.
"""

from __future__ import annotations

from typing import Any

from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)

from meshlens.compiler.envoyfilter.cluster import apply_cluster_merge, inserted_clusters
from meshlens.compiler.envoyfilter.extension import apply_extension_configs, note_bootstrap_patches
from meshlens.compiler.envoyfilter.listener import HCM, Applied, patch_listeners
from meshlens.compiler.envoyfilter.patches import Patch, merged_patches
from meshlens.compiler.envoyfilter.route import patch_route_configuration

__all__ = ["apply_envoy_filters"]

OUTBOUND, INBOUND, GATEWAY = "SIDECAR_OUTBOUND", "SIDECAR_INBOUND", "GATEWAY"


def _node_metadata(out: Any) -> dict[str, str]:
    boot = out.bootstrap
    if boot is None or not boot.HasField("node"):
        return {}
    fields = boot.node.metadata.fields
    return {k: v.string_value for k, v in fields.items() if v.WhichOneof("kind") == "string_value"}


def _record(out: Any, kind: str, name: str, applied: Applied, base: str = "") -> None:
    """``path`` is where the patch landed; a MERGE records each field its value sets."""
    for p, path in applied:
        where = ".".join(x for x in (base, path) if x)
        fields = [fd.name for fd, _ in p.value.ListFields()] if p.value is not None and \
            p.operation in ("MERGE", "MERGE_AND_REPLACE_LIST") else []
        for f in fields or [""]:
            key = ".".join(x for x in (where, f) if x) or "name"
            out.provenance.record(kind, name, key, p.origin())
        out.provenance.record("envoyfilter", p.key, f"configPatches[{p.index}]",
                              p.origin(f"applied to {kind} {name} {where}"))


def _inbound_hosts(ctx: Any) -> dict[int, list[str]]:
    from meshlens.compiler.clusters import service_targets

    hosts: dict[int, list[str]] = {}
    for t in service_targets(ctx, ctx.proxy.workload):
        hosts.setdefault(t.target_port, []).append(t.service.hostname)
    return hosts


def _is_inbound_cluster(name: str) -> bool:
    return name.startswith("inbound|") or name == "InboundPassthroughCluster"


def _clusters(ctx: Any, out: Any, patches: list[Patch]) -> None:
    hosts = _inbound_hosts(ctx)
    outbound, inbound = [], []
    for c in out.clusters:
        pctx = INBOUND if _is_inbound_cluster(c.name) else OUTBOUND
        applied: Applied = []
        port = int(c.name.split("|")[1]) if c.name.startswith("inbound|") else 0
        kept = apply_cluster_merge(pctx, patches, c, hosts.get(port, []), applied)
        _record(out, "cluster", c.name, applied)
        if kept is not None:
            (inbound if pctx == INBOUND else outbound).append(kept)
    for pctx, block in ((OUTBOUND, outbound), (INBOUND, inbound)):
        added: Applied = []
        for c in inserted_clusters(pctx, patches, added):
            block.append(c)
        for p, _ in added:
            _record(out, "cluster", p.value.name, [(p, "")])
    _set_clusters(out, outbound + inbound)


def _is_service_cluster(name: str) -> bool:
    """A cluster of a service (`buildOutboundClusters` writes those straight to the resources)."""
    return name.startswith("outbound|")


def _set_clusters(out: Any, clusters: list[Any]) -> None:
    """The patched CDS list; `normalizeClusters` drops a later non-service cluster whose name
    was already taken by another non-service cluster (an ADD named BlackHoleCluster...)."""
    seen: set[str] = set()
    kept = []
    for c in clusters:
        if not _is_service_cluster(c.name):
            if c.name in seen:
                continue
            seen.add(c.name)
        kept.append(c)
    names = {c.name for c in kept}
    out.clusters = kept
    out.built = [b for b in out.built if b.cluster.name in names]
    out.endpoints = [e for e in out.endpoints if e.cluster_name in names]


def _gateway(out: Any, patches: dict[str, list[Patch]]) -> None:
    """A router: every cluster, listener and route configuration in the GATEWAY context."""
    kept: list[Any] = []
    for c in out.clusters:
        applied: Applied = []
        patched = apply_cluster_merge(GATEWAY, patches.get("CLUSTER", []), c, [], applied)
        _record(out, "cluster", c.name, applied)
        if patched is not None:
            kept.append(patched)
    added: Applied = []
    kept.extend(inserted_clusters(GATEWAY, patches.get("CLUSTER", []), added))
    for p, _ in added:
        _record(out, "cluster", p.value.name, [(p, "")])
    _set_clusters(out, kept)
    if out.listeners is not None:
        done: dict[str, Applied] = {}
        out.listeners = patch_listeners(GATEWAY, patches, out.listeners, skip_adds=False,
                                        applied=done)
        for name, applied in done.items():
            _record(out, "listener", name, applied)
    port_map = out.gateway.port_map if out.gateway is not None else {}
    for rc in out.routes or []:
        applied = []
        patch_route_configuration(GATEWAY, patches, rc, applied, port_map)
        _record(out, "route", rc.name, applied)


def _inline_routes(lis: Any, patches: dict[str, list[Patch]], out: Any) -> None:
    """Patch the inline route configuration of every inbound HCM (SIDECAR_INBOUND)."""
    for i, fc in enumerate(lis.filter_chains):
        for j, f in enumerate(fc.filters):
            if f.name != HCM:
                continue
            h = hcm_pb2.HttpConnectionManager()
            f.typed_config.Unpack(h)
            if not h.HasField("route_config"):
                continue
            applied: Applied = []
            patch_route_configuration(INBOUND, patches, h.route_config, applied)
            if applied:
                f.typed_config.Pack(h)
                _record(out, "listener", lis.name, applied,
                        f"filter_chains[{i}].filters[{j}].typed_config.route_config")


def _listeners(out: Any, patches: dict[str, list[Patch]]) -> None:
    lists: dict[str, list[Any]] = {"out": [], "vo": [], "vi": [], "in": []}
    for lis in out.listeners or []:
        key = {"virtualOutbound": "vo", "virtualInbound": "vi"}.get(lis.name)
        if key is None:
            key = "in" if lis.traffic_direction == 1 else "out"  # core.v3 INBOUND = 1
        lists[key].append(lis)
    for lis in lists["vi"] + lists["in"]:
        _inline_routes(lis, patches, out)
    applied: dict[str, Applied] = {}
    vo = patch_listeners(OUTBOUND, patches, lists["vo"], skip_adds=True, applied=applied)
    vi = patch_listeners(INBOUND, patches, lists["vi"], skip_adds=True, applied=applied)
    inbound = patch_listeners(INBOUND, patches, lists["in"], skip_adds=False, applied=applied)
    outbound = patch_listeners(OUTBOUND, patches, lists["out"], skip_adds=False, applied=applied)
    for name, done in applied.items():
        _record(out, "listener", name, done)
    out.listeners = outbound + vo + vi + inbound


def _routes(out: Any, patches: dict[str, list[Patch]]) -> None:
    for rc in out.routes or []:
        applied: Applied = []
        patch_route_configuration(OUTBOUND, patches, rc, applied)
        _record(out, "route", rc.name, applied)


def apply_envoy_filters(ctx: Any, out: Any) -> None:
    """Apply the proxy's EnvoyFilter patches to the compiled resources in ``out``."""
    mc = ctx.mesh.mesh_config
    proxy = ctx.proxy
    patches = merged_patches(ctx.mesh.resources, proxy.namespace, proxy.labels, mc.root_namespace,
                             version=ctx.options.istio_version, metadata=_node_metadata(out))
    if not patches:
        return
    if proxy.is_router:
        _gateway(out, patches)
    else:
        _clusters(ctx, out, patches.get("CLUSTER", []))
        if out.listeners is not None:
            _listeners(out, patches)
        _routes(out, patches)
    apply_extension_configs(out, patches.get("EXTENSION_CONFIG", []))
    note_bootstrap_patches(out, patches.get("BOOTSTRAP", []))
