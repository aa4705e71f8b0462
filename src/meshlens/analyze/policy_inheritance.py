"""Settings a user wrote that a more specific level silently drops: a portLevelSettings entry
replaces the destination-level policy (the seed's trap: port 80 loses tcpKeepalive), and a
subset block replaces the inherited block as a whole.

Layer: L6. Imports: analyze.core, analyze._compiled, compiler, model.

Proven on compiled config: the compiler records, per cluster, every block that did not reach it
(``provenance.dropped``); this analyzer names what was lost field by field and reads the
consequence off the compiled cluster (e.g. no ``upstream_connection_options.tcp_keepalive``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from envoy.config.cluster.v3 import cluster_pb2

from meshlens import durations
from meshlens.analyze._compiled import (
    AUTO,
    MUTUAL,
    NONE,
    SIMPLE,
    describe_clusters,
    first_time,
    outbound,
    tls_state,
)
from meshlens.analyze.core import (CodeDoc, Context, Finding, Metadata, as_dict, dotted, finding,
                                   iter_dicts)
from meshlens.model.destination_rules import Subset
from meshlens.model.policy import DEST, MESH, PORT, PORT_BLOCKS, SUBSET, Dropped, lost_fields
from meshlens.resources import Resource
from meshlens.source import FieldPath

METADATA = Metadata(
    name="meshlens.PolicyInheritanceAnalyzer",
    description="portLevelSettings and subset blocks that drop settings of the level above",
    inputs=("DestinationRule", "Service"),
    codes=("ML1210", "ML1211", "ML1213"),
    compiled=True,
)

DOCS = {
    "ML1210": CodeDoc(
        checks="On compiled clusters, the blocks the compiler recorded as dropped by a "
               "portLevelSettings entry: an entry replaces the destination-level connectionPool, "
               "outlierDetection, loadBalancer and tls whole (a block the entry omits falls back "
               "to defaults) and drops proxyProtocol and retryBudget.",
        matters="What was written at destination level silently does not apply on that port: "
                "e.g. tcpKeepalive lost (idle connections a NAT dropped: 503 UC), TLS lost "
                "(plaintext to a TLS server: 503 UC), outlier detection or limits lost.",
        quiet="The entry repeats every field it needs; no destination-level block of that kind; "
              "only the balancing algorithm is lost (ML1213, Info).",
        example="trafficPolicy:\n  connectionPool: {tcp: {tcpKeepalive: {time: 60s}}}\n  "
                "portLevelSettings:\n  - port: {number: 80}\n    connectionPool: {http: "
                "{http1MaxPendingRequests: 10}}"),
    "ML1211": CodeDoc(
        checks="The same for a subset: a subset's block (or its port-level entry) replaces the "
               "inherited block as a whole, field by field nothing merges.",
        matters="Limits, keepalive or TLS written above are lost on the subset's clusters (same "
                "flags as ML1210).",
        quiet="The subset block repeats what it needs; the subset sets no block of that kind.",
        example="subsets:\n- name: v2\n  trafficPolicy: {connectionPool: {http: {maxRetries: "
                "3}}}   # drops the destination-level tcp settings"),
    "ML1213": CodeDoc(
        checks="A portLevelSettings entry or a subset block that drops only loadBalancer.simple "
               "with a plain algorithm (ROUND_ROBIN, LEAST_REQUEST, RANDOM), while the cluster "
               "still balances with a plain algorithm.",
        matters="Only which healthy endpoint gets a request changes; no request fails. Info "
                "(Istio's egress-rule-google-apis sample does this).",
        quiet="Anything else is dropped too, or consistentHash/locality settings are lost "
              "(then ML1210/ML1211).",
        example="trafficPolicy:\n  loadBalancer: {simple: ROUND_ROBIN}\n  portLevelSettings:\n  "
                "- port: {number: 443}\n    tls: {mode: SIMPLE}"),
}

Cluster = cluster_pb2.Cluster
_LB = {v: k for k, v in Cluster.LbPolicy.items()}
_PARENT = {DEST: "destination-level", PORT: "port-level", MESH: "MeshConfig defaultTrafficPolicy",
           SUBSET: "subset-level"}


@dataclass(slots=True)
class _Hit:
    code: str
    res: Resource
    path: FieldPath
    args: dict[str, Any]
    clusters: list[str] = field(default_factory=list)


def _port_entry(tp: Any, port: int) -> tuple[int, dict[str, Any]] | None:
    for i, pls in enumerate(iter_dicts(as_dict(tp).get("portLevelSettings"))):
        if as_dict(pls.get("port")).get("number") == port:
            return i, pls
    return None


def _lost(block: str, old: Any, new: Any) -> list[str]:
    """What of ``old`` is not in ``new`` (every field of it when ``new`` is absent)."""
    if isinstance(new, dict):
        return _leaves(old, [f"{block}.{f}" for f in lost_fields(old, new)], block)
    if isinstance(old, dict) and old:
        return _leaves(old, [block], block)
    return [block]


def _leaves(old: Any, lost: list[str], block: str) -> list[str]:
    """Expand ``connectionPool.tcp`` into the leaf fields it held.

    Example:
        >>> _leaves({"tcp": {"maxConnections": 1, "tcpKeepalive": {"time": "1s"}}},
        ...         ["connectionPool.tcp"], "connectionPool")
        ['connectionPool.tcp.maxConnections', 'connectionPool.tcp.tcpKeepalive']
    """
    out: list[str] = []
    for item in lost:
        node: Any = old
        for part in item.split(".")[1:]:
            node = as_dict(node).get(part)
        if isinstance(node, dict) and node and not item.endswith(".tcpKeepalive"):
            out.extend(_leaves(old, [f"{item}.{k}" for k in node], block))
        else:
            out.append(item)
    return out


def consequence(block: str, old: dict[str, Any], lost: list[str], c: cluster_pb2.Cluster,
                mesh_default: dict[str, Any] | None = None) -> tuple[str, str]:
    """What the compiled cluster now has instead, and the response flag that follows."""
    leaves = _leaves(old, lost, block)
    flag = ""
    parts: list[str] = []
    if mesh_default and isinstance(mesh_default.get(block), dict) and lost == \
            _leaves(old, [block], block):
        parts.append(f"MeshConfig defaultTrafficPolicy.{block} applies instead")
    if block == "connectionPool":
        th = c.circuit_breakers.thresholds[0] if c.circuit_breakers.thresholds else None
        limits = []
        for leaf, name in (("tcp.maxConnections", "max_connections"),
                           ("http.http1MaxPendingRequests", "max_pending_requests"),
                           ("http.http2MaxRequests", "max_requests"),
                           ("http.maxRetries", "max_retries")):
            if f"connectionPool.{leaf}" in leaves and th is not None:
                limits.append(f"{name} {getattr(th, name).value}")
        if limits:
            parts.append("circuit breakers " + ", ".join(limits))
        if "connectionPool.tcp.connectTimeout" in leaves:
            ct = durations.render(c.connect_timeout.seconds * 10**9 + c.connect_timeout.nanos)
            parts.append(f"connect_timeout {ct}")
        if any(x.startswith("connectionPool.tcp.tcpKeepalive") for x in leaves) \
                and not c.upstream_connection_options.HasField("tcp_keepalive"):
            parts.append("no upstream_connection_options.tcp_keepalive, so idle upstream "
                         "connections are never probed and a connection a NAT or load balancer "
                         "silently dropped fails the next request with 503 UC")
            flag = "UC"
        for leaf, text in (("http.idleTimeout", "no idle_timeout (Envoy's 1h default)"),
                           ("tcp.idleTimeout", "no idle_timeout (Envoy's 1h default)"),
                           ("http.h2UpgradePolicy", "no HTTP/2 upgrade"),
                           ("http.maxRequestsPerConnection", "no max_requests_per_connection"),
                           ("tcp.maxConnectionDuration", "no max_connection_duration"),
                           ("http.useClientProtocol", "the upstream protocol no longer follows "
                                                      "the client's")):
            if f"connectionPool.{leaf}" in leaves and text not in parts:
                parts.append(text)
    elif block == "outlierDetection":
        if not c.HasField("outlier_detection"):
            parts.append("no outlier_detection, so a failing endpoint is never ejected and its "
                         "5xx keep reaching clients")
        else:
            parts.append("Envoy's defaults for " + ", ".join(x.split(".", 1)[1] for x in leaves
                                                             if "." in x))
    elif block == "tls":
        mode = str(old.get("mode", ""))
        state = tls_state(c)
        parts.append(f"the cluster sends {state} instead of tls mode {mode}")
        if mode in (SIMPLE, MUTUAL) and state in (NONE, AUTO):
            parts.append("a TLS server resets the plaintext connection: 503 UC")
            flag = "UC"
        elif mode == "ISTIO_MUTUAL" and state == AUTO:
            parts.append("only endpoints with a sidecar get mTLS (STRICT mTLS is not enforced by "
                         "the client)")
        elif mode == "ISTIO_MUTUAL" and state == NONE:
            parts.append("a STRICT server closes the plaintext connection: 503 UC")
            flag = "UC"
    elif block == "loadBalancer":
        text = f"lb_policy {_LB.get(c.lb_policy, c.lb_policy)}"
        if "consistentHash" in old and c.lb_policy not in (Cluster.RING_HASH, Cluster.MAGLEV):
            text += " (no hash-based session affinity)"
        parts.append(text)
    elif block == "proxyProtocol":
        parts.append("no PROXY protocol header, so the server sees the sidecar's address")
    elif block == "retryBudget":
        th = c.circuit_breakers.thresholds[0] if c.circuit_breakers.thresholds else None
        parts.append("no retry_budget" + (f" (max_retries {th.max_retries.value})" if th else ""))
    else:
        parts.append(f"no {block}")
    return "; ".join(parts) or f"{block} at Envoy's defaults", flag


#: Load-balancing algorithms that only change which healthy endpoint gets a request.
_PLAIN_LB = {"ROUND_ROBIN", "LEAST_REQUEST", "LEAST_CONN", "RANDOM", "UNSPECIFIED"}


def harmless_lb_drop(block: str, old: Any, lost: list[str], c: cluster_pb2.Cluster) -> bool:
    """A dropped ``loadBalancer`` that held only ``simple`` with a plain algorithm, on a cluster
    that still balances with a plain algorithm: the choice of endpoint differs, no request fails
    (Istio's own egress-rule-google-apis sample writes ``simple: ROUND_ROBIN`` next to a
    port-level TLS entry, so port 443 uses istiod's LEAST_REQUEST)."""
    return block == "loadBalancer" and lost == ["loadBalancer.simple"] \
        and str(as_dict(old).get("simple", "")) in _PLAIN_LB \
        and c.lb_policy in (Cluster.ROUND_ROBIN, Cluster.LEAST_REQUEST, Cluster.RANDOM)


def _classify(ctx: Context, d: Dropped, port: int, subset: Subset | None,
              name: str) -> tuple[str, Resource, FieldPath, dict[str, Any]] | None:
    blk = d.block
    if blk.resource is None and blk.rule != MESH:
        return None
    if d.reason.startswith("portLevelSettings[") and blk.rule in (DEST, SUBSET):
        res = blk.resource
        if res is None:
            return None
        base: FieldPath = ("spec", "trafficPolicy") if blk.rule == DEST else blk.path[:-1]
        tp = as_dict(as_dict(res.body.get("spec")).get("trafficPolicy")) if blk.rule == DEST \
            else (subset.policy.tp if subset and subset.policy else {})
        found = _port_entry(tp, port)
        if found is None:
            return None
        i, entry = found
        where = base + ("portLevelSettings", i)
        new = entry.get(blk.name) if blk.name in PORT_BLOCKS else None
        lost = _lost(blk.name, blk.value, new)
        entry_text = f"portLevelSettings[{i}]" if blk.rule == DEST else \
            f"subset {subset.name if subset else '?'}'s portLevelSettings[{i}]"
        path = where + (blk.name,) if isinstance(new, dict) else where
        level = _PARENT[blk.rule]
        how = (f"replaces the {level} {blk.name} whole" if isinstance(new, dict) else
               f"has no {blk.name}, which drops the {level} {blk.name}" if blk.name in PORT_BLOCKS
               else f"cannot carry {blk.name}, which drops the {level} {blk.name}")
        return "ML1210", res, path, {
            "entry": entry_text, "port": port, "how": how, "block": blk.name,
            "lost": ", ".join(lost), "verb": "is" if len(lost) == 1 else "are",
            "target": dotted(where + (blk.name,))}
    if d.reason.startswith("the subset's") and subset is not None and subset.policy is not None:
        res = subset.resource
        sub_tp = subset.policy.tp
        base = ("spec", "subsets", subset.index, "trafficPolicy")
        found = _port_entry(sub_tp, port)
        if found is not None:
            i, entry = found
            new = entry.get(blk.name)
            where = base + ("portLevelSettings", i)
            entry_text = f"subset {subset.name}'s portLevelSettings[{i}] for port {port}"
        else:
            new = sub_tp.get(blk.name)
            where = base
            entry_text = f"subset {subset.name}'s {blk.name}"
        lost = _lost(blk.name, blk.value, new)
        path = where + (blk.name,) if isinstance(new, dict) else where
        parent = _PARENT.get(blk.rule, blk.rule)
        if blk.rule == PORT:
            parent = f"port-level (port {port})"
        how = (f"replaces the {parent} {blk.name} whole" if isinstance(new, dict) else
               f"has no {blk.name}, which drops the {parent} {blk.name}")
        return "ML1211", res, path, {
            "entry": entry_text, "how": how, "block": blk.name, "lost": ", ".join(lost),
            "verb": "is" if len(lost) == 1 else "are",
            "target": dotted(where + (blk.name,))}
    return None


def analyze(ctx: Context) -> Iterator[Finding]:
    hits: dict[tuple[Any, ...], _Hit] = {}
    # A cluster the build cache shares between proxies carries the very same drop records, and
    # a drop of one cluster gives the same hit every time: each is classified once.
    seen: set[tuple[int, ...]] = set()
    for _, result in ctx.compiled():
        for bc in outbound(result):
            name = bc.cluster.name
            port = bc.port.port if bc.port else 0
            subset = bc.rule.subset(bc.subset) if bc.rule is not None and bc.subset else None
            for d in result.provenance.dropped.get(("cluster", name), []):
                if not first_time(seen, d, bc.cluster):
                    continue
                got = _classify(ctx, d, port, subset, name)
                if got is None:
                    continue
                code, res, path, args = got
                if harmless_lb_drop(d.block.name, d.block.value,
                                    _leaves(d.block.value, args["lost"].split(", "),
                                            d.block.name), bc.cluster):
                    args = {**args, "entry": args["entry"] if code == "ML1211" else
                            f"{args['entry']} for port {port}"}
                    code = "ML1213"
                key = (code, res.ref, path, d.block.name, args["lost"])
                hit = hits.get(key)
                if hit is None:
                    text, flag = consequence(d.block.name, d.block.value,
                                             args["lost"].split(", "), bc.cluster,
                                             ctx.mesh.mesh_config.default_traffic_policy)
                    hit = hits[key] = _Hit(code, res, path, {**args, "consequence": text,
                                                             "flag": flag})
                if name not in hit.clusters:
                    hit.clusters.append(name)
    for hit in hits.values():
        args = dict(hit.args)
        block = args["block"]
        args["lost"] = ", ".join(x[len(block) + 1:] if x.startswith(block + ".") else x
                                 for x in args["lost"].split(", "))
        flag = args.pop("flag")
        target = args.pop("target")
        yield finding(hit.code, hit.res, hit.path, clusters=describe_clusters(hit.clusters),
                      flag=flag, fix={"target": target}, **args)
