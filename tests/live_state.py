"""Builders for objects as ``kubectl get -o yaml`` exports them (real pods, slices, ...), for tests."""

from __future__ import annotations

from typing import Any

import yaml

from meshlens.compiler import CompileResult
from meshlens.pipeline import LoadSettings, Loaded, compile_for, load_string


def namespace(name: str, **labels: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


def deployment(name: str, ns: str = "shop", *, replicas: int = 2, labels: dict[str, str] | None = None,
               port: int = 8080, annotations: dict[str, str] | None = None,
               host_network: bool = False) -> dict[str, Any]:
    labels = labels or {"app": name}
    tmeta: dict[str, Any] = {"labels": labels}
    if annotations:
        tmeta["annotations"] = annotations
    spec: dict[str, Any] = {"containers": [{"name": name, "image": name,
                                            "ports": [{"containerPort": port, "name": "http"}]}]}
    if host_network:
        spec["hostNetwork"] = True
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"replicas": replicas, "selector": {"matchLabels": dict(labels)},
                     "template": {"metadata": tmeta, "spec": spec}}}


def replicaset(deploy: str, pth: str, ns: str = "shop", *, app: str | None = None) -> dict[str, Any]:
    labels = {"app": app or deploy, "pod-template-hash": pth}
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": f"{deploy}-{pth}", "namespace": ns, "labels": labels,
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment",
                                              "name": deploy, "uid": "u", "controller": True}]},
            "spec": {"replicas": 2, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": deploy, "image": deploy}]}}}}


def pod(name: str, ip: str | None, ns: str = "shop", *, app: str = "web", owner: tuple[str, str] | None = None,
        pth: str = "", injected: bool = True, ready: bool = True, phase: str = "Running",
        deleting: bool = False, node: str = "", env: dict[str, str] | None = None,
        labels: dict[str, str] | None = None, ips: list[str] | None = None, sa: str = "web",
        port: int = 8080, created: str = "") -> dict[str, Any]:
    """A pod as the API server returns it; ``injected`` means it has an istio-proxy container."""
    lab = {"app": app, **(labels or {})}
    if pth:
        lab["pod-template-hash"] = pth
    if injected:
        lab.setdefault("security.istio.io/tlsMode", "istio")
    meta: dict[str, Any] = {"name": name, "namespace": ns, "labels": lab}
    if created:
        meta["creationTimestamp"] = created
    if owner:
        meta["generateName"] = name.rsplit("-", 1)[0] + "-"
        meta["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": owner[0], "name": owner[1],
                                    "uid": "u", "controller": True}]
    if deleting:
        meta["deletionTimestamp"] = "2026-12-01T00:00:00Z"
    containers: list[dict[str, Any]] = [{"name": app, "image": app,
                                         "ports": [{"containerPort": port, "name": "http"}]}]
    if injected:
        containers.append({"name": "istio-proxy", "image": "proxyv2",
                           "env": [{"name": k, "value": v} for k, v in (env or {}).items()]})
    spec: dict[str, Any] = {"serviceAccountName": sa, "containers": containers}
    if node:
        spec["nodeName"] = node
    status: dict[str, Any] = {"phase": phase,
                              "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}
    if ip:
        status["podIP"] = ip
        status["podIPs"] = [{"ip": i} for i in (ips or [ip])]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec, "status": status}


def service(name: str, ns: str = "shop", *, port: int = 80, target: int | str = "http",
            labels: dict[str, str] | None = None, selector: dict[str, str] | None = None,
            cluster_ip: str = "", ips: list[str] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"ports": [{"name": "http", "port": port, "targetPort": target}]}
    if selector is not False:  # type: ignore[comparison-overlap]
        spec["selector"] = selector if selector is not None else {"app": name}
    if cluster_ip:
        spec["clusterIP"] = cluster_ip
    if ips:
        spec["clusterIPs"] = ips
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": ns, "labels": labels or {}}, "spec": spec}


def endpoint(address: str, pod_name: str | None = None, ns: str = "shop", *, ready: bool | None = True,
             serving: bool | None = None, terminating: bool | None = None) -> dict[str, Any]:
    cond = {k: v for k, v in (("ready", ready), ("serving", serving), ("terminating", terminating))
            if v is not None}
    out: dict[str, Any] = {"addresses": [address], "conditions": cond}
    if pod_name:
        out["targetRef"] = {"kind": "Pod", "name": pod_name, "namespace": ns}
    return out


def endpoint_slice(name: str, svc: str, endpoints: list[dict[str, Any]], ns: str = "shop", *,
                   port: int = 8080, address_type: str = "IPv4",
                   labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": name, "namespace": ns,
                         "labels": {"kubernetes.io/service-name": svc, **(labels or {})}},
            "addressType": address_type, "ports": [{"name": "http", "port": port, "protocol": "TCP"}],
            "endpoints": endpoints}


def client(ns: str = "shop") -> list[dict[str, Any]]:
    """A real injected client pod to compile for."""
    return [pod("client-1", "10.9.9.9", ns, app="client", sa="client")]


def as_yaml(objs: list[dict[str, Any]]) -> str:
    return yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": objs}, sort_keys=False)


def load(objs: list[dict[str, Any]], **settings: Any) -> Loaded:
    return load_string(as_yaml(objs), "export.yaml", settings=LoadSettings(**settings))


def compile_objs(objs: list[dict[str, Any]], proxy: str = "client-1.shop", **settings: Any) -> CompileResult:
    return compile_for(load(objs, **settings), proxy)


def endpoints_of(result: CompileResult, cluster: str) -> list[tuple[str, int]]:
    """(address, health_status number) of every endpoint in a cluster's load assignment."""
    for cla in result.endpoints:
        if cla.cluster_name == cluster:
            return sorted((lb.endpoint.address.socket_address.address, lb.health_status)
                          for loc in cla.endpoints for lb in loc.lb_endpoints)
    raise AssertionError(f"no load assignment for {cluster}")


def workload_meta(result: CompileResult, cluster: str) -> list[str]:
    out = []
    for cla in result.endpoints:
        if cla.cluster_name == cluster:
            for loc in cla.endpoints:
                for lb in loc.lb_endpoints:
                    out.append(lb.metadata.filter_metadata["istio"].fields["workload"].string_value)
    return out


WEB = "outbound|80||web.shop.svc.cluster.local"
