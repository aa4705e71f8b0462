"""Which Gateways apply to a gateway proxy, and how their servers merge (`model/gateway.go`).

Layer: L3. Imports: resources, model.{registry,protocol}.

`PushContext.mergeGateways` picks the Gateways for one proxy (all namespaces: the default of
``PILOT_SCOPE_GATEWAY_TO_NAMESPACE`` is false; a Gateway applies when its ``selector`` is a
subset of the pod's labels, when it has no selector, or, for a Gateway carrying the
``internal.istio.io/gateway-service`` annotation, when one of the named Services in its namespace
selects the pod). `mergeGateways` then walks them oldest first and merges their servers per
resolved port (`resolvePorts`: a Service port equal to the server port becomes that Service's
targetPort), naming route configurations (`gatewayRDSRouteName`) and rejecting conflicts as
istiod does. Rejected servers are kept with the reason, for diagnostics and ``explain``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from meshlens.model import protocol
from meshlens.model.registry import Registry, Service, ServicePort, Workload
from meshlens.resources import Resource

GATEWAY_SERVICE_ANNOTATION = "internal.istio.io/gateway-service"
DISABLE_PORT_TRANSLATION = "experimental.istio.io/disable-gateway-port-translation"


@dataclass(slots=True)
class ServiceTarget:
    """`model.ServiceTarget`: one Service port selecting the proxy's pod, targetPort resolved."""

    service: Service
    port: ServicePort
    target_port: int


def proxy_service_targets(registry: Registry, wl: Workload) -> list[ServiceTarget]:
    """`GetProxyServiceTargetsByPod`: every Kubernetes Service port selecting ``wl``, in age order.

    A named targetPort the pod does not declare is left out (the EndpointSlice has no endpoint).
    """
    out: list[ServiceTarget] = []
    for svc in sorted(registry.services, key=lambda s: (s.resource.creation, s.name, s.namespace)):
        if svc.registry != "Kubernetes" or svc.namespace != wl.namespace or not svc.selector \
                or any(wl.labels.get(k) != v for k, v in svc.selector.items()):
            continue
        for port in svc.ports:
            target = _target_port(port, wl)
            if target is not None:
                out.append(ServiceTarget(svc, port, target))
    return out


def _target_port(port: ServicePort, wl: Workload) -> int | None:
    """The port number a Service port reaches on ``wl`` (a named targetPort via its containers)."""
    target = port.target_port if port.target_port is not None else port.port
    if not isinstance(target, str):
        return int(target)
    return next((cp.port for cp in wl.container_ports if cp.name == target), None)


@dataclass(eq=False, slots=True)
class GatewayServer:
    """One ``spec.servers[i]`` of one Gateway, with its hosts sanitized for merging."""

    gateway: Resource
    index: int
    server: dict[str, Any]  # a copy: hosts per `sanitizeServerHostNamespace`
    route_name: str = ""  # TLSServerInfo.RouteName (HTTPS) or the plain-text route name
    sni_hosts: list[str] = field(default_factory=list)  # TLSServerInfo.SNIHosts

    @property
    def gateway_name(self) -> str:
        return f"{self.gateway.namespace}/{self.gateway.name}"

    @property
    def port(self) -> dict[str, Any]:
        p = self.server.get("port")
        return p if isinstance(p, dict) else {}

    @property
    def number(self) -> int:
        return int(self.port.get("number") or 0)

    @property
    def protocol(self) -> str:
        return protocol.parse(str(self.port.get("protocol") or ""))

    @property
    def port_name(self) -> str:
        return str(self.port.get("name") or "")

    @property
    def hosts(self) -> list[str]:
        return [str(h) for h in self.server.get("hosts") or []]

    @property
    def bind(self) -> str:
        return str(self.server.get("bind") or "")

    @property
    def tls(self) -> dict[str, Any] | None:
        t = self.server.get("tls")
        return t if isinstance(t, dict) else None

    @property
    def tls_mode(self) -> str:
        return str((self.tls or {}).get("mode") or "PASSTHROUGH")

    @property
    def path(self) -> tuple[str | int, ...]:
        return ("spec", "servers", self.index)

    @property
    def stat_name(self) -> str:
        return str(self.server.get("name") or "")


def is_passthrough(s: GatewayServer) -> bool:
    """`gateway.IsPassThroughServer`: TLS with mode PASSTHROUGH or AUTO_PASSTHROUGH."""
    return s.tls is not None and s.tls_mode in ("PASSTHROUGH", "AUTO_PASSTHROUGH")


def is_tls_server(s: GatewayServer) -> bool:
    """`gateway.IsTLSServer`: tls set and the protocol is HTTPS or TLS (or tls on any port)."""
    return s.tls is not None and not protocol.is_http(s.protocol)


def is_http_server(s: GatewayServer) -> bool:
    """`gateway.IsHTTPServer`: an HTTP protocol, or HTTPS that terminates TLS."""
    return protocol.is_http(s.protocol) or (s.protocol == protocol.HTTPS and not is_passthrough(s))


def is_https_terminating(s: GatewayServer) -> bool:
    """`gateway.IsHTTPSServerWithTLSTermination`."""
    return s.protocol == protocol.HTTPS and s.tls is not None and not is_passthrough(s)


@dataclass(frozen=True, slots=True)
class ServerPort:
    """`model.ServerPort`: the listener port (after targetPort translation), protocol, bind."""

    number: int
    protocol: str  # as written in the Gateway
    bind: str = ""


@dataclass(slots=True)
class MergedServers:
    servers: list[GatewayServer]
    route_name: str = ""


@dataclass(slots=True)
class Rejected:
    server: GatewayServer
    port: int
    reason: str


@dataclass(slots=True)
class MergedGateway:
    """`model.MergedGateway`."""

    gateways: list[Resource]
    server_ports: list[ServerPort] = field(default_factory=list)
    merged: dict[ServerPort, MergedServers] = field(default_factory=dict)
    servers_by_route: dict[str, list[GatewayServer]] = field(default_factory=dict)
    rejected: list[Rejected] = field(default_factory=list)
    auto_passthrough: bool = False
    #: listener port → the Gateway server port numbers that resolved to it (`getTargetPortMap`)
    port_map: dict[int, set[int]] = field(default_factory=dict)


def sanitize_hosts(hosts: list[str], namespace: str) -> list[str]:
    """`sanitizeServerHostNamespace`: ``./h`` → ``ns/h``, ``*/h`` → ``h``, ``*/*`` → only ``*``."""
    out = list(hosts)
    for i, h in enumerate(hosts):
        if "/" not in h:
            continue
        ns, _, name = h.partition("/")
        if ns == ".":
            out[i] = f"{namespace}/{name}"
        elif ns == "*":
            if name == "*":
                return ["*"]
            out[i] = name
    return out


def names_for_namespace(hosts: list[str], namespace: str) -> list[str]:
    """`host.NamesForNamespace`: ``ns/h`` kept (stripped) only for ``namespace`` or ``*``."""
    out = []
    for h in hosts:
        if "/" in h:
            ns, _, name = h.partition("/")
            if ns not in (namespace, "*"):
                continue
            h = name
        out.append(h)
    return out


def sni_hosts(s: GatewayServer) -> list[str]:
    """`GetSNIHostsForServer`: hosts without their namespace, de-duplicated and sorted."""
    if s.tls is None:
        return []
    return sorted({h.split("/", 1)[1] if "/" in h else h for h in s.hosts})


def route_name(s: GatewayServer, port: int) -> str:
    """`gatewayRDSRouteName`: ``http.PORT`` (HTTP) or ``https.PORT.NAME.GATEWAY.NS`` (HTTPS that
    terminates TLS; note it keeps the Server's own port number), else ""; ``.BIND`` appended."""
    bind = f".{s.bind}" if s.bind else ""
    if protocol.is_http(s.protocol):
        return f"http.{port}{bind}"
    if s.protocol == protocol.HTTPS and not is_passthrough(s):
        return f"https.{s.number}.{s.port_name}.{s.gateway.name}.{s.gateway.namespace}{bind}"
    return ""


def resolve_ports(number: int, targets: list[ServiceTarget], legacy: bool) -> list[int]:
    """`resolvePorts`: the targetPort of a Service port equal to the server port.

    With a label selector (legacy) the first match wins and an unmatched port is used as is;
    Gateway API gateways (by Service) use every distinct targetPort and nothing else.
    """
    ports: list[int] = []
    for t in targets:
        if legacy and DISABLE_PORT_TRANSLATION in t.service.labels:
            continue
        if t.port.port == number:
            if legacy:
                return [t.target_port]
            if t.target_port not in ports:
                ports.append(t.target_port)
    if not ports and legacy:
        return [number]
    return sorted(ports)


def _can_merge(current: str, new: str) -> bool:
    """`canMergeProtocols`."""
    return (protocol.is_http(current) or current == new) and protocol.is_http(new)


def _check_duplicates(hosts: list[str], bind: str, known: dict[str, str]) -> list[str]:
    """`CheckDuplicates`: hosts already bound on this port with the same bind."""
    dupes = [h for h in hosts if h in known and known[h] == bind]
    if not dupes:
        for h in hosts:
            known[h] = bind
    return dupes


def gateway_order(r: Resource) -> tuple[str, str, str]:
    """`sortConfigByCreationTime`: creation time, then name, then namespace."""
    return (r.creation, r.name, r.namespace)


def select_gateways(gateways: list[Resource], wl: Workload,
                    targets: list[ServiceTarget]) -> list[tuple[Resource, bool, list[ServiceTarget]]]:
    """`PushContext.mergeGateways`' selection: (gateway, legacy selector?, service targets)."""
    out: list[tuple[Resource, bool, list[ServiceTarget]]] = []
    for gw in sorted(gateways, key=gateway_order):
        names = gw.annotations.get(GATEWAY_SERVICE_ANNOTATION)
        if names is not None:
            known = set(names.split(","))
            parent_ns = gw.annotations.get("internal.istio.io/parent-namespace") or gw.namespace
            matching = [t for t in targets
                        if t.service.hostname in known and t.service.namespace == parent_ns]
            if matching:
                out.append((gw, False, matching))
            continue
        selector = gw.spec.get("selector")
        if not isinstance(selector, dict) or not selector:
            # `gw.GetSelector() == nil`: an empty map is nil after proto decoding too
            out.append((gw, True, targets))
        elif all(wl.labels.get(str(k)) == str(v) for k, v in selector.items()):
            out.append((gw, True, targets))
    return out


def merge_gateways(selected: list[tuple[Resource, bool, list[ServiceTarget]]]) -> MergedGateway | None:
    """`mergeGateways` (TCP transport; QUIC listeners need PILOT_ENABLE_QUIC_LISTENERS, off by default)."""
    if not selected:
        return None
    mg = MergedGateway([g for g, _, _ in selected])
    gateway_ports: set[int] = set()
    non_plain_binds: dict[int, set[str]] = {}
    plain_text: dict[int, ServerPort] = {}
    tls_hosts: dict[int, dict[str, str]] = {}

    def add_plain(s: GatewayServer, sp: ServerPort, rn: str) -> None:
        """`addPlainTextServer`."""
        if not is_tls_server(s):
            plain_text[sp.number] = sp
        if is_http_server(s):
            mg.servers_by_route[rn] = [s]
        mg.merged[sp] = MergedServers([s], rn)
        mg.server_ports.append(sp)

    for gw, legacy, targets in selected:
        for i, raw in enumerate(gw.spec.get("servers") or []):
            if not isinstance(raw, dict) or not isinstance(raw.get("port"), dict):
                continue
            server = copy.copy(raw)
            server["hosts"] = sanitize_hosts([str(h) for h in raw.get("hosts") or []], gw.namespace)
            s = GatewayServer(gw, i, server)
            for port in resolve_ports(s.number, targets, legacy):
                rn = route_name(s, port)
                if s.tls is not None:
                    dupes = _check_duplicates(s.hosts, s.bind, tls_hosts.setdefault(port, {}))
                    if dupes:
                        mg.rejected.append(Rejected(s, port, f"duplicate host names on port {port}: "
                                                              f"{', '.join(dupes)}"))
                        continue
                    s.sni_hosts = sni_hosts(s)
                    s.route_name = rn
                    if s.tls_mode == "AUTO_PASSTHROUGH":
                        mg.auto_passthrough = True
                sp = ServerPort(port, str(s.port.get("protocol") or ""), s.bind)
                if port not in gateway_ports:
                    gateway_ports.add(port)
                    if not s.route_name:
                        s.route_name = rn
                    add_plain(s, sp, rn)
                    continue
                current = plain_text.get(port)
                if current is not None:
                    if not _can_merge(s.protocol, protocol.parse(current.protocol)) and current.bind == sp.bind:
                        mg.rejected.append(Rejected(s, port, (
                            f"conflict with existing server {current.number}.{current.protocol} "
                            "(HTTP and non-HTTP servers cannot share a port; the first Gateway wins)")))
                        continue
                    if rn == "" and current.bind == sp.bind:
                        mg.rejected.append(Rejected(s, port, "could not build RDS name from server"))
                        continue
                    s.route_name = s.route_name or rn
                    if current.bind != sp.bind:
                        if sp not in mg.merged:
                            add_plain(s, sp, rn)
                        else:
                            ms = mg.merged[sp]
                            ms.route_name = rn
                            ms.servers.append(s)
                            mg.servers_by_route.setdefault(rn, []).append(s)
                    else:
                        mg.merged[current].servers.append(s)
                        mg.servers_by_route.setdefault(rn, []).append(s)
                    continue
                if not is_tls_server(s):
                    plain_text[port] = sp
                    if is_http_server(s):
                        mg.servers_by_route[rn] = [s]
                    s.route_name = s.route_name or rn
                    mg.merged[sp] = MergedServers([s], rn)
                    mg.server_ports.append(sp)
                    continue
                if is_http_server(s):
                    if rn == "":
                        mg.rejected.append(Rejected(s, port, "could not build RDS name from server"))
                        continue
                    if rn in mg.servers_by_route:
                        mg.rejected.append(Rejected(s, port, f"non unique port name for HTTPS port ({rn})"))
                        continue
                    mg.servers_by_route[rn] = [s]
                binds = non_plain_binds.setdefault(port, set())
                new_bind = sp.bind not in binds
                binds.add(sp.bind)
                if s.tls is None and not new_bind:
                    mg.rejected.append(Rejected(s, port, "TLS server without TLS options"))
                    continue
                if sp not in mg.merged:
                    mg.merged[sp] = MergedServers([s])
                    mg.server_ports.append(sp)
                else:
                    mg.merged[sp].servers.append(s)
    for rn, servers in mg.servers_by_route.items():
        lp = _route_port(rn)
        mg.port_map.setdefault(lp, set()).update(s.number for s in servers)
    return mg


def _route_port(rn: str) -> int:
    """`ParseGatewayRDSRouteName`'s port number."""
    parts = rn.split(".")
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0


def secret_of(name: str, namespace: str) -> tuple[str, str] | None:
    """(namespace, Secret name) a credential refers to, or None for configmap:// and builtin://."""
    if name.startswith("sds://"):
        name = name[len("sds://"):]
    if name.startswith(("configmap://", "builtin://")):
        return None
    if name.startswith("kubernetes-gateway://"):
        ns, _, n = name[len("kubernetes-gateway://"):].partition("/")
        return (ns, n) if n else (namespace, ns)
    if name.startswith("kubernetes://"):
        name = name[len("kubernetes://"):]
    ns, slash, n = name.partition("/")
    return (ns, n) if slash else (namespace, name)


def credential_names(s: GatewayServer) -> list[tuple[str, tuple[str | int, ...]]]:
    """The TLS credentials a server reads from Secrets: (name, field path)."""
    tls = s.tls or {}
    if s.tls_mode in ("PASSTHROUGH", "AUTO_PASSTHROUGH", "ISTIO_MUTUAL"):
        return []
    out = [(str(n), s.path + ("tls", "credentialNames", i))
           for i, n in enumerate(tls.get("credentialNames") or [])]
    if tls.get("credentialName"):
        out.append((str(tls["credentialName"]), s.path + ("tls", "credentialName")))
    return out


def missing_credentials(merged: MergedGateway, secrets: list[Resource],
                        proxy_namespace: str) -> list[tuple[GatewayServer, str, tuple[str | int, ...]]]:
    """Servers whose credential Secret is not in the input (looked up in the gateway pod's
    namespace, as istiod's SDS server does for ``kubernetes://NAME``)."""
    have = {(r.namespace, r.name) for r in secrets}
    out = []
    seen: set[int] = set()
    for ms in merged.merged.values():
        for s in ms.servers:
            if id(s) in seen:
                continue
            seen.add(id(s))
            for name, path in credential_names(s):
                ref = secret_of(name, proxy_namespace)
                if ref is not None and ref not in have:
                    out.append((s, f"{ref[0]}/{ref[1]}", path))
    return out


def gateway_diagnostics(result: Any) -> list[Any]:
    """Notes for a compiled gateway: no Gateway selects it, each server istiod skips, and each
    credential Secret that is not in the input (the chain is built all the same)."""
    from meshlens.diagnostics import report

    wl = result.proxy.workload
    merged = getattr(result, "gateway", None)
    if merged is None:
        return [report("ML0302", doc=wl.resource.doc, resource=wl.resource.ref,
                       message=f"gateway pod {wl.name}.{wl.namespace}: no Gateway selects it "
                               f"(labels {dict(sorted(wl.labels.items()))}); it gets no listeners")]
    out = [report("ML0302", doc=r.server.gateway.doc, path=r.server.path, resource=r.server.gateway.ref,
                  message=f"server {r.server.index} (port {r.server.number}) is skipped on gateway "
                          f"{wl.name}.{wl.namespace} port {r.port}: {r.reason}")
           for r in merged.rejected]
    secrets = [r for r in result.mesh.resources if r.kind == "Secret"]
    for s, ref, path in missing_credentials(merged, secrets, wl.namespace):
        out.append(report("ML0302", doc=s.gateway.doc, path=path, resource=s.gateway.ref,
                          message=f"Secret {ref} is not in the input: the listener and its filter "
                                  "chain are still built, but Envoy waits for the certificate over "
                                  "SDS and TLS handshakes on this chain fail"))
    return out
