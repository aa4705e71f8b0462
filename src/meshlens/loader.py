"""Read manifest files into RawDocuments, with lazy file:line:col for every field.

Layer: L2. Imports: source, diagnostics, errors, PyYAML.

This is the only module that reads manifest files. It splits multi-document streams, flattens
``kind: List`` (what ``kubectl get -o yaml`` prints), and keeps, for each object, a locator that
finds the position of any field path. Positions cost nothing until asked for: the document's
text is composed into PyYAML nodes (which carry marks) only when a diagnostic or an explanation
needs a line number. A bare parse with the C loader is the floor we measure against.

**Reading YAML as kubectl does.** ``kubectl apply -f`` converts YAML to JSON with
``sigs.k8s.io/yaml`` (goyaml.v2), which is YAML 1.1-flavoured, and so are we (:class:`_Loader`):
``y``/``n``/``yes``/``no``/``on``/``off`` are booleans, ``0755`` is the octal integer 493,
``1_000`` is 1000, ``0o17``/``0b101``/``0x1F`` are integers, ``1e3`` and ``08`` are floats; but
timestamps, ``1:30`` (YAML 1.1 base 60) and ``=`` stay strings, unknown tags (``!foo``) are read
by node kind, and ``!!binary`` decodes to a string. Plain scalars that YAML 1.2 would read
differently (the YAML 1.1 booleans and octal/binary/underscore integers) are recorded as
:class:`Reading`\\s on the document's locator (``locator.readings``: field path → reading), so
the decoder can explain "expected string, got boolean" or warn about a port written ``0755``.

**Duplicate keys** are reported as ML0006 warnings at the second key, and the last value wins:
that is what ``kubectl apply -f`` does (goyaml.v2 keeps the last value and the JSON it sends has
no duplicate left for the API server's strict field validation to see; kubernetes#89303,
#125885). ``kubectl apply -k`` (kustomize's YAML 1.2 reader) would reject the file instead.

**Hostile input** gets a clear error within bounded time and memory, each limit in
:class:`Limits` (and a ``meshlens compile`` option): file size, document count, nesting depth
(libyaml itself stops at 1000), scalar size, and alias expansion — a "billion laughs" document is
measured on the shared object graph (O(written nodes)) before anything walks it expanded;
recursive aliases are rejected. NUL bytes, control characters, non-UTF-8 bytes and tab
indentation are errors with file:line:col. UTF-16 with a byte-order mark is decoded, as kubectl
does.
"""

from __future__ import annotations

import base64
import binascii
import math
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

_Base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_DOC_MARKER = re.compile(r"^---(?=\s|$)", re.MULTILINE)
_EXTENSIONS = (".yaml", ".yml", ".json")
MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Limits:
    """Input limits; each can be raised from the CLI (``meshlens compile --max-...``).

    ``max_alias_nodes`` bounds how many nodes aliases (``*name``) may add to one document when
    expanded; a real manifest stays far below it, a "billion laughs" bomb goes far above.
    """

    max_file_bytes: int = 64 * MIB
    max_documents: int = 200_000
    max_depth: int = 64
    max_scalar_bytes: int = 3 * MIB  # the API server's request limit: no object holds more
    max_alias_nodes: int = 1_000_000


@dataclass(slots=True)
class LoadResult:
    documents: list[RawDocument] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    errors: list[LoadError] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Reading:
    """A plain scalar read the YAML 1.1 way (as kubectl reads it), which YAML 1.2 reads otherwise.

    Example:
        >>> print(Reading("on", True, "boolean").explain())
        on was read as the boolean true (YAML 1.1); quote it ("on") for a string
    """

    text: str
    value: Any
    form: str  # "boolean", "octal", "binary" or "digit separators"

    def explain(self) -> str:
        quoted = f'"{self.text}"'
        if self.form == "boolean":
            return (
                f"{self.text} was read as the boolean {str(self.value).lower()} (YAML 1.1); "
                f"quote it ({quoted}) for a string"
            )
        if self.form == "octal":
            decimal = self.text.lstrip("+-").lstrip("0") or "0"
            sign = "-" if self.text.startswith("-") else ""
            return (
                f"{self.text} was read as the integer {self.value} (YAML 1.1 octal); write "
                f"{sign}{decimal} for the decimal number, or quote it ({quoted}) for a string"
            )
        return (
            f"{self.text} was read as the integer {self.value} (YAML 1.1 {self.form}); quote "
            f"it ({quoted}) for a string"
        )


# --- the YAML reader (kubectl's resolution rules) -------------------------------------------------

_NUMBER_TAG = "tag:meshlens,2024:number"
_TRUE = frozenset({"y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"})
_BOOLS_1_2 = frozenset({"true", "True", "TRUE", "false", "False", "FALSE"})
_SPECIAL_FLOATS = {
    ".nan": math.nan,
    ".NaN": math.nan,
    ".NAN": math.nan,
    **{
        f"{s}{v}": (-math.inf if s == "-" else math.inf)
        for s in ("", "+", "-")
        for v in (".inf", ".Inf", ".INF")
    },
}
_GO_INT = re.compile(r"[-+]?(?:0[xX][0-9a-fA-F]+|0[bB][01]+|0[oO][0-7]+|0[0-7]*|[1-9][0-9]*)")
_YAML_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?")
_DOT_FLOAT = re.compile(r"\.[0-9]+(?:[eE][-+]?[0-9]+)?")
_INT64 = 1 << 63


def _go_number(text: str) -> Any:
    """goyaml.v2's ``resolve`` for a plain scalar starting with a digit, sign or dot.

    Example:
        >>> [_go_number(t) for t in ("0755", "1_000", "0o17", "0x1F", "08", "1e3", "1.2.3", ".inf")]
        [493, 1000, 15, 31, 8.0, 1000.0, '1.2.3', inf]
    """
    if text in _SPECIAL_FLOATS:
        return _SPECIAL_FLOATS[text]
    if text.startswith("."):
        return float(text) if _DOT_FLOAT.fullmatch(text) else text
    plain = text.replace("_", "")
    if _GO_INT.fullmatch(plain) and len(plain) <= 70:
        sign = -1 if plain.startswith("-") else 1
        body = plain.lstrip("+-")
        value = (
            int(body, 8)
            if len(body) > 1 and body[0] == "0" and body[1] in "01234567"
            else int(body, 0)
        )
        value *= sign
        if -_INT64 <= value < _INT64 or (
            0 <= value < (1 << 64) and not plain.startswith(("-", "+"))
        ):
            return value
    if _YAML_FLOAT.fullmatch(plain):
        number = float(plain)
        return number if math.isfinite(number) else text  # Go's ParseFloat: out of range
    return text


class _Loader(_Base):  # type: ignore[misc,valid-type]
    """PyYAML's safe (C) loader with goyaml.v2's scalar resolution, recording hazards."""

    yaml_implicit_resolvers: dict[Any, list[tuple[str, re.Pattern[str]]]] = {}

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.readings: list[tuple[yaml.Node, Reading]] = []
        self.duplicates: list[yaml.Node] = []

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        own = node.value  # flatten_mapping deletes merge keys from this very list
        mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        if len(node.value) != len(own) or len(mapping) < len(own):
            seen: set[tuple[str, str]] = set()
            for key_node, _ in own:
                if isinstance(key_node, yaml.ScalarNode):
                    key = (key_node.tag, key_node.value)
                    if key in seen:
                        self.duplicates.append(key_node)
                    seen.add(key)
        return mapping


def _construct_bool(loader: _Loader, node: yaml.ScalarNode) -> bool:
    value = node.value in _TRUE
    if node.value not in _BOOLS_1_2 and not node.style:  # plain: None (Python) or "" (C parser)
        loader.readings.append((node, Reading(node.value, value, "boolean")))
    return value


def _construct_number(loader: _Loader, node: yaml.ScalarNode) -> Any:
    text = node.value
    value = _go_number(text)
    if isinstance(value, int):
        body = text.lstrip("+-")
        form = (
            "octal"
            if len(body) > 1 and body[0] == "0" and body[1] in "01234567_"
            else "binary"
            if body[:2] in ("0b", "0B")
            else "digit separators"
            if "_" in text
            else ""
        )
        if form:
            loader.readings.append((node, Reading(text, value, form)))
    return value


def _construct_binary(loader: _Loader, node: yaml.ScalarNode) -> str:
    try:
        data = base64.b64decode("".join(str(node.value).split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise yaml.constructor.ConstructorError(
            None, None, f"failed to decode base64 data: {exc}", node.start_mark
        ) from exc
    return data.decode("utf-8", "replace")


def _construct_by_kind(loader: _Loader, node: yaml.Node) -> Any:
    """An unknown tag (``!foo``): goyaml.v2 ignores it and reads the node by its kind."""
    if isinstance(node, yaml.MappingNode):
        return loader.construct_yaml_map(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_yaml_seq(node)
    return str(node.value)


def _construct_pairs(loader: _Loader, node: yaml.Node) -> Iterator[list[Any]]:
    data: list[Any] = []
    yield data
    if isinstance(node, yaml.SequenceNode):
        data.extend(loader.construct_object(item, deep=True) for item in node.value)


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(
        r"^(?:y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE"
        r"|on|On|ON|off|Off|OFF)$"
    ),
    list("yYnNtTfFoO"),
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""]
)
_Loader.add_implicit_resolver(
    _NUMBER_TAG, re.compile(r"^[-+.0-9][-+.0-9a-zA-Z_]*$"), list("-+.0123456789")
)
_Loader.add_implicit_resolver("tag:yaml.org,2002:merge", re.compile(r"^(?:<<)$"), ["<"])
_Loader.add_constructor("tag:yaml.org,2002:bool", _construct_bool)
_Loader.add_constructor(_NUMBER_TAG, _construct_number)
_Loader.add_constructor("tag:yaml.org,2002:timestamp", lambda loader, node: str(node.value))
_Loader.add_constructor("tag:yaml.org,2002:binary", _construct_binary)
_Loader.add_constructor("tag:yaml.org,2002:set", _Loader.construct_yaml_map)
_Loader.add_constructor("tag:yaml.org,2002:omap", _construct_pairs)
_Loader.add_constructor("tag:yaml.org,2002:pairs", _construct_pairs)
_Loader.add_constructor(None, _construct_by_kind)


@dataclass(slots=True)
class _Parsed:
    data: Any
    mark: Any  # where the document's root node starts
    root: yaml.Node | None  # kept only when readings or duplicate keys need positions
    readings: list[tuple[yaml.Node, Reading]]
    duplicates: list[yaml.Node]


def _parse(text: str) -> _Parsed:
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
        keep = node if loader.readings or loader.duplicates else None
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
                self._root = yaml.compose(self.text, Loader=_Loader)
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


# --- structure limits -----------------------------------------------------------------------------


def _children(item: Any) -> Iterable[Any]:
    return item.values() if isinstance(item, dict) else item


def _too_deep(value: Any, limit: int) -> bool:
    """True if ``value`` nests deeper than ``limit`` (iterative; shared objects visited once)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    seen: set[int] = set()
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        if id(item) in seen:
            continue
        seen.add(id(item))
        stack.extend(
            (child, depth + 1) for child in _children(item) if isinstance(child, dict | list)
        )
    return False


def _scalar_bytes(value: Any) -> int:
    if isinstance(value, str):
        return len(value) if value.isascii() else len(value.encode("utf-8", "surrogatepass"))
    return 0


def _find(root: Any, predicate: Any) -> FieldPath:
    """The path of the first value (breadth first) for which ``predicate`` holds, else ()."""
    queue: list[tuple[Any, FieldPath]] = [(root, ())]
    seen: set[int] = set()
    for item, path in queue:
        if predicate(item):
            return path
        if isinstance(item, dict | list) and id(item) not in seen:
            seen.add(id(item))
            pairs = item.items() if isinstance(item, dict) else enumerate(item)
            for key, child in pairs:
                if predicate(key):
                    return path + (key,) if isinstance(key, str | int) else path
                queue.append((child, path + (key,) if isinstance(key, str | int) else path))
    return ()


def _check_shape(
    data: Any, limits: Limits, *, aliases: bool, scalars: bool
) -> tuple[str, str, FieldPath] | None:
    """Check depth, scalar sizes and alias expansion; return (code, message, path) or None.

    Without aliases the object graph is a tree and one walk decides. With aliases, sizes are
    computed on the shared graph with memoization, so a "billion laughs" costs what is written,
    not what it expands to.
    """
    if not isinstance(data, dict | list):
        big = _scalar_bytes(data)
        if big > limits.max_scalar_bytes:
            return (
                "ML0005",
                f"a scalar of {big} bytes is larger than {limits.max_scalar_bytes} "
                "bytes (--max-scalar-bytes)",
                (),
            )
        return None
    if not aliases:
        if _too_deep(data, limits.max_depth):
            return "ML0005", _depth_message(limits), _deep_path(data, limits.max_depth)
        if scalars:
            return _big_scalar(data, limits)
        return None
    memo: dict[int, tuple[int, int]] = {}  # id → (height, expanded node count)
    written = 0
    stack: list[tuple[Any, bool]] = [(data, False)]
    on_path: set[int] = set()
    while stack:
        item, done = stack.pop()
        oid = id(item)
        if done:
            on_path.discard(oid)
            height, size = 0, 1
            written += 1
            for child in _children(item):
                if isinstance(child, dict | list):
                    ch, cn = memo[id(child)]
                    height, size = max(height, ch), size + cn
                else:
                    size += 1
                    written += 1
            memo[oid] = (height + 1, size)
            continue
        if oid in memo:
            continue
        on_path.add(oid)
        stack.append((item, True))
        for child in _children(item):
            if isinstance(child, dict | list):
                if id(child) in on_path:
                    path = _find(data, lambda x, c=child: x is c)
                    return "ML0001", "recursive alias: this anchor's value contains itself", path
                if id(child) not in memo:
                    stack.append((child, False))
    height, expanded = memo[id(data)]
    if height - 1 > limits.max_depth:
        return "ML0005", _depth_message(limits), _deep_path(data, limits.max_depth)
    if expanded - written > limits.max_alias_nodes:
        node: Any = data
        path: FieldPath = ()
        while True:
            pairs = node.items() if isinstance(node, dict) else enumerate(node)
            big = [
                (k, c)
                for k, c in pairs
                if isinstance(c, dict | list) and memo[id(c)][1] > limits.max_alias_nodes
            ]
            if not big or not isinstance(big[0][0], str | int):
                break
            path, node = path + (big[0][0],), big[0][1]
        return (
            "ML0005",
            f"aliases expand this document from {written} written nodes to "
            f"{expanded}, more than {limits.max_alias_nodes} extra nodes "
            '(--max-alias-nodes): a YAML alias bomb ("billion laughs")?',
            path,
        )
    return _big_scalar(data, limits) if scalars else None


def _depth_message(limits: Limits) -> str:
    return f"document nests deeper than {limits.max_depth} levels (--max-depth)"


def _deep_path(data: Any, limit: int) -> FieldPath:
    queue: list[tuple[Any, FieldPath]] = [(data, ())]
    seen: set[int] = set()
    for item, path in queue:
        if len(path) > limit:
            return path
        if isinstance(item, dict | list) and id(item) not in seen:
            seen.add(id(item))
            pairs = item.items() if isinstance(item, dict) else enumerate(item)
            queue.extend(
                (c, path + (k,))
                for k, c in pairs
                if isinstance(c, dict | list) and isinstance(k, str | int)
            )
    return ()


def _big_scalar(data: Any, limits: Limits) -> tuple[str, str, FieldPath] | None:
    stack, seen, biggest = [data], set(), 0
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        for value in (*item.keys(), *item.values()) if isinstance(item, dict) else item:
            if isinstance(value, dict | list):
                stack.append(value)
            elif isinstance(value, str):
                biggest = max(biggest, _scalar_bytes(value))
    if biggest <= limits.max_scalar_bytes:
        return None
    path = _find(data, lambda x: isinstance(x, str) and _scalar_bytes(x) > limits.max_scalar_bytes)
    return (
        "ML0005",
        f"a scalar of {biggest} bytes is larger than {limits.max_scalar_bytes} bytes "
        "(--max-scalar-bytes)",
        path,
    )


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


def _decode(data: bytes, name: str) -> str:
    if data[:2] in (b"\xff\xfe", b"\xfe\xff") and not data.startswith(b"\xff\xfe\x00\x00"):
        # kubectl reads UTF-16 with a byte-order mark (cli-runtime's BOMOverride decoder).
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise LoadError(
                f"file starts with a UTF-16 byte-order mark but is not UTF-16 text "
                f"(at offset {exc.start})",
                SourceSpan(name, 1, 1),
            ) from exc
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise LoadError(
            f"file is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})",
            SourceSpan(name, line, col),
        ) from exc


def _nul_error(data: bytes, name: str) -> LoadError:
    pos = data.index(b"\x00")
    line = data.count(b"\n", 0, pos) + 1
    col = len(data[data.rfind(b"\n", 0, pos) + 1 : pos].decode("utf-8", "replace")) + 1
    return LoadError(
        "file contains a NUL byte: not a YAML file (a binary file?)", SourceSpan(name, line, col)
    )


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
    if "\x00" in text:
        pos = text.index("\x00")
        line = text.count("\n", 0, pos) + 1
        col = pos - (text.rfind("\n", 0, pos) + 1) + 1
        result.errors.append(
            LoadError(
                "file contains a NUL byte: not a YAML file (a binary file?)",
                SourceSpan(name, line, col),
            )
        )
        return result
    if "\r" in text or "\x85" in text:
        # CR, CRLF and NEL are line breaks to YAML (libyaml reads each as "\n"): make them
        # line breaks to our line counts too.
        text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x85", "\n")
    index = start_index
    objects = 0
    for chunks, (first_line, chunk_text) in enumerate(_split(text), 1):
        chunk = _Chunk(chunk_text, name, first_line)
        if chunks > limits.max_documents:
            result.errors.append(
                LoadError(
                    f"more than {limits.max_documents} documents (--max-documents)",
                    SourceSpan(name, first_line + 1, 1),
                    "ML0005",
                )
            )
            return result
        try:
            parsed = _parse(chunk_text)
        except (yaml.YAMLError, RecursionError, ValueError, OverflowError, TypeError) as exc:
            result.errors.append(_yaml_error(exc, chunk))
            continue
        data = parsed.data
        if parsed.root is not None:
            chunk._root = parsed.root  # already composed: positions come free
        for key_node in parsed.duplicates:
            result.diagnostics.append(
                report("ML0006", span=chunk.span(key_node.start_mark), key=key_node.value)
            )
        if data is None:
            continue
        problem = _check_shape(
            data,
            limits,
            aliases="&" in chunk_text and "*" in chunk_text,
            scalars=len(chunk_text) * 4 > limits.max_scalar_bytes,
        )
        if problem is not None:
            code, message, where = problem
            span = chunk.locate(where) or chunk.locate(()) or SourceSpan(name, first_line + 1, 1)
            result.errors.append(LoadError(message, span, code))
            continue
        # The root's position comes with the parse: no document is composed twice just for it.
        span0 = (
            chunk.span(parsed.mark)
            if parsed.mark is not None
            else SourceSpan(name, first_line + 1, 1)
        )
        if not isinstance(data, dict):
            result.diagnostics.append(
                report("ML0004", span=span0, reason=f"a {type(data).__name__}, not a mapping")
            )
            continue
        readings: dict[FieldPath, Reading] = {}
        if parsed.readings and parsed.root is not None:
            paths = _node_paths(parsed.root, {id(n) for n, _ in parsed.readings})
            readings = {paths[id(n)]: r for n, r in parsed.readings if id(n) in paths}
        for base, obj in _flatten(data):
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
            own = {p[len(base) :]: r for p, r in readings.items() if p[: len(base)] == base}
            locator = _Locator(chunk, base, own)
            span = (locator(()) or span0) if base else span0
            if not isinstance(obj, dict):
                result.diagnostics.append(
                    report("ML0004", span=span, reason=f"a {type(obj).__name__}, not a mapping")
                )
                continue
            result.documents.append(RawDocument(obj, span, locator, index))
            index += 1
    return result


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
                            SourceSpan(name, 1, 1),
                            "ML0005",
                        )
                    with open(path, "rb") as fh:
                        raw = fh.read(limits.max_file_bytes + 1)
                if len(raw) > limits.max_file_bytes:
                    raise LoadError(
                        f"input is larger than {limits.max_file_bytes} bytes (--max-file-bytes)",
                        SourceSpan(name, 1, 1),
                        "ML0005",
                    )
                if b"\x00" in raw and raw[:2] not in (b"\xff\xfe", b"\xfe\xff"):
                    raise _nul_error(raw, name)
                text = _decode(raw, name)
            except LoadError as exc:
                result.errors.append(exc)
                continue
            except OSError as exc:
                result.errors.append(
                    LoadError(
                        f"cannot read file: {exc.strerror or exc}", SourceSpan(path, 1, 1), "ML0002"
                    )
                )
                continue
            part = load_text(text, name, limits=limits, start_index=len(result.documents))
            result.documents.extend(part.documents)
            result.diagnostics.extend(part.diagnostics)
            result.errors.extend(part.errors)
    return result


def load_mesh_config(path: str) -> tuple[RawDocument | None, list[LoadError]]:
    """Load a MeshConfig: a MeshConfig document, or the ``istio`` ConfigMap with a ``mesh`` key.

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
            shifted = [
                LoadError(
                    e.message,
                    SourceSpan(
                        path,
                        key_span.line + (e.span.line if e.span else 1),
                        e.span.col if e.span else 1,
                    ),
                )
                for e in errs
            ]
            return None, shifted
        mesh = inner.documents[0]
        base = mesh.locator

        def locate(p: FieldPath) -> SourceSpan | None:
            s = base(p) if base else None
            return SourceSpan(path, key_span.line + s.line, s.col + key_span.col + 1) if s else None

        return RawDocument(mesh.data, key_span, locate), []
    return doc, []
