"""Upstream TLS: auto-mTLS, DestinationRule tls modes, SDS secrets and transport sockets.

Layer: L4. Imports: compiler.draft, compiler.provenance, model.policy, xDS protos.

`core/cluster_tls.go`: buildUpstreamTLSSettings → buildUpstreamClusterTLSContext →
applyUpstreamTLSSettings, for sidecars without metadata certificates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import base_pb2, config_source_pb2
from envoy.extensions.transport_sockets.raw_buffer.v3 import raw_buffer_pb2
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, secret_pb2, tls_pb2
from envoy.type.matcher.v3 import string_pb2
from google.protobuf import struct_pb2

from meshlens.compiler import provenance as prov
from meshlens.compiler.draft import ClusterDraft
from meshlens.compiler.provenance import Origin
from meshlens.model.policy import Block

ALPN_MX = ["istio-peer-exchange", "istio"]
TLS_SOCKET = "envoy.transport_sockets.tls"
USER, AUTO = "user", "auto"


@dataclass(frozen=True, slots=True)
class TlsChoice:
    mode: str  # ISTIO_MUTUAL | SIMPLE | MUTUAL | DISABLE
    settings: dict[str, Any]
    sans: list[str]
    sni: str
    by: str  # USER | AUTO
    origin: Origin


def sds_grpc(name: str, *, initial_fetch_timeout: bool = True) -> secret_pb2.SdsSecretConfig:
    out = secret_pb2.SdsSecretConfig(name=name)
    src = out.sds_config
    acs = src.api_config_source
    acs.api_type = config_source_pb2.ApiConfigSource.GRPC
    acs.set_node_on_first_message_only = True
    acs.transport_api_version = config_source_pb2.V3
    acs.grpc_services.add().envoy_grpc.cluster_name = "sds-grpc"
    if initial_fetch_timeout:
        src.initial_fetch_timeout.SetInParent()
    src.resource_api_version = config_source_pb2.V3
    return out


def sds_ads(name: str) -> secret_pb2.SdsSecretConfig:
    out = secret_pb2.SdsSecretConfig(name=name)
    out.sds_config.ads.SetInParent()
    out.sds_config.resource_api_version = config_source_pb2.V3
    return out


def choose_tls(block: Block | None, *, sans: list[str], default_sni: str, auto_mtls: bool,
               mesh_external: bool, mtls_mode: str, origin_of: Any) -> TlsChoice | None:
    """`buildUpstreamTLSSettings` for a proxy without metadata certificates."""
    if block is not None:
        tls = block.value
        mode = str(tls.get("mode", "DISABLE"))
        if mode != "ISTIO_MUTUAL":
            return TlsChoice(mode, tls, [str(s) for s in tls.get("subjectAltNames") or []],
                             str(tls.get("sni", "")), USER, origin_of(block, "mode"))
        return TlsChoice(mode, tls, [str(s) for s in tls.get("subjectAltNames") or []] or sans,
                         str(tls.get("sni") or default_sni), USER, origin_of(block, "mode"))
    if mesh_external or not auto_mtls or mtls_mode in ("UNKNOWN", "DISABLE"):
        return None
    return TlsChoice("ISTIO_MUTUAL", {}, sans, default_sni, AUTO,
                     prov.default(f"auto mTLS: the server's PeerAuthentication mode is {mtls_mode}"))


def _validation(sans: list[str]) -> common_pb2.CertificateValidationContext:
    v = common_pb2.CertificateValidationContext()
    for s in sans:
        v.match_subject_alt_names.append(string_pb2.StringMatcher(exact=s))
    return v


def build_context(choice: TlsChoice, *, h2: bool, options: Any, external_sans: list[str] | None,
                  sidecar_selector: bool, mesh: Any, memo: Any = None) -> tls_pb2.UpstreamTlsContext | None:
    """`buildUpstreamClusterTLSContext` (+ `constructUpstreamTLS` for SIMPLE/MUTUAL).

    ``memo``: the run's ``BuildCache.memo``; an ISTIO_MUTUAL context is then built once per
    (SANs, ALPN) and copied, with the cluster's SNI set on the copy."""
    tls = choice.settings
    cred = str(tls.get("credentialName") or "")
    if choice.mode in ("SIMPLE", "MUTUAL") and cred and not cred.startswith("configmap://") \
            and not sidecar_selector:
        return None  # credentialName is for gateways: a sidecar sends plaintext
    if choice.mode == "DISABLE":
        return None
    if choice.mode == "ISTIO_MUTUAL":
        alpn = (["istio"] if not options.metadata_exchange or options.disable_mx_alpn else ALPN_MX)
        alpn = alpn + (["h2"] if h2 else [])
        key = (tuple(choice.sans), tuple(alpn))
        template = memo("tls_istio_mutual", key, lambda: _istio_mutual(*key)) if memo is not None \
            else _istio_mutual(*key)
        ctx = tls_pb2.UpstreamTlsContext()
        ctx.CopyFrom(template)
        ctx.sni = choice.sni
        return ctx
    ctx = _with_tls_params()
    common = ctx.common_tls_context
    if choice.sni:
        ctx.sni = choice.sni
    sans = list(choice.sans)
    insecure = bool(tls.get("insecureSkipVerify"))
    if external_sans is not None and not sans:
        sans = list(external_sans)  # ServiceEntry: the entry's subjectAltNames and endpoint SAs
    if cred:
        name = cred if cred.startswith(("kubernetes://", "kubernetes-gateway://", "configmap://")) \
            else f"kubernetes://{cred}"
        if choice.mode == "MUTUAL":
            common.tls_certificate_sds_secret_configs.append(sds_ads(name))
        if not insecure:
            cvc = common.combined_validation_context
            cvc.default_validation_context.CopyFrom(_validation(sans))
            cvc.validation_context_sds_secret_config.CopyFrom(sds_ads(f"{name}-cacert"))
    else:
        if choice.mode == "MUTUAL":
            cert, key = tls.get("clientCertificate"), tls.get("privateKey")
            if not cert or not key:
                return None  # istiod logs an error and sends the cluster without TLS
            common.tls_certificate_sds_secret_configs.append(
                sds_grpc(f"file-cert:{cert}~{key}", initial_fetch_timeout=False))
        if insecure:
            common.validation_context.SetInParent()
        else:
            ca = tls.get("caCertificates") or "system"
            cvc = common.combined_validation_context
            cvc.default_validation_context.CopyFrom(_validation(sans))
            if tls.get("caCrl"):
                cvc.default_validation_context.crl.filename = str(tls["caCrl"])
            cvc.validation_context_sds_secret_config.CopyFrom(
                sds_grpc(f"file-root:{ca}", initial_fetch_timeout=False))
    defaults = mesh.get("tlsDefaults") if mesh is not None else None
    if isinstance(defaults, dict):
        common.tls_params.ecdh_curves.extend(str(c) for c in defaults.get("ecdhCurves") or [])
        common.tls_params.cipher_suites.extend(str(c) for c in defaults.get("cipherSuites") or [])
    if h2:
        common.alpn_protocols.append("h2")
    return ctx


def _with_tls_params() -> tls_pb2.UpstreamTlsContext:
    ctx = tls_pb2.UpstreamTlsContext()
    params = ctx.common_tls_context.tls_params
    params.tls_minimum_protocol_version = common_pb2.TlsParameters.TLSv1_2
    params.tls_maximum_protocol_version = common_pb2.TlsParameters.TLSv1_3
    return ctx


def _istio_mutual(sans: tuple[str, ...], alpn: tuple[str, ...]) -> tls_pb2.UpstreamTlsContext:
    """An ISTIO_MUTUAL upstream context without its SNI: workload cert, ROOTCA, SAN match."""
    ctx = _with_tls_params()
    common = ctx.common_tls_context
    common.tls_certificate_sds_secret_configs.append(sds_grpc("default"))
    cvc = common.combined_validation_context
    cvc.default_validation_context.CopyFrom(_validation(list(sans)))
    cvc.validation_context_sds_secret_config.CopyFrom(sds_grpc("ROOTCA"))
    common.alpn_protocols.extend(alpn)
    return ctx


def auto_sni_san(d: ClusterDraft, choice: TlsChoice) -> None:
    """`setAutoSniAndAutoSanValidation` for SIMPLE/MUTUAL."""
    tls = choice.settings
    auto_sni = not tls.get("sni")
    auto_san = not tls.get("insecureSkipVerify") and auto_sni and not tls.get("subjectAltNames")
    if auto_sni or auto_san:
        up = d.http_options().upstream_http_protocol_options
        up.auto_sni = auto_sni
        up.auto_san_validation = auto_san
        d.set("typed_extension_protocol_options.upstream_http_protocol_options", choice.origin)


def tls_socket(ctx: tls_pb2.UpstreamTlsContext) -> base_pb2.TransportSocket:
    ts = base_pb2.TransportSocket(name=TLS_SOCKET)
    ts.typed_config.Pack(ctx)
    return ts


def _plaintext_match() -> cluster_pb2.Cluster.TransportSocketMatch:
    plain = cluster_pb2.Cluster.TransportSocketMatch(name="tlsMode-disabled")
    plain.match.SetInParent()
    plain.transport_socket.name = "envoy.transport_sockets.raw_buffer"
    plain.transport_socket.typed_config.Pack(raw_buffer_pb2.RawBuffer())
    return plain


# Constants of every auto-mTLS cluster (`buildAutoMtlsSettings`), copied in, never changed.
_ISTIO_MATCH = struct_pb2.Struct(fields={"tlsMode": struct_pb2.Value(string_value="istio")})
_PLAINTEXT_MATCH = _plaintext_match()


def apply_tls(d: ClusterDraft, choice: TlsChoice | None, ctx: tls_pb2.UpstreamTlsContext | None,
              *, original_dst: bool) -> None:
    """`applyUpstreamTLSSettings`: a plain transport socket, or auto-mTLS socket matches."""
    if choice is None or ctx is None:
        return
    socket = tls_socket(ctx)
    if choice.by == AUTO and choice.mode == "ISTIO_MUTUAL" and not original_dst:
        m = d.c.transport_socket_matches.add(name="tlsMode-istio")
        m.match.CopyFrom(_ISTIO_MATCH)
        m.transport_socket.CopyFrom(socket)
        d.c.transport_socket_matches.append(_PLAINTEXT_MATCH)  # a copy of the constant
        d.set("transport_socket_matches", choice.origin)
    else:
        d.c.transport_socket.CopyFrom(socket)
        d.set("transport_socket", choice.origin)
