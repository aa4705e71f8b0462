"""Protobuf → JSON-ready dicts, fast, in Envoy's print style.

Layer: L4 (a leaf beside the compiler; emit uses it). Imports: protobuf.

The proto3 JSON mapping with proto field names, as ``json_format.MessageToDict(...,
preserving_proto_field_name=True)`` produces it, plus the two ways Envoy's and Go's printers
differ from Python's: map and Struct keys are sorted, and whole floats print without a fraction.
It walks ``ListFields()`` with per-descriptor plans and caches the conversion of every packed
``Any`` by its bytes, so the thousands of identical filters and TLS contexts in a large dump are
converted once. The result may share sub-dicts between places: serialize it, don't mutate it.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable
from typing import Any

from google.protobuf import descriptor, descriptor_pool, message_factory, symbol_database
from google.protobuf.internal import type_checkers

FD = descriptor.FieldDescriptor
_INT64 = {FD.CPPTYPE_INT64, FD.CPPTYPE_UINT64}
_WRAPPERS = {"google.protobuf.DoubleValue", "google.protobuf.FloatValue", "google.protobuf.Int64Value",
             "google.protobuf.UInt64Value", "google.protobuf.Int32Value", "google.protobuf.UInt32Value",
             "google.protobuf.BoolValue", "google.protobuf.StringValue", "google.protobuf.BytesValue"}


def _number(v: float) -> Any:
    if math.isinf(v):
        return "-Infinity" if v < 0 else "Infinity"
    if math.isnan(v):
        return "NaN"
    if v.is_integer() and abs(v) < 2**53:
        return int(v)
    return v


class Printer:
    def __init__(self) -> None:
        self.any_cache: dict[tuple[str, bytes], Any] = {}
        self.classes: dict[str, Any] = {}
        self.pool = descriptor_pool.Default()

    # -- scalars ---------------------------------------------------------------------------------
    def scalar(self, field: Any, value: Any) -> Any:
        ct = field.cpp_type
        if ct == FD.CPPTYPE_MESSAGE:
            return self.message(value)
        if ct == FD.CPPTYPE_ENUM:
            if field.enum_type.full_name == "google.protobuf.NullValue":
                return None
            ev = field.enum_type.values_by_number.get(value)
            return ev.name if ev is not None else value
        if ct == FD.CPPTYPE_STRING:
            if field.type == FD.TYPE_BYTES:
                return base64.b64encode(value).decode("utf-8")
            return value
        if ct == FD.CPPTYPE_BOOL:
            return bool(value)
        if ct in _INT64:
            return str(value)
        if ct == FD.CPPTYPE_FLOAT:
            return _number(type_checkers.ToShortestFloat(value))
        if ct == FD.CPPTYPE_DOUBLE:
            return _number(value)
        return value

    def field_value(self, field: Any, value: Any) -> Any:
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            vf = field.message_type.fields_by_name["value"]
            kf = field.message_type.fields_by_name["key"]
            out = {}
            for k in sorted(value, key=lambda x: (str(x) if not isinstance(x, bool) else str(x).lower())):
                key = ("true" if k else "false") if kf.cpp_type == FD.CPPTYPE_BOOL else str(k)
                out[key] = self.scalar(vf, value[k])
            return dict(sorted(out.items()))
        if field.is_repeated:
            return [self.scalar(field, v) for v in value]
        return self.scalar(field, value)

    # -- messages --------------------------------------------------------------------------------
    def message(self, msg: Any) -> Any:
        full = msg.DESCRIPTOR.full_name
        special = _SPECIAL.get(full)
        if special is not None:
            return special(self, msg)
        if full in _WRAPPERS:
            return self.scalar(msg.DESCRIPTOR.fields_by_name["value"], msg.value)
        out: dict[str, Any] = {}
        for field, value in msg.ListFields():
            out[field.name] = self.field_value(field, value)
        return out

    def any(self, msg: Any) -> Any:
        if not msg.type_url:
            return {}
        key = (msg.type_url, msg.value)
        hit = self.any_cache.get(key)
        if hit is not None:
            return hit
        name = msg.type_url.rsplit("/", 1)[-1]
        cls = self.classes.get(name)
        if cls is None:
            try:
                cls = symbol_database.Default().GetSymbol(name)
            except KeyError:
                cls = message_factory.GetMessageClass(self.pool.FindMessageTypeByName(name))
            self.classes[name] = cls
        inner = cls()
        inner.ParseFromString(msg.value)
        body = self.message(inner)
        full = inner.DESCRIPTOR.full_name
        if full in _SPECIAL or full in _WRAPPERS:
            out: dict[str, Any] = {"@type": msg.type_url, "value": body}
        else:
            out = {"@type": msg.type_url}
            out.update(body)
        self.any_cache[key] = out
        return out


def _struct(p: Printer, msg: Any) -> Any:
    return {k: _value(p, msg.fields[k]) for k in sorted(msg.fields)}


def _value(p: Printer, v: Any) -> Any:
    kind = v.WhichOneof("kind")
    if kind == "struct_value":
        return _struct(p, v.struct_value)
    if kind == "list_value":
        return [_value(p, x) for x in v.list_value.values]
    if kind == "number_value":
        return _number(v.number_value)
    if kind == "string_value":
        return v.string_value
    if kind == "bool_value":
        return v.bool_value
    return None


_SPECIAL: dict[str, Callable[[Printer, Any], Any]] = {
    "google.protobuf.Any": lambda p, m: p.any(m),
    "google.protobuf.Duration": lambda p, m: m.ToJsonString(),
    "google.protobuf.Timestamp": lambda p, m: m.ToJsonString(),
    "google.protobuf.FieldMask": lambda p, m: m.ToJsonString(),
    "google.protobuf.Struct": _struct,
    "google.protobuf.Value": _value,
    "google.protobuf.ListValue": lambda p, m: [_value(p, x) for x in m.values],
    "google.protobuf.Empty": lambda p, m: {},
}


def to_json_obj(message: Any, printer: Printer | None = None) -> Any:
    """Convert a message; pass one Printer for several messages to share its Any cache."""
    return (printer or Printer()).message(message)
