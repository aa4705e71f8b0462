"""Tell whether istiod accepts a regular expression: Go's ``regexp.Compile`` (RE2 syntax).

Layer: L2. Imports: the standard library only.

istiod's webhook compiles every ``regex`` StringMatch with Go's ``regexp`` package
(``validateStringRegexp`` in ``pkg/config/validation/validation.go``); Envoy then compiles it
with RE2. Python's ``re`` accepts much that RE2 rejects (backreferences, lookaround, possessive
quantifiers and atomic groups, ``\\Z``, ``\\u0041``, unbounded counts) and rejects some of what
RE2 accepts (``\\z``, ``\\pL``, ``[[:alpha:]]``, inline flags in mid-pattern), so neither
``re.compile`` alone nor a regex blacklist gives the webhook's verdict.

:func:`re2_error` is a small re-implementation of the syntax rules of Go's
``regexp/syntax`` parser (Perl flags), returning Go's error text. It walks the pattern once,
checks escapes, groups, classes and repetition operators (including "a repetition nested in a
repetition may not exceed 1000 copies"), and, as a second opinion, compiles an equivalent
pattern with Python's ``re`` (classes and escapes replaced by placeholders with the same
syntax); if Python still refuses, the pattern is rejected too. Deliberately conservative where it
cannot be exact: names in ``\\p{Name}`` are Go's Unicode 15 categories and scripts.
"""

from __future__ import annotations

import re
import warnings

__all__ = ["MAX_REGEX_BYTES", "re2_error"]

#: istiod rejects longer regexes outright ("regex is too large, max length allowed is 1024").
MAX_REGEX_BYTES = 1024

_POSIX = frozenset(
    "alnum alpha ascii blank cntrl digit graph lower print punct space upper word xdigit".split()
)
_CATEGORIES = frozenset(
    "Any C Cc Cf Co Cs L Ll Lm Lo Lt Lu M Mc Me Mn N Nd Nl No P Pc Pd Pe Pf Pi Po Ps "
    "S Sc Sk Sm So Z Zl Zp Zs".split()
)
#: Unicode scripts as Go's ``unicode.Scripts`` names them (Unicode 15).
_SCRIPTS = frozenset(
    """
    Adlam Ahom Anatolian_Hieroglyphs Arabic Armenian Avestan Balinese Bamum Bassa_Vah Batak
    Bengali Bhaiksuki Bopomofo Brahmi Braille Buginese Buhid Canadian_Aboriginal Carian
    Caucasian_Albanian Chakma Cham Cherokee Chorasmian Common Coptic Cuneiform Cypriot
    Cypro_Minoan Cyrillic Deseret Devanagari Dives_Akuru Dogra Duployan Egyptian_Hieroglyphs
    Elbasan Elymaic Ethiopic Georgian Glagolitic Gothic Grantha Greek Gujarati Gunjala_Gondi
    Gurmukhi Han Hangul Hanifi_Rohingya Hanunoo Hatran Hebrew Hiragana Imperial_Aramaic
    Inherited Inscriptional_Pahlavi Inscriptional_Parthian Javanese Kaithi Kannada Katakana
    Kawi Kayah_Li Kharoshthi Khitan_Small_Script Khmer Khojki Khudawadi Lao Latin Lepcha Limbu
    Linear_A Linear_B Lisu Lycian Lydian Mahajani Makasar Malayalam Mandaic Manichaean Marchen
    Masaram_Gondi Medefaidrin Meetei_Mayek Mende_Kikakui Meroitic_Cursive Meroitic_Hieroglyphs
    Miao Modi Mongolian Mro Multani Myanmar Nabataean Nag_Mundari Nandinagari New_Tai_Lue Newa
    Nko Nushu Nyiakeng_Puachue_Hmong Ogham Ol_Chiki Old_Hungarian Old_Italic Old_North_Arabian
    Old_Permic Old_Persian Old_Sogdian Old_South_Arabian Old_Turkic Old_Uyghur Oriya Osage
    Osmanya Pahawh_Hmong Palmyrene Pau_Cin_Hau Phags_Pa Phoenician Psalter_Pahlavi Rejang Runic
    Samaritan Saurashtra Sharada Shavian Siddham SignWriting Sinhala Sogdian Sora_Sompeng
    Soyombo Sundanese Syloti_Nagri Syriac Tagalog Tagbanwa Tai_Le Tai_Tham Tai_Viet Takri Tamil
    Tangsa Tangut Telugu Thaana Thai Tibetan Tifinagh Tirhuta Toto Ugaritic Vai Vithkuqi Wancho
    Warang_Citi Yezidi Yi Zanabazar_Square
""".split()
)
_HEX = "0123456789abcdefABCDEF"
_OCT = "01234567"
_C_ESCAPES = {"a": "\\a", "f": "\\f", "n": "\\n", "r": "\\r", "t": "\\t", "v": "\\v"}
_PERL_CLASSES = "dDsSwW"


class _Fail(Exception):
    def __init__(self, code: str, expr: str) -> None:
        super().__init__(f"error parsing regexp: {code}: `{expr}`")


def re2_error(pattern: str) -> str | None:
    """Return Go's ``regexp.Compile`` error for ``pattern``, or None if Go (RE2) accepts it.

    Example:
        >>> re2_error(r"^/api/v[0-9]+/(users|orders)/\\d{1,6}$") is None
        True
        >>> re2_error(r"(a)\\1")
        'error parsing regexp: invalid escape sequence: `\\\\1`'
        >>> re2_error(r"foo(?=bar)")
        'error parsing regexp: invalid or unsupported Perl syntax: `(?=`'
        >>> re2_error("a{1001}")
        'error parsing regexp: invalid repeat count: `{1001}`'
        >>> re2_error("a*+")
        'error parsing regexp: invalid nested repetition operator: `*+`'
    """
    if any(0xD800 <= ord(c) <= 0xDFFF for c in pattern):
        return f"error parsing regexp: invalid UTF-8: `{pattern}`"
    try:
        python = _Parser(pattern).parse()
    except _Fail as exc:
        return str(exc)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            re.compile(python)
        except (re.error, OverflowError, RecursionError, ValueError) as exc:
            return f"error parsing regexp: {exc}"
    return None


# A node of the parse tree, just enough for Go's repeatIsValid: (max copies or None, children).
_Node = tuple[int | None, list["_Node"]]


def _repeat_ok(node: _Node, n: int) -> bool:
    count, subs = node
    if count is not None:
        if count == 0:
            return True
        if count > n:
            return False
        n //= count
    return all(_repeat_ok(sub, n) for sub in subs)


class _Parser:
    """One left-to-right pass over the pattern, mirroring Go's ``regexp/syntax.Parse``."""

    def __init__(self, pattern: str) -> None:
        self.whole = pattern
        self.t = pattern
        self.out: list[str] = []  # the equivalent Python pattern, piece by piece
        # One frame per open group: its items, each a parse-tree node and the index in ``out``
        # where its Python text starts; None marks an alternation bar.
        self.frames: list[list[tuple[_Node, int] | None]] = [[]]
        self.starts: list[int] = []  # where each open group's Python text starts
        self.last_repeat = ""  # the text of the repetition operator just read, as Go tracks it

    # --- helpers ----------------------------------------------------------------------------------

    def _push(self, node: _Node, python: str) -> None:
        self.frames[-1].append((node, len(self.out)))
        self.out.append(python)

    def _top_is_operand(self) -> bool:
        items = self.frames[-1]
        return bool(items) and items[-1] is not None

    # --- the main loop ----------------------------------------------------------------------------

    def parse(self) -> str:
        while self.t:
            repeat = ""
            c = self.t[0]
            if c == "(":
                self._open()
            elif c == "|":
                self.frames[-1].append(None)
                self.out.append("|")
                self.t = self.t[1:]
            elif c == ")":
                self._close()
            elif c in "^$":
                self._push((None, []), "(?:" + c + ")")
                self.t = self.t[1:]
            elif c == ".":
                self._push((None, []), ".")
                self.t = self.t[1:]
            elif c == "[":
                self._class()
            elif c in "*+?":
                repeat = self._repeat(None, None, 1)
            elif c == "{":
                parsed = self._parse_braces(self.t)
                if parsed is None:
                    self._push((None, []), "\\{")
                    self.t = self.t[1:]
                else:
                    repeat = self._repeat(*parsed)
            elif c == "\\":
                self._escape_atom()
            else:
                self._push((None, []), re.escape(c))
                self.t = self.t[1:]
            self.last_repeat = repeat
        if len(self.frames) > 1:
            raise _Fail("missing closing )", self.whole)
        return "".join(self.out)

    # --- groups -----------------------------------------------------------------------------------

    def _open(self) -> None:
        t = self.t
        if t.startswith("(?"):
            if (len(t) > 4 and t[2] == "P" and t[3] == "<") or (len(t) > 3 and t[2] == "<"):
                begin = 4 if t[2] == "P" else 3
                end = t.find(">")
                if end < 0:
                    raise _Fail("invalid named capture", t)
                name = t[begin:end]
                if not name or not all(ch == "_" or ch.isascii() and ch.isalnum() for ch in name):
                    raise _Fail("invalid named capture", t[: end + 1])
                self._begin_group("(")
                self.t = t[end + 1 :]
                return
            rest, sign, saw = t[2:], 1, False
            while rest:
                ch, rest = rest[0], rest[1:]
                if ch in "imsU":
                    saw = True
                elif ch == "-":
                    if sign < 0:
                        break
                    sign, saw = -1, False
                elif ch in ":)":
                    if sign < 0 and not saw:
                        break
                    if ch == ":":
                        self._begin_group("(?:")
                    self.t = rest
                    return
                else:
                    break
            raise _Fail("invalid or unsupported Perl syntax", t[: len(t) - len(rest)])
        self._begin_group("(")
        self.t = t[1:]

    def _begin_group(self, python: str) -> None:
        self.frames.append([])
        self.starts.append(len(self.out))
        self.out.append(python)

    def _close(self) -> None:
        if len(self.frames) == 1:
            raise _Fail("unexpected )", self.whole)
        items = self.frames.pop()
        self.out.append(")")
        node: _Node = (None, [item[0] for item in items if item is not None])
        self.frames[-1].append((node, self.starts.pop()))
        self.t = self.t[1:]

    # --- repetition -------------------------------------------------------------------------------

    @staticmethod
    def _parse_int(s: str) -> tuple[int, str] | None:
        digits = len(s) - len(s.lstrip("0123456789"))
        if digits == 0 or (digits >= 2 and s[0] == "0"):
            return None
        value = int(s[:digits]) if digits <= 8 else -1
        if value >= 10**8:
            value = -1
        return value, s[digits:]

    def _parse_braces(self, s: str) -> tuple[int, int, int] | None:
        """``{n}``, ``{n,}`` or ``{n,m}`` → (min, max or -1, length); None if Go reads a literal."""
        first = self._parse_int(s[1:])
        if first is None:
            return None
        lo, rest = first
        hi = lo
        if rest.startswith(","):
            rest = rest[1:]
            if rest.startswith("}"):
                hi = -1
            else:
                second = self._parse_int(rest)
                if second is None:
                    return None
                hi, rest = second
        if not rest.startswith("}"):
            return None
        return lo, hi, len(s) - len(rest) + 1

    def _repeat(self, lo: int | None, hi: int | None, size: int) -> str:
        """Apply ``*``, ``+``, ``?`` (lo None) or ``{lo,hi}`` to the last item; return Go's
        ``before`` (the pattern from the operator on), which it remembers as ``lastRepeat``."""
        before = self.t
        after = before[size:]
        if (
            lo is not None
            and hi is not None
            and (lo < 0 or lo > 1000 or hi > 1000 or (hi >= 0 and lo > hi))
        ):
            raise _Fail("invalid repeat count", before[:size])
        if after.startswith("?"):
            after = after[1:]
        if self.last_repeat:
            raise _Fail(
                "invalid nested repetition operator",
                self.last_repeat[: len(self.last_repeat) - len(after)],
            )
        text = before[: len(before) - len(after)]
        if not self._top_is_operand():
            raise _Fail("missing argument to repetition operator", text)
        item = self.frames[-1].pop()
        assert item is not None
        operand, start = item
        count = None if lo is None or hi is None else (hi if hi >= 0 else lo)
        node: _Node = (count, [operand])
        if count is not None and ((lo or 0) >= 2 or (hi or 0) >= 2) and not _repeat_ok(node, 1000):
            raise _Fail("invalid repeat count", text)
        self.frames[-1].append((node, start))
        # Go repeats a repetition left by a flag group, as in a*(?i){2}; Python needs a group.
        self.out[start] = "(?:" + self.out[start]
        self.out.append(")" + text)
        self.t = after
        return before

    # --- escapes ----------------------------------------------------------------------------------

    def _escape_atom(self) -> None:
        t = self.t
        if len(t) >= 2:
            c = t[1]
            if c in "AbBz":
                self._push((None, []), "(?:" + ("\\Z" if c == "z" else "\\" + c) + ")")
                self.t = t[2:]
                return
            if c == "C":
                raise _Fail("invalid escape sequence", t[:2])
            if c == "Q":
                literal, _, rest = t[2:].partition("\\E")
                for ch in literal:
                    self._push((None, []), re.escape(ch))
                self.t = rest
                return
            if c in "pP":
                self.t = self._unicode_class(t)
                self._push((None, []), "\\w")
                return
            if c in _PERL_CLASSES:
                self._push((None, []), "\\" + c)
                self.t = t[2:]
                return
        self.t = self._escape(t)
        self._push((None, []), "a")

    def _unicode_class(self, t: str) -> str:
        """Check ``\\pN``, ``\\p{Name}``, ``\\p{^Name}``; return the rest of the pattern."""
        if len(t) < 3:
            raise _Fail("invalid character class range", t)
        if t[2] != "{":
            name, rest, seq = t[2], t[3:], t[:3]
        else:
            end = t.find("}")
            if end < 0:
                raise _Fail("invalid character class range", t)
            name, rest, seq = t[3:end], t[end + 1 :], t[: end + 1]
        name = name[1:] if name.startswith("^") else name
        if name not in _CATEGORIES and name not in _SCRIPTS:
            raise _Fail("invalid character class range", seq)
        return rest

    def _escape(self, s: str) -> str:
        """Go's ``parseEscape``: one escaped character; return the rest of the pattern."""
        if len(s) < 2:
            raise _Fail("trailing backslash at end of expression", "")
        c, i = s[1], 2
        if c.isascii() and not c.isalnum():
            return s[i:]
        if (c in "1234567" and s[i : i + 1] and s[i] in _OCT) or c == "0":
            for _ in range(2):
                if s[i : i + 1] and s[i] in _OCT:
                    i += 1
            return s[i:]
        if c in _C_ESCAPES:
            return s[i:]
        if c == "x" and i < len(s):
            c, i = s[i], i + 1
            if c == "{":
                nhex, value = 0, 0
                while i < len(s):
                    c, i = s[i], i + 1
                    if c == "}":
                        if nhex:
                            return s[i:]
                        break
                    if c not in _HEX:
                        break
                    value = value * 16 + int(c, 16)
                    if value > 0x10FFFF:
                        break
                    nhex += 1
            else:
                second = s[i : i + 1]
                i += 1 if second else 0
                if c in _HEX and second and second in _HEX:
                    return s[i:]
        raise _Fail("invalid escape sequence", s[:i])

    # --- character classes ------------------------------------------------------------------------

    def _class(self) -> None:
        whole = self.t
        t = whole[1:]
        if t.startswith("^"):
            t = t[1:]
        first = True
        while not t or t[0] != "]" or first:
            first = False
            if not t:
                raise _Fail("missing closing ]", whole)
            if len(t) > 2 and t[0] == "[" and t[1] == ":":
                end = t.find(":]", 2)
                if end >= 0:
                    name = t[2:end]
                    if (name[1:] if name.startswith("^") else name) not in _POSIX:
                        raise _Fail("invalid character class range", t[: end + 2])
                    t = t[end + 2 :]
                    continue
            if t[0] == "\\" and len(t) >= 2 and t[1] in "pP":
                t = self._unicode_class(t)
                continue
            if t[0] == "\\" and len(t) >= 2 and t[1] in _PERL_CLASSES:
                t = t[2:]
                continue
            rng = t
            lo, t = self._class_char(t, whole)
            hi = lo
            if len(t) >= 2 and t[0] == "-" and t[1] != "]":
                hi, t = self._class_char(t[1:], whole)
                if hi < lo:
                    raise _Fail("invalid character class range", rng[: len(rng) - len(t)])
        self.t = t[1:]
        self._push((None, []), "[a]")

    def _class_char(self, t: str, whole: str) -> tuple[int, str]:
        if not t:
            raise _Fail("missing closing ]", whole)
        if t[0] != "\\":
            return ord(t[0]), t[1:]
        rest = self._escape(t)
        return _escaped_value(t[: len(t) - len(rest)]), rest


def _escaped_value(seq: str) -> int:
    """The code point of a valid escape sequence such as ``\\x41``, ``\\101`` or ``\\-``."""
    c = seq[1]
    if c == "x":
        digits = seq[3:-1] if seq[2] == "{" else seq[2:4]
        return int(digits, 16)
    if c in _OCT:
        return int(seq[1:], 8)
    if c in _C_ESCAPES:
        return {"a": 7, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11}[c]
    return ord(c)
