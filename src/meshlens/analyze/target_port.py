"""Service targetPorts that no container of the selected pods declares: if nothing listens
there, every connection to the endpoints is refused (503 UF).

Layer: L6. Imports: analyze.core, analyze._istio, model.

A named targetPort that matches no container port is already reported while loading (ML0301:
that endpoint is left out of EDS); this checks numeric ones, for pods that declare their ports.
"""

from __future__ import annotations

from collections.abc import Iterator

from meshlens.analyze._istio import labels_match
from meshlens.analyze.core import Context, Finding, Metadata, finding, iter_dicts, short_list
from meshlens.model.registry import Workload

METADATA = Metadata(
    name="meshlens.TargetPortAnalyzer",
    description="Service targetPorts that the selected pods do not declare",
    inputs=("Service", "Pod", "Deployment", "StatefulSet", "ReplicaSet", "DaemonSet"),
    codes=("ML1290",),
)


def analyze(ctx: Context) -> Iterator[Finding]:
    for svc in ctx.of_kind("Service"):
        sel = svc.spec.get("selector")
        if not isinstance(sel, dict) or not sel or svc.spec.get("type") == "ExternalName":
            continue
        selector = {str(k): str(v) for k, v in sel.items()}
        groups: dict[str, Workload] = {}
        for w in ctx.mesh.registry.workloads:
            if w.namespace == svc.namespace and labels_match(selector, w.labels):
                groups.setdefault(f"{w.workload_name}.{w.namespace}", w)
        if not groups:
            continue
        for i, p in enumerate(iter_dicts(svc.spec.get("ports"))):
            if p.get("protocol") == "UDP":
                continue
            target = p.get("targetPort", p.get("port"))
            if not isinstance(target, int):
                continue
            missing = {k: w for k, w in groups.items() if w.container_ports
                       and target not in {c.port for c in w.container_ports}}
            if not missing:
                continue
            declared = sorted({c.port for w in missing.values() for c in w.container_ports})
            path = ("spec", "ports", i, "targetPort") if "targetPort" in p else ("spec", "ports", i)
            yield finding("ML1290", svc, path, target=target, port=p.get("port"),
                          workloads=short_list(sorted(missing)),
                          declared=", ".join(map(str, declared)))
