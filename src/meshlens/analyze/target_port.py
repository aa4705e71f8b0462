"""Service targetPorts given by name that no container of the selected pods defines: those
pods are left out of the Service's endpoints (503 UH when none is left).

Layer: L6. Imports: analyze.core, analyze._istio, model.

Kubernetes resolves a *named* targetPort per pod, from the pod's ``containers[].ports[].name``;
a pod without that name is not an endpoint of the port (the EndpointSlice controller's
``podutil.FindPort``). A *numeric* targetPort needs no ``containerPort`` declaration at all
(declarations are informational; grpc-echo, for one, listens on ports given as arguments), so
it is never reported. This finding replaces the loader's per-pod ML0301 note on the same field.
"""

from __future__ import annotations

from collections.abc import Iterator

from meshlens.analyze._istio import workload_index
from meshlens.analyze.core import (CodeDoc, Context, Finding, Metadata, finding, iter_dicts,
                                   short_list)
from meshlens.model.registry import Workload

METADATA = Metadata(
    name="meshlens.TargetPortAnalyzer",
    description="Named Service targetPorts that no container of the selected pods defines",
    inputs=("Service", "Pod", "Deployment", "StatefulSet", "ReplicaSet", "DaemonSet"),
    codes=("ML1290",),
    supersedes=("ML0301",),
)

DOCS = {
    "ML1290": CodeDoc(
        checks="Service ports whose targetPort is a name, against the containers[].ports[].name "
               "of each workload the Service selects; it replaces the loader's per-pod ML0301 "
               "note on the same field.",
        matters="Kubernetes leaves a pod without that port name out of the Service's endpoints "
                "(the EndpointSlice controller's FindPort): requests are not sent to it, 503 UH "
                "when no pod is left.",
        quiet="Numeric targetPorts, declared or not: Kubernetes needs no containerPort for them "
              "(grpc-echo listens on ports given as arguments); every selected workload names "
              "the port.",
        example="Service: ports [{port: 80, targetPort: web-http}]; containers: [{ports: "
                "[{containerPort: 8080}]}]   # unnamed"),
}


def analyze(ctx: Context) -> Iterator[Finding]:
    workloads = ctx.mesh.registry.workloads
    index = workload_index(ctx)
    for svc in ctx.of_kind("Service"):
        sel = svc.spec.get("selector")
        if not isinstance(sel, dict) or not sel or svc.spec.get("type") == "ExternalName":
            continue
        selector = {str(k): str(v) for k, v in sel.items()}
        groups: dict[str, Workload] = {}
        for i in index.select(svc.namespace, selector):
            w = workloads[i]
            groups.setdefault(f"{w.workload_name}.{w.namespace}", w)
        if not groups:
            continue
        for i, p in enumerate(iter_dicts(svc.spec.get("ports"))):
            target = p.get("targetPort")
            if not isinstance(target, str) or not target:
                continue
            missing = {k: w for k, w in groups.items()
                       if target not in {c.name for c in w.container_ports}}
            if not missing:
                continue
            declared = sorted({f"{c.name or '(unnamed)'} {c.port}" for w in missing.values()
                               for c in w.container_ports}) or ["none declared"]
            yield finding("ML1290", svc, ("spec", "ports", i, "targetPort"), target=target,
                          port=p.get("port"), workloads=short_list(sorted(missing)),
                          declared=", ".join(declared))
