"""VirtualServices as istiod's VirtualService controller and PushContext index them.

Layer: L3. Imports: resources, source, diagnostics.

`model/virtualservice_controller.go:mergeVirtualServices` (short-name resolution, delegate
merging, exportTo sets), `model/virtualservice.go:ResolveVirtualServiceShortnames`,
`MergeHTTPRoutes`, `hasConflict`, and `model/push_context.go:initVirtualServices` (the index by
gateway: private, exported-to-namespace, public; each in creation-time order).
"""

from __future__ import annotations

import copy
import ipaddress
from dataclasses import dataclass, field
from typing import Any

from meshlens.diagnostics import Diagnostic, report
from meshlens.resources import Resource
from meshlens.source import FieldPath

MESH_GATEWAY = "mesh"
DOMAIN_SUFFIX = "cluster.local"


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def resolve_shortname(host: str, namespace: str, suffix: str = DOMAIN_SUFFIX) -> str:
    """`ResolveShortnameToFQDN`: only a name without any dot gets the VS namespace.

    Example:
        >>> resolve_shortname("reviews", "bookinfo")
        'reviews.bookinfo.svc.cluster.local'
        >>> resolve_shortname("reviews.default", "x"), resolve_shortname("*", "x")
        ('reviews.default', '*')
    """
    if not host or host == "*" or _is_ip(host) or "." in host:
        return host
    return f"{host}.{namespace}.svc.{suffix}" if namespace else host


def resolve_gateway(gw: str, namespace: str) -> str:
    """`resolveGatewayName`: ``name`` → ``ns/name``; ``./name`` → ``ns/name``; legacy FQDN form.

    Example:
        >>> resolve_gateway("gw", "a"), resolve_gateway("./gw", "a"), resolve_gateway("gw.b.svc", "a")
        ('a/gw', 'a/gw', 'b/gw')
    """
    if gw == MESH_GATEWAY:
        return gw
    if "/" not in gw:
        if "." not in gw:
            return f"{namespace}/{gw}"
        i = gw.index(".")
        rest = gw[i + 1:]
        j = rest.find(".")
        return f"{rest}/{gw[:i]}" if j == -1 else f"{rest[:j]}/{gw[:i]}"
    before, _, after = gw.partition("/")
    return f"{namespace}/{after}" if before == "." else gw


@dataclass(frozen=True, slots=True)
class HttpSource:
    """Where a normalized ``http[i]`` came from: the resource that wrote the route (the delegate
    for merged routes) and its YAML path, plus the root entry that delegated to it."""

    resource: Resource
    path: FieldPath
    root_path: FieldPath


@dataclass(eq=False, slots=True)
class VirtualServiceView:
    """One root VirtualService after normalization.

    ``spec`` is a copy: hosts, gateways and destination/mirror hosts resolved, delegates merged
    into ``http``. ``http_sources[i]`` maps the normalized ``spec["http"][i]`` back to YAML.
    """

    resource: Resource
    hosts: list[str]
    spec: dict[str, Any]
    export_to: frozenset[str] = frozenset({"*"})
    gateways: list[str] = field(default_factory=lambda: [MESH_GATEWAY])
    http_sources: list[HttpSource] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.resource.name

    @property
    def namespace(self) -> str:
        return self.resource.namespace

    @property
    def order(self) -> tuple[str, int, str, str]:
        return _order(self.resource)

    @property
    def http(self) -> list[dict[str, Any]]:
        return [h for h in self.spec.get("http") or [] if isinstance(h, dict)]

    def http_source(self, i: int) -> HttpSource:
        if 0 <= i < len(self.http_sources):
            return self.http_sources[i]
        return HttpSource(self.resource, ("spec", "http", i), ("spec", "http", i))

    def config_path(self) -> str:
        """The route metadata value (`util.BuildConfigInfoMetadata`)."""
        return f"/apis/networking.istio.io/v1/namespaces/{self.namespace}/virtual-service/{self.name}"


def _order(r: Resource) -> tuple[str, int, str, str]:
    return (r.creation, r.doc.index, r.name, r.namespace)


def _resolve_spec(spec: dict[str, Any], ns: str) -> dict[str, Any]:
    """`ResolveVirtualServiceShortnames` on a deep copy."""
    out = copy.deepcopy(spec)
    if isinstance(out.get("hosts"), list):
        out["hosts"] = [resolve_shortname(str(h), ns) for h in out["hosts"]]
    if isinstance(out.get("gateways"), list):
        out["gateways"] = [resolve_gateway(str(g), ns) for g in out["gateways"]]

    def dest(d: Any) -> None:
        if isinstance(d, dict) and isinstance(d.get("host"), str):
            d["host"] = resolve_shortname(d["host"], ns)

    for section in ("http", "tcp", "tls"):
        for rule in out.get(section) or []:
            if not isinstance(rule, dict):
                continue
            for m in rule.get("match") or []:
                if isinstance(m, dict) and isinstance(m.get("gateways"), list):
                    m["gateways"] = [resolve_gateway(str(g), ns) for g in m["gateways"]]
            for r in rule.get("route") or []:
                if isinstance(r, dict):
                    dest(r.get("destination"))
            if section == "http":
                dest(rule.get("mirror"))
                for m in rule.get("mirrors") or []:
                    if isinstance(m, dict):
                        dest(m.get("destination"))
    return out


def export_set(values: Any, namespace: str, default: list[str]) -> frozenset[str]:
    """`convertExportToSet` with the mesh default: ``.`` becomes the own namespace."""
    raw = [str(v) for v in values] if isinstance(values, list) and values else list(default)
    return frozenset(namespace if v == "." else v for v in raw)


# --- delegate merging (model/virtualservice.go) -------------------------------------------------

def _sm_kind(sm: Any, kind: str) -> str:
    return str(sm.get(kind) or "") if isinstance(sm, dict) else ""


def string_match_conflict(root: Any, leaf: Any) -> bool:
    """`stringMatchConflict`: can ``leaf`` narrow ``root``?

    Example:
        >>> string_match_conflict({"prefix": "/a"}, {"prefix": "/a/b"})
        False
        >>> string_match_conflict({"exact": "/a"}, {"prefix": "/a"})
        True
    """
    if root is None or leaf is None:
        return False
    r_re, r_pre, r_ex = _sm_kind(root, "regex"), _sm_kind(root, "prefix"), _sm_kind(root, "exact")
    l_re, l_pre, l_ex = _sm_kind(leaf, "regex"), _sm_kind(leaf, "prefix"), _sm_kind(leaf, "exact")
    if r_re and (l_re or l_pre or l_ex):
        return True
    if l_re and (r_re or r_pre or r_ex):
        return True
    if r_ex:
        return bool(l_pre) or l_ex != r_ex
    if r_pre:
        if l_pre:
            return not l_pre.startswith(r_pre)
        if l_ex:
            return not l_ex.startswith(r_pre)
    return True


def _map(m: dict[str, Any], key: str) -> dict[str, Any]:
    v = m.get(key)
    return v if isinstance(v, dict) else {}


def has_conflict(root: dict[str, Any], leaf: dict[str, Any]) -> bool:
    """`hasConflict`: a delegate match must be a narrowing of the root match."""
    for key in ("uri", "scheme", "method", "authority"):
        if string_match_conflict(root.get(key), leaf.get(key)):
            return True
    for key in ("headers", "withoutHeaders", "queryParams"):
        rmap = _map(root, key)
        for name, value in _map(leaf, key).items():
            if string_match_conflict(rmap.get(name), value):
                return True
    if bool(root.get("ignoreUriCase")) != bool(leaf.get("ignoreUriCase")):
        return True
    rp, lp = int(root.get("port") or 0), int(leaf.get("port") or 0)
    if rp > 0 and lp > 0 and rp != lp:
        return True
    rns = str(root.get("sourceNamespace") or "")
    if rns and str(leaf.get("sourceNamespace") or "") != rns:
        return True
    rlabels = _map(root, "sourceLabels")
    for k, v in _map(leaf, "sourceLabels").items():
        if k in rlabels and rlabels[k] != v:
            return True
    rgw, lgw = list(root.get("gateways") or []), list(leaf.get("gateways") or [])
    if rgw and lgw:
        if len(rgw) < len(lgw) or any(g not in rgw for g in lgw):
            return True
    return False


def _merge_match(root: dict[str, Any], leaf: dict[str, Any]) -> dict[str, Any]:
    """`mergeHTTPMatchRequest`: delegate fields win, empty ones come from the root."""
    out = dict(leaf)
    rname, lname = str(root.get("name") or ""), str(leaf.get("name") or "")
    if not lname:
        if rname:
            out["name"] = rname
    elif rname:
        out["name"] = f"{rname}-{lname}"
    for key in ("uri", "scheme", "method", "authority"):
        if out.get(key) is None and root.get(key) is not None:
            out[key] = root[key]
    for key in ("headers", "withoutHeaders", "queryParams", "sourceLabels"):
        merged = {**_map(root, key), **_map(leaf, key)}
        if merged:
            out[key] = merged
    if not out.get("port") and root.get("port"):
        out["port"] = root["port"]
    for key in ("sourceNamespace", "statPrefix"):
        if not out.get(key) and root.get(key):
            out[key] = root[key]
    if not out.get("gateways") and root.get("gateways"):
        out["gateways"] = root["gateways"]
    return out


def _merge_matches(root: list[Any], leaf: list[Any]) -> tuple[list[Any], bool]:
    if not root:
        return leaf, False
    if not leaf:
        return root, False
    out: list[Any] = []
    for sub in leaf:
        found = False
        for r in root:
            if has_conflict(r, sub):
                continue
            out.append(_merge_match(r, sub))
            found = True
        if not found:
            return [], True
    return out, not out


_INHERITED = ("rewrite", "directResponse", "timeout", "retries", "fault", "mirror", "mirrorPercent",
              "mirrorPercentage", "corsPolicy", "mirrors", "headers")


def merge_http_route(root: dict[str, Any], delegate: dict[str, Any]) -> dict[str, Any] | None:
    """`mergeHTTPRoute`: the delegate route narrowed by the root's matches, or None on conflict."""
    merged, conflict = _merge_matches(list(root.get("match") or []), list(delegate.get("match") or []))
    if conflict:
        return None
    out = copy.deepcopy(delegate)
    if merged:
        out["match"] = copy.deepcopy(merged)
    else:
        out.pop("match", None)
    rname, dname = str(root.get("name") or ""), str(delegate.get("name") or "")
    if not dname:
        if rname:
            out["name"] = rname
    elif rname:
        out["name"] = f"{rname}-{dname}"
    for key in _INHERITED:
        if out.get(key) is None and root.get(key) is not None:
            out[key] = copy.deepcopy(root[key])
    out.pop("delegate", None)
    return out


# --- the index ----------------------------------------------------------------------------------

@dataclass(slots=True)
class VirtualServiceIndex:
    """`virtualServiceIndex`: root VirtualServices by (namespace, gateway) and visibility."""

    views: list[VirtualServiceView] = field(default_factory=list)
    private: dict[tuple[str, str], list[VirtualServiceView]] = field(default_factory=dict)
    exported: dict[tuple[str, str], list[VirtualServiceView]] = field(default_factory=dict)
    public: dict[str, list[VirtualServiceView]] = field(default_factory=dict)
    diagnostics: list[Diagnostic] = field(default_factory=list)

    def for_namespace(self, ns: str, gateway: str = MESH_GATEWAY) -> list[VirtualServiceView]:
        """VirtualServices a proxy in ``ns`` imports, in istiod's import order."""
        out: list[VirtualServiceView] = []
        seen: set[int] = set()
        for vs in (self.private.get((ns, gateway), []) + self.exported.get((ns, gateway), [])
                   + self.public.get(gateway, [])):
            if id(vs) not in seen:
                seen.add(id(vs))
                out.append(vs)
        return out


def _mesh_default_export(mesh_config: Any) -> list[str]:
    if mesh_config is None:
        return ["*"]
    export = getattr(mesh_config, "export_to", None)
    return export("defaultVirtualServiceExportTo") if export else ["*"]


def _merge_delegates(res: Resource, spec: dict[str, Any], delegates: dict[tuple[str, str], Any],
                     default_export: list[str],
                     diags: list[Diagnostic]) -> tuple[list[Any], list[HttpSource]]:
    http_out: list[Any] = []
    sources: list[HttpSource] = []
    for i, http in enumerate(spec.get("http") or []):
        root_path: FieldPath = ("spec", "http", i)
        d = http.get("delegate") if isinstance(http, dict) else None
        if not isinstance(d, dict):
            http_out.append(http)
            sources.append(HttpSource(res, root_path, root_path))
            continue
        name = str(d.get("name") or "")
        ns = str(d.get("namespace") or res.namespace)
        found = delegates.get((ns, name))
        if found is None:
            diags.append(report("ML0302", doc=res.doc, path=root_path + ("delegate",),
                                resource=res.ref,
                                message=f"delegate VirtualService {ns}/{name} not found; "
                                        f"http[{i}] is ignored"))
            continue
        dres, dspec = found
        dexport = export_set(dspec.get("exportTo"), dres.namespace, default_export)
        if "*" not in dexport and res.namespace not in dexport:
            diags.append(report("ML0302", doc=res.doc, path=root_path + ("delegate",),
                                resource=res.ref,
                                message=f"delegate VirtualService {ns}/{name} is not exported to "
                                        f"{res.namespace}; http[{i}] is ignored"))
            continue
        for j, sub in enumerate(dspec.get("http") or []):
            if not isinstance(sub, dict):
                continue
            merged = merge_http_route(http, sub)
            if merged is None:
                diags.append(report("ML0302", doc=dres.doc, path=("spec", "http", j, "match"),
                                    resource=dres.ref,
                                    message=f"match conflicts with root {res.namespace}/{res.name} "
                                            f"http[{i}]; this delegate route is ignored"))
                continue
            http_out.append(merged)
            sources.append(HttpSource(dres, ("spec", "http", j), root_path))
    return http_out, sources


def index_virtual_services(mesh_resources: list[Resource], mesh_config: Any = None) -> VirtualServiceIndex:
    """Normalize every root VirtualService and index it as `initVirtualServices` does.

    ``mesh_resources`` may hold any kinds; only VirtualServices are read.
    """
    default_export = _mesh_default_export(mesh_config)
    vss = sorted((r for r in mesh_resources if r.kind == "VirtualService"), key=_order)
    idx = VirtualServiceIndex()
    delegates: dict[tuple[str, str], Any] = {}
    for r in vss:
        if not r.spec.get("hosts"):
            delegates[(r.namespace, r.name)] = (r, _resolve_spec(r.spec, r.namespace))
    for r in vss:
        if not r.spec.get("hosts"):
            continue
        spec = _resolve_spec(r.spec, r.namespace)
        if any(isinstance(h, dict) and isinstance(h.get("delegate"), dict)
               for h in spec.get("http") or []):
            spec["http"], sources = _merge_delegates(r, spec, delegates, default_export,
                                                     idx.diagnostics)
        else:
            sources = [HttpSource(r, ("spec", "http", i), ("spec", "http", i))
                       for i, _ in enumerate(spec.get("http") or [])]
        gateways = [str(g) for g in spec.get("gateways") or []] or [MESH_GATEWAY]
        export = export_set(spec.get("exportTo"), r.namespace, default_export)
        view = VirtualServiceView(r, [str(h) for h in spec.get("hosts") or []], spec, export,
                                  gateways, sources)
        idx.views.append(view)
        if "*" in export:
            for gw in gateways:
                idx.public.setdefault(gw, []).append(view)
        elif "~" not in export:
            for ns in sorted(export):
                table = idx.private if ns == r.namespace else idx.exported
                for gw in gateways:
                    table.setdefault((ns, gw), []).append(view)
    return idx


def destinations(view: VirtualServiceView, config_namespace: str = "") -> dict[str, set[int]]:
    """`virtualServiceDestinationsFilteredBySourceNamespace`: host → ports (0 = unspecified),
    in first-seen order; http rules whose matches all name another sourceNamespace are skipped."""
    out: dict[str, set[int]] = {}

    def add(d: Any) -> None:
        if not isinstance(d, dict) or not isinstance(d.get("host"), str):
            return
        port = d.get("port")
        number = int(port.get("number") or 0) if isinstance(port, dict) else 0
        out.setdefault(d["host"], set()).add(number)

    for h in view.spec.get("http") or []:
        if not isinstance(h, dict):
            continue
        if config_namespace:
            matched = True
            for m in h.get("match") or []:
                sns = m.get("sourceNamespace") if isinstance(m, dict) else None
                if sns:
                    if sns == config_namespace:
                        matched = True
                        break
                    matched = False
            if not matched:
                continue
        for r in h.get("route") or []:
            if isinstance(r, dict):
                add(r.get("destination"))
        add(h.get("mirror"))
        for m in h.get("mirrors") or []:
            if isinstance(m, dict):
                add(m.get("destination"))
    for section in ("tcp", "tls"):
        for t in view.spec.get(section) or []:
            if not isinstance(t, dict):
                continue
            for r in t.get("route") or []:
                if isinstance(r, dict):
                    add(r.get("destination"))
    return out
