"""DestinationRules that originate TLS without verifying the server
(istioctl `destinationrule.CaCertificateAnalyzer`).

Layer: L6. Imports: analyze.core, analyze._istio.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from meshlens.analyze._istio import full_name
from meshlens.analyze.core import CodeDoc, Context, Finding, Metadata, as_dict, finding, iter_dicts

METADATA = Metadata(
    name="destinationrule.CaCertificateAnalyzer",
    description="Checks if caCertificates is set when TLS mode is SIMPLE/MUTUAL",
    inputs=("DestinationRule",),
    codes=("ML1111", "ML1112"),
)

DOCS = {
    "ML1111": CodeDoc(
        checks="DestinationRule trafficPolicy.tls (and each subset's) with mode SIMPLE or MUTUAL "
               "and no caCertificates (nor credentialName with a workloadSelector) "
               "(istioctl destinationrule.CaCertificateAnalyzer, IST0128).",
        matters="The sidecar originates TLS without verifying the server's certificate: any "
                "server is trusted. Traffic flows; no response flag.",
        quiet="caCertificates set; mode DISABLE or ISTIO_MUTUAL; credentialName together with a "
              "workloadSelector.",
        example="host: api.example.com\ntrafficPolicy: {tls: {mode: SIMPLE}}"),
    "ML1112": CodeDoc(
        checks="The same for each portLevelSettings[].tls (IST0129).",
        matters="TLS origination on that port does not verify the server. No response flag.",
        quiet="caCertificates set in the port-level tls; mode DISABLE or ISTIO_MUTUAL.",
        example="trafficPolicy:\n  portLevelSettings:\n  - port: {number: 443}\n    tls: {mode: "
                "SIMPLE}"),
}


def _unverified(tls: dict[str, Any], has_selector: bool) -> bool:
    if tls.get("mode") not in ("SIMPLE", "MUTUAL"):
        return False
    return not tls.get("caCertificates") and not (tls.get("credentialName") and has_selector)


def port_text(port: Any) -> str:
    """The PortSelector as Go's proto text prints it (``number:443``)."""
    number = as_dict(port).get("number")
    return f"number:{number}" if number else ""


def analyze(ctx: Context) -> Iterator[Finding]:
    for dr in ctx.of_kind("DestinationRule"):
        tp = as_dict(dr.spec.get("trafficPolicy"))
        host = str(dr.spec.get("host", ""))
        selector = dr.spec.get("workloadSelector") is not None
        tls = as_dict(tp.get("tls"))
        if _unverified(tls, selector):
            yield finding("ML1111", dr, ("spec", "trafficPolicy", "tls", "mode"),
                          name=full_name(dr), ns=dr.namespace, mode=tls["mode"], host=host)
        for i, pls in enumerate(iter_dicts(tp.get("portLevelSettings"))):
            ptls = as_dict(pls.get("tls"))
            if _unverified(ptls, selector):
                yield finding("ML1112", dr, ("spec", "trafficPolicy", "portLevelSettings", i,
                                             "tls", "mode"),
                              name=full_name(dr), ns=dr.namespace, mode=ptls["mode"], host=host,
                              port=port_text(pls.get("port")))
