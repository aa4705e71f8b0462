"""VirtualService destination hosts that resolve to nothing, ports that do not exist, and
gateway routes that ignore subsets (istioctl `virtualservice.DestinationHostAnalyzer`).

Layer: L6. Imports: analyze.core, analyze._istio.

A destination host is looked up the way istioctl does (`util.GetDestinationHost`): a dot-less
name gets the VirtualService's namespace; a dotted short name such as ``reviews.default`` is
taken literally and resolves to nothing (route to a cluster that does not exist: 503 NC).
"""

from __future__ import annotations

from collections.abc import Iterator

from meshlens.analyze._istio import (
    Destination,
    Entry,
    destination_host,
    full_name,
    mirror_destinations,
    route_destinations,
    service_entry_hosts,
    to_fqdn,
)
from meshlens.analyze.core import CodeDoc, Context, Finding, Metadata, finding, goq, gov
from meshlens.resources import Resource

METADATA = Metadata(
    name="virtualservice.DestinationHostAnalyzer",
    description="Checks the destination hosts associated with each virtual service",
    inputs=("ServiceEntry", "VirtualService", "Service"),
    codes=("ML1101", "ML1102", "ML1104"),
)

DOCS = {
    "ML1101": CodeDoc(
        checks="Every route and mirror destination host of every VirtualService, looked up as "
               "istioctl does (util.GetDestinationHost): a dot-less name gets the "
               "VirtualService's namespace, a dotted short name (reviews.default) is literal; "
               "against Services and ServiceEntries visible there; and a destination "
               "port.number that the host does not have (IST0101).",
        matters="The route points at a cluster that does not exist: 503 NC. A mirror to a "
                "missing host is dropped silently (no flag).",
        quiet="The host is a Service or ServiceEntry host (FQDN, short name in the "
              "VirtualService's namespace, or covered by a wildcard ServiceEntry) with that "
              "port.",
        example="route: [{destination: {host: reviews.default}}]   # use reviews or "
                "reviews.default.svc.cluster.local"),
    "ML1102": CodeDoc(
        checks="Destinations without port.number to a host with more than one port (IST0112).",
        matters="istiod builds the destination cluster from the port the request came in on, so "
                "the route may point at a port the destination does not have: 503 NC.",
        quiet="port.number given; the host has a single port.",
        example="Service web with ports 80 and 9090; route: [{destination: {host: web}}]"),
    "ML1104": CodeDoc(
        checks="A gateway-bound VirtualService route without subset to a host that another "
               "VirtualService routes by subset (IST0140).",
        matters="Requests through the gateway reach any version: the mesh VirtualService's "
                "subsets do not apply to them. No response flag.",
        quiet="The gateway route gives a subset too; no VirtualService splits the host by "
              "subset.",
        example="gateway route to productpage without subset; mesh VirtualService productpage "
                "routes to subset v1"),
}


def _hint(vs: Resource, host: str, entries: dict[tuple[str, str], Entry]) -> str:
    """Suggest the FQDN when a dotted short name (``NAME.NS``) names an existing Service."""
    parts = host.split(".")
    if len(parts) == 2 and all(parts):
        fqdn = f"{parts[0]}.{parts[1]}.svc.cluster.local"
        if any(h == fqdn for _, h in entries):
            return (f"A host with a dot is not expanded: write {fqdn} (or {parts[0]} from "
                    f"namespace {parts[1]}).")
    if not host:
        return "Set destination.host: this destination has no host."
    fqdn = to_fqdn(vs.namespace, host)
    scopes = sorted(scope for scope, h in entries if h == fqdn)
    if scopes:
        return (f"{fqdn} exists but is not exported to namespace {vs.namespace} (visible to: "
                f"{', '.join(scopes)}); export it (exportTo / networking.istio.io/exportTo) or "
                "route elsewhere.")
    return (f"Create a Service or ServiceEntry for {to_fqdn(vs.namespace, host)}, or fix the host "
            "name (a short name is qualified with the VirtualService's namespace).")


def _check_ports(vs: Resource, d: Destination, entry: Entry) -> Iterator[Finding]:
    """`checkServiceEntryPorts`."""
    if d.destination.get("port") is None:
        if len(entry.ports) > 1:
            yield finding("ML1102", vs, d.path, host=goq(d.host), ports=gov(entry.ports))
        return
    port = d.port or 0
    if port not in entry.ports:
        yield finding("ML1101", vs, d.path, what="host:port", value=goq(f"{d.host}:{port}"),
                      fix={"hint": f"Use one of the ports of {d.host}: {gov(entry.ports)}."})


def _subset_destinations(ctx: Context) -> dict[str, list[str]]:
    """`initVirtualServiceDestinations`: per VirtualService, its http destination hosts that
    carry a subset and equal one of its own hosts."""
    out: dict[str, list[str]] = {}
    for r in ctx.of_kind("VirtualService"):
        hosts = [str(h) for h in r.spec.get("hosts") or []]
        for d in route_destinations(r):
            if d.rule == "http" and d.subset and d.host in hosts:
                out.setdefault(full_name(r), []).append(d.host)
    return out


def analyze(ctx: Context) -> Iterator[Finding]:
    entries = service_entry_hosts(ctx)
    subset_dests = _subset_destinations(ctx)
    for vs in ctx.of_kind("VirtualService"):
        export = [str(e) for e in vs.spec.get("exportTo") or []]
        for d in route_destinations(vs):
            entry = destination_host(vs.namespace, export, d.host, entries)
            if entry is None:
                yield finding("ML1101", vs, d.path, what="host", value=goq(d.host),
                              fix={"hint": _hint(vs, d.host, entries)})
                continue
            yield from _check_ports(vs, d, entry)
        for d in mirror_destinations(vs):
            entry = destination_host(vs.namespace, export, d.host, entries)
            if entry is None:
                yield finding("ML1101", vs, d.path, what="mirror host", value=goq(d.host),
                              flag="", fix={"hint": _hint(vs, d.host, entries)})
                continue
            yield from _check_ports(vs, d, entry)
        yield from _ingress_subsets(vs, subset_dests)


def _ingress_subsets(vs: Resource, subset_dests: dict[str, list[str]]) -> Iterator[Finding]:
    """`analyzeSubset`: a gateway VirtualService routing without subset to a host that another
    VirtualService splits by subset (the subsets do not apply to the gateway's requests)."""
    if not vs.spec.get("gateways"):
        return
    for d in route_destinations(vs):
        if d.rule != "http" or d.subset:
            continue
        for other, hosts in subset_dests.items():
            for h in hosts:
                if h == d.host:
                    yield finding("ML1104", vs, d.path, subset_vs=other, vs=full_name(vs))
