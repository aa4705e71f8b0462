"""Go durations: ``time.ParseDuration``, which CEL's ``duration()`` and istiod's decoder use.

Layer: L2 (package meshlens.resources.schema). Imports: the standard library.
"""

from __future__ import annotations

import functools

_UNIT_NS = {
    "ns": 1, "us": 1_000, "\u00b5s": 1_000, "\u03bcs": 1_000, "ms": 1_000_000,
    "s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000,
}  # fmt: skip
_NS_LIMIT = 1 << 63


def parse_go_duration(text: str) -> int | None:
    """Parse a Go duration string into nanoseconds, or return None if Go would reject it.

    Example:
        >>> parse_go_duration("1h30m"), parse_go_duration(".5s"), parse_go_duration("-1.5us")
        (5400000000000, 500000000, -1500)
        >>> parse_go_duration("0"), parse_go_duration("10"), parse_go_duration("1d")
        (0, None, None)
    """
    # The same few durations ("1s", "30s") repeat across a mesh; each is parsed once.
    return _parse_short(text) if len(text) <= 32 else _parse(text)


def _parse(text: str) -> int | None:
    s, neg = text, False
    if s[:1] in ("-", "+"):
        neg, s = s[0] == "-", s[1:]
    if s == "0":
        return 0
    if not s:
        return None
    total, i, n = 0, 0, len(s)
    while i < n:
        if not (s[i] == "." or "0" <= s[i] <= "9"):
            return None
        start, whole = i, 0
        while i < n and "0" <= s[i] <= "9":
            whole = whole * 10 + ord(s[i]) - 48
            if whole > _NS_LIMIT:
                return None
            i += 1
        pre, frac, scale, post = i != start, 0, 1.0, False
        if i < n and s[i] == ".":
            i, start, overflow = i + 1, i + 1, False
            while i < n and "0" <= s[i] <= "9":
                # Go's leadingFraction: digits past the precision limit are read and dropped.
                if not overflow:
                    nxt = frac * 10 + ord(s[i]) - 48
                    if frac > (_NS_LIMIT - 1) // 10 or nxt > _NS_LIMIT:
                        overflow = True
                    else:
                        frac, scale = nxt, scale * 10
                i += 1
            post = i != start
        if not pre and not post:
            return None
        start = i
        while i < n and not (s[i] == "." or "0" <= s[i] <= "9"):
            i += 1
        unit = _UNIT_NS.get(s[start:i])
        if unit is None or whole > _NS_LIMIT // unit:
            return None
        whole *= unit
        if frac:
            whole += int(float(frac) * (float(unit) / scale))
        total += whole
        if whole > _NS_LIMIT or total > _NS_LIMIT:
            return None
    if neg:
        return -total
    return total if total < _NS_LIMIT else None


_parse_short = functools.lru_cache(maxsize=4096)(_parse)
