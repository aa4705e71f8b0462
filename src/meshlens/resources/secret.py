"""Kubernetes ``Secret``: read for its metadata only (gateway ``credentialName`` look-ups).

Layer: L2. Imports: nothing from meshlens.

istiod reads a credential Secret's keys (``tls.crt``/``tls.key``, ``cert``/``key``, ``ca.crt``,
``cacert``) to serve it over SDS; meshlens only needs to know that the Secret exists and which
keys it has, so the values are dropped as soon as the document is decoded and never printed.
"""

from __future__ import annotations

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
    return out


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
