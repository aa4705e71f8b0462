"""HTTPRetry → Envoy RetryPolicy (`core/route/retry/retry.go`).

Layer: L4. Imports: durations, xDS protos.
"""

from __future__ import annotations

from typing import Any

from envoy.config.route.v3 import route_components_pb2 as rc_pb2
from envoy.extensions.retry.host.previous_hosts.v3 import previous_hosts_pb2
from envoy.extensions.retry.priority.previous_priorities.v3 import (
    previous_priorities_config_pb2 as prev_prio_pb2,
)

from meshlens import durations

DEFAULT_RETRY_ON = "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"
DEFAULT_INBOUND_RETRY_ON = "reset-before-request"
PREVIOUS_HOSTS = "envoy.retry_host_predicates.previous_hosts"
PREVIOUS_PRIORITIES = "envoy.retry_priorities.previous_priorities"

#: Go's ``http.StatusText(code) != ""``: the status codes net/http knows.
HTTP_STATUS_CODES = frozenset({
    100, 101, 102, 103, 200, 201, 202, 203, 204, 205, 206, 207, 208, 226, 300, 301, 302, 303, 304,
    305, 307, 308, 400, 401, 402, 403, 404, 405, 406, 407, 408, 409, 410, 411, 412, 413, 414, 415,
    416, 417, 418, 421, 422, 423, 424, 425, 426, 428, 429, 431, 451, 500, 501, 502, 503, 504, 505,
    506, 507, 508, 510, 511})


def parse_retry_on(retry_on: str) -> tuple[str, list[int]]:
    """`parseRetryOn`: status codes out, the rest re-joined.

    Example:
        >>> parse_retry_on("some,fake,5xx,404,conditions,503")
        ('some,fake,5xx,conditions', [404, 503])
        >>> parse_retry_on(" some,\\t,fake ,\\tconditions, ,1000")
        ('some,fake,conditions,1000', [])
    """
    codes: list[int] = []
    rest: list[str] = []
    for part in retry_on.split(","):
        part = part.strip(" \t\n\r\v\f")
        if not part:
            continue
        try:
            code = int(part, 10)
        except ValueError:
            code = -1
        if code in HTTP_STATUS_CODES and part.lstrip("+-").isdigit():
            codes.append(code)
        else:
            rest.append(part)
    return ",".join(rest), codes


def _previous_hosts() -> rc_pb2.RetryPolicy.RetryHostPredicate:
    p = rc_pb2.RetryPolicy.RetryHostPredicate(name=PREVIOUS_HOSTS)
    p.typed_config.Pack(previous_hosts_pb2.PreviousHostsPredicate())
    return p


def _set_duration(msg: Any, value: Any) -> bool:
    nanos = durations.parse_duration(value)
    if nanos is None:
        return False
    msg.seconds, msg.nanos = durations.split(nanos)
    return True


def _apply_retry_on(out: rc_pb2.RetryPolicy, retry_on: Any) -> None:
    if isinstance(retry_on, str) and retry_on:
        out.retry_on, codes = parse_retry_on(retry_on)
        out.retriable_status_codes.extend(codes)
        if codes and "retriable-status-codes" not in out.retry_on:
            out.retry_on += ",retriable-status-codes"


def translate_retry_policy(retries: dict[str, Any] | None, *,
                           hash_policy: bool = False) -> rc_pb2.RetryPolicy | None:
    """`ConvertPolicy`: None input → Istio's default; ``attempts <= 0`` → no policy.

    ``hash_policy`` (a consistent-hash single destination) drops the previous-hosts predicate
    unless ``retryIgnorePreviousHosts`` asks for it.
    """
    out = rc_pb2.RetryPolicy(retry_on=DEFAULT_RETRY_ON, host_selection_retry_max_attempts=5)
    out.num_retries.value = 2
    if not hash_policy:
        out.retry_host_predicate.append(_previous_hosts())
    if retries is None:
        return out
    attempts = int(retries.get("attempts") or 0)
    if attempts <= 0:
        return None
    out.num_retries.value = attempts
    _apply_retry_on(out, retries.get("retryOn"))
    if retries.get("perTryTimeout") is not None:
        _set_duration(out.per_try_timeout, retries["perTryTimeout"])
    if retries.get("retryIgnorePreviousHosts") is not None:
        del out.retry_host_predicate[:]
        if retries["retryIgnorePreviousHosts"]:
            out.retry_host_predicate.append(_previous_hosts())
    if retries.get("retryRemoteLocalities"):
        out.retry_priority.name = PREVIOUS_PRIORITIES
        out.retry_priority.typed_config.Pack(prev_prio_pb2.PreviousPrioritiesConfig(update_frequency=2))
    if retries.get("backoff") is not None:
        _set_duration(out.retry_back_off.base_interval, retries["backoff"])
    return out


def translate_inbound_retry_policy(retries: dict[str, Any] | None) -> rc_pb2.RetryPolicy | None:
    """`ConvertInboundPolicy`: ``reset-before-request`` ×2 by default; only attempts, retryOn and
    backoff are honoured."""
    out = rc_pb2.RetryPolicy(retry_on=DEFAULT_INBOUND_RETRY_ON)
    out.num_retries.value = 2
    if retries is None:
        return out
    attempts = int(retries.get("attempts") or 0)
    if attempts <= 0:
        return None
    out.num_retries.value = attempts
    _apply_retry_on(out, retries.get("retryOn"))
    if retries.get("backoff") is not None:
        _set_duration(out.retry_back_off.base_interval, retries["backoff"])
    return out
