"""VirtualService routes to a subset that no DestinationRule defines
(istioctl `virtualservice.DestinationRuleAnalyzer`).

Layer: L6. Imports: analyze.core, analyze._istio.

Hosts are compared as (namespace, name) pairs the way istioctl does: ``NAME.NS.svc.cluster.local``
gives (NS, NAME); anything else is (own namespace, host verbatim). The route points at cluster
``outbound|PORT|SUBSET|HOST`` which does not exist: 503 NC.
"""

from __future__ import annotations

from collections.abc import Iterator

from meshlens.analyze._istio import mirror_destinations, name_from_host, route_destinations
from meshlens.analyze.core import CodeDoc, Context, Finding, Metadata, finding, goq, iter_dicts

METADATA = Metadata(
    name="virtualservice.DestinationRuleAnalyzer",
    description="Checks the destination rules associated with each virtual service",
    inputs=("VirtualService", "DestinationRule"),
    codes=("ML1103",),
)

DOCS = {
    "ML1103": CodeDoc(
        checks="Route and mirror destinations with a subset against the subsets DestinationRules "
               "define for that host, hosts compared as istioctl does (IST0101).",
        matters="The route points at outbound|PORT|SUBSET|HOST, which does not exist: 503 NC.",
        quiet="A DestinationRule (any namespace) defines the subset for the host; whether the "
              "client can see that rule is checked on compiled config (ML1201).",
        example="route: [{destination: {host: reviews, subset: v1}}]   # no DestinationRule "
                "for reviews"),
}


def defined_subsets(ctx: Context) -> set[tuple[str, str, str]]:
    """`initDestHostsAndSubsets`: (namespace, name, subset) of every DestinationRule subset."""
    def build() -> set[tuple[str, str, str]]:
        out: set[tuple[str, str, str]] = set()
        for r in ctx.of_kind("DestinationRule"):
            ns, name = name_from_host(r.namespace, str(r.spec.get("host", "")))
            for s in iter_dicts(r.spec.get("subsets")):
                out.add((ns, name, str(s.get("name", ""))))
        return out

    result: set[tuple[str, str, str]] = ctx.memo("istio.defined_subsets", build)
    return result


def analyze(ctx: Context) -> Iterator[Finding]:
    subsets = defined_subsets(ctx)
    for vs in ctx.of_kind("VirtualService"):
        for what, dests in (("host+subset in destinationrule", route_destinations(vs)),
                            ("mirror+subset in destinationrule", mirror_destinations(vs))):
            for d in dests:
                if not d.subset:
                    continue
                ns, name = name_from_host(vs.namespace, d.host)
                if (ns, name, d.subset) in subsets:
                    continue
                yield finding("ML1103", vs, d.path, what=what, value=goq(f"{d.host}+{d.subset}"),
                              flag="NC" if what.startswith("host") else "",
                              fix={"subset": d.subset, "host": d.host})
