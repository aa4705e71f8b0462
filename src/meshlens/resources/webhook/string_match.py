"""String matches and RE2 regexes (validateStringMatch, validateStringRegexp).

Layer: L2 (package meshlens.resources.webhook). Imports: source, resources.re2.
"""

from __future__ import annotations

from typing import Any

from meshlens.resources.re2 import MAX_REGEX_BYTES, re2_error
from meshlens.resources.webhook.core import Collector, as_obj, as_str, quote
from meshlens.source import FieldPath


def validate_regex(re_text: str, where: str) -> str | None:
    """validateStringRegexp: at most 1024 bytes, and RE2 (Go's regexp) must compile it."""
    if len(re_text.encode("utf-8", "surrogatepass")) > MAX_REGEX_BYTES:
        return f"{quote(where)}: regex is too large, max length allowed is {MAX_REGEX_BYTES}"
    error = re2_error(re_text)
    if error is None:
        return None
    return (
        f"{quote(where)}: {error}; Istio uses RE2 style regex-based match "
        "(https://github.com/google/re2/wiki/Syntax)"
    )


def string_match_regexp(v: Collector, path: FieldPath, match: Any, where: str) -> None:
    sm = as_obj(match)
    if sm is None or "regex" not in sm or sm["regex"] is None:
        return
    regex = as_str(sm["regex"])
    if not regex:
        v.err(path + ("regex",), f"{quote(where)}: regex string match should not be empty")
        return
    v.err(path + ("regex",), validate_regex(regex, where))


def string_match(v: Collector, path: FieldPath, match: Any, where: str) -> None:
    sm = as_obj(match)
    if sm is None:
        return
    if "prefix" in sm and sm["prefix"] is not None and not as_str(sm["prefix"]):
        v.err(path + ("prefix",), f"{quote(where)}: prefix string match should not be empty")
    string_match_regexp(v, path, sm, where)
