"""Several DestinationRules for one host: istiod merges their subsets but applies only the
oldest rule's traffic policy, as a whole; a subset defined twice keeps the first definition.

Layer: L6. Imports: analyze.core, model.

Read off the model's DestinationRule index, the same one the compiler uses (istiod's
`mergeDestinationRule`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from meshlens.analyze.core import CodeDoc, Context, Finding, Metadata, finding, short_list
from meshlens.model.destination_rules import ConsolidatedRule

METADATA = Metadata(
    name="meshlens.DuplicateDestinationRuleAnalyzer",
    description="Several DestinationRules merged for one host: ignored traffic policies and "
                "subsets",
    inputs=("DestinationRule",),
    codes=("ML1270", "ML1271"),
)

DOCS = {
    "ML1270": CodeDoc(
        checks="DestinationRules for the same host that apply to the same clients (the model's "
               "index, istiod's mergeDestinationRule), each with a trafficPolicy.",
        matters="istiod merges their subsets but applies only the oldest rule's trafficPolicy, "
                "whole: the newer rule's limits, TLS or outlier detection are silently ignored.",
        quiet="One rule per host; extra rules that only add subsets; rules with workloadSelectors "
              "for different clients; rules not exported to the same namespaces.",
        example="DestinationRule a: {host: cart, trafficPolicy: {loadBalancer: {simple: "
                "ROUND_ROBIN}}}\nDestinationRule b: {host: cart.default.svc.cluster.local, "
                "trafficPolicy: {connectionPool: {tcp: {maxConnections: 5}}}}"),
    "ML1271": CodeDoc(
        checks="A subset name defined by two merged DestinationRules for one host.",
        matters="The first definition wins; the second subset's labels and policy are ignored, "
                "so its route may reach other pods than intended.",
        quiet="Subset names unique across the rules of a host.",
        example="rule a: subsets [{name: v1, labels: {version: v1}}]; rule b: subsets [{name: "
                "v1, labels: {version: other}}]"),
}


def _merged(ctx: Context) -> Iterator[tuple[str, ConsolidatedRule]]:
    idx = ctx.mesh.destination_rules
    tables: list[tuple[str, Any]] = [(f"sidecars in namespace {ns}", t)
                                     for ns, t in idx.namespace_local.items()]
    tables += [(f"the namespaces it is exported to from {ns}", t) for ns, t in idx.exported.items()]
    tables.append((f"sidecars in {idx.root_namespace}", idx.root_local))
    for where, table in tables:
        for rules in list(table.specific.values()) + list(table.wildcard.values()):
            for rule in rules:
                if len(rule.sources) > 1:
                    yield where, rule


def analyze(ctx: Context) -> Iterator[Finding]:
    seen: set[tuple[Any, ...]] = set()
    for where, rule in _merged(ctx):
        names = [f"{r.namespace}/{r.name}" for r in rule.sources]
        owner = rule.policy.resource if rule.policy is not None else None
        first = f"{owner.namespace}/{owner.name}" if owner is not None else names[0]
        for r in rule.sources:
            if r is owner or not r.spec.get("trafficPolicy"):
                continue
            key: tuple[Any, ...] = ("ML1270", r.ref)
            if key in seen:
                continue
            seen.add(key)
            yield finding("ML1270", r, ("spec", "trafficPolicy"), count=len(names),
                          host=rule.host, where=where, names=short_list(names), first=first,
                          fix={"names": short_list([n for n in names if n != first])})
        for res, subset in rule.duplicate_subsets:
            idx = next((i for i, s in enumerate(res.spec.get("subsets") or [])
                        if isinstance(s, dict) and s.get("name") == subset), None)
            key = ("ML1271", res.ref, subset)
            if key in seen:
                continue
            seen.add(key)
            defined = rule.subset(subset)
            by = defined.resource if defined is not None else rule.resource
            yield finding("ML1271", res, ("spec", "subsets", idx, "name") if idx is not None
                          else ("spec", "subsets"), subset=subset, host=rule.host,
                          first=f"DestinationRule {by.namespace}/{by.name}")
