"""Explain a compiled resource field by field: its value and where it came from.

Layer: L6. Imports: compiler, emit.

Each leaf field of the Envoy resource is shown with the Origin recorded by the compiler for it
(or for its nearest recorded parent): the rule (istiod default, destination-level, port-level,
subset, mesh default, quirk, ...), the resource, the YAML path and file:line:col. Blocks a user
wrote that did not reach the resource are listed after it, with the reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from meshlens.compiler import CompileResult
from meshlens.compiler.provenance import Origin
from meshlens.emit import to_dict
from meshlens.source import render_path


@dataclass(slots=True)
class FieldRow:
    path: str
    value: Any
    origin: Origin | None
    origin_path: str

    def to_dict(self) -> dict[str, Any]:
        o = self.origin
        span = o.span if o else None
        return {"field": self.path, "value": self.value, "rule": o.rule if o else "unrecorded",
                "resource": str(o.resource) if o and o.resource else None,
                "yaml_path": render_path(o.field) if o and o.field else None,
                "file": span.path if span else None, "line": span.line if span else None,
                "column": span.col if span else None, "note": o.note if o and o.note else None,
                "recorded_at": self.origin_path or None}


@dataclass(slots=True)
class Explanation:
    kind: str
    name: str
    fields: list[FieldRow] = field(default_factory=list)
    not_applied: list[dict[str, Any]] = field(default_factory=list)
    quirks: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "fields": [f.to_dict() for f in self.fields],
                "not_applied": self.not_applied, "quirks": self.quirks}


def _leaves(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        if not value:
            return [(prefix, {})]
        out: list[tuple[str, Any]] = []
        for k, v in value.items():
            if k == "@type":
                continue
            key = f"{prefix}.{k}" if prefix else k
            out.extend(_leaves(v, key))
        return out
    if isinstance(value, list):
        if value and all(not isinstance(v, dict | list) for v in value):
            return [(prefix, value)]
        out = []
        for i, v in enumerate(value):
            out.extend(_leaves(v, f"{prefix}[{i}]"))
        return out
    return [(prefix, value)]


_HPO = "typed_extension_protocol_options.envoy.extensions.upstreams.http.v3.HttpProtocolOptions"


def _normalize(path: str) -> str:
    # The compiler records HTTP protocol options without the map key.
    return path.replace(_HPO, "typed_extension_protocol_options")


def _lookup(origins: dict[str, Origin], path: str) -> tuple[Origin | None, str]:
    probe = _normalize(path)
    while probe:
        if probe in origins:
            return origins[probe], probe
        cut = max(probe.rfind("."), probe.rfind("["))
        if cut <= 0:
            break
        probe = probe[:cut]
    return None, ""


def explain(result: CompileResult, kind: str, name: str) -> Explanation | None:
    """Explain the cluster/listener/route/extension_config (ECDS) ``name``; None if absent."""
    messages = {"cluster": result.clusters, "listener": result.listeners or [],
                "route": result.routes or [],
                "extension_config": [e.config for e in result.extension_configs]}[kind]
    msg = next((m for m in messages if m.name == name), None)
    if msg is None:
        return None
    origins = result.provenance.of(kind, name)
    out = Explanation(kind, name)
    for path, value in _leaves(to_dict(msg)):
        if path == "name":
            continue
        origin, at = _lookup(origins, path)
        out.fields.append(FieldRow(path, value, origin, at))
    for d in result.provenance.dropped.get((kind, name), []):
        b = d.block
        span = b.resource.span(b.path) if b.resource else None
        out.not_applied.append({
            "block": b.name, "rule": b.rule, "resource": str(b.resource.ref) if b.resource else "MeshConfig",
            "yaml_path": render_path(b.path), "file": span.path if span else None,
            "line": span.line if span else None, "column": span.col if span else None,
            "reason": d.reason})
    for path, origin in origins.items():
        if origin.rule == "quirk":
            span = origin.span
            out.quirks.append({"field": path, "note": origin.note, "resource": str(origin.resource)
                               if origin.resource else None, "file": span.path if span else None,
                               "line": span.line if span else None})
    return out


def render_text(e: Explanation) -> str:
    lines = [f"{e.kind} {e.name}"]
    # Consecutive fields with the same origin share one "<-" line.
    group: list[str] = []
    last = None
    for row in e.fields + [None]:  # type: ignore[list-item]
        desc = (row.origin.describe() if row.origin else "set by istiod (no finer provenance recorded)") \
            if row is not None else None
        if group and desc != last:
            lines.extend(group)
            lines.append(f"      <- {last}")
            group = []
        if row is not None:
            value = row.value if not isinstance(row.value, str) else repr(row.value)
            group.append(f"  {row.path} = {value}")
            last = desc
    if e.quirks:
        lines.append("")
        lines.append("Quirks (what you wrote is not what Envoy got):")
        for q in e.quirks:
            where = f" at {q['file']}:{q['line']}" if q.get("file") else ""
            lines.append(f"  {q['field']}: {q['note']}{where}")
    if e.not_applied:
        lines.append("")
        lines.append("Written but not applied to this " + e.kind + ":")
        for n in e.not_applied:
            where = f" at {n['file']}:{n['line']}:{n['column']}" if n.get("file") else ""
            lines.append(f"  {n['block']} ({n['rule']}) from {n['resource']} {n['yaml_path']}{where}")
            lines.append(f"      {n['reason']}")
    return "\n".join(lines) + "\n"


def cluster_names_like(result: CompileResult, pattern: str) -> list[str]:
    rx = re.compile(re.escape(pattern).replace(r"\*", ".*"))
    return [c.name for c in result.clusters if rx.fullmatch(c.name)]
