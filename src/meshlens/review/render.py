"""Text, Markdown and SARIF for ``diff`` and ``drift`` (JSON is ``to_dict``).

Layer: L7 (review). Imports: analyze.report, review.
"""

from __future__ import annotations

import json
from typing import Any

from meshlens.review.diff import DiffReport, ProxyDiff
from meshlens.review.drift import DriftReport
from meshlens.review.xds import TYPE_TITLES, TYPES

_MARK = {"added": "+", "removed": "-", "changed": "~"}


def _value(v: Any, limit: int = 100) -> str:
    if v is None:
        return "(absent)"
    text = json.dumps(v, sort_keys=True, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _members(p: ProxyDiff) -> str:
    return p.proxy if len(p.members) == 1 else f"{p.proxy} (and {len(p.members) - 1} more alike: " \
        f"{', '.join(p.members[1:4])}{', …' if len(p.members) > 4 else ''})"


def _summary_line(r: DiffReport) -> str:
    s = r.summary()
    return (f"{s['proxies_affected']} of {s['proxies']} proxies change: {s['resources_added']} resources added, "
            f"{s['resources_removed']} removed, {s['resources_changed']} changed; "
            f"findings: {s['findings_new']} new, {s['findings_gone']} gone"
            + (f"; requests: {s['requests_changed']} of {len(r.requests)} change" if r.requests else ""))


def render_tree(r: DiffReport, *, fields_per_resource: int = 12) -> str:
    out = [f"diff {r.old_label} → {r.new_label}", _summary_line(r), ""]
    for p in r.changed:
        d = p.to_dict()
        out.append(f"proxy {_members(p)}: {p.status}")
        if p.impacts:
            out.append("  request impact:")
            for i in p.impacts:
                dom = f" [{', '.join(i.domains[:3])}{', …' if len(i.domains) > 3 else ''}]" if i.domains else ""
                out.append(f"    {i.where}{dom}, match {i.match}:")
                out.append(f"      before: {i.before or '(no such route)'}")
                out.append(f"      after:  {i.after or '(no such route)'}")
        for res in d["resources"]:
            out.append(f"  {_MARK[res['status']]} {res['type']} {res['name']}")
            for f in res["fields"][:fields_per_resource]:
                out.append(f"      {f['path']}: {_value(f['old'])} → {_value(f['new'])}")
                if f["old_origin"] and f["old_origin"] != f["new_origin"]:
                    out.append(f"        was: {f['old_origin']}")
                if f["new_origin"]:
                    out.append(f"        now: {f['new_origin']}")
            if len(res["fields"]) > fields_per_resource:
                out.append(f"      … {len(res['fields']) - fields_per_resource} more fields (-o json has all)")
        out.append("")
    if r.risk is not None:
        for title, items in (("new findings", r.risk.new), ("findings gone", r.risk.gone)):
            if items:
                out.append(f"{title}:")
                for f in items:
                    s = f.span
                    where = f" {s.path}:{s.line}" if s else ""
                    flag = f" (503 {f.flag})" if f.flag else ""
                    out.append(f"  {f.level_name} [{f.code}] ({f.origin}{where}) {f.message}{flag}")
                out.append("")
    if r.requests:
        out.append("requests:")
        for q in r.requests:
            mark = "≠" if q["changed"] else "="
            out.append(f"  {mark} {q['request']}")
            out.append(f"      before: {_verdict_text(q['before'])}")
            out.append(f"      after:  {_verdict_text(q['after'])}")
        out.append("")
    if not r.changed and not (r.risk and (r.risk.new or r.risk.gone)):
        out.append("no proxy's config changes")
    return "\n".join(out).rstrip() + "\n"


def _verdict_text(v: dict[str, Any]) -> str:
    status = f" {v['status']}" if v.get("status") is not None else ""
    clusters = f" via {', '.join(c for c in v['clusters'] if c)}" if v.get("clusters") else ""
    return f"{v['verdict']}{status}{clusters}"


def render_markdown(r: DiffReport) -> str:
    """A pull-request comment: the summary up front, details collapsed."""
    out = ["### meshlens diff", "", f"`{r.old_label}` → `{r.new_label}`: {_summary_line(r)}", ""]
    if r.risk is not None and r.risk.new:
        out += ["| level | code | resource | message |", "|---|---|---|---|"]
        for f in r.risk.new:
            s = f.span
            where = f" `{s.path}:{s.line}`" if s else ""
            out.append(f"| {f.level_name} | {f.code} | {f.origin}{where} | {_md(f.message)} |")
        out.append("")
    if r.risk is not None and r.risk.gone:
        out.append(f"Fixed by this change: {', '.join(f'{f.code} ({f.origin})' for f in r.risk.gone)}")
        out.append("")
    for p in r.changed:
        d = p.to_dict()
        s = p.summary()
        out.append(f"<details><summary><b>{_md(_members(p))}</b>: {s['added']} added, "
                   f"{s['removed']} removed, {s['changed']} changed</summary>")
        out.append("")
        if p.impacts:
            out += ["| where | match | before | after |", "|---|---|---|---|"]
            out += [f"| {_md(i.where)} | {_md(i.match)} | {_md(i.before or '—')} | {_md(i.after or '—')} |"
                    for i in p.impacts]
            out.append("")
        out.append("```diff")
        for res in d["resources"]:
            out.append(f"{_MARK[res['status']] if res['status'] != 'changed' else '!'} {res['type']} {res['name']}")
            for f in res["fields"][:20]:
                if f["old"] is not None:
                    out.append(f"-   {f['path']}: {_value(f['old'])}")
                if f["new"] is not None:
                    out.append(f"+   {f['path']}: {_value(f['new'])}")
        out += ["```", "", "</details>", ""]
    if r.requests:
        out += ["| request | before | after |", "|---|---|---|"]
        out += [f"| {_md(q['request'])} | {_md(_verdict_text(q['before']))} | {_md(_verdict_text(q['after']))} |"
                for q in r.requests]
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ").replace("<", "&lt;")


def render_sarif(r: DiffReport, *, version: str) -> str:
    """The findings this change introduces, as SARIF 2.1.0 (what code scanning should flag)."""
    from meshlens.analyze.report import sarif

    return json.dumps(sarif(r.risk.new if r.risk else [], version=version), indent=2) + "\n"


# --- drift -------------------------------------------------------------------------------------

def render_drift(r: DriftReport) -> str:
    out = []
    for t in TYPES:
        c = r.counts[t]
        total = sum(c.values())
        out.append(f"{TYPE_TITLES[t]}: {total} compared, {c['match']} match, {c['only_live']} only live, "
                   f"{c['only_expected']} only expected, {c['value_differs']} differ")
    out += r.notes
    d = r.to_dict()
    for item in d["differences"]:
        out.append("")
        out.append(f"{item['class'].replace('_', ' ')}: {item['type']} {item['name']}")
        if "why" in item:
            out.append(f"  why: {item['why']}")
        if item.get("origin"):
            out.append(f"  expected from: {item['origin']}")
        for f in item["fields"][:20]:
            out.append(f"  {f['path']}: expected {_value(f['expected'])}, live {_value(f['live'])}")
            if f["origin"]:
                out.append(f"    from: {f['origin']}")
        if len(item["fields"]) > 20:
            out.append(f"  … {len(item['fields']) - 20} more fields (-o json has all)")
    out.append("")
    out.append("no drift: the live config is what the manifests say" if r.clean
               else f"drift: {len(r.changes)} resources differ")
    return "\n".join(out) + "\n"
