"""VirtualService: ``ValidateVirtualService`` (pkg/config/validation/virtualservice.go) for the
hosts, gateways and TCP/TLS routes; HTTP routes are in :mod:`.http_route`.

Layer: L2 (package meshlens.resources.webhook). Imports: source.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from meshlens.resources.webhook.core import Collector, as_int, as_list, as_obj, as_str, quote
from meshlens.resources.webhook.fields import (
    is_ip, validate_export_to, validate_ip_subnet, validate_port,
)
from meshlens.resources.webhook.headers import is_jwt_claim
from meshlens.resources.webhook.http_route import route_destinations, validate_http_route
from meshlens.resources.webhook.names import (
    gateway_domain_error, host_matches, host_subset_of, validate_gateway_names, validate_labels,
    validate_wildcard_domain,
)
from meshlens.source import FieldPath


def validate(v: Collector, spec: dict[str, Any], labels: Mapping[str, str]) -> None:
    """ValidateVirtualService: delegate rules, gateways, hosts, then each route, then exportTo."""
    sp: FieldPath = ("spec",)
    hosts = [as_str(h) for h in as_list(spec.get("hosts"))]
    gateways = [as_str(g) for g in as_list(spec.get("gateways"))]
    http, tcp, tls = as_list(spec.get("http")), as_list(spec.get("tcp")), as_list(spec.get("tls"))
    if not hosts:
        for key, routes in (("gateways", gateways), ("tls", tls), ("tcp", tcp)):
            if routes:
                what = "gateways" if key == "gateways" else f"{key} route"
                v.err(sp + (key,), f"delegate virtual service must have no {what} specified")
    applies_to_gateway = False
    if gateways:
        validate_gateway_names(v, sp + ("gateways",), gateways)
        applies_to_gateway = "mesh" not in gateways
    if not applies_to_gateway:
        _jwt_claims_need_a_gateway(v, http, gateways)
    _validate_hosts(v, hosts, tls, gateway=applies_to_gateway)
    if not http and not tcp and not tls:
        v.err(sp, "http, tcp or tls must be provided in virtual service")
    for p, r in v.entries(sp + ("http",), http, "http route may not be null"):
        validate_http_route(v, p, r, delegate=not hosts)
    for i, route in enumerate(tls):
        _validate_tls_route(v, sp + ("tls", i), as_obj(route), hosts, applies_to_gateway)
    for p, r in v.entries(sp + ("tcp",), tcp):
        for j, m in enumerate(as_list(r.get("match"))):
            _validate_l4_match(v, p + ("match", j), m, "tcp match may not be nil")
        if not as_list(r.get("route")):
            v.err(p, "TCP route is required")
        route_destinations(v, p + ("route",), as_list(r.get("route")), http=False)
    validate_export_to(v, spec)


def _jwt_claims_need_a_gateway(v: Collector, http: list[Any], gateways: list[str]) -> None:
    for i, route in enumerate(http):
        for j, m in enumerate(as_list(as_obj(route) and route.get("match"))):
            for key in ("headers", "withoutHeaders"):
                for name in as_obj(as_obj(m) and m.get(key)) or {}:
                    if is_jwt_claim(str(name)):
                        v.err(
                            ("spec", "http", i, "match", j, key, name),
                            f"JWT claim based routing (key: {name}) is only supported for "
                            f"gateway, found no gateways: [{' '.join(gateways)}]",
                        )


def _validate_hosts(v: Collector, hosts: list[str], tls: list[Any], *, gateway: bool) -> None:
    """Each host is a (wildcard) domain, ``*`` only on gateways, and no host covers another."""
    sni = any(
        as_list(as_obj(m) and m.get("sniHosts"))
        for route in tls
        for m in as_list(as_obj(route) and route.get("match"))
    )
    all_valid = True
    for i, host in enumerate(hosts):
        error = gateway_domain_error(host, sni=sni) if gateway else validate_wildcard_domain(host)
        if error:
            if not is_ip(host):
                v.err(("spec", "hosts", i), error)
                all_valid = False
        elif not gateway and host == "*":
            v.err(
                ("spec", "hosts", i),
                "wildcard host * is not allowed for virtual services bound to the mesh gateway",
            )
            all_valid = False
    if all_valid:
        for i, a in enumerate(hosts):
            for b in hosts[i + 1 :]:
                if host_matches(a, b):
                    v.err(("spec", "hosts", i), f"duplicate hosts in virtual service: {a} & {b}")


def _validate_l4_match(v: Collector, path: FieldPath, match: Any, null_message: str) -> None:
    m = as_obj(match)
    if m is None:
        v.err(path, null_message)
        return
    for k, subnet in enumerate(as_list(m.get("destinationSubnets"))):
        v.err(path + ("destinationSubnets", k), validate_ip_subnet(as_str(subnet)))
    if as_int(m.get("port")) != 0:
        v.err(path + ("port",), validate_port(as_int(m.get("port"))))
    v.errs(path + ("sourceLabels",), validate_labels(as_obj(m.get("sourceLabels")) or {}))
    validate_gateway_names(v, path + ("gateways",), as_list(m.get("gateways")))


def _validate_tls_route(
    v: Collector, path: FieldPath, route: dict[str, Any] | None, hosts: list[str], gateway: bool
) -> None:
    if route is None:
        return
    matches = as_list(route.get("match"))
    if not matches:
        v.err(path, "TLS route must have at least one match condition")
    for mp, m in v.entries(path + ("match",), matches, "TLS match may not be null"):
        sni_hosts = [as_str(h) for h in as_list(m.get("sniHosts"))]
        if not sni_hosts:
            v.err(mp + ("sniHosts",), "TLS match must have at least one SNI host")
        for k, sni in enumerate(sni_hosts):
            _validate_sni_host(v, mp + ("sniHosts", k), sni, hosts, gateway)
        _validate_l4_match(v, mp, m, "TLS match may not be null")
    if not as_list(route.get("route")):
        v.err(path, "TLS route is required")
    route_destinations(v, path + ("route",), as_list(route.get("route")), http=False)


def _validate_sni_host(
    v: Collector, path: FieldPath, sni: str, hosts: list[str], gateway: bool
) -> None:
    error = gateway_domain_error(sni, sni=True) if gateway else validate_wildcard_domain(sni)
    if error:
        if is_ip(sni):
            v.warn(
                path,
                f"using an IP address ({quote(sni)}) goes against SNI spec and most clients do "
                "not support this",
            )
        else:
            v.err(path, error)
        return
    if not any(host_subset_of(sni, h) for h in hosts):
        v.err(
            path,
            f"SNI host {quote(sni)} is not a compatible subset of any of the virtual service "
            f"hosts: [{', '.join(hosts)}]",
        )
