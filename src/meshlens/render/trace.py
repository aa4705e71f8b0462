"""Render a Trace: a readable tree, or a Mermaid flowchart like the seed's figure.

Layer: L6. Imports: simulate.
"""

from __future__ import annotations

from typing import Any

from meshlens.simulate import Trace

_TITLES = {"capture": "1 capture", "listener": "2 listener", "route": "3 route", "fault": "3a fault filter",
           "cluster": "4 cluster", "endpoint": "5 endpoints", "inbound": "6 server sidecar",
           "upstream": "7 upstream"}


def _where(o: dict[str, Any]) -> str:
    where = f" at {o['file']}:{o['line']}:{o['column']}" if o.get("file") else ""
    return f"{o['resource'] or 'istiod default'} {o.get('yaml_path') or ''}{where}".replace("  ", " ")


def _fmt(v: Any) -> str:
    if isinstance(v, dict):
        return ", ".join(f"{k}={_fmt(x)}" for k, x in v.items())
    if isinstance(v, list):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    return str(v)


def render_tree(t: Trace) -> str:
    r = t.request
    out = [f"{r.method} {r.scheme}://{r.host}:{r.port}{r.path if r.is_http else ''}"
           + (f"  headers: {', '.join(f'{k}: {v}' for k, v in r.headers.items())}" if r.headers else "")]
    for layer in t.layers:
        mark = "✔" if layer.ok else "✘"
        port = f" :{layer.port}" if layer.port is not None else ""
        out.append(f"{mark} {_TITLES.get(layer.layer, layer.layer)}: {layer.name}{port}")
        for k, v in layer.detail.items():
            if k in ("provenance", "endpoints", "candidates", "origin", "attempts") or v is None:
                continue
            out.append(f"    {k}: {_fmt(v)}")
        for c in layer.detail.get("candidates", []):
            out.append(f"    {'→' if c['matched'] else '·'} route {c['route']}: {c['why']}")
        if layer.detail.get("origin", {}).get("resource"):
            out.append(f"    from {_where(layer.detail['origin'])}")
        for a in layer.detail.get("attempts", []) if layer.layer == "upstream" else []:
            retried = f", retried ({a['retried_by']})" if a.get("retried_by") else ""
            out.append(f"    attempt {a['attempt']} → {a['host']}: {a['result']}{retried}")
        for e in layer.detail.get("endpoints", []):
            out.append(f"    {e['address']}:{e['port']}  {e['health']}  {e['transport']}")
        for path, o in layer.detail.get("provenance", {}).items():
            if o.get("resource"):
                out.append(f"    {path} <- {o['rule']} {o['resource']} {o['yaml_path']} at {o['file']}:{o['line']}")
        if layer.note:
            out.append(f"    {layer.note}")
    if len(t.clusters) > 1:
        out.append("  weights: " + ", ".join(f"{c['name']} {c['share']}%" for c in t.clusters))
    for o in t.outcomes:
        out.append(f"  outcome {o.probability:.1%}: {o.verdict} {o.status if o.status is not None else '-'} "
                   f"{','.join(o.flags) or '-'} - {o.reason}")
    verdict = t.verdict if t.verdict != "ok" else "ok (routed)"
    flags = f" [{','.join(t.flags)}]" if t.flags else ""
    out.append(f"verdict: {verdict}" + (f" {t.status}" if t.status else "") + flags + f" - {t.reason}")
    for f in t.fixes or ([t.fix] if t.fix else []):
        out.append(f"fix: {_where(f)}" + (f" ({f['note']})" if f.get("note") else ""))
    return "\n".join(out) + "\n"


def render_mermaid(t: Trace) -> str:
    """A flowchart: app → 15001 → listener → route → cluster(s) → endpoints → server sidecar."""
    lines = ["flowchart LR"]
    r = t.request
    lines.append(f'  app["app<br/>{r.scheme}://{r.host}:{r.port}"]')
    prev = "app"
    for i, layer in enumerate(t.layers):
        node = f"n{i}"
        label = f"{_TITLES.get(layer.layer, layer.layer)}<br/>{layer.name}".replace('"', "'")
        if layer.port is not None:
            label += f"<br/>port {layer.port}"
        lines.append(f'  {node}["{label}"]')
        style = "" if layer.ok else " -. fails .->"
        lines.append(f"  {prev} -->{'' if layer.ok else '|fails|'} {node}" if not style else f"  {prev}{style} {node}")
        prev = node
    lines.append(f'  verdict(("{t.verdict}"))')
    lines.append(f"  {prev} --> verdict")
    return "\n".join(lines) + "\n"
