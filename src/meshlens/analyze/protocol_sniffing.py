"""Service ports whose protocol the sidecar must sniff, where that goes wrong: a server-first
protocol (the client waits for the server's greeting, the sidecar waits for the client's first
bytes: the connection hangs), and an appProtocol that overrides a good port name.

Layer: L6. Imports: analyze.core, model.

istioctl's IST0118 says a port is not declared; these say why that breaks a particular port.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from meshlens.analyze._istio import is_control_plane, workload_index
from meshlens.analyze.core import CodeDoc, Context, Finding, Metadata, finding, iter_dicts
from meshlens.model import protocol

METADATA = Metadata(
    name="meshlens.ProtocolSniffingAnalyzer",
    description="Sniffed ports that carry server-first protocols; appProtocol overriding names",
    inputs=("Service", "Pod", "Deployment"),
    codes=("ML1280", "ML1281"),
)

DOCS = {
    "ML1280": CodeDoc(
        checks="Service ports whose protocol is not declared (port name without a known prefix, "
               "no appProtocol) and that look like a server-first protocol by name or number "
               "(MySQL 3306, SMTP 25, SSH 22, NATS 4222, ...).",
        matters="The sidecar sniffs the first client bytes to detect HTTP, but a server-first "
                "client waits for the server's greeting: the connection hangs until a timeout.",
        quiet="The port is declared (tcp-mysql, appProtocol: tcp); a client-first protocol.",
        example="ports: [{name: db, port: 3306}]"),
    "ML1281": CodeDoc(
        checks="An appProtocol Istio does not know on a port whose name would declare a known "
               "protocol.",
        matters="appProtocol takes precedence over the name, so the port becomes undeclared and "
                "sniffed (or the name's protocol is overridden).",
        quiet="No appProtocol, or one Istio knows (http, http2, grpc, tcp, tls, "
              "kubernetes.io/h2c, ...).",
        example="ports: [{name: http-web, port: 80, appProtocol: web}]"),
}

#: Protocols where the server speaks first, with their usual ports.
SERVER_FIRST: dict[str, tuple[str, frozenset[int]]] = {
    "mysql": ("MySQL", frozenset({3306, 33060})),
    "mariadb": ("MariaDB (MySQL protocol)", frozenset()),
    "smtp": ("SMTP", frozenset({25, 465, 587, 2525})),
    "ftp": ("FTP", frozenset({21})),
    "ssh": ("SSH", frozenset({22})),
    "pop3": ("POP3", frozenset({110, 995})),
    "imap": ("IMAP", frozenset({143, 993})),
    "nats": ("NATS", frozenset({4222})),
    "telnet": ("Telnet", frozenset({23})),
}


def _kube_protocol(name: str, number: int, proto: str, app: str) -> str:
    return protocol.from_kube_port(name, number, "UDP" if proto == "UDP" else "TCP", app)


def server_first(names: list[str], numbers: list[int]) -> tuple[str, str] | None:
    """(key, label) of a server-first protocol the port's names or numbers point at."""
    for key, (label, ports) in SERVER_FIRST.items():
        if any(key in n.lower() for n in names if n) or any(p in ports for p in numbers):
            return key, label
    return None


def _container_port_names(ctx: Context, selector: dict[str, str], ns: str,
                          target: Any) -> list[str]:
    out = []
    workloads = ctx.mesh.registry.workloads
    for i in workload_index(ctx).select(ns, selector):
        out += [c.name for c in workloads[i].container_ports if c.port == target or c.name == target]
    return out


def analyze(ctx: Context) -> Iterator[Finding]:
    for svc in ctx.of_kind("Service"):
        if is_control_plane(svc) or svc.spec.get("type") == "ExternalName":
            continue
        selector = {str(k): str(v) for k, v in (svc.spec.get("selector") or {}).items()} \
            if isinstance(svc.spec.get("selector"), dict) else {}
        for i, p in enumerate(iter_dicts(svc.spec.get("ports"))):
            number: int = p["port"] if isinstance(p.get("port"), int) else 0
            name = str(p.get("name") or "")
            app = str(p.get("appProtocol") or "")
            proto = str(p.get("protocol") or "TCP")
            got = _kube_protocol(name, number, proto, app)
            if not protocol.is_unsupported(got):
                continue
            label = f"{name} ({number})" if name else str(number)
            if app and not protocol.is_unsupported(_kube_protocol(name, number, proto, "")):
                yield finding("ML1281", svc, ("spec", "ports", i, "appProtocol"), app=app,
                              name=name, port=number, service=f"{svc.namespace}/{svc.name}",
                              result=f"appProtocol {app} is not a protocol Istio knows, so the "
                                     "sidecar sniffs the protocol instead of using "
                                     f"{_kube_protocol(name, number, proto, '')}")
                continue
            target = p.get("targetPort", number)
            names = [name, str(target) if isinstance(target, str) else ""]
            names += _container_port_names(ctx, selector, svc.namespace, target)
            numbers: list[int] = [number] + ([target] if isinstance(target, int) else [])
            hit = server_first(names, numbers)
            if hit is None:
                continue
            key, proto_label = hit
            why = f"appProtocol {app} is unknown" if app else (
                f"port name {name!r} has no protocol prefix" if name else "the port has no name")
            yield finding("ML1280", svc, ("spec", "ports", i), port=label,
                          service=f"{svc.namespace}/{svc.name}", why=why, proto=proto_label,
                          fix={"proto_name": key})
