"""``sigs.k8s.io/yaml.JSONToYAML``: istioctl's ``-o yaml``, byte for byte.

Layer: L6. Imports: gojson, gosort.

:func:`json_to_yaml` reads the JSON as YAML 1.1, as go-yaml v2 does, and writes it back the way
go-yaml v2 emits: sorted keys (``keyList.Less``: letters after other characters, digit runs
compared as numbers), unindented sequences, double quotes for strings that would read as another
type, single quotes where an indicator forbids plain style, and folding at 80 columns.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
import unicodedata
from typing import Any

from meshlens.render.proxy_config.gojson import go_format_float
from meshlens.render.proxy_config.gosort import go_sort_slice

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
