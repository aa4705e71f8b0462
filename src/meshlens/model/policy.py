"""Effective traffic policy for one cluster: port-level, subset and mesh-baseline merges.

Layer: L3. Imports: resources, source.

Mirrors `networking/util/util.go:GetPortLevelTrafficPolicy`, `MergeSubsetTrafficPolicy`,
`model/destination_rule.go:MergeTrafficPolicy` and `cluster_traffic_policy.go:
applyDefaultTrafficPolicy`. Each block keeps where it came from, and blocks that a user wrote
but that did not reach the cluster are kept in ``dropped`` with the reason, for ``explain`` and
``analyze``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from meshlens.resources import Resource
from meshlens.source import FieldPath

BLOCKS = ("connectionPool", "outlierDetection", "loadBalancer", "tls", "tunnel", "proxyProtocol",
          "retryBudget")
PORT_BLOCKS = ("connectionPool", "loadBalancer", "outlierDetection", "tls")

DEST, PORT, SUBSET, SUBSET_PORT, MESH = (
    "destination-level", "port-level", "subset", "subset port-level", "mesh default")


@dataclass(frozen=True, slots=True)
class Block:
    """One block of a TrafficPolicy (e.g. ``connectionPool``) and where it came from."""

    name: str
    value: dict[str, Any]
    resource: Resource | None  # None for MeshConfig
    path: FieldPath
    rule: str


@dataclass(frozen=True, slots=True)
class Dropped:
    block: Block
    reason: str


@dataclass(slots=True)
class Policy:
    blocks: dict[str, Block] = field(default_factory=dict)
    dropped: list[Dropped] = field(default_factory=list)

    def get(self, name: str) -> Block | None:
        return self.blocks.get(name)

    def value(self, name: str) -> dict[str, Any] | None:
        b = self.blocks.get(name)
        return b.value if b else None

    def copy(self) -> Policy:
        return Policy(dict(self.blocks), list(self.dropped))


@dataclass(frozen=True, slots=True)
class TrafficPolicyRef:
    """A TrafficPolicy mapping inside a resource, at ``path``."""

    tp: dict[str, Any]
    resource: Resource | None
    path: FieldPath
    rule: str  # DEST or SUBSET

    def blocks(self, rule: str | None = None) -> dict[str, Block]:
        return {b: Block(b, self.tp[b] if isinstance(self.tp[b], dict) else {}, self.resource,
                         self.path + (b,), rule or self.rule)
                for b in BLOCKS if b in self.tp and self.tp[b] is not None}

    def port_entry(self, port: int) -> tuple[int, dict[str, Any]] | None:
        for i, pls in enumerate(self.tp.get("portLevelSettings") or []):
            if isinstance(pls, dict) and isinstance(pls.get("port"), dict) \
                    and pls["port"].get("number") == port:
                return i, pls
        return None


def lost_fields(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted paths set in ``old`` that ``new`` does not set (what a wholesale replace loses).

    Example:
        >>> lost_fields({"tcp": {"maxConnections": 1, "tcpKeepalive": {"time": "1s"}}},
        ...             {"tcp": {"maxConnections": 2}})
        ['tcp.tcpKeepalive']
    """
    if not isinstance(old, dict):
        return []
    out: list[str] = []
    for key, value in old.items():
        path = f"{prefix}{key}"
        if not isinstance(new, dict) or key not in new:
            out.append(path)
        elif isinstance(value, dict):
            out.extend(lost_fields(value, new[key], path + "."))
    return out


def port_level(ref: TrafficPolicyRef | None, port: int, *, port_rule: str = PORT) -> tuple[Policy, bool]:
    """Resolve a TrafficPolicy for one Service port; True if a port-level entry matched.

    A matching entry replaces the policy wholesale: blocks it omits fall back to defaults, and
    destination-level tunnel/proxyProtocol/retryBudget are dropped as well (a
    PortTrafficPolicy cannot carry them).
    """
    if ref is None:
        return Policy(), False
    entry = ref.port_entry(port)
    if entry is None:
        return Policy(ref.blocks()), False
    i, pls = entry
    base = ref.path + ("portLevelSettings", i)
    out = Policy({b: Block(b, pls[b] if isinstance(pls[b], dict) else {}, ref.resource, base + (b,),
                           port_rule)
                  for b in PORT_BLOCKS if b in pls and pls[b] is not None})
    for name, blk in ref.blocks().items():
        if name in PORT_BLOCKS and name not in out.blocks:
            out.dropped.append(Dropped(blk, f"portLevelSettings[{i}] for port {port} has no "
                                            f"{name}: the destination-level block is not inherited"))
        elif name not in PORT_BLOCKS:
            out.dropped.append(Dropped(blk, f"portLevelSettings[{i}] for port {port} cannot carry "
                                            f"{name}: it is dropped for this port"))
        elif name in out.blocks:
            lost = lost_fields(blk.value, out.blocks[name].value)
            if lost:
                out.dropped.append(Dropped(blk, f"portLevelSettings[{i}].{name} replaces it whole; "
                                                f"not inherited for port {port}: {', '.join(lost)}"))
    return out, True


def mesh_overlay(mesh_default: dict[str, Any] | None, pol: Policy) -> Policy:
    """Fill connectionPool/outlierDetection from MeshConfig.defaultTrafficPolicy if unset."""
    if not mesh_default:
        return pol
    out = pol
    for name in ("connectionPool", "outlierDetection"):
        if isinstance(mesh_default.get(name), dict) and name not in pol.blocks:
            if out is pol:
                out = pol.copy()
            out.blocks[name] = Block(name, mesh_default[name], None,
                                     ("defaultTrafficPolicy", name), MESH)
    return out


def subset_policy(parent: Policy, subset: TrafficPolicyRef | None, port: int) -> Policy:
    """Merge a subset's trafficPolicy over the parent's effective policy for ``port``."""
    if subset is None:
        return parent
    sub, has_port = port_level(subset, port, port_rule=SUBSET_PORT)
    out = parent.copy()
    out.dropped.extend(sub.dropped)
    for name in PORT_BLOCKS:
        if name in sub.blocks or has_port:
            old = out.blocks.pop(name, None)
            if name in sub.blocks:
                out.blocks[name] = sub.blocks[name]
            if old is None:
                continue
            if name in sub.blocks:
                lost = lost_fields(old.value, sub.blocks[name].value)
                if lost:
                    out.dropped.append(Dropped(old, f"the subset's {name} replaces it whole; not "
                                                    f"inherited: {', '.join(lost)}"))
            else:
                out.dropped.append(Dropped(old, f"the subset's portLevelSettings entry for port "
                                                f"{port} has no {name}: nothing is inherited"))
    for name in ("tunnel", "proxyProtocol", "retryBudget"):
        if name in sub.blocks:
            old = out.blocks.get(name)
            out.blocks[name] = sub.blocks[name]
            if old is not None and lost_fields(old.value, sub.blocks[name].value):
                out.dropped.append(Dropped(old, f"the subset's {name} replaces it whole"))
    return out
