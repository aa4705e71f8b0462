"""Services, workloads and endpoints, as istiod's registries build them from the live state.

Layer: L3. Imports: resources, diagnostics, errors, model.protocol, model.features.

Split by source, as istiod's ``serviceregistry`` is:

* :mod:`.pods`: real pods (a Pod with a ``status``, exported from a cluster), as the pod
  informer and ``PodCache`` see them (``kube/controller/pod.go``);
* :mod:`.synthesized`: the pods controllers would run when none of theirs is in the input, and
  the pod address pool; :mod:`.injection`: the injector's decision for those;
* :mod:`.endpointslices`: endpoints from EndpointSlices (``kube/controller/endpointslice.go``,
  ``endpoint_builder.go``), or from what the EndpointSlice controller would write;
* :mod:`.services`: Kubernetes Services (``kube/conversion.go``);
* :mod:`.serviceentries`: ServiceEntries and WorkloadEntries (``serviceregistry/serviceentry``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from meshlens.diagnostics import Diagnostic, report
from meshlens.model.features import ModelFeatures
from meshlens.model.registry.endpointslices import (
    PodLookup,
    controller_endpoints,
    slice_endpoints,
    slices_by_service,
)
from meshlens.model.registry.injection import InjectionPolicy
from meshlens.model.registry.pods import real_pod
from meshlens.model.registry.serviceentries import se_endpoints, service_entry
from meshlens.model.registry.services import kube_service
from meshlens.model.registry.synthesized import (
    CONTROLLERS,
    POD_CIDR,
    Allocator,
    controller_of_pod,
    plan_pods,
    synthesize,
)
from meshlens.model.registry.types import (
    CANONICAL_NAME,
    CANONICAL_REVISION,
    CLUSTER_ID,
    DOMAIN_SUFFIX,
    TLS_MODE_LABEL,
    ContainerPort,
    Endpoint,
    Service,
    ServicePort,
    Workload,
    canonical_name,
    canonical_revision,
    selects,
    spiffe,
)
from meshlens.resources import Resource

__all__ = [
    "CANONICAL_NAME", "CANONICAL_REVISION", "CLUSTER_ID", "DOMAIN_SUFFIX", "TLS_MODE_LABEL",
    "ContainerPort", "Endpoint", "InjectionPolicy", "Registry", "Service", "ServicePort",
    "Workload", "build_registry", "canonical_name", "canonical_revision", "spiffe",
]


@dataclass(slots=True)
class Registry:
    """All services, workloads and endpoints of the mesh."""

    services: list[Service] = field(default_factory=list)
    by_host: dict[str, list[Service]] = field(default_factory=dict)
    workloads: list[Workload] = field(default_factory=list)
    endpoints: dict[tuple[str, str], list[Endpoint]] = field(default_factory=dict)
    namespaces: dict[str, dict[str, str]] = field(default_factory=dict)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    assumed_namespaces: set[str] = field(default_factory=set)

    def service(self, hostname: str, namespace: str | None = None) -> Service | None:
        for s in self.by_host.get(hostname, []):
            if namespace is None or s.namespace == namespace:
                return s
        return None

    def endpoints_of(self, svc: Service) -> list[Endpoint]:
        return self.endpoints.get((svc.hostname, svc.namespace), [])


class _PodIndex:
    """Pods by namespace and by (label, value), so selecting pods is not a scan of all pods."""

    def __init__(self, pods: list[Workload]) -> None:
        self.by_label: dict[tuple[str, str, str], list[int]] = {}
        self.pods = pods
        for i, p in enumerate(pods):
            for k, v in p.labels.items():
                self.by_label.setdefault((p.namespace, k, v), []).append(i)

    def select(self, namespace: str, selector: dict[str, str] | None) -> list[Workload]:
        if not selector:
            return []
        sets = [self.by_label.get((namespace, k, v), []) for k, v in selector.items()]
        smallest = min(sets, key=len)
        return [self.pods[i] for i in smallest if selects(selector, self.pods[i].labels)]


def build_workloads(resources: list[Resource], reg: Registry, policy: InjectionPolicy) -> None:
    """Real pods (Failed ones dropped, as the informer's field selector does), then synthesized."""
    nodes = {r.name: r for r in resources if r.kind == "Node"}
    controllers = {(r.kind, r.namespace, r.name): r for r in resources if r.kind in CONTROLLERS}
    real: list[Workload] = []
    real_names: set[tuple[str, str]] = set()
    owned: set[tuple[str, str, str]] = set()
    missing: set[str] = set()
    for res in resources:
        if res.kind != "Pod":
            continue
        status = res.body.get("status")
        if not isinstance(status, dict):
            reg.diagnostics.append(report(
                "ML0302", doc=res.doc, resource=res.ref,
                message=f"Pod {res.namespace}/{res.name} has no status, so it is not from a "
                        "cluster: it is treated as a pod about to be created (injection as the "
                        "webhook decides, an address from the pod pool, Running and Ready)"))
            continue
        real_names.add((res.namespace, res.name))
        if status.get("phase") == "Failed":
            continue  # NewController: pods informer with FieldSelector "status.phase!=Failed"
        ctrl, gone = controller_of_pod(res, controllers)
        if gone:
            missing.add(f"{gone} ({res.namespace})")
        if ctrl is not None:
            owned.add((ctrl[0], res.namespace, ctrl[1]))
            meta = res.body.get("metadata") or {}
            for o in meta.get("ownerReferences") or []:
                if isinstance(o, dict) and o.get("kind") == "ReplicaSet":
                    owned.add(("ReplicaSet", res.namespace, str(o.get("name"))))
        real.append(real_pod(res, nodes, ctrl))
    if missing:
        shown = sorted(missing)
        more = f" and {len(shown) - 5} more" if len(shown) > 5 else ""
        reg.diagnostics.append(report(
            "ML0302", message="pods' ownerReferences name objects that are not in the input: "
                              f"{', '.join(shown[:5])}{more}; the workload of those pods is taken "
                              "from the reference, as istiod takes it"))
    alloc = Allocator(POD_CIDR, {ip for w in real for ip in w.ips})
    synth, reg.assumed_namespaces = synthesize(plan_pods(resources, owned, real_names), alloc,
                                               reg.namespaces, policy)
    reg.workloads = sorted(real + synth, key=lambda w: (w.namespace, w.name))


def _target_resolver(reg: Registry, svc: Service) -> Any:
    """`findPort`: a named targetPort is looked up in the pod's container ports (ML0301 if absent)."""

    def resolve(pod: Workload, target: Any, index: int) -> int | None:
        if not isinstance(target, str):
            return int(target)
        found = [c.port for c in pod.container_ports if c.name == target]
        if not found:
            reg.diagnostics.append(report(
                "ML0301", doc=svc.resource.doc, path=("spec", "ports", index, "targetPort"),
                resource=svc.resource.ref, name=svc.name, port=target, pod=pod.key))
            return None
        return found[0]

    return resolve


def build_registry(resources: list[Resource], *, trust_domain: str,
                   default_service_export: list[str],
                   features: ModelFeatures = ModelFeatures(),
                   injection: InjectionPolicy = InjectionPolicy()) -> Registry:
    reg = Registry()
    for res in resources:
        if res.kind == "Namespace":
            reg.namespaces[res.name] = dict(res.labels)
    build_workloads(resources, reg, injection)
    vips = Allocator("10.96.0.0/16", {"10.96.0.1", "10.96.0.10"})
    for res in resources:
        if res.kind == "Service":
            ip = res.spec.get("clusterIP")
            if isinstance(ip, str) and ip not in ("", "None"):
                vips.take(ip)
    kube = sorted((r for r in resources if r.kind == "Service"), key=lambda r: (r.namespace, r.name))
    slices = slices_by_service(resources)
    pods = PodLookup(reg.workloads)
    pod_index = _PodIndex(reg.workloads)
    for res in kube:
        svc = kube_service(res, vips, default_service_export, features)
        reg.services.append(svc)
        given = slices.pop((res.namespace, res.name), None)
        if given:
            eps = slice_endpoints(svc, given, pods, trust_domain=trust_domain, features=features,
                                  diags=reg.diagnostics)
        else:
            eps = controller_endpoints(svc, pod_index.select(svc.namespace, svc.selector),
                                       trust_domain=trust_domain, features=features,
                                       resolve=_target_resolver(reg, svc))
        reg.endpoints[(svc.hostname, svc.namespace)] = eps
    for (ns, name), orphans in sorted(slices.items()):
        for sl in orphans:  # hostNamesForNamespacedName finds no Service: nothing is built
            reg.diagnostics.append(report(
                "ML0305", doc=sl.doc, path=("metadata", "labels"), resource=sl.ref,
                message=f"Service {ns}/{name} is not in the input; istiod ignores this "
                        "EndpointSlice"))
    ses = [r for r in resources if r.kind == "ServiceEntry"]
    wes = [r for r in resources if r.kind == "WorkloadEntry"]
    for res in sorted(ses, key=lambda r: r.order):
        for svc in service_entry(res, default_service_export):
            reg.services.append(svc)
            reg.endpoints.setdefault((svc.hostname, svc.namespace), []).extend(
                se_endpoints(svc, res, reg.workloads, wes, trust_domain))
    for svc in reg.services:
        reg.by_host.setdefault(svc.hostname, []).append(svc)
    return reg
