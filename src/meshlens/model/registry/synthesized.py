"""Pods made from controllers (and from status-less Pod manifests), and their addresses.

Layer: L3. Imports: resources, diagnostics, errors, model.registry.{types,pods,injection}.

Manifests describe controllers, not running pods, so meshlens makes the pods a cluster would
run, deterministically (documented in the README):

* Deployment ``NAME`` → pods ``NAME-H10-H5``; StatefulSet → ``NAME-0..N-1``; ReplicaSet ``NAME``
  → ``NAME-H5``; DaemonSet → one pod ``NAME-H5`` (one node); Job → ``parallelism`` pods
  ``NAME-H5``. ``H10``/``H5`` are sha256-derived.
* A controller gets synthesized pods only when none of its real pods is in the input (matched by
  ``ownerReferences``, else by selector + ``pod-template-hash``), and a ReplicaSet owned by a
  Deployment of the input never makes its own. A synthesized pod never takes the name of a real
  one, whatever the order of the input.
* Pod IPs come from 10.244.0.0/16, chosen by sha256 of ``namespace/name`` with linear probing in
  sorted order, after every real pod's IP is reserved; more pods than the pool holds is ML0005.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from dataclasses import dataclass
from typing import Any

from meshlens.errors import LoadError
from meshlens.model.registry.injection import InjectionPolicy, injected
from meshlens.model.registry.pods import (
    app_containers,
    container_ports,
    deploy_meta,
    owner_url,
    proxy_config_annotation,
)
from meshlens.model.registry.types import (
    CANONICAL_NAME,
    CANONICAL_REVISION,
    TLS_MODE_LABEL,
    Workload,
    canonical_name,
    canonical_revision,
    locality_label,
    selects,
    short_hash,
)
from meshlens.resources import Resource

CONTROLLERS = ("Deployment", "StatefulSet", "ReplicaSet", "DaemonSet", "Job")
POD_CIDR = "10.244.0.0/16"
_API = {"Deployment": "apps/v1", "StatefulSet": "apps/v1", "ReplicaSet": "apps/v1",
        "DaemonSet": "apps/v1", "Job": "batch/v1"}


class Allocator:
    """Hash-based address allocation with linear probing inside one network."""

    def __init__(self, cidr: str, reserved: set[str]) -> None:
        self.net = ipaddress.ip_network(cidr)
        self.used = set(reserved)
        self._base = int(self.net.network_address)

    @property
    def capacity(self) -> int:
        """Usable addresses: every one but those ending in .0 or .255."""
        return self.net.num_addresses // 256 * 254

    def free(self) -> int:
        return self.capacity - sum(1 for a in self.used if self._inside(a))

    def _inside(self, addr: str) -> bool:
        try:
            return ipaddress.ip_address(addr) in self.net and int(addr.rsplit(".", 1)[-1]) not in (0, 255)
        except ValueError:
            return False

    def take(self, addr: str) -> None:
        self.used.add(addr)

    def allocate(self, key: str) -> str:
        size = self.net.num_addresses
        start = int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "big") % size
        for i in range(size):
            off = (start + i) % size
            if off % 256 in (0, 255):
                continue
            addr = str(ipaddress.ip_address(self._base + off))
            if addr not in self.used:
                self.used.add(addr)
                return addr
        raise LoadError(f"no free address in {self.net}", None, "ML0005")


@dataclass(slots=True)
class PodPlan:
    """A pod to make: name, namespace, template body, source resource and controller."""

    name: str
    namespace: str
    template: dict[str, Any]
    resource: Resource
    kind: str  # the controller kind, or "Pod" for a status-less Pod manifest


def controller_of_pod(res: Resource, controllers: dict[tuple[str, str, str], Resource]
                      ) -> tuple[tuple[str, str] | None, str]:
    """The top-level controller (kind, name) of a real pod, and a missing owner's name, if any.

    By ``ownerReferences`` (ReplicaSet → its Deployment), else by a controller's selector and,
    for Deployments, the ``pod-template-hash`` label.
    """
    meta = res.body.get("metadata") or {}
    owners = meta.get("ownerReferences")
    ref = None
    if isinstance(owners, list):
        ref = next((o for o in owners if isinstance(o, dict) and o.get("controller") is True
                    and isinstance(o.get("kind"), str) and isinstance(o.get("name"), str)), None)
    if ref is not None:
        kind, name = ref["kind"], ref["name"]
        if kind == "ReplicaSet":
            rs = controllers.get(("ReplicaSet", res.namespace, name))
            if rs is not None:
                dep = _owner(rs, "Deployment")
                return (("Deployment", dep) if dep else ("ReplicaSet", name)), ""
            pth = res.labels.get("pod-template-hash", "")
            if pth and name.endswith("-" + pth):  # the ReplicaSet is not in the input
                dep = name.removesuffix("-" + pth)
                missing = "" if ("Deployment", res.namespace, dep) in controllers else f"ReplicaSet {name}"
                return ("Deployment", dep), missing
            return ("ReplicaSet", name), f"ReplicaSet {name}"
        missing = "" if (kind, res.namespace, name) in controllers else f"{kind} {name}"
        return (kind, name), missing
    for (kind, ns, _), c in controllers.items():
        if ns != res.namespace or kind == "ReplicaSet" and _owner(c, "Deployment"):
            continue
        if kind == "Deployment" and "pod-template-hash" not in res.labels:
            continue
        if kind == "StatefulSet" and not re.fullmatch(re.escape(c.name) + r"-\d+", res.name):
            continue
        if selects(_match_labels(c), res.labels):
            return (kind, c.name), ""
    return None, ""


def _owner(res: Resource, kind: str) -> str:
    owners = (res.body.get("metadata") or {}).get("ownerReferences")
    for o in owners if isinstance(owners, list) else []:
        if isinstance(o, dict) and o.get("kind") == kind and isinstance(o.get("name"), str):
            return str(o["name"])
    return ""


def _match_labels(res: Resource) -> dict[str, str] | None:
    sel = res.spec.get("selector")
    ml = sel.get("matchLabels") if isinstance(sel, dict) else None
    return ml if isinstance(ml, dict) and ml else None


def plan_pods(resources: list[Resource], owned: set[tuple[str, str, str]],
              real_names: set[tuple[str, str]]) -> list[PodPlan]:
    """Pods to synthesize: from controllers none of whose real pods is in the input.

    ``owned`` holds (kind, namespace, name) of controllers that have real pods; ``real_names``
    (namespace, name) of real pods, which a synthesized pod never shadows.
    """
    deployments = {(r.namespace, r.name) for r in resources if r.kind == "Deployment"}
    out: list[PodPlan] = []
    for res in resources:
        if res.kind == "Pod":
            if not isinstance(res.body.get("status"), dict) and (res.namespace, res.name) not in real_names:
                out.append(PodPlan(res.name, res.namespace, {
                    "metadata": {"labels": res.labels, "annotations": res.annotations},
                    "spec": res.body.get("spec") or {}}, res, "Pod"))
            continue
        if res.kind not in CONTROLLERS or (res.kind, res.namespace, res.name) in owned:
            continue
        if res.kind == "ReplicaSet" and (res.namespace, _owner(res, "Deployment")) in deployments:
            continue  # its Deployment makes the pods
        spec = res.spec
        template = spec.get("template") or {}
        if res.kind == "Job":  # a Job runs `parallelism` pods at once (default 1)
            replicas = spec.get("parallelism", 1)
        else:
            replicas = 1 if res.kind == "DaemonSet" else spec.get("replicas", 1)
        if not isinstance(replicas, int) or isinstance(replicas, bool):
            replicas = 1
        rs_hash = short_hash(f"{res.kind}/{res.namespace}/{res.name}", 10)
        for i in range(replicas):
            if res.kind == "Deployment":
                name = f"{res.name}-{rs_hash}-{short_hash(f'{res.namespace}/{res.name}/{i}', 5)}"
            elif res.kind == "StatefulSet":
                name = f"{res.name}-{i}"
            else:
                name = f"{res.name}-{short_hash(f'{res.namespace}/{res.name}/{i}', 5)}"
            if (res.namespace, name) not in real_names:
                out.append(PodPlan(name, res.namespace, template, res, res.kind))
    return sorted(out, key=lambda p: (p.namespace, p.name))


def synthesize(plans: list[PodPlan], alloc: Allocator, namespaces: dict[str, dict[str, str]],
               policy: InjectionPolicy) -> tuple[list[Workload], set[str]]:
    """Make the planned pods; return them and the namespaces whose injection was assumed."""
    if len(plans) > alloc.free():
        raise LoadError(
            f"{len(plans)} pods to make but the pod address pool {alloc.net} has "
            f"{alloc.free()} free addresses; give pods their status.podIP or split the input",
            plans[0].resource.span() if plans else None, "ML0005")
    out: list[Workload] = []
    assumed: set[str] = set()
    for p in plans:
        meta = p.template.get("metadata") if isinstance(p.template.get("metadata"), dict) else {}
        labels = {str(k): str(v) for k, v in (meta.get("labels") or {}).items()}
        annotations = {str(k): str(v) for k, v in (meta.get("annotations") or {}).items()}
        spec = p.template.get("spec") if isinstance(p.template.get("spec"), dict) else {}
        sa = spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
        host_network = spec.get("hostNetwork") is True
        ns_labels = namespaces.get(p.namespace)
        inj = injected(policy, ns_labels, p.namespace, labels, annotations, host_network)
        if inj and ns_labels is None:
            assumed.add(p.namespace)
        if p.kind == "Pod":
            deploy_name, kind, api = deploy_meta(p.name, p.namespace, labels, "", [])
            controller = None
        else:
            # The pod the controller would create: GetDeployMetaFromPod sees its owner
            # (a CronJob's Job NAME-<8 to 10 digits> is the CronJob NAME).
            deploy_name, kind, api = deploy_meta(p.name, p.namespace, labels, p.name + "-", [
                {"kind": p.kind, "name": p.resource.name, "apiVersion": _API[p.kind],
                 "controller": True}])
            controller = (p.kind, p.resource.name)
        wl_name = labels.get("service.istio.io/workload-name", deploy_name)
        if inj:
            # The injector adds these labels; istiod and EDS rely on them.
            labels.setdefault(TLS_MODE_LABEL, "istio")
            labels.setdefault(CANONICAL_NAME, canonical_name(labels, wl_name))
            labels.setdefault(CANONICAL_REVISION, canonical_revision(labels))
        ip = alloc.allocate(f"{p.namespace}/{p.name}")
        out.append(Workload(
            name=p.name, namespace=p.namespace, ip=ip, labels=labels, annotations=annotations,
            service_account=str(sa), container_ports=container_ports(spec), injected=inj,
            ready=True, workload_name=wl_name, controller_kind=p.kind, resource=p.resource,
            node=str(spec.get("nodeName") or ""), locality=locality_label(labels),
            host_network=host_network, ips=(ip,),
            owner=owner_url(p.namespace, kind, api, deploy_name),
            controller=controller, app_containers=app_containers(spec),
            proxy_config_annotation=proxy_config_annotation(annotations)))
    return out, assumed
