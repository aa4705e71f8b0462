"""The policies an HTTP route carries: retries, CORS, fault injection, redirect, direct response
and rewrite (validateHTTPRetry, validateCORSPolicy, validateHTTPFaultInjection,
validateHTTPRedirect, validateHTTPDirectResponse, validateHTTPRewrite).

Layer: L2 (package meshlens.resources.webhook). Imports: source, resources.schema.
"""

from __future__ import annotations

import re
from typing import Any

from meshlens.resources.schema import parse_go_duration
from meshlens.resources.webhook.core import (
    Collector, as_int, as_list, as_obj, as_str, field_check, has, quote,
)
from meshlens.resources.webhook.fields import validate_percentage, validate_port
from meshlens.resources.webhook.headers import HEADER_NAME
from meshlens.resources.webhook.string_match import string_match_regexp, validate_regex
from meshlens.source import FieldPath

_CORS_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "CONNECT", "OPTIONS", "TRACE", "*"}
)
_GRPC_STATUS = frozenset({
    "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
    "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",
    "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
})  # fmt: skip
_RETRY_ON = frozenset({
    "5xx", "gateway-error", "reset", "reset-before-request", "connect-failure", "retriable-4xx",
    "refused-stream", "retriable-status-codes", "retriable-headers", "envoy-ratelimited",
    "http3-post-connect-failure", "cancelled", "deadline-exceeded", "internal",
    "resource-exhausted", "unavailable",
})  # fmt: skip
#: The status codes Go's net/http.StatusText knows (a retryOn entry may be one of them).
_HTTP_STATUS = frozenset(
    [100, 101, 102, 103, 200, 201, 202, 203, 204, 205, 206, 207, 208, 226]
    + list(range(300, 309))
    + list(range(400, 419))
    + [421, 422, 423, 424, 425, 426, 428, 429, 431, 451]
    + list(range(500, 509))
    + [510, 511]
)


def http_status(status: int) -> str | None:
    if status < 200 or status > 600:
        return f"HTTP status {status} is not in range 200-599"
    return None


@field_check
def validate_retries(v: Collector, path: FieldPath, r: dict[str, Any]) -> None:
    """agent.ValidateHTTPRetry."""
    attempts = as_int(r.get("attempts"))
    if attempts < 0:
        v.err(path + ("attempts",), "attempts cannot be negative")
    if attempts == 0 and (
        has(r, "perTryTimeout") or as_str(r.get("retryOn")) or has(r, "retryRemoteLocalities")
    ):
        v.err(path, "http retry policy configured when attempts are set to 0 (disabled)")
    v.durations(path, r, "perTryTimeout")
    retry_on = as_str(r.get("retryOn"))
    if retry_on:
        for policy in retry_on.split(","):
            code = int(policy) if re.fullmatch(r"[+-]?[0-9]{1,9}", policy) else 0
            if code not in _HTTP_STATUS and policy not in _RETRY_ON:
                v.err(path + ("retryOn",), f"{quote(policy)} is not a valid retryOn policy")
    v.durations(path, r, "backoff")


@field_check
def validate_cors(v: Collector, path: FieldPath, policy: dict[str, Any]) -> None:
    for i, origin in enumerate(as_list(policy.get("allowOrigins"))):
        sm = as_obj(origin) or {}
        value = next((as_str(sm.get(k)) for k in ("exact", "prefix", "regex") if k in sm), "")
        if not value:
            v.err(
                path + ("allowOrigins", i),
                f"'{value}' is not a valid match type for CORS allow origins",
            )
            continue
        string_match_regexp(v, path + ("allowOrigins", i), sm, "corsPolicy.allowOrigins")
    for i, method in enumerate(as_list(policy.get("allowMethods"))):
        if as_str(method) not in _CORS_METHODS:
            v.err(path + ("allowMethods", i),
                  f"{quote(as_str(method))} is not a supported HTTP method")
    for key in ("allowHeaders", "exposeHeaders"):
        for i, name in enumerate(as_list(policy.get(key))):
            name = as_str(name)
            if not name:
                v.err(path + (key, i), "header name cannot be empty")
            elif name != "*" and not HEADER_NAME.fullmatch(name):
                v.err(path + (key, i), f"header name {name} is not a valid header name")
    if has(policy, "maxAge"):
        v.duration(path + ("maxAge",), policy["maxAge"])
        ns = parse_go_duration(as_str(policy["maxAge"]))
        if ns is not None and ns % 1_000_000_000 > 0:
            v.err(path + ("maxAge",), "max_age duration is accurate only to seconds precision")


@field_check
def validate_fault(v: Collector, path: FieldPath, f: dict[str, Any]) -> None:
    """validateHTTPFaultInjection: an abort and/or a delay, each with a valid percentage."""
    if not has(f, "abort") and not has(f, "delay"):
        v.err(path, "HTTP fault injection must have an abort and/or a delay")
    for key, check in (("abort", _validate_abort), ("delay", _validate_delay)):
        part = as_obj(f.get(key))
        if part is not None:
            validate_percentage(v, path + (key, "percentage"), part.get("percentage"))
            check(v, path + (key,), part)


def _validate_abort(v: Collector, ap: FieldPath, abort: dict[str, Any]) -> None:
    if has(abort, "grpcStatus"):
        if as_str(abort["grpcStatus"]) not in _GRPC_STATUS:
            v.err(
                ap + ("grpcStatus",),
                f"gRPC status {quote(as_str(abort['grpcStatus']))} is not supported. See "
                "https://github.com/grpc/grpc/blob/master/doc/statuscodes.md for a list of "
                "supported codes, for example 'NOT_FOUND'",
            )
    elif has(abort, "http2Error"):
        v.err(ap + ("http2Error",), "HTTP/2 abort fault injection not supported yet")
    elif has(abort, "httpStatus"):
        v.err(ap + ("httpStatus",), http_status(as_int(abort["httpStatus"])))
    else:
        v.warn(ap, "abort configured, but error type not set")


def _validate_delay(v: Collector, dp: FieldPath, delay: dict[str, Any]) -> None:
    if has(delay, "fixedDelay"):
        v.duration(dp + ("fixedDelay",), delay["fixedDelay"])
    elif has(delay, "exponentialDelay"):
        v.duration(dp + ("exponentialDelay",), delay["exponentialDelay"])
        v.err(dp + ("exponentialDelay",), "exponentialDelay not supported yet")


def redirect_error(redirect: dict[str, Any] | None, matches: list[Any]) -> str | None:
    """validateHTTPRedirect (it returns the first problem only)."""
    if redirect is None:
        return None
    uri, prefix = as_str(redirect.get("uri")), as_str(redirect.get("prefixRewrite"))
    if uri and prefix:
        return "redirect may only specify one of uri or prefix_rewrite"
    if prefix:
        for m in matches:
            uri_match = as_obj(as_obj(m) and m.get("uri"))
            if uri_match is not None and not has(uri_match, "prefix"):
                return "redirect prefix_rewrite requires all URI matches to use prefix match type"
    has_port = has(redirect, "port") or has(redirect, "derivePort")
    if (
        not uri
        and not prefix
        and not as_str(redirect.get("authority"))
        and not has_port
        and not as_str(redirect.get("scheme"))
    ):
        return "redirect must specify URI, authority, scheme, or port"
    code = as_int(redirect.get("redirectCode"))
    if code != 0 and (code < 300 or code > 399):
        return f"{code} is not a valid redirect code, must be 3xx"
    scheme = as_str(redirect.get("scheme"))
    if scheme and scheme not in ("http", "https"):
        return 'invalid redirect scheme, must be "http" or "https"'
    port = as_int(redirect.get("port"))
    if port > 0:
        return validate_port(port)
    return None


@field_check
def validate_direct_response(v: Collector, path: FieldPath, dr: dict[str, Any]) -> None:
    body = as_obj(dr.get("body"))
    if body is not None:
        if has(body, "string"):
            size = len(as_str(body["string"]).encode("utf-8", "surrogatepass"))
        else:
            size = len(as_str(body.get("bytes"))) * 3 // 4  # base64 → bytes
        if size > 1024 * 1024:
            v.err(
                path + ("body",),
                "large direct_responses may impact control plane performance, "
                "must be less than 1MB",
            )
        elif size > 100 * 1024:
            v.warn(path + ("body",), "large direct_responses may impact control plane performance")
    v.err(path + ("status",), http_status(as_int(dr.get("status"))))


@field_check
def validate_rewrite(v: Collector, path: FieldPath, rw: dict[str, Any]) -> None:
    regex = as_obj(rw.get("uriRegexRewrite"))
    if as_str(rw.get("uri")) and regex is not None:
        v.err(path, "rewrite may only contain one of URI or UriRegexRewrite")
        return
    if not as_str(rw.get("uri")) and regex is None and not as_str(rw.get("authority")):
        v.err(
            path,
            "rewrite must specify at least one of URI, UriRegexRewrite, or authority. Only "
            "one of URI or UriRegexRewrite may be specified",
        )
        return
    if regex is not None:
        match, sub = as_str(regex.get("match")), as_str(regex.get("rewrite"))
        if not match or not sub:
            error: str | None = (
                "UriRegexRewrite requires both Rewrite and Match fields to be specified"
            )
        else:
            error = validate_regex(match, "HTTPRewrite.UriRegexRewrite.Match")
        if error:
            v.err(path + ("uriRegexRewrite",), f"UriRegexRewrite has errors\n{error}")
