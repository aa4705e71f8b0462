"""Applications that run as UID 1337, the sidecar's UID: their traffic bypasses the sidecar
(istioctl `applicationUID.Analyzer`).

Layer: L6. Imports: analyze.core, analyze._istio.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from meshlens.analyze._istio import is_control_plane
from meshlens.analyze.core import CodeDoc, Context, Finding, Metadata, as_dict, finding, iter_dicts

METADATA = Metadata(
    name="applicationUID.Analyzer",
    description="Checks invalid application UID",
    inputs=("Pod", "Deployment"),
    codes=("ML1135",),
)

DOCS = {
    "ML1135": CodeDoc(
        checks="Pods and Deployment pod templates whose pod or (non-proxy) container "
               "securityContext.runAsUser is 1337 (istioctl applicationUID.Analyzer, IST0144).",
        matters="The sidecar's iptables rules exempt UID 1337 (the proxy's own UID), so the "
                "application's traffic bypasses the sidecar: no mTLS, no routing, no telemetry.",
        quiet="Any other UID; the istio-proxy container itself; control-plane pods.",
        example="spec:\n  template:\n    spec:\n      securityContext: {runAsUser: 1337}"),
}

UID = 1337


def _hits(spec: dict[str, Any]) -> int:
    n = 1 if as_dict(spec.get("securityContext")).get("runAsUser") == UID else 0
    for c in iter_dicts(spec.get("containers")):
        if c.get("name") in ("istio-proxy", "istio-operator"):
            continue
        if as_dict(c.get("securityContext")).get("runAsUser") == UID:
            n += 1
    return n


def analyze(ctx: Context) -> Iterator[Finding]:
    for res in ctx.of_kind("Pod", "Deployment"):
        if is_control_plane(res):
            continue
        spec = res.spec if res.kind == "Pod" else as_dict(as_dict(res.spec.get("template"))
                                                           .get("spec"))
        for _ in range(_hits(spec)):
            yield finding("ML1135", res)
