"""The EnvoyFilter patches that apply to one proxy, in istiod's order.

Layer: L4. Imports: resources.envoyfilter (value conversion), compiler.provenance.

`PushContext.EnvoyFilters` / `getMatchedEnvoyFilters` (``pilot/pkg/model/push_context.go``): the
root namespace's EnvoyFilters and the proxy's namespace's that `ShouldAttachPolicy`
(``policyattachment.go``) attaches: for a proxy without the
``gateway.networking.k8s.io/gateway-name`` label (sidecars, Istio-chart gateways) one without
``targetRefs`` whose ``workloadSelector.labels`` are a subset of the proxy's labels; for a
Gateway API gateway one whose ``targetRefs`` name its ``Gateway`` (same namespace), or, without
``targetRefs``, the selector (``ENABLE_SELECTOR_BASED_K8S_GATEWAY_POLICY``, default on), sorted
by ``priority``, then root namespace first, then creation time, then
``name.namespace``; each one's patches in order, grouped by ``applyTo``. `convertToEnvoyFilterWrapper`:
a patch without ``match`` matches context ANY; INSERT_* on anything but filters and routes
become ADD; a value that does not convert is dropped. `proxyMatch`: ``proxyVersion`` is a regex
on the proxy's Istio version (the well-known ``^1\\.NN.*`` forms are prefix matches) and
``metadata`` entries must equal the proxy's node metadata.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from meshlens.compiler.provenance import Origin
from meshlens.resources.envoyfilter import build_xds_object

RELATIVE_TARGETS = ("HTTP_FILTER", "NETWORK_FILTER", "HTTP_ROUTE", "LISTENER_FILTER")
MAX_PROXY_VERSION = 1024


@dataclass(slots=True)
class Patch:
    """`EnvoyFilterConfigPatchWrapper`: one configPatch, its converted value and its origin."""

    apply_to: str
    match: dict[str, Any]
    operation: str
    value: Any
    resource: Any
    index: int

    @property
    def context(self) -> str:
        return str(self.match.get("context") or "ANY")

    @property
    def key(self) -> str:
        return f"{self.resource.namespace}/{self.resource.name}"

    def origin(self, note: str = "") -> Origin:
        return Origin(f"patched by EnvoyFilter {self.key}", self.resource.ref,
                      ("spec", "configPatches", self.index), self.resource.doc,
                      note or f"{self.operation} {self.apply_to}")

    def context_matches(self, ctx: str) -> bool:
        """`commonConditionMatch` / `patchContextMatch`."""
        return self.context in (ctx, "ANY")

    def sub(self, *keys: str) -> dict[str, Any] | None:
        """The nested match object ``match.keys[0].keys[1]...`` (None when absent)."""
        cur: Any = self.match
        for k in keys:
            cur = cur.get(k) if isinstance(cur, dict) else None
        return cur if isinstance(cur, dict) else None


GATEWAY_NAME_LABEL = "gateway.networking.k8s.io/gateway-name"
GATEWAY_API_GROUP = "gateway.networking.k8s.io"


def _selected(res: Any, namespace: str, labels: dict[str, str]) -> bool:
    """`ShouldAttachPolicy` for an EnvoyFilter (waypoints are not modelled)."""
    spec = res.spec
    refs = [r for r in spec.get("targetRefs") or [] if isinstance(r, dict)]
    gateway = labels.get(GATEWAY_NAME_LABEL)
    if refs:
        if gateway is None or res.namespace != namespace:
            return False
        return any(str(r.get("group") or "") == GATEWAY_API_GROUP and r.get("kind") == "Gateway"
                   and r.get("name") == gateway and str(r.get("namespace") or namespace) == namespace
                   for r in refs)
    ws = spec.get("workloadSelector")
    want = ws.get("labels") if isinstance(ws, dict) else None
    return not isinstance(want, dict) or all(labels.get(k) == v for k, v in want.items())


def _proxy_matches(match: dict[str, Any], version: str, metadata: dict[str, str]) -> bool:
    """`proxyMatch`."""
    proxy = match.get("proxy")
    if not isinstance(proxy, dict):
        return True
    pv = str(proxy.get("proxyVersion") or "")
    if pv:
        known = re.fullmatch(r"\^1\\\.(1[6-9]|2[0-3])\.\*", pv)
        if known:
            if not version.startswith(f"1.{known.group(1)}"):
                return False
        elif len(pv) > MAX_PROXY_VERSION:
            return False
        else:
            try:
                if not version or not re.search(pv, version):
                    return False
            except re.error:
                return False
    meta = proxy.get("metadata")
    return all(metadata.get(k) == v for k, v in (meta or {}).items())


def envoy_filters_for(resources: list[Any], namespace: str, labels: dict[str, str],
                      root_namespace: str) -> list[Any]:
    """`EnvoyFilters(proxy)`: the EnvoyFilter resources that apply, in istiod's order."""
    efs = [r for r in resources if r.kind == "EnvoyFilter"
           and r.namespace in (root_namespace, namespace) and _selected(r, namespace, labels)]

    def key(r: Any) -> tuple[int, int, tuple[str, str, str], str]:
        prio = r.spec.get("priority")
        return (int(prio) if isinstance(prio, int) else 0, 0 if r.namespace == root_namespace else 1,
                r.order, f"{r.name}.{r.namespace}")

    return sorted(efs, key=key)


def merged_patches(resources: list[Any], namespace: str, labels: dict[str, str],
                   root_namespace: str, *, version: str,
                   metadata: dict[str, str]) -> dict[str, list[Patch]]:
    """`MergedEnvoyFilterWrapper.Patches`: applyTo → patches in application order."""
    out: dict[str, list[Patch]] = {}
    for res in envoy_filters_for(resources, namespace, labels, root_namespace):
        for i, cp in enumerate(res.spec.get("configPatches") or []):
            if not isinstance(cp, dict) or not isinstance(cp.get("patch"), dict):
                continue
            apply_to = str(cp.get("applyTo") or "INVALID")
            op = str(cp["patch"].get("operation") or "INVALID")
            try:
                value = build_xds_object(apply_to, cp["patch"].get("value"))
            except ValueError:
                continue
            match = cp.get("match") if isinstance(cp.get("match"), dict) else {"context": "ANY"}
            if op in ("INSERT_AFTER", "INSERT_BEFORE", "INSERT_FIRST") and apply_to not in RELATIVE_TARGETS:
                op = "ADD"
            if _proxy_matches(match, version, metadata):
                out.setdefault(apply_to, []).append(Patch(apply_to, match, op, value, res, i))
    return out


def is_merge(op: str) -> bool:
    """`isMergeOperation`."""
    return op in ("MERGE", "MERGE_AND_REPLACE_LIST")


def merge_value(patch: Patch, dst: Any) -> None:
    """`mergePatchValue`."""
    from meshlens.compiler.envoyfilter.merge import merge

    merge(dst, patch.value, replace_list=patch.operation == "MERGE_AND_REPLACE_LIST")


def clone(patch: Patch) -> Any:
    """``proto.Clone(cp.Value)``."""
    out = type(patch.value)()
    out.CopyFrom(patch.value)
    return out


def replace_items(items: Any, new: list[Any]) -> None:
    """Set a repeated message field to copies of ``new`` (which may alias its elements)."""
    copies = []
    for e in new:
        c = type(e)()
        c.CopyFrom(e)
        copies.append(c)
    del items[:]
    items.extend(copies)
