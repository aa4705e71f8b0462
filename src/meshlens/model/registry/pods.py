"""Real pods: what istiod's pod informer and ``PodCache`` know about a Pod from the cluster.

Layer: L3. Imports: resources, diagnostics, model.registry.types.

A Pod with a ``status`` is a real pod (exported from a cluster): its ``status.podIP(s)``,
``phase``, Ready condition, ``deletionTimestamp``, ``hostNetwork``, node and ``ownerReferences``
are used as they are, and it has a sidecar exactly when its spec has an ``istio-proxy`` container
(it was injected, or not, when it was created; today's namespace labels do not matter).

Rules, each from istiod:

* ``status.phase == Failed`` pods are not seen at all: the pod informer is built with
  ``FieldSelector: "status.phase!=Failed"`` (``kube/controller/controller.go:NewController``).
* ``shouldPodBeInEndpoints`` (``kube/controller/pod.go``): terminal phases, no IP, or a
  ``deletionTimestamp`` keep a pod out of the IP index; ``IsPodReady`` is the Ready condition.
* The workload name is ``GetWorkloadMetaFromPod`` (``pkg/kube/util.go``): the controller's name,
  trimmed of ``-<pod-template-hash>`` only for ReplicaSets whose name ends with it, overridden
  by the ``service.istio.io/workload-name`` label; ``OWNER`` is the injection template's
  ``kubernetes://apis/APIVERSION/namespaces/NS/KINDs/NAME``.
* Locality is ``getPodLocality`` (``kube/controller/controller.go``): the ``istio-locality``
  label, else the Node's ``topology.kubernetes.io/region|zone`` and ``topology.istio.io/subzone``.
"""

from __future__ import annotations

import re
from typing import Any

from meshlens.model.registry.types import (
    PROXY_CONTAINER,
    WORKLOAD_NAME_LABEL,
    ContainerPort,
    Workload,
    locality_label,
)
from meshlens.resources import Resource

_CRONJOB_NAME = re.compile(r"(.+)-\d{8,10}$")  # cronJobNameRegexp (pkg/kube/util.go)


def container_ports(spec: dict[str, Any]) -> list[ContainerPort]:
    out: list[ContainerPort] = []
    for c in _containers(spec, app_only=False):
        for p in c.get("ports") or []:
            if isinstance(p, dict) and isinstance(p.get("containerPort"), int):
                out.append(ContainerPort(str(p.get("name", "")), p["containerPort"],
                                         str(p.get("protocol", "TCP"))))
    return out


def _containers(spec: dict[str, Any], *, app_only: bool) -> list[dict[str, Any]]:
    """Containers, plus native sidecars (init containers with ``restartPolicy: Always``)."""
    out = [c for c in spec.get("containers") or [] if isinstance(c, dict)]
    out += [c for c in spec.get("initContainers") or []
            if isinstance(c, dict) and c.get("restartPolicy") == "Always"]
    if app_only:
        out = [c for c in out if c.get("name") != PROXY_CONTAINER]
    return out


def has_proxy(spec: dict[str, Any]) -> bool:
    """The pod spec already carries Istio's sidecar (regular or native ``istio-proxy`` container)."""
    return any(c.get("name") == PROXY_CONTAINER for c in _containers(spec, app_only=False)) or any(
        isinstance(c, dict) and c.get("name") == PROXY_CONTAINER
        for c in spec.get("initContainers") or [])


def proxy_env(spec: dict[str, Any]) -> dict[str, str]:
    """The literal ``env`` values of the ``istio-proxy`` container (``valueFrom`` ones are skipped)."""
    for group in ("containers", "initContainers"):
        for c in spec.get(group) or []:
            if isinstance(c, dict) and c.get("name") == PROXY_CONTAINER:
                return {str(e["name"]): str(e["value"]) for e in c.get("env") or []
                        if isinstance(e, dict) and isinstance(e.get("name"), str)
                        and isinstance(e.get("value"), (str, int, float, bool))}
    return {}


def proxy_config_annotation(annotations: dict[str, str]) -> dict[str, object]:
    """The ``proxy.istio.io/config`` annotation (YAML or JSON ProxyConfig); ``{}`` if absent or bad.

    Read with the loader's limits, as every input is (an annotation is user input too).
    """
    text = annotations.get("proxy.istio.io/config")
    if not text:
        return {}
    from meshlens.loader import load_text

    parsed = load_text(text, "proxy.istio.io/config")
    if parsed.errors or not parsed.documents or not isinstance(parsed.documents[0].data, dict):
        return {}
    return dict(parsed.documents[0].data)


def app_containers(spec: dict[str, Any]) -> tuple[str, ...]:
    return tuple(str(c.get("name", "")) for c in spec.get("containers") or []
                 if isinstance(c, dict) and c.get("name") != PROXY_CONTAINER)


def deploy_meta(name: str, namespace: str, labels: dict[str, str], generate_name: str,
                owners: list[Any]) -> tuple[str, str, str]:
    """`GetDeployMetaFromPod`: (deployment-ish name, kind, apiVersion) of a pod.

    The workload name is this name unless the pod has the ``service.istio.io/workload-name``
    label (`GetWorkloadMetaFromPod`, and the injection template's ``ISTIO_META_WORKLOAD_NAME``).

    Example:
        >>> deploy_meta("web-7d4-x2", "shop", {"pod-template-hash": "7d4"}, "web-7d4-",
        ...             [{"kind": "ReplicaSet", "name": "web-7d4", "apiVersion": "apps/v1",
        ...               "controller": True}])
        ('web', 'Deployment', 'apps/v1')
        >>> deploy_meta("db-0", "shop", {}, "db-", [{"kind": "StatefulSet", "name": "db",
        ...             "apiVersion": "apps/v1", "controller": True}])
        ('db', 'StatefulSet', 'apps/v1')
    """
    out_name, kind, api = name, "Pod", "v1"
    if generate_name:
        ref = next((o for o in owners if isinstance(o, dict) and o.get("controller") is True), None)
        if ref is not None:
            api, kind, out_name = str(ref.get("apiVersion", "")), str(ref.get("kind", "")), \
                str(ref.get("name", ""))
            pth, rpth = labels.get("pod-template-hash", ""), labels.get("rollouts-pod-template-hash", "")
            if kind == "ReplicaSet" and pth and out_name.endswith(pth):
                out_name, kind = out_name.removesuffix("-" + pth), "Deployment"
            elif kind == "ReplicaSet" and rpth and out_name.endswith(rpth):
                out_name, kind, api = out_name.removesuffix("-" + rpth), "Rollout", "v1alpha1"
            elif kind == "ReplicationController" and labels.get("deploymentconfig"):
                out_name, kind = labels["deploymentconfig"], "DeploymentConfig"
            elif kind == "Job" and (m := _CRONJOB_NAME.match(out_name)):
                out_name, kind, api = m.group(1), "CronJob", "batch/v1"
    return out_name or name, kind, api


def owner_url(namespace: str, kind: str, api: str, name: str) -> str:
    """The injection template's ``ISTIO_META_OWNER`` (empty without an apiVersion or name)."""
    if not api or not name:
        return ""
    return f"kubernetes://apis/{api}/namespaces/{namespace or 'default'}/{kind.lower()}s/{name}"


def pod_ready(status: dict[str, Any]) -> tuple[bool, str]:
    """`IsPodReady`: the Ready condition is True; also when it became so (ByLogging's tiebreak)."""
    for cond in status.get("conditions") or []:
        if isinstance(cond, dict) and cond.get("type") == "Ready":
            return str(cond.get("status")) == "True", str(cond.get("lastTransitionTime") or "")
    return False, ""


def pod_ips(status: dict[str, Any]) -> tuple[str, ...]:
    ips = [str(p["ip"]) for p in status.get("podIPs") or []
           if isinstance(p, dict) and isinstance(p.get("ip"), str) and p["ip"]]
    first = status.get("podIP")
    if isinstance(first, str) and first:
        ips = [first] + [i for i in ips if i != first]
    return tuple(ips)


def restarts(status: dict[str, Any]) -> int:
    counts = [c.get("restartCount", 0) for c in status.get("containerStatuses") or []
              if isinstance(c, dict) and isinstance(c.get("restartCount"), int)]
    return max(counts, default=0)


def node_locality(node: Resource) -> str:
    """`getPodLocality` from the Node's topology labels (GA names, then the beta ones)."""
    lab = node.labels
    region = lab.get("topology.kubernetes.io/region") or lab.get("failure-domain.beta.kubernetes.io/region", "")
    zone = lab.get("topology.kubernetes.io/zone") or lab.get("failure-domain.beta.kubernetes.io/zone", "")
    subzone = lab.get("topology.istio.io/subzone", "")
    return f"{region}/{zone}/{subzone}" if region or zone or subzone else ""


def real_pod(res: Resource, nodes: dict[str, Resource], controller: tuple[str, str] | None) -> Workload:
    """A Pod with a status, as istiod sees it (the caller drops Failed pods first)."""
    body, meta = res.body, res.body.get("metadata") or {}
    spec = body.get("spec") if isinstance(body.get("spec"), dict) else {}
    status = body.get("status") if isinstance(body.get("status"), dict) else {}
    labels, annotations = dict(res.labels), dict(res.annotations)
    owners = meta.get("ownerReferences") if isinstance(meta.get("ownerReferences"), list) else []
    gen = meta.get("generateName") if isinstance(meta.get("generateName"), str) else ""
    deploy_name, kind, api = deploy_meta(res.name, res.namespace, labels, gen, owners)
    ready, since = pod_ready(status)
    node = str(spec.get("nodeName") or "")
    locality = locality_label(labels) or (node_locality(nodes[node]) if node in nodes else "")
    ips = pod_ips(status)
    sa = spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
    env = proxy_env(spec)
    wl_name = labels.get(WORKLOAD_NAME_LABEL, deploy_name)  # GetWorkloadMetaFromPod
    return Workload(
        name=res.name, namespace=res.namespace, ip=ips[0] if ips else "", labels=labels,
        annotations=annotations, service_account=str(sa), container_ports=container_ports(spec),
        injected=has_proxy(spec), ready=ready, workload_name=wl_name, controller_kind="Pod",
        resource=res, node=node, locality=locality, real=True,
        phase=str(status.get("phase") or ""), terminating=meta.get("deletionTimestamp") is not None,
        host_network=spec.get("hostNetwork") is True, ips=ips,
        owner=env.get("ISTIO_META_OWNER") or owner_url(res.namespace, kind, api, deploy_name),
        controller=controller, proxy_env=env, app_containers=app_containers(spec),
        subdomain=str(spec.get("subdomain") or ""), hostname=str(spec.get("hostname") or ""),
        created=res.creation, ready_since=since, restarts=restarts(status),
        proxy_config_annotation=proxy_config_annotation(annotations))


def in_ip_index(pod: Workload) -> bool:
    """`PodCache.onEvent`: only pods with ``shouldPodBeInEndpoints`` and ``IsPodReady`` are indexed by IP."""
    return bool(pod.ip) and pod.phase not in ("Failed", "Succeeded") and not pod.terminating \
        and pod.ready


def by_logging_key(pod: Workload) -> tuple[Any, ...]:
    """kubectl's ``podutils.ByLogging`` (the order istioctl's ``deploy/NAME`` picks a pod by)."""
    phase_rank = {"Running": 0, "Unknown": 1, "Pending": 2}.get(pod.phase, 0)
    return (not pod.node, phase_rank, not pod.ready, pod.ready_since or "~", -pod.restarts,
            pod.created or "~", pod.name)
