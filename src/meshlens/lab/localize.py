"""Make one sidecar's compiled xDS runnable on this machine without changing its routing meaning.

Layer: L7 (lab). Imports: compiler (CompileResult), lab.addressing, lab.extensions, lab.protos.

The lab serves what meshlens compiled, changed only by the rules below (in this order). Every
change is recorded as a :class:`Change` and printed by ``meshlens lab up`` / ``lab run``; the
routing decisions (listener, filter chain, virtual host, route, cluster, endpoint set, TLS
settings, circuit breakers, outlier detection, retries) are untouched.

=============  =====================================================  ===========================
rule           what changes                                           why
=============  =====================================================  ===========================
address        pod IPs, Service VIPs, ServiceEntry addresses in        the lab binds and targets
               endpoints, listener addresses, filter-chain and RBAC   only 127.0.0.0/8 and ::1
               CIDRs: 10.a.b.c -> 127.a.b.c, others (IPv6 and
               IPv4-mapped too) -> 127.255.x.y
dns            STRICT_DNS / LOGICAL_DNS clusters -> STATIC, each       DNS is never asked; names
               hostname resolved by the lab (127.255.x.y)             resolve to lab addresses
extension      Istio-only filters removed (lab.extensions' table:          upstream Envoy 1.40 lacks
               istio.metadata_exchange, istio.alpn, istio.stats, ...)  them
sds            SDS from the agent pipe (sds-grpc) -> the same           secrets come from the lab
               secret names over ADS                                  CA (default, ROOTCA)
capture        virtualOutbound binds 127.0.0.1:<free port> and gets a  stands in for iptables
               proxy_protocol listener filter; the lab client writes   REDIRECT: the header's
               the original destination in a PROXY v1 header           destination drives the
                                                                      hand-off (use_original_dst)
inbound        (server sidecars) virtualInbound binds <pod lab IP>:     stands in for inbound
               each inbound port; inbound ORIGINAL_DST clusters ->     capture; the app sits
               STATIC at the fake app's address (same IP, own port)   beside the sidecar
bind           any other listener that binds -> 127.0.0.1:<free>;      never bind 0.0.0.0; never
               enable_reuse_port false on every bound listener         share a port silently
access_log     Istio's default text format to the lab's log file on    meshConfig.accessLogFile
               every HttpConnectionManager and TcpProxy                is empty by default
request_id     (gateways) preserve_external_request_id on the HCMs     join requests with the log
=============  =====================================================  ===========================

The bootstrap is rebuilt by :mod:`meshlens.lab.bootstrap` (node and runtime from the compiled
one, admin and ADS on loopback). Before anything is pushed or started, :mod:`meshlens.lab.guard`
checks that every socket address of the result is loopback.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from envoy.config.accesslog.v3 import accesslog_pb2
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import config_source_pb2
from envoy.config.listener.v3 import listener_components_pb2
from envoy.extensions.access_loggers.file.v3 import file_pb2
from envoy.extensions.filters.listener.proxy_protocol.v3 import proxy_protocol_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2
from google.protobuf.message import Message

import meshlens.compiler.istio_protos  # noqa: F401  (registers istio.alpn's type for Any)
from meshlens.compiler import CompileResult
from meshlens.lab.addressing import LAB_HOST, Addressing, parse_ip
from meshlens.lab.extensions import remove_istio_only_extensions
from meshlens.lab.protos import walk

#: Istio's default access log format (pilot/pkg/model/telemetry_logging.go, EnvoyTextLogFormat).
ISTIO_TEXT_LOG_FORMAT = (
    '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" '
    "%RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% "
    '"%UPSTREAM_TRANSPORT_FAILURE_REASON%" %BYTES_RECEIVED% %BYTES_SENT% %DURATION% '
    '%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" '
    '"%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%" %UPSTREAM_CLUSTER_RAW% '
    "%UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% "
    "%REQUESTED_SERVER_NAME% %ROUTE_NAME%\n"
)

DIRECT_PREFIX = "lab-direct~"
RULES = ("address", "dns", "extension", "sds", "capture", "inbound", "bind", "access_log")


@dataclass(frozen=True, slots=True)
class Change:
    """One localization step applied to one resource."""

    rule: str
    resource: str
    detail: str


@dataclass(slots=True)
class LocalConfig:
    """The xDS resources one lab Envoy is served, and how they differ from the compiled ones."""

    node_id: str
    clusters: list[Any] = field(default_factory=list)
    endpoints: list[Any] = field(default_factory=list)
    listeners: list[Any] = field(default_factory=list)
    routes: list[Any] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ServerSide:
    """What a server sidecar's inbound needs: its lab IP and the fake app's port per target port."""

    ip: str
    app_ports: dict[int, int]


def localize(result: CompileResult, addressing: Addressing, *, access_log: str,
             server: ServerSide | None = None, direct_entries: bool = False) -> LocalConfig:
    """Apply the rules of the module docstring to a copy of ``result``'s xDS resources.

    Args:
        result: the compiled sidecar.
        addressing: the lab's address map (grows as new addresses are seen).
        access_log: the file every HCM/TcpProxy of this Envoy logs to.
        server: set for a server sidecar (its virtualInbound binds the pod's lab address).
        direct_entries: also serve, for each outbound HTTP listener that does not bind
            (``0.0.0.0_80``), a bound copy ``lab-direct~<name>`` on 127.0.0.1 -- the same filter
            chains, reachable without the PROXY header (for tools such as wrk; not Istio's).
    """
    node_id = result.bootstrap.node.id if result.bootstrap is not None else result.proxy.name
    out = LocalConfig(node_id)
    walker = _Localizer(addressing, out.changes)
    for kind, src, dst in (("cluster", result.clusters, out.clusters),
                           ("endpoints", result.endpoints, out.endpoints),
                           ("listener", result.listeners or [], out.listeners),
                           ("route", result.routes or [], out.routes)):
        for msg in src:
            copy = type(msg)()
            copy.CopyFrom(msg)
            name = copy.cluster_name if kind == "endpoints" else copy.name
            where = f"{kind} {name}"
            for line in remove_istio_only_extensions(copy, where=where):
                out.changes.append(Change("extension", where, line.split(": ", 1)[-1]))
            walker.where = where
            walk(copy, walker.visit)
            dst.append(copy)
    for cluster in out.clusters:
        _localize_dns(cluster, addressing, out.changes)
        if server is not None:
            _inbound_cluster(cluster, server, out.changes)
    for listener in out.listeners:
        _access_log(listener, access_log, out.changes)
        _bind(listener, server, out.changes)
        if result.proxy.is_router:
            _keep_request_id(listener, out.changes)
    if direct_entries:
        for listener in list(out.listeners):
            if _binds(listener) or not _has_hcm(listener):
                continue
            copy = type(listener)()
            copy.CopyFrom(listener)
            copy.name = DIRECT_PREFIX + listener.name
            copy.bind_to_port.value = True
            copy.address.socket_address.address, copy.address.socket_address.port_value = LAB_HOST, 0
            copy.enable_reuse_port.value = False
            out.listeners.append(copy)
            out.changes.append(Change("bind", f"listener {copy.name}", f"lab-only copy of "
                                      f"{listener.name} bound to {LAB_HOST}:<free port>"))
    return out


def _has_hcm(listener: Any) -> bool:
    return any(f.typed_config.Is(hcm_pb2.HttpConnectionManager.DESCRIPTOR)
               for fc in listener.filter_chains for f in fc.filters)


def summarize(changes: Iterable[Change]) -> list[tuple[str, int, str]]:
    """(rule, how many changes, one example) per rule, in the documented order."""
    by_rule: dict[str, list[Change]] = {}
    for c in changes:
        by_rule.setdefault(c.rule, []).append(c)
    rows = []
    for rule in RULES:
        items = by_rule.get(rule, [])
        if items:
            rows.append((rule, len(items), f"{items[0].resource}: {items[0].detail}"))
    return rows


# -- the walk: addresses, CIDRs, SDS --------------------------------------------------------------


class _Localizer:
    def __init__(self, addressing: Addressing, changes: list[Change]) -> None:
        self.addressing = addressing
        self.changes = changes
        self.where = ""

    def visit(self, msg: Message) -> None:
        name = msg.DESCRIPTOR.full_name
        if name == "envoy.config.core.v3.SocketAddress":
            self._socket_address(msg)
        elif name == "envoy.config.core.v3.CidrRange":
            self._cidr(msg)
        elif name == "envoy.extensions.transport_sockets.tls.v3.SdsSecretConfig":
            self._sds(msg)

    def _socket_address(self, sa: Any) -> None:
        before = sa.address
        if not before or parse_ip(before) is None:
            return  # hostnames are the dns rule's job (STATIC clusters cannot hold them anyway)
        after = self.addressing.ip(before)
        if after != before:
            sa.address = after
            self.changes.append(Change("address", self.where, f"{before} -> {after}"))

    def _cidr(self, cidr: Any) -> None:
        before = (cidr.address_prefix, cidr.prefix_len.value if cidr.HasField("prefix_len") else 32)
        if not before[0]:
            return
        after = self.addressing.cidr(*before)
        if after != before:
            cidr.address_prefix = after[0]
            cidr.prefix_len.value = after[1]
            self.changes.append(Change("address", self.where,
                                       f"{before[0]}/{before[1]} -> {after[0]}/{after[1]}"))

    def _sds(self, sds: Any) -> None:
        source = sds.sds_config
        if source.HasField("ads"):
            return
        timeout = None
        if source.HasField("initial_fetch_timeout"):
            timeout = source.initial_fetch_timeout
        new = config_source_pb2.ConfigSource(resource_api_version=config_source_pb2.V3)
        new.ads.SetInParent()
        if timeout is not None:
            new.initial_fetch_timeout.CopyFrom(timeout)
        source.CopyFrom(new)
        self.changes.append(Change("sds", self.where, f"secret {sds.name!r}: sds-grpc -> ADS"))


def _localize_dns(cluster: Any, addressing: Addressing, changes: list[Change]) -> None:
    if cluster.type not in (cluster_pb2.Cluster.STRICT_DNS, cluster_pb2.Cluster.LOGICAL_DNS):
        return
    kind = cluster_pb2.Cluster.DiscoveryType.Name(cluster.type)
    names = []
    for loc in cluster.load_assignment.endpoints:
        for lb in loc.lb_endpoints:
            sa = lb.endpoint.address.socket_address
            if sa.address and parse_ip(sa.address) is None:
                names.append(f"{sa.address} -> {addressing.name(sa.address)}")
                sa.address = addressing.name(sa.address)
    cluster.type = cluster_pb2.Cluster.STATIC
    for f in ("dns_lookup_family", "respect_dns_ttl", "dns_refresh_rate", "typed_dns_resolver_config"):
        cluster.ClearField(f)
    changes.append(Change("dns", f"cluster {cluster.name}",
                          f"{kind} -> STATIC ({', '.join(names) or 'no hostnames'})"))


def _inbound_cluster(cluster: Any, server: ServerSide, changes: list[Change]) -> None:
    if not cluster.name.startswith("inbound|") or cluster.type != cluster_pb2.Cluster.ORIGINAL_DST:
        return
    try:
        port = int(cluster.name.split("|")[1])
    except (IndexError, ValueError):
        return
    app = server.app_ports.get(port)
    if app is None:
        return
    # ORIGINAL_DST picks the connection's restored destination, which only iptables provides:
    # without a REDIRECT Envoy finds no host (503 UH). The lab names the one host it would pick.
    cluster.type = cluster_pb2.Cluster.STATIC
    cluster.lb_policy = cluster_pb2.Cluster.ROUND_ROBIN
    for f in ("original_dst_lb_config", "cleanup_interval"):
        cluster.ClearField(f)
    cluster.load_assignment.cluster_name = cluster.name
    del cluster.load_assignment.endpoints[:]
    sa = cluster.load_assignment.endpoints.add().lb_endpoints.add().endpoint.address.socket_address
    sa.address, sa.port_value = server.ip, app
    changes.append(Change("inbound", f"cluster {cluster.name}",
                          f"ORIGINAL_DST -> STATIC {server.ip}:{app} (the fake app beside the "
                          f"sidecar; in a pod: {server.ip}:{port})"))


# -- listeners ------------------------------------------------------------------------------------


def _access_log(listener: Any, path: str, changes: list[Change]) -> None:
    log = accesslog_pb2.AccessLog(name="envoy.access_loggers.file")
    cfg = file_pb2.FileAccessLog(path=path)
    cfg.log_format.text_format_source.inline_string = ISTIO_TEXT_LOG_FORMAT
    log.typed_config.Pack(cfg)
    chains = list(listener.filter_chains)
    if listener.HasField("default_filter_chain"):
        chains.append(listener.default_filter_chain)
    count = 0
    for chain in chains:
        for f in chain.filters:
            for cls in (hcm_pb2.HttpConnectionManager, tcp_proxy_pb2.TcpProxy):
                if f.typed_config.Is(cls.DESCRIPTOR):
                    msg = cls()
                    f.typed_config.Unpack(msg)
                    del msg.access_log[:]
                    msg.access_log.append(log)
                    f.typed_config.Pack(msg)
                    count += 1
    if count:
        changes.append(Change("access_log", f"listener {listener.name}",
                              f"{count} filter(s) log to {path}"))


def _keep_request_id(listener: Any, changes: list[Change]) -> None:
    """A gateway's HCM (``use_remote_address``) replaces an external client's x-request-id; the lab
    keeps it (``preserve_external_request_id``) to join its requests with the access log."""
    count = 0
    for chain in listener.filter_chains:
        for f in chain.filters:
            if f.typed_config.Is(hcm_pb2.HttpConnectionManager.DESCRIPTOR):
                msg = hcm_pb2.HttpConnectionManager()
                f.typed_config.Unpack(msg)
                msg.preserve_external_request_id = True
                f.typed_config.Pack(msg)
                count += 1
    if count:
        changes.append(Change("request_id", f"listener {listener.name}",
                              f"{count} gateway HCM(s) keep the client's x-request-id"))


def _binds(listener: Any) -> bool:
    return not listener.HasField("bind_to_port") or listener.bind_to_port.value


def _bind(listener: Any, server: ServerSide | None, changes: list[Change]) -> None:
    if not _binds(listener) or listener.address.HasField("pipe"):
        return
    sa = listener.address.socket_address
    before = f"{sa.address}:{sa.port_value}"
    where = f"listener {listener.name}"
    listener.enable_reuse_port.value = False
    if listener.name == "virtualOutbound":
        sa.address, sa.port_value = LAB_HOST, 0
        pp = listener_components_pb2.ListenerFilter(name="envoy.filters.listener.proxy_protocol")
        pp.typed_config.Pack(proxy_protocol_pb2.ProxyProtocol())
        filters = [pp, *listener.listener_filters]
        del listener.listener_filters[:]
        listener.listener_filters.extend(filters)
        changes.append(Change("capture", where, f"{before} -> {LAB_HOST}:<free port> with a "
                                                "proxy_protocol listener filter"))
        return
    if listener.name == "virtualInbound" and server is not None:
        ports = _inbound_ports(listener)
        if ports:
            sa.address, sa.port_value = server.ip, ports[0]
            del listener.additional_addresses[:]
            for p in ports[1:]:
                extra = listener.additional_addresses.add()
                extra.address.socket_address.address = server.ip
                extra.address.socket_address.port_value = p
            changes.append(Change("inbound", where, f"{before} -> {server.ip}:"
                                                    f"{','.join(map(str, ports))}"))
            return
    sa.address, sa.port_value = LAB_HOST, 0
    changes.append(Change("bind", where, f"{before} -> {LAB_HOST}:<free port>"))


def _inbound_ports(listener: Any) -> list[int]:
    own = listener.address.socket_address.port_value
    ports = sorted({fc.filter_chain_match.destination_port.value for fc in listener.filter_chains
                    if fc.filter_chain_match.HasField("destination_port")} - {own})
    return ports


__all__ = ["ISTIO_TEXT_LOG_FORMAT", "Change", "LocalConfig", "ServerSide", "localize", "summarize"]
