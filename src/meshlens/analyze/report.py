"""From raw findings to what is printed: suppression, istioctl's order, de-duplication,
thresholds, and the three output formats (log, JSON, SARIF 2.1.0).

Layer: L6. Imports: diagnostics, resources, analyze.core.

The pipeline follows ``istioctl analyze`` (shared/spec/istioctl.md §4.1): suppress (resource
annotation ``galley.istio.io/analyze-suppress`` and ``--suppress CODE=RESOURCE`` globs), sort by
level, code, origin (Kind/name/namespace) and text, de-duplicate, then decide the exit code on
that list *before* applying ``--output-threshold``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from meshlens.analyze.core import LEVEL_NAMES, Finding
from meshlens.diagnostics import CODES, Diagnostic, Level
from meshlens.resources import Resource
from meshlens.source import ResourceRef

SUPPRESS_ANNOTATION = "galley.istio.io/analyze-suppress"
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"

#: istioctl's exit codes (istioctl/pkg/analyze): issues at or above the failure threshold, a
#: file that could not be parsed (only when there are no such issues), a usage error.
EXIT_OK, EXIT_ISSUES, EXIT_PARSE, EXIT_USAGE = 0, 79, 65, 64


def parse_level(text: str) -> Level:
    """``Error``/``Warning``/``Info`` in any case (istioctl's level names).

    Example:
        >>> parse_level("warning"), parse_level("ERROR")
        (<Level.WARNING: 'warning'>, <Level.ERROR: 'error'>)
    """
    for level, name in LEVEL_NAMES.items():
        if text.strip().lower() == name.lower():
            return level
    raise ValueError(f"unknown level {text!r} (use Error, Warning or Info)")


def go_glob(pattern: str, subject: str) -> bool:
    """``glob.Glob`` of github.com/ryanuber/go-glob, which istioctl's ``--suppress`` uses: ``*``
    matches any run of characters (dots and slashes included); nothing else is special.

    Example:
        >>> go_glob("Pod *.testing", "Pod mypod.testing"), go_glob("Pod testing/*", "Pod x/y")
        (True, False)
        >>> go_glob("DestinationRule [a]", "DestinationRule [a]"), go_glob("*", "")
        (True, True)
    """
    if pattern == "":
        return subject == ""
    if pattern == "*":
        return True
    parts = pattern.split("*")
    if len(parts) == 1:
        return subject == pattern
    leading, trailing = pattern.startswith("*"), pattern.endswith("*")
    for i, part in enumerate(parts[:-1]):
        idx = subject.find(part)
        if i == 0 and not leading and idx != 0:
            return False
        if i > 0 and idx < 0:
            return False
        subject = subject[idx + len(part):]
    return trailing or subject.endswith(parts[-1])


def resource_names(ref: ResourceRef) -> tuple[str, ...]:
    """The names ``--suppress`` matches a finding's resource by: istioctl's origin
    ``Kind ns/name`` (what ``istioctl analyze`` really compares) and ``Kind name.ns`` (the form
    its help text documents).

    Example:
        >>> resource_names(ResourceRef("DestinationRule", "shop", "web"))
        ('DestinationRule shop/web', 'DestinationRule web.shop')
        >>> resource_names(ResourceRef("Namespace", "", "shop"))
        ('Namespace shop',)
    """
    if not ref.namespace:
        return (f"{ref.kind} {ref.name}",)
    return (f"{ref.kind} {ref.namespace}/{ref.name}", f"{ref.kind} {ref.name}.{ref.namespace}")


@dataclass(frozen=True, slots=True)
class Suppression:
    """``--suppress CODE=RESOURCE`` as ``istioctl analyze`` reads it (`filterMessages` in
    pkg/config/analysis/local/istiod_analyze.go): CODE is compared exactly, with the meshlens
    code or the finding's IST code; RESOURCE is a glob (``*`` only) over the finding's resource
    (:func:`resource_names`). A finding without a resource is never suppressed."""

    code: str
    resource: str

    @classmethod
    def parse(cls, text: str) -> Suppression:
        """Parse istioctl's syntax: exactly one ``=``.

        Example:
            >>> Suppression.parse("IST0102=Namespace frod")
            Suppression(code='IST0102', resource='Namespace frod')
        """
        parts = text.split("=")
        if len(parts) != 2 or not parts[0].strip() or not parts[1].strip():
            raise ValueError(f"--suppress {text!r}: expected CODE=RESOURCE, e.g. "
                             "'ML1205=DestinationRule web.shop' or 'IST0118=Service *'")
        return cls(parts[0].strip(), parts[1].strip())

    def known(self) -> bool:
        """Whether the code exists (istioctl warns about an unknown one and goes on)."""
        return self.code in CODES or any(c.istio == self.code for c in CODES.values())

    def matches(self, f: Finding) -> bool:
        if f.resource is None or self.code not in (f.code, f.istio_code):
            return False
        return any(go_glob(self.resource, name) for name in resource_names(f.resource))


def _annotation_suppressed(f: Finding, by_ref: dict[ResourceRef, Resource]) -> bool:
    """The resource's ``galley.istio.io/analyze-suppress`` annotation, as istioctl reads it: the
    value split on ``,`` (no trimming), each item ``*`` or a code compared exactly (meshlens
    also accepts its own ML codes there)."""
    res = by_ref.get(f.resource) if f.resource is not None else None
    if res is None:
        return False
    value = res.annotations.get(SUPPRESS_ANNOTATION, "")
    if not value:
        return False
    return any(item == "*" or item == f.code or (f.istio_code and item == f.istio_code)
               for item in value.split(","))


def sort_key(f: Finding) -> tuple[Any, ...]:
    """istioctl's order: level, code, origin comparator (Kind/name/namespace), then the line."""
    r = f.resource
    comparator = (r.kind, r.name, r.namespace) if r is not None else ("", "", "")
    return (f.level.rank, f.code, r is not None, comparator, render_line(f))


def finalize(findings: Iterable[Finding], resources: Sequence[Resource],
             suppress: Sequence[Suppression] = ()) -> list[Finding]:
    """Suppress, sort and de-duplicate (by the rendered line, as istioctl does)."""
    by_ref = {r.ref: r for r in resources}
    kept = [f for f in findings
            if not _annotation_suppressed(f, by_ref) and not any(s.matches(f) for s in suppress)]
    out: list[Finding] = []
    seen: set[tuple[Any, ...]] = set()
    for f in sorted(kept, key=sort_key):
        if f.key() in seen:
            continue
        seen.add(f.key())
        out.append(f)
    return out


def skipped_kinds(diagnostics: Iterable[Diagnostic]) -> list[tuple[str, int]]:
    """(``apiVersion Kind``, count) of every kind meshlens skipped while loading (ML0003), in
    first-seen order: analyze names them so "no issues" never hides what was not read.

    Example:
        >>> from meshlens.diagnostics import report
        >>> ds = [report("ML0003", kind="gateway.networking.k8s.io/v1 HTTPRoute", name=n)
        ...       for n in ("a", "b")]
        >>> skipped_kinds(ds)
        [('gateway.networking.k8s.io/v1 HTTPRoute', 2)]
    """
    counts: dict[str, int] = {}
    for d in diagnostics:
        if d.code == "ML0003":
            kind = str(d.args.get("kind", "?"))
            counts[kind] = counts.get(kind, 0) + 1
    return list(counts.items())


def skipped_line(kind: str, count: int) -> str:
    """The ``info:`` line for one skipped kind.

    Example:
        >>> skipped_line("security.istio.io/v1 AuthorizationPolicy", 3)
        'info: skipped 3 AuthorizationPolicy (security.istio.io/v1): kind not read by meshlens, not analyzed [ML0003]'
    """
    api_version, _, name = kind.rpartition(" ")
    return (f"info: skipped {count} {name} ({api_version}): kind not read by meshlens, "
            "not analyzed [ML0003]")


def at_or_above(findings: Iterable[Finding], level: Level) -> list[Finding]:
    return [f for f in findings if f.level.rank <= level.rank]


# --- log ---------------------------------------------------------------------------------------

def render_line(f: Finding) -> str:
    """``Level [CODE] (Kind ns/name file:line) message``: istioctl's line."""
    where = ""
    if f.resource is not None or f.span is not None:
        parts = [f.origin] if f.resource is not None else []
        if f.span is not None:
            parts.append(f"{f.span.path}:{f.span.line}")
        where = " (" + " ".join(parts) + ")"
    return f"{f.level_name} [{f.code}]{where} {f.message}"


def render_log(findings: Sequence[Finding]) -> str:
    """One istioctl line per finding, then an indented line with the flag and the fix."""
    lines: list[str] = []
    for f in findings:
        lines.append(render_line(f))
        if f.fix:
            flag = f" (503 {f.flag})" if f.flag else ""
            lines.append(f"    fix{flag}: {f.fix}")
    return "\n".join(lines) + ("\n" if lines else "")


# --- JSON --------------------------------------------------------------------------------------

def to_dict(f: Finding) -> dict[str, Any]:
    return {
        "code": f.code,
        "level": f.level_name,
        "message": f.message,
        "resource": f.origin or None,
        "file": f.span.path if f.span else None,
        "line": f.span.line if f.span else None,
        "column": f.span.col if f.span else None,
        "flag": f.flag or None,
        "istio_code": f.istio_code or None,
        "fix": f.fix or None,
    }


def render_json(findings: Sequence[Finding]) -> str:
    return json.dumps([to_dict(f) for f in findings], indent=2) + "\n"


# --- SARIF 2.1.0 -------------------------------------------------------------------------------

_SARIF_LEVEL = {Level.ERROR: "error", Level.WARNING: "warning", Level.INFO: "note"}


def sarif(findings: Sequence[Finding], *, version: str) -> dict[str, Any]:
    """A SARIF 2.1.0 log: one run, one rule per code, one result per finding."""
    codes = sorted({f.code for f in findings})
    rule_index = {c: i for i, c in enumerate(codes)}
    rules = []
    for c in codes:
        entry = CODES[c]
        rule: dict[str, Any] = {
            "id": c,
            "name": "".join(w.capitalize() for w in (entry.title or c).replace("-", " ").split()),
            "shortDescription": {"text": entry.title or c},
            "defaultConfiguration": {"level": _SARIF_LEVEL[entry.level]},
            "properties": {"tags": ["istio", "envoy"]},
        }
        if entry.istio:
            rule["properties"]["istio_code"] = entry.istio
            rule["helpUri"] = (f"https://istio.io/latest/docs/reference/config/analysis/"
                               f"{entry.istio.lower()}/")
        rules.append(rule)
    results = []
    for f in findings:
        result: dict[str, Any] = {
            "ruleId": f.code,
            "ruleIndex": rule_index[f.code],
            "level": _SARIF_LEVEL[f.level],
            "message": {"text": f.message + (f" Fix: {f.fix}" if f.fix else "")},
            "locations": [],
            "partialFingerprints": {"meshlens/v1": f"{f.code}:{f.origin}:{f.message}"},
            "properties": {k: v for k, v in (("flag", f.flag), ("istio_code", f.istio_code),
                                             ("fix", f.fix), ("resource", f.origin)) if v},
        }
        location: dict[str, Any] = {}
        if f.span is not None:
            location["physicalLocation"] = {
                "artifactLocation": {"uri": f.span.path},
                "region": {"startLine": f.span.line, "startColumn": f.span.col},
            }
        if f.resource is not None:
            location["logicalLocations"] = [{"fullyQualifiedName": f.origin, "kind": "resource"}]
        if location:
            result["locations"].append(location)
        results.append(result)
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "meshlens", "version": version, "rules": rules}},
            "results": results,
        }],
    }


def render_sarif(findings: Sequence[Finding], *, version: str) -> str:
    return json.dumps(sarif(findings, version=version), indent=2) + "\n"
