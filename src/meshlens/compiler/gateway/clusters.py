"""CDS for a gateway proxy (`core/cluster.go:buildClusters`, the ``default:`` branch).

Layer: L4. Imports: compiler.clusters.

A gateway gets the outbound clusters of every service its (default ``*/*``) scope sees, then
``BlackHoleCluster``; no PassthroughCluster (gateways have no original-destination listener) and
no inbound clusters. The cluster builder itself differs in three places, each guarded by the proxy
type in :mod:`meshlens.compiler.clusters`: no ``use_downstream_protocol`` for undeclared ports
(`applyH2Upgrade`'s comment: gateways do no protocol detection), Passthrough services become EDS
(`convertResolution`), and DestinationRule ``credentialName`` is honoured without a
workloadSelector (`buildUpstreamClusterTLSContext`). With an AUTO_PASSTHROUGH server the
SNI-DNAT clusters (``outbound_.PORT_.SUBSET_.HOST``, no TLS) follow BlackHoleCluster.
"""

from __future__ import annotations

from collections.abc import Container

from meshlens.compiler.clusters import BuiltCluster, ClusterContext, build_blackhole, build_outbound


def build_gateway_clusters(ctx: ClusterContext, *, hosts: Container[str] | None = None) -> list[BuiltCluster]:
    """The whole CDS response for one gateway, in istiod's order (``hosts``: only these
    services' clusters, for a targeted compile)."""
    out: list[BuiltCluster] = []
    services = [s for s in ctx.scope.services if hosts is None or s.hostname in hosts]
    for svc in services:
        out.extend(build_outbound(ctx, svc))
    out.append(build_blackhole(ctx))
    merged = ctx.gateway
    if merged is not None and merged.auto_passthrough:  # `buildOutboundSniDnatClusters`
        for svc in services:
            if not svc.mesh_external:
                out.extend(build_outbound(ctx, svc, sni_dnat=True))
    return out
