"""EnvoyFilter patches on route configurations, virtual hosts and routes.

Layer: L4. Imports: compiler.envoyfilter.patches, compiler.names.

``pilot/pkg/networking/core/envoyfilter/rc_patch.go``: `ApplyRouteConfigurationPatches` (MERGE
of the route configuration), `patchVirtualHosts` / `patchVirtualHost` (REMOVE, MERGE, REPLACE,
then ADD), `patchHTTPRoutes` / `patchHTTPRoute` (REMOVE, MERGE; then ADD, INSERT_BEFORE/AFTER,
INSERT_FIRST), `routeConfigurationMatch` (sidecars: ``name``; ``portNumber`` against the number
the name carries: ``8080`` for an outbound RDS name, the port of ``inbound|8080||``; GATEWAY:
``name``, ``portName`` and ``gateway`` (``NS/NAME``) read from the route name by
`ParseGatewayRDSRouteName`, ``portNumber`` against the Gateway server ports that resolved to the
route's port (`anyPortMatches` over ``MergedGateway.PortMap``), else the route's port itself),
`virtualHostMatch` (``name``, ``domainName`` among the domains), `routeMatch` (``name``,
``action``).
"""

from __future__ import annotations

from typing import Any

from meshlens.compiler.envoyfilter.listener import Applied, _relative
from meshlens.compiler.envoyfilter.patches import Patch, clone, is_merge, merge_value, replace_items
from meshlens.compiler.names import parse_cluster_name

_ACTIONS = {"route": "ROUTE", "redirect": "REDIRECT", "direct_response": "DIRECT_RESPONSE"}


def _port_of(name: str) -> int:
    """`getListenerPortFromName`."""
    if name.startswith("inbound"):
        key = parse_cluster_name(name)
        return key.port if key is not None else 0
    return int(name) if name.isdigit() else 0


def parse_gateway_rds_name(name: str) -> tuple[int, str, str]:
    """`ParseGatewayRDSRouteName`: (port number, port name, ``NS/NAME``) of a gateway route name.

    Example:
        >>> parse_gateway_rds_name("https.443.https-web.web-gw.istio-system")
        (443, 'https-web', 'istio-system/web-gw')
        >>> parse_gateway_rds_name("http.8080")
        (8080, '', '')
    """
    def number(text: str) -> int:
        return int(text) if text.isdigit() else 0

    if name.startswith("http."):
        return number(name[len("http."):]), "", ""
    if name.startswith("https.") and name.count(".") == 4:
        port, port_name, gw, ns = name[len("https."):].split(".")
        return number(port), port_name, f"{ns}/{gw}"
    return 0, "", ""


def rc_match(rc: Any, p: Patch, ctx: str = "SIDECAR_OUTBOUND",
             port_map: dict[int, set[int]] | None = None) -> bool:
    """`routeConfigurationMatch` (``port_map``: `MergedGateway.PortMap` for a gateway)."""
    m = p.sub("routeConfiguration")
    if m is None:
        return True
    if m.get("name") and m["name"] != rc.name:
        return False
    want = int(m.get("portNumber") or 0)
    if ctx != "GATEWAY":
        return not (want and want != _port_of(rc.name))
    number, port_name, gateway = parse_gateway_rds_name(rc.name)
    if m.get("portName") and m["portName"] != port_name:
        return False
    if m.get("gateway") and m["gateway"] != gateway:
        return False
    if want:  # `anyPortMatches`
        ports = (port_map or {}).get(number)
        return want in ports if ports is not None else want == number
    return True


def vhost_match(vh: Any, p: Patch) -> bool:
    """`virtualHostMatch`."""
    m = p.sub("routeConfiguration", "vhost")
    if m is None:
        return True
    return (not m.get("name") or m["name"] == vh.name) and \
        (not m.get("domainName") or m["domainName"] in vh.domains)


def route_match(r: Any, p: Patch) -> bool:
    """`routeMatch`."""
    m = p.sub("routeConfiguration", "vhost", "route")
    if m is None:
        return True
    if m.get("name") and m["name"] != r.name:
        return False
    action = str(m.get("action") or "ANY")
    kind = r.WhichOneof("action")
    if action != "ANY" and kind in _ACTIONS:
        return _ACTIONS[kind] == action
    return True


def _routes(ctx: str, patches: list[Patch], rc: Any, vh: Any, applied: Applied, where: str,
            port_map: dict[int, set[int]] | None) -> None:
    """`patchHTTPRoutes`."""
    removed = set()
    for i, r in enumerate(vh.routes):
        for p in patches:
            if not (p.context_matches(ctx) and rc_match(rc, p, ctx, port_map) and vhost_match(vh, p)
                    and route_match(r, p)):
                continue
            if p.operation == "REMOVE":
                removed.add(i)
                applied.append((p, f"{where}.routes[{i}]"))
                break
            if is_merge(p.operation):
                merge_value(p, r)
                applied.append((p, f"{where}.routes[{i}]"))
    if removed:
        replace_items(vh.routes, [r for i, r in enumerate(vh.routes) if i not in removed])
    for p in patches:
        if not (p.context_matches(ctx) and rc_match(rc, p, ctx, port_map) and vhost_match(vh, p)):
            continue
        has = p.sub("routeConfiguration", "vhost", "route") is not None
        if p.operation == "INSERT_FIRST":
            if has and not any(route_match(r, p) for r in vh.routes):
                continue
            vh.routes.insert(0, clone(p))
            applied.append((p, f"{where}.routes[0]"))
        elif p.operation in ("ADD", "INSERT_BEFORE", "INSERT_AFTER"):
            _relative(vh.routes, p, has, lambda e, q=p: route_match(e, q), applied, f"{where}.routes")


def patch_route_configuration(ctx: str, patches: dict[str, list[Patch]], rc: Any,
                              applied: Applied, port_map: dict[int, set[int]] | None = None) -> None:
    """`ApplyRouteConfigurationPatches`."""
    for p in patches.get("ROUTE_CONFIGURATION", []):
        if is_merge(p.operation) and p.context_matches(ctx) and rc_match(rc, p, ctx, port_map):
            merge_value(p, rc)
            applied.append((p, ""))
    vpatches = patches.get("VIRTUAL_HOST", [])
    removed = set()
    for i, vh in enumerate(rc.virtual_hosts):
        for p in vpatches:
            if not (p.context_matches(ctx) and rc_match(rc, p, ctx, port_map) and vhost_match(vh, p)):
                continue
            if p.operation == "REMOVE":
                removed.add(vh.name)
                applied.append((p, f"virtual_hosts[{i}]"))
                break
            if is_merge(p.operation):
                merge_value(p, vh)
            elif p.operation == "REPLACE":
                vh.CopyFrom(p.value)
            else:
                continue
            applied.append((p, f"virtual_hosts[{i}]"))
        if vh.name not in removed:
            _routes(ctx, patches.get("HTTP_ROUTE", []), rc, vh, applied, f"virtual_hosts[{i}]",
                    port_map)
    for p in vpatches:
        if p.operation == "ADD" and p.context_matches(ctx) and rc_match(rc, p, ctx, port_map):
            rc.virtual_hosts.append(clone(p))
            applied.append((p, f"virtual_hosts[{len(rc.virtual_hosts) - 1}]"))
    if removed:
        replace_items(rc.virtual_hosts, [vh for vh in rc.virtual_hosts if vh.name not in removed])
