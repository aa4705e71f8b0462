"""DestinationRule hosts that match no service, and subsets whose labels select no pod
(istioctl `destinationrule.SubsetSelectPodAnalyzer`).

Layer: L6. Imports: analyze.core, analyze._istio.

Like istioctl, a subset counts as selecting when any pod of the mesh (any namespace) carries its
labels (merged with a ServiceEntry's workloadSelector). meshlens's pods include those it makes
from Deployments and other controllers. Whether the subset's cluster really gets endpoints (the
pods must also be endpoints of the service's port) is checked on compiled EDS by
``empty_endpoints``.
"""

from __future__ import annotations

from collections.abc import Iterator

from meshlens.analyze._istio import destination_host, labels_match, service_entry_hosts
from meshlens.analyze.core import CodeDoc, Context, Finding, Metadata, finding
from meshlens.model.registry import Workload

METADATA = Metadata(
    name="destinationrule.SubsetSelectPodAnalyzer",
    description="Checks if pods are selected by subsets in destination rules.",
    inputs=("DestinationRule", "Pod", "Service", "ServiceEntry"),
    codes=("ML1113", "ML1114"),
)

DOCS = {
    "ML1113": CodeDoc(
        checks="DestinationRule spec.host against Services and ServiceEntries visible to the "
               "rule's namespace, resolved as istioctl does (IST0174).",
        matters="The rule applies to no service: its traffic policy and subsets are never used.",
        quiet="The host is a Service (short name in the rule's namespace, or FQDN) or a "
              "ServiceEntry host (wildcards included).",
        example="host: reviews.prod   # a dotted short name is literal: no such host"),
    "ML1114": CodeDoc(
        checks="Each subset's labels (merged with a ServiceEntry's workloadSelector) against the "
               "labels of every pod of the input, any namespace, as istioctl does (IST0173). "
               "Pods meshlens makes from Deployments and other controllers count.",
        matters="A route to that subset reaches a cluster with no endpoint: 503 UH "
                "(no healthy upstream). istioctl reports it even when no route uses the subset; "
                "so does this mirror.",
        quiet="Any pod carries the labels (even a pod of another service: then meshlens's "
              "ML1202 checks the subset's real endpoints).",
        example="subsets: [{name: v3, labels: {version: v3}}]   # no pod has version=v3"),
}


def pod_labels(w: Workload) -> dict[str, str]:
    """`label.AugmentLabels` as the analyzer calls it: no cluster or network id, no Node."""
    out = dict(w.labels)
    if w.node:
        out["kubernetes.io/hostname"] = w.node
    return out


def analyze(ctx: Context) -> Iterator[Finding]:
    entries = service_entry_hosts(ctx)
    pods = [pod_labels(w) for w in ctx.mesh.registry.workloads]
    for dr in ctx.of_kind("DestinationRule"):
        host = str(dr.spec.get("host", ""))
        export = [str(e) for e in dr.spec.get("exportTo") or []]
        entry = destination_host(dr.namespace, export, host, entries)
        if entry is None:
            yield finding("ML1113", dr, ("spec", "host"), host=host)
            continue
        seen: set[str] = set()
        for i, s in enumerate(dr.spec.get("subsets") or []):
            if not isinstance(s, dict):
                continue
            name = str(s.get("name", ""))
            if name in seen:
                continue
            seen.add(name)
            labels = {str(k): str(v) for k, v in (s.get("labels") or {}).items()} \
                if isinstance(s.get("labels"), dict) else {}
            selector = {**entry.selector, **labels}
            if not any(labels_match(selector, p) for p in pods):
                yield finding("ML1114", dr, ("spec", "subsets", i), subset=name)
