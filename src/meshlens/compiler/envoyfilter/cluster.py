"""EnvoyFilter patches on clusters (``applyTo: CLUSTER``).

Layer: L4. Imports: compiler.envoyfilter.{patches,merge}, compiler.names.

``pilot/pkg/networking/core/envoyfilter/cluster_patch.go``: `ApplyClusterMerge` (REMOVE drops
the cluster; MERGE merges the value, a ``transport_socket`` in the value merging into the
cluster's socket, or the matching ``transport_socket_matches`` entry, of the same name),
`InsertedClusters` (ADD; a context-ANY ADD only in SIDECAR_OUTBOUND), `clusterMatch` (``name``,
else ``subset``, ``service`` -- for inbound clusters any hostname of the services the port
serves -- and ``portNumber`` read from the cluster name).
"""

from __future__ import annotations

from typing import Any

from meshlens.compiler.envoyfilter.merge import merge_any
from meshlens.compiler.envoyfilter.patches import Patch, clone, is_merge, merge_value
from meshlens.compiler.names import parse_cluster_name


def cluster_match(c: Any, p: Patch, hosts: list[str]) -> bool:
    """`clusterMatch`."""
    m = p.sub("cluster")
    if m is None:
        return True
    if m.get("name"):
        return bool(m["name"] == c.name)
    key = parse_cluster_name(c.name)
    direction, subset, host, port = (key.direction, key.subset, key.host, key.port) if key \
        else ("", "", "", 0)
    matches = hosts if direction == "inbound" and hosts else [host]
    if m.get("subset") and m["subset"] != subset:
        return False
    if m.get("service") and m["service"] not in matches:
        return False
    return not (m.get("portNumber") and int(m["portNumber"]) != port)


def _merge_transport_socket(c: Any, p: Patch) -> bool:
    """`mergeTransportSocketCluster`: True when the value's transport_socket was handled."""
    if not p.value.HasField("transport_socket"):
        return False
    want = p.value.transport_socket
    ts = None
    if c.transport_socket_matches:
        ts = next((m.transport_socket for m in c.transport_socket_matches
                   if m.HasField("transport_socket") and m.transport_socket.name == want.name), None)
        if ts is None:
            return True
    elif c.HasField("transport_socket") and c.transport_socket.name == want.name:
        ts = c.transport_socket
    if ts is None:
        c.transport_socket.CopyFrom(want)
    elif ts.HasField("typed_config") and want.HasField("typed_config"):
        ts.typed_config.CopyFrom(merge_any(ts.typed_config, want.typed_config))
    return True


def apply_cluster_merge(ctx: str, patches: list[Patch], c: Any, hosts: list[str],
                        applied: list[tuple[Patch, str]]) -> Any | None:
    """`ApplyClusterMerge`: the patched cluster, or None when a REMOVE matched."""
    for p in patches:
        if not (p.context_matches(ctx) and cluster_match(c, p, hosts)):
            continue
        if p.operation == "REMOVE":
            applied.append((p, ""))
            return None
        if not is_merge(p.operation):
            continue
        try:
            if not _merge_transport_socket(c, p):
                merge_value(p, c)
        except ValueError:
            continue
        applied.append((p, ""))
    return c


def inserted_clusters(ctx: str, patches: list[Patch], applied: list[tuple[Patch, str]]) -> list[Any]:
    """`InsertedClusters`."""
    out = []
    for p in patches:
        if p.operation != "ADD" or not p.context_matches(ctx):
            continue
        if p.context == "ANY" and ctx not in ("SIDECAR_OUTBOUND", "GATEWAY"):
            continue
        out.append(clone(p))
        applied.append((p, ""))
    return out
