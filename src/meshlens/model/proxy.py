"""The proxy a config is compiled for, given as istioctl takes it.

Layer: L3. Imports: model.registry, source, diagnostics.

``POD[.NAMESPACE]``, ``deploy/NAME[.NAMESPACE]`` or ``deployment/NAME[.NAMESPACE]``, with
``-n NAMESPACE`` as an alternative to the suffix. A controller names its first pod the way
istioctl's ``InferPodInfoFromTypedResource`` picks one (``GetFirstPod`` with kubectl's
``ByLogging`` order: scheduled, Running, Ready, ready longest, most restarts, oldest), real pods
of the input included.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from meshlens.model.registry import Workload
from meshlens.model.registry.pods import by_logging_key

SIDECAR, ROUTER = "sidecar", "router"
PROXY_TYPES = (SIDECAR, ROUTER)
#: `istio` label values of Istio's gateway charts (ingress, egress, east-west).
GATEWAY_LABEL_VALUES = ("ingressgateway", "egressgateway", "eastwestgateway")


@dataclass(frozen=True, slots=True)
class Proxy:
    """One proxy: its pod, what istiod knows of it, and its type (`model.NodeType`).

    ``type`` is ``sidecar`` (`SidecarProxy`) or ``router`` (`Router`: a gateway).
    """

    workload: Workload
    type: str = SIDECAR

    @property
    def is_router(self) -> bool:
        return self.type == ROUTER

    @property
    def name(self) -> str:
        return self.workload.name

    @property
    def namespace(self) -> str:
        return self.workload.namespace

    @property
    def ip(self) -> str:
        return self.workload.ip

    @property
    def labels(self) -> dict[str, str]:
        return self.workload.labels

    @property
    def id(self) -> str:
        return f"{self.type}~{self.ip}~{self.name}.{self.namespace}~{self.namespace}.svc.cluster.local"


def _containers(wl: Workload) -> list[dict[str, Any]]:
    body = wl.resource.body
    spec = body.get("spec") if isinstance(body.get("spec"), dict) else {}
    if wl.resource.kind != "Pod":
        template = spec.get("template") if isinstance(spec.get("template"), dict) else {}
        spec = template.get("spec") if isinstance(template.get("spec"), dict) else {}
    return [c for c in spec.get("containers") or [] if isinstance(c, dict)]


def infer_proxy_type(wl: Workload) -> str:
    """``router`` for a gateway pod, else ``sidecar``.

    A gateway runs the proxy as its main container instead of getting one injected: Istio's
    gateway charts label it ``istio: ingressgateway`` (or egress/east-west), the injector's
    gateway template is asked for with ``inject.istio.io/templates: gateway``, istiod's Gateway
    API deployments carry ``gateway.networking.k8s.io/gateway-name``, and the container itself is
    ``istio-proxy`` started as ``proxy router`` (pilot-agent's ``--type``/positional argument).
    """
    if wl.labels.get("istio") in GATEWAY_LABEL_VALUES:
        return ROUTER
    if "gateway.networking.k8s.io/gateway-name" in wl.labels:
        return ROUTER
    if "gateway" in wl.annotations.get("inject.istio.io/templates", "").split(","):
        return ROUTER
    for c in _containers(wl):
        args = [str(a) for a in (c.get("args") or []) + (c.get("command") or [])]
        if c.get("name") == "istio-proxy" and "router" in args:
            return ROUTER
    return SIDECAR


def _owned_by(w: Workload, kind: str, name: str) -> bool:
    """A real pod whose own ownerReference is (kind, name): ``rs/NAME`` of a Deployment's pod."""
    if not w.real:
        return False
    owners = (w.resource.body.get("metadata") or {}).get("ownerReferences")
    return isinstance(owners, list) and any(
        isinstance(o, dict) and o.get("kind") == kind and o.get("name") == name for o in owners)


class ProxyNotFound(LookupError):
    pass


def resolve_proxy(workloads: list[Workload], ref: str, namespace: str | None = None,
                  proxy_type: str | None = None) -> Proxy:
    """Find the proxy named by ``ref``; raise ProxyNotFound with the candidates otherwise.

    ``proxy_type`` (sidecar|router) forces the type; by default it is inferred from the pod.
    """
    kind, _, rest = ref.partition("/") if "/" in ref else ("pod", "", ref)
    kind = kind.lower()
    if kind in ("deploy", "deployment", "deployments"):
        kind = "Deployment"
    elif kind in ("sts", "statefulset", "statefulsets"):
        kind = "StatefulSet"
    elif kind in ("ds", "daemonset", "daemonsets"):
        kind = "DaemonSet"
    elif kind in ("rs", "replicaset", "replicasets"):
        kind = "ReplicaSet"
    elif kind in ("pod", "pods", "po"):
        kind = "pod"
    else:
        raise ProxyNotFound(f"unsupported resource type {kind!r} (use POD, deploy/NAME)")
    name, ns = rest, namespace
    if "." in rest and namespace is None:
        name, ns = rest.split(".", 1)
    ns = ns or "default"
    if kind == "pod":
        matches = [w for w in workloads if w.name == name and w.namespace == ns]
    else:
        matches = sorted((w for w in workloads if w.namespace == ns and (
            w.controller == (kind, name) or _owned_by(w, kind, name)
            or w.controller is None and w.controller_kind == kind and w.resource.name == name)),
            key=by_logging_key)
    if not matches:
        known = sorted(f"{w.name}.{w.namespace}" for w in workloads)[:10]
        hint = f"; pods: {', '.join(known)}" if known else "; the input has no pods or controllers"
        raise ProxyNotFound(f"no {'pod' if kind == 'pod' else kind} {name} in namespace {ns}{hint}")
    if not matches[0].ip:
        raise ProxyNotFound(f"pod {matches[0].key} has no IP yet (phase "
                            f"{matches[0].phase or 'unknown'}): istiod has no proxy for it")
    return Proxy(matches[0], proxy_type or infer_proxy_type(matches[0]))
