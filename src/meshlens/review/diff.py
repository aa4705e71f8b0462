"""``meshlens diff``: what a change does to every proxy.

Layer: L7 (review). Imports: pipeline, analyze, simulate, compiler, loader, review.xds,
review.impact.

Both sides are loaded and compiled exactly as ``compile`` does; nothing here knows an Istio
rule. Proxies whose inputs are alike (same namespace, same outbound view, same selecting
resources, same Services: :func:`proxy_signature`) are compiled once and shown once with their
members, as istiod's cache serves one result to every proxy with the same key.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meshlens.compiler import CompileResult
from meshlens.errors import LoadError, UsageError
from meshlens.pipeline import Loaded, build, compile_for, load, server_compiler
from meshlens.review import impact
from meshlens.review.xds import ResourceChange, diff_resources, of_result, provenance_for, value_of

#: Files read from a folder (as ``-f`` reads them).
_SUFFIXES = (".yaml", ".yml", ".json")


# --- the two sides --------------------------------------------------------------------------

def load_side(paths: Sequence[str], *, mesh_config: str | None = None) -> Loaded:
    """One side from files and folders."""
    return load(list(paths), mesh_config=mesh_config)


def load_git(paths: Sequence[str], ref: str, *, mesh_config: str | None = None,
             cwd: str | None = None) -> Loaded:
    """The same ``paths`` as they were at git revision ``ref`` (files named ``REF:path``).

    A path that did not exist at ``ref`` contributes nothing (the change adds it).
    """
    from meshlens.loader import LoadResult, load_text

    out = LoadResult()
    for given in paths:
        if given == "-":
            raise UsageError("--base cannot read stdin: name files or folders")
        here = Path(cwd or ".") / given
        top = _git(["rev-parse", "--show-toplevel"], cwd=str(here if here.is_dir() else here.parent))
        rel = here.resolve().relative_to(Path(top.strip()).resolve()).as_posix()
        names = _git(["ls-tree", "-r", "--name-only", ref, "--", rel or "."], cwd=top.strip()).splitlines()
        for name in sorted(n for n in names if n == rel or n.endswith(_SUFFIXES)):
            text = _git(["show", f"{ref}:{name}"], cwd=top.strip())
            part = load_text(text, f"{ref}:{name}", start_index=len(out.documents))
            out.documents.extend(part.documents)
            out.diagnostics.extend(part.diagnostics)
            out.errors.extend(part.errors)
    from meshlens.pipeline import _mesh_config

    mc, mc_errors = _mesh_config(mesh_config)
    loaded = build(out, mc)
    loaded.errors = mc_errors + loaded.errors
    return loaded


def _git(args: list[str], *, cwd: str) -> str:
    try:
        proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=60,
                              check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise UsageError(f"git {' '.join(args)}: {exc}") from exc
    if proc.returncode != 0:
        raise UsageError(f"git {' '.join(args)}: {proc.stderr.strip() or 'failed'}")
    return proc.stdout


# --- proxies ---------------------------------------------------------------------------------

def _selected_by(loaded: Loaded, labels: dict[str, str], namespace: str) -> tuple[str, ...]:
    """Every resource whose selector picks these labels, and every Service selecting them."""
    out = []
    for r in loaded.mesh.resources:
        spec = r.spec if isinstance(r.spec, dict) else {}
        sel: Any = None
        for key in ("selector", "workloadSelector"):
            block = spec.get(key)
            if isinstance(block, dict):
                sel = block.get("matchLabels", block.get("labels", block))
        if r.kind == "Service":
            sel = spec.get("selector")
        if isinstance(sel, dict) and sel and all(labels.get(str(k)) == str(v) for k, v in sel.items()):
            out.append(f"{r.kind}/{r.namespace}/{r.name}")
        elif r.kind in ("PeerAuthentication", "Sidecar") and r.namespace == namespace and not sel:
            out.append(f"{r.kind}/{r.namespace}/{r.name}")
    return tuple(sorted(out))


# --- the diff --------------------------------------------------------------------------------

def is_inbound(key: tuple[str, str]) -> bool:
    """The part of a sidecar's config that depends on the pod itself (its own Services, its
    PeerAuthentication, its Sidecar ingress): ``virtualInbound`` and the inbound clusters."""
    t, name = key
    if t == "listener":
        return name == "virtualInbound"
    return t in ("cluster", "endpoint") and (name.startswith("inbound|") or name == "InboundPassthroughCluster")


@dataclass(slots=True)
class Built:
    """One side's compile of a proxy, reduced to comparable resources."""

    result: CompileResult | None
    resources: dict[Any, Any] = field(default_factory=dict)


@dataclass(slots=True)
class ProxyDiff:
    proxy: str
    members: list[str]
    status: str  # changed | unchanged | added | removed
    changes: list[ResourceChange] = field(default_factory=list)
    impacts: list[impact.Impact] = field(default_factory=list)
    #: (old, new) builds for the outbound part (the group's representative) and the inbound part.
    outbound: tuple[Built, Built] = (Built(None), Built(None))
    inbound: tuple[Built, Built] = (Built(None), Built(None))

    def summary(self) -> dict[str, int]:
        out = {"added": 0, "removed": 0, "changed": 0}
        for c in self.changes:
            out[c.status] += 1
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "proxy": self.proxy, "members": self.members, "count": len(self.members),
            "status": self.status, "summary": self.summary(),
            "resources": [_change_dict(c, self) for c in self.changes],
            "impact": [i.to_dict() for i in self.impacts],
        }


def _change_dict(c: ResourceChange, p: ProxyDiff) -> dict[str, Any]:
    key = (c.type, c.name)
    old, new = p.inbound if is_inbound(key) else p.outbound
    a, b = old.resources.get(key), new.resources.get(key)
    return {"type": c.type, "name": c.name, "status": c.status,
            "origin": provenance_for(new.result if b is not None else old.result, c.type, c.name, "",
                                     b if b is not None else a) if c.status != "changed" else "",
            "fields": [{"path": f.path, "change": f.kind, "old": f.old, "new": f.new,
                        "old_origin": provenance_for(old.result, c.type, c.name, f.path, a),
                        "new_origin": provenance_for(new.result, c.type, c.name, f.path, b)}
                       for f in c.fields]}


def _compile(loaded: Loaded, proxy: str) -> CompileResult | None:
    try:
        return compile_for(loaded, proxy)
    except UsageError:
        return None


def _build(loaded: Loaded, proxy: str) -> Built:
    result = _compile(loaded, proxy)
    return Built(result, of_result(result) if result is not None else {})


def _part(resources: dict[Any, Any], inbound: bool) -> dict[Any, Any]:
    return {k: v for k, v in resources.items() if is_inbound(k) == inbound}


def _impacts(a: dict[Any, Any], b: dict[Any, Any]) -> list[impact.Impact]:
    """Request impact, read only from the route configurations and listeners that changed."""
    changed = {k for k in set(a) | set(b) if k[0] in ("route", "listener") and a.get(k) != b.get(k)}

    def of(res: dict[Any, Any], t: str) -> dict[str, Any]:
        return {k[1]: value_of(v) for k, v in res.items() if k[0] == t and k in changed}

    return impact.compare(of(a, "route"), of(b, "route")) + \
        impact.compare(of(a, "listener"), of(b, "listener"), tcp=True)


def diff_proxy(old: Loaded, new: Loaded, proxy: str, members: list[str]) -> ProxyDiff:
    """The whole config of one proxy compiled on both sides and compared."""
    a, b = _build(old, proxy), _build(new, proxy)
    return _assemble(proxy, members, (a, b), (a, b))


def _assemble(proxy: str, members: list[str], outbound: tuple[Built, Built],
              inbound: tuple[Built, Built]) -> ProxyDiff:
    a = {**_part(outbound[0].resources, False), **_part(inbound[0].resources, True)}
    b = {**_part(outbound[1].resources, False), **_part(inbound[1].resources, True)}
    changes = diff_resources(a, b)
    exists = (inbound[0].result is not None, inbound[1].result is not None)
    status = ("unchanged" if not any(exists) else "added" if not exists[0] else "removed"
              if not exists[1] else "changed" if changes else "unchanged")
    return ProxyDiff(proxy, members, status, changes, _impacts(a, b), outbound, inbound)


def _workloads(loaded: Loaded) -> dict[str, Any]:
    from meshlens.analyze.inputs import proxy_ref

    out: dict[str, Any] = {}
    for w in sorted(loaded.mesh.registry.workloads, key=lambda w: (w.namespace, w.name)):
        out.setdefault(proxy_ref(w), w)
    return out


def inbound_inputs(loaded: Loaded, w: Any) -> str:
    """Everything a sidecar's inbound part is built from, as text: the pod itself, the
    resources that select it (Services, PeerAuthentication, Sidecar, ServiceEntry
    workloadSelector, ...), its namespace's and the root namespace's policies, the MeshConfig."""
    import json

    picked = []
    root = loaded.mesh.mesh_config.root_namespace if hasattr(loaded.mesh.mesh_config, "root_namespace") \
        else "istio-system"
    for ref in _selected_by(loaded, w.labels, w.namespace):
        picked.append(ref)
    data = [r.doc.data for r in loaded.mesh.resources
            if f"{r.kind}/{r.namespace}/{r.name}" in set(picked)
            or (r.kind in ("PeerAuthentication", "Sidecar") and r.namespace in (w.namespace, root))]
    pod = {"ip": w.ip, "labels": w.labels, "annotations": w.annotations, "sa": w.service_account,
           "injected": w.injected, "ports": repr(w.container_ports), "ns": w.namespace}
    return json.dumps([pod, data, repr(loaded.mesh.mesh_config)], sort_keys=True, default=str)


def diff_all(old: Loaded, new: Loaded, only: Sequence[str] = ()) -> list[ProxyDiff]:
    """Every proxy, compiled as istiod's cache would: the outbound part once per group of
    proxies with the same outbound view (``analyze.inputs.outbound_signature`` on both
    sides), the inbound part only for proxies whose inbound inputs changed."""
    from meshlens.analyze.inputs import outbound_signature

    wa, wb = _workloads(old), _workloads(new)
    every = list(dict.fromkeys(list(wa) + list(wb)))
    if only:
        refs = [r for r in every if r in only or r.split(".")[0] in only
                or (wa.get(r) or wb[r]).name in only]
    else:
        refs = [r for r in every if any(w is not None and w.injected for w in (wa.get(r), wb.get(r)))]
    groups: dict[tuple[str, str], list[str]] = {}
    for ref in refs:
        key = (repr(outbound_signature(old, wa[ref])) if ref in wa else "",
               repr(outbound_signature(new, wb[ref])) if ref in wb else "")
        groups.setdefault(key, []).append(ref)
    out = []
    for members in groups.values():
        rep = members[0]
        outbound = (_build(old, rep), _build(new, rep))
        for ref in members:
            if ref == rep:
                inbound = outbound
            elif ref in wa and ref in wb and inbound_inputs(old, wa[ref]) == inbound_inputs(new, wb[ref]):
                # unchanged inputs: the inbound part cannot differ; compile it once for display
                inbound = (Built(None, {}), Built(None, {}))
                out.append(ProxyDiff(ref, [ref], "unchanged", [], [], outbound, inbound))
                _carry_outbound(out, outbound)
                continue
            else:
                inbound = (_build(old, ref), _build(new, ref))
            out.append(_assemble(ref, [ref], outbound, inbound))
    return out


def _carry_outbound(out: list[ProxyDiff], outbound: tuple[Built, Built]) -> None:
    """A proxy whose inbound part is unchanged changes exactly as its group's outbound part."""
    p = out[-1]
    a, b = _part(outbound[0].resources, False), _part(outbound[1].resources, False)
    p.changes = diff_resources(a, b)
    p.impacts = _impacts(a, b)
    if p.changes:
        p.status = "changed"


def _merge_alike(diffs: list[ProxyDiff]) -> list[ProxyDiff]:
    """Proxies whose changes are the same, field for field and origin for origin, shown once."""
    import json

    out: dict[str, ProxyDiff] = {}
    for d in diffs:
        body = d.to_dict()
        for k in ("proxy", "members", "count"):
            body.pop(k)
        key = json.dumps(body, sort_keys=True, default=str)
        if key in out:
            out[key].members.extend(d.members)
        else:
            out[key] = d
    return list(out.values())


@dataclass(slots=True)
class Risk:
    new: list[Any] = field(default_factory=list)  # analyze.Finding
    gone: list[Any] = field(default_factory=list)


def _finding_key(f: Any) -> tuple[str, str, str]:
    return (f.code, f.origin, f.message)


def risk_delta(old: Loaded, new: Loaded) -> Risk:
    """Analyzer findings that appear or disappear (compared by code, resource and message)."""
    from meshlens.analyze import run

    fa, fb = run(old), run(new)
    ka = {_finding_key(f) for f in fa}
    kb = {_finding_key(f) for f in fb}
    uniq_new = {_finding_key(f): f for f in fb if _finding_key(f) not in ka}
    uniq_gone = {_finding_key(f): f for f in fa if _finding_key(f) not in kb}
    order = {"Error": 0, "Warning": 1, "Info": 2}
    key = lambda f: (order.get(f.level_name, 3), f.code, f.origin, f.message)  # noqa: E731
    return Risk(sorted(uniq_new.values(), key=key), sorted(uniq_gone.values(), key=key))


def finding_dict(f: Any) -> dict[str, Any]:
    s = f.span
    return {"code": f.code, "level": f.level_name, "message": f.message, "resource": f.origin,
            "file": s.path if s else "", "line": s.line if s else 0, "flag": f.flag,
            "istio_code": f.istio_code, "fix": f.fix}


# --- requests --------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class RequestSpec:
    proxy: str
    url: str
    headers: tuple[str, ...] = ()
    method: str = "GET"

    def label(self) -> str:
        hs = "".join(f" -H '{h}'" for h in self.headers)
        return f"{self.proxy} {self.method} {self.url}{hs}"


def read_requests(path: str) -> list[RequestSpec]:
    """A requests file: ``requests: [{proxy, url, headers, method}]`` (YAML or JSON).

    Read with the manifest loader's limits; a bad file is a UsageError with file:line.
    """
    from meshlens.loader import load_text

    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read requests file: {exc}") from exc
    res = load_text(text, path)
    if res.errors:
        raise UsageError(str(res.errors[0]))
    out: list[RequestSpec] = []
    for doc in res.documents:
        data = doc.data
        items = data.get("requests") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise UsageError(f"{doc.span}: a requests file is a mapping with a 'requests:' list")
        for i, item in enumerate(items):
            where = f"{path}: requests[{i}]"
            if not isinstance(item, dict) or not isinstance(item.get("proxy"), str) \
                    or not isinstance(item.get("url"), str):
                raise UsageError(f"{where}: needs 'proxy' and 'url' strings")
            headers = item.get("headers", [])
            if isinstance(headers, dict):
                headers = [f"{k}: {v}" for k, v in headers.items()]
            if not isinstance(headers, list) or not all(isinstance(h, str) for h in headers):
                raise UsageError(f"{where}: 'headers' is a list of 'name: value' or a mapping")
            method = item.get("method", "GET")
            if not isinstance(method, str):
                raise UsageError(f"{where}: 'method' is a string")
            out.append(RequestSpec(item["proxy"], item["url"], tuple(headers), method))
    return out


def _verdict(loaded: Loaded, spec: RequestSpec) -> dict[str, Any]:
    from meshlens.simulate import Request, simulate

    result = _compile(loaded, spec.proxy)
    if result is None:
        return {"verdict": "no such proxy", "status": None, "clusters": []}
    try:
        req = Request.parse(spec.url, headers=list(spec.headers), method=spec.method)
    except ValueError as exc:
        raise UsageError(f"request {spec.label()}: {exc}") from exc
    t = simulate(result, req, server=server_compiler(loaded)).to_dict()
    return {"verdict": t.get("verdict"), "status": t.get("status"),
            "clusters": [c.get("name") for c in t.get("clusters", [])]}


def compare_requests(old: Loaded, new: Loaded, specs: list[RequestSpec]) -> list[dict[str, Any]]:
    out = []
    for spec in specs:
        a, b = _verdict(old, spec), _verdict(new, spec)
        out.append({"request": spec.label(), "before": a, "after": b, "changed": a != b})
    return out


# --- everything ------------------------------------------------------------------------------

@dataclass(slots=True)
class DiffReport:
    old_label: str
    new_label: str
    proxies: list[ProxyDiff]
    risk: Risk | None = None
    requests: list[dict[str, Any]] = field(default_factory=list)
    errors: list[LoadError] = field(default_factory=list)

    @property
    def changed(self) -> list[ProxyDiff]:
        return [p for p in self.proxies if p.status != "unchanged"]

    def summary(self) -> dict[str, int]:
        out = {"proxies": sum(len(p.members) for p in self.proxies),
               "proxies_affected": sum(len(p.members) for p in self.changed),
               "resources_added": 0, "resources_removed": 0, "resources_changed": 0,
               "findings_new": len(self.risk.new) if self.risk else 0,
               "findings_gone": len(self.risk.gone) if self.risk else 0,
               "requests_changed": sum(1 for r in self.requests if r["changed"])}
        for p in self.changed:
            for k, v in p.summary().items():
                out[f"resources_{k}"] += v
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "old": self.old_label, "new": self.new_label, "summary": self.summary(),
            "proxies": [p.to_dict() for p in self.changed],
            "risk": {"new": [finding_dict(f) for f in self.risk.new],
                     "gone": [finding_dict(f) for f in self.risk.gone]} if self.risk else None,
            "requests": self.requests,
        }


def run_diff(old: Loaded, new: Loaded, *, proxies: Sequence[str] = (), risk: bool = True,
             requests: list[RequestSpec] | None = None, old_label: str = "old",
             new_label: str = "new") -> DiffReport:
    diffs = _merge_alike(diff_all(old, new, proxies))
    report = DiffReport(old_label, new_label, diffs)
    if risk:
        report.risk = risk_delta(old, new)
    if requests:
        report.requests = compare_requests(old, new, requests)
    return report
