"""Go's text encodings that istioctl's output goes through: ``strconv`` and ``encoding/json``.

Layer: L6. Imports: nothing of meshlens.

* :func:`go_format_float`: ``strconv.FormatFloat(f, fmt, -1, bits)``, shortest round-trip digits;
* :func:`go_json_float` and :func:`go_json_string`: how ``encoding/json`` (and protojson) write a
  number and a string (``<`` is ``\\u003c`` with HTML escaping);
* :func:`go_indent`: ``json.Indent``, which ``json.MarshalIndent`` uses to re-indent compact JSON.
"""

from __future__ import annotations

import math
import struct
from decimal import Decimal

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
