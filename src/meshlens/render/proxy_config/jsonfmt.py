"""istioctl's JSON and YAML output, byte for byte: three Go serializers and one YAML emitter.

Layer: L6. Imports: dump (type resolution).

istioctl prints protobufs through three different Go paths (istioctl.md §0.3-§0.4):

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

:func:`json_to_yaml` is ``sigs.k8s.io/yaml.JSONToYAML``: the JSON is read as YAML 1.1 by
go-yaml v2 and written back with sorted keys, unindented sequences, double quotes for strings
that would read as another type, single quotes where an indicator forbids plain style, and
folding at 80 columns.
"""

from __future__ import annotations

import base64
import datetime as _dt
import json
import math
import re
import struct
import unicodedata
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError, Message

from meshlens.dump import message_class
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


# --- Go number and string formatting --------------------------------------------------------


def _shortest(f: float, bits: int) -> tuple[str, int]:
    """Shortest round-trip digits of ``f`` and Go's decimal point position (0.DIGITS x 10^dp)."""
    if f == 0:
        return "0", 1
    if bits == 32:
        target = struct.unpack("f", struct.pack("f", f))[0]
        for prec in range(1, 10):
            text = f"{f:.{prec - 1}e}"
            if struct.unpack("f", struct.pack("f", float(text)))[0] == target:
                break
    else:
        text = repr(f)
    sign, digits, exponent = Decimal(text).as_tuple()
    ds = "".join(map(str, digits)).rstrip("0") or "0"
    # Decimal: value = int(digits) * 10^exponent; Go's dp counts digits before the point.
    dp = len(digits) + int(exponent)
    return ds, dp


def go_format_float(f: float, fmt: str, bits: int = 64) -> str:
    """Go's ``strconv.FormatFloat(f, fmt, -1, bits)`` for ``fmt`` in ``e``, ``f``, ``g``.

    Example:
        >>> go_format_float(1e-07, "e"), go_format_float(0.25, "f"), go_format_float(1234567.5, "g")
        ('1e-07', '0.25', '1.2345675e+06')
    """
    if math.isnan(f):
        return "NaN"
    if math.isinf(f):
        return "+Inf" if f > 0 else "-Inf"
    neg = "-" if math.copysign(1.0, f) < 0 else ""
    digits, dp = _shortest(abs(f), bits)
    if fmt == "g":
        exp = dp - 1
        fmt = "e" if exp < -4 or exp >= 6 else "f"  # shortest: precision 6 decides
        if f == 0:
            fmt = "f"
    if fmt == "e":
        exp = dp - 1 if digits != "0" else 0
        mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{neg}{mant}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if digits == "0":
        return neg + "0"
    if dp <= 0:
        return f"{neg}0.{'0' * -dp}{digits}"
    if dp >= len(digits):
        return neg + digits + "0" * (dp - len(digits))
    return f"{neg}{digits[:dp]}.{digits[dp:]}"


def go_json_float(f: float, bits: int = 64) -> str:
    """``encoding/json``'s float encoding (also protojson's)."""
    a = abs(f)
    fmt = "f"
    if a != 0 and (a < 1e-6 or a >= 1e21):
        fmt = "e"
    s = go_format_float(f, fmt, bits)
    if fmt == "e" and len(s) >= 4 and s[-4] == "e" and s[-3] == "-" and s[-2] == "0":
        s = s[:-2] + s[-1]
    return s


_SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t",
                  "\b": "\\b", "\f": "\\f"}


def go_json_string(s: str, *, html: bool = True) -> str:
    r"""A JSON string as Go writes it: ``encoding/json`` (``html``) or protojson.

    Example:
        >>> print(go_json_string("a<b>&c\u2028"), go_json_string("a<b", html=False))
        "a\u003cb\u003e\u0026c\u2028" "a<b"
    """
    out = ['"']
    for ch in s:
        c = ord(ch)
        if ch in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[ch])
        elif c < 0x20 or (not html and c == 0x7F):
            out.append(f"\\u{c:04x}")
        elif html and (ch in "<>&" or c in (0x2028, 0x2029)):
            out.append(f"\\u{c:04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


# --- jsonpb / protojson writer ---------------------------------------------------------------


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


def go_indent(src: str, indent: str) -> str:
    """Go's ``json.Indent(dst, src, "", indent)`` (``{}`` and ``[]`` stay compact).

    Example:
        >>> print(go_indent('{"a":[1,{}],"b":[]}', "  "))
        {
          "a": [
            1,
            {}
          ],
          "b": []
        }
    """
    out: list[str] = []
    depth = 0
    need_indent = False
    i, n = 0, len(src)
    while i < n:
        c = src[i]
        if c in " \t\r\n":
            i += 1
            continue
        if need_indent and c not in "}]":
            need_indent = False
            depth += 1
            out.append("\n" + indent * depth)
        if c == '"':
            j = i + 1
            while src[j] != '"':
                j += 2 if src[j] == "\\" else 1
            out.append(src[i:j + 1])
            i = j + 1
            continue
        if c in "{[":
            need_indent = True
            out.append(c)
        elif c == ",":
            out.append(",\n" + indent * depth)
        elif c == ":":
            out.append(": ")
        elif c in "}]":
            if need_indent:
                need_indent = False
            else:
                depth -= 1
                out.append("\n" + indent * depth)
            out.append(c)
        else:
            out.append(c)
        i += 1
    return "".join(out)


# --- sigs.k8s.io/yaml.JSONToYAML (go-yaml v2) ------------------------------------------------

_BEST_WIDTH = 80
_BOOL_NULL = {
    "y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON",
    "n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF",
    "", "~", "null", "Null", "NULL", ".nan", ".NaN", ".NAN", ".inf", ".Inf", ".INF",
    "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF",
}
_YAML_FLOAT = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")
_BASE60 = re.compile(r"^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$")
_GO_FLOAT = re.compile(r"^[-+]?(?:(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?"
                       r"|[iI][nN][fF](?:[iI][nN][iI][tT][yY])?|[nN][aA][nN])$")
_TS_DATE = r"(\d{4})-(\d{1,2})-(\d{1,2})"
_TIMESTAMPS = (
    re.compile(_TS_DATE + r"[Tt](\d{1,2}):(\d{1,2}):(\d{1,2})(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})$"),
    re.compile(_TS_DATE + r" (\d{1,2}):(\d{1,2}):(\d{1,2})(?:\.\d+)?$"),
    re.compile(_TS_DATE + r"$"),
)


_GO_INT = re.compile(r"^(?:0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|0[0-7]*|[1-9][0-9]*)$")


def _go_parse_int(s: str) -> bool:
    """``strconv.ParseInt(s, 0, 64)`` or ``ParseUint(s, 0, 64)`` would succeed."""
    sign = s[:1] if s[:1] in "+-" else ""
    body = s[len(sign):]
    if not _GO_INT.match(body):
        return False
    low = body.lower()
    if low.startswith(("0x", "0o", "0b")):
        v = int(body[2:], {"x": 16, "o": 8, "b": 2}[low[1]])
    elif len(body) > 1 and body.startswith("0"):
        v = int(body[1:], 8)
    else:
        v = int(body)
    if sign == "-":
        return v <= 2**63
    if sign == "+":
        return v < 2**63
    return v < 2**64


def _is_timestamp(s: str) -> bool:
    for rx in _TIMESTAMPS:
        m = rx.match(s)
        if m:
            g = [int(x) for x in m.groups()]
            try:
                _dt.date(g[0], g[1], g[2])
            except ValueError:
                return False
            return len(g) == 3 or (g[3] < 24 and g[4] < 60 and g[5] < 60)
    return False


def _resolves_to_string(s: str) -> bool:
    """go-yaml v2 ``resolve("", s)`` gives ``!!str`` (so ``s`` may be written plain)."""
    hint = s[:1]
    if not s or hint in "yYnNtTfFoO~":
        return s not in _BOOL_NULL
    if hint == ".":
        return s not in _BOOL_NULL and not _GO_FLOAT.match(s)
    if hint in "+-" or ("0" <= hint <= "9"):
        if s in _BOOL_NULL:
            return False
        if _is_timestamp(s):
            return False
        plain = s.replace("_", "")
        if _go_parse_int(plain):
            return False
        if _YAML_FLOAT.match(plain) and _GO_FLOAT.match(plain):
            return False
        if plain.startswith("-0b") and re.match(r"^-0b[01]+$", plain):
            return False
    return True


def _printable(c: int) -> bool:
    return (c == 0x0A or 0x20 <= c <= 0x7E or 0xA0 <= c <= 0xD7FF
            or (0xE000 <= c <= 0xFFFD and c != 0xFEFF))


_BREAKS = "\r\n\x85\u2028\u2029"


class _Analysis:
    __slots__ = ("multiline", "block_plain", "single", "block")

    def __init__(self, s: str) -> None:
        # yaml_emitter_analyze_scalar (emitterc.go), block context only: flow indicators
        # (",?[]{}") matter only inside flow collections, which JSON→YAML never writes.
        if not s:
            self.multiline, self.block_plain, self.single, self.block = False, True, True, False
            return
        block_ind = line_breaks = special = False
        leading_space = leading_break = trailing_space = trailing_break = False
        break_space = space_break = previous_space = previous_break = False
        if s.startswith(("---", "...")):
            block_ind = True
        preceded_by_ws = True
        n = len(s)
        for i, ch in enumerate(s):
            followed_by_ws = i + 1 >= n or s[i + 1] in " \t"
            if i == 0:
                if ch in "#,[]{}&*!|>'\"%@`":
                    block_ind = True
                elif ch in "?:":
                    if followed_by_ws:
                        block_ind = True
                elif ch == "-" and followed_by_ws:
                    block_ind = True
            else:
                if ch == ":":
                    if followed_by_ws:
                        block_ind = True
                elif ch == "#" and preceded_by_ws:
                    block_ind = True
            if not _printable(ord(ch)):
                special = True
            if ch == " ":
                if i == 0:
                    leading_space = True
                if i == n - 1:
                    trailing_space = True
                if previous_break:
                    break_space = True
                previous_space, previous_break = True, False
            elif ch in _BREAKS:
                line_breaks = True
                if i == 0:
                    leading_break = True
                if i == n - 1:
                    trailing_break = True
                if previous_space:
                    space_break = True
                previous_space, previous_break = False, True
            else:
                previous_space = previous_break = False
            preceded_by_ws = ch in " \t" or ch in _BREAKS or ch == "\0"
        self.multiline = line_breaks
        block_plain = single = block = True
        if leading_space or leading_break or trailing_space or trailing_break:
            block_plain = False
        if trailing_space:
            block = False
        if break_space:
            block_plain = single = False
        if space_break or special:
            block_plain = single = block = False
        if line_breaks:
            block_plain = False
        if block_ind:
            block_plain = False
        self.block_plain, self.single, self.block = block_plain, single, block


_YAML_ESCAPES = {0x00: "0", 0x07: "a", 0x08: "b", 0x09: "t", 0x0A: "n", 0x0B: "v", 0x0C: "f",
                 0x0D: "r", 0x1B: "e", 0x22: '"', 0x5C: "\\", 0x85: "N", 0xA0: "_",
                 0x2028: "L", 0x2029: "P"}


class _YamlEmitter:
    """The block-style subset of go-yaml v2's emitter that JSON data needs."""

    def __init__(self) -> None:
        self.out: list[str] = []
        self.column = 0
        self.at_line_start = False

    def put(self, s: str) -> None:
        self.out.append(s)
        self.column += len(s)

    def newline(self, indent: int) -> None:
        self.out.append(("" if self.at_line_start else "\n") + " " * indent)
        self.column = indent
        self.at_line_start = False

    # scalars -----------------------------------------------------------------------------

    def scalar(self, value: Any, indent: int, *, simple_key: bool, space: bool) -> None:
        """Write a scalar; ``indent`` is the emitter indent for continuation lines."""
        lead = " " if space else ""
        if value is None:
            self.put(lead + "null")
            return
        if isinstance(value, bool):
            self.put(lead + ("true" if value else "false"))
            return
        if isinstance(value, int):
            self.put(lead + str(value))
            return
        if isinstance(value, float):
            s = go_format_float(value, "g", 64)
            s = {"+Inf": ".inf", "-Inf": "-.inf", "NaN": ".nan"}.get(s, s)
            self.put(lead + s)
            return
        s = str(value)
        can_plain = _resolves_to_string(s) and not _BASE60.match(s)
        if "\n" in s:
            style = "literal"
        elif can_plain:
            style = "plain"
        else:
            style = "double"
        a = _Analysis(s)
        if style == "plain":
            if not a.block_plain or (not s and simple_key):
                style = "single"
        if style == "single" and (not a.single or a.multiline):
            # go-yaml writes other line breaks (U+2028, CR) raw inside single quotes; we
            # escape them in double quotes instead, which reads back the same.
            style = "double"
        if style == "literal" and (not a.block or simple_key or any(
                b in s for b in "\r\x85\u2028\u2029")):
            style = "double"
        allow_breaks = not simple_key
        if style == "plain":
            self.put(lead)
            self._plain(s, indent, allow_breaks)
        elif style == "single":
            self.put(lead)
            self._single(s, indent, allow_breaks)
        elif style == "double":
            self.put(lead)
            self._double(s, indent, allow_breaks)
        else:
            self.put(lead)
            self._literal(s, indent)

    def _plain(self, s: str, indent: int, allow_breaks: bool) -> None:
        spaces = False
        n = len(s)
        for i, ch in enumerate(s):
            if ch == " ":
                if (allow_breaks and not spaces and self.column > _BEST_WIDTH
                        and i + 1 < n and s[i + 1] != " "):
                    self.newline(indent)
                else:
                    self.put(ch)
                spaces = True
            else:
                self.put(ch)
                spaces = False

    def _single(self, s: str, indent: int, allow_breaks: bool) -> None:
        self.put("'")
        spaces = False
        n = len(s)
        for i, ch in enumerate(s):
            if ch == " ":
                if (allow_breaks and not spaces and self.column > _BEST_WIDTH and 0 < i < n - 1
                        and s[i + 1] != " "):
                    self.newline(indent)
                else:
                    self.put(ch)
                spaces = True
            else:
                self.put("''" if ch == "'" else ch)
                spaces = False
        self.put("'")

    def _double(self, s: str, indent: int, allow_breaks: bool) -> None:
        self.put('"')
        spaces = False
        n = len(s)
        for i, ch in enumerate(s):
            c = ord(ch)
            if not _printable(c) or c == 0xFEFF or ch in _BREAKS or ch in '"\\':
                esc = _YAML_ESCAPES.get(c)
                if esc is None:
                    esc = (f"x{c:02X}" if c <= 0xFF else f"u{c:04X}" if c <= 0xFFFF
                           else f"U{c:08X}")
                self.put("\\" + esc)
                spaces = False
            elif ch == " ":
                if allow_breaks and not spaces and self.column > _BEST_WIDTH and 0 < i < n - 1:
                    self.newline(indent)
                    if s[i + 1] == " ":
                        self.put("\\")
                else:
                    self.put(ch)
                spaces = True
            else:
                self.put(ch)
                spaces = False
        self.put('"')

    def _literal(self, s: str, indent: int) -> None:
        self.put("|")
        if s[:1] in (" ", "\n"):
            self.put("2")
        if not s.endswith("\n"):
            self.put("-")
        elif s == "\n" or s.endswith("\n\n"):
            self.put("+")
        self.out.append("\n")
        self.column = 0
        breaks = True
        for ch in s:
            if ch == "\n":
                self.out.append("\n")
                self.column = 0
                breaks = True
            else:
                if breaks:
                    self.put(" " * indent)
                    breaks = False
                self.put(ch)
        # go-yaml ends a clipped or kept block scalar on a fresh line: the next indent only pads.
        self.at_line_start = breaks

    # collections --------------------------------------------------------------------------

    def node(self, value: Any, indent: int, *, after: str) -> None:
        """Write a value; ``after`` is "key" (after ``key:``), "item" (after ``- ``) or "root"."""
        if isinstance(value, dict) and value:
            if after == "key":
                self.mapping(value, indent + 2, inline=False)
            else:
                self.mapping(value, indent + 2 if after == "item" else 0, inline=True)
        elif isinstance(value, list) and value:
            if after == "key":
                self.sequence(value, indent, inline=False)  # indentless in a mapping
            else:
                self.sequence(value, indent + 2 if after == "item" else 0, inline=True)
        elif isinstance(value, dict):
            self.put((" " if after == "key" else "") + "{}")
        elif isinstance(value, list):
            self.put((" " if after == "key" else "") + "[]")
        else:
            self.scalar(value, (indent + 2) if after != "root" else 2,
                        simple_key=False, space=after == "key")

    def mapping(self, value: dict[str, Any], indent: int, *, inline: bool) -> None:
        keys = go_sort_slice(list(value), _yaml_key_less)
        for i, key in enumerate(keys):
            if i > 0 or not inline:
                self.newline(indent)
            self.scalar(key, indent, simple_key=True, space=False)
            self.put(":")
            self.node(value[key], indent, after="key")

    def sequence(self, value: list[Any], indent: int, *, inline: bool) -> None:
        for i, item in enumerate(value):
            if i > 0 or not inline:
                self.newline(indent)
            self.put("- ")
            self.node(item, indent, after="item")


def _yaml_key_less(a: Any, b: Any) -> bool:
    """go-yaml v2's ``keyList.Less``: letters after other runes, digit runs compared as numbers."""
    if not isinstance(a, str) or not isinstance(b, str):
        return str(a) < str(b)
    ar, br = a, b
    for i in range(min(len(ar), len(br))):
        if ar[i] == br[i]:
            continue
        al, bl = ar[i].isalpha(), br[i].isalpha()
        if al and bl:
            return ar[i] < br[i]
        if al or bl:
            return bl
        an = bn = 0
        if ar[i] == "0" or br[i] == "0":
            j = i - 1
            while j >= 0 and _is_digit(ar[j]):
                if ar[j] != "0":
                    an = bn = 1
                    break
                j -= 1
        ai = i
        while ai < len(ar) and _is_digit(ar[ai]):
            an = an * 10 + ord(ar[ai]) - 48
            ai += 1
        bi = i
        while bi < len(br) and _is_digit(br[bi]):
            bn = bn * 10 + ord(br[bi]) - 48
            bi += 1
        if an != bn:
            return an < bn
        if ai != bi:
            return ai < bi
        return ar[i] < br[i]
    return len(ar) < len(br)


def _is_digit(ch: str) -> bool:
    return unicodedata.category(ch) == "Nd"


def json_to_yaml(json_text: str) -> str:
    """``sigs.k8s.io/yaml.JSONToYAML``: JSON text in, go-yaml v2 text out (ends with a newline).

    Example:
        >>> print(json_to_yaml('{"b": ["x", "1605"], "@type": "t", "a": {}, "v": ""}'), end="")
        '@type': t
        a: {}
        b:
        - x
        - "1605"
        v: ""
    """
    data = json.loads(json_text)
    e = _YamlEmitter()
    e.node(data, 0, after="root")
    return "".join(e.out) + ("" if e.at_line_start else "\n")
