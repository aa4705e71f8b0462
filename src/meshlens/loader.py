"""Read manifest files into RawDocuments, with lazy file:line:col for every field.

Layer: L2. Imports: source, diagnostics, errors, PyYAML.

This is the only module that reads manifest files. It splits multi-document streams, flattens
``kind: List`` (what ``kubectl get -o yaml`` prints), and keeps, for each object, a locator that
finds the position of any field path. Positions cost nothing until asked for: the document's
text is composed into PyYAML nodes (which carry marks) only when a diagnostic or an explanation
needs a line number. A bare parse with the C loader is the floor we measure against.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml

from meshlens.diagnostics import Diagnostic, report
from meshlens.errors import LoadError
from meshlens.source import FieldPath, RawDocument, SourceSpan

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_DOC_MARKER = re.compile(r"^(---|\.\.\.)(?=\s|$)", re.MULTILINE)
_EXTENSIONS = (".yaml", ".yml", ".json")


@dataclass(frozen=True, slots=True)
class Limits:
    """Input limits; each can be raised from the CLI."""

    max_file_bytes: int = 64 * 1024 * 1024
    max_documents: int = 200_000
    max_depth: int = 64


@dataclass(slots=True)
class LoadResult:
    documents: list[RawDocument] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    errors: list[LoadError] = field(default_factory=list)


class _Chunk:
    """The text of one YAML document and a lazily composed node tree for positions."""

    __slots__ = ("text", "path", "first_line", "_root")

    def __init__(self, text: str, path: str, first_line: int) -> None:
        self.text = text
        self.path = path
        self.first_line = first_line  # 0-based line of the chunk's first line in the file
        self._root: yaml.Node | None | bool = False

    def root(self) -> yaml.Node | None:
        if self._root is False:
            try:
                self._root = yaml.compose(self.text, Loader=_Loader)
            except yaml.YAMLError:
                self._root = None
        return self._root  # type: ignore[return-value]

    def span(self, mark: Any) -> SourceSpan:
        return SourceSpan(self.path, self.first_line + mark.line + 1, mark.column + 1)

    def locate(self, path: FieldPath) -> SourceSpan | None:
        node = self.root()
        if node is None:
            return None
        # A key's position is more useful than its value's for mappings and lists.
        mark = node.start_mark
        for part in path:
            if isinstance(node, yaml.MappingNode) and isinstance(part, str):
                for key_node, value_node in node.value:
                    if key_node.value == part:
                        mark, node = key_node.start_mark, value_node
                        break
                else:
                    return None
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
                if not 0 <= part < len(node.value):
                    return None
                node = node.value[part]
                mark = node.start_mark
            else:
                return None
        return self.span(mark)


def _split(text: str) -> Iterator[tuple[int, str]]:
    """Split a YAML stream into (first line, text) per document, on ``---``/``...`` lines.

    A line that starts with ``---`` or ``...`` followed by a blank is always a document marker in
    YAML (even inside a block scalar), so splitting on them is exact.

    Example:
        >>> [(n, t.strip()) for n, t in _split("a: 1\\n---\\nb: 2\\n")]
        [(0, 'a: 1'), (1, '---\\nb: 2')]
    """
    starts = [m.start() for m in _DOC_MARKER.finditer(text) if text.startswith("---", m.start())]
    bounds = [0] + [s for s in starts if s > 0] + [len(text)]
    line = 0
    for lo, hi in zip(bounds, bounds[1:], strict=False):
        chunk = text[lo:hi]
        yield line, chunk
        line += chunk.count("\n")


def _depth(value: Any, limit: int) -> bool:
    """True if ``value`` nests deeper than ``limit`` (iterative; aliases are visited once)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    seen: set[int] = set()
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(item, dict | list):
            if id(item) in seen:
                continue
            seen.add(id(item))
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def _decode(data: bytes, name: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise LoadError(
            f"file is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})",
            SourceSpan(name, line, col),
        ) from exc


def load_text(text: str, name: str, *, limits: Limits = Limits(), start_index: int = 0) -> LoadResult:
    """Parse one file's text into RawDocuments.

    Example:
        >>> r = load_text("apiVersion: v1\\nkind: Service\\nmetadata:\\n  name: a\\n", "a.yaml")
        >>> r.documents[0].data["kind"], str(r.documents[0].locate(("metadata", "name")))
        ('Service', 'a.yaml:4:3')
    """
    result = LoadResult()
    if "\x00" in text:
        pos = text.index("\x00")
        line = text.count("\n", 0, pos) + 1
        result.errors.append(LoadError("file contains a NUL byte: not a YAML file",
                                       SourceSpan(name, line, 1)))
        return result
    index = start_index
    for first_line, chunk_text in _split(text):
        chunk = _Chunk(chunk_text, name, first_line)
        try:
            data = yaml.load(chunk_text, Loader=_Loader)  # noqa: S506 - CSafeLoader
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            span = chunk.span(mark) if mark else SourceSpan(name, first_line + 1, 1)
            msg = " ".join(p for p in (exc.context, exc.problem) if p) or "invalid YAML"
            result.errors.append(LoadError(f"invalid YAML: {msg}", span))
            continue
        except (yaml.YAMLError, RecursionError, ValueError) as exc:
            result.errors.append(LoadError(f"invalid YAML: {exc}", SourceSpan(name, first_line + 1, 1)))
            continue
        if data is None:
            continue
        span0 = chunk.locate(()) or SourceSpan(name, first_line + 1, 1)
        if _depth(data, limits.max_depth):
            result.errors.append(LoadError(
                f"document nests deeper than {limits.max_depth} levels (--max-depth)", span0, "ML0005"))
            continue
        if not isinstance(data, dict):
            result.diagnostics.append(report(
                "ML0004", span=span0, reason=f"a {type(data).__name__}, not a mapping"))
            continue
        for base, obj in _flatten(data):
            if len(result.documents) + start_index >= limits.max_documents:
                result.errors.append(LoadError(
                    f"more than {limits.max_documents} documents (--max-documents)", span0, "ML0005"))
                return result
            locator = _bind(chunk, base)
            span = locator(()) or span0
            if not isinstance(obj, dict):
                result.diagnostics.append(report(
                    "ML0004", span=span, reason=f"a {type(obj).__name__}, not a mapping"))
                continue
            result.documents.append(RawDocument(obj, span, locator, index))
            index += 1
    return result


def _bind(chunk: _Chunk, base: FieldPath) -> Any:
    return lambda path: chunk.locate(base + path)


def _flatten(data: dict[str, Any]) -> Iterator[tuple[FieldPath, Any]]:
    kind = data.get("kind")
    items = data.get("items")
    if isinstance(kind, str) and kind.endswith("List") and isinstance(items, list):
        for i, item in enumerate(items):
            yield ("items", i), item
    else:
        yield (), data


def _walk(path: str) -> Iterator[str]:
    if os.path.isdir(path):
        for root, dirs, files in os.walk(path):
            dirs.sort()
            for f in sorted(files):
                if f.endswith(_EXTENSIONS):
                    yield os.path.join(root, f)
    else:
        yield path


def load_paths(paths: Iterable[str], *, limits: Limits = Limits(), stdin: Any = None) -> LoadResult:
    """Load files, folders (recursive *.yaml, *.yml, *.json) and ``-`` (stdin)."""
    result = LoadResult()
    for given in paths:
        for path in _walk(given):
            try:
                if path == "-":
                    raw = (stdin or sys.stdin.buffer).read(limits.max_file_bytes + 1)
                    name = "<stdin>"
                else:
                    name = path
                    if os.path.getsize(path) > limits.max_file_bytes:
                        raise LoadError(
                            f"file is larger than {limits.max_file_bytes} bytes (--max-file-bytes)",
                            SourceSpan(name, 1, 1), "ML0005")
                    with open(path, "rb") as fh:
                        raw = fh.read()
                if len(raw) > limits.max_file_bytes:
                    raise LoadError(f"input is larger than {limits.max_file_bytes} bytes",
                                    SourceSpan(name, 1, 1), "ML0005")
                text = _decode(raw, name)
            except LoadError as exc:
                result.errors.append(exc)
                continue
            except OSError as exc:
                result.errors.append(LoadError(f"cannot read file: {exc.strerror or exc}",
                                               SourceSpan(path, 1, 1), "ML0002"))
                continue
            part = load_text(text, name, limits=limits, start_index=len(result.documents))
            result.documents.extend(part.documents)
            result.diagnostics.extend(part.diagnostics)
            result.errors.extend(part.errors)
    return result


def load_mesh_config(path: str) -> tuple[RawDocument | None, list[LoadError]]:
    """Load a MeshConfig: a plain MeshConfig document, or the ``istio`` ConfigMap with a ``mesh`` key.

    Positions inside the ConfigMap's ``mesh`` block scalar point at the file's own lines.
    """
    result = load_paths([path])
    if result.errors:
        return None, result.errors
    if not result.documents:
        return None, [LoadError("no MeshConfig in file", SourceSpan(path, 1, 1))]
    doc = result.documents[0]
    data = doc.data
    if data.get("kind") == "ConfigMap":
        body = (data.get("data") or {}).get("mesh") if isinstance(data.get("data"), dict) else None
        if not isinstance(body, str):
            return None, [LoadError("ConfigMap has no data.mesh string", doc.locate(("data",)))]
        key_span = doc.locate(("data", "mesh"))
        # A block scalar starts on the line after its key.
        inner = load_text(body, path)
        if inner.errors or not inner.documents:
            errs = inner.errors or [LoadError("data.mesh is empty", key_span)]
            shifted = [LoadError(e.message, SourceSpan(path, key_span.line + (e.span.line if e.span else 1),
                                                        e.span.col if e.span else 1)) for e in errs]
            return None, shifted
        mesh = inner.documents[0]
        base = mesh.locator

        def locate(p: FieldPath) -> SourceSpan | None:
            s = base(p) if base else None
            return SourceSpan(path, key_span.line + s.line, s.col + key_span.col + 1) if s else None

        return RawDocument(mesh.data, key_span, locate), []
    return doc, []
