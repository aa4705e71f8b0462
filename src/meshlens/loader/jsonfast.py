"""A JSON document (what ``kubectl get -o json`` prints) read with the json module's C scanner.

Layer: L2 (part of ``meshlens.loader``). Imports: loader.fast, the json module (no PyYAML).

JSON is YAML, and kubectl reads a ``.json`` file with its YAML reader, so the values must be
the ones :mod:`~meshlens.loader.fast` (libyaml's events) gives. They are, for the JSON this
path accepts, and it accepts only that: printable ASCII without tabs or backslashes (so every
string is read verbatim by both, with no escape to interpret), no key longer than libyaml's
1024-character simple-key limit or separated from its colon by a line break, integers within
goyaml's 64-bit range and finite floats (``1e400`` is a string to goyaml), no duplicate key (the
general loader reports it) and no nesting deeper than the limit. Anything else returns None and
the document is read the YAML way. A ``kind: List`` export's items are scanned one by one, so
each item's position comes with the read.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from typing import Any, NamedTuple

from meshlens.loader.fast import FastDocument

_LOOKS_JSON = re.compile(r"(?:---[ ]*\n)?[ \n]*\{")  # a document marker line may come first
_MARKER = re.compile(r"---[ ]*\n")
_UNSAFE = re.compile(r'[^\x20-\x5b\x5d-\x7e\n]')  # anything but printable ASCII less "\", or \n
_KEY_TROUBLE = re.compile(r'"[^"]{1000,}"[ \n]*:|"[ \n]*\n[ \n]*:|"[ \n]{20,}:')
_STRING = re.compile(r'"[^"]*"')
_BRACKETS = {ord("{"): 1, ord("["): 1, ord("}"): -1, ord("]"): -1}
_KEEP_BRACKETS = str.maketrans("", "", "".join(chr(c) for c in range(128) if c not in _BRACKETS))
_WS = re.compile(r"[ \n]*")
_INT64 = 1 << 63


class _Fallback(Exception):
    """The document needs the YAML reader."""


class Mark(NamedTuple):
    """A position, as libyaml's marks give it: 0-based line and column."""

    line: int
    column: int


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise _Fallback  # a duplicate key: reported by the general loader
    return out


def _int(text: str) -> int:
    value = int(text)
    if not -_INT64 <= value < 2 * _INT64:
        raise _Fallback  # goyaml reads it as a float
    return value


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Fallback  # goyaml keeps it as a string
    return value


def _constant(text: str) -> Any:
    raise _Fallback  # NaN, Infinity: not JSON, and strings to goyaml


_DECODER = json.JSONDecoder(object_pairs_hook=_pairs, parse_int=_int, parse_float=_float,
                            parse_constant=_constant)
_scan = _DECODER.scan_once
_scanstring: Any = json.decoder.scanstring


def looks_like_json(text: str) -> bool:
    """True if ``text`` starts (after a ``---`` line and blank lines) with ``{``."""
    return _LOOKS_JSON.match(text) is not None


def parse_json(text: str, max_depth: int, max_chars: int = -1) -> FastDocument | None:
    """The JSON object in ``text``, as :func:`~meshlens.loader.fast.parse_fast` would read it,
    or None if the YAML reader must read it (see the module docstring).

    Example:
        >>> d = parse_json('{"kind": "List", "items": [{"a": 1}, 2.5]}', 64)
        >>> d.data, d.mark, [m.column for m in d.item_marks]
        ({'kind': 'List', 'items': [{'a': 1}, 2.5]}, Mark(line=0, column=0), [27, 37])
        >>> parse_json('{"a": 1, "a": 2}', 64) is None
        True
    """
    if _UNSAFE.search(text) or _KEY_TROUBLE.search(text):
        return None
    structure = _STRING.sub("", text).translate(_KEEP_BRACKETS)
    if structure and max(itertools.accumulate(map(_BRACKETS.__getitem__, map(ord, structure)))) \
            > max_depth + 1:
        return None  # the general loader reports the depth, at its place
    try:
        return _read(text, max_chars)
    except (_Fallback, StopIteration, ValueError, IndexError, RecursionError):
        return None


def _read(text: str, max_chars: int) -> FastDocument:
    ws = _WS.match
    marker = _MARKER.match(text)
    pos = ws(text, marker.end() if marker else 0).end()
    start = pos
    pos = ws(text, pos + 1).end()
    pairs: list[tuple[str, Any]] = []
    items: Any = None
    offsets: list[int] = []
    if text[pos] == "}":
        pos += 1
    else:
        while True:
            if text[pos] != '"':
                raise _Fallback
            key, pos = _scanstring(text, pos + 1, True)
            pos = ws(text, pos).end()
            if text[pos] != ":":
                raise _Fallback
            pos = ws(text, pos + 1).end()
            if key == "items" and text[pos] == "[":
                items, offsets, pos = _items(text, pos)
                value: Any = items
            else:
                value, pos = _scan(text, pos)
            pairs.append((key, value))
            pos = ws(text, pos).end()
            if text[pos] == ",":
                pos = ws(text, pos + 1).end()
            elif text[pos] == "}":
                pos += 1
                break
            else:
                raise _Fallback
    if ws(text, pos).end() != len(text):
        raise _Fallback  # something after the object: the YAML reader says what
    root = _pairs(pairs)
    long_scalar = max_chars >= 0 and re.search(f'"[^"]{{{max_chars + 1},}}"', text) is not None
    marks = None
    if items is not None and root.get("items") is items:
        marks = _marks(text, offsets)
    return FastDocument(root, _marks(text, [start])[0], [], marks, long_scalar)


def _items(text: str, pos: int) -> tuple[list[Any], list[int], int]:
    """The list starting at ``pos`` (a ``[``), each item's offset, and the offset after it."""
    ws = _WS.match
    items: list[Any] = []
    offsets: list[int] = []
    pos = ws(text, pos + 1).end()
    if text[pos] == "]":
        return items, offsets, pos + 1
    while True:
        offsets.append(pos)
        value, pos = _scan(text, pos)
        items.append(value)
        pos = ws(text, pos).end()
        if text[pos] == ",":
            pos = ws(text, pos + 1).end()
        elif text[pos] == "]":
            return items, offsets, pos + 1
        else:
            raise _Fallback


def _marks(text: str, offsets: list[int]) -> list[Mark]:
    """Line and column of increasing offsets (ASCII text: a column is a character)."""
    out = []
    line, last, line_start = 0, 0, 0
    for pos in offsets:
        breaks = text.count("\n", last, pos)
        if breaks:
            line += breaks
            line_start = text.rfind("\n", last, pos) + 1
        out.append(Mark(line, pos - line_start))
        last = pos
    return out
