"""Write a JSON document piece by piece, as its parts are produced: the same bytes as one dump.

Layer: L5 (inside emit). Imports: orjson, PyYAML (each only in the writer that needs it).

A document to stream is a tree of :class:`Branch` (a dict written key by key) and :class:`Items`
(a list written item by item, from any iterable, e.g. a generator that converts one resource at a
time). Every other value is a leaf, serialized whole. A key whose value is an empty ``Items`` is
left out, as protobuf's JSON mapping leaves out an empty repeated field; it is known to be empty
only once its first item is asked for, so a writer looks one item ahead.

:func:`write_json` gives exactly ``orjson.dumps(materialize(tree), option=OPT_INDENT_2)``; it
serializes each leaf with orjson and indents it to its depth (a JSON text has no raw newline
inside a string, so re-indenting is a replacement of ``\\n``). :func:`write_yaml` gives exactly
``yaml.dump(materialize(tree), Dumper=NoAliases, sort_keys=False, width=1000)``: it feeds
PyYAML's own emitter the events of the open containers and lets the representer serialize each
leaf, so columns, quoting and line folding are the emitter's. Memory stays that of one leaf.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any

import yaml


class Branch(dict[str, Any]):
    """A dict written key by key; its values may be :class:`Items` or other branches."""


class Items:
    """A list produced item by item (read once)."""

    def __init__(self, items: Iterable[Any]) -> None:
        self._items = iter(items)

    def __iter__(self) -> Iterator[Any]:
        return self._items

    def nonempty(self) -> Items | None:
        """This list, or None if it has no item (the first item is read ahead and kept)."""
        try:
            head = next(self._items)
        except StopIteration:
            return None
        return Items(itertools.chain((head,), self._items))


def _present(value: Any) -> Any:
    """``value``, with an ``Items`` read ahead; None when it is an empty ``Items`` (left out)."""
    return value.nonempty() if isinstance(value, Items) else value


def materialize(tree: Any) -> Any:
    """The plain dicts and lists the tree stands for (for callers that want the whole)."""
    if isinstance(tree, Branch):
        out = {}
        for key, value in tree.items():
            value = _present(value)
            if value is not None:
                out[key] = materialize(value)
        return out
    if isinstance(tree, Items):
        return [materialize(x) for x in tree]
    return tree


# -- JSON ----------------------------------------------------------------------------------------
def write_json(tree: Any, write: Callable[[bytes], Any]) -> None:
    """Write ``tree`` as JSON indented by two spaces (no final newline) through ``write``."""
    import orjson

    _json(tree, 0, write, orjson)


def _json(value: Any, depth: int, write: Callable[[bytes], Any], orjson: Any) -> None:
    inner = b"\n" + b"  " * (depth + 1)
    if isinstance(value, Branch):
        opener = b"{"
        for key, item in value.items():
            item = _present(item)
            if item is None:
                continue
            write(opener + inner + orjson.dumps(key) + b": ")
            opener = b","
            _json(item, depth + 1, write, orjson)
        write(b"{}" if opener == b"{" else inner[:-2] + b"}")
    elif isinstance(value, Items):
        opener = b"["
        for item in value:
            write(opener + inner)
            opener = b","
            _json(item, depth + 1, write, orjson)
        write(b"[]" if opener == b"[" else inner[:-2] + b"]")
    else:
        text = orjson.dumps(value, option=orjson.OPT_INDENT_2)
        write(text.replace(b"\n", inner[:-2]) if depth else text)


def json_bytes(tree: Any) -> bytes:
    """The whole JSON text of ``tree`` (what :func:`write_json` writes)."""
    chunks: list[bytes] = []
    write_json(tree, chunks.append)
    return b"".join(chunks)


# -- YAML ----------------------------------------------------------------------------------------
class NoAliases(yaml.SafeDumper):
    """The dumper of ``-o yaml``: converted dicts are shared, so YAML must spell each one out."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def write_yaml(tree: Any, stream: IO[str]) -> None:
    """Write ``tree`` as block YAML (keys in order, width 1000) to a text stream."""
    from yaml import events

    dumper = NoAliases(stream, sort_keys=False, width=1000, default_flow_style=False)
    dumper.open()
    dumper.emit(events.DocumentStartEvent(explicit=dumper.use_explicit_start, version=dumper.use_version,
                                          tags=dumper.use_tags))
    _yaml(tree, dumper, events)
    dumper.emit(events.DocumentEndEvent(explicit=dumper.use_explicit_end))
    dumper.close()


def _yaml(value: Any, dumper: NoAliases, events: Any) -> None:
    # The events Serializer.serialize_node sends for a dict or list the representer built with
    # default_flow_style=False: implicit default tags, block style.
    if isinstance(value, Branch):
        dumper.emit(events.MappingStartEvent(None, yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, True,
                                             flow_style=False))
        for key, item in value.items():
            item = _present(item)
            if item is not None:
                _yaml(key, dumper, events)
                _yaml(item, dumper, events)
        dumper.emit(events.MappingEndEvent())
    elif isinstance(value, Items):
        dumper.emit(events.SequenceStartEvent(None, yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, True,
                                              flow_style=False))
        for item in value:
            _yaml(item, dumper, events)
        dumper.emit(events.SequenceEndEvent())
    else:
        node = dumper.represent_data(value)
        dumper.anchor_node(node)
        dumper.serialize_node(node, None, None)
        # what represent() and serialize() reset after each document
        dumper.represented_objects = {}
        dumper.object_keeper = []
        dumper.alias_key = None
        dumper.serialized_nodes = {}
        dumper.anchors = {}


# -- to a text stream (stdout) -------------------------------------------------------------------
#: Bytes (or characters) gathered before one write to the stream: few system calls even when the
#: stream is unbuffered (PYTHONUNBUFFERED, or ``python -u``), memory still flat.
BATCH = 1 << 20


class _Batched:
    """A writer gathering small pieces into large writes (``write``/``flush``, as streams have)."""

    def __init__(self, sink: Callable[[Any], Any], empty: Any) -> None:
        self._sink, self._empty = sink, empty
        self._parts: list[Any] = []
        self._size = 0

    def write(self, piece: Any) -> None:
        self._parts.append(piece)
        self._size += len(piece)
        if self._size >= BATCH:
            self.flush()

    def flush(self) -> None:
        if self._parts:
            self._sink(self._empty.join(self._parts))
            self._parts, self._size = [], 0


def write(tree: Any, fmt: str, stream: IO[str]) -> None:
    """Write ``tree`` to ``stream`` as ``fmt`` ("json": with a final newline, or "yaml").

    JSON goes to the stream's byte buffer when it has one, encodes UTF-8 and translates no
    newlines (orjson's own bytes, no decoding); anything else gets text.
    """
    if fmt == "yaml":
        text = _Batched(stream.write, "")
        write_yaml(tree, text)  # type: ignore[arg-type]
        text.flush()
        stream.flush()
        return
    import os

    buffer = getattr(stream, "buffer", None)
    utf8 = str(getattr(stream, "encoding", "")).lower().replace("_", "-") in ("utf-8", "utf8")
    if buffer is not None and utf8 and os.linesep == "\n":
        stream.flush()
        out = _Batched(buffer.write, b"")
        write_json(tree, out.write)
        out.write(b"\n")
        out.flush()
        buffer.flush()
    else:
        write_json(tree, lambda chunk: stream.write(chunk.decode("utf-8")))
        stream.write("\n")
