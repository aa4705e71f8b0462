"""EnvoyFilter patch operations that istiod ignores or that depend on an undefined order
(istioctl `envoyfilter.EnvoyPatchAnalyzer`).

Layer: L6. Imports: analyze.core.

`analyzeEnvoyFilterPatch`, per patch in EnvoyFilter order: ADD or REMOVE on ROUTE_CONFIGURATION or
HTTP_ROUTE is ignored (IST0153, IST0154); REPLACE is only for HTTP_FILTER, NETWORK_FILTER (and
VIRTUAL_HOST) (IST0152); a relative operation (INSERT_BEFORE/AFTER, REPLACE, REMOVE) in an
EnvoyFilter without ``priority`` depends on what other patches did first (IST0151), and when an
earlier patch with a ``proxyVersion`` match targets the same filter name, on the proxy version
too (IST0155). The "name" of a patch is its value's ``name`` or else the filter it matches;
istioctl remembers the names of patches with a ``proxyVersion`` across EnvoyFilters. Like
istioctl (whose ``{.spec.configPatches[N]}`` path has no line in its field map), a finding points
at the EnvoyFilter, so one code is reported once per EnvoyFilter; the fix names the patch.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from meshlens.analyze.core import Context, Finding, Metadata, finding

METADATA = Metadata(
    name="envoyfilter.EnvoyPatchAnalyzer",
    description="Checks an envoyFilters ",
    inputs=("EnvoyFilter",),
    codes=("ML1171", "ML1172", "ML1173", "ML1174", "ML1175"),
)
ROUTE_TARGETS = ("ROUTE_CONFIGURATION", "HTTP_ROUTE")


def _instance_name(cp: dict[str, Any]) -> tuple[str, str]:
    """The patch's name: ("value", value.name), or ("filter", the matched filter's name)."""
    value = (cp.get("patch") or {}).get("value")
    if not isinstance(value, dict):
        return ("", "")
    if "name" in value:
        return ("value", str(value["name"]))
    cur: Any = cp
    for key in ("match", "listener", "filterChain", "filter", "name"):
        cur = cur.get(key) if isinstance(cur, dict) else None
    return ("filter", str(cur or ""))


def analyze(ctx: Context) -> Iterator[Finding]:
    seen: list[tuple[str, str]] = []
    for ef in sorted(ctx.of_kind("EnvoyFilter"), key=lambda r: (r.namespace, r.name)):
        priority = ef.spec.get("priority") or 0
        for i, cp in enumerate(ef.spec.get("configPatches") or []):
            if not isinstance(cp, dict) or not isinstance(cp.get("patch"), dict):
                break
            name = _instance_name(cp)
            op = str(cp["patch"].get("operation") or "")
            apply_to = str(cp.get("applyTo") or "")
            fix = {"where": f"spec.configPatches[{i}]"}
            relative = op in ("INSERT_BEFORE", "INSERT_AFTER")
            if op == "ADD" and apply_to in ROUTE_TARGETS:
                yield finding("ML1173", ef, fix=fix)
            elif op == "REMOVE":
                if apply_to in ROUTE_TARGETS:
                    yield finding("ML1174", ef, fix=fix)
                else:
                    relative = True
            elif op == "REPLACE":
                if apply_to not in ("NETWORK_FILTER", "HTTP_FILTER", "VIRTUAL_HOST"):
                    yield finding("ML1172", ef, fix=fix)
                else:
                    relative = True
            if relative and not priority:
                yield finding("ML1175" if name in seen else "ML1171", ef, fix=fix)
            proxy = (cp.get("match") or {}).get("proxy") if isinstance(cp.get("match"), dict) else None
            if isinstance(proxy, dict) and proxy.get("proxyVersion"):
                seen.append(name)
