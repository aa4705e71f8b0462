"""Deprecated fields that istiod ignores or replaces (istioctl `deprecation.DeprecationAnalyzer`).

Layer: L6. Imports: analyze.core.
"""

from __future__ import annotations

from collections.abc import Iterator

from meshlens.analyze.core import CodeDoc, Context, Finding, Metadata, as_dict, finding

METADATA = Metadata(
    name="deprecation.DeprecationAnalyzer",
    description="Checks for deprecated Istio types and fields",
    inputs=("VirtualService", "Sidecar"),
    codes=("ML1002",),
)

DOCS = {
    "ML1002": CodeDoc(
        checks="VirtualService http[].fault.delay.percent (the integer form) and Sidecar "
               "outboundTrafficPolicy.egressProxy (istioctl deprecation.DeprecationAnalyzer, "
               "IST0002).",
        matters="Deprecated fields: egressProxy is ignored by istiod; percent still works but "
                "will be removed. No response flag.",
        quiet="fault.delay.percentage (the Percent message) instead of percent; percent 0.",
        example="http:\n- fault: {delay: {percent: 50, fixedDelay: 5s}}\n  route: "
                "[{destination: {host: web}}]"),
}


def analyze(ctx: Context) -> Iterator[Finding]:
    for vs in ctx.of_kind("VirtualService"):
        for i, rule in enumerate(vs.spec.get("http") or []):
            delay = as_dict(as_dict(as_dict(rule).get("fault")).get("delay"))
            pct = delay.get("percent")
            if isinstance(pct, int | float) and not isinstance(pct, bool) and pct > 0:
                yield finding("ML1002", vs, ("spec", "http", i, "fault", "delay", "percent"),
                              what="HTTPRoute.fault.delay.percent is deprecated; use "
                                   "HTTPRoute.fault.delay.percentage")
    for sc in ctx.of_kind("Sidecar"):
        otp = as_dict(sc.spec.get("outboundTrafficPolicy"))
        if otp.get("egressProxy") is not None:
            yield finding("ML1002", sc, ("spec", "outboundTrafficPolicy", "egressProxy"),
                          what="OutboundTrafficPolicy.EgressProxy ignored")
