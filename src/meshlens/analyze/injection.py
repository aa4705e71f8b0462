"""Namespaces without injection labels or with conflicting ones, and pods in injected
namespaces that lack the sidecar (istioctl `injection.Analyzer`).

Layer: L6. Imports: analyze.core.

The injector ConfigMap (``enableNamespacesByDefault``) is not read; it defaults to false. Pods
are the Pod objects given in the input (pods meshlens makes from controllers are injected by
the webhook at creation, so they are not checked).
"""

from __future__ import annotations

from collections.abc import Iterator

from meshlens.analyze._istio import full_name
from meshlens.analyze.core import (CodeDoc, Context, Finding, Metadata, as_dict, finding, gov,
                                   iter_dicts)

METADATA = Metadata(
    name="injection.Analyzer",
    description="Checks conditions related to Istio sidecar injection",
    inputs=("Namespace", "Pod"),
    codes=("ML1151", "ML1152", "ML1153"),
)

DOCS = {
    "ML1151": CodeDoc(
        checks="Namespace objects (other than istio-system) without istio-injection or "
               "istio.io/rev labels, and not ambient (istioctl injection.Analyzer, IST0102).",
        matters="Pods created there get no sidecar: they are outside the mesh (plaintext, "
                "no routing rules). Info: it may be on purpose.",
        quiet="istio-injection=enabled or disabled, istio.io/rev, ambient dataplane mode; "
              "namespaces that appear only as the namespace of other objects.",
        example="apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}"),
    "ML1152": CodeDoc(
        checks="Pod objects in an istio-injection=enabled namespace without an istio-proxy "
               "container (IST0103); pods meshlens makes from controllers are injected.",
        matters="The pod runs without its sidecar, usually because it started before the label: "
                "clients' mTLS toward it fails (503 UF) under STRICT, routing rules do not apply "
                "to its own calls.",
        quiet="sidecar.istio.io/inject: false; hostNetwork pods; pods with istio-proxy.",
        example="kind: Pod, namespace labelled istio-injection=enabled, containers: [{name: "
                "app}] only"),
    "ML1153": CodeDoc(
        checks="A Namespace with more than one injection label (istio-injection, istio.io/rev, "
               "istio.io/dataplane-mode) (IST0123).",
        matters="Which injector or dataplane wins is undefined behaviour.",
        quiet="One injection label.",
        example="labels: {istio-injection: enabled, istio.io/rev: canary}"),
}

INJECTION, REV, DATAPLANE = "istio-injection", "istio.io/rev", "istio.io/dataplane-mode"


def analyze(ctx: Context) -> Iterator[Finding]:
    injected: set[str] = set()
    for ns in ctx.of_kind("Namespace"):
        if ns.name == "istio-system":
            continue
        legacy = ns.labels.get(INJECTION)
        has_legacy = INJECTION in ns.labels
        labels = [f"{INJECTION}={legacy}"] if has_legacy else []
        for key in (REV, DATAPLANE):
            if key in ns.labels and (not has_legacy or legacy == "enabled"):
                labels.append(f"{key}={ns.labels[key]}")
        if len(labels) > 1:
            yield finding("ML1153", ns, (), labels=gov(labels), fix={"labels": ", ".join(labels)})
        if ns.labels.get(DATAPLANE) == "ambient":
            continue
        if not legacy and REV not in ns.labels:
            yield finding("ML1151", ns, ("metadata", "name"), ns=ns.name)
            continue
        if legacy == "enabled":
            injected.add(ns.name)
    for pod in ctx.of_kind("Pod"):
        if pod.namespace not in injected:
            continue
        inject = pod.labels.get("sidecar.istio.io/inject",
                                pod.annotations.get("sidecar.istio.io/inject", ""))
        if inject.lower() == "false":
            continue
        if pod.spec.get("hostNetwork"):
            continue
        containers = list(iter_dicts(pod.spec.get("containers"))) + \
            list(iter_dicts(pod.spec.get("initContainers")))
        proxy = next((c for c in containers if c.get("name") == "istio-proxy"), None)
        if proxy is None or not as_dict(proxy).get("image"):
            yield finding("ML1152", pod, (), pod=full_name(pod))
