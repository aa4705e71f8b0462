"""DestinationRule subsets that no VirtualService route uses: their cluster gets no traffic and
their traffic policy never applies (the seed: "subset policies only take effect when a route
sends traffic to the subset").

Layer: L6. Imports: analyze.core, model.

Every VirtualService counts (mesh and gateway routes, delegates merged into their roots), with
hosts resolved the way istiod resolves them.
"""

from __future__ import annotations

from collections.abc import Iterator

from meshlens.analyze.core import CodeDoc, Context, Finding, Metadata, as_dict, finding, iter_dicts
from meshlens.model.destination_rules import resolve_short_name
from meshlens.model.scope import host_matches
from meshlens.model.virtual_services import index_virtual_services

METADATA = Metadata(
    name="meshlens.UnusedSubsetAnalyzer",
    description="DestinationRule subsets that no route sends traffic to",
    inputs=("DestinationRule", "VirtualService"),
    codes=("ML1204", "ML1205"),
)

DOCS = {
    "ML1204": CodeDoc(
        checks="DestinationRule subsets with a trafficPolicy that no VirtualService route or "
               "mirror (mesh or gateway, delegates included) sends to.",
        matters="Subset policies apply only to traffic routed to the subset: traffic to the host "
                "goes to the service's default cluster, and the subset's policy never applies.",
        quiet="A route names the subset; the subset has no trafficPolicy (then ML1205, Info).",
        example="subsets: [{name: canary, labels: {version: v2}, trafficPolicy: {loadBalancer: "
                "{simple: ROUND_ROBIN}}}]   # no VirtualService routes to canary"),
    "ML1205": CodeDoc(
        checks="Subsets without trafficPolicy that no route sends to.",
        matters="Info: no traffic reaches the subset's clusters (normal for a version not yet "
                "routed to, such as bookinfo's destination-rule-all).",
        quiet="A route or mirror names the subset.",
        example="subsets: [{name: v1, labels: {version: v1}}]   # no VirtualService"),
}


def used_subsets(ctx: Context) -> set[tuple[str, str]]:
    """(resolved host, subset) of every route and mirror destination of every VirtualService."""
    index = ctx.memo("compiled.vs_index", lambda: index_virtual_services(
        ctx.resources, ctx.mesh.mesh_config))
    out: set[tuple[str, str]] = set()
    for view in index.views:
        for section in ("http", "tcp", "tls"):
            for rule in iter_dicts(view.spec.get(section)):
                dests = [as_dict(rd.get("destination")) for rd in iter_dicts(rule.get("route"))]
                dests.append(as_dict(rule.get("mirror")))
                dests += [as_dict(m.get("destination")) for m in iter_dicts(rule.get("mirrors"))]
                for d in dests:
                    if d.get("subset"):
                        out.add((str(d.get("host", "")), str(d["subset"])))
    return out


def subset_used(ctx: Context, host: str, subset: str) -> bool:
    """Whether some VirtualService route or mirror sends to ``subset`` of ``host`` (resolved)."""
    used: set[tuple[str, str]] = ctx.memo("unused_subsets.used", lambda: used_subsets(ctx))
    if not host.startswith("*"):  # host_matches is then equality
        return (host, subset) in used
    by_subset: dict[str, list[str]] = ctx.memo("unused_subsets.by_subset",
                                                lambda: _hosts_by_subset(used))
    return any(host_matches(host, h) for h in by_subset.get(subset, ()))


def _hosts_by_subset(used: set[tuple[str, str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for h, sub in used:
        out.setdefault(sub, []).append(h)
    return out


def analyze(ctx: Context) -> Iterator[Finding]:
    for dr in ctx.of_kind("DestinationRule"):
        host = resolve_short_name(str(dr.spec.get("host", "")), dr.namespace)
        for i, s in enumerate(dr.spec.get("subsets") or []):
            if not isinstance(s, dict) or not s.get("name"):
                continue
            name = str(s["name"])
            if subset_used(ctx, host, name):
                continue
            tp = as_dict(s.get("trafficPolicy"))
            if tp:
                blocks = ", ".join(k for k in tp if tp[k] is not None)
                yield finding("ML1204", dr, ("spec", "subsets", i, "name"), subset=name,
                              blocks=blocks, host=host)
            else:
                yield finding("ML1205", dr, ("spec", "subsets", i, "name"), subset=name)
