"""Which clusters a proxy's routes send to, read off compiled RDS (and TCP/TLS VirtualService
rules), with the VirtualService field each one came from.

Layer: L6. Imports: compiler, model, resources, analyze.core, analyze._compiled.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from meshlens.analyze._compiled import imported_virtual_services, value_at
from meshlens.analyze.core import Context, as_dict, iter_dicts
from meshlens.compiler import CompileResult
from meshlens.compiler.names import cluster_name, parse_cluster_name
from meshlens.model.virtual_services import resolve_shortname
from meshlens.resources import Resource
from meshlens.source import FieldPath, ResourceRef


@dataclass(frozen=True, slots=True)
class RouteRef:
    """A reference from a route (or mirror) to a cluster."""

    cluster: str
    retries: int  # num_retries of the route's retry policy; 0 without one
    resource: Resource | None  # the VirtualService that wrote it (None: a default route)
    path: FieldPath  # its destination host field (or the rule when the destination is unknown)
    rule: str  # "VirtualService ns/name http[0]" or "the default route"
    mirror: bool = False
    route_config: str = ""  # the RDS route configuration name ("80", "9080", "host:port")
    vhost: str = ""  # the virtual host name, HOST:PORT


def resource_by_ref(ctx: Context, ref: ResourceRef | None) -> Resource | None:
    if ref is None:
        return None
    index: dict[ResourceRef, Resource] = ctx.memo("routes.by_ref", lambda: {
        r.ref: r for r in ctx.resources})
    return index.get(ref)


#: Destinations repeat across routes and proxies; resolving a name tries it as an IP first.
_resolve = functools.lru_cache(maxsize=1 << 16)(resolve_shortname)


def _dest_cluster(d: dict[str, Any], ns: str, listener_port: int) -> str:
    host = _resolve(str(d.get("host", "")), ns)
    port = as_dict(d.get("port")).get("number")
    return cluster_name("outbound", port if isinstance(port, int) and port else listener_port,
                        str(d.get("subset") or ""), host)


def _locate(res: Resource, rule_path: FieldPath, cluster: str, listener_port: int,
            mirror: bool) -> FieldPath:
    """The YAML path of the destination in ``res``'s http rule that names ``cluster``."""
    rule = as_dict(value_at(res, rule_path))
    if mirror:
        if _dest_cluster(as_dict(rule.get("mirror")), res.namespace, listener_port) == cluster:
            return rule_path + ("mirror", "host")
        for j, m in enumerate(iter_dicts(rule.get("mirrors"))):
            dest = as_dict(m.get("destination"))
            if _dest_cluster(dest, res.namespace, listener_port) == cluster:
                return rule_path + ("mirrors", j, "destination", "host")
        return rule_path
    for j, rd in enumerate(iter_dicts(rule.get("route"))):
        if _dest_cluster(as_dict(rd.get("destination")), res.namespace, listener_port) == cluster:
            return rule_path + ("route", j, "destination", "host")
    return rule_path


def http_refs(ctx: Context, result: CompileResult) -> Iterator[RouteRef]:
    """Every cluster an HTTP route of this proxy's RDS sends to (read once per run)."""
    owner, refs = ctx.memo(f"routes.http_refs.{id(result)}",
                           lambda: (result, list(_http_refs(ctx, result))))
    if owner is not result:  # not a compile of this run's context: read it again
        refs = list(_http_refs(ctx, result))
    return iter(refs)


def _http_refs(ctx: Context, result: CompileResult) -> Iterator[RouteRef]:
    for rc in result.routes or []:
        listener_port = int(rc.name) if rc.name.isdigit() else 0
        fields = result.provenance.of("route", rc.name)
        for i, vh in enumerate(rc.virtual_hosts):
            for j, rt in enumerate(vh.routes):
                if not rt.HasField("route"):
                    continue
                action = rt.route
                retries = action.retry_policy.num_retries.value \
                    if action.HasField("retry_policy") else 0
                origin = fields.get(f"virtual_hosts[{i}].routes[{j}]")
                res = resource_by_ref(ctx, origin.resource) if origin else None
                if res is not None and res.kind != "VirtualService":
                    res = None
                rule_path: FieldPath = origin.field[:3] if origin and res is not None else ()
                rule = f"VirtualService {res.ref} http[{rule_path[2]}]" \
                    if res is not None and len(rule_path) == 3 else "the default route"
                names = [action.cluster] if action.cluster else \
                    [c.name for c in action.weighted_clusters.clusters]
                for name in names:
                    path = _locate(res, rule_path, name, listener_port, False) \
                        if res is not None else ()
                    yield RouteRef(name, retries, res, path, rule, route_config=rc.name,
                                   vhost=vh.name)
                for m in action.request_mirror_policies:
                    path = _locate(res, rule_path, m.cluster, listener_port, True) \
                        if res is not None else ()
                    yield RouteRef(m.cluster, 0, res, path, rule, mirror=True,
                                   route_config=rc.name, vhost=vh.name)


def tcp_refs(ctx: Context, result: CompileResult) -> Iterator[RouteRef]:
    """Clusters the TCP and TLS rules of the proxy's VirtualServices send to.

    A destination without a port uses the service's only port (any port of the host otherwise);
    such references are given with port 0 and matched against every port of the host.
    """
    for view in imported_virtual_services(ctx, result):
        res = view.resource
        for section in ("tcp", "tls"):
            for i, rule in enumerate(view.spec.get(section) or []):
                if not _applies(as_dict(rule), result):
                    continue
                for j, rd in enumerate(iter_dicts(as_dict(rule).get("route"))):
                    d = as_dict(rd.get("destination"))
                    yield RouteRef(_dest_cluster(d, res.namespace, 0), 0, res,
                                   ("spec", section, i, "route", j, "destination", "host"),
                                   f"VirtualService {res.ref} {section}[{i}]")


def _applies(rule: dict[str, Any], result: CompileResult) -> bool:
    """A rule whose every match names other source labels or namespaces is not for this proxy."""
    matches = list(iter_dicts(rule.get("match")))
    if not matches:
        return True
    labels, ns = result.proxy.labels, result.proxy.namespace
    for m in matches:
        gws = m.get("gateways")
        if isinstance(gws, list) and gws and "mesh" not in gws:
            continue
        src = as_dict(m.get("sourceLabels"))
        if any(labels.get(str(k)) != str(v) for k, v in src.items()):
            continue
        if m.get("sourceNamespace") and m.get("sourceNamespace") != ns:
            continue
        return True
    return False


def cluster_exists(names: set[str], ref: str) -> bool:
    """Port 0 (a TCP destination without a port) matches any port of the host and subset."""
    if ref in names:
        return True
    key = parse_cluster_name(ref)
    if key is None or key.port != 0:
        return False
    for n in names:
        k = parse_cluster_name(n)
        if k is not None and k.direction == "outbound" and k.subset == key.subset \
                and k.host == key.host:
            return True
    return False
