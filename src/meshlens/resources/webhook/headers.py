"""HTTP header names, values and operations: ValidateHTTPHeaderNameOrJwtClaimRoute,
ValidateHTTPHeaderOperationName, ValidateHTTPHeaderValue (Envoy's ``%VAR%`` grammar) and the
authority rewrite rule.

Layer: L2 (package meshlens.resources.webhook). Imports: source.
"""

from __future__ import annotations

import re
from typing import Any

from meshlens.resources.webhook.core import Collector, as_list, as_obj, as_str, field_check, quote
from meshlens.source import FieldPath

HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~A-Za-z0-9]+")
_HEADER_VALUE_BAD = re.compile("[\x00-\x08\x0a-\x1f\x7f]")
_PSEUDO_HEADERS = frozenset({":method", ":scheme", ":authority", ":path", ":status"})
_JWT_CLAIM = "@request.auth.claims"


def header_name_or_claim(name: str) -> str | None:
    """ValidateHTTPHeaderNameOrJwtClaimRoute."""
    if not name:
        return "header name cannot be empty"
    if is_jwt_claim(name) or name in _PSEUDO_HEADERS:
        return None
    if not HEADER_NAME.fullmatch(name):
        return f"header name {name} is not a valid header name"
    return None


def is_jwt_claim(name: str) -> bool:
    if not name.lower().startswith(_JWT_CLAIM):
        return False
    rest = name[len(_JWT_CLAIM) :]
    return (rest.startswith(".") and len(rest) > 1) or (
        rest.startswith("[") and rest.endswith("]") and len(rest) > 2
    )


def _is_internal_header(name: str) -> bool:
    return name.startswith(":") or name.lower() == "host"


def is_authority_header(name: str) -> bool:
    return name.lower() in (":authority", "host")


def _header_op_name(name: str, *, authority_ok: bool) -> str | None:
    """ValidateHTTPHeaderWithAuthorityOperationName / ValidateHTTPHeaderOperationName."""
    if not name:
        return "header name cannot be empty"
    if authority_ok:
        if _is_internal_header(name) and not is_authority_header(name):
            return f'invalid header {quote(name)}: header cannot have ":" prefix'
        return None
    if name.lower() == "host":
        return f"invalid header {quote(name)}: cannot set Host header"
    if _is_internal_header(name):
        return f'invalid header {quote(name)}: header cannot have ":" prefix'
    return None


def _header_value(value: str) -> str | None:
    """ValidateHTTPHeaderValue: no control characters, well-formed ``%VAR%`` expressions."""
    if _HEADER_VALUE_BAD.search(value):
        return f"header value configuration {value} is invalid"
    error = _header_value_syntax(value.encode("utf-8", "surrogatepass"))
    return f"header value configuration: {error}" if error else None


def _header_value_syntax(data: bytes) -> str | None:  # noqa: C901 - one state machine
    """Envoy's header formatter grammar, as istiod's validateHeaderValue walks it (bytes)."""
    literal, name, expect_array, expect_string, string, delim_or_end, args_end, var_end = range(8)
    state, pos = literal, 0
    while pos < len(data):
        ch = data[pos]
        more = pos + 1 < len(data)
        if state == literal:
            if ch == 0x25:  # %
                if not more:
                    return "invalid header configuration. Un-escaped %"
                if data[pos + 1] == 0x25:
                    pos += 1
                else:
                    state = name
        elif state == name:
            if ch == 0x25:
                state = literal
            elif ch == 0x28:  # (
                state = expect_array
        elif state == expect_array:
            if ch == 0x5B:  # [
                state = expect_string
            elif ch != 0x20:
                state = string
        elif state == delim_or_end:
            if ch == 0x2C:
                state = expect_string
            elif ch == 0x5D:
                state = args_end
            elif ch != 0x20:
                return "invalid header configuration. Expecting ',', ']', or whitespace"
        elif state == expect_string:
            if ch == 0x22:
                state = string
            elif ch != 0x20:
                return "invalid header configuration. Expecting '\"'"
        elif state == string:
            if ch == 0x5C:  # backslash
                if not more:
                    return "invalid header configuration. Un-terminated backslash in JSON string"
                pos += 1
            elif ch == 0x29:
                state = var_end
            elif ch == 0x22:
                state = delim_or_end
        elif state == args_end:
            if ch == 0x29:
                state = var_end
            elif ch != 0x20:
                return (
                    "invalid header configuration. Expecting ')' or whitespace after '{}', "
                    "but found '{}'"
                )
        elif state == var_end:
            if ch == 0x25:
                state = literal
            elif ch != 0x20:
                return "invalid header configuration. Expecting '%' or whitespace after"
        pos += 1
    if state != literal:
        text = data.decode("utf-8", "replace")
        return f"invalid header configuration. Un-terminated variable expression '{text}'"
    return None


@field_check
def header_ops(v: Collector, path: FieldPath, hdr: dict[str, Any]) -> None:
    for side in ("request", "response"):
        ops = as_obj(hdr.get(side))
        if ops is None:
            continue
        for op in ("add", "set"):
            for name, value in (as_obj(ops.get(op)) or {}).items():
                p = path + (side, op, name)
                v.err(p, _header_op_name(str(name), authority_ok=side == "request"))
                v.err(p, _header_value(as_str(value)))
        for i, name in enumerate(as_list(ops.get("remove"))):
            v.err(path + (side, "remove", i), _header_op_name(as_str(name), authority_ok=False))


def authority_rewrite_error(route: dict[str, Any]) -> str | None:
    current = as_str((as_obj(route.get("rewrite")) or {}).get("authority"))
    request = as_obj((as_obj(route.get("headers")) or {}).get("request")) or {}
    for op in ("set", "add"):
        for name, value in (as_obj(request.get(op)) or {}).items():
            if not is_authority_header(str(name)):
                continue
            if current:
                return (
                    f"authority header cannot be set multiple times: have {quote(current)}, "
                    f"attempting to set {quote(as_str(value))}"
                )
            current = as_str(value)
    return None
