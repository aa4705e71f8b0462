"""``meshlens status``: the conditions istiod would write on Gateway API objects.

Layer: L6. Imports: model.gatewayapi.status.

Text: one line per condition (object, listener or route parent), as ``kubectl get -o wide``
would show them; ``-o json``: a list of objects in :data:`STATUS_SCHEMA`'s shape.
"""

from __future__ import annotations

from typing import Any

#: JSON Schema of ``meshlens status -o json`` (keys may be added, never removed).
_CONDITIONS = {"type": "array", "items": {
    "type": "object", "required": ["type", "status", "reason", "message"],
    "properties": {"type": {"type": "string"}, "status": {"enum": ["True", "False", "Unknown"]},
                   "reason": {"type": "string"}, "message": {"type": "string"}}}}
STATUS_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "array",
    "items": {"type": "object", "required": ["kind", "namespace", "name"], "properties": {
        "kind": {"type": "string"}, "namespace": {"type": "string"}, "name": {"type": "string"},
        "conditions": _CONDITIONS,
        "listeners": {"type": "array", "items": {"type": "object", "required": ["name", "conditions"],
                                                 "properties": {"name": {"type": "string"},
                                                                "conditions": _CONDITIONS}}},
        "parents": {"type": "array", "items": {"type": "object", "required": ["parentRef", "conditions"],
                                               "properties": {"parentRef": {"type": "string"},
                                                              "conditions": _CONDITIONS}}}}}}


def status_rows(statuses: list[Any]) -> list[tuple[str, ...]]:
    """(object, scope, condition, status, reason, message) rows."""
    rows = []
    for st in statuses:
        r = st.resource
        obj = f"{r.kind}/{r.namespace + '/' if r.namespace else ''}{r.name}"
        for c in st.conditions:
            rows.append((obj, "", c.type, c.status, c.reason, c.message))
        for name, conds in st.listeners.items():
            for c in conds:
                rows.append((obj, f"listener {name}", c.type, c.status, c.reason, c.message))
        for ref, conds in st.parents:
            for c in conds:
                rows.append((obj, f"parent {ref}", c.type, c.status, c.reason, c.message))
    return rows


def render_status_text(statuses: list[Any]) -> str:
    rows = [("OBJECT", "SCOPE", "CONDITION", "STATUS", "REASON", "MESSAGE"), *status_rows(statuses)]
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r[:5], widths, strict=True)) + "  " + r[5]
             for r in rows]
    return "\n".join(x.rstrip() for x in lines) + "\n"
