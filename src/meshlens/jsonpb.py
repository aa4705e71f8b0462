"""Protobuf → JSON-ready dicts, fast, in Envoy's print style.

Layer: L4 (a leaf beside the compiler; emit uses it). Imports: protobuf.

The proto3 JSON mapping with proto field names, as ``json_format.MessageToDict(...,
preserving_proto_field_name=True)`` produces it, plus the two ways Envoy's and Go's printers
differ from Python's: map and Struct keys are sorted, and whole floats print without a fraction.

Speed comes from three things:

* **a conversion plan per message type**, built once per process: for every field its JSON name
  and a converter chosen from the field's type (scalar as is, enum by name, bytes as base64,
  64-bit integers as strings, floats, maps, repeated fields, sub-messages and the well-known
  types), so converting a message is one ``ListFields()`` and one table look-up per field;
* **a cache of packed ``Any`` values by their bytes** (type URL, value): the thousands of
  identical filters in a large dump are parsed and converted once;
* **a cache of sub-messages by their serialized bytes**, per message type, kept only where it
  pays: a type whose first :data:`TRIAL` conversions mostly miss (every cluster, every endpoint)
  stops being cached; one whose instances repeat (circuit breakers, TLS contexts, config
  sources, retry policies) is converted once per distinct value.

Caches live in a :class:`Printer`; pass one Printer to convert many messages. The result may
share sub-dicts between places: serialize it, don't mutate it.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable
from typing import Any

from google.protobuf import descriptor, descriptor_pool, message_factory, symbol_database
from google.protobuf.internal import type_checkers

FD = descriptor.FieldDescriptor
Convert = Callable[[Any, "Printer"], Any]

#: Conversions a message type gets before its cache is judged; it stays on if at least half hit.
TRIAL = 64

_INT64 = {FD.CPPTYPE_INT64, FD.CPPTYPE_UINT64}
_WRAPPERS = {"google.protobuf.DoubleValue", "google.protobuf.FloatValue", "google.protobuf.Int64Value",
             "google.protobuf.UInt64Value", "google.protobuf.Int32Value", "google.protobuf.UInt32Value",
             "google.protobuf.BoolValue", "google.protobuf.StringValue", "google.protobuf.BytesValue"}
TYPE_PREFIX = "type.googleapis.com/"


def _number(v: float) -> Any:
    if math.isinf(v):
        return "-Infinity" if v < 0 else "Infinity"
    if math.isnan(v):
        return "NaN"
    if v.is_integer() and abs(v) < 2**53:
        return int(v)
    return v


def _float(v: float) -> Any:
    # a float32 field: its shortest text, as json_format prints it (NaN first: never shortens)
    return _number(v if math.isnan(v) or math.isinf(v) else type_checkers.ToShortestFloat(v))


class _Cache:
    """One message type's converted values by serialized bytes, and whether caching pays."""

    __slots__ = ("values", "hits", "misses", "on")

    def __init__(self) -> None:
        self.values: dict[bytes, Any] = {}
        self.hits = 0
        self.misses = 0
        self.on = True


class Printer:
    """Caches for one run of conversions (several messages may share them)."""

    def __init__(self) -> None:
        self.any_cache: dict[tuple[str, bytes], Any] = {}
        self.caches: dict[Any, _Cache] = {}

    def message(self, msg: Any) -> Any:
        """The JSON object of one message (any type, well-known types included)."""
        return plan(msg.DESCRIPTOR)(msg, self)

    def any(self, msg: Any) -> Any:
        """A packed ``Any``: ``{"@type": URL, ...fields}`` (``"value"`` for well-known types)."""
        if not msg.type_url:
            return {}
        key = (msg.type_url, msg.value)
        hit = self.any_cache.get(key)
        if hit is not None:
            return hit
        cls = _class(msg.type_url.rsplit("/", 1)[-1])
        inner = cls()
        inner.ParseFromString(msg.value)
        out = typed(msg.type_url, inner, self)
        self.any_cache[key] = out
        return out


def typed(type_url: str, msg: Any, p: Printer) -> dict[str, Any]:
    """``msg`` as an ``Any`` of ``type_url`` prints it: the URL first, then the fields."""
    body = p.message(msg)
    full = msg.DESCRIPTOR.full_name
    if full in _VALUE_IN_ANY:
        return {"@type": type_url, "value": body}
    out = {"@type": type_url}
    out.update(body)
    return out


def type_url(msg: Any) -> str:
    """The URL ``Any.Pack`` gives ``msg``."""
    return TYPE_PREFIX + str(msg.DESCRIPTOR.full_name)


_CLASSES: dict[str, Any] = {}


def _class(name: str) -> Any:
    cls = _CLASSES.get(name)
    if cls is None:
        try:
            cls = symbol_database.Default().GetSymbol(name)
        except KeyError:
            cls = message_factory.GetMessageClass(descriptor_pool.Default().FindMessageTypeByName(name))
        _CLASSES[name] = cls
    return cls


# -- plans ---------------------------------------------------------------------------------------
_PLANS: dict[Any, Convert] = {}


def plan(desc: Any) -> Convert:
    """The converter of one message type (built on first use, then shared by every Printer)."""
    conv = _PLANS.get(desc)
    if conv is None:
        conv = _PLANS[desc] = _build(desc)
    return conv


def _build(desc: Any) -> Convert:
    full = desc.full_name
    special = _SPECIAL.get(full)
    if special is not None:
        return special
    if full in _WRAPPERS:
        inner = _scalar(desc.fields_by_name["value"])
        if inner is None:
            return lambda m, p: m.value
        return lambda m, p: inner(m.value, p)
    table: dict[Any, tuple[str, Convert | None]] = {}

    def convert(m: Any, p: Printer) -> dict[str, Any]:
        if not table:
            table.update({f: (f.name, _field(f)) for f in desc.fields})
        out: dict[str, Any] = {}
        for f, v in m.ListFields():
            name, c = table[f]
            out[name] = v if c is None else c(v, p)
        return out

    return convert


def _field(f: Any) -> Convert | None:
    """The converter of one field's value (None: the value is its own JSON)."""
    mt = f.message_type
    if mt is not None and mt.GetOptions().map_entry:
        return _map(mt)
    one = _scalar(f)
    if f.is_repeated:
        if one is None:
            return lambda v, p: list(v)
        return lambda v, p: [one(x, p) for x in v]
    return one


def _map(entry: Any) -> Convert:
    kf, vf = entry.fields_by_name["key"], entry.fields_by_name["value"]
    one = _scalar(vf)
    if kf.cpp_type == FD.CPPTYPE_BOOL:
        def key(k: Any) -> str:
            return "true" if k else "false"
    else:
        key = str

    if kf.cpp_type == FD.CPPTYPE_STRING:  # sorted keys are sorted texts: no conversion to sort by
        if one is None:
            return lambda v, p: {k: v[k] for k in sorted(v)}
        return lambda v, p: {k: one(v[k], p) for k in sorted(v)}

    def convert(v: Any, p: Printer) -> dict[str, Any]:
        texts = sorted((key(k), k) for k in v)
        if one is None:
            return {t: v[k] for t, k in texts}
        return {t: one(v[k], p) for t, k in texts}

    return convert


def _scalar(f: Any) -> Convert | None:
    """The converter of one (non-repeated) value of field ``f``."""
    ct = f.cpp_type
    if ct == FD.CPPTYPE_MESSAGE:
        return _submessage(f.message_type)
    if ct == FD.CPPTYPE_ENUM:
        if f.enum_type.full_name == "google.protobuf.NullValue":
            return lambda v, p: None
        names = {n: ev.name for n, ev in f.enum_type.values_by_number.items()}
        return lambda v, p: names.get(v, v)
    if ct == FD.CPPTYPE_STRING:
        if f.type == FD.TYPE_BYTES:
            return lambda v, p: base64.b64encode(v).decode("utf-8")
        return None
    if ct == FD.CPPTYPE_BOOL:
        return lambda v, p: bool(v)
    if ct in _INT64:
        return lambda v, p: str(v)
    if ct == FD.CPPTYPE_FLOAT:
        return lambda v, p: _float(v)
    if ct == FD.CPPTYPE_DOUBLE:
        return lambda v, p: _number(v)
    return None


def _submessage(desc: Any) -> Convert:
    """A message-typed value: its plan, behind a by-bytes cache where the type may repeat."""
    full = desc.full_name
    conv = plan(desc)  # safe while building: a plan fills its field table on first use only
    if full in _UNCACHED or full in _WRAPPERS or not _nested(desc):
        return conv

    def cached(m: Any, p: Printer) -> Any:
        cache = p.caches.get(desc)
        if cache is None:
            cache = p.caches[desc] = _Cache()
        if not cache.on:
            return conv(m, p)
        key = m.SerializeToString()
        hit = cache.values.get(key)
        if hit is not None:
            cache.hits += 1
            return hit
        out = cache.values[key] = conv(m, p)
        cache.misses += 1
        if cache.misses + cache.hits >= TRIAL and cache.hits < cache.misses:
            cache.on = False  # mostly distinct values: serializing them only costs time
            cache.values.clear()
        return out

    return cached


def _nested(desc: Any) -> bool:
    """A type with a message, map or repeated field: converting it costs more than hashing it."""
    return desc.full_name == "google.protobuf.Struct" or any(
        f.cpp_type == FD.CPPTYPE_MESSAGE or f.is_repeated for f in desc.fields)


# -- well-known types ----------------------------------------------------------------------------
_DURATIONS: dict[tuple[int, int], str] = {}


def _duration(m: Any, p: Printer) -> str:
    key = (m.seconds, m.nanos)
    text = _DURATIONS.get(key)
    if text is None:
        text = m.ToJsonString()
        if len(_DURATIONS) < 4096:
            _DURATIONS[key] = text
    return text


def _struct(m: Any, p: Printer) -> Any:
    fields = m.fields
    return {k: _value(fields[k], p) for k in sorted(fields)}


def _value(v: Any, p: Printer) -> Any:
    kind = v.WhichOneof("kind")
    if kind == "string_value":
        return v.string_value
    if kind == "struct_value":
        return _struct(v.struct_value, p)
    if kind == "list_value":
        return [_value(x, p) for x in v.list_value.values]
    if kind == "number_value":
        return _number(v.number_value)
    if kind == "bool_value":
        return v.bool_value
    return None


_SPECIAL: dict[str, Convert] = {
    "google.protobuf.Any": lambda m, p: p.any(m),
    "google.protobuf.Duration": _duration,
    "google.protobuf.Timestamp": lambda m, p: m.ToJsonString(),
    "google.protobuf.FieldMask": lambda m, p: m.ToJsonString(),
    "google.protobuf.Struct": _struct,
    "google.protobuf.Value": _value,
    "google.protobuf.ListValue": lambda m, p: [_value(x, p) for x in m.values],
    "google.protobuf.Empty": lambda m, p: {},
}

#: Types an ``Any`` prints under ``"value"`` (json_format's ``_WKTJSONMETHODS``; not Empty, which
#: prints as the message it is: ``{"@type": ...}``).
_VALUE_IN_ANY = frozenset(set(_SPECIAL) - {"google.protobuf.Empty"} | _WRAPPERS)

#: Types never cached by bytes: Any has its own cache (its bytes are at hand), the rest are
#: cheaper to convert than to serialize.
_UNCACHED = frozenset(set(_SPECIAL) - {"google.protobuf.Struct"})


def to_json_obj(message: Any, printer: Printer | None = None) -> Any:
    """Convert a message; pass one Printer for several messages to share its caches."""
    return (printer or Printer()).message(message)
