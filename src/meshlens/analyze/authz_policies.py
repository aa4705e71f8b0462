"""AuthorizationPolicies that select no workload, and namespaces that do not exist
(istioctl `auth.AuthorizationPoliciesAnalyzer`).

Layer: L6. Imports: analyze.core, analyze._istio, analyze.sidecar_selector.

`analyzeNoMatchingWorkloads`: a root-namespace policy with a selector must match some pod of the
mesh (in any namespace); any other policy must match a pod of its namespace (without a selector:
the namespace must have a pod). Pods count when they are in the mesh (`PodInMesh`: injected) or
in ambient mode. `analyzeNamespaceNotFound`: every ``namespaces``/``notNamespaces`` entry of a
rule's sources must match a Namespace of the input (``*``, ``prefix*``, ``*suffix`` or exactly,
ignoring case).
"""

from __future__ import annotations

from collections.abc import Iterator

from meshlens.analyze._istio import labels_match
from meshlens.analyze.core import Context, Finding, Metadata, finding, goq, selector_string
from meshlens.analyze.sidecar_selector import pod_in_ambient

METADATA = Metadata(
    name="auth.AuthorizationPoliciesAnalyzer",
    description="Checks the validity of authorization policies",
    inputs=("MeshConfig", "AuthorizationPolicy", "Namespace", "Pod"),
    codes=("ML1160", "ML1161"),
)


def namespace_match(ns: str, exp: str) -> bool:
    """`namespaceMatch`."""
    if exp == "*":
        return True
    if exp.startswith("*"):
        return ns.endswith(exp[1:])
    if exp.endswith("*"):
        return ns.startswith(exp[:-1])
    return ns.lower() == exp.lower()


def analyze(ctx: Context) -> Iterator[Finding]:
    pods: dict[str, list[dict[str, str]]] = {}
    for w in ctx.mesh.registry.workloads:
        for _ in range(int(w.injected) + int(pod_in_ambient(w.annotations))):
            pods.setdefault(w.namespace, []).append(w.labels)
    namespaces = [r.name for r in ctx.of_kind("Namespace")]
    root = ctx.mesh.mesh_config.root_namespace
    for ap in ctx.of_kind("AuthorizationPolicy"):
        selector = ap.spec.get("selector")
        labels = selector.get("matchLabels") if isinstance(selector, dict) else None
        sel = {str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else None
        if ap.namespace == root:
            if selector is not None and not any(
                    labels_match(sel or {}, p) for ps in pods.values() for p in ps):
                yield finding("ML1160", ap, ("spec", "selector"), labels=selector_string(sel or {}))
        elif selector is None:
            if not pods.get(ap.namespace):
                yield finding("ML1160", ap, (), labels="")
        elif not any(labels_match(sel or {}, p) for p in pods.get(ap.namespace, [])):
            yield finding("ML1160", ap, ("spec", "selector"), labels=selector_string(sel or {}))
        for i, rule in enumerate(ap.spec.get("rules") or []):
            for j, frm in enumerate((rule or {}).get("from") or [] if isinstance(rule, dict) else []):
                src = frm.get("source") if isinstance(frm, dict) else None
                if not isinstance(src, dict):
                    continue
                for key in ("namespaces", "notNamespaces"):
                    for k, ns in enumerate(src.get(key) or []):
                        if not any(namespace_match(n, str(ns)) for n in namespaces):
                            yield finding("ML1161", ap, ("spec", "rules", i, "from", j, "source", key, k),
                                          what="namespace", value=goq(str(ns)),
                                          fix={"ns": str(ns)})
