"""Clusters that exist but whose endpoint list is empty: 503 UH (no healthy upstream).

Layer: L6. Imports: analyze.core, analyze._compiled, analyze._istio, model.

Proven on compiled EDS: the cluster is in CDS and its ClusterLoadAssignment has no endpoint
Envoy would pick (none at all, or all UNHEALTHY with panic routing off). A subset cluster is
reported on the DestinationRule subset (unless istioctl's IST0173 already says no pod at all
carries its labels) only when a VirtualService routes to that subset (an empty subset nothing
routes to fails no request: ML1205 notes it); its reason names only pods of the service itself.
A service cluster is reported on the Service or ServiceEntry.
"""

from __future__ import annotations

from collections.abc import Iterator

from meshlens.analyze._compiled import HEALTHY, cla_index, describe_clusters, hosts, outbound
from meshlens.analyze._istio import labels_match
from meshlens.analyze.unused_subsets import subset_used
from meshlens.analyze.core import (CodeDoc, Context, Finding, Metadata, finding, selector_string,
                                   short_list)
from meshlens.model.registry import Service
from meshlens.resources import Resource
from meshlens.source import FieldPath

METADATA = Metadata(
    name="meshlens.EmptyEndpointsAnalyzer",
    description="Clusters whose compiled endpoint list is empty (503 UH)",
    inputs=("Service", "ServiceEntry", "DestinationRule", "Pod", "Deployment", "EndpointSlice"),
    codes=("ML1202", "ML1203"),
    compiled=True,
    yields_to=("ML1114",),
)

DOCS = {
    "ML1202": CodeDoc(
        checks="On each sidecar's compiled EDS: a subset cluster that a VirtualService routes "
               "to (route or mirror) and whose endpoint list has no endpoint Envoy would pick "
               "(none, or all UNHEALTHY with panic routing off). The reason names only pods of "
               "the service itself.",
        matters="Requests routed to the subset fail with 503 UH (no healthy upstream).",
        quiet="No route uses the subset (harmless today; ML1205 notes it); the subset has "
              "endpoints; the service itself has none (ML1203 reports it once); no pod carries "
              "the labels at all (istioctl's IST0173, ML1114, says so).",
        example="VirtualService details: route [{destination: {host: details, subset: v2}}]\n"
                "DestinationRule details: subsets [{name: v2, labels: {version: v2}}]   # no "
                "details-v2 pod"),
    "ML1203": CodeDoc(
        checks="On each sidecar's compiled EDS: a service cluster (no subset) with no endpoint "
               "Envoy would pick, with the reason read from the model (selector matches no pod, "
               "pods in another namespace, named targetPort unresolved, pods not ready, "
               "ServiceEntry without endpoints).",
        matters="Every request to the service's port fails with 503 UH.",
        quiet="The service has at least one healthy endpoint; headless and DNS services "
              "(no EDS); sidecars that do not import the service.",
        example="Service ghost: {selector: {app: ghost}, ports: [{name: http, port: 80}]}   # no "
                "pod has app=ghost"),
}


def exist_but_empty(names: list[str]) -> str:
    """``cluster X exists but its endpoint list is`` (or the plural), for the messages.

    Example:
        >>> exist_but_empty(["outbound|80||a"])
        'cluster outbound|80||a exists but its endpoint list is'
    """
    if len(set(names)) == 1:
        return f"cluster {names[0]} exists but its endpoint list is"
    return f"clusters {describe_clusters(names)} exist but their endpoint lists are"


def _service_reason(ctx: Context, svc: Service, unhealthy: int) -> tuple[str, str]:
    if unhealthy:
        return (f"its {unhealthy} endpoint(s) are not ready (sent UNHEALTHY, and panic routing is "
                "off)", "Make the pods ready, or check their readiness probes.")
    if svc.registry != "Kubernetes":
        return ("the ServiceEntry has no endpoints and its workloadSelector selects no workload",
                "Add endpoints, or a workloadSelector matching pods or WorkloadEntries.")
    if not svc.selector:
        return ("the Service has no selector and the input has no EndpointSlice for it",
                "Add a selector, or the EndpointSlices of the backends.")
    pods = [w for w in ctx.mesh.registry.workloads if w.namespace == svc.namespace]
    sel = selector_string(svc.selector)
    same = [w for w in pods if labels_match(svc.selector, w.labels)]
    if same:
        where = short_list(sorted({w.workload_name for w in same}))
        named = sorted({str(p.target_port) for p in svc.ports if isinstance(p.target_port, str)
                        and not any(c.name == p.target_port for w in same
                                    for c in w.container_ports)})
        if named:
            return (f"selector {sel} matches {where}, but no container of theirs has a port named "
                    f"{', '.join(named)} (the targetPort)",
                    "Name the container port like the Service's targetPort, or use the number.")
        return (f"selector {sel} matches {where}, but none of them is an endpoint of this port",
                "Check the Service's ports and targetPorts against the pods.")
    near = [w for w in ctx.mesh.registry.workloads if labels_match(svc.selector, w.labels)]
    if near:
        where = short_list(sorted({f"{w.workload_name}.{w.namespace}" for w in near}))
        return (f"selector {sel} matches {where}, not in namespace {svc.namespace}",
                f"Run the workload in {svc.namespace}, or point the Service at it.")
    if pods:
        return (f"selector {sel} matches no pod in namespace {svc.namespace}",
                "Make the Service selector match the pod template labels.")
    return (f"selector {sel} matches no pod: the input has no workload in namespace "
            f"{svc.namespace}", "Add the Deployment (or pods) behind the Service.")


def _subset_reason(ctx: Context, svc: Service, labels: dict[str, str],
                   port: int) -> tuple[str, str]:
    """Why a subset of ``svc`` has no endpoint; only pods of ``svc`` itself are named."""
    text = selector_string(labels) if labels else "(none)"
    own = [w for w in ctx.mesh.registry.workloads if w.namespace == svc.namespace
           and (svc.registry != "Kubernetes" or labels_match(svc.selector, w.labels))]
    carrying = [w for w in own if labels_match(labels, w.labels)]
    if carrying:
        where = short_list(sorted({f"{w.workload_name}.{w.namespace}" for w in carrying}))
        return (f"subset labels {text} match {where}, but none of them is an endpoint of "
                f"{svc.hostname} port {port}",
                f"Make {svc.name}'s selector (and port) cover the subset's pods, or fix the "
                "subset labels.")
    of = f"{svc.name} (selector {selector_string(svc.selector)})" \
        if svc.registry == "Kubernetes" and svc.selector else svc.hostname
    return (f"no pod of {of} carries the subset labels {text}",
            "Deploy the version the subset names, or make the subset labels match the pod "
            "template labels of an existing version.")


def analyze(ctx: Context) -> Iterator[Finding]:
    subset_hits: dict[tuple[object, FieldPath], tuple[Resource, str, str, list[str], str]] = {}
    service_hits: dict[tuple[object, str], tuple[Resource, Service, list[str], list[int], str,
                                                 str]] = {}
    # The build cache shares assignments between proxies: each one's count is read once.
    counts: dict[int, tuple[object, int | None, bool]] = {}
    for _, result in ctx.compiled():
        empty: dict[str, int] = {}
        index = cla_index(result)
        for bc in outbound(result):
            c = bc.cluster
            cla = index.get(c.eds_cluster_config.service_name or c.name) \
                if c.type == c.EDS else None
            hit = counts.get(id(cla)) if cla is not None else None
            if hit is None or hit[0] is not cla:
                got = hosts(result, c, index)
                hit = (cla, None if got is None else len(got),
                       any(h.health in HEALTHY for h in got or ()))
                if cla is not None:
                    counts[id(cla)] = hit
            if hit[1] is not None and not hit[2]:
                empty[c.name] = hit[1]
        for bc in outbound(result):
            name = bc.cluster.name
            if name not in empty:
                continue
            svc, port = bc.service, bc.port
            assert svc is not None and port is not None
            if not bc.subset:
                key = (svc.resource.ref, svc.hostname)
                hit = service_hits.get(key)
                if hit is None:  # the first cluster's reason is the one reported
                    reason, fix = _service_reason(ctx, svc, empty[name])
                    hit = service_hits[key] = (svc.resource, svc, [], [], reason, fix)
                if name not in hit[2]:
                    hit[2].append(name)
                    hit[3].append(port.port)
                continue
            parent = name.replace(f"|{bc.subset}|", "||", 1)
            if parent in empty or bc.rule is None:
                continue  # the service itself has no endpoints: reported once, on the Service
            sub = bc.rule.subset(bc.subset)
            if sub is None:
                continue
            if not subset_used(ctx, svc.hostname, bc.subset):
                continue  # no route sends there: harmless today (ML1205 notes the unused subset)
            path: FieldPath = ("spec", "subsets", sub.index)
            hit2 = subset_hits.get((sub.resource.ref, path))
            if hit2 is None:
                reason, fix = _subset_reason(ctx, svc, sub.labels, port.port)
                hit2 = subset_hits[(sub.resource.ref, path)] = (sub.resource, bc.subset, reason,
                                                                [], fix)
            if name not in hit2[3]:
                hit2[3].append(name)
    for (_, path), (res, subset, reason, clusters, fix) in subset_hits.items():
        yield finding("ML1202", res, path, clusters=exist_but_empty(clusters), subset=subset,
                      reason=reason, fix={"fix": fix})
    for (_, _), (res, svc, clusters, ports, reason, fix) in service_hits.items():
        path = ("spec", "selector") if svc.registry == "Kubernetes" and svc.selector else ("spec",)
        yield finding("ML1203", res, path, clusters=exist_but_empty(clusters), host=svc.hostname,
                      port=",".join(str(p) for p in sorted(set(ports))), reason=reason,
                      fix={"fix": fix})
