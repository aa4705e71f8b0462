"""The common YAML document built straight from libyaml's events, without composing nodes.

Layer: L2 (part of ``meshlens.loader``). Imports: loader.scalars, source, PyYAML.

PyYAML's C loader composes a node tree (calling back into Python to resolve every scalar's
tag), then constructs values from it with a generic, generator-based constructor. Most
manifests use none of what that generality is for: no anchors or aliases, no tags, no merge
keys, no duplicate keys. For them :func:`parse_fast` reads the C parser's events and builds the
same dicts, lists and scalars in one loop, with the same YAML 1.1 resolution (the patterns of
:class:`~meshlens.loader.scalars.Loader`, and its readings), and it checks the depth limit as
it goes. It returns None at the first thing it does not handle: an anchor, an alias, a tag, a
merge key, a key that is a mapping or a list, two keys with the same value, a syntax error, a
document nested deeper than the limit, or a second document. The caller then reads the
document the general way, which gives the same values and the same errors as before (the
fast path never reports anything itself). Positions stay lazy: only the start of each item of
a top-level ``items`` list is kept, so a ``kind: List`` is never composed just to find its
items' lines.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml
from yaml.events import (
    AliasEvent,
    DocumentStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
)

from meshlens.loader.scalars import Loader, Reading, bool_reading, number_reading
from meshlens.source import FieldPath

_Parser: Any = getattr(getattr(yaml, "_yaml", None), "CParser", None)

_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_NUMBER = "tag:meshlens,2024:number"

#: The Loader's implicit resolvers by first character ("" for the empty scalar), exactly the
#: table PyYAML's ``Resolver.resolve`` consults for a plain scalar.
_RESOLVERS: dict[str, list[tuple[str, Any]]] = {
    k: list(v) for k, v in Loader.yaml_implicit_resolvers.items() if k is not None
}
assert None not in Loader.yaml_implicit_resolvers and not Loader.yaml_path_resolvers


class _Fallback(Exception):
    """The document needs the general loader."""


@dataclass(slots=True)
class FastDocument:
    """One document read by :func:`parse_fast`.

    ``readings`` are (field path, reading) in the order the general constructor records them
    (breadth first: by the depth of the holding mapping or list, then document order); a
    reading of a mapping key is at the mapping's path, under the key's text, as
    ``documents._node_paths`` finds it. ``item_marks`` are the start marks of the items of
    the root mapping's ``items`` list, if it has one. ``long_scalar`` is True if a scalar is
    longer than the ``max_chars`` given to :func:`parse_fast` (its value may then be over the
    byte limit: the caller measures it).
    """

    data: Any
    mark: Any
    readings: list[tuple[FieldPath, Reading]]
    item_marks: list[Any] | None
    long_scalar: bool = False


def _path(frames: list[tuple[Any, bool, Any, Any]], top: Any, is_map: bool, keytext: Any,
          is_key: bool) -> FieldPath:
    parts: list[str | int] = []
    for container, frame_is_map, _, frame_keytext in frames[1:]:
        parts.append(frame_keytext if frame_is_map else len(container))
    if not is_key:
        parts.append(keytext if is_map else len(top))
    return tuple(parts)


def parse_fast(text: str, max_depth: int, max_chars: int = -1) -> FastDocument | None:
    """The document in ``text`` (one document), or None if the general loader must read it.

    ``max_chars``: scalars longer than this set ``long_scalar`` (-1: never).

    Example:
        >>> d = parse_fast("a: [1, on, '2']\\nitems: [x]\\n", 64)
        >>> d.data, d.readings, [m.column for m in d.item_marks]
        ({'a': [1, True, '2'], 'items': ['x']}, [(('a', 1), Reading(text='on', value=True, \
form='boolean'))], [8])
        >>> parse_fast("a: &x 1\\nb: *x\\n", 64) is None
        True
    """
    if _Parser is None:
        return None
    parser = _Parser(text)
    try:
        return _build(parser.get_event, max_depth, max_chars)
    except (_Fallback, yaml.YAMLError, RecursionError, ValueError, OverflowError, TypeError):
        return None
    finally:
        parser.dispose()


_KEY = object()  # a mapping waiting for its next key


def _build(get: Any, max_depth: int, max_chars: int) -> FastDocument:  # noqa: C901 - one event loop, kept flat
    get()  # StreamStartEvent
    event = get()
    if event.__class__ is StreamEndEvent:
        return FastDocument(None, None, [], None)
    if event.__class__ is not DocumentStartEvent:
        raise _Fallback
    readings: list[tuple[int, FieldPath, Reading]] = []
    frames: list[tuple[Any, bool, Any, Any]] = []
    # The container being filled: the list or dict, whether it is a dict, its pending key
    # (_KEY while it waits for one) and that key's text.
    top: Any = None
    is_map = False
    key: Any = _KEY
    keytext: Any = None
    root: Any = None
    root_mark: Any = None
    items: Any = _KEY  # the root mapping's "items" list, once it starts
    item_marks: list[Any] | None = None
    resolvers = _RESOLVERS
    long_scalar = False
    while True:
        event = get()
        cls = event.__class__
        if cls is ScalarEvent:
            if event.anchor is not None or event.tag is not None:
                raise _Fallback
            value = event.value
            if max_chars >= 0 and len(value) > max_chars:
                long_scalar = True
            if top is items:
                item_marks.append(event.start_mark)  # type: ignore[union-attr]
            if event.implicit[0] and (value[:1] in resolvers if value else True):
                text = value
                reading = None
                for tag, pattern in resolvers[value[:1]]:
                    if pattern.match(text):
                        if tag == _BOOL:
                            value, reading = bool_reading(text)
                        elif tag == _NULL:
                            value = None
                        elif tag == _NUMBER:
                            value, reading = number_reading(text)
                        else:  # a merge key
                            raise _Fallback
                        break
                if reading is not None:
                    is_key = is_map and key is _KEY
                    path = _path(frames, top, is_map, keytext, is_key)
                    readings.append((len(frames) - 1, path, reading))
                if is_map and key is _KEY:
                    if value in top:
                        raise _Fallback
                    key, keytext = value, text
                    continue
            elif is_map and key is _KEY:
                if value in top:
                    raise _Fallback
                key = keytext = value
                continue
        elif cls is MappingStartEvent or cls is SequenceStartEvent:
            if event.anchor is not None or event.tag is not None or (is_map and key is _KEY):
                raise _Fallback
            if len(frames) > max_depth:
                raise _Fallback  # the general loader reports it, as it always has
            if top is items:
                item_marks.append(event.start_mark)  # type: ignore[union-attr]
            elif top is None:
                root_mark = event.start_mark
            frames.append((top, is_map, key, keytext))
            if cls is MappingStartEvent:
                top, is_map, key = {}, True, _KEY
            else:
                if len(frames) == 2 and is_map and keytext == "items":
                    items, item_marks = [], []
                    top = items
                else:
                    top = []
                is_map = False
            continue
        elif cls is MappingEndEvent or cls is SequenceEndEvent:
            value = top
            top, is_map, key, keytext = frames.pop()
        elif cls is AliasEvent:
            raise _Fallback
        else:  # DocumentEndEvent
            break
        if top is None:
            root = value
            if root_mark is None:
                root_mark = event.start_mark
        elif is_map:
            top[key] = value
            key = _KEY
        else:
            top.append(value)
    if get().__class__ is not StreamEndEvent:
        raise _Fallback  # a second document in one chunk: the general loader says so
    readings.sort(key=lambda r: r[0])  # the general constructor's breadth-first order
    if item_marks is not None and not (isinstance(root, dict) and root.get("items") is items):
        item_marks = None
    return FastDocument(root, root_mark, [(p, r) for _, p, r in readings], item_marks, long_scalar)
