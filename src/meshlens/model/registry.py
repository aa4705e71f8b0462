"""Services, workloads and endpoints, as istiod's registries build them.

Layer: L3. Imports: resources, source, diagnostics, model.protocol.

Kubernetes Services (`serviceregistry/kube/conversion.go:ConvertService`), ServiceEntries
(`serviceregistry/serviceentry/conversion.go`), pods from controllers, and endpoints computed
the way the EndpointSlice controller would (named targetPorts resolved against container ports)
unless EndpointSlices are given.

Deterministic workloads (documented in the README):
* Deployment ``NAME`` → ReplicaSet ``NAME-H10`` → pods ``NAME-H10-H5``; StatefulSet → ``NAME-0..N-1``;
  ReplicaSet ``NAME`` → ``NAME-H5``; DaemonSet → one pod ``NAME-H5`` (one node). ``H10``/``H5`` are
  sha256-derived strings in Kubernetes' safe alphabet.
* Pod IPs: 10.244.0.0/16, Service VIPs: 10.96.0.0/16, chosen by sha256 of ``namespace/name`` with
  linear probing in sorted order, so adding one object never moves another.
* A Pod's ``status.podIP`` and a Service's ``spec.clusterIP`` win.
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass, field
from typing import Any

from meshlens.diagnostics import Diagnostic, report
from meshlens.model import protocol
from meshlens.resources import Resource

CLUSTER_ID = "Kubernetes"
DOMAIN_SUFFIX = "cluster.local"
_SAFE = "bcdfghjklmnpqrstvwxz2456789"

TLS_MODE_LABEL = "security.istio.io/tlsMode"
CANONICAL_NAME = "service.istio.io/canonical-name"
CANONICAL_REVISION = "service.istio.io/canonical-revision"


@dataclass(frozen=True, slots=True)
class ContainerPort:
    name: str
    port: int
    protocol: str = "TCP"


@dataclass(eq=False, slots=True)
class Workload:
    """A pod (given, or made from a controller)."""

    name: str
    namespace: str
    ip: str
    labels: dict[str, str]
    annotations: dict[str, str]
    service_account: str
    container_ports: list[ContainerPort]
    injected: bool
    ready: bool
    workload_name: str
    controller_kind: str
    resource: Resource
    node: str = ""
    locality: str = ""

    @property
    def key(self) -> str:
        return f"{self.name}.{self.namespace}"


@dataclass(slots=True)
class ServicePort:
    name: str
    port: int
    protocol: str
    target_port: int | str | None = None
    index: int = 0  # position in the resource's port list, for provenance


@dataclass(eq=False, slots=True)
class Service:
    hostname: str
    name: str
    namespace: str
    registry: str  # "Kubernetes" | "External"
    ports: list[ServicePort]
    resolution: str  # ClientSideLB | DNSLB | Passthrough | DNSRoundRobinLB | Alias | DynamicDNS
    resource: Resource
    mesh_external: bool = False
    vip: str = ""
    addresses: list[str] = field(default_factory=list)
    export_to: frozenset[str] = frozenset({"*"})
    selector: dict[str, str] | None = None
    service_accounts: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    alias_target: str = ""
    connect_strategy: str = ""
    traffic_distribution: str = ""
    passthrough_target_ports: dict[int, int] = field(default_factory=dict)
    persistent_session: bool = False

    def port(self, number: int) -> ServicePort | None:
        for p in self.ports:
            if p.port == number:
                return p
        return None


@dataclass(eq=False, slots=True)
class Endpoint:
    address: str
    port: int
    service_port_name: str
    labels: dict[str, str]
    tls_mode: str
    namespace: str
    workload_name: str
    health: str = "HEALTHY"  # HEALTHY | UNHEALTHY | DRAINING | TERMINATING | UNKNOWN
    service_account: str = ""
    locality: str = ""
    weight: int = 0
    network: str = ""
    cluster_id: str = CLUSTER_ID
    node: str = ""
    source: Resource | None = None  # the Pod/controller/WorkloadEntry/ServiceEntry/EndpointSlice
    source_path: tuple[str | int, ...] = ()


def _h(text: str, n: int) -> str:
    digest = hashlib.sha256(text.encode()).digest()
    return "".join(_SAFE[b % len(_SAFE)] for b in digest[:n])


class _Allocator:
    """Hash-based address allocation with linear probing inside one /16."""

    def __init__(self, cidr: str, reserved: set[str]) -> None:
        self.net = ipaddress.ip_network(cidr)
        self.used = set(reserved)

    def take(self, addr: str) -> None:
        self.used.add(addr)

    def allocate(self, key: str) -> str:
        size = self.net.num_addresses
        start = int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "big") % size
        for i in range(size):
            off = (start + i) % size
            if off % 256 in (0, 255):
                continue
            addr = str(self.net.network_address + off)
            if addr not in self.used:
                self.used.add(addr)
                return addr
        raise OverflowError(f"no free address in {self.net}")


def spiffe(trust_domain: str, namespace: str, sa: str) -> str:
    return f"spiffe://{trust_domain}/ns/{namespace}/sa/{sa}"


def canonical_name(labels: dict[str, str], workload_name: str) -> str:
    for key in (CANONICAL_NAME, "app.kubernetes.io/name", "app"):
        if labels.get(key):
            return labels[key]
    return workload_name


def canonical_revision(labels: dict[str, str]) -> str:
    for key in (CANONICAL_REVISION, "app.kubernetes.io/version", "version"):
        if labels.get(key):
            return labels[key]
    return "latest"


def _injected(ns_labels: dict[str, str], labels: dict[str, str], annotations: dict[str, str],
              namespace: str, host_network: bool) -> bool:
    """Istio's default injection webhooks (namespace label, revision label, pod label)."""
    if host_network or namespace in ("kube-system", "kube-public"):
        return False
    pod_says = labels.get("sidecar.istio.io/inject", annotations.get("sidecar.istio.io/inject"))
    ns_label = ns_labels.get("istio-injection")
    if pod_says == "false":
        return False
    if ns_label == "disabled":
        return False
    if ns_label == "enabled" or "istio.io/rev" in ns_labels or "istio.io/rev" in labels:
        return True
    return pod_says == "true"


def _container_ports(spec: dict[str, Any]) -> list[ContainerPort]:
    out: list[ContainerPort] = []
    containers = list(spec.get("containers") or [])
    # Native sidecars (init containers with restartPolicy: Always) serve ports too.
    containers += [c for c in spec.get("initContainers") or []
                   if isinstance(c, dict) and c.get("restartPolicy") == "Always"]
    for c in containers:
        if not isinstance(c, dict):
            continue
        for p in c.get("ports") or []:
            if isinstance(p, dict) and isinstance(p.get("containerPort"), int):
                out.append(ContainerPort(str(p.get("name", "")), p["containerPort"],
                                         str(p.get("protocol", "TCP"))))
    return out


def _pod_ready(body: dict[str, Any]) -> bool:
    status = body.get("status")
    if not isinstance(status, dict):
        return True
    for cond in status.get("conditions") or []:
        if isinstance(cond, dict) and cond.get("type") == "Ready":
            return str(cond.get("status")) == "True"
    phase = status.get("phase")
    return phase in (None, "Running")


def _augment(labels: dict[str, str], locality: str, node: str, network: str) -> dict[str, str]:
    """`label.AugmentLabels`: topology labels used by subsets and failoverPriority."""
    out = dict(labels)
    parts = (locality.split("/") + ["", "", ""])[:3] if locality else ["", "", ""]
    for key, value in zip(("topology.kubernetes.io/region", "topology.kubernetes.io/zone",
                           "topology.istio.io/subzone"), parts, strict=True):
        if value:
            out[key] = value
    out["topology.istio.io/cluster"] = CLUSTER_ID
    if node:
        out["kubernetes.io/hostname"] = node
    if network and "topology.istio.io/network" not in out:
        out["topology.istio.io/network"] = network
    return out


def _locality(labels: dict[str, str]) -> str:
    raw = labels.get("istio-locality", "")
    return raw.replace(".", "/") if raw else ""


def _workload_name_of_pod(res: Resource) -> str:
    owners = res.body.get("metadata", {}).get("ownerReferences") or []
    for o in owners:
        if isinstance(o, dict) and o.get("kind") == "ReplicaSet" and isinstance(o.get("name"), str):
            name = o["name"]
            return name.rsplit("-", 1)[0] if "-" in name else name
        if isinstance(o, dict) and isinstance(o.get("name"), str):
            return o["name"]
    return res.name


@dataclass(slots=True)
class Registry:
    """All services, workloads and endpoints of the mesh."""

    services: list[Service] = field(default_factory=list)
    by_host: dict[str, list[Service]] = field(default_factory=dict)
    workloads: list[Workload] = field(default_factory=list)
    endpoints: dict[tuple[str, str], list[Endpoint]] = field(default_factory=dict)
    namespaces: dict[str, dict[str, str]] = field(default_factory=dict)
    diagnostics: list[Diagnostic] = field(default_factory=list)

    def service(self, hostname: str, namespace: str | None = None) -> Service | None:
        for s in self.by_host.get(hostname, []):
            if namespace is None or s.namespace == namespace:
                return s
        return None

    def endpoints_of(self, svc: Service) -> list[Endpoint]:
        return self.endpoints.get((svc.hostname, svc.namespace), [])


def build_workloads(resources: list[Resource], namespaces: dict[str, dict[str, str]],
                    trust_domain: str) -> list[Workload]:
    """Pods given explicitly, then pods made from controllers, with deterministic names and IPs."""
    pods: list[tuple[str, str, dict[str, Any], Resource, str, str, str | None]] = []
    # (name, ns, pod-template-ish body, resource, workload name, controller kind, given IP)
    for res in resources:
        if res.kind == "Pod":
            status = res.body.get("status")
            ip = status.get("podIP") if isinstance(status, dict) else None
            meta = {"labels": res.labels, "annotations": res.annotations}
            pods.append((res.name, res.namespace, {"metadata": meta, "spec": res.body.get("spec") or {},
                                                   "status": status}, res,
                         _workload_name_of_pod(res), "Pod", ip if isinstance(ip, str) else None))
        elif res.kind in ("Deployment", "StatefulSet", "ReplicaSet", "DaemonSet"):
            spec = res.spec
            template = spec.get("template") or {}
            replicas = 1 if res.kind == "DaemonSet" else spec.get("replicas", 1)
            if not isinstance(replicas, int):
                replicas = 1
            rs_hash = _h(f"{res.kind}/{res.namespace}/{res.name}", 10)
            for i in range(replicas):
                if res.kind == "Deployment":
                    name = f"{res.name}-{rs_hash}-{_h(f'{res.namespace}/{res.name}/{i}', 5)}"
                elif res.kind == "StatefulSet":
                    name = f"{res.name}-{i}"
                else:
                    name = f"{res.name}-{_h(f'{res.namespace}/{res.name}/{i}', 5)}"
                pods.append((name, res.namespace, template, res, res.name, res.kind, None))
    alloc = _Allocator("10.244.0.0/16", set())
    for p in pods:
        if p[6]:
            alloc.take(p[6])
    out: list[Workload] = []
    for name, ns, body, res, wl_name, ckind, ip in sorted(pods, key=lambda p: (p[1], p[0])):
        meta = body.get("metadata") or {}
        labels = {str(k): str(v) for k, v in (meta.get("labels") or {}).items()}
        annotations = {str(k): str(v) for k, v in (meta.get("annotations") or {}).items()}
        spec = body.get("spec") or {}
        sa = spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
        injected = _injected(namespaces.get(ns, {}), labels, annotations, ns,
                             bool(spec.get("hostNetwork")))
        if injected:
            # The injector adds these labels; istiod and EDS rely on them.
            labels.setdefault(TLS_MODE_LABEL, "istio")
            labels.setdefault(CANONICAL_NAME, canonical_name(labels, wl_name))
            labels.setdefault(CANONICAL_REVISION, canonical_revision(labels))
        out.append(Workload(
            name=name, namespace=ns, ip=ip or alloc.allocate(f"{ns}/{name}"), labels=labels,
            annotations=annotations, service_account=str(sa), container_ports=_container_ports(spec),
            injected=injected, ready=_pod_ready(body) if ckind == "Pod" else True,
            workload_name=wl_name, controller_kind=ckind, resource=res,
            node=str(spec.get("nodeName") or ""), locality=_locality(labels)))
    return out


def _export_set(values: Any, default: list[str]) -> frozenset[str]:
    if isinstance(values, str):
        values = [v.strip() for v in values.split(",") if v.strip()]
    if not values:
        values = default
    return frozenset(str(v) for v in values)


def _kube_service(res: Resource, alloc: _Allocator, default_export: list[str]) -> Service:
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
        export_to=_export_set(res.annotations.get("networking.istio.io/exportTo"), default_export),
        selector=dict(sel) if isinstance(sel, dict) and sel else None,
        service_accounts=sas, labels=dict(res.labels), alias_target=alias,
        traffic_distribution=str(td) if td in ("PreferClose", "PreferSameZone", "PreferSameNode") else "",
        persistent_session="istio.io/persistent-session" in res.labels)


_SE_RESOLUTION = {"NONE": "Passthrough", "STATIC": "ClientSideLB", "DNS": "DNSLB",
                  "DNS_ROUND_ROBIN": "DNSRoundRobinLB", "DYNAMIC_DNS": "DynamicDNS"}


def _service_entry(res: Resource, default_export: list[str]) -> list[Service]:
    spec = res.spec
    ports = []
    for i, p in enumerate(spec.get("ports") or []):
        ports.append(ServicePort(str(p.get("name", "")), int(p["number"]),
                                 protocol.parse(str(p.get("protocol", ""))) if p.get("protocol")
                                 else protocol.UNSUPPORTED, p.get("targetPort"), i))
    resolution = _SE_RESOLUTION.get(str(spec.get("resolution", "NONE")), "Passthrough")
    external = spec.get("location", "MESH_EXTERNAL") != "MESH_INTERNAL"
    addresses = [str(a) for a in spec.get("addresses") or []]
    passthrough = {p.port: int(p.target_port) for p in ports
                   if resolution == "Passthrough" and isinstance(p.target_port, int) and p.target_port > 0}
    strategy = res.annotations.get("istio.io/connect-strategy", "")
    out = []
    for host in spec.get("hosts") or []:
        out.append(Service(
            hostname=str(host), name=str(host), namespace=res.namespace, registry="External",
            ports=ports, resolution=resolution, resource=res, mesh_external=external,
            vip=addresses[0] if addresses else "", addresses=addresses,
            export_to=_export_set(spec.get("exportTo"), default_export),
            selector=dict((spec.get("workloadSelector") or {}).get("labels") or {}) or None,
            service_accounts=[str(s) for s in spec.get("subjectAltNames") or []],
            labels=dict(res.labels),
            connect_strategy="RACE_FIRST_TCP_CONNECT" if strategy.upper() == "RACE_FIRST_TCP_CONNECT" else "",
            passthrough_target_ports=passthrough))
    return out


def _selects(selector: dict[str, str] | None, labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in (selector or {}).items())


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
        return [self.pods[i] for i in smallest if _selects(selector, self.pods[i].labels)]


def _pod_endpoints(svc: Service, pods: list[Workload] | _PodIndex, trust_domain: str,
                   diags: list[Diagnostic]) -> list[Endpoint]:
    out: list[Endpoint] = []
    candidates = pods.select(svc.namespace, svc.selector) if isinstance(pods, _PodIndex) else pods
    for pod in candidates:
        if pod.namespace != svc.namespace or not _selects(svc.selector, pod.labels):
            continue
        for sp in svc.ports:
            target = sp.target_port if sp.target_port is not None else sp.port
            if isinstance(target, str):
                found = [c.port for c in pod.container_ports if c.name == target]
                if not found:
                    idx = ("spec", "ports", sp.index, "targetPort")
                    diags.append(report("ML0301", doc=svc.resource.doc, path=idx,
                                        resource=svc.resource.ref, name=svc.name, port=target,
                                        pod=pod.key))
                    continue
                target = found[0]
            out.append(_endpoint_for_pod(pod, int(target), sp.name, trust_domain))
    return out


def _endpoint_for_pod(pod: Workload, port: int, port_name: str, trust_domain: str) -> Endpoint:
    return Endpoint(
        address=pod.ip, port=port, service_port_name=port_name,
        labels=_augment(pod.labels, pod.locality, pod.node, ""),
        tls_mode=pod.labels.get(TLS_MODE_LABEL, "disabled"), namespace=pod.namespace,
        workload_name=pod.workload_name, health="HEALTHY" if pod.ready else "UNHEALTHY",
        service_account=spiffe(trust_domain, pod.namespace, pod.service_account),
        locality=pod.locality, node=pod.node, source=pod.resource)


def _slice_endpoints(slices: list[Resource], pods_by_ip: dict[str, Workload],
                     trust_domain: str) -> list[Endpoint]:
    out: list[Endpoint] = []
    for sl in slices:
        if sl.body.get("addressType", "IPv4") == "FQDN":
            continue  # istiod ignores FQDN slices
        ports = [p for p in sl.body.get("ports") or [] if isinstance(p, dict)]
        for i, ep in enumerate(sl.body.get("endpoints") or []):
            cond = ep.get("conditions") or {}
            ready, serving, term = cond.get("ready"), cond.get("serving"), cond.get("terminating")
            if ready in (None, True):
                health = "HEALTHY"
            elif term in (None, True) and term is not None:
                health = "TERMINATING"
            else:
                health = "UNHEALTHY"
            del serving
            for addr in ep.get("addresses") or []:
                pod = pods_by_ip.get(addr)
                labels = pod.labels if pod else {}
                for p in ports:
                    out.append(Endpoint(
                        address=addr, port=int(p.get("port", 0)), service_port_name=str(p.get("name", "")),
                        labels=_augment(labels, pod.locality if pod else "", str(ep.get("nodeName", "")), ""),
                        tls_mode=labels.get(TLS_MODE_LABEL, "disabled"),
                        namespace=sl.namespace, workload_name=pod.workload_name if pod else "",
                        health=health,
                        service_account=spiffe(trust_domain, pod.namespace, pod.service_account) if pod else "",
                        locality=pod.locality if pod else "", node=str(ep.get("nodeName", "")),
                        source=sl, source_path=("endpoints", i)))
    return out


def _se_endpoints(svc: Service, res: Resource, pods: list[Workload], wes: list[Resource],
                  trust_domain: str) -> list[Endpoint]:
    spec = res.spec
    out: list[Endpoint] = []
    if svc.resolution in ("DNSLB", "DNSRoundRobinLB") and not spec.get("endpoints") \
            and not spec.get("workloadSelector"):
        for sp in svc.ports:
            tp = sp.target_port if isinstance(sp.target_port, int) and sp.target_port > 0 else sp.port
            out.append(Endpoint(address=svc.hostname, port=tp, service_port_name=sp.name, labels={},
                                tls_mode="disabled", namespace=svc.namespace, workload_name="",
                                health="UNKNOWN", source=res))
        return out

    def we_endpoint(we: dict[str, Any], meta_labels: dict[str, str], source: Resource,
                    path: tuple[str | int, ...], name: str) -> None:
        labels = {**{str(k): str(v) for k, v in (we.get("labels") or {}).items()}, **meta_labels}
        locality = str(we.get("locality", "")) or _locality(labels)
        sa = we.get("serviceAccount")
        tls = labels.get(TLS_MODE_LABEL) or ("istio" if sa else "disabled")
        addr = str(we.get("address", ""))
        for sp in svc.ports:
            wports = we.get("ports") or {}
            if addr.startswith("unix://"):
                port = 0
            elif isinstance(wports.get(sp.name), int) and wports[sp.name] > 0:
                port = wports[sp.name]
            elif isinstance(sp.target_port, int) and sp.target_port > 0:
                port = sp.target_port
            else:
                port = sp.port
            out.append(Endpoint(
                address=addr, port=port, service_port_name=sp.name,
                labels=_augment(labels, locality, "", str(we.get("network", ""))), tls_mode=tls,
                namespace=source.namespace, workload_name=name, health="UNKNOWN",
                service_account=spiffe(trust_domain, source.namespace, str(sa)) if sa else "",
                locality=locality, weight=int(we.get("weight", 0) or 0),
                network=str(we.get("network", "")), source=source, source_path=path))

    for i, we in enumerate(spec.get("endpoints") or []):
        if isinstance(we, dict):
            we_endpoint(we, {}, res, ("spec", "endpoints", i), res.name)
    selector = (spec.get("workloadSelector") or {}).get("labels")
    if selector:
        for w in wes:
            if w.namespace == svc.namespace and _selects(selector, {**(w.spec.get("labels") or {}),
                                                                   **w.labels}):
                we_endpoint(w.spec, w.labels, w, ("spec",), w.name)
        for pod in pods:
            if pod.namespace == svc.namespace and _selects(selector, pod.labels):
                for sp in svc.ports:
                    tp = sp.target_port if isinstance(sp.target_port, int) and sp.target_port > 0 else sp.port
                    out.append(_endpoint_for_pod(pod, tp, sp.name, trust_domain))
    return out


def build_registry(resources: list[Resource], *, trust_domain: str,
                   default_service_export: list[str]) -> Registry:
    reg = Registry()
    for res in resources:
        if res.kind == "Namespace":
            reg.namespaces[res.name] = dict(res.labels)
    reg.workloads = build_workloads(resources, reg.namespaces, trust_domain)
    vips = _Allocator("10.96.0.0/16", {"10.96.0.1", "10.96.0.10"})
    for res in resources:
        if res.kind == "Service":
            ip = res.spec.get("clusterIP")
            if isinstance(ip, str) and ip not in ("", "None"):
                vips.take(ip)
    kube = sorted((r for r in resources if r.kind == "Service"), key=lambda r: (r.namespace, r.name))
    ses = [r for r in resources if r.kind == "ServiceEntry"]
    wes = [r for r in resources if r.kind == "WorkloadEntry"]
    slices: dict[tuple[str, str], list[Resource]] = {}
    for r in resources:
        if r.kind == "EndpointSlice":
            svc_name = r.labels.get("kubernetes.io/service-name")
            if svc_name:
                slices.setdefault((r.namespace, svc_name), []).append(r)
    pods_by_ip = {w.ip: w for w in reg.workloads}
    pod_index = _PodIndex(reg.workloads)
    for res in kube:
        svc = _kube_service(res, vips, default_service_export)
        reg.services.append(svc)
        given = slices.get((res.namespace, res.name))
        if given:
            eps = _slice_endpoints(given, pods_by_ip, trust_domain)
        else:
            eps = _pod_endpoints(svc, pod_index, trust_domain, reg.diagnostics)
        reg.endpoints[(svc.hostname, svc.namespace)] = eps
    for res in sorted(ses, key=lambda r: r.order):
        for svc in _service_entry(res, default_service_export):
            reg.services.append(svc)
            reg.endpoints.setdefault((svc.hostname, svc.namespace), []).extend(
                _se_endpoints(svc, res, reg.workloads, wes, trust_domain))
    for svc in reg.services:
        reg.by_host.setdefault(svc.hostname, []).append(svc)
    return reg
