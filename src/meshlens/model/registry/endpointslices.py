"""Endpoints of Kubernetes Services, from EndpointSlices as istiod's kube controller reads them.

Layer: L3. Imports: resources, diagnostics, model.features, model.registry.{types,pods}.

Given slices (label ``kubernetes.io/service-name``) are read as
``kube/controller/endpointslice.go:updateEndpointCacheForSlice`` does:

* slices with the ``multicluster.kubernetes.io/service-name`` label are not ours
  (``endpointSliceSelector``); ``addressType: FQDN`` slices are skipped;
* the health of an endpoint is ``endpointHealthStatus``: ready (or unset) → HEALTHY; a
  serving-and-terminating endpoint of a Service that ``SupportsDrainingEndpoints`` → DRAINING;
  terminating → TERMINATING; otherwise UNHEALTHY;
* the pod of an address is ``getPod``: by ``targetRef`` (any non-Failed pod of the input), else
  by IP among ready pods of the slice's namespace (``PodCache.getPodsByIP``); a ``targetRef`` to
  a pod that is not there drops the address (istiod waits for the pod);
* metadata comes from ``NewEndpointBuilder(pod)``: with no pod, no labels, namespace, workload
  or service account (``;;;;Kubernetes``); node and locality come from the pod, never the slice;
* an address and port name listed in two slices appears once (``endpointSliceCache.get``);
* with ``ISTIO_DUAL_STACK`` a dual-stack pod's IPv6 slice is skipped and its endpoint carries
  every pod IP.

A Service without slices in the input gets the endpoints the Kubernetes EndpointSlice
controller would write for it (``podToEndpoint``: terminal or IP-less pods left out; ready =
Ready and not terminating, or ``publishNotReadyAddresses``; serving = Ready; terminating =
``deletionTimestamp``), read the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from meshlens.diagnostics import Diagnostic, report
from meshlens.model.features import ModelFeatures
from meshlens.model.registry.pods import in_ip_index
from meshlens.model.registry.types import (
    TLS_MODE_LABEL,
    Endpoint,
    Service,
    Workload,
    augment_labels,
    spiffe,
)
from meshlens.resources import Resource

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MCS_SERVICE_NAME_LABEL = "multicluster.kubernetes.io/service-name"


def health_status(svc: Service, ready: Any, serving: Any, terminating: Any) -> str:
    """`endpointHealthStatus` over an endpoint's conditions (``None`` = unset)."""
    if ready is None or ready is True:
        return "HEALTHY"
    if svc.persistent_session and serving is not False and terminating is not False:
        return "DRAINING"
    if terminating is not False:
        return "TERMINATING"
    return "UNHEALTHY"


class PodLookup:
    """The two pod indexes ``getPod`` uses: by key (the informer) and by IP (``PodCache``)."""

    def __init__(self, pods: list[Workload]) -> None:
        self.by_key = {(p.namespace, p.name): p for p in pods}
        self.by_ip: dict[str, list[Workload]] = {}
        for p in pods:
            if in_ip_index(p):
                for ip in p.ips or (p.ip,):
                    self.by_ip.setdefault(ip, []).append(p)

    def get(self, address: str, namespace: str, target_ref: Any) -> tuple[Workload | None, bool]:
        """`getPod`: (pod, whether a pod was expected)."""
        if isinstance(target_ref, dict) and target_ref.get("kind") == "Pod":
            key = (str(target_ref.get("namespace") or ""), str(target_ref.get("name") or ""))
            return self.by_key.get(key), True
        for p in self.by_ip.get(address, []):
            if p.namespace == namespace:
                return p, False
        return None, False


def build_endpoint(pod: Workload | None, address: str, port: int, port_name: str, health: str,
                   trust_domain: str, source: Resource | None, path: tuple[str | int, ...],
                   draining_label: str) -> Endpoint:
    """`NewEndpointBuilder(pod).buildIstioEndpoint`."""
    if pod is None:
        return Endpoint(address=address, port=port, service_port_name=port_name,
                        labels=augment_labels({}, "", "", ""), tls_mode="disabled", namespace="",
                        workload_name="", health=health, source=source, source_path=path,
                        addresses=(address,))
    if draining_label and pod.labels.get(draining_label):
        health = "DRAINING"  # buildEnvoyLbEndpoint: the draining label wins
    return Endpoint(
        address=address, port=port, service_port_name=port_name,
        labels=augment_labels(pod.labels, pod.locality, pod.node, ""),
        tls_mode=pod.labels.get(TLS_MODE_LABEL) or "disabled", namespace=pod.namespace,
        workload_name=pod.workload_name, health=health,
        service_account=spiffe(trust_domain, pod.namespace, pod.service_account),
        locality=pod.locality, node=pod.node, source=source or pod.resource, source_path=path,
        addresses=(address,))


def slices_by_service(resources: list[Resource]) -> dict[tuple[str, str], list[Resource]]:
    """EndpointSlices of the input by (namespace, service name), in name order."""
    out: dict[tuple[str, str], list[Resource]] = {}
    for r in resources:
        if r.kind != "EndpointSlice" or MCS_SERVICE_NAME_LABEL in r.labels:
            continue
        name = r.labels.get(SERVICE_NAME_LABEL)
        if name:
            out.setdefault((r.namespace, name), []).append(r)
    for v in out.values():
        v.sort(key=lambda r: r.name)
    return out


def slice_endpoints(svc: Service, slices: list[Resource], pods: PodLookup, *, trust_domain: str,
                    features: ModelFeatures, diags: list[Diagnostic]) -> list[Endpoint]:
    """`updateEndpointCacheForSlice` for every slice, then `endpointSliceCache.get` (dedup)."""
    out: list[Endpoint] = []
    seen: set[tuple[str, str]] = set()
    dual = features.dual_stack and len(svc.cluster_ips) > 1
    for sl in slices:
        body = sl.body
        if body.get("addressType") == "FQDN":
            continue
        ports = [p for p in body.get("ports") or [] if isinstance(p, dict)]
        for i, ep in enumerate(body.get("endpoints") or []):
            if not isinstance(ep, dict):
                continue
            cond = ep.get("conditions") if isinstance(ep.get("conditions"), dict) else {}
            health = health_status(svc, cond.get("ready"), cond.get("serving"), cond.get("terminating"))
            for addr in ep.get("addresses") or []:
                pod, expected = pods.get(str(addr), sl.namespace, ep.get("targetRef"))
                if pod is None and expected:
                    ref = ep.get("targetRef") or {}
                    hint = "" if ref.get("namespace") else " (its targetRef has no namespace)"
                    diags.append(report(
                        "ML0305", doc=sl.doc, path=("endpoints", i, "targetRef"), resource=sl.ref,
                        message=f"address {addr}: targetRef pod {ref.get('namespace', '')}/"
                                f"{ref.get('name', '')} is not in the input, or Failed{hint}; "
                                "istiod leaves the address out until the pod exists"))
                    continue
                addresses = (str(addr),)
                if dual and pod is not None and len(pod.ips) > 1 and ep.get("targetRef"):
                    if body.get("addressType") == "IPv6":
                        continue  # the IPv4 slice carries the dual-stack endpoint
                    addresses = pod.ips
                for p in ports:
                    port = p.get("port") if isinstance(p.get("port"), int) else 0
                    name = str(p.get("name") or "")
                    key = (addresses[0], name)
                    if key in seen:
                        continue
                    seen.add(key)
                    e = build_endpoint(pod, addresses[0], port, name, health, trust_domain, sl,
                                       ("endpoints", i), features.draining_label)
                    e.addresses = addresses
                    out.append(e)
    return out


def controller_endpoints(svc: Service, selected: list[Workload], *, trust_domain: str,
                         features: ModelFeatures,
                         resolve: Callable[[Workload, Any, int], int | None]) -> list[Endpoint]:
    """The slices Kubernetes' EndpointSlice controller would write, read as istiod reads them.

    ``resolve(pod, target_port, index)`` turns a Service port's targetPort into the pod's port
    number (``findPort``), or ``None`` when the pod has no such named port.
    """
    out: list[Endpoint] = []
    for pod in selected:
        if pod.phase in ("Failed", "Succeeded") or not pod.ip:
            continue  # ShouldPodBeInEndpoints
        ready = svc.publish_not_ready or (pod.ready and not pod.terminating)
        health = health_status(svc, ready, pod.ready, pod.terminating)
        addresses = pod.ips if features.dual_stack and len(svc.cluster_ips) > 1 and len(pod.ips) > 1 \
            else (pod.ip,)
        for sp in svc.ports:
            target = sp.target_port if sp.target_port is not None else sp.port
            port = resolve(pod, target, sp.index)
            if port is None:
                continue
            e = build_endpoint(pod, pod.ip, port, sp.name, health, trust_domain, None, (),
                               features.draining_label)
            e.addresses = addresses
            out.append(e)
    return out
