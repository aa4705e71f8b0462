"""istioctl's `gateway.IngressGatewayPortAnalyzer`: a Gateway whose selector picks no pod
(IST0101), and a server port its workload's Services do not expose (IST0162).

Layer: L6. Imports: analyze.core, analyze._istio.

Mirrors pkg/config/analysis/analyzers/gateway/gateway.go (`analyzeGateway`): for the pods the
selector matches, every TCP port of every Service in the pod's namespace that selects the pod
counts with its targetPort (or its port when no targetPort is given), and a Service port also
counts as itself when its targetPort differs. A port without ``protocol`` counts as TCP (the API
server's default).
"""

from __future__ import annotations

from collections.abc import Iterator

from meshlens.analyze._istio import labels_match
from meshlens.analyze.core import (CodeDoc, Context, Finding, Metadata, as_dict, finding, goq, iter_dicts,
                                   selector_string)

METADATA = Metadata(
    name="gateway.IngressGatewayPortAnalyzer",
    description="Checks a gateway's ports against the gateway's Kubernetes service ports",
    inputs=("Gateway", "Pod", "Service"),
    codes=("ML1181", "ML1182"),
)

DOCS = {
    "ML1181": CodeDoc(
        checks="A Gateway whose selector matches no pod (IST0101): the Gateway applies to no proxy.",
        matters="Its servers never become listeners: clients of the hosts it declares get a refused "
                "connection or the 404 of another gateway.",
        quiet="Some pod (from a Pod or a controller) has every selector label.",
        example="selector: {istio: ingress-gateway}   # the pods are labelled istio: ingressgateway"),
    "ML1182": CodeDoc(
        checks="A Gateway server port that no TCP port (or targetPort) of the Services selecting "
               "the gateway pods exposes (IST0162).",
        matters="The listener exists on the pod, but nothing outside reaches it through the gateway "
                "Service: connections to that port are refused at the load balancer.",
        quiet="A Service port or its targetPort equals the server port.",
        example="servers: [{port: {number: 8081, ...}}] on istio-ingressgateway (ports 80→8080, 443→8443)"),
}


def istio_gateways(ctx: Context) -> list[object]:
    """networking.istio.io Gateways (a Gateway API Gateway is another kind with the same name)."""
    return [g for g in ctx.of_kind("Gateway") if g.group == "networking.istio.io"]


def gateway_selector(gw: object) -> dict[str, str]:
    return {str(k): str(v) for k, v in as_dict(getattr(gw, "spec", {}).get("selector")).items()}


def selector_path(gw: object, sel: dict[str, str]) -> tuple[str, ...]:
    """`util.GatewaySelector` line: the first selector label, else the selector field."""
    return ("spec", "selector", sorted(sel)[0]) if sel else ("spec",)


def analyze(ctx: Context) -> Iterator[Finding]:
    pods = ctx.mesh.registry.workloads
    services = ctx.of_kind("Service")
    for gw in istio_gateways(ctx):
        sel = gateway_selector(gw)
        sel_text = selector_string(sel)
        ports: set[int] = set()
        mapping: dict[int, int] = {}
        matches = 0
        for pod in pods:
            if not labels_match(sel, pod.labels):
                continue
            matches += 1
            for svc in services:
                if svc.namespace != pod.namespace:
                    continue
                svc_sel = {str(k): str(v) for k, v in as_dict(svc.spec.get("selector")).items()}
                if not svc_sel or not labels_match(svc_sel, pod.labels):
                    continue  # an empty Kubernetes selector selects nothing here
                for p in iter_dicts(svc.spec.get("ports")):
                    if str(p.get("protocol") or "TCP") != "TCP" or not isinstance(p.get("port"), int):
                        continue
                    tp = p.get("targetPort")
                    if isinstance(tp, int) and tp != 0:
                        ports.add(tp)
                        mapping.setdefault(p["port"], tp)
                    else:
                        ports.add(p["port"])
        if matches == 0:
            yield finding("ML1181", gw, selector_path(gw, sel), what="selector", value=goq(sel_text),
                          fix={"hint": f"No pod has the labels {sel_text}: label the gateway "
                                       "deployment's pods or fix spec.selector; the Gateway "
                                       "applies to no proxy."})
            continue
        for i, server in enumerate(iter_dicts(gw.spec.get("servers"))):
            port = as_dict(server.get("port")).get("number")
            if not isinstance(port, int):
                continue
            if port not in ports and port not in mapping:
                yield finding("ML1182", gw, selector_path(gw, sel), port=port, selector=sel_text)
