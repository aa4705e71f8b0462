"""The registry's value types: workloads (pods), services, ports and endpoints.

Layer: L3. Imports: resources.

Istio's ``model.Service``, ``model.IstioEndpoint`` and the pod facts istiod reads, in
miniature. Helpers shared by every source (pods, EndpointSlices, ServiceEntries, synthesized
pods) live here too: SPIFFE names, canonical labels, ``AugmentLabels``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from meshlens.resources import Resource

CLUSTER_ID = "Kubernetes"
DOMAIN_SUFFIX = "cluster.local"
_SAFE = "bcdfghjklmnpqrstvwxz2456789"

TLS_MODE_LABEL = "security.istio.io/tlsMode"
CANONICAL_NAME = "service.istio.io/canonical-name"
CANONICAL_REVISION = "service.istio.io/canonical-revision"
WORKLOAD_NAME_LABEL = "service.istio.io/workload-name"
PROXY_CONTAINER = "istio-proxy"


@dataclass(frozen=True, slots=True)
class ContainerPort:
    name: str
    port: int
    protocol: str = "TCP"


@dataclass(eq=False, slots=True)
class Workload:
    """A pod: a real one from the input (``real``), or one made from a controller.

    ``controller`` is the top-level controller (``("Deployment", "reviews-v1")``) that
    ``deploy/NAME`` finds the pod by; ``owner`` is the injector's ``ISTIO_META_OWNER`` and
    ``workload_name`` its ``ISTIO_META_WORKLOAD_NAME`` (``GetWorkloadMetaFromPod``).
    ``proxy_env`` holds the literal env of a real pod's ``istio-proxy`` container.
    """

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
    real: bool = False
    phase: str = "Running"
    terminating: bool = False
    host_network: bool = False
    ips: tuple[str, ...] = ()
    owner: str = ""
    controller: tuple[str, str] | None = None
    proxy_env: dict[str, str] = field(default_factory=dict)
    app_containers: tuple[str, ...] = ()
    subdomain: str = ""
    hostname: str = ""
    created: str = ""
    ready_since: str = ""
    restarts: int = 0
    proxy_config_annotation: dict[str, object] = field(default_factory=dict)

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
    persistent_session: bool = False  # SupportsDrainingEndpoints (cookie or header label)
    persistent_session_cookie: bool = False  # the cookie label: EDS sends DRAINING endpoints
    publish_not_ready: bool = False
    cluster_ips: tuple[str, ...] = ()  # spec.clusterIPs (dual stack)

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
    addresses: tuple[str, ...] = ()  # all addresses of a dual-stack pod (first == address)


def short_hash(text: str, n: int) -> str:
    """``n`` characters of sha256(text) in Kubernetes' safe alphabet (deterministic names)."""
    digest = hashlib.sha256(text.encode()).digest()
    return "".join(_SAFE[b % len(_SAFE)] for b in digest[:n])


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


def augment_labels(labels: dict[str, str], locality: str, node: str, network: str) -> dict[str, str]:
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


def locality_label(labels: dict[str, str]) -> str:
    """`GetLocalityLabel` + `SanitizeLocalityLabel`: ``istio-locality`` with dots as slashes."""
    raw = labels.get("istio-locality", "")
    return raw.replace(".", "/") if raw else ""


def selects(selector: dict[str, str] | None, labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in (selector or {}).items())
