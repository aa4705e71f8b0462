"""What every webhook module uses: the finding collector, Go's formatting, value accessors.

Layer: L2 (package meshlens.resources.webhook). Imports: source, resources.schema.

The input passed the CRD schema, so types are right; the accessors (``as_obj``, ``as_str``,
...) still never raise, and a null reads as "absent", as in istiod's decoded protos.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from meshlens.resources.schema import parse_go_duration
from meshlens.source import FieldPath


@dataclass(frozen=True, slots=True)
class Finding:
    """One webhook verdict: where, what (the webhook's words), and whether it only warns."""

    path: FieldPath
    message: str
    warning: bool = False


MS = 1_000_000
_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t",
               "\v": "\\v"}


def quote(value: str) -> str:
    """Go's ``%q``: a double-quoted string with Go escapes.

    Example:
        >>> print(quote('a"b\\x00'))
        "a\\"b\\x00"
    """
    out = ['"']
    for ch in value:
        code = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        elif code < 0x80:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    return "".join(out) + '"'


def go_float(value: float) -> str:
    """Go's ``%v`` for a float64: shortest digits, exponent form below 1e-4 and from 1e+06.

    Example:
        >>> go_float(150.0), go_float(0.00001), go_float(12.5), go_float(1e21)
        ('150', '1e-05', '12.5', '1e+21')
    """
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    dec = Decimal(repr(abs(float(value))))
    _, digits, exponent = dec.as_tuple()
    assert isinstance(exponent, int)
    exp10 = len(digits) + exponent - 1
    if exp10 < -4 or exp10 >= 6:
        ds = "".join(map(str, digits)).rstrip("0") or "0"
        frac = "." + ds[1:] if len(ds) > 1 else ""
        return f"{sign}{ds[0]}{frac}e{'-' if exp10 < 0 else '+'}{abs(exp10):02d}"
    return sign + format(dec.normalize(), "f")


def as_obj(value: Any) -> dict[str, Any] | None:
    return value if isinstance(value, dict) else None


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def as_str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def as_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0
    return int(value) if math.isfinite(value) else 0


def as_num(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    return float(value)


def has(obj: Mapping[str, Any] | None, key: str) -> bool:
    return obj is not None and obj.get(key) is not None


def is_set(obj: Mapping[str, Any] | None, key: str) -> bool:
    """A proto field that is "set": present and not null; a repeated field also not empty."""
    if obj is None or obj.get(key) is None:
        return False
    value = obj[key]
    return not (isinstance(value, list) and not value)


class Collector:
    """Collects findings; ``err``/``warn`` take the field path and the webhook's message."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self.findings: list[Finding] = []

    def err(self, path: FieldPath, message: str | None) -> None:
        if message:
            self.findings.append(Finding(path, message))

    def errs(self, path: FieldPath, messages: Iterable[str]) -> None:
        for m in messages:
            self.err(path, m)

    def warn(self, path: FieldPath, message: str) -> None:
        self.findings.append(Finding(path, message, True))

    def duration(self, path: FieldPath, value: Any) -> None:
        """agent.ValidateDuration on a field the schema already parsed as a Go duration."""
        self.err(path, duration_error(value))

    def durations(self, path: FieldPath, obj: Mapping[str, Any], *keys: str) -> None:
        """agent.ValidateDuration on each of ``keys`` that ``obj`` sets."""
        for key in keys:
            if has(obj, key):
                self.duration(path + (key,), obj[key])

    def required_duration(self, path: FieldPath, obj: Mapping[str, Any], key: str, missing: str
                          ) -> None:
        """A duration that must be set: ``missing`` at ``path`` when it is not."""
        if has(obj, key):
            self.duration(path + (key,), obj[key])
        else:
            self.err(path, missing)

    def entries(
        self, path: FieldPath, items: Any, null: str = ""
    ) -> Iterator[tuple[FieldPath, dict[str, Any]]]:
        """The mapping entries of a list, with their paths; a null entry gets ``null`` (if any)."""
        for i, item in enumerate(as_list(items)):
            if isinstance(item, dict):
                yield path + (i,), item
            elif null:
                self.err(path + (i,), null)


def duration_error(value: Any) -> str | None:
    ns = parse_go_duration(value) if isinstance(value, str) else None
    if ns is None:
        return f"time: invalid duration {quote(str(value))}"
    if ns < MS:
        return "duration must be greater than 1ms"
    if ns % MS:
        return "only durations to ms precision are supported"
    return None


def string_duration(v: Collector, path: FieldPath, value: Any) -> int | None:
    """A Duration the CRD leaves as a plain string: istiod's decoder parses it (Go syntax)."""
    if value is None:
        return None
    ns = parse_go_duration(value) if isinstance(value, str) else None
    if ns is None:
        v.err(path, f"time: invalid duration {quote(str(value))}")
    return ns


def field_check(
    check: Callable[[Collector, FieldPath, dict[str, Any]], None],
) -> Callable[[Collector, FieldPath, Any], None]:
    """Make a check of a mapping a check of a field's value: an absent or null field (or one of
    the wrong type, which the schema reported) has nothing to check."""

    @functools.wraps(check)
    def run(v: Collector, path: FieldPath, value: Any) -> None:
        obj = as_obj(value)
        if obj is not None:
            check(v, path, obj)

    return run
