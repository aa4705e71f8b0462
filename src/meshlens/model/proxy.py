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

from meshlens.model.registry import Workload
from meshlens.model.registry.pods import by_logging_key


@dataclass(frozen=True, slots=True)
class Proxy:
    """One sidecar: its pod and what istiod knows of it."""

    workload: Workload

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
        return f"sidecar~{self.ip}~{self.name}.{self.namespace}~{self.namespace}.svc.cluster.local"


def _owned_by(w: Workload, kind: str, name: str) -> bool:
    """A real pod whose own ownerReference is (kind, name): ``rs/NAME`` of a Deployment's pod."""
    if not w.real:
        return False
    owners = (w.resource.body.get("metadata") or {}).get("ownerReferences")
    return isinstance(owners, list) and any(
        isinstance(o, dict) and o.get("kind") == kind and o.get("name") == name for o in owners)


class ProxyNotFound(LookupError):
    pass


def resolve_proxy(workloads: list[Workload], ref: str, namespace: str | None = None) -> Proxy:
    """Find the proxy named by ``ref``; raise ProxyNotFound with the candidates otherwise."""
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
    return Proxy(matches[0])
