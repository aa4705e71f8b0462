"""Inbound chain matching: which filter chains a port gets per PeerAuthentication mode, their
mTLS server context, and the listener inspectors those matches need.

Layer: L4. Imports: model.peer_auth, model.protocol, compiler.{filters,tls,provenance}, xDS protos.

`core/filterchain_options.go:getFilterChainMatchOptions` (the chain table: one row per filter
chain, by listener protocol class and mTLS mode), `plugin/authn/authentication.go`
(`ForPort`, `ForPassthrough`) and `security/authn/utils/utils.go:BuildInboundTLS` (the
DownstreamTlsContext that terminates Istio mTLS with the workload certificate from SDS),
`listener_inbound.go:populateListenerFilters` (TLS/HTTP inspectors and their port predicates).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from envoy.config.core.v3 import base_pb2
from envoy.config.listener.v3 import listener_components_pb2 as lc_pb2
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, tls_pb2
from envoy.type.matcher.v3 import string_pb2
from envoy.type.v3 import range_pb2

from meshlens.compiler import filters as flt
from meshlens.compiler import provenance as prov
from meshlens.compiler.provenance import Origin
from meshlens.compiler.tls import TLS_SOCKET, sds_grpc
from meshlens.model import protocol
from meshlens.model.peer_auth import DISABLE, PERMISSIVE, STRICT, ComposedMtls, ModeSource

HTTP, TCP, AUTO = "HTTP", "TCP", "Auto"
TLS, RAW = "tls", "raw_buffer"

#: security/authn/utils/utils.go:SupportedCiphers
SUPPORTED_CIPHERS = ("ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
                     "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
                     "AES256-GCM-SHA384", "AES128-GCM-SHA256")
ALPN_HTTP = ["h2", "http/1.1"]  # util.ALPNHttp / ALPNDownstream
ALPN_DOWNSTREAM_MX = ["istio-peer-exchange", "h2", "http/1.1"]  # util.ALPNDownstreamWithMxc
Predicate = lc_pb2.ListenerFilterChainMatchPredicate


def listener_protocol(proto: str) -> str:
    """`ModelProtocolToListenerProtocol`: HTTP, TCP or Auto. UDP is "unknown" to istiod, which
    then falls through to the TCP rows of the chain table.

    Example:
        >>> listener_protocol("HTTP2"), listener_protocol("Mongo")
        ('HTTP', 'TCP')
        >>> listener_protocol("UnsupportedProtocol")
        'Auto'
        >>> listener_protocol("UDP")
        'TCP'
    """
    if protocol.is_http(proto):
        return HTTP
    if protocol.is_unsupported(proto):
        return AUTO
    return TCP


@dataclass(frozen=True, slots=True)
class MatchOption:
    """`FilterChainMatchOptions`: one inbound filter chain of a port."""

    protocol: str  # HTTP | TCP: which network filters the chain gets
    transport: str  # tls | raw_buffer
    alpn: tuple[str, ...] = ()
    tls: bool = False  # terminates Istio mTLS


def _opt(proto: str, transport: str, alpn: list[str] | None = None,
         tls: bool = False) -> MatchOption:
    return MatchOption(proto, transport, tuple(alpn or ()), tls)


def match_options(mode: str, lp: str, *, http10: bool = False) -> list[MatchOption]:
    """`getFilterChainMatchOptions`: the chains for listener protocol ``lp`` in ``mode``.

    Example:
        >>> [(o.protocol, o.transport, o.tls) for o in match_options("PERMISSIVE", "HTTP")]
        [('HTTP', 'tls', True), ('HTTP', 'raw_buffer', False)]
        >>> len(match_options("PERMISSIVE", "Auto")), len(match_options("STRICT", "Auto"))
        (5, 2)
    """
    plain_http = (["http/1.0"] if http10 else []) + flt.ALPN_PLAIN_HTTP
    if lp == HTTP:
        if mode == STRICT:
            return [_opt(HTTP, TLS, tls=True)]
        if mode == PERMISSIVE:
            return [_opt(HTTP, TLS, flt.ALPN_ALL_ISTIO, True), _opt(HTTP, RAW)]
        return [_opt(HTTP, RAW)]
    if lp == AUTO:
        if mode == STRICT:
            return [_opt(HTTP, TLS, flt.ALPN_MTLS_HTTP, True), _opt(TCP, TLS, tls=True)]
        if mode == PERMISSIVE:
            return [_opt(HTTP, TLS, flt.ALPN_MTLS_HTTP, True), _opt(HTTP, RAW, plain_http),
                    _opt(TCP, TLS, flt.ALPN_MTLS_TCP, True), _opt(TCP, RAW), _opt(TCP, TLS)]
        return [_opt(HTTP, RAW, plain_http), _opt(TCP, RAW)]
    if mode == STRICT:
        return [_opt(TCP, TLS, tls=True)]
    if mode == PERMISSIVE:
        # mTLS; plain TLS from a non-mesh client, proxied still encrypted; plaintext.
        return [_opt(TCP, TLS, flt.ALPN_ALL_ISTIO, True), _opt(TCP, TLS), _opt(TCP, RAW)]
    return [_opt(TCP, RAW)]


@dataclass(frozen=True, slots=True)
class MtlsSettings:
    """`authn.MTLSSettings` for one port, with the PeerAuthentication that chose the mode."""

    port: int
    source: ModeSource
    tcp: tls_pb2.DownstreamTlsContext | None
    http: tls_pb2.DownstreamTlsContext | None

    @property
    def mode(self) -> str:
        return self.source.mode

    def context(self, opt: MatchOption) -> tls_pb2.DownstreamTlsContext | None:
        """`FilterChainMatchOptions.ToTransportSocket`."""
        if not opt.tls:
            return None
        return self.http if opt.protocol == HTTP else self.tcp

    def origin(self, note: str = "") -> Origin:
        """Where the mode came from: the PeerAuthentication field, or istiod's default."""
        src = self.source
        tail = f"; {note}" if note else ""
        if src.resource is None:
            return prov.default(f"no PeerAuthentication: {src.mode}{tail}")
        return prov.from_resource(src.resource, src.path, "peer-authentication",
                                  f"mTLS mode {src.mode} ({src.level} level){tail}")


def trust_domains(mesh: Any) -> list[str]:
    """`TrustDomainsForValidation`: trust domain, aliases and caCertificates' trust domains,
    deduplicated in order.

    Example:
        >>> from meshlens.model.mesh import MeshConfig
        >>> trust_domains(MeshConfig())
        ['cluster.local']
    """
    tds = [str(mesh.trust_domain)] + [str(a) for a in mesh.get("trustDomainAliases") or []]
    for ca in mesh.get("caCertificates") or []:
        if isinstance(ca, dict):
            tds.extend(str(t) for t in ca.get("trustDomains") or [])
    out: list[str] = []
    for td in tds:
        if td and td not in out:
            out.append(td)
    return out


def build_inbound_tls(mode: str, lp: str, *, mesh: Any,
                      options: Any) -> tls_pb2.DownstreamTlsContext | None:
    """`BuildInboundTLS`: Istio mTLS server context for STRICT/PERMISSIVE, None for DISABLE.

    TCP chains advertise ``istio-peer-exchange`` (metadata exchange over mTLS); HTTP chains only
    ``h2, http/1.1`` so the real protocol is negotiated.
    """
    if mode not in (STRICT, PERMISSIVE):
        return None
    ctx = tls_pb2.DownstreamTlsContext()
    ctx.require_client_certificate.value = True
    common = ctx.common_tls_context
    if lp == TCP and options.metadata_exchange:
        common.alpn_protocols.extend(ALPN_HTTP if options.disable_mx_alpn else ALPN_DOWNSTREAM_MX)
    else:
        common.alpn_protocols.extend(ALPN_HTTP)
    mtls = mesh.get("meshMTLS") or {}
    mtls = mtls if isinstance(mtls, dict) else {}
    params = common.tls_params
    params.tls_minimum_protocol_version = (common_pb2.TlsParameters.TLSv1_3
                                           if mtls.get("minProtocolVersion") == "TLSV1_3"
                                           else common_pb2.TlsParameters.TLSv1_2)
    params.tls_maximum_protocol_version = common_pb2.TlsParameters.TLSv1_3
    params.cipher_suites.extend(str(c) for c in mtls.get("cipherSuites") or SUPPORTED_CIPHERS)
    common.tls_certificate_sds_secret_configs.append(sds_grpc("default"))
    cvc = common.combined_validation_context
    for td in trust_domains(mesh):
        cvc.default_validation_context.match_subject_alt_names.append(
            string_pb2.StringMatcher(prefix=f"spiffe://{td}/"))
    cvc.default_validation_context.SetInParent()
    cvc.validation_context_sds_secret_config.CopyFrom(sds_grpc("ROOTCA"))
    return ctx


def settings(composed: ComposedMtls, port: int, *, mesh: Any, options: Any) -> MtlsSettings:
    """`Builder.ForPort` / `InboundMTLSSettings` for a target port (0: the passthrough)."""
    src = composed.for_port(port) if port else composed.mode
    if src.mode not in (STRICT, PERMISSIVE, DISABLE):
        src = ModeSource(PERMISSIVE, src.resource, src.level, src.path)
    return MtlsSettings(port, src, build_inbound_tls(src.mode, TCP, mesh=mesh, options=options),
                        build_inbound_tls(src.mode, HTTP, mesh=mesh, options=options))


def passthrough_settings(composed: ComposedMtls, handled_ports: set[int], *, mesh: Any,
                         options: Any) -> list[MtlsSettings]:
    """`Builder.ForPassthrough`: the full passthrough (port 0), then one per ``portLevelMtls``
    port that no service chain (or Sidecar ingress) handles. istiod walks a Go map here; meshlens
    sorts the ports ascending."""
    out = [settings(composed, 0, mesh=mesh, options=options)]
    for port in sorted(composed.per_port):
        if port not in handled_ports:
            out.append(settings(composed, port, mesh=mesh, options=options))
    return out


def downstream_socket(ctx: tls_pb2.DownstreamTlsContext) -> base_pb2.TransportSocket:
    """`buildDownstreamTLSTransportSocket`."""
    ts = base_pb2.TransportSocket(name=TLS_SOCKET)
    ts.typed_config.Pack(ctx)
    return ts


def _port_ranges(ports: list[int]) -> lc_pb2.ListenerFilterChainMatchPredicate:
    """`listenerPredicateExcludePorts`: matches the given ports (one range or an or_match)."""
    rules = [Predicate(destination_port_range=range_pb2.Int32Range(start=p, end=p + 1))
             for p in ports]
    if len(rules) > 1:
        out: lc_pb2.ListenerFilterChainMatchPredicate = Predicate(
            or_match=Predicate.MatchSet(rules=rules))
        return out
    first: lc_pb2.ListenerFilterChainMatchPredicate = rules[0]
    return first


def inspector_filters(
        chains: Iterable[lc_pb2.FilterChain]) -> list[tuple[lc_pb2.ListenerFilter, str]]:
    """The TLS and HTTP inspectors a listener's chains need, each disabled by port where no chain
    needs it (`populateListenerFilters`, `buildTLSInspector`, `buildHTTPInspector`).

    A port needs TLS if one of its chains matches ``transport_protocol: tls``, HTTP if one lists
    ALPN ``http/1.1`` or ``h2c``; chains without a destination port count as port 0, which stands
    for every port no chain names. Ports are sorted (istiod walks a Go map and sorts too).
    """
    inspectors: dict[int, list[bool]] = {}
    for fc in chains:
        m = fc.filter_chain_match
        port = m.destination_port.value if m.HasField("destination_port") else 0
        cur = inspectors.setdefault(port, [False, False])
        cur[0] = cur[0] or m.transport_protocol == TLS
        cur[1] = cur[1] or any(a in ("http/1.1", "h2c") for a in m.application_protocols)
    out: list[tuple[lc_pb2.ListenerFilter, str]] = []
    if any(tls for tls, _ in inspectors.values()):
        f = flt.tls_inspector()
        if inspectors.get(0, [False, False])[0]:  # on by default: opt the other ports out
            off = sorted(p for p, (tls, _) in inspectors.items() if p and not tls)
            if off:
                f.filter_disabled.CopyFrom(_port_ranges(off))
        else:  # off by default: opt the TLS ports in
            on = sorted(p for p, (tls, _) in inspectors.items() if p and tls)
            if on:
                f.filter_disabled.not_match.CopyFrom(_port_ranges(on))
        out.append((f, "a filter chain matches transport_protocol tls"))
    if any(http for _, http in inspectors.values()):
        f = flt.http_inspector()
        off = sorted(p for p, (_, http) in inspectors.items() if not http)
        if off:
            f.filter_disabled.CopyFrom(_port_ranges(off))
        out.append((f, "a filter chain matches a plaintext HTTP ALPN (http/1.1, h2c)"))
    return out
