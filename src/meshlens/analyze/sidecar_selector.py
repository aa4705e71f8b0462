"""Sidecar resources whose selector matches no pod, several Sidecars for one pod, and several
namespace-wide Sidecars (istioctl `sidecar.SelectorAnalyzer`).

Layer: L6. Imports: analyze.core, analyze._istio.

istiod applies one Sidecar per proxy (the oldest that matches); the others are ignored, so the
egress scope a team wrote may not be the one in force.
"""

from __future__ import annotations

from collections.abc import Iterator

from meshlens.analyze._istio import labels_match
from meshlens.analyze.core import (CodeDoc, Context, Finding, Metadata, as_dict, finding, goq, gov,
                                   selector_string)
from meshlens.resources import Resource

METADATA = Metadata(
    name="sidecar.SelectorAnalyzer",
    description="Validates that sidecars that define a workload selector match at least one pod, "
                "and that there aren't multiple sidecar resources that select overlapping pods",
    inputs=("Sidecar", "Pod", "Namespace"),
    codes=("ML1121", "ML1122", "ML1123", "ML1124"),
)

DOCS = {
    "ML1121": CodeDoc(
        checks="Sidecar workloadSelector.labels against the pods of its namespace (istioctl "
               "sidecar.SelectorAnalyzer, IST0101).",
        matters="The Sidecar applies to no workload: its egress scoping and ingress listeners "
                "are not used.",
        quiet="Some pod of the namespace carries the labels; Sidecars without a selector.",
        example="workloadSelector: {labels: {app: nothere}}"),
    "ML1122": CodeDoc(
        checks="Two or more Sidecars whose selectors match the same pod (IST0110).",
        matters="Which one the pod gets is undefined.",
        quiet="Disjoint selectors.",
        example="Sidecar a: {workloadSelector: {labels: {app: web}}}; Sidecar b: "
                "{workloadSelector: {labels: {tier: front}}}; a pod with both labels"),
    "ML1123": CodeDoc(
        checks="More than one Sidecar without workloadSelector in a namespace (IST0111).",
        matters="Which namespace-wide Sidecar applies is undefined.",
        quiet="At most one selector-less Sidecar per namespace.",
        example="two Sidecars in namespace shop, neither with workloadSelector"),
    "ML1124": CodeDoc(
        checks="Sidecars that select ambient-mode workloads or live in an ambient namespace "
               "(IST0167).",
        matters="Ambient workloads have no sidecar: the policy has no impact.",
        quiet="Sidecar-mode workloads.",
        example="namespace labelled istio.io/dataplane-mode=ambient with a Sidecar"),
}

AMBIENT_REDIRECTION = "ambient.istio.io/redirection"


def pod_in_ambient(annotations: dict[str, str]) -> bool:
    return annotations.get(AMBIENT_REDIRECTION) == "enabled"


def namespace_in_ambient(ns: Resource | None) -> bool:
    """`NamespaceInAmbientMode`."""
    if ns is None:
        return False
    if ns.labels.get("istio-injection") == "enabled":
        return False
    if ns.labels.get("istio.io/rev"):
        return False
    return ns.labels.get("istio.io/dataplane-mode") == "ambient"


def analyze(ctx: Context) -> Iterator[Finding]:
    pods = ctx.mesh.registry.workloads
    pod_sidecars: dict[tuple[str, str], list[Resource]] = {}
    pod_annotations: dict[tuple[str, str], dict[str, str]] = {}
    ns_sidecars: dict[str, list[Resource]] = {}
    for sc in ctx.of_kind("Sidecar"):
        labels = as_dict(as_dict(sc.spec.get("workloadSelector")).get("labels"))
        if not labels:
            ns_sidecars.setdefault(sc.namespace, []).append(sc)
            continue
        sel = {str(k): str(v) for k, v in labels.items()}
        found = False
        for p in pods:
            if p.namespace == sc.namespace and labels_match(sel, p.labels):
                found = True
                pod_sidecars.setdefault((p.namespace, p.name), []).append(sc)
                pod_annotations[(p.namespace, p.name)] = p.annotations
        if not found:
            first = sorted(sel)[0]
            yield finding("ML1121", sc, ("spec", "workloadSelector", "labels", first),
                          what="selector", value=goq(selector_string(sel)),
                          fix={"ns": sc.namespace})
    namespaces = {r.name: r for r in ctx.of_kind("Namespace")}
    reported: set[tuple[str, str]] = set()
    for (ns, pod), sidecars in pod_sidecars.items():
        ambient = pod_in_ambient(pod_annotations[(ns, pod)])
        if len(sidecars) == 1 and not ambient:
            continue
        names = gov(sorted(s.name for s in sidecars))
        for sc in sidecars:
            if ambient:
                if (sc.namespace, sc.name) not in reported:
                    reported.add((sc.namespace, sc.name))
                    yield finding("ML1124", sc, (), reason="selected workload is in ambient mode, "
                                                           "the policy has no impact")
                continue
            yield finding("ML1122", sc, ("metadata", "name"), names=names, ns=goq(ns),
                          pod=goq(pod))
    for ns, sidecars in ns_sidecars.items():
        if namespace_in_ambient(namespaces.get(ns)):
            for sc in sidecars:
                if (sc.namespace, sc.name) not in reported:
                    reported.add((sc.namespace, sc.name))
                    yield finding("ML1124", sc, (), reason="namespace is in ambient mode, the "
                                                           "policy has no impact")
            continue
        if len(sidecars) > 1:
            names = gov(sorted(s.name for s in sidecars))
            for sc in sidecars:
                yield finding("ML1123", sc, (), names=names, ns=goq(ns), fix={"ns": ns})
