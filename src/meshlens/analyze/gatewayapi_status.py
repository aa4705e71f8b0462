"""Gateway API status conditions that are not healthy (what ``meshlens status`` shows), as
findings: a Gateway or listener not Accepted/Programmed, a route parent not Accepted (the route
does not attach: requests for its hosts get 404 NR at that gateway), unresolved references
(a missing backend answers 500).

Layer: L6. Imports: analyze.core.

The conditions are the ones istiod would write (`pilot/pkg/config/kube/gateway/conditions.go`),
computed by :mod:`meshlens.model.gatewayapi`; istioctl has no analyzer for them (it reads them
from the cluster), so the code is meshlens's own.
"""

from __future__ import annotations

from collections.abc import Iterator

from meshlens.analyze.core import CodeDoc, Context, Finding, Metadata, finding

METADATA = Metadata(
    name="gatewayapi.StatusAnalyzer",
    description="Reports the Gateway API status conditions istiod would set to False",
    inputs=("Gateway", "HTTPRoute", "GRPCRoute", "TCPRoute", "TLSRoute"),
    codes=("ML1187",),
)

DOCS = {
    "ML1187": CodeDoc(
        checks="Gateway API status conditions istiod would set to False: a Gateway or listener not "
               "Accepted/Programmed, a route parent not Accepted, unresolved references.",
        matters="A route that is not accepted does not attach (404 NR for its hosts); a missing "
                "backend answers 500; a listener with a bad certificate fails TLS.",
        quiet="Every condition is True (Conflicted False).",
        example="HTTPRoute parentRefs: [{name: gw}] from another namespace while the listener allows Same"),
}


def analyze(ctx: Context) -> Iterator[Finding]:
    for st in getattr(ctx.mesh, "gateway_api_status", []):
        res = st.resource
        scoped = [("", c) for c in st.conditions]
        scoped += [(f"listener {n}", c) for n, cs in st.listeners.items() for c in cs]
        scoped += [(f"parent {p}", c) for p, cs in st.parents for c in cs]
        for scope, c in scoped:
            if c.status == "True" or (c.type == "Conflicted" and c.status == "False"):
                continue
            where = f"{res.kind} {res.namespace}/{res.name}" + (f" {scope}" if scope else "")
            path = ("spec", "parentRefs") if scope.startswith("parent") else (
                ("spec", "listeners") if scope else ())
            yield finding("ML1187", res, path, where=where, type=c.type, status=c.status,
                          reason=c.reason, detail=c.message)
