"""Service ports whose protocol is not declared, so the sidecar has to sniff it
(istioctl `service.PortNameAnalyzer`).

Layer: L6. Imports: analyze.core, analyze._istio, model.protocol.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from meshlens.analyze._istio import is_control_plane
from meshlens.analyze.core import CodeDoc, Context, Finding, Metadata, finding, iter_dicts
from meshlens.model import protocol

METADATA = Metadata(
    name="service.PortNameAnalyzer",
    description="Checks the port names associated with each service",
    inputs=("Service",),
    codes=("ML1131", "ML1132"),
)

DOCS = {
    "ML1131": CodeDoc(
        checks="Service ports whose protocol Istio cannot tell from the name prefix "
               "(http, http2, grpc, tcp, tls, mongo, mysql, redis, ...) or appProtocol "
               "(istioctl IST0118).",
        matters="Info: the sidecar sniffs the protocol (HTTP/1.1, HTTP/2 or TCP) from the first "
                "bytes; that mostly works but costs a little latency, and fails for server-first "
                "protocols (see ML1280).",
        quiet="A known prefix (http-web) or appProtocol; control-plane and waypoint services.",
        example="ports: [{name: web, port: 8081, targetPort: 8080}]"),
    "ML1132": CodeDoc(
        checks="ExternalName Services with an undeclared port or one named plain tcp "
               "(IST0150).",
        matters="The sidecar may not forward unmatched TCP traffic to such a port correctly.",
        quiet="A protocol prefix other than plain tcp (tcp-db, http, tls).",
        example="type: ExternalName\nports: [{name: tcp, port: 5432}]"),
}

GATEWAY_MANAGED = "gateway.istio.io/managed"
MANAGED_VALUES = ("istio.io-gateway-controller", "istio.io-mesh-controller",
                  "istio.io-eastwest-controller")


def kube_protocol(port: dict[str, Any]) -> str:
    """`kube.ConvertProtocol` for one Service port."""
    proto = "UDP" if port.get("protocol") == "UDP" else "TCP"
    number = port["port"] if isinstance(port.get("port"), int) else 0
    app = port.get("appProtocol")
    return protocol.from_kube_port(str(port.get("name") or ""), number, proto,
                                   str(app) if app is not None else "")


def target_text(port: dict[str, Any]) -> str:
    """``intstr.IntOrString.String()``: the number, the name, or ``0`` when unset."""
    t = port.get("targetPort")
    return "0" if t is None else str(t)


def analyze(ctx: Context) -> Iterator[Finding]:
    for svc in ctx.of_kind("Service"):
        if is_control_plane(svc) or svc.labels.get(GATEWAY_MANAGED) in MANAGED_VALUES:
            continue
        external = svc.spec.get("type") == "ExternalName"
        for i, port in enumerate(iter_dicts(svc.spec.get("ports"))):
            name = str(port.get("name") or "")
            if not (protocol.is_unsupported(kube_protocol(port)) or (name == "tcp" and external)):
                continue
            if external:
                yield finding("ML1132", svc, ("spec", "ports", i))
            else:
                yield finding("ML1131", svc, ("spec", "ports", i), name=name,
                              port=port.get("port"), target=target_text(port))
