"""Protobuf messages as Go prints them: golang/protobuf ``jsonpb`` and ``protojson``.

Layer: L6. Imports: dump (type resolution), gojson, gosort.

* :func:`jsonpb` is golang/protobuf v1 ``jsonpb.Marshaler``: lowerCamelCase names, fields in
  *declaration* order (a oneof where its first member is declared), defaults omitted, int64 as
  strings, Duration ``"0.250s"``, Any inlined with ``@type`` first, Go's ``encoding/json``
  string escaping (``<`` is ``\\u003c``). With an indent it has a quirk: the map of a
  ``google.protobuf.Struct`` is indented one level too deep. ``bootstrap`` and ``secret``
  ``-o json`` print this directly.
* :func:`message_slice_json` is istioctl's ``MessageSlice``: compact jsonpb per element,
  re-indented by ``json.MarshalIndent(..., "", "    ")`` (:func:`go_indent`). Used by
  ``cluster``, ``listener``, ``route``, ``eds`` and ``endpoint`` ``-o json``.
* :func:`protojson` is google.golang.org/protobuf's ``protojson`` (``ecds -o json``). Its real
  output inserts random extra spaces after ``:``; we print the normalized form that upstream's
  test compares against.
"""

from __future__ import annotations

import base64
import datetime as _dt
import math
from collections.abc import Sequence
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError, Message

from meshlens.dump import message_class
from meshlens.render.proxy_config.gojson import go_indent, go_json_float, go_json_string
from meshlens.render.proxy_config.gosort import go_sort_slice

_WRAPPERS = frozenset({"BoolValue", "BytesValue", "StringValue", "Int32Value", "UInt32Value",
                       "FloatValue", "Int64Value", "UInt64Value", "DoubleValue"})
_WKT = _WRAPPERS | {"Empty", "Any", "Duration", "Timestamp", "NullValue", "Struct", "Value",
                    "ListValue"}
_INT64 = frozenset({FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_UINT64,
                    FieldDescriptor.TYPE_SINT64, FieldDescriptor.TYPE_FIXED64,
                    FieldDescriptor.TYPE_SFIXED64})


def _well_known(full_name: str) -> str:
    package, _, name = full_name.rpartition(".")
    return name if package == "google.protobuf" and name in _WKT else ""


class _Writer:
    """golang/protobuf ``jsonpb`` (``jsonpb/encode.go``), function for function."""

    def __init__(self, indent: str, *, html: bool, protojson: bool) -> None:
        self.indent_unit = indent
        self.html = html
        self.protojson = protojson
        self.buf: list[str] = []

    def write(self, s: str) -> None:
        self.buf.append(s)

    def message(self, m: Message, indent: str, type_url: str = "") -> None:
        desc = m.DESCRIPTOR
        wkt = _well_known(desc.full_name)
        if wkt == "Any":
            self.any(m, indent)
            return
        if wkt in _WRAPPERS:
            fd = desc.fields_by_number[1]
            self.value(fd, getattr(m, fd.name), indent)
            return
        if wkt == "Duration":
            self.write(_duration(m.seconds, m.nanos))
            return
        if wkt == "Timestamp":
            self.write(_timestamp(m.seconds, m.nanos))
            return
        if wkt == "Value":
            which = m.WhichOneof("kind")
            if which is None:
                self.write("null")
                return
            fd = desc.fields_by_name[which]
            self.value(fd, getattr(m, which), indent)
            return
        if wkt in ("Struct", "ListValue"):
            fd = desc.fields_by_number[1]
            self.value(fd, getattr(m, fd.name), indent)
            return
        ind = self.indent_unit
        self.write("{")
        if ind:
            self.write("\n")
        first = True
        if type_url:
            self.type_url(indent, type_url)
            first = False
        fields = desc.fields
        i = 0
        while i < len(fields):
            fd = fields[i]
            od = fd.containing_oneof
            if od is not None:
                i += len(od.fields)
                which = m.WhichOneof(od.name)
                if which is None:
                    continue
                fd = desc.fields_by_name[which]
            else:
                i += 1
                if not _has(m, fd):
                    continue
            if not first:
                self.write(",\n" if ind else ",")
            self.field(fd, getattr(m, fd.name), indent)
            first = False
        if ind:
            self.write("\n" + indent)
        self.write("}")

    def any(self, m: Message, indent: str) -> None:
        type_url: str = m.type_url
        raw: bytes = m.value
        ind = self.indent_unit
        cls = message_class(type_url) if type_url else None
        inner: Message | None = None
        if cls is not None:
            inner = cls()
            try:
                inner.ParseFromString(raw)
            except DecodeError:
                inner = None
        if inner is None:
            # Go fails here; an empty Any (protojson prints {}) or an unknown type prints
            # what is known.
            self.write("{")
            if type_url:
                if ind:
                    self.write("\n")
                self.type_url(indent, type_url)
                if ind:
                    self.write("\n" + indent)
            self.write("}")
            return
        if not _well_known(inner.DESCRIPTOR.full_name):
            self.message(inner, indent, type_url)
            return
        self.write("{")
        if ind:
            self.write("\n")
        self.type_url(indent, type_url)
        self.write(",\n" if ind else ",")
        if ind:
            self.write(indent + ind + '"value": ')
        else:
            self.write('"value":')
        self.message(inner, indent + ind)
        if ind:
            self.write("\n" + indent)
        self.write("}")

    def type_url(self, indent: str, type_url: str) -> None:
        if self.indent_unit:
            self.write(indent + self.indent_unit)
        self.write('"@type":')
        if self.indent_unit:
            self.write(" ")
        self.write(go_json_string(type_url, html=self.html))

    def field(self, fd: FieldDescriptor, v: Any, indent: str) -> None:
        if self.indent_unit:
            self.write(indent + self.indent_unit)
        self.write('"' + fd.json_name + '":')
        if self.indent_unit:
            self.write(" ")
        self.value(fd, v, indent)

    def value(self, fd: FieldDescriptor, v: Any, indent: str) -> None:
        ind = self.indent_unit
        if fd.message_type is not None and fd.message_type.GetOptions().map_entry:
            kfd = fd.message_type.fields_by_name["key"]
            vfd = fd.message_type.fields_by_name["value"]
            entries = list(v.items())
            if kfd.type == FieldDescriptor.TYPE_BOOL:
                entries = go_sort_slice(entries, lambda a, b: (not a[0]) and b[0])
            else:
                entries = go_sort_slice(entries, lambda a, b: a[0] < b[0])
            self.write("{")
            comma = ""
            for key, val in entries:
                self.write(comma)
                if ind:
                    self.write("\n" + indent + ind + ind)
                text = ("true" if key else "false") if isinstance(key, bool) else str(key)
                self.write(go_json_string(text, html=self.html) + ":")
                if ind:
                    self.write(" ")
                self.singular(vfd, val, indent + ind)
                comma = ","
            if ind:
                self.write("\n" + indent + ind)
            self.write("}")
            return
        if fd.is_repeated:
            self.write("[")
            comma = ""
            for item in v:
                self.write(comma)
                if ind:
                    self.write("\n" + indent + ind + ind)
                self.singular(fd, item, indent + ind)
                comma = ","
            if ind:
                self.write("\n" + indent + ind)
            self.write("]")
            return
        self.singular(fd, v, indent)

    def singular(self, fd: FieldDescriptor, v: Any, indent: str) -> None:
        if fd.message_type is not None:
            self.message(v, indent + self.indent_unit)
            return
        if fd.enum_type is not None:
            if fd.enum_type.full_name == "google.protobuf.NullValue":
                self.write("null")
                return
            ev = fd.enum_type.values_by_number.get(v)
            self.write(str(v) if ev is None else '"' + ev.name + '"')
            return
        t = fd.type
        if t == FieldDescriptor.TYPE_BOOL:
            self.write("true" if v else "false")
        elif t in (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE):
            if math.isnan(v):
                self.write('"NaN"')
            elif math.isinf(v):
                self.write('"Infinity"' if v > 0 else '"-Infinity"')
            else:
                self.write(go_json_float(v, 32 if t == FieldDescriptor.TYPE_FLOAT else 64))
        elif t in _INT64:
            self.write(f'"{v}"')
        elif t == FieldDescriptor.TYPE_STRING:
            self.write(go_json_string(v, html=self.html))
        elif t == FieldDescriptor.TYPE_BYTES:
            self.write('"' + base64.b64encode(v).decode() + '"')
        else:
            self.write(str(int(v)))


def _has(m: Message, fd: FieldDescriptor) -> bool:
    if fd.is_repeated:
        return len(getattr(m, fd.name)) > 0
    if fd.has_presence:
        return bool(m.HasField(fd.name))
    v = getattr(m, fd.name)
    if isinstance(v, float):
        return v != 0 or math.copysign(1.0, v) < 0
    return bool(v)


def _trim_fraction(x: str) -> str:
    for suffix in ("000", "000", ".000"):
        if x.endswith(suffix):
            x = x[: -len(suffix)]
    return x


def _duration(seconds: int, nanos: int) -> str:
    sign = ""
    if seconds < 0 or nanos < 0:
        sign, seconds, nanos = "-", -seconds, -nanos
    return '"' + _trim_fraction(f"{sign}{seconds}.{nanos:09d}") + 's"'


def _timestamp(seconds: int, nanos: int) -> str:
    t = _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC) + _dt.timedelta(seconds=seconds)
    x = t.strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos:09d}"
    return '"' + _trim_fraction(x) + 'Z"'


def jsonpb(message: Message, *, indent: str = "") -> str:
    """golang/protobuf ``jsonpb.Marshaler{Indent: indent}`` output, without a final newline."""
    w = _Writer(indent, html=True, protojson=False)
    w.message(message, "")
    return "".join(w.buf)


def protojson(message: Message) -> str:
    """protojson ``Multiline``/``Indent "    "`` output, normalized (no random spaces), + "\\n"."""
    w = _Writer("", html=False, protojson=True)
    w.message(message, "")
    return go_indent("".join(w.buf), "    ") + "\n"


def message_slice_json(messages: Sequence[Message]) -> str:
    """istioctl's ``json.MarshalIndent(MessageSlice, "", "    ")`` printed with ``Println``."""
    compact = "[" + ",".join(jsonpb(m) for m in messages) + "]"
    return go_indent(compact, "    ") + "\n"
