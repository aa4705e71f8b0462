"""Value types that say where things came from: spans, field paths, resource references.

Layer: L0 (leaf). Imports: stdlib only.

A field path is a tuple of mapping keys and list indices in the YAML spelling, rendered the way
Istio's analyzers write them: ``("spec", "http", 0, "route")`` → ``{.spec.http[0].route}``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

FieldPath = tuple[str | int, ...]


def render_path(path: FieldPath) -> str:
    """Render a field path in Istio's JSONPath notation.

    Example:
        >>> render_path(("spec", "subsets", 1, "trafficPolicy"))
        '{.spec.subsets[1].trafficPolicy}'
        >>> render_path(())
        '{.}'
    """
    if not path:
        return "{.}"
    out = []
    for part in path:
        out.append(f"[{part}]" if isinstance(part, int) else f".{part}")
    return "{" + "".join(out) + "}"


@dataclass(frozen=True, slots=True)
class SourceSpan:
    """A position in a file: 1-based line and column."""

    path: str
    line: int
    col: int = 1

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}"


@dataclass(frozen=True, slots=True)
class ResourceRef:
    """Which resource: kind, namespace and name (namespace empty for cluster-scoped kinds)."""

    kind: str
    namespace: str
    name: str
    group: str = ""

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}" if self.namespace else f"{self.kind} {self.name}"


@dataclass(eq=False, slots=True)
class RawDocument:
    """One Kubernetes object as read from a file, with lazy positions for every field.

    ``locate(path)`` finds the span of any field path inside the object. Positions are recovered
    on demand (the loader re-composes the document's text only when a position is asked for), so
    loading stays as fast as a bare parse.
    """

    data: dict[str, Any]
    span: SourceSpan
    locator: Callable[[FieldPath], SourceSpan | None] | None = None
    index: int = 0  # position of the document in the whole input, for stable ordering
    _cache: dict[FieldPath, SourceSpan] = field(default_factory=dict)

    def locate(self, path: FieldPath) -> SourceSpan:
        """Return the span of ``path``, or of its nearest existing ancestor."""
        if path in self._cache:
            return self._cache[path]
        found: SourceSpan | None = None
        if self.locator is not None:
            probe = path
            while found is None:
                found = self.locator(probe)
                if not probe:
                    break
                probe = probe[:-1]
        result = found or self.span
        self._cache[path] = result
        return result
