"""VirtualServices routing on JWT claims at a gateway without RequestAuthentication
(istioctl `virtualservice.JWTClaimRouteAnalyzer`).

Layer: L6. Imports: analyze.core, analyze._istio, analyze.gateway_port, model.virtual_services.

`JWTClaimRouteAnalyzer.analyze`: a VirtualService whose HTTP matches use a ``headers`` or
``withoutHeaders`` key that `jwt.ToRoutingClaim` reads as a claim (``@request.auth.claims.a.b``
or ``@request.auth.claims[a][b]``) needs, for every pod of every Gateway it is bound to (``mesh``
skipped; a Gateway that does not exist is the gateway analyzer's), a RequestAuthentication of
``istio-system`` or of the pod's namespace whose selector matches the pod (no selector matches
every pod): without one the gateway never validates the token, the claims are never set, and the
route never matches (IST0149).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from meshlens.analyze._istio import labels_match
from meshlens.analyze.core import CodeDoc, Context, Finding, Metadata, finding
from meshlens.analyze.gateway_port import gateway_selector, istio_gateways
from meshlens.model.virtual_services import MESH_GATEWAY, resolve_gateway

METADATA = Metadata(
    name="virtualservice.JWTClaimRouteAnalyzer",
    description="Checks the VirtualService using JWT claim based routing has corresponding "
                "RequestAuthentication",
    inputs=("VirtualService", "RequestAuthentication", "Gateway", "Pod"),
    codes=("ML1162",),
)
CLAIM_PREFIX = "@request.auth.claims"


def is_routing_claim(header: str) -> bool:
    """`jwt.ToRoutingClaim(...).Match`.

    Example:
        >>> [is_routing_claim(h) for h in ("@request.auth.claims.groups", "@request.auth.claims[a][b]",
        ...                                 "@request.auth.claims.", "x-user")]
        [True, True, False, False]
    """
    if not header.lower().startswith(CLAIM_PREFIX):
        return False
    name = header[len(CLAIM_PREFIX):]
    return (name.startswith(".") and len(name) > 1) or (
        name.startswith("[") and name.endswith("]") and len(name) > 2)


def claim_key(spec: dict[str, Any]) -> str:
    """`routeBasedOnJWTClaimKey`: the first claim header of the http matches, or ""."""
    for route in spec.get("http") or []:
        for match in (route.get("match") or []) if isinstance(route, dict) else []:
            if not isinstance(match, dict):
                continue
            for field in ("headers", "withoutHeaders"):
                for key in match.get(field) or {}:
                    if is_routing_claim(str(key)):
                        return str(key)
    return ""


def analyze(ctx: Context) -> Iterator[Finding]:
    selectors: dict[str, list[dict[str, str]]] = {}
    for ra in ctx.of_kind("RequestAuthentication"):
        sel = ra.spec.get("selector")
        labels = sel.get("matchLabels") if isinstance(sel, dict) else None
        selectors.setdefault(ra.namespace, []).append(
            {str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {})
    gateways = {f"{g.namespace}/{g.name}": g for g in istio_gateways(ctx)}
    for vs in ctx.of_kind("VirtualService"):
        key = claim_key(vs.spec)
        if not key:
            continue
        for gw_name in vs.spec.get("gateways") or []:
            if gw_name == MESH_GATEWAY:
                continue
            full = resolve_gateway(str(gw_name), vs.namespace)
            gw = gateways.get(full)
            if gw is None:
                continue
            for pod in ctx.mesh.registry.workloads:
                if not labels_match(gateway_selector(gw), pod.labels):
                    continue
                ras = selectors.get("istio-system", []) + selectors.get(pod.namespace, [])
                if not any(labels_match(sel, pod.labels) for sel in ras):
                    yield finding("ML1162", vs, (), key=key, gateway=full, pod=pod.name)


DOCS = {
    "ML1162": CodeDoc(
        checks="A VirtualService bound to a Gateway matches on a JWT claim "
               "(headers/withoutHeaders key @request.auth.claims...), and a pod of that Gateway "
               "has no RequestAuthentication (istio-system or its namespace) selecting it.",
        matters="The gateway never validates the token, so the claim is never set: the route "
                "never matches (or, with withoutHeaders, always does).",
        quiet="A RequestAuthentication selects every gateway pod; the VirtualService is bound "
              "to mesh only.",
        example="match: [{headers: {'@request.auth.claims.groups': {exact: admin}}}] on "
                "gateways: [my-gateway] without RequestAuthentication"),
}
