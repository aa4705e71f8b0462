"""istioctl's `virtualservice.GatewayAnalyzer`, its Gateway checks: a ``gateways`` entry naming a
Gateway that does not exist (IST0101), and hosts no server of that Gateway serves (IST0132).

Layer: L6. Imports: analyze.core, analyze._istio, analyze.vs_internal_gateway.

Mirrors pkg/config/analysis/analyzers/virtualservice/gateways.go (`analyzeVirtualService`,
`vsHostInGateway`): ``mesh`` is skipped; internal (Gateway API generated) references are
:mod:`meshlens.analyze.vs_internal_gateway`'s IST0165, which this analyzer runs first (istioctl
has one analyzer for all three codes); the name is ``ns/name`` or the
VirtualService's namespace; the Gateway's server hosts are sanitized (``./h``, ``*/h``, ``*/*``)
and kept for the VirtualService's namespace (`host.NamesForNamespace`); one host that `Matches`
a VirtualService host is enough. A Kubernetes Gateway API Gateway of that name is checked by its listeners' hostnames
(`vsHostInKubernetesGateway`: a listener without hostname accepts every host).
At the gateway, the hosts not served get 404 NR.
"""

from __future__ import annotations

from collections.abc import Iterator

from meshlens.analyze._istio import full_name
from meshlens.analyze.core import CodeDoc, Context, Finding, Metadata, finding, goq, gov, iter_dicts
from meshlens.analyze import vs_internal_gateway
from meshlens.analyze.vs_internal_gateway import is_internal
from meshlens.model.gateways import names_for_namespace, sanitize_hosts
from meshlens.model.scope import host_overlaps

METADATA = Metadata(
    name="virtualservice.GatewayAnalyzer",
    description="Checks the gateways associated with each virtual service",
    inputs=("VirtualService", "Gateway"),
    codes=("ML1108", "ML1181", "ML1186"),
)

DOCS = {
    "ML1108": vs_internal_gateway.DOCS["ML1108"],
    "ML1181": CodeDoc(
        checks="A VirtualService gateways entry naming a Gateway that does not exist (IST0101).",
        matters="The VirtualService's routes are on no gateway: requests for its hosts get 404 NR "
                "(or another VirtualService's routes) at the gateway.",
        quiet="The Gateway (ns/name or name in the VirtualService's namespace) exists, or the entry is mesh.",
        example="gateways: [bookinfo-gw]   # the Gateway is bookinfo-gateway"),
    "ML1186": CodeDoc(
        checks="A VirtualService bound to a Gateway none of whose server hosts (for the "
               "VirtualService's namespace) matches any of its hosts (IST0132).",
        matters="istiod puts the routes in no virtual host of that gateway: 404 NR for these hosts.",
        quiet="A server host (ns/host, ./host, */host, wildcards) matches a VirtualService host.",
        example="Gateway hosts [foo.example.com], VirtualService hosts [bar.example.com]"),
}


def analyze(ctx: Context) -> Iterator[Finding]:
    yield from vs_internal_gateway.analyze(ctx)
    gateways = {(g.namespace, g.name): g for g in ctx.of_kind("Gateway") if g.group == "networking.istio.io"}
    kube = {(g.namespace, g.name): g for g in ctx.of_kind("Gateway") if g.group == "gateway.networking.k8s.io"}
    for vs in ctx.of_kind("VirtualService"):
        hosts = [str(h) for h in vs.spec.get("hosts") or []]
        for i, ref in enumerate(vs.spec.get("gateways") or []):
            ref = str(ref)
            if ref == "mesh" or is_internal(ref):
                continue
            ns, _, name = ref.partition("/") if "/" in ref else (vs.namespace, "", ref)
            gw = gateways.get((ns, name))
            path = ("spec", "gateways", i)
            kgw = kube.get((ns, name)) if gw is None else None
            if kgw is not None:  # `vsHostInKubernetesGateway`: listener hostnames (none: all)
                lhosts = [str(x.get("hostname") or "") for x in kgw.spec.get("listeners") or []]
                if any(not h for h in lhosts) or any(host_overlaps(g, h) for g in lhosts for h in hosts):
                    continue
                yield finding("ML1186", vs, path, hosts=gov(hosts), vs=full_name(vs),
                              gateway=f"{ns}/{name}" if ns else name)
                continue
            if gw is None:
                yield finding("ML1181", vs, path, what="gateway", value=goq(ref),
                              fix={"hint": f"Create Gateway {ns}/{name}, or fix the reference "
                                           "(NAME or NAMESPACE/NAME): the routes are on no gateway."})
            server_hosts: list[str] = []
            for s in iter_dicts(gw.spec.get("servers")) if gw is not None else []:
                server_hosts += sanitize_hosts([str(h) for h in s.get("hosts") or []], ns)
            names = names_for_namespace(server_hosts, vs.namespace)
            if not any(host_overlaps(g, h) for g in names for h in hosts):
                yield finding("ML1186", vs, path, hosts=gov(hosts), vs=full_name(vs),
                              gateway=f"{ns}/{name}" if ns else name)
