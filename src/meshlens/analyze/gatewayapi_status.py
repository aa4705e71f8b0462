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

from meshlens.analyze.core import Context, Finding, Metadata, finding

METADATA = Metadata(
    name="gatewayapi.StatusAnalyzer",
    description="Reports the Gateway API status conditions istiod would set to False",
    inputs=("Gateway", "HTTPRoute", "GRPCRoute", "TCPRoute", "TLSRoute"),
    codes=("ML1167",),
)


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
            yield finding("ML1167", res, path, where=where, type=c.type, status=c.status,
                          reason=c.reason, detail=c.message)
