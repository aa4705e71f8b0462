"""``proxy-config route``: istioctl's route table (``configdump/route.go``).

Layer: L6. Imports: dump, errors, render.proxy_config.

Padding 5. Verbose (the default): ``NAME VHOST NAME DOMAINS MATCH VIRTUAL SERVICE``, one row per
route except those forwarding to ``PassthroughCluster``; a virtual host without routes gets a
``/* 404`` row. The RouteConfigurations are sorted with a comparator that only orders numeric
names, through Go's ``sort.Slice`` (:mod:`gosort`), so non-numeric names act as barriers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from meshlens.dump import ConfigDump, routes_of
from meshlens.errors import DumpError
from meshlens.render.proxy_config.common import (
    check_format,
    describe_management,
    message_list_output,
    metadata_of,
    missing_section,
)
from meshlens.render.proxy_config.gosort import go_sort_slice
from meshlens.render.proxy_config.table import render_table

PASSTHROUGH = "PassthroughCluster"


@dataclass(frozen=True, slots=True, kw_only=True)
class RouteFilter:
    """istioctl's ``RouteFilter``: ``--name`` is exact equality."""

    name: str = ""
    verbose: bool = True

    def verify(self, rc: Any) -> bool:
        return not (self.name and self.name != rc.name)


def _numeric(name: str) -> int | None:
    """``strconv.Atoi(name)``, or None where Go returns an error."""
    body = name[1:] if name[:1] in "+-" else name
    if not body or not body.isascii() or not body.isdigit():
        return None
    value = int(name)
    return value if -(2**63) <= value < 2**63 else None


def _route_less(a: Any, b: Any) -> bool:
    i, j = _numeric(a.name), _numeric(b.name)
    return i is not None and j is not None and i < j


def sorted_routes(dump: ConfigDump) -> list[Any]:
    """istioctl's ``retrieveSortedRouteSlice``: dynamic then static, numeric names sorted.

    Raises:
        DumpError: no RoutesConfigDump section, or no routes in it.
    """
    if dump.routes is None:
        raise missing_section("RoutesConfigDump")
    routes = routes_of(dump.routes)
    if not routes:
        raise DumpError("no routes found")
    return go_sort_slice(routes, _route_less)


def describe_match(match: Any | None) -> str:
    """The MATCH cell of a ``RouteMatch``; headers and query parameters are not shown.

    Example:
        >>> from envoy.config.route.v3 import route_components_pb2 as rc
        >>> describe_match(rc.RouteMatch(prefix="/")), describe_match(rc.RouteMatch(path="/a"))
        ('/*', '/a')
    """
    if match is None:
        return ""
    conds = []
    which = match.WhichOneof("path_specifier")
    if which == "prefix" and match.prefix:
        conds.append(match.prefix + "*")
    if which == "path_separated_prefix" and match.path_separated_prefix:
        conds.append("PathPrefix:" + match.path_separated_prefix)
    if which == "path" and match.path:
        conds.append(match.path)
    if which == "safe_regex":
        conds.append("regex " + match.safe_regex.regex)
    return " ".join(conds)


def describe_route_domains(domains: list[str]) -> str:
    """The DOMAINS cell: ports and ``.svc[.cluster.local]`` expansions dropped, then shortened.

    Example:
        >>> describe_route_domains(["example.com", "example.com:8080", "www.example.com",
        ...     "www.example.com:8080", "[fd00:10:96::7fc7]", "[fd00:10:96::7fc7]:8080"])
        'example.com, www.example.com + 1 more...'
    """
    if not domains:
        return ""
    if len(domains) == 1:
        return domains[0]
    without_port = [d for d in domains
                    if ":" not in d or (d.count(":") > 2 and d.endswith("]"))]
    unique = set(without_port)
    delete = set()
    for h in without_port:
        for suffix in (".svc.cluster.local", ".svc"):
            stripped = h[: -len(suffix)] if h.endswith(suffix) else h
            if stripped != h and stripped in unique:
                delete.add(h)
    kept = [h for h in without_port if h not in delete]
    if len(kept) > 2:
        return f"{', '.join(kept[:2])} + {len(kept) - 2} more..."
    return ", ".join(kept)


def _is_passthrough(route: Any) -> bool:
    return bool(route.WhichOneof("action") == "route"
            and route.route.WhichOneof("cluster_specifier") == "cluster"
            and route.route.cluster == PASSTHROUGH)


def render_routes(dump: ConfigDump, *, filter: RouteFilter = RouteFilter(),  # noqa: A002
                  output: str = "short", with_names: bool = False) -> str:
    """Render ``proxy-config route``."""
    check_format(output)
    routes = sorted_routes(dump)
    if output != "short":
        return message_list_output([r for r in routes if filter.verify(r)], output)
    header = (["NAME", "VHOST NAME", "DOMAINS", "MATCH", "VIRTUAL SERVICE"] if filter.verbose
              else ["NAME", "VIRTUAL HOSTS"])
    rows = [header]
    for rc in routes:
        if not filter.verify(rc):
            continue
        name = f"route/{rc.name}" if with_names else rc.name
        if not filter.verbose:
            rows.append([name, str(len(rc.virtual_hosts))])
            continue
        for vh in rc.virtual_hosts:
            domains = describe_route_domains(list(vh.domains))
            for r in vh.routes:
                if not _is_passthrough(r):
                    rows.append([name, vh.name, domains,
                                 describe_match(r.match if r.HasField("match") else None),
                                 describe_management(metadata_of(r))])
            if not vh.routes:
                rows.append([name, vh.name, domains, "/*", "404"])
    return render_table(rows, padding=5)
