"""TLS settings: the client side (a DestinationRule's ``tls``, agent.ValidateTLS) and the server
side (a Sidecar ingress's ``tls``, validateTLSOptions; Gateway servers use the same checks).

Layer: L2 (package meshlens.resources.webhook). Imports: source.
"""

from __future__ import annotations

from typing import Any

from meshlens.resources.webhook.core import Collector, as_list, as_str, field_check, quote
from meshlens.source import FieldPath


def _configmap_credential_error(cred: str, namespace: str) -> str | None:
    """A ``configmap://namespace/name`` credentialName names the resource's own namespace."""
    if not cred.startswith("configmap://"):
        return None
    rest = cred[len("configmap://") :].split("/")
    missing = ("namespace and name" if len(rest) <= 1 else "namespace" if not rest[0]
               else "name" if not rest[1] else "")
    if missing:
        return (f"invalid configmap:// credentialName: invalid resource name {quote(cred)}. "
                f"Expected {missing}")
    if rest[0] != namespace or not namespace:
        return ("invalid configmap:// credentialName: namespace must match the configuration "
                f"namespace {quote(namespace)}")
    return None


@field_check
def validate_client_tls(v: Collector, path: FieldPath, tls: dict[str, Any]) -> None:
    """agent.ValidateTLS (ClientTLSSettings). Nothing is checked for ISTIO_MUTUAL."""
    mode = as_str(tls.get("mode")) or "DISABLE"
    cred = as_str(tls.get("credentialName"))
    v.err(path + ("credentialName",), _configmap_credential_error(cred, v.namespace))
    present = {
        k: bool(as_str(tls.get(k)))
        for k in ("caCertificates", "clientCertificate", "privateKey", "caCrl")
    }
    sans = tls.get("subjectAltNames") is not None and bool(as_list(tls.get("subjectAltNames")))
    if tls.get("insecureSkipVerify") is True:
        if mode == "SIMPLE" and (present["caCertificates"] or cred or sans):
            v.err(
                path,
                "cannot specify CaCertificates or CredentialName or SubjectAltNames when "
                "InsecureSkipVerify is set true",
            )
        if mode == "MUTUAL" and (present["caCertificates"] or sans):
            v.err(
                path,
                "cannot specify CaCertificates or SubjectAltNames when InsecureSkipVerify is "
                "set true",
            )
    if mode in ("SIMPLE", "MUTUAL") and cred:
        if any(present.values()):
            v.err(
                path,
                "cannot specify client certificates or CA certificate or CA CRL If "
                "credentialName is set",
            )
        return
    if mode == "MUTUAL":
        if not present["clientCertificate"]:
            v.err(path, "client certificate required for mutual tls")
        if not present["privateKey"]:
            v.err(path, "private key required for mutual tls")


def validate_server_tls(v: Collector, path: FieldPath, tls: dict[str, Any]) -> None:
    """validateTLSOptions, for the parts a Sidecar ingress can reach."""
    mode = as_str(tls.get("mode")) or "PASSTHROUGH"
    ciphers = [as_str(c) for c in as_list(tls.get("cipherSuites"))]
    if as_str(tls.get("minProtocolVersion")) in ("TLSV1_0", "TLSV1_1") and not ciphers:
        v.warn(
            path,
            "TLS version below TLSV1_2 require setting compatible ciphers as by default they "
            "no longer include compatible ciphers.",
        )
    dupes = sorted({c for c in ciphers if ciphers.count(c) > 1})
    if dupes:
        v.warn(path + ("cipherSuites",), f"ignoring duplicate cipher suites: [{' '.join(dupes)}]")
    cert, key, ca = (
        as_str(tls.get(k)) for k in ("serverCertificate", "privateKey", "caCertificates")
    )
    if mode in ("PASSTHROUGH", "AUTO_PASSTHROUGH") and (
        as_str(tls.get("caCrl")) or cert or key or ca or as_str(tls.get("credentialName"))
    ):
        v.warn(path, f"{mode} mode does not use certificates, they will be ignored")
    if mode in ("SIMPLE", "MUTUAL", "OPTIONAL_MUTUAL"):
        prefix = "SIMPLE TLS" if mode == "SIMPLE" else "MUTUAL TLS"
        if mode != "SIMPLE" and not ca:
            v.err(path, f"{prefix} requires a client CA bundle")
        if not cert:
            v.err(path, f"{prefix} requires a server certificate")
        if not key:
            v.err(path, f"{prefix} requires a private key")
    if as_str(tls.get("caCrl")) and mode == "SIMPLE":
        v.err(path + ("caCrl",), "CRL is not supported with SIMPLE TLS")
