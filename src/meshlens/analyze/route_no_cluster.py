"""Routes that send to a cluster the proxy does not have: 503 NC (NoClusterFound).

Layer: L6. Imports: analyze.core, analyze._routes, compiler, model.

Proven on the compiled config of each proxy: a route in its RDS (or a TCP/TLS VirtualService
rule) names ``outbound|PORT|SUBSET|HOST`` and that cluster is not in its CDS. The reason is then
looked up in the model: the host does not exist, is not exported to the proxy's namespace, is
outside its Sidecar's egress, has no such port, or the subset is not defined by a DestinationRule
the proxy can see. Routes that exist only through istiod's port-80 workaround (see
:func:`port80_workaround`) are an Info note (ML1206), not ML1201.
"""

from __future__ import annotations

from collections.abc import Iterator

from meshlens.analyze._routes import RouteRef, cluster_exists, http_refs, tcp_refs
from meshlens.analyze.core import CodeDoc, Context, Finding, Metadata, finding, short_list
from meshlens.compiler import CompileResult
from meshlens.compiler.names import parse_cluster_name
from meshlens.model.destination_rules import choose, resolve_short_name
from meshlens.model.registry import Service
from meshlens.model.scope import egress_allows, exported_to
from meshlens.resources import Resource
from meshlens.source import FieldPath

METADATA = Metadata(
    name="meshlens.RouteNoClusterAnalyzer",
    description="Routes (from each proxy's point of view) to clusters the proxy does not have",
    inputs=("VirtualService", "DestinationRule", "Service", "ServiceEntry", "Sidecar"),
    codes=("ML1201", "ML1206"),
    compiled=True,
    yields_to=("ML1101", "ML1103"),
)

DOCS = {
    "ML1201": CodeDoc(
        checks="On each sidecar's compiled RDS (and TCP/TLS VirtualService rules): a route or "
               "mirror to outbound|PORT|SUBSET|HOST that is not in the sidecar's CDS, with the "
               "reason from the model: no such host, not exported to the client's namespace, "
               "outside its Sidecar's egress, no such port, or a subset the rule the client "
               "uses does not define.",
        matters="Envoy answers 503 NC (no cluster found); a mirror to a missing cluster is "
                "silently dropped.",
        quiet="The cluster exists for that client; istioctl's IST0101 (ML1101/ML1103) already "
              "names the same destination; the route exists only through istiod's port-80 "
              "workaround (ML1206, Info).",
        example="DestinationRule in namespace team defines subset v1 with exportTo ['.'], "
                "clients in shop route to subset v1"),
    "ML1206": CodeDoc(
        checks="The routes of ML1201 that are in route table 80 only because of istiod's "
               "port-80 workaround: buildSidecarVirtualHostsForVirtualService keeps every "
               "VirtualService for listener port 80 and, when none of its hosts is a port-80 "
               "service, still emits HOST:80 with the routes built for port 80, so a "
               "destination without port.number becomes outbound|80|...|HOST.",
        matters="Info: only a request to HOST on port 80, a port the Service does not have, "
                "reaches that virtual host (it would get 503 NC). Requests to the service's own "
                "ports use their own route table and are unaffected. istioctl reports nothing.",
        quiet="No HTTP port 80 anywhere in the mesh (no route table 80); the VirtualService's "
              "host has port 80 (then a missing cluster is a real ML1201); the destination "
              "gives port.number.",
        example="ServiceEntry with port 80 (or an ingress gateway Service on 80) plus "
                "VirtualService reviews (port 9080 only): route [{destination: {host: reviews, "
                "subset: v1}}]"),
}


def _defining_rules(ctx: Context, host: str, subset: str) -> list[Resource]:
    out = []
    for dr in ctx.of_kind("DestinationRule"):
        if resolve_short_name(str(dr.spec.get("host", "")), dr.namespace) != host:
            continue
        for s in dr.spec.get("subsets") or []:
            if isinstance(s, dict) and s.get("name") == subset:
                out.append(dr)
    return out


def diagnose(ctx: Context, result: CompileResult, cluster: str) -> tuple[str, str]:
    """Why ``cluster`` is missing for this proxy, and what to do about it."""
    key = parse_cluster_name(cluster)
    if key is None:
        return "it is not a service cluster", "Route to a Service or ServiceEntry host."
    ns = result.proxy.namespace
    services = ctx.mesh.registry.by_host.get(key.host, [])
    if not services:
        return (f"no Service or ServiceEntry has host {key.host}",
                "Create the Service/ServiceEntry, or fix the destination host (a dotted short "
                "name is not expanded).")
    visible = [s for s in services if exported_to(s.export_to, s.namespace, ns)]
    if not visible:
        s = services[0]
        return (f"{s.resource.kind} {s.namespace}/{s.resource.name} is not exported to their "
                f"namespace (exportTo {', '.join(sorted(s.export_to))})",
                "Export it to the clients' namespaces (exportTo, or the "
                "networking.istio.io/exportTo annotation of a Service).")
    svc = result.scope.service(key.host)
    sidecar = result.scope.sidecar
    if svc is None:
        name = f"Sidecar {sidecar.namespace}/{sidecar.name}" if sidecar is not None else "scope"
        listener_ports = sorted({e.port for e in getattr(result.scope, "egress_listeners", [])
                                 if e.port})
        allowed = egress_allows(result.scope.egress, ns, visible[0].namespace, key.host)
        if sidecar is not None and allowed and listener_ports:
            ports = ", ".join(str(p.port) for p in visible[0].ports)
            return (f"the proxy's {name} imports services only on its egress port(s) "
                    f"{', '.join(map(str, listener_ports))}, and {key.host} has port(s) {ports}",
                    f"Add an egress listener for port {key.port or ports} (or one without a port) "
                    "to the Sidecar.")
        return (f"the proxy's {name} does not import {key.host}",
                f"Add {visible[0].namespace}/{key.host} to the Sidecar's egress hosts.")
    if key.port and svc.port(key.port) is None:
        full = next((s for s in visible if s.port(key.port) is not None), None)
        ports = ", ".join(str(p.port) for p in (full or visible[0]).ports)
        if full is not None and sidecar is not None:
            imported = ", ".join(str(p.port) for p in svc.ports)
            return (f"Sidecar {sidecar.namespace}/{sidecar.name} imports {key.host} only on "
                    f"port(s) {imported}",
                    f"Import port {key.port} in the Sidecar's egress, or route to an imported "
                    "port.")
        return (f"{key.host} has no port {key.port} (ports: {ports})",
                "Set destination.port.number to a Service port (not the targetPort).")
    if key.subset:
        rules = ctx.mesh.destination_rules.lookup(ns, key.host, svc.namespace)
        rule = choose(rules, outbound=True, proxy_ns=ns, proxy_labels=result.proxy.labels)
        if rule is None or rule.subset(key.subset) is None:
            defining = _defining_rules(ctx, key.host, key.subset)
            if defining:
                dr = defining[0]
                root = ctx.mesh.mesh_config.root_namespace
                order = ", ".join(dict.fromkeys([ns, svc.namespace, root]))
                used = f"; the proxy uses DestinationRule {rule.resource.namespace}/" \
                       f"{rule.resource.name}" if rule is not None else ""
                return (f"subset {key.subset} is defined by DestinationRule "
                        f"{dr.namespace}/{dr.name}, which does not apply to them (istiod looks "
                        f"for DestinationRules in namespaces {order}, first match wins){used}",
                        f"Define subset {key.subset} in the DestinationRule that applies: in "
                        f"the client's namespace, or in the service's ({svc.namespace}) "
                        "exported to it.")
            return (f"no DestinationRule defines subset {key.subset} for {key.host}",
                    f"Define subset {key.subset} in a DestinationRule for {key.host}.")
    if svc.resolution in ("DNSLB", "DNSRoundRobinLB"):
        return ("the DNS service has no endpoints for it, so istiod sends no cluster",
                "Give the ServiceEntry endpoints (or let it resolve its own hosts).")
    return ("istiod does not generate it for this proxy", "Check the destination's host, port "
            "and subset against the Service and DestinationRule.")


def _dest(cluster: str, mirror: bool) -> str:
    key = parse_cluster_name(cluster)
    what = "mirror to" if mirror else "route to"
    if key is None:
        return f"{what} {cluster}"
    parts = [key.host]
    if key.subset:
        parts.append(f"subset {key.subset}")
    if key.port:
        parts.append(f"port {key.port}")
    return f"{what} {parts[0]}" + (f" ({', '.join(parts[1:])})" if parts[1:] else "")


def port80_workaround(result: CompileResult, ref: RouteRef) -> Service | None:
    """The service whose VirtualService routes istiod copied into route table 80 although it
    has no port 80, or None.

    `BuildSidecarOutboundVirtualHosts` keeps every VirtualService for listener port 80 (the
    "hack to keep consistent with previous behavior": VirtualServices are not filtered by
    service there), and `buildSidecarVirtualHostsForVirtualService` then finds none of the
    VirtualService's hosts among the port-80 services and, for listenPort 80, still emits a
    virtual host ``HOST:80`` with the routes ("a gross HACK", in its own words), built with
    listenPort 80: a destination without a port becomes ``outbound|80|SUBSET|HOST``
    (`GetDestinationCluster`). Only a request to HOST on port 80, a port the Service does not
    have, reaches that virtual host; route table 80 exists only because some other Service or
    ServiceEntry has an HTTP port 80.
    """
    if ref.route_config != "80" or ":" not in ref.vhost:
        return None
    host = ref.vhost.rsplit(":", 1)[0]
    svc = result.scope.service(host)
    if svc is None or svc.port(80) is not None:
        return None
    return svc


def analyze(ctx: Context) -> Iterator[Finding]:
    found: dict[tuple[object, FieldPath, str],
                tuple[Resource, str, str, str, bool, dict[str, None]]] = {}
    quirks: dict[tuple[object, FieldPath], tuple[Resource, str, Service, dict[str, None]]] = {}
    for proxy, result in ctx.compiled():
        names = {c.name for c in result.clusters}
        reasons: dict[str, tuple[str, str]] = {}
        for ref in list(http_refs(ctx, result)) + list(tcp_refs(ctx, result)):
            if ref.resource is None or cluster_exists(names, ref.cluster):
                continue
            svc = port80_workaround(result, ref)
            if svc is not None:
                q = quirks.setdefault((ref.resource.ref, ref.path),
                                      (ref.resource, ref.cluster, svc, {}))
                q[3][proxy] = None  # the proxies it stands for are added at the end
                continue
            why = reasons.get(ref.cluster)
            if why is None:
                why = reasons[ref.cluster] = diagnose(ctx, result, ref.cluster)
            reason, fix = why
            key = (ref.resource.ref, ref.path, ref.cluster + "\0" + reason)
            entry = found.setdefault(key, (ref.resource, ref.cluster, reason, fix, ref.mirror, {}))
            entry[5][proxy] = None
    for (_, path, _), (res, cluster, reason, fix, mirror, proxies) in found.items():
        yield finding("ML1201", res, path, dest=_dest(cluster, mirror), cluster=cluster,
                      proxies=short_list(_members(ctx, proxies)), reason=reason,
                      flag="" if mirror else None, fix={"fix": fix})
    for (_, path), (res, cluster, svc, proxies) in quirks.items():
        yield finding("ML1206", res, path, cluster=cluster, host=svc.hostname,
                      ports=", ".join(str(p.port) for p in svc.ports),
                      proxies=short_list(_members(ctx, proxies)))


def _members(ctx: Context, proxies: dict[str, None]) -> list[str]:
    """Every proxy the compiled representatives stand for, sorted (once per set of
    representatives: at 5,000 services thousands of findings share a few such sets)."""
    reps = tuple(proxies)
    found: list[str] = ctx.memo(f"route_no_cluster.members.{reps!r}", lambda: sorted(
        {m for proxy in reps for m in ctx.members(proxy)}))
    return found
