"""EDS for one proxy: a ClusterLoadAssignment per EDS cluster (`xds/eds.go:buildEndpoints`).

Layer: L4. Imports: compiler.{clusters,endpoints,names,provenance}, model.
"""

from __future__ import annotations

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2

from meshlens.compiler import endpoints as ep
from meshlens.compiler.cache import EndpointKey
from meshlens.compiler.clusters import (BuiltCluster, ClusterContext, apply_locality_to_endpoints,
                                       effective_lb_setting, failover_proxy_labels, proxy_key)
from meshlens.compiler.names import parse_cluster_name
from meshlens.model.destination_rules import subset_labels


def build_endpoints(ctx: ClusterContext, clusters: list[BuiltCluster]) -> list[endpoint_pb2.ClusterLoadAssignment]:
    """One ClusterLoadAssignment per EDS cluster, each built once per
    :class:`~meshlens.compiler.cache.EndpointKey` and shared across the run's proxies."""
    out = []
    for bc in clusters:
        c = bc.cluster
        if c.type != cluster_pb2.Cluster.EDS:
            continue
        name = c.eds_cluster_config.service_name or c.name
        svc, port = bc.service, bc.port
        if svc is None or port is None:
            out.append(endpoint_pb2.ClusterLoadAssignment(cluster_name=name))
            continue
        rkey = ctx.cache.rule_key(bc.rule)
        key = EndpointKey(name, (svc.hostname, svc.namespace), port.port, rkey, proxy_key(ctx, rkey),
                          ctx.options)
        out.append(ctx.cache.shared("eds", key, svc, lambda: _assignment(ctx, bc, name),
                                    lambda cla: [cla]))
    return out


def _assignment(ctx: ClusterContext, bc: BuiltCluster, name: str) -> endpoint_pb2.ClusterLoadAssignment:
    """`EndpointBuilder.BuildClusterLoadAssignment` for one cluster."""
    cla = endpoint_pb2.ClusterLoadAssignment(cluster_name=name)
    key = parse_cluster_name(name)
    svc, port = bc.service, bc.port
    assert svc is not None and port is not None
    if key is None and not name.startswith("outbound_."):
        return cla
    subset = key.subset if key is not None else bc.subset  # SNI-DNAT names do not parse
    rule = bc.rule
    labels = subset_labels(rule, subset)
    if subset and rule is not None and rule.subset(subset) is None:
        labels = None
    od, lb = ctx.cache.memo("od_lb", (ctx.cache.rule_key(rule), subset, port.port),
                            lambda: ep.merged_od_and_lb(rule, subset, port.port))
    eps = ep.select(ctx.mesh.registry.endpoints_of(svc), svc, port, labels, eds=True,
                    unhealthy_ok=ep.supports_unhealthy(svc, rule, subset, port.port, ctx.options,
                                                       od_lb=(od, lb)),
                    ip_version=ctx.cache.ip_version)
    locs = ep.build_locality_endpoints(
        eps, mtls=ep.mtls_checker(rule, subset, port.port, ctx.mesh.peer_authentications),
        telemetry=ctx.options.endpoint_telemetry_label,
        message=lambda e, mtls, telemetry: ctx.cache.per_object(
            "lb_endpoint", e, (mtls, telemetry), lambda: ep.lb_endpoint(e, mtls, telemetry)))
    eff = effective_lb_setting(ctx.mesh.mesh_config, lb if isinstance(lb, dict) else {})
    if eff is not None and eff[0] == "zone" and locs:
        # `ZoneAwareLBSettings.ApplyToLoadAssignment`: region bucketing unless disabled.
        if eff[1].get("enabled") is not False:
            ep.apply_zone_aware_failover(locs, ctx.policy_ctx.proxy_locality,
                                         list(eff[1].get("failover") or []))
    elif eff is not None and locs:
        apply_locality_to_endpoints(locs, eff[1], od is not None, ctx.policy_ctx.proxy_locality,
                                    proxy_labels=failover_proxy_labels(ctx), endpoints=eps)
    cla.endpoints.extend(locs)
    return cla
