"""The bootstrap's ``node``: id, cluster, locality and metadata, from the pod's identity.

Layer: L4 (compile). Imports: xds-protos, stdlib.

``pkg/bootstrap/config.go`` (``getNodeMetaData``, ``extractMetadata``: every ``ISTIO_META_*``
variable of the proxy container becomes a metadata key) and
``pilot/cmd/pilot-agent/config/config.go:ConstructProxyConfig`` (``PROXY_CONFIG``: istiod's
``mesh.DefaultProxyConfig()``, then the container's ``PROXY_CONFIG`` env, then the pod's
``proxy.istio.io/config`` annotation, each replacing whole fields).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from envoy.config.core.v3 import base_pb2

from meshlens.compiler.bootstrap.template import (
    ADMIN_PORT,
    AGENT_STATUS_PORT,
    CONFIG_PATH,
    DISCOVERY_ADDRESS,
    ENVOY_PROMETHEUS_PORT,
    ENVOY_STATUS_PORT,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class PodPort:
    """One container port, as the injector lists it in ``ISTIO_META_POD_PORTS``."""

    container_port: int
    protocol: str = "TCP"
    name: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class BootstrapInputs:
    """Everything about one pod that changes its sidecar bootstrap.

    Attributes:
        node_ip: the pod IP (IPv4); becomes ``INSTANCE_IPS`` and the second part of the node id.
        pod_name: ``metadata.name`` of the pod (``NAME``).
        namespace: the pod namespace (``NAMESPACE``).
        labels: the pod labels as the pod has them after injection (``LABELS``);
            ``pod-template-hash`` is dropped as pilot-agent does.
        service_account: ``spec.serviceAccountName`` (``SERVICE_ACCOUNT``).
        workload_name: the owning workload, e.g. the Deployment name (``WORKLOAD_NAME``).
        app_name: the ``app`` part of ``node.cluster``; empty means derive it like Istio
            (labels ``app``, ``app.kubernetes.io/name``, canonical name, then workload name).
        istio_version: ``ISTIO_VERSION``.
        cluster_id: ``CLUSTER_ID`` (``global.multiCluster.clusterName``).
        trust_domain: the mesh trust domain; also ``MESH_ID`` when no meshID is set.
        cluster_domain: the Kubernetes DNS domain in the node id.
        node_name: the Kubernetes node (``NODE_NAME``); omitted when empty.
        owner: ``OWNER``; ``None`` means a Deployment named ``workload_name``, ``""`` omits it.
        annotations: pod annotations (``ANNOTATIONS``); omitted when empty.
        app_containers: container names (``APP_CONTAINERS``); omitted when empty.
        pod_ports: container ports (``POD_PORTS``); omitted when empty.
        region: locality region; zone and sub_zone likewise. Empty on plain Kubernetes.
        delta_xds: ``ISTIO_DELTA_XDS`` (default true): ADS ``DELTA_GRPC``, else ``GRPC``.
        proxy_config: ProxyConfig fields over ``mesh.DefaultProxyConfig()`` (camelCase, as the
            ``PROXY_CONFIG`` env and the ``proxy.istio.io/config`` annotation spell them);
            see :func:`proxy_config`.
        proxy_env: the ``ISTIO_META_*`` variables of the proxy container (a real pod's env,
            or ``defaultConfig.proxyMetadata``); each becomes a metadata key without the
            prefix and wins over the computed value.
    """

    node_ip: str
    pod_name: str
    namespace: str
    labels: Mapping[str, str] = field(default_factory=dict)
    service_account: str = "default"
    workload_name: str = ""
    app_name: str = ""
    istio_version: str = "1.30.0"
    cluster_id: str = "Kubernetes"
    trust_domain: str = "cluster.local"
    cluster_domain: str = "cluster.local"
    node_name: str = ""
    owner: str | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)
    app_containers: tuple[str, ...] = ()
    pod_ports: tuple[PodPort, ...] = ()
    region: str = ""
    zone: str = ""
    sub_zone: str = ""
    delta_xds: bool = True
    proxy_config: Mapping[str, object] = field(default_factory=dict)
    proxy_env: Mapping[str, str] = field(default_factory=dict)
    proxy_type: str = "sidecar"  # "router" for a gateway: the node id's first part


def service_cluster(inputs: BootstrapInputs) -> str:
    """Return ``node.cluster`` the way Istio's ``serviceClusterOrDefault`` picks it.

    Example:
        >>> service_cluster(BootstrapInputs(node_ip="10.0.0.1", pod_name="p", namespace="ns",
        ...                                 workload_name="reviews-v1"))
        'reviews-v1.ns'
    """
    app = inputs.app_name
    if not app:
        for key in ("app", "app.kubernetes.io/name", "service.istio.io/canonical-name"):
            if inputs.labels.get(key):
                app = inputs.labels[key]
                break
    if app:
        return f"{app}.{inputs.namespace}"
    if inputs.workload_name:
        return f"{inputs.workload_name}.{inputs.namespace}"
    return f"istio-proxy.{inputs.namespace}" if inputs.namespace else "istio-proxy"


def build_node_metadata(inputs: BootstrapInputs) -> dict[str, object]:
    """Return ``node.metadata`` as a plain dict with sorted keys.

    The keys are the JSON names of Istio's ``BootstrapNodeMetadata`` that a default injected
    sidecar carries: the injector's ``ISTIO_META_*`` variables (CLUSTER_ID, NODE_NAME,
    INTERCEPTION_MODE, WORKLOAD_NAME, OWNER, MESH_ID, POD_PORTS, APP_CONTAINERS), the downward
    API (NAME, NAMESPACE, SERVICE_ACCOUNT, LABELS, ANNOTATIONS) and what pilot-agent adds.
    Empty optional values are omitted, like Go's ``omitempty``.

    Example:
        >>> md = build_node_metadata(BootstrapInputs(node_ip="10.0.0.1", pod_name="p",
        ...                                          namespace="ns"))
        >>> md["CLUSTER_ID"], md["MESH_ID"], md["INTERCEPTION_MODE"], md["METADATA_DISCOVERY"]
        ('Kubernetes', 'cluster.local', 'REDIRECT', 'false')
    """
    labels = {k: inputs.labels[k] for k in sorted(inputs.labels) if k != "pod-template-hash"}
    pc = proxy_config(inputs.proxy_config)
    owner = inputs.owner
    if owner is None:
        owner = (
            f"kubernetes://apis/apps/v1/namespaces/{inputs.namespace}/deployments/"
            f"{inputs.workload_name}"
            if inputs.workload_name
            else ""
        )
    md: dict[str, object] = {
        "ANNOTATIONS": {k: inputs.annotations[k] for k in sorted(inputs.annotations)},
        "APP_CONTAINERS": ",".join(inputs.app_containers),
        "CLUSTER_ID": inputs.cluster_id,
        "ENVOY_PROMETHEUS_PORT": ENVOY_PROMETHEUS_PORT,
        "ENVOY_STATUS_PORT": ENVOY_STATUS_PORT,
        "INSTANCE_IPS": inputs.node_ip,
        "INTERCEPTION_MODE": "REDIRECT",
        "ISTIO_VERSION": inputs.istio_version,
        "LABELS": labels,
        "MESH_ID": inputs.trust_domain,
        "METADATA_DISCOVERY": "false",
        "NAME": inputs.pod_name,
        "NAMESPACE": inputs.namespace,
        "NODE_NAME": inputs.node_name,
        "OWNER": owner,
        # pilot-agent only sets PILOT_SAN with controlPlaneAuthPolicy MUTUAL_TLS (the default):
        # the host of the discovery address.
        "PILOT_SAN": [str(pc.get("discoveryAddress") or DISCOVERY_ADDRESS).rsplit(":", 1)[0]],
        "POD_PORTS": _pod_ports_json(inputs.pod_ports),
        "PROXY_CONFIG": pc,
        "SERVICE_ACCOUNT": inputs.service_account,
        "WORKLOAD_IDENTITY_SOCKET_FILE": "socket",
        "WORKLOAD_NAME": inputs.workload_name,
    }
    # extractMetadata: ISTIO_META_X=value → X (strings; JSON-typed keys keep their JSON text).
    for key, value in inputs.proxy_env.items():
        if key.startswith("ISTIO_META_") and len(key) > len("ISTIO_META_"):
            md[key.removeprefix("ISTIO_META_")] = value
    return {k: v for k, v in sorted(md.items()) if v not in ("", {}, [])}


def build_node(inputs: BootstrapInputs) -> base_pb2.Node:
    node = base_pb2.Node(
        id=(
            f"{inputs.proxy_type}~{inputs.node_ip}~{inputs.pod_name}.{inputs.namespace}~"
            f"{inputs.namespace}.svc.{inputs.cluster_domain}"
        ),
        cluster=service_cluster(inputs),
    )
    # The template always renders "locality": {} even when every part is empty.
    node.locality.SetInParent()
    node.locality.region = inputs.region
    node.locality.zone = inputs.zone
    node.locality.sub_zone = inputs.sub_zone
    node.metadata.update(build_node_metadata(inputs))
    return node


def proxy_config(overlay: Mapping[str, object] = {}) -> dict[str, object]:  # noqa: B006
    """``PROXY_CONFIG`` metadata: ``mesh.DefaultProxyConfig()`` with ``overlay``'s fields over it.

    ``ConstructProxyConfig``/``getMeshConfig`` merge by replacement: a field present in the
    overlay replaces the default whole (lists and maps included).

    Example:
        >>> proxy_config({"discoveryAddress": "istiod-canary.istio-system.svc:15012"})["discoveryAddress"]
        'istiod-canary.istio-system.svc:15012'
    """
    out = _default_proxy_config()
    out.update({k: v for k, v in overlay.items() if v is not None})
    if not out.get("serviceCluster"):
        out["serviceCluster"] = "istio-proxy"
    return dict(sorted(out.items()))


def pod_proxy_config(wl: Any, default_config: object) -> tuple[dict[str, object], dict[str, str]]:
    """The ProxyConfig overlay and ``ISTIO_META_*`` env of a pod's proxy container.

    A real pod carries what the injector wrote: its ``istio-proxy`` env (``PROXY_CONFIG``, the
    ``ISTIO_META_*`` variables). A pod meshlens makes gets what the injector would write:
    MeshConfig ``defaultConfig`` as ``PROXY_CONFIG`` and its ``proxyMetadata`` as env. The
    ``proxy.istio.io/config`` annotation goes over either (``ConstructProxyConfig``).
    """
    env: dict[str, str] = dict(wl.proxy_env)
    overlay: dict[str, object] = {}
    if wl.real and "PROXY_CONFIG" in env:
        try:
            parsed = json.loads(env["PROXY_CONFIG"])
        except ValueError:
            parsed = None
        overlay = dict(parsed) if isinstance(parsed, dict) else {}
    elif not wl.real and isinstance(default_config, dict):
        overlay = dict(default_config)
        meta = overlay.get("proxyMetadata")
        if isinstance(meta, dict):
            env = {str(k): str(v) for k, v in meta.items()}
    overlay.update(wl.proxy_config_annotation)
    return overlay, {k: v for k, v in env.items() if k.startswith("ISTIO_META_")}


def _default_proxy_config() -> dict[str, object]:
    # mesh.DefaultProxyConfig() as protojson (camelCase), which is what PROXY_CONFIG carries.
    return {
        "binaryPath": "/usr/local/bin/envoy",
        "configPath": CONFIG_PATH,
        "controlPlaneAuthPolicy": "MUTUAL_TLS",
        "discoveryAddress": DISCOVERY_ADDRESS,
        "drainDuration": "45s",
        "proxyAdminPort": ADMIN_PORT,
        "serviceCluster": "istio-proxy",
        "statNameLength": 189,
        "statusPort": AGENT_STATUS_PORT,
        "terminationDrainDuration": "5s",
    }


def _pod_ports_json(ports: tuple[PodPort, ...]) -> str:
    # model.PodPortList marshals to a JSON *string* holding a compact JSON list.
    if not ports:
        return ""
    items = []
    for p in ports:
        item: dict[str, object] = {"name": p.name} if p.name else {}
        item.update(containerPort=p.container_port, protocol=p.protocol)
        items.append(item)
    return json.dumps(items, separators=(",", ":"))


