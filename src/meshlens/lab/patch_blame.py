"""Which EnvoyFilter patch makes the real Envoy reject a sidecar's config.

Layer: L7. Imports: compiler, emit, lab.envoy, model.

istiod pushes whatever the patches produce; Envoy then rejects the listener or cluster (and keeps
its previous config), which shows up as a NACK, not as an error at apply time. This module
finds the patch to blame: it validates the compiled config in the real Envoy (validate mode),
and when Envoy rejects it, recompiles with only the first *k* patches (in istiod's application
order) and bisects for the smallest *k* that Envoy rejects -- that patch is the culprit, with
its file:line and Envoy's message.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from meshlens.compiler import CompileOptions, compile_proxy
from meshlens.compiler.envoyfilter.patches import envoy_filters_for
from meshlens.compiler.provenance import Origin
from meshlens.emit import config_dump, to_dict
from meshlens.lab.envoy import validate_config_dump

__all__ = ["PatchVerdict", "blame_envoy_filter_patches"]


@dataclass(slots=True)
class PatchVerdict:
    """Envoy's verdict on the patched config, and the first patch it rejects (if any)."""

    ok: bool
    error: str = ""
    culprit: Origin | None = None
    patches: int = 0  # how many patches apply to this proxy


def _ordered_patches(mesh: Any, proxy: Any) -> list[tuple[Any, int]]:
    efs = envoy_filters_for(mesh.resources, proxy.namespace, proxy.labels,
                            mesh.mesh_config.root_namespace)
    return [(r, i) for r in efs for i in range(len(r.spec.get("configPatches") or []))]


def _with_first(mesh: Any, order: list[tuple[Any, int]], k: int) -> Any:
    """The mesh with only the first ``k`` patches of ``order`` left in its EnvoyFilters."""
    keep: dict[int, list[int]] = {}
    for res, i in order[:k]:
        keep.setdefault(id(res), []).append(i)
    resources = []
    for res in mesh.resources:
        if res.kind != "EnvoyFilter":
            resources.append(res)
            continue
        cps = res.spec.get("configPatches") or []
        body = dict(res.body)
        body["spec"] = {**res.spec, "configPatches": [cps[i] for i in keep.get(id(res), [])]}
        resources.append(dataclasses.replace(res, body=body))
    return dataclasses.replace(mesh, resources=resources)


def _verdict(mesh: Any, proxy: Any, options: CompileOptions | None) -> Any:
    return validate_config_dump(to_dict(config_dump(compile_proxy(mesh, proxy, options=options))))


def blame_envoy_filter_patches(mesh: Any, proxy: Any, *,
                               options: CompileOptions | None = None) -> PatchVerdict:
    """Validate ``proxy``'s patched config; if Envoy rejects it, name the first bad patch.

    A rejection that remains with no patch at all is not a patch's fault (``culprit`` None).
    """
    order = _ordered_patches(mesh, proxy)
    full = _verdict(mesh, proxy, options)
    if full.ok:
        return PatchVerdict(True, patches=len(order))
    if _verdict(_with_first(mesh, order, 0), proxy, options).ok is False:
        return PatchVerdict(False, full.error, None, len(order))
    lo, hi = 0, len(order)  # the first lo patches pass, the first hi fail
    error = full.error
    while hi - lo > 1:
        mid = (lo + hi) // 2
        v = _verdict(_with_first(mesh, order, mid), proxy, options)
        if v.ok:
            lo = mid
        else:
            hi, error = mid, v.error
    res, i = order[hi - 1]
    culprit = Origin(f"rejected by Envoy: EnvoyFilter {res.namespace}/{res.name}", res.ref,
                     ("spec", "configPatches", i), res.doc, error.splitlines()[0] if error else "")
    return PatchVerdict(False, error, culprit, len(order))
