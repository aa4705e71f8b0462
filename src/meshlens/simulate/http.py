"""HTTP routing as Envoy's router does it: virtual host by authority, the first route that
matches, and what the route does to the request and the response.

Layer: L5. Imports: simulate.types, xDS protos.

`VirtualHostImpl` domain matching (exact > ``*.suffix`` > ``prefix*`` > ``*``, longest first;
``ignore_port_in_host_matching``), `RouteEntryImplBase::matchRoute` (path, headers, query
parameters), and the effects Istio's route translation can put on a route: redirects, direct
responses, rewrites, header operations, mirrors, the fault filter's config, retries, timeouts.
"""

from __future__ import annotations

import re
from typing import Any

from envoy.config.route.v3 import route_components_pb2 as rc_pb2

from meshlens.simulate.types import Request

FAULT_FILTER = "envoy.filters.http.fault"
_REDIRECT_STATUS = {rc_pb2.RedirectAction.MOVED_PERMANENTLY: 301, rc_pb2.RedirectAction.FOUND: 302,
                    rc_pb2.RedirectAction.SEE_OTHER: 303, rc_pb2.RedirectAction.TEMPORARY_REDIRECT: 307,
                    rc_pb2.RedirectAction.PERMANENT_REDIRECT: 308}


def _domain_score(domain: str, host: str) -> int | None:
    if domain == host:
        return 4_000_000
    if domain == "*":
        return 0
    if domain.startswith("*") and host.endswith(domain[1:]) and len(host) > len(domain) - 1:
        return 3_000_000 + len(domain)
    if domain.endswith("*") and host.startswith(domain[:-1]) and len(host) > len(domain) - 1:
        return 2_000_000 + len(domain)
    return None


def select_virtual_host(rc: Any, authority: str) -> tuple[Any | None, int]:
    host = authority.lower()
    if rc.ignore_port_in_host_matching and ":" in host and not host.startswith("["):
        host = host.rsplit(":", 1)[0]
    best, best_i, score = None, -1, -1
    for i, vh in enumerate(rc.virtual_hosts):
        for d in vh.domains:
            s = _domain_score(d.lower(), host)
            if s is not None and s > score:
                best, best_i, score = vh, i, s
    return best, best_i


def _string_match(m: Any, value: str | None) -> bool:
    if value is None:
        return False
    kind = m.WhichOneof("match_pattern")
    v, ic = value, m.ignore_case
    if ic:
        v = v.lower()
    if kind == "exact":
        return v == (m.exact.lower() if ic else m.exact)
    if kind == "prefix":
        return v.startswith(m.prefix.lower() if ic else m.prefix)
    if kind == "suffix":
        return v.endswith(m.suffix.lower() if ic else m.suffix)
    if kind == "contains":
        return (m.contains.lower() if ic else m.contains) in v
    if kind == "safe_regex":
        return re.fullmatch(m.safe_regex.regex, value) is not None
    return False


def _header_match(hm: Any, headers: dict[str, str]) -> bool:
    value = headers.get(hm.name.lower())
    kind = hm.WhichOneof("header_match_specifier")
    if kind == "present_match":
        ok = (value is not None) == hm.present_match
    elif kind == "string_match":
        ok = _string_match(hm.string_match, value)
    elif kind == "exact_match":
        ok = value == hm.exact_match
    elif kind == "prefix_match":
        ok = value is not None and value.startswith(hm.prefix_match)
    elif kind == "safe_regex_match":
        ok = value is not None and re.fullmatch(hm.safe_regex_match.regex, value) is not None
    elif kind is None:
        ok = value is not None
    else:
        ok = False
    if hm.treat_missing_header_as_empty and value is None:
        ok = False
    return ok != hm.invert_match


def route_matches(route: Any, req: Request, headers: dict[str, str]) -> tuple[bool, str]:
    """Envoy's route match: path, headers, query parameters. Returns (matched, why)."""
    m = route.match
    kind = m.WhichOneof("path_specifier")
    sensitive = not m.HasField("case_sensitive") or m.case_sensitive.value
    path = req.path
    p = path if sensitive else path.lower()

    def c(x: str) -> str:
        return x if sensitive else x.lower()

    if kind == "prefix":
        if not p.startswith(c(m.prefix)):
            return False, f"path {path} does not start with {m.prefix}"
    elif kind == "path":
        if p != c(m.path):
            return False, f"path {path} is not {m.path}"
    elif kind == "safe_regex":
        if re.fullmatch(m.safe_regex.regex, path) is None:
            return False, f"path {path} does not match regex {m.safe_regex.regex}"
    elif kind == "path_separated_prefix":
        pre = c(m.path_separated_prefix)
        if not (p == pre or p.startswith(pre + "/") or p.startswith(pre + "?")):
            return False, f"path {path} is not under {m.path_separated_prefix}"
    for hm in m.headers:
        if not _header_match(hm, headers):
            return False, f"header {hm.name} does not match"
    for qm in m.query_parameters:
        value = req.query.get(qm.name)
        if qm.HasField("string_match"):
            if not _string_match(qm.string_match, value):
                return False, f"query parameter {qm.name} does not match"
        elif qm.present_match and value is None:
            return False, f"query parameter {qm.name} is missing"
    return True, "matched"




# -- what the chosen route does --------------------------------------------------------------------

def seconds(d: Any) -> float:
    return float(d.seconds) + d.nanos / 1e9


def fmt_seconds(s: float) -> str:
    return f"{s * 1000:g}ms" if 0 < s < 1 else f"{s:g}s"


def _fraction(fp: Any) -> float:
    """A FractionalPercent as a probability (0..1)."""
    denominators = {0: 100, 1: 10_000, 2: 1_000_000}
    return min(1.0, fp.numerator / denominators.get(fp.denominator, 100))


def fault_of(route: Any, vh: Any) -> Any | None:
    """The fault filter's per-route config (route, else virtual host), as HTTPFault."""
    from envoy.extensions.filters.http.fault.v3 import fault_pb2

    for holder in (route, vh):
        any_ = holder.typed_per_filter_config.get(FAULT_FILTER) if holder is not None else None
        if any_ is not None and any_.Is(fault_pb2.HTTPFault.DESCRIPTOR):
            out = fault_pb2.HTTPFault()
            any_.Unpack(out)
            return out
    return None


def fault_summary(f: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if f.HasField("delay"):
        out["delay"] = {"fixed_delay": fmt_seconds(seconds(f.delay.fixed_delay)),
                        "probability": _fraction(f.delay.percentage) if f.delay.HasField("percentage") else 1.0}
    if f.HasField("abort"):
        a = f.abort
        kind = a.WhichOneof("error_type")
        out["abort"] = {"http_status": a.http_status if kind == "http_status" else None,
                        "grpc_status": a.grpc_status if kind == "grpc_status" else None,
                        "probability": _fraction(a.percentage) if a.HasField("percentage") else 1.0}
    return out


def retry_of(route: Any, vh: Any) -> Any | None:
    if route.WhichOneof("action") == "route" and route.route.HasField("retry_policy"):
        return route.route.retry_policy
    if vh is not None and vh.HasField("retry_policy"):
        return vh.retry_policy
    return None


def retry_summary(rp: Any | None) -> dict[str, Any] | None:
    if rp is None:
        return None
    out: dict[str, Any] = {"retry_on": rp.retry_on,
                           "num_retries": rp.num_retries.value if rp.HasField("num_retries") else 1}
    if rp.HasField("per_try_timeout"):
        out["per_try_timeout"] = fmt_seconds(seconds(rp.per_try_timeout))
    if rp.retriable_status_codes:
        out["retriable_status_codes"] = list(rp.retriable_status_codes)
    if rp.retry_host_predicate:
        out["host_predicates"] = [p.name for p in rp.retry_host_predicate]
    if rp.host_selection_retry_max_attempts:
        out["host_selection_retry_max_attempts"] = rp.host_selection_retry_max_attempts
    return out


def rewritten_path(route: Any, path: str) -> str | None:
    """The path after ``prefix_rewrite`` / ``regex_rewrite`` (None: unchanged)."""
    ra = route.route
    m = route.match
    if ra.prefix_rewrite:
        kind = m.WhichOneof("path_specifier")
        if kind == "prefix":
            return ra.prefix_rewrite + path[len(m.prefix):]
        if kind == "path":
            return ra.prefix_rewrite
        return ra.prefix_rewrite + path
    if ra.HasField("regex_rewrite"):
        return re.sub(ra.regex_rewrite.pattern.regex, ra.regex_rewrite.substitution, path)
    return None


def _headers_op(msg: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if msg.request_headers_to_add:
        out["request_headers_set"] = {h.header.key: h.header.value for h in msg.request_headers_to_add}
    if msg.request_headers_to_remove:
        out["request_headers_removed"] = list(msg.request_headers_to_remove)
    if msg.response_headers_to_add:
        out["response_headers_set"] = {h.header.key: h.header.value for h in msg.response_headers_to_add}
    if msg.response_headers_to_remove:
        out["response_headers_removed"] = list(msg.response_headers_to_remove)
    return out


def route_effects(route: Any, req: Request) -> dict[str, Any]:
    """Rewrites, header operations and mirrors of a route action, with their effect."""
    out = _headers_op(route)
    if route.WhichOneof("action") != "route":
        return out
    ra = route.route
    new_path = rewritten_path(route, req.path)
    if new_path is not None:
        out["path_rewrite"] = f"{req.path} → {new_path}"
    if ra.host_rewrite_literal:
        out["authority_rewrite"] = f"{req.authority} → {ra.host_rewrite_literal}"
    mirrors = []
    for mp in ra.request_mirror_policies:
        share = _fraction(mp.runtime_fraction.default_value) if mp.HasField("runtime_fraction") else 1.0
        mirrors.append({"cluster": mp.cluster, "share": round(100 * share, 4),
                        "effect": "a copy of the request is sent; its response is ignored"})
    if mirrors:
        out["mirrors"] = mirrors
    if ra.HasField("weighted_clusters"):
        per = {w.name: _headers_op(w) for w in ra.weighted_clusters.clusters if _headers_op(w)}
        if per:
            out["per_destination_headers"] = per
    timeout = seconds(ra.timeout) if ra.HasField("timeout") else 15.0
    out["timeout"] = fmt_seconds(timeout) if timeout else "0s (none)"
    rp = retry_summary(ra.retry_policy if ra.HasField("retry_policy") else None)
    if rp is not None:
        out["retries"] = rp
    return out


def redirect_effect(route: Any, req: Request) -> tuple[int, str]:
    """(status, Location) of a redirect route (`RedirectAction`)."""
    r = route.redirect
    scheme = r.scheme_redirect or ("https" if r.https_redirect else req.scheme if req.is_http else "http")
    host = r.host_redirect or req.authority.rsplit(":", 1)[0]
    port = f":{r.port_redirect}" if r.port_redirect else ""
    if not r.host_redirect and not r.port_redirect and ":" in req.authority and not r.https_redirect:
        port = ":" + req.authority.rsplit(":", 1)[1]
    if r.path_redirect:
        path = r.path_redirect
    elif r.prefix_rewrite:
        m = route.match
        prefix = m.prefix if m.WhichOneof("path_specifier") == "prefix" else ""
        path = r.prefix_rewrite + req.path[len(prefix):]
    else:
        path = req.path
    return _REDIRECT_STATUS.get(r.response_code, 301), f"{scheme}://{host}{port}{path}"
