"""Diagnostics: the one code catalogue and the one text format.

Layer: L1. Imports: source.

Every problem meshlens finds in user input is a :class:`Diagnostic` with a stable code from
:data:`CODES`. The text format is mypy's and the issue's::

    manifests/dr.yaml:14:7: error: unknown field "maxConection" [ML0102] (DestinationRule ns/name)

Codes are never reused. ``istio`` names the IST code of the istioctl analyzer with the same check.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from meshlens.source import FieldPath, RawDocument, ResourceRef, SourceSpan, render_path


class Level(enum.StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        return {"error": 0, "warning": 1, "info": 2}[self.value]


@dataclass(frozen=True, slots=True)
class Code:
    code: str
    level: Level
    template: str
    istio: str = ""
    title: str = ""


def _c(code: str, level: Level, template: str, istio: str = "", title: str = "") -> Code:
    return Code(code, level, template, istio, title)


E, W, I = Level.ERROR, Level.WARNING, Level.INFO

#: The catalogue. Messages are templates filled with ``str.format`` keyword arguments.
CODES: dict[str, Code] = {
    c.code: c
    for c in (
        # ML00xx: reading input
        _c("ML0001", E, "{message}", title="file cannot be parsed"),
        _c("ML0002", E, "cannot read {path}: {reason}", title="file cannot be read"),
        _c("ML0003", I, "skipped {kind} {name}: kind not used by meshlens", title="kind skipped"),
        _c("ML0004", E, "document is not a Kubernetes object: {reason}", title="not an object"),
        _c("ML0005", E, "input limit exceeded: {message}", title="input too large"),
        _c("ML0006", W, "duplicate key {key!r}: the last value wins", title="duplicate YAML key"),
        # ML01xx: structure of a resource (as the API server's schema check)
        _c("ML0101", E, "{kind} {name}: missing required field {field}", title="missing field"),
        _c("ML0102", E, "unknown field {field!r}", title="unknown field"),
        _c("ML0103", E, "{field}: expected {expected}, got {got}", title="wrong type"),
        _c("ML0104", E, "{field}: unsupported value {value!r}; supported values: {allowed}",
           title="bad enum value"),
        _c("ML0105", E, "duplicate {kind} {ns}/{name}: the first one (at {first}) is kept",
           title="duplicate resource"),
        _c("ML0106", E, "{field}: {message}", title="invalid value"),
        _c("ML0107", E, "{field}: only one of {fields} may be set", title="oneof violated"),
        # ML02xx: the proxy
        _c("ML0201", E, "proxy {proxy!r} not found: {reason}", title="proxy not found"),
        # ML03xx: model building
        _c("ML0301", W, "Service {name}: targetPort {port!r} is not a port of pod {pod}; "
           "the endpoint is left out", title="named targetPort unresolved"),
        _c("ML0302", I, "{message}", title="model note"),
    )
}


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One finding about the input, always tied to a place.

    Build it with :func:`report` so the span is taken from the resource and field path.
    """

    code: str
    span: SourceSpan | None
    message: str
    resource: ResourceRef | None = None
    path: FieldPath = ()
    args: dict[str, Any] = field(default_factory=dict)

    @property
    def level(self) -> Level:
        return CODES[self.code].level

    def format(self) -> str:
        where = f"{self.span}: " if self.span else ""
        tail = f" ({self.resource})" if self.resource else ""
        return f"{where}{self.level.value}: {self.message} [{self.code}]{tail}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "level": self.level.value,
            "message": self.message,
            "resource": str(self.resource) if self.resource else None,
            "file": self.span.path if self.span else None,
            "line": self.span.line if self.span else None,
            "column": self.span.col if self.span else None,
            "field": render_path(self.path) if self.path else None,
        }


def report(
    code: str,
    *,
    doc: RawDocument | None = None,
    path: FieldPath = (),
    resource: ResourceRef | None = None,
    span: SourceSpan | None = None,
    **args: Any,
) -> Diagnostic:
    """Build a diagnostic from the catalogue; the span comes from ``doc`` and ``path``."""
    entry = CODES[code]
    if span is None and doc is not None:
        span = doc.locate(path)
    return Diagnostic(code, span, entry.template.format(**args), resource, path, dict(args))


def sort_key(d: Diagnostic) -> tuple[Any, ...]:
    s = d.span
    return (s.path if s else "", s.line if s else 0, s.col if s else 0, d.code, d.message)
