"""A VirtualService's HTTP routes: ``validateHTTPRoute`` and the route destinations shared with
TCP and TLS routes (pkg/config/validation/virtualservice.go and validation.go).

Layer: L2 (package meshlens.resources.webhook). Imports: source. The policies a route carries
(CORS, fault, retries, redirect, direct response, rewrite) are in :mod:`.http_policies`; header
names, values and operations in :mod:`.headers`.
"""

from __future__ import annotations

from typing import Any

from meshlens.resources.webhook.core import Collector, as_int, as_list, as_num, as_obj, as_str, has
from meshlens.resources.webhook.fields import validate_destination, validate_port
from meshlens.resources.webhook.headers import (
    authority_rewrite_error, header_name_or_claim, header_ops,
)
from meshlens.resources.webhook.http_policies import (
    redirect_error, validate_cors, validate_direct_response, validate_fault, validate_retries,
    validate_rewrite,
)
from meshlens.resources.webhook.names import is_label, validate_gateway_names, validate_labels
from meshlens.resources.webhook.string_match import string_match, string_match_regexp
from meshlens.source import FieldPath


def route_destinations(v: Collector, path: FieldPath, routes: list[Any], *, http: bool) -> None:
    """validateHTTPRouteDestinations / validateRouteDestinations: weights and destinations."""
    total = 0
    for p, rd in v.entries(path, routes, "weight may not be nil"):
        if not has(rd, "destination"):
            v.err(p, "destination is required")
        if http:
            header_ops(v, p + ("headers",), rd.get("headers"))
        validate_destination(v, p + ("destination",), rd.get("destination"))
        weight = as_int(rd.get("weight"))
        if weight < 0:
            v.err(p + ("weight",), f"weight {weight} < 0")
        total += weight
    if len(routes) > 1 and total == 0:
        v.err(path, "total destination weight = 0")


def validate_http_route(
    v: Collector, path: FieldPath, route: dict[str, Any], *, delegate: bool
) -> None:
    """validateHTTPRoute, in istiod's order (matches first, then each policy, then routes)."""
    http_route_conflicts(v, path, route, delegate=delegate)
    matches = as_list(route.get("match"))
    for mp, m in v.entries(path + ("match",), matches):
        _validate_match_strings(v, mp, m)
    for mp, m in v.entries(path + ("match",), matches):
        _validate_match_sources(v, mp, m)
    header_ops(v, path + ("headers",), route.get("headers"))
    validate_cors(v, path + ("corsPolicy",), route.get("corsPolicy"))
    validate_fault(v, path + ("fault",), route.get("fault"))
    _validate_mirrors(v, path, route)
    v.err(path + ("redirect",), redirect_error(as_obj(route.get("redirect")), matches))
    validate_direct_response(v, path + ("directResponse",), route.get("directResponse"))
    validate_retries(v, path + ("retries",), route.get("retries"))
    validate_rewrite(v, path + ("rewrite",), route.get("rewrite"))
    v.err(path + ("rewrite",), authority_rewrite_error(route))
    route_destinations(v, path + ("route",), as_list(route.get("route")), http=True)
    v.durations(path, route, "timeout")


def _validate_match_strings(v: Collector, mp: FieldPath, m: dict[str, Any]) -> None:
    """Header names and the string matches of one HTTPMatchRequest."""
    for name, header in (as_obj(m.get("headers")) or {}).items():
        hp = mp + ("headers", name)
        if header is None:
            v.err(hp, f"header match {name} cannot be null")
        v.err(hp, header_name_or_claim(str(name)))
        string_match(v, hp, header, "headers")
    for name, header in (as_obj(m.get("withoutHeaders")) or {}).items():
        hp = mp + ("withoutHeaders", name)
        v.err(hp, header_name_or_claim(str(name)))
        # "*" is not a regex: istiod reads it as "header present".
        if as_obj(header) is not None and header.get("regex") != "*":
            string_match(v, hp, header, "withoutHeaders")
    string_match_regexp(v, mp + ("uri",), m.get("uri"), "uri")
    for key in ("scheme", "method", "authority"):
        string_match(v, mp + (key,), m.get(key), key)
    for name, qp in (as_obj(m.get("queryParams")) or {}).items():
        string_match(v, mp + ("queryParams", name), qp, "queryParams")


def _validate_match_sources(v: Collector, mp: FieldPath, m: dict[str, Any]) -> None:
    """Port, source labels, gateways and source namespace of one HTTPMatchRequest."""
    if as_int(m.get("port")) != 0:
        v.err(mp + ("port",), validate_port(as_int(m.get("port"))))
    v.errs(mp + ("sourceLabels",), validate_labels(as_obj(m.get("sourceLabels")) or {}))
    validate_gateway_names(v, mp + ("gateways",), as_list(m.get("gateways")))
    source_ns = as_str(m.get("sourceNamespace"))
    if source_ns and not is_label(source_ns):
        v.err(mp + ("sourceNamespace",), f"sourceNamespace match {source_ns} is invalid")


def _mirror_bounds(v: Collector, path: FieldPath, percentage: Any, what: str) -> None:
    pct = as_obj(percentage)
    if pct is None:
        return
    value = as_num(pct.get("value"))
    if value > 100:
        v.err(path, f"{what} must have a max value of 100 (it has {value:f})")
    if value < 0:
        v.err(path, f"{what} must have a min value of 0 (it has {value:f})")


def _validate_mirrors(v: Collector, path: FieldPath, route: dict[str, Any]) -> None:
    """mirrorPercent (deprecated), mirrorPercentage, mirror and mirrors."""
    for key in ("mirrorPercent", "mirror_percent"):
        if has(route, key):
            value = as_int(route[key])
            if value > 100:
                v.err(
                    path + (key,), f"mirror_percent must have a max value of 100 (it has {value})"
                )
            v.warn(
                path + (key,),
                'using deprecated setting "mirrorPercent", use "mirrorPercentage" instead',
            )
    _mirror_bounds(v, path + ("mirrorPercentage",), route.get("mirrorPercentage"),
                   "mirror_percentage")
    validate_destination(v, path + ("mirror",), route.get("mirror"))
    for p, mirror in v.entries(path + ("mirrors",), route.get("mirrors"), "mirror cannot be null"):
        if not has(mirror, "destination"):
            v.err(p, "destination is required for mirrors")
            continue
        validate_destination(v, p + ("destination",), mirror["destination"])
        _mirror_bounds(v, p + ("percentage",), mirror.get("percentage"), "mirror percentage")


#: For a route with ``redirect`` or ``directResponse``: the fields it may not also have.
_EXCLUSIVE: dict[str, tuple[tuple[str, str], ...]] = {
    "redirect": (
        ("route", "HTTP route cannot contain both route and redirect"),
        ("fault", "HTTP route cannot contain both fault and redirect"),
        ("rewrite", "HTTP route rule cannot contain both rewrite and redirect"),
        ("directResponse", "HTTP route rule cannot contain both direct_response and redirect"),
    ),
    "directResponse": (
        ("route", "HTTP route cannot contain both route and direct_response"),
        ("fault", "HTTP route cannot contain both fault and direct_response"),
        ("rewrite", "HTTP route rule cannot contain both rewrite and direct_response"),
    ),
}


def http_route_conflicts(
    v: Collector, path: FieldPath, route: dict[str, Any], *, delegate: bool
) -> None:
    """The field combinations validateHTTPRoute forbids (root/delegate routes, redirect, ...)."""
    name = as_str(route.get("name"))
    present = {k for k in ("redirect", "fault", "rewrite", "directResponse", "delegate", "mirror")
               if has(route, k)}
    if as_list(route.get("route")):
        present.add("route")
    if not delegate and "delegate" in present:
        if "redirect" in present:
            v.err(path + ("redirect",), f"root HTTP route {name} must not specify redirect")
        if route.get("route") is not None:
            v.err(path + ("route",), f"root HTTP route {name} must not specify route")
        return
    if delegate and "delegate" in present:
        v.err(path + ("delegate",), "delegate HTTP route cannot contain delegate")
    primary = next((k for k in _EXCLUSIVE if k in present), None)
    if primary is not None:
        v.errs(path, [message for other, message in _EXCLUSIVE[primary] if other in present])
    elif "route" not in present:
        v.err(path, "HTTP route, redirect or direct_response is required")
    if "mirror" in present and as_list(route.get("mirrors")):
        v.err(path, "HTTP route cannot contain both mirror and mirrors")
