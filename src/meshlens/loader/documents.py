"""YAML streams into RawDocuments: splitting, composing with limits, and positions.

Layer: L2 (part of ``meshlens.loader``). Imports: source, diagnostics, errors, limits, PyYAML.

A stream is split on ``---`` lines into documents, each parsed on its own, so one broken
document (bad syntax, an undefined alias, a bomb) is reported at its line and the others are
kept. ``kind: List`` (what ``kubectl get -o yaml`` prints) is flattened. Every object keeps a
locator that finds the position of any field path; positions cost nothing until asked for: the
document's text is composed into PyYAML nodes (which carry marks) only when a diagnostic or an
explanation needs a line number. A bare parse with the C loader is the floor we measure against.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml

from meshlens.diagnostics import Diagnostic, report
from meshlens.errors import LoadError
from meshlens.limits import Limits
from meshlens.loader.fast import parse_fast
from meshlens.loader.jsonfast import looks_like_json, parse_json
from meshlens.loader.scalars import Loader, PositionLoader, Reading, RecoveringLoader, Undefined
from meshlens.loader.shape import check_shape
from meshlens.source import FieldPath, RawDocument, SourceSpan

_DOC_MARKER = re.compile(r"^---(?=\s|$)", re.MULTILINE)


@dataclass(slots=True)
class LoadResult:
    documents: list[RawDocument] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    errors: list[LoadError] = field(default_factory=list)


@dataclass(slots=True)
class _Parsed:
    data: Any
    mark: Any  # where the document's root node starts
    root: yaml.Node | None  # kept only when readings or duplicate keys need positions
    readings: list[tuple[yaml.Node, Reading]]
    duplicates: list[yaml.Node]
    #: read by the fast path: readings by field path, and the marks of a List's items
    paths: list[tuple[FieldPath, Reading]] = field(default_factory=list)
    item_marks: list[Any] | None = None


def _parse(text: str, loader_class: Any = Loader) -> _Parsed:
    loader = loader_class(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
        # Positions of a recovered document cannot be composed again: keep its nodes.
        recovered = loader_class is RecoveringLoader
        keep = node if loader.readings or loader.duplicates or recovered else None
        mark = node.start_mark if node is not None else None
        return _Parsed(data, mark, keep, loader.readings, loader.duplicates)
    finally:
        loader.dispose()


# --- positions ------------------------------------------------------------------------------------


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
                self._root = yaml.compose(self.text, Loader=PositionLoader)
            except (yaml.YAMLError, RecursionError, ValueError):
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
                # The last of duplicate keys is the one whose value was kept.
                for key_node, value_node in reversed(node.value):
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


class _Locator:
    """The locator of one object: positions from its chunk, plus its YAML 1.1 readings."""

    __slots__ = ("chunk", "base", "readings")

    def __init__(self, chunk: _Chunk, base: FieldPath, readings: dict[FieldPath, Reading]) -> None:
        self.chunk = chunk
        self.base = base
        self.readings = readings

    def __call__(self, path: FieldPath) -> SourceSpan | None:
        return self.chunk.locate(self.base + path)


def _node_paths(root: yaml.Node, targets: set[int]) -> dict[int, FieldPath]:
    """Field paths of the given nodes (by id) in a composed tree, first occurrence wins."""
    found: dict[int, FieldPath] = {}
    stack: list[tuple[yaml.Node, FieldPath]] = [(root, ())]
    seen: set[int] = set()
    while stack and len(found) < len(targets):
        node, path = stack.pop()
        if id(node) in targets and id(node) not in found:
            found[id(node)] = path
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if id(key_node) in targets and id(key_node) not in found:
                    found[id(key_node)] = path
                if isinstance(key_node, yaml.ScalarNode):
                    stack.append((value_node, path + (key_node.value,)))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((child, path + (i,)) for i, child in enumerate(node.value))
    return found


# --- splitting and loading ------------------------------------------------------------------------


def _split(text: str) -> Iterator[tuple[int, str]]:
    """Split a YAML stream into (first line, text) per document, on ``---`` lines.

    A line that starts with ``---`` followed by a blank is always a document marker in YAML
    (even inside a block scalar), so splitting on them is exact. Lazy: a file of a million
    ``---`` lines costs nothing until its chunks are read.

    Example:
        >>> [(n, t.strip()) for n, t in _split("a: 1\\n---\\nb: 2\\n")]
        [(0, 'a: 1'), (1, '---\\nb: 2')]
    """
    lo, line = 0, 0
    for m in _DOC_MARKER.finditer(text):
        if m.start() == 0:
            continue
        chunk = text[lo : m.start()]
        yield line, chunk
        line += chunk.count("\n")
        lo = m.start()
    yield line, text[lo:]


def _yaml_error(exc: Exception, chunk: _Chunk) -> LoadError:
    """A PyYAML error as a LoadError at its line and column, with a hint for tabs."""
    name, first = chunk.path, chunk.first_line
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        span = chunk.span(mark) if mark else SourceSpan(name, first + 1, 1)
        msg = " ".join(p for p in (exc.context, exc.problem) if p) or "invalid YAML"
        if (
            mark is not None
            and chunk.text[mark.index : mark.index + 1] == "\t"
            or "tab character" in msg
        ):
            msg += " (a tab: YAML does not allow tabs for indentation; use spaces)"
        return LoadError(f"invalid YAML: {msg}", span)
    if isinstance(exc, yaml.reader.ReaderError):
        pos = max(0, min(exc.position, len(chunk.text)))
        line = chunk.text.count("\n", 0, pos)
        col = pos - (chunk.text.rfind("\n", 0, pos) + 1) + 1
        what = f"#x{exc.character:04x}" if isinstance(exc.character, int) else repr(exc.character)
        return LoadError(
            f"invalid YAML: unacceptable character {what}: control characters are "
            "not allowed (a binary file?)",
            SourceSpan(name, first + line + 1, col),
        )
    if isinstance(exc, RecursionError):
        return LoadError(
            "invalid YAML: the document nests too deeply to read",
            SourceSpan(name, first + 1, 1),
            "ML0005",
        )
    return LoadError(f"invalid YAML: {exc}", SourceSpan(name, first + 1, 1))


def _nul_in_text(text: str, name: str) -> LoadError:
    pos = text.index("\x00")
    line = text.count("\n", 0, pos) + 1
    col = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return LoadError(
        "file contains a NUL byte: not a YAML file (a binary file?)", SourceSpan(name, line, col)
    )


def _parsed_documents(
    text: str, name: str, limits: Limits
) -> Iterator[tuple[_Chunk | None, _Parsed | None, list[LoadError], bool]]:
    """Each document of a stream as ``(chunk, parsed, errors, usable)``, every limit applied.

    ``parsed`` is None when the document could not be read at all; ``usable`` is False when
    it must be left out (not YAML, or a limit broken). A usable document may still have errors:
    the List items they name were :data:`DROPPED`. A ``(None, None, [error], False)`` ends the
    stream (a NUL byte, too many documents): nothing after it is read.
    """
    if "\x00" in text:
        yield None, None, [_nul_in_text(text, name)], False
        return
    if "\r" in text or "\x85" in text:
        # CR, CRLF and NEL are line breaks to YAML (libyaml reads each as "\n"): make them
        # line breaks to our line counts too.
        text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x85", "\n")
    for count, (first_line, chunk_text) in enumerate(_split(text), 1):
        chunk = _Chunk(chunk_text, name, first_line)
        if count > limits.max_documents:
            yield None, None, [LoadError(
                f"more than {limits.max_documents} documents (--max-documents)",
                SourceSpan(name, first_line + 1, 1),
                "ML0005",
            )], False
            return
        errors: list[LoadError] = []
        # A scalar's UTF-8 value is at most 4 bytes per character it is written with.
        big = len(chunk_text) * 4 > limits.max_scalar_bytes
        max_chars = limits.max_scalar_bytes // 4 if big else -1
        fast = parse_json(chunk_text, limits.max_depth, max_chars) \
            if looks_like_json(chunk_text) else None
        if fast is None:
            fast = parse_fast(chunk_text, limits.max_depth, max_chars)
        if fast is not None:
            # No anchors, so no alias expansion; the depth was checked while reading.
            data = fast.data
            big = fast.long_scalar
            parsed = _Parsed(data, fast.mark, None, [], [], fast.readings, fast.item_marks)
            if big or not isinstance(data, dict | list):
                problem = check_shape(data, limits, aliases=False, scalars=big)
                if problem is not None:
                    yield chunk, parsed, [_shape_error(problem, chunk)], False
                    continue
            yield chunk, parsed, errors, True
            continue
        try:
            parsed = _parse(chunk_text)
        except (yaml.YAMLError, RecursionError, ValueError, OverflowError, TypeError) as exc:
            if not _undefined_alias(exc):
                yield chunk, None, [_yaml_error(exc, chunk)], False
                continue
            try:
                parsed = _parse(chunk_text, RecoveringLoader)
            except (yaml.YAMLError, RecursionError, ValueError, OverflowError, TypeError):
                yield chunk, None, [_yaml_error(exc, chunk)], False
                continue
            errors = _drop_undefined(parsed, chunk) or [_yaml_error(exc, chunk)]
            if parsed.data is None:
                yield chunk, parsed, errors, False
                continue
        if parsed.root is not None:
            chunk._root = parsed.root  # already composed: positions come free
        problem = None
        if parsed.data is not None:
            problem = check_shape(
                parsed.data,
                limits,
                aliases="&" in chunk_text and "*" in chunk_text,
                scalars=len(chunk_text) * 4 > limits.max_scalar_bytes,
            )
        if problem is not None:
            yield chunk, parsed, [*errors, _shape_error(problem, chunk)], False
            continue
        yield chunk, parsed, errors, True


def _shape_error(problem: tuple[str, str, FieldPath], chunk: _Chunk) -> LoadError:
    code, message, where = problem
    span = chunk.locate(where) or chunk.locate(()) or SourceSpan(chunk.path, chunk.first_line + 1, 1)
    return LoadError(message, span, code)


class _Dropped:
    def __repr__(self) -> str:
        return "DROPPED"


#: A ``kind: List`` item left out because it could not be read (its error is reported).
DROPPED: Any = _Dropped()


def _undefined_alias(exc: Exception) -> bool:
    return isinstance(exc, yaml.composer.ComposerError) and exc.problem == "found undefined alias"


def _drop_undefined(parsed: _Parsed, chunk: _Chunk) -> list[LoadError]:
    """Report each undefined alias; drop the List items holding one, or the whole document.

    kubectl reads a List's items as separate objects, so one broken item does not take the
    others with it; any other document holding an undefined alias is dropped whole.
    """
    data = parsed.data
    items = data.get("items") if isinstance(data, dict) and _is_list(data) else None
    if isinstance(items, list):
        errors = []
        for i, item in enumerate(items):
            found = _find_undefined(item)
            if found is not None:
                errors.append(_undefined_error(found, chunk))
                items[i] = DROPPED
        if errors:
            return errors
    found = _find_undefined(data)
    parsed.data = None
    return [_undefined_error(found, chunk)] if found is not None else []  # [] if none found


def _undefined_error(found: Undefined, chunk: _Chunk) -> LoadError:
    return LoadError("invalid YAML: found undefined alias", chunk.span(found.mark))


def _find_undefined(value: Any) -> Undefined | None:
    """The first :class:`Undefined` in a constructed value (shared objects visited once)."""
    stack, seen = [value], set()
    while stack:
        item = stack.pop()
        if isinstance(item, Undefined):
            return item
        if isinstance(item, dict | list) and id(item) not in seen:
            seen.add(id(item))
            stack.extend(reversed(list(item.values() if isinstance(item, dict) else item)))
            if isinstance(item, dict):
                stack.extend(k for k in item if isinstance(k, Undefined))
    return None


def _root_span(chunk: _Chunk, parsed: _Parsed) -> SourceSpan:
    # The root's position comes with the parse: no document is composed twice just for it.
    if parsed.mark is not None:
        return chunk.span(parsed.mark)
    return SourceSpan(chunk.path, chunk.first_line + 1, 1)


def load_text(
    text: str, name: str, *, limits: Limits = Limits(), start_index: int = 0
) -> LoadResult:
    """Parse one file's text into RawDocuments.

    Example:
        >>> r = load_text("apiVersion: v1\\nkind: Service\\nmetadata:\\n  name: a\\n", "a.yaml")
        >>> r.documents[0].data["kind"], str(r.documents[0].locate(("metadata", "name")))
        ('Service', 'a.yaml:4:3')
    """
    result = LoadResult()
    index = start_index
    objects = 0
    for chunk, parsed, errors, usable in _parsed_documents(text, name, limits):
        if parsed is not None and chunk is not None:
            for key_node in parsed.duplicates:
                result.diagnostics.append(
                    report("ML0006", span=chunk.span(key_node.start_mark), key=key_node.value)
                )
        result.errors.extend(errors)
        if not usable:
            continue
        assert chunk is not None and parsed is not None
        data = parsed.data
        if data is None:
            continue
        span0 = _root_span(chunk, parsed)
        if not isinstance(data, dict):
            result.diagnostics.append(
                report("ML0004", span=span0, reason=f"a {type(data).__name__}, not a mapping")
            )
            continue
        readings: dict[FieldPath, Reading] = {}
        if parsed.readings and parsed.root is not None:
            paths = _node_paths(parsed.root, {id(n) for n, _ in parsed.readings})
            readings = {paths[id(n)]: r for n, r in parsed.readings if id(n) in paths}
        elif parsed.paths:
            readings = dict(parsed.paths)
        marks = parsed.item_marks
        by_item: dict[FieldPath, dict[FieldPath, Reading]] | None = None
        for base, obj in _flatten(data):
            if obj is DROPPED:
                continue
            objects += 1
            if (
                len(result.documents) + start_index >= limits.max_documents
                or objects > limits.max_documents
            ):
                result.errors.append(
                    LoadError(
                        f"more than {limits.max_documents} documents (--max-documents)",
                        span0,
                        "ML0005",
                    )
                )
                return result
            if not base:
                own = dict(readings)
            else:  # a List item's own readings, grouped once (not a scan per item)
                if by_item is None:
                    by_item = {}
                    for p, r in readings.items():
                        by_item.setdefault(p[:2], {})[p[2:]] = r
                own = by_item.get(base, {})
            locator = _Locator(chunk, base, own)
            if marks is not None and base:  # an item's position without composing the List
                span = chunk.span(marks[base[1]])  # type: ignore[index]
            else:
                span = (locator(()) or span0) if base else span0
            if not isinstance(obj, dict):
                result.diagnostics.append(
                    report("ML0004", span=span, reason=f"a {type(obj).__name__}, not a mapping")
                )
                continue
            result.documents.append(RawDocument(obj, span, locator, index))
            index += 1
    return result


@dataclass(frozen=True, slots=True)
class YamlDocument:
    """One document of a YAML file that is not a manifest (a scenario, a dump): value and positions.

    ``locate(path)`` is the position of a field path (its key's, for mappings), or None.
    """

    data: Any
    span: SourceSpan
    locate: Callable[[FieldPath], SourceSpan | None]


def load_yaml_text(text: str, source: str, limits: Limits = Limits()) -> list[YamlDocument]:
    """Read any YAML stream with the loader's limits and scalar rules; empty documents are dropped.

    For files that are not Kubernetes manifests (lab scenarios, config dumps written as YAML):
    no ``kind: List`` flattening, no "not an object" check, any value at the top. Every limit of
    :func:`load_text` applies: alias bombs, recursive aliases, depth, scalar size, document
    count, NUL bytes.

    Raises:
        LoadError: at the first document that cannot be read, with its file:line:col.

    Example:
        >>> [d.data for d in load_yaml_text("a: on\\n---\\n---\\n[1, 0o17]\\n", "s.yaml")]
        [{'a': True}, [1, 15]]
        >>> try:
        ...     load_yaml_text("a: 1\\nb: &a [*a]\\n", "s.yaml")
        ... except LoadError as exc:
        ...     print(exc)
        s.yaml:2:1: error: recursive alias: this anchor's value contains itself [ML0001]
    """
    if len(text) > limits.max_file_bytes:
        raise LoadError(
            f"input is larger than {limits.max_file_bytes} bytes (--max-file-bytes)",
            SourceSpan(source, 1, 1),
            "ML0005",
        )
    out: list[YamlDocument] = []
    for chunk, parsed, errors, _ in _parsed_documents(text, source, limits):
        if errors:
            raise errors[0]
        assert chunk is not None and parsed is not None
        if parsed.data is not None:
            locator = _Locator(chunk, (), {})
            out.append(YamlDocument(parsed.data, _root_span(chunk, parsed), locator))
    return out


def _is_list(data: dict[str, Any]) -> bool:
    kind = data.get("kind")
    return isinstance(kind, str) and kind.endswith("List") and isinstance(data.get("items"), list)


def _flatten(data: dict[str, Any]) -> Iterator[tuple[FieldPath, Any]]:
    items = data.get("items")
    if _is_list(data) and isinstance(items, list):
        for i, item in enumerate(items):
            yield ("items", i), item
    else:
        yield (), data
