"""istioctl's `gateway.CertificateAnalyzer`: one certificate on servers of several Gateways that
share workloads (IST0138).

Layer: L6. Imports: analyze.core, analyze._istio.

Mirrors pkg/config/analysis/analyzers/gateway/certificate.go: for each Gateway, every other
Gateway whose selector contains its selector (all of them for an empty selector; all namespaces,
as ``PILOT_SCOPE_GATEWAY_TO_NAMESPACE`` is off by default), each pair of TLS servers with the
same credentialName, or the same serverCertificate and privateKey files, is reported once per
pair on the current Gateway. A client that reuses an HTTP/2 connection for another host with the
same certificate reaches the wrong server's routes: 404.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from meshlens.analyze._istio import full_name
from meshlens.analyze.core import CodeDoc, Context, Finding, Metadata, as_dict, finding, gov, iter_dicts
from meshlens.analyze.gateway_port import gateway_selector, istio_gateways

METADATA = Metadata(
    name="gateway.CertificateAnalyzer",
    description="Checks a gateway certificate",
    inputs=("Gateway",),
    codes=("ML1185",),
)

DOCS = {
    "ML1185": CodeDoc(
        checks="The same credentialName (or certificate and key files) on TLS servers of two "
               "Gateways that share workloads (IST0138).",
        matters="A client reusing an HTTP/2 connection for another host covered by the certificate "
                "reaches the other server's routes and gets 404.",
        quiet="Each certificate is used by one Gateway, or the Gateways select different workloads.",
        example="gateway-01 and gateway-02 both: tls.credentialName: shared-cert"),
}


def same_certificate(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """`haveSameCertificate`."""
    ca, cb = str(a.get("credentialName") or ""), str(b.get("credentialName") or "")
    if ca and cb:
        return ca == cb
    if not ca and not cb:
        sa, sb = str(a.get("serverCertificate") or ""), str(b.get("serverCertificate") or "")
        if sa and sb and sa == sb:
            ka, kb = str(a.get("privateKey") or ""), str(b.get("privateKey") or "")
            return bool(ka and kb and ka == kb)
    return False


def _subset(x: dict[str, str], y: dict[str, str]) -> bool:
    """`selectorSubset`: every key of x is in y with the same value."""
    return all(k in y and y[k] == v for k, v in x.items())


def analyze(ctx: Context) -> Iterator[Finding]:
    gateways = istio_gateways(ctx)
    for gw in gateways:
        sel = gateway_selector(gw)
        for other in gateways:
            if other is gw or (sel and not _subset(sel, gateway_selector(other))):
                continue
            for cur in iter_dicts(gw.spec.get("servers")):
                for srv in iter_dicts(other.spec.get("servers")):
                    a, b = cur.get("tls"), srv.get("tls")
                    if isinstance(a, dict) and isinstance(b, dict) and same_certificate(as_dict(a), as_dict(b)):
                        yield finding("ML1185", gw, ("metadata", "name"),
                                      gateways=gov([full_name(gw), full_name(other)]))
