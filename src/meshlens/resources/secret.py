"""Kubernetes ``Secret``: read for its metadata only (gateway ``credentialName`` look-ups).

Layer: L2. Imports: nothing from meshlens.

istiod reads a credential Secret's keys (``tls.crt``/``tls.key``, ``cert``/``key``, ``ca.crt``,
``cacert``) to serve it over SDS; meshlens only needs to know that the Secret exists and which
keys it has, so the values are dropped as soon as the document is decoded and never printed.
"""

from __future__ import annotations

import base64
import binascii
import warnings
from typing import Any

#: `credentials/kube`: the key pairs a TLS credential Secret may use.
TLS_KEYS = (("tls.crt", "tls.key"), ("cert", "key"))
CA_KEYS = ("ca.crt", "cacert")


def redact_secret(data: dict[str, Any]) -> dict[str, Any]:
    """A copy of the Secret with each ``data``/``stringData`` value replaced by "".

    Example:
        >>> redact_secret({"kind": "Secret", "type": "kubernetes.io/tls",
        ...                "data": {"tls.crt": "LS0t", "tls.key": "LS0t"}})["data"]
        {'tls.crt': '', 'tls.key': ''}
    """
    out = {k: v for k, v in data.items() if k not in ("data", "stringData")}
    for key in ("data", "stringData"):
        value = data.get(key)
        if isinstance(value, dict):
            out[key] = {str(k): "" for k in value}
    out[FACTS] = credential_facts(data)
    return out


#: Key of the facts a redacted Secret keeps about its certificate (never its bytes).
FACTS = "meshlens.credential"


def _values(data: dict[str, Any]) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    raw = data.get("data")
    if isinstance(raw, dict):
        for k, v in raw.items():
            try:
                out[str(k)] = base64.b64decode(str(v or ""), validate=False)
            except (binascii.Error, ValueError):
                out[str(k)] = b""
    text = data.get("stringData")
    if isinstance(text, dict):
        for k, v in text.items():
            out[str(k)] = str(v or "").encode()
    return out


def credential_facts(data: dict[str, Any]) -> dict[str, str]:
    """What istiod's credential checks learn from a Secret, without its bytes.

    `kube.ExtractCertInfo` (cert+key, else tls.crt+tls.key, both non-empty) and
    `xds.ValidateCertificate` (the first PEM block parses as X.509): ``error`` ("" when fine),
    ``not_before`` and ``not_after`` (ISO 8601, UTC) of the certificate.
    """
    values = _values(data)
    for cert_key, key_key in (("cert", "key"), ("tls.crt", "tls.key")):
        if values.get(cert_key) and values.get(key_key):
            return _cert_facts(values[cert_key])
    for cert_key, key_key in (("cert", "key"), ("tls.crt", "tls.key")):
        if cert_key in values and key_key in values:
            return {"error": f"found keys {cert_key!r} and {key_key!r}, but they were empty"}
    return {"error": "found secret, but didn't have expected keys (cert and key) or "
                     f"(tls.crt and tls.key); found: {', '.join(sorted(values))}"}


def _cert_facts(pem: bytes) -> dict[str, str]:
    from cryptography import x509

    start = pem.find(b"-----BEGIN")
    if start < 0:
        return {"error": "pem decode failed"}
    try:
        with warnings.catch_warnings():  # a non-positive serial number parses with a warning
            warnings.simplefilter("ignore")
            cert = x509.load_pem_x509_certificate(pem[start:])
    except ValueError as exc:
        return {"error": f"x509: {exc}"}
    return {"error": "", "not_before": cert.not_valid_before_utc.isoformat(),
            "not_after": cert.not_valid_after_utc.isoformat()}


def secret_keys(body: dict[str, Any]) -> set[str]:
    """The key names of a (redacted) Secret, from ``data`` and ``stringData``."""
    keys: set[str] = set()
    for key in ("data", "stringData"):
        value = body.get(key)
        if isinstance(value, dict):
            keys.update(str(k) for k in value)
    return keys


def has_tls_keypair(body: dict[str, Any]) -> bool:
    """`kube.extractCertInfo`: tls.crt+tls.key, or cert+key."""
    keys = secret_keys(body)
    return any(a in keys and b in keys for a, b in TLS_KEYS)
