"""``meshlens describe pod``: istioctl's ``x describe pod`` from files (istioctl/pkg/describe:
`podDescribeCmd`, `printPod`, `describePeerAuthentication`, `printPeerAuthentication`).

Layer: L6. Imports: render.describe, model.peer_auth, resources.

The pod, the Services that select it (each described as ``describe service`` does, from the
pod's compiled config), the effective PeerAuthentication (`ComposePeerAuthentication`) with the
policies that select the pod, and the ingress gateways that expose it.
"""

from __future__ import annotations

from typing import Any

from meshlens.render.describe import Describer, Inputs, _labels_match, kname
from meshlens.resources import Resource

DEPLOYMENT_REQUIREMENTS = "https://istio.io/latest/docs/ops/deployment/application-requirements/"
CANONICAL_NAMES = ("service.istio.io/canonical-name", "app.kubernetes.io/name", "app")
CANONICAL_REVISIONS = ("service.istio.io/canonical-revision", "app.kubernetes.io/version", "version")


def _print_pod(d: Describer, pod: Resource, revision: str) -> bool:
    """`printPod`; False when the pod is not running (istioctl stops there)."""
    ports = []
    for c in pod.spec.get("containers") or []:
        for p in c.get("ports") or []:
            proto = "" if (p.get("protocol") or "") == "TCP" else f"/{p.get('protocol') or ''}"
            ports.append(f"{p.get('containerPort')}{proto} ({c.get('name')})")
        run_as = ((c.get("securityContext") or {}).get("runAsUser"))
        if c.get("name") not in ("istio-proxy", "istio-operator") and run_as == 1337:
            d.w("WARNING: User ID (UID) 1337 is reserved for the sidecar proxy.\n")
    d.w(f"Pod: {kname(pod, d.ns)}\n")
    d.w(f"   Pod Revision: {revision}\n")
    d.w(f"   Pod Ports: {', '.join(ports)}\n" if ports else "   Pod does not expose ports\n")
    status = pod.body.get("status") or {}
    if status.get("phase") != "Running":
        return False
    for key, what in (("containerStatuses", "Container"), ("initContainerStatuses", "Init Container")):
        for cs in status.get(key) or []:
            if not cs.get("ready"):
                d.w(f"WARNING: Pod {kname(pod, d.ns)} {what} {cs.get('name')} NOT READY\n")
    if not any(c.get("name") == "istio-proxy" for c in (pod.spec.get("containers") or [])
               + (pod.spec.get("initContainers") or [])):
        d.w(f"WARNING: {kname(pod, d.ns)} is not part of mesh; no Istio sidecar\n")
        return True
    if ((pod.spec.get("securityContext") or {}).get("runAsUser")) == 1337:
        d.w("   WARNING: User ID (UID) 1337 is reserved for the sidecar proxy.\n")
    if not any(pod.labels.get(k) for k in CANONICAL_NAMES):
        d.w("Suggestion: add required service name label for Istio telemetry. "
            f"See {DEPLOYMENT_REQUIREMENTS}.\n")
    if not any(pod.labels.get(k) for k in CANONICAL_REVISIONS):
        d.w("Suggestion: add required service revision label for Istio telemetry. "
            f"See {DEPLOYMENT_REQUIREMENTS}.\n")
    return True


def _peer_authentication(d: Describer, pod: Resource, root: str, peer: Any) -> None:
    """`describePeerAuthentication`: the effective mode, then the policies that select the pod."""
    composed = peer.compose(pod.namespace, dict(pod.labels))
    d.w("Effective PeerAuthentication:\n")
    d.w(f"   Workload mTLS mode: {composed.mode.mode}\n")
    if composed.per_port:
        d.w("   Port Level mTLS mode:\n")
        for port in sorted(composed.per_port):
            d.w(f"      {port}: {composed.per_port[port].mode}\n")
    matched = [r for ns in (root, pod.namespace) for r in d.inp.resources
               if r.kind == "PeerAuthentication" and r.namespace == ns
               and _labels_match((r.spec.get("selector") or {}).get("matchLabels") or {}, pod.labels)]
    if root == pod.namespace:
        matched = list(dict.fromkeys(matched))
    if matched:
        d.w("Applied PeerAuthentication:\n")
        d.w("   " + ", ".join(f"{r.name}.{r.namespace}" for r in matched) + "\n")


def describe_pod(inp: Inputs, name: str, namespace: str, *, root: str = "istio-system",
                 peer: Any = None) -> str:
    """`podDescribeCmd` for pod ``name`` in ``namespace``; raises LookupError if missing."""
    d = Describer(inp)
    pod = d.find("Pod", namespace, name)
    if pod is None:
        raise LookupError(f'pods "{name}" not found')
    revision = pod.annotations.get("sidecar.istio.io/status", "")
    rev = "default"
    if revision:
        import json

        try:
            rev = str(json.loads(revision).get("revision") or "default")
        except (ValueError, AttributeError):
            rev = "default"
    elif pod.labels.get("istio.io/rev"):
        rev = pod.labels["istio.io/rev"]
    if not _print_pod(d, pod, rev):
        return "".join(d.out)
    svcs = [r for r in inp.resources if r.kind == "Service" and r.group == "" and r.namespace == namespace
            and (r.spec.get("selector") or {}) and _labels_match(r.spec["selector"], pod.labels)]
    if not svcs:
        d.w(f"Warning: No Kubernetes Services select pod {kname(pod, d.ns)} (see "
            "https://istio.io/docs/setup/kubernetes/additional-setup/requirements/ )\n")
    labels = [dict(pod.labels)]
    d.w("--------------------\n")
    d.describe_pod_services(pod, svcs, labels)
    d.w("--------------------\n")
    if peer is not None:
        _peer_authentication(d, pod, root, peer)
    d.ingress_info(svcs, labels)
    return "".join(d.out)
