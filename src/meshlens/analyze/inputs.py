"""Load manifests for analysis, and choose the proxies whose view is analyzed.

Layer: L6. Imports: loader, resources, model, pipeline, diagnostics.

Two modes:

* the default (``meshlens analyze``): as ``meshlens compile`` loads files, a resource without a
  namespace is in ``default`` and a resource the API server would reject is reported and left
  out;
* ``harness=True``: the upstream istioctl analyzer test harness (tests/conformance/analyze,
  expected.json): a resource without ``metadata.namespace`` keeps an *empty* namespace, and
  resources are not validated (the harness reads files without the API server or webhook).

Both drop resources in the namespaces istioctl never analyzes (kube-system, kube-public,
kube-node-lease, local-path-storage).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from typing import Any

from meshlens.errors import LoadError
from meshlens.loader import load_mesh_config, load_paths
from meshlens.model import build_mesh
from meshlens.model.mesh import MeshConfig
from meshlens.model.registry import Workload
from meshlens.pipeline import Loaded
from meshlens.resources import KINDS, VERSIONS, Resource, decode_documents
from meshlens.source import RawDocument

IGNORED_NAMESPACES = frozenset({"kube-system", "kube-public", "kube-node-lease",
                                "local-path-storage"})

_PROXY_PREFIX = {"Deployment": "deploy", "StatefulSet": "sts", "DaemonSet": "ds",
                 "ReplicaSet": "rs"}


def load_for_analysis(paths: Iterable[str], *, mesh_config: str | None = None,
                      harness: bool = False) -> Loaded:
    """Load files, folders or ``-`` and build the mesh model for the analyzers.

    Args:
        paths: what ``-f`` names, in order.
        mesh_config: a MeshConfig file (or the ``istio`` ConfigMap).
        harness: emulate istioctl's analyzer test harness (empty default namespace, no
            validation) instead of the API server's view.
    """
    errors: list[LoadError] = []
    mc = MeshConfig()
    if mesh_config:
        doc, mc_errors = load_mesh_config(mesh_config)
        errors.extend(mc_errors)
        mc = MeshConfig.from_document(doc)
    raw = load_paths(list(paths))
    errors.extend(raw.errors)
    if harness:
        for doc in raw.documents:
            meta = doc.data.get("metadata")
            if isinstance(meta, dict) and "namespace" not in meta:
                meta["namespace"] = ""
    # The harness runs no validating webhook: where the decoder can be told so, tell it.
    no_admission = harness and "admission" in inspect.signature(decode_documents).parameters
    decoded = decode_documents(raw.documents, **({"admission": False} if no_admission else {}))
    resources = list(decoded.resources)
    diagnostics = list(raw.diagnostics) + list(decoded.diagnostics)
    if harness:
        resources = _with_unvalidated(resources, raw.documents)
    resources = [r for r in resources if r.namespace not in IGNORED_NAMESPACES]
    diagnostics = [d for d in diagnostics
                   if d.resource is None or d.resource.namespace not in IGNORED_NAMESPACES]
    mesh = build_mesh(resources, mc)
    return Loaded(mesh, diagnostics + list(mesh.diagnostics), errors)


def _with_unvalidated(accepted: list[Resource], docs: list[RawDocument]) -> list[Resource]:
    """Add back the objects decoding rejected, as the harness (no API server) would see them."""
    kept = {id(r.doc) for r in accepted}
    keys = {(r.group, r.kind, r.namespace, r.name) for r in accepted}
    out = list(accepted)
    for doc in docs:
        if id(doc) in kept:
            continue
        res = _lenient(doc)
        if res is None or (res.group, res.kind, res.namespace, res.name) in keys:
            continue
        keys.add((res.group, res.kind, res.namespace, res.name))
        out.append(res)
    out.sort(key=lambda r: r.doc.index)
    return out


def _lenient(doc: RawDocument) -> Resource | None:
    data = doc.data
    api_version, kind = data.get("apiVersion"), data.get("kind")
    meta = data.get("metadata")
    if not isinstance(api_version, str) or not isinstance(kind, str) or not isinstance(meta, dict):
        return None
    group, _, version = api_version.rpartition("/")
    name = meta.get("name")
    if (group, kind) not in KINDS or version not in VERSIONS.get(group, ()) \
            or not isinstance(name, str) or not name:
        return None
    ns = meta.get("namespace", "")
    ns = ns if isinstance(ns, str) and KINDS[(group, kind)] else ""

    def str_map(value: Any) -> dict[str, str]:
        return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}

    created = meta.get("creationTimestamp")
    return Resource(group, version, kind, name, ns, str_map(meta.get("labels")),
                    str_map(meta.get("annotations")), data, doc,
                    created if isinstance(created, str) else "")


def proxy_ref(w: Workload) -> str:
    """How ``--proxy`` names a workload: ``deploy/NAME.NS`` for a controller's pod, else
    ``POD.NS``.

    Example:
        >>> from types import SimpleNamespace as NS
        >>> proxy_ref(NS(controller_kind="Deployment", resource=NS(name="web"), namespace="shop",
        ...              name="web-abc-12345"))
        'deploy/web.shop'
    """
    prefix = _PROXY_PREFIX.get(w.controller_kind)
    if prefix is None:
        return f"{w.name}.{w.namespace}"
    return f"{prefix}/{w.resource.name}.{w.namespace}"


def default_proxies(loaded: Loaded) -> tuple[str, ...]:
    """Every injected workload once: the first pod of each controller, and each bare pod."""
    seen: dict[str, None] = {}
    for w in sorted(loaded.mesh.registry.workloads, key=lambda w: (w.namespace, w.name)):
        if w.injected:
            seen.setdefault(proxy_ref(w), None)
    return tuple(seen)


def _matches(selector: Any, labels: dict[str, str]) -> bool:
    return isinstance(selector, dict) and bool(selector) and all(
        labels.get(str(k)) == str(v) for k, v in selector.items())


def outbound_signature(loaded: Loaded, w: Workload,
                       selectors: list[tuple[str, str, str, dict[str, Any]]] | None = None
                       ) -> tuple[Any, ...]:
    """What a sidecar's outbound config depends on besides the mesh: its namespace, locality
    and IP family, and which workload-selecting Sidecars, DestinationRules and VirtualService
    ``sourceLabels`` matches select it. Proxies with equal signatures get the same outbound
    clusters, endpoints and routes, so one compile stands for all of them."""
    if selectors is None:
        selectors = _selectors(loaded)
    picked = frozenset((kind, name) for kind, ns, name, sel in selectors
                       if (ns == w.namespace or kind == "VirtualService")
                       and _matches(sel, w.labels))
    return (w.namespace, w.locality, ":" in w.ip, picked)


def _selectors(loaded: Loaded) -> list[tuple[str, str, str, dict[str, Any]]]:
    """(kind, namespace, name or rule, labels) of every selector a proxy's outbound view reads."""
    out: list[tuple[str, str, str, dict[str, Any]]] = []
    for r in loaded.mesh.resources:
        if r.kind == "Sidecar":
            sel = (r.spec.get("workloadSelector") or {}).get("labels")
        elif r.kind == "DestinationRule":
            sel = (r.spec.get("workloadSelector") or {}).get("matchLabels")
        elif r.kind == "VirtualService":
            for section in ("http", "tcp", "tls"):
                for i, rule in enumerate(r.spec.get(section) or []):
                    matches = rule.get("match") if isinstance(rule, dict) else None
                    for j, m in enumerate(matches if isinstance(matches, list) else []):
                        if isinstance(m, dict) and isinstance(m.get("sourceLabels"), dict):
                            out.append((r.kind, r.namespace, f"{r.name}/{section}/{i}/{j}",
                                        m["sourceLabels"]))
            continue
        else:
            continue
        if isinstance(sel, dict) and sel:
            out.append((r.kind, r.namespace, r.name, sel))
    return out


def proxy_groups(loaded: Loaded) -> dict[str, tuple[str, ...]]:
    """The default proxies grouped by :func:`outbound_signature`: representative → members.

    Compiling one representative per group keeps ``analyze`` fast on large meshes while every
    finding can still name all the proxies it applies to.
    """
    groups: dict[tuple[Any, ...], list[str]] = {}
    selectors = _selectors(loaded)
    seen: set[str] = set()
    for w in sorted(loaded.mesh.registry.workloads, key=lambda w: (w.namespace, w.name)):
        ref = proxy_ref(w)
        if not w.injected or ref in seen:
            continue
        seen.add(ref)
        groups.setdefault(outbound_signature(loaded, w, selectors), []).append(ref)
    return {members[0]: tuple(members) for members in groups.values()}
