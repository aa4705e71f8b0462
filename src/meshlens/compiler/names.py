"""Envoy resource names in istiod's formats, each with its inverse (`model/service.go`).

Layer: L4. Imports: stdlib only.
"""

from __future__ import annotations

from dataclasses import dataclass

BLACKHOLE = "BlackHoleCluster"
PASSTHROUGH = "PassthroughCluster"
INBOUND_PASSTHROUGH = "InboundPassthroughCluster"


@dataclass(frozen=True, slots=True)
class ClusterKey:
    direction: str  # "outbound" | "inbound"
    port: int
    subset: str
    host: str


def cluster_name(direction: str, port: int, subset: str, host: str) -> str:
    """`BuildSubsetKey`.

    Example:
        >>> cluster_name("outbound", 9080, "v1", "reviews.default.svc.cluster.local")
        'outbound|9080|v1|reviews.default.svc.cluster.local'
        >>> cluster_name("inbound", 8080, "", "")
        'inbound|8080||'
    """
    return f"{direction}|{port}|{subset}|{host}"


def sni_name(direction: str, port: int, subset: str, host: str) -> str:
    """`BuildDNSSrvSubsetKey`, the default mTLS SNI.

    Example:
        >>> sni_name("outbound", 9080, "", "reviews.default.svc.cluster.local")
        'outbound_.9080_._.reviews.default.svc.cluster.local'
    """
    return f"{direction}_.{port}_.{subset}_.{host}"


def parse_cluster_name(name: str) -> ClusterKey | None:
    """`ParseSubsetKey`: the inverse of :func:`cluster_name` and :func:`sni_name`.

    Example:
        >>> parse_cluster_name("outbound|80|v2|llm-server.mesh-demo.svc.cluster.local")
        ClusterKey(direction='outbound', port=80, subset='v2', host='llm-server.mesh-demo.svc.cluster.local')
        >>> parse_cluster_name("PassthroughCluster") is None
        True
    """
    if name.startswith(("outbound_.", "inbound_.")):
        parts = name.split("_.", 3)
    else:
        parts = name.split("|", 3)
    if len(parts) != 4 or parts[0] not in ("outbound", "inbound"):
        return None
    try:
        port = int(parts[1])
    except ValueError:
        return None
    subset = "" if parts[2] == "_" and "_." in name else parts[2]
    return ClusterKey(parts[0], port, subset, parts[3])
