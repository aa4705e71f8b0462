"""The analyzer contract: findings, metadata, the context analyzers read, and Go formatting.

Layer: L6. Imports: diagnostics, source, resources, model, compiler, pipeline.

An analyzer is a module with ``METADATA`` and ``analyze(ctx) -> Iterator[Finding]``. It reads
the mesh model (``ctx.mesh``) and, for facts that only compiled config proves, the compiled
xDS of each proxy (``ctx.compiled()``). It never prints and never raises for user config; the
runner turns an escaped exception into an ``ML1001`` finding anyway.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from meshlens.analyze.fixes import FIXES
from meshlens.compiler import CompileResult
from meshlens.diagnostics import CODES, Diagnostic, Level, visible
from meshlens.errors import MeshlensError
from meshlens.model import Mesh
from meshlens.pipeline import Loaded, compile_for
from meshlens.resources import Resource
from meshlens.source import FieldPath, ResourceRef, SourceSpan

LEVEL_NAMES = {Level.ERROR: "Error", Level.WARNING: "Warning", Level.INFO: "Info"}


@dataclass(frozen=True, slots=True)
class Metadata:
    """What an analyzer is: its istioctl-style name, what it reads and which codes it emits.

    ``yields_to``: codes of other analyzers that explain the same place better; a finding of
    this analyzer is dropped when one of those codes was reported on the same resource field.
    ``supersedes``: codes of input diagnostics (ML0xxx) that this analyzer's findings replace
    on the same resource field (e.g. a webhook warning that a finding explains in Envoy terms).
    """

    name: str
    description: str
    inputs: tuple[str, ...]
    codes: tuple[str, ...]
    compiled: bool = False
    yields_to: tuple[str, ...] = ()
    supersedes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CodeDoc:
    """What ``meshlens explain code`` says about one code; each analyzer keeps its codes' docs
    next to its code, in a module attribute ``DOCS: dict[str, CodeDoc]``.

    ``checks``: what is looked at; ``matters``: the Envoy response flag or status it leads to;
    ``quiet``: when it does not fire; ``example``: a minimal input that triggers it.
    """

    checks: str
    matters: str
    quiet: str
    example: str


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem, tied to a resource and a place in a file."""

    code: str
    resource: ResourceRef | None
    span: SourceSpan | None
    message: str
    path: FieldPath = ()
    flag: str = ""
    fix: str = ""

    @property
    def level(self) -> Level:
        return CODES[self.code].level

    @property
    def level_name(self) -> str:
        return LEVEL_NAMES[self.level]

    @property
    def istio_code(self) -> str:
        return CODES[self.code].istio

    @property
    def origin(self) -> str:
        """istioctl's origin: ``Kind ns/name``, or ``Kind name`` without a namespace."""
        return str(self.resource) if self.resource else ""

    def key(self) -> tuple[Any, ...]:
        """Identity for de-duplication: istioctl compares the rendered line (incl. file:line)."""
        s = self.span
        return (self.code, self.origin, s.path if s else "", s.line if s else 0, self.message)


def finding(code: str, res: Resource | None, path: FieldPath = (), *, flag: str | None = None,
            fix: dict[str, Any] | None = None, span: SourceSpan | None = None,
            **args: Any) -> Finding:
    """Build a finding from the catalogue: message from ``CODES``, flag and fix from ``FIXES``.

    ``args`` fill the message template; ``fix`` adds (or overrides) arguments of the fix template.
    """
    message = visible(CODES[code].template.format(**args))
    extra = FIXES.get(code)
    fix_text = ""
    if extra is not None and extra.template:
        fix_text = extra.template.format(**{**args, **(fix or {})})
    if span is None and res is not None:
        span = res.span(path)
    return Finding(code, res.ref if res is not None else None, span, message, path,
                   flag if flag is not None else (extra.flag if extra else ""), fix_text)


def from_diagnostic(d: Diagnostic) -> Finding:
    """A loader/model diagnostic (ML0xxx) as a finding, so `analyze` reports rejected input too."""
    return Finding(d.code, d.resource, d.span, d.message, d.path)


@dataclass(slots=True)
class Context:
    """What analyzers read: the loaded input, the mesh model and the proxies to compile for."""

    loaded: Loaded
    proxies: tuple[str, ...] = ()
    #: representative proxy → the proxies whose outbound view it stands for
    groups: dict[str, tuple[str, ...]] = field(default_factory=dict)
    _compiled: list[tuple[str, CompileResult]] | None = None
    #: proxies whose compile failed (a meshlens bug): reported once each as ML1001
    compile_errors: list[tuple[str, str]] = field(default_factory=list)
    _cache: dict[str, Any] = field(default_factory=dict)

    @property
    def mesh(self) -> Mesh:
        return self.loaded.mesh

    @property
    def resources(self) -> list[Resource]:
        return self.loaded.mesh.resources

    def of_kind(self, *kinds: str) -> list[Resource]:
        """The resources of these kinds, in input order (a new list; the input is read once
        per run: forty analyzers ask)."""
        by_kind: dict[str, list[Resource]] = self.memo("core.by_kind", lambda: _by_kind(
            self.loaded.mesh.resources))
        if len(kinds) == 1:
            return list(by_kind.get(kinds[0], ()))
        return [r for r in self.loaded.mesh.resources if r.kind in kinds]

    def members(self, proxy: str) -> tuple[str, ...]:
        """The proxies a compiled representative stands for (itself when not grouped)."""
        return self.groups.get(proxy, (proxy,))

    def memo(self, key: str, build: Callable[[], Any]) -> Any:
        """Compute a shared index once per run (analyzers stay independent modules)."""
        if key not in self._cache:
            self._cache[key] = build()
        return self._cache[key]

    def compiled(self) -> list[tuple[str, CompileResult]]:
        """(proxy, compiled config) for every proxy of the run, compiled once and shared."""
        if self._compiled is None:
            out: list[tuple[str, CompileResult]] = []
            for ref in self.proxies:
                try:
                    out.append((ref, compile_for(self.loaded, ref)))
                except MeshlensError:
                    continue  # an unknown --proxy is reported by the CLI before analysis
                except Exception as exc:  # a compiler bug: analyze the other proxies
                    self.compile_errors.append((ref, f"{type(exc).__name__}: {exc}"))
            self._compiled = out
        return self._compiled


def _by_kind(resources: list[Resource]) -> dict[str, list[Resource]]:
    out: dict[str, list[Resource]] = {}
    for r in resources:
        out.setdefault(r.kind, []).append(r)
    return out


# --- Go formatting, for messages that keep istioctl's exact text --------------------------------

def goq(text: str) -> str:
    """Go's ``%q`` for a string.

    Example:
        >>> goq('reviews'), goq('a"b')
        ('"reviews"', '"a\\\\"b"')
    """
    out = ['"']
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def gov(items: Iterable[Any]) -> str:
    """Go's ``%v`` for a slice: ``[a b c]``.

    Example:
        >>> gov(["b", "a"]), gov([8080, 9090])
        ('[b a]', '[8080 9090]')
    """
    return "[" + " ".join(str(i) for i in items) + "]"


def selector_string(labels: dict[str, str]) -> str:
    """A Kubernetes label selector as ``labels.SelectorFromSet(...).String()`` prints it.

    Example:
        >>> selector_string({"b": "2", "a": "1"})
        'a=1,b=2'
    """
    return ",".join(f"{k}={labels[k]}" for k in sorted(labels))


def short_list(items: list[str], limit: int = 3) -> str:
    """``a, b, c`` or ``a, b, c and 2 more``.

    Example:
        >>> short_list(["x", "y"]), short_list(["a", "b", "c", "d"], 2)
        ('x, y', 'a, b and 2 more')
    """
    if len(items) <= limit:
        return ", ".join(items)
    return ", ".join(items[:limit]) + f" and {len(items) - limit} more"


def dotted(path: FieldPath) -> str:
    """A field path as users write it, without the leading ``spec``.

    Example:
        >>> dotted(("spec", "trafficPolicy", "portLevelSettings", 0, "connectionPool"))
        'trafficPolicy.portLevelSettings[0].connectionPool'
    """
    out = ""
    for part in path[1:] if path[:1] == ("spec",) else path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def iter_dicts(value: Any) -> Iterator[dict[str, Any]]:
    """The mappings of a YAML list, skipping anything else (analyzers read unvalidated input)."""
    if isinstance(value, list):
        for item in value:
            if isinstance(item, dict):
                yield item


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
