"""``meshlens explain code``: what each analyze code checks, why it matters, when it stays
quiet, and an example, read from the ``DOCS`` each analyzer keeps next to its code.

Layer: L6. Imports: diagnostics, analyze.

A code is an ML code or an IST code meshlens implements (several ML codes can share an IST
code: IST0101 covers unknown hosts, subsets and Sidecar selectors).

Example:
    >>> [e.code for e in lookup("IST0101")]
    ['ML1101', 'ML1103', 'ML1121']
    >>> lookup("ml1241")[0].analyzer
    'meshlens.RetryOverflowAnalyzer'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from meshlens import analyze
from meshlens.analyze.core import LEVEL_NAMES, CodeDoc
from meshlens.analyze.fixes import FIXES
from meshlens.diagnostics import CODES

RUNNER = "analyze (the runner)"


@dataclass(frozen=True, slots=True)
class CodeEntry:
    """One code with its catalogue entry and, for analyze codes, its documentation."""

    code: str
    analyzer: str  # the analyzer's METADATA.name, or "" for an input (ML0xxx) code
    doc: CodeDoc | None

    def to_dict(self) -> dict[str, Any]:
        entry = CODES[self.code]
        fix = FIXES.get(self.code)
        d = self.doc
        return {"code": self.code, "istio_code": entry.istio or None,
                "level": LEVEL_NAMES[entry.level], "title": entry.title,
                "analyzer": self.analyzer or None, "flag": (fix.flag or None) if fix else None,
                "message": entry.template, "checks": d.checks if d else None,
                "matters": d.matters if d else None, "quiet": d.quiet if d else None,
                "example": d.example if d else None}


def documented() -> dict[str, CodeEntry]:
    """Every code an analyzer (or the runner) emits, with its documentation."""
    out = {code: CodeEntry(code, RUNNER, doc) for code, doc in analyze.DOCS.items()}
    for module in analyze.ANALYZERS:
        docs: dict[str, CodeDoc] = getattr(module, "DOCS", {})
        for code in module.METADATA.codes:
            out[code] = CodeEntry(code, module.METADATA.name, docs.get(code))
    return out


def lookup(code: str) -> list[CodeEntry]:
    """The entries for an ML code or an IST code (any case); empty when unknown."""
    wanted = code.strip().upper()
    docs = documented()
    if wanted in CODES:
        return [docs.get(wanted) or CodeEntry(wanted, "", None)]
    return sorted((docs.get(c) or CodeEntry(c, "", None) for c, e in CODES.items()
                   if e.istio == wanted), key=lambda e: e.code)


def render_text(entries: list[CodeEntry]) -> str:
    """The entries as ``meshlens explain code`` prints them."""
    blocks = []
    for e in entries:
        d = e.to_dict()
        head = f"{e.code}" + (f" ({d['istio_code']})" if d["istio_code"] else "") + \
            f" {d['level']}: {d['title']}"
        lines = [head]
        if e.analyzer:
            lines.append(f"  analyzer: {e.analyzer}")
        if d["flag"]:
            lines.append(f"  flag:     503 {d['flag']}")
        lines.append(f"  message:  {d['message']}")
        if e.doc is None:
            lines.append("  reported while reading and validating input (not by an analyzer)")
        else:
            for label, key in (("checks", "checks"), ("why it matters", "matters"),
                               ("quiet when", "quiet")):
                lines.append(f"  {label}: {d[key]}")
            lines.append("  example:")
            lines.extend(f"    {line}" for line in e.doc.example.splitlines())
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"
