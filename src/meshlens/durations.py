"""Durations as Istio reads them (Go's ``time.ParseDuration`` syntax) and as protobuf prints them.

Layer: L0 (leaf). Imports: stdlib only.
"""

from __future__ import annotations

import functools
import re
from decimal import Decimal

_UNITS = {"ns": Decimal(1), "us": Decimal(1_000), "µs": Decimal(1_000), "μs": Decimal(1_000),
          "ms": Decimal(1_000_000), "s": Decimal(1_000_000_000), "m": Decimal(60_000_000_000),
          "h": Decimal(3_600_000_000_000)}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
MAX_NANOS = 315_576_000_000 * 10**9  # protobuf Duration's range


@functools.lru_cache(maxsize=4096)
def _parse(text: str) -> int | None:
    if text == "0":
        return 0
    pos, total = 0, Decimal(0)
    while pos < len(text):
        m = _PART.match(text, pos)
        if not m:
            return None
        total += Decimal(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    nanos = int(total)
    return nanos if nanos <= MAX_NANOS else None


def parse_duration(text: object) -> int | None:
    """Parse a duration into nanoseconds; None if it is not a valid duration.

    Example:
        >>> parse_duration("300ms"), parse_duration("1m30s"), parse_duration("0.5s")
        (300000000, 90000000000, 500000000)
        >>> parse_duration("10"), parse_duration("-1s"), parse_duration(5)
        (None, None, None)
    """
    if not isinstance(text, str) or not text or len(text) > 64:
        return None
    return _parse(text)


def split(nanos: int) -> tuple[int, int]:
    """(seconds, nanos) for a protobuf Duration."""
    return nanos // 1_000_000_000, nanos % 1_000_000_000


def render(nanos: int) -> str:
    """Render nanoseconds the way protobuf's JSON mapping prints a Duration.

    Example:
        >>> render(300_000_000), render(10_000_000_000), render(10_000_000_001)
        ('0.300s', '10s', '10.000000001s')
    """
    seconds, rest = split(nanos)
    if rest == 0:
        return f"{seconds}s"
    if rest % 1_000_000 == 0:
        return f"{seconds}.{rest // 1_000_000:03d}s"
    if rest % 1_000 == 0:
        return f"{seconds}.{rest // 1_000:06d}s"
    return f"{seconds}.{rest:09d}s"
