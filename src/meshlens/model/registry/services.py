"""Kubernetes Services as istiod converts them (`serviceregistry/kube/conversion.go:ConvertService`).

Layer: L3. Imports: resources, model.protocol, model.features, model.registry.{types,synthesized}.

Service VIPs come from ``spec.clusterIP``, else from 10.96.0.0/16 by a hash of ``namespace/name``
(linear probing in sorted order, so adding a Service never moves another).
"""

from __future__ import annotations

from typing import Any

from meshlens.model import protocol
from meshlens.model.features import ModelFeatures
from meshlens.model.registry.synthesized import Allocator
from meshlens.model.registry.types import DOMAIN_SUFFIX, Service, ServicePort
from meshlens.resources import Resource


def export_set(values: Any, default: list[str]) -> frozenset[str]:
    if isinstance(values, str):
        values = [v.strip() for v in values.split(",") if v.strip()]
    if not values:
        values = default
    return frozenset(str(v) for v in values)


def kube_service(res: Resource, alloc: Allocator, default_export: list[str],
                 features: ModelFeatures = ModelFeatures()) -> Service:
    """`ConvertService`: one Kubernetes Service in the registry's shape."""
    spec = res.spec
    ports: list[ServicePort] = []
    for i, p in enumerate(spec.get("ports") or []):
        name = str(p.get("name", ""))
        proto = protocol.from_kube_port(name, p["port"], str(p.get("protocol", "TCP")),
                                        str(p.get("appProtocol", "")))
        ports.append(ServicePort(name, p["port"], proto, p.get("targetPort"), i))
    hostname = f"{res.name}.{res.namespace}.svc.{DOMAIN_SUFFIX}"
    stype = spec.get("type", "ClusterIP")
    resolution, external, alias = "ClientSideLB", False, ""
    if stype == "ExternalName" and spec.get("externalName"):
        resolution, external, alias = "Alias", True, str(spec["externalName"])
    cluster_ip = spec.get("clusterIP")
    if cluster_ip == "None":
        resolution = "Passthrough"
    vip = ""
    if isinstance(cluster_ip, str) and cluster_ip not in ("", "None"):
        vip = cluster_ip
    elif resolution == "ClientSideLB":
        vip = alloc.allocate(f"{res.namespace}/{res.name}")
    sel = spec.get("selector")
    sas = [s for key in ("alpha.istio.io/canonical-serviceaccounts",
                         "alpha.istio.io/kubernetes-serviceaccounts")
           for s in res.annotations.get(key, "").split(",") if s]
    td = spec.get("trafficDistribution") or res.annotations.get(
        "networking.istio.io/traffic-distribution", "")
    return Service(
        hostname=hostname, name=res.name, namespace=res.namespace, registry="Kubernetes",
        ports=ports, resolution=resolution, resource=res, mesh_external=external, vip=vip,
        addresses=[vip] if vip else [],
        export_to=export_set(res.annotations.get("networking.istio.io/exportTo"), default_export),
        selector=dict(sel) if isinstance(sel, dict) and sel else None,
        service_accounts=sas, labels=dict(res.labels), alias_target=alias,
        traffic_distribution=str(td) if td in ("PreferClose", "PreferSameZone", "PreferSameNode") else "",
        # Service.SupportsDrainingEndpoints: either persistent-session label, with a value.
        persistent_session=bool(
            (features.persistent_session_label and res.labels.get(features.persistent_session_label))
            or (features.persistent_session_header_label
                and res.labels.get(features.persistent_session_header_label))),
        persistent_session_cookie=bool(features.persistent_session_label
                                       and res.labels.get(features.persistent_session_label)),
        publish_not_ready=spec.get("publishNotReadyAddresses") is True,
        cluster_ips=tuple(str(i) for i in spec.get("clusterIPs") or [] if isinstance(i, str)))
