"""The downstream TLS context of a gateway server (`BuildListenerTLSContext`).

Layer: L4. Imports: compiler.{tls,inbound_tls}, model.gateways, xDS protos.

* ALPN ``h2, http/1.1`` (`util.ALPNHttp`); a TCP server terminating ISTIO_MUTUAL also offers
  ``istio-peer-exchange`` (`util.ALPNDownstreamWithMxc`).
* ``require_client_certificate``: true for MUTUAL and ISTIO_MUTUAL, an explicit false otherwise.
* ISTIO_MUTUAL: the proxy's own certificate ``default`` and ``ROOTCA`` over the agent's SDS
  (`ApplyToCommonTLSContext`), subjectAltNames checked.
* ``credentialName``/``credentialNames``: SDS over ADS from istiod
  (`ApplyCredentialSDSToServerCommonTLSContext`): ``kubernetes://NAME`` (a name already typed
  ``kubernetes://``, ``kubernetes-gateway://NS/NAME`` or ``configmap://`` is kept; ``sds://NAME``
  without an SDS provider falls back to the Secret NAME), the CA as ``NAME-cacert`` or
  ``caCertCredentialName`` for MUTUAL/OPTIONAL_MUTUAL. The listener is built whether or not the
  Secret exists: a missing Secret only leaves the SDS request unanswered (Envoy keeps the chain
  warming and refuses TLS handshakes on it).
* Files (``serverCertificate``/``privateKey``/``tlsCertificates``): ``file-cert:CERT~KEY`` and
  ``file-root:CA`` served by the agent (`SdsCertificateConfig.GetResourceName`).
* SIMPLE/MUTUAL/OPTIONAL_MUTUAL: ``minProtocolVersion``, ``maxProtocolVersion``, ``cipherSuites``
  and MeshConfig ``tlsDefaults`` (`applyDownstreamTLSDefaults`, `applyServerTLSSettings`).
"""

from __future__ import annotations

from typing import Any

from envoy.extensions.transport_sockets.tls.v3 import common_pb2, tls_pb2
from envoy.type.matcher.v3 import string_pb2

from meshlens.compiler.inbound_tls import ALPN_DOWNSTREAM_MX, ALPN_HTTP
from meshlens.compiler.tls import sds_ads, sds_grpc
from meshlens.model.gateways import GatewayServer, secret_of  # noqa: F401 - secret_of re-exported

SDS_CA_SUFFIX = "-cacert"
_TYPED = ("kubernetes://", "kubernetes-gateway://", "configmap://")
_TLS_VERSION = {"TLSV1_0": common_pb2.TlsParameters.TLSv1_0, "TLSV1_1": common_pb2.TlsParameters.TLSv1_1,
                "TLSV1_2": common_pb2.TlsParameters.TLSv1_2, "TLSV1_3": common_pb2.TlsParameters.TLSv1_3}


def resource_name(name: str) -> str:
    """`credentials.ToResourceName` (after `ConstructSdsSecretConfigForCredential` strips sds://).

    Example:
        >>> resource_name("bookinfo-cred"), resource_name("kubernetes-gateway://ns/c")
        ('kubernetes://bookinfo-cred', 'kubernetes-gateway://ns/c')
    """
    if name.startswith("sds://"):
        name = name[len("sds://"):]
    if name.startswith("builtin://"):
        return "default"
    if name.startswith(_TYPED):
        return name
    return f"kubernetes://{name}"


def _credential_sds(common: Any, tls: dict[str, Any], mode: str) -> None:
    """`ApplyCredentialSDSToServerCommonTLSContext`."""
    names = [str(n) for n in tls.get("credentialNames") or []]
    cred = str(tls.get("credentialName") or "")
    ca = cred + SDS_CA_SUFFIX
    if names:
        for n in names:
            common.tls_certificate_sds_secret_configs.append(sds_ads(resource_name(n)))
        ca = names[0] + SDS_CA_SUFFIX
    else:
        common.tls_certificate_sds_secret_configs.append(sds_ads(resource_name(cred)))
    if tls.get("caCertCredentialName"):
        ca = str(tls["caCertCredentialName"])
    sans = [str(s) for s in tls.get("subjectAltNames") or []]
    if mode in ("MUTUAL", "OPTIONAL_MUTUAL"):
        cvc = common.combined_validation_context
        dvc = cvc.default_validation_context
        dvc.SetInParent()
        dvc.match_subject_alt_names.extend(string_pb2.StringMatcher(exact=s) for s in sans)
        dvc.verify_certificate_spki.extend(str(s) for s in tls.get("verifyCertificateSpki") or [])
        dvc.verify_certificate_hash.extend(str(s) for s in tls.get("verifyCertificateHash") or [])
        if tls.get("insecureSkipVerify") is True:
            dvc.trust_chain_verification = common_pb2.CertificateValidationContext.ACCEPT_UNTRUSTED
        cvc.validation_context_sds_secret_config.CopyFrom(sds_ads(resource_name(ca)))
    elif sans:
        common.validation_context.match_subject_alt_names.extend(
            string_pb2.StringMatcher(exact=s) for s in sans)


def _file_sds(common: Any, tls: dict[str, Any], validate: bool, *, istio_mutual: bool) -> None:
    """`ApplyToCommonTLSContext` with the server's files (or the proxy's own identity)."""
    ca = "" if istio_mutual else str(tls.get("caCertificates") or "")
    certs = [] if istio_mutual else [c for c in tls.get("tlsCertificates") or [] if isinstance(c, dict)]
    pairs = [(str(c.get("serverCertificate") or ""), str(c.get("privateKey") or "")) for c in certs] \
        or [("", "") if istio_mutual else (str(tls.get("serverCertificate") or ""),
                                           str(tls.get("privateKey") or ""))]
    for cert, key in pairs:
        name = f"file-cert:{cert}~{key}" if cert and key else "default"
        common.tls_certificate_sds_secret_configs.append(sds_grpc(name))
    if validate:
        cvc = common.combined_validation_context
        dvc = cvc.default_validation_context
        dvc.SetInParent()
        dvc.match_subject_alt_names.extend(
            string_pb2.StringMatcher(exact=str(s)) for s in tls.get("subjectAltNames") or [])
        if tls.get("caCrl"):
            dvc.crl.filename = str(tls["caCrl"])
        if tls.get("insecureSkipVerify") is True:
            dvc.trust_chain_verification = common_pb2.CertificateValidationContext.ACCEPT_UNTRUSTED
        cvc.validation_context_sds_secret_config.CopyFrom(sds_grpc(f"file-root:{ca}" if ca else "ROOTCA"))


def build_server_tls(s: GatewayServer, *, mesh: Any, options: Any,
                     tcp_terminating: bool = False) -> tls_pb2.DownstreamTlsContext | None:
    """`buildGatewayListenerTLSContext` → `BuildListenerTLSContext` (None for passthrough)."""
    tls = s.tls
    if tls is None or s.tls_mode in ("PASSTHROUGH", "AUTO_PASSTHROUGH"):
        return None
    mode = s.tls_mode
    ctx = tls_pb2.DownstreamTlsContext()
    common = ctx.common_tls_context
    mx = mode == "ISTIO_MUTUAL" and tcp_terminating and options.metadata_exchange and not options.disable_mx_alpn
    common.alpn_protocols.extend(ALPN_DOWNSTREAM_MX if mx else ALPN_HTTP)
    ctx.require_client_certificate.value = mode in ("MUTUAL", "ISTIO_MUTUAL")
    validate = mode in ("MUTUAL", "ISTIO_MUTUAL", "OPTIONAL_MUTUAL")
    if mode == "ISTIO_MUTUAL":
        _file_sds(common, tls, validate, istio_mutual=True)
    elif tls.get("credentialNames") or tls.get("credentialName"):
        _credential_sds(common, tls, mode)
    else:
        _file_sds(common, tls, validate, istio_mutual=False)
    if mode in ("SIMPLE", "MUTUAL", "OPTIONAL_MUTUAL"):
        defaults = mesh.get("tlsDefaults") if mesh is not None else None
        if isinstance(defaults, dict):
            if defaults.get("ecdhCurves"):
                common.tls_params.ecdh_curves.extend(str(c) for c in defaults["ecdhCurves"])
            if defaults.get("cipherSuites"):
                common.tls_params.cipher_suites[:] = [str(c) for c in defaults["cipherSuites"]]
            if defaults.get("minProtocolVersion") in _TLS_VERSION:
                common.tls_params.tls_minimum_protocol_version = _TLS_VERSION[defaults["minProtocolVersion"]]
        if tls.get("minProtocolVersion") in _TLS_VERSION:
            common.tls_params.tls_minimum_protocol_version = _TLS_VERSION[tls["minProtocolVersion"]]
        ciphers = [str(c) for c in tls.get("cipherSuites") or []]
        if ciphers:
            # `security.FilterCipherSuites`: invalid and duplicate names are dropped
            from meshlens.resources.webhook.gateway import _valid_cipher

            kept = [c for i, c in enumerate(ciphers) if _valid_cipher(c) and c not in ciphers[:i]]
            common.tls_params.cipher_suites[:] = kept
        if tls.get("maxProtocolVersion") in _TLS_VERSION:
            common.tls_params.tls_maximum_protocol_version = _TLS_VERSION[tls["maxProtocolVersion"]]
    return ctx
