"""istioctl's `gateway.SecretAnalyzer`: a credentialName whose Secret does not exist (IST0101)
or is not a valid TLS credential (IST0161).

Layer: L6. Imports: analyze.core, analyze.gateway_port, resources.secret.

Mirrors pkg/config/analysis/analyzers/gateway/secret.go: the Secret is looked up in the
namespace of the first pod the Gateway's selector matches (not the Gateway's own namespace:
`getGatewayNamespace`), and judged as istiod's SDS server would (`kube.ExtractCertInfo`,
`xds.ValidateCertificate`: keys present and non-empty, a PEM certificate valid now). The
Secret's bytes are never kept: decoding left only these facts.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator

from meshlens.analyze._istio import labels_match
from meshlens.analyze.core import (CodeDoc, Context, Finding, Metadata, as_dict, finding, goq, iter_dicts,
                                   selector_string)
from meshlens.analyze.gateway_port import gateway_selector, istio_gateways, selector_path
from meshlens.resources.secret import FACTS

METADATA = Metadata(
    name="gateway.SecretAnalyzer",
    description="Checks a gateway's referenced secrets for correctness",
    inputs=("Gateway", "Pod", "Secret"),
    codes=("ML1181", "ML1183"),
)

DOCS = {
    "ML1181": CodeDoc(
        checks="A server's tls.credentialName whose Secret is not in the gateway pod's namespace "
               "(IST0101), or a Gateway whose selector matches no pod.",
        matters="The listener and its chain are built, but Envoy waits for the certificate over SDS "
                "and every TLS handshake on that chain fails.",
        quiet="The Secret exists in the namespace of the first pod the selector matches.",
        example="tls: {mode: SIMPLE, credentialName: bookinfo-cred}   # no Secret bookinfo-cred in istio-system"),
    "ML1183": CodeDoc(
        checks="A credential Secret without tls.crt/tls.key (or cert/key), or whose certificate "
               "does not parse or is outside its validity period (IST0161).",
        matters="istiod refuses to serve it over SDS: TLS on the server fails as if it were missing.",
        quiet="The keys are present and the PEM certificate is valid now.",
        example="Secret with data: {tls.cert: ..., tls.key: ...}   # tls.cert instead of tls.crt"),
}


def credential_problem(facts: dict[str, str], now: datetime.datetime) -> str:
    """Why istiod would refuse this credential, or ""."""
    if facts.get("error"):
        return str(facts["error"])
    nb, na = facts.get("not_before"), facts.get("not_after")
    if nb and na and not (datetime.datetime.fromisoformat(nb) <= now <= datetime.datetime.fromisoformat(na)):
        return "certificate is expired or not yet valid"
    return ""


def analyze(ctx: Context) -> Iterator[Finding]:
    pods = sorted(ctx.mesh.registry.workloads, key=lambda w: (w.namespace, w.name))
    secrets = {(r.namespace, r.name): r for r in ctx.of_kind("Secret")}
    now = datetime.datetime.now(datetime.UTC)
    for gw in istio_gateways(ctx):
        sel = gateway_selector(gw)
        pod = next((p for p in pods if labels_match(sel, p.labels)), None)
        if pod is None or not pod.namespace:
            yield finding("ML1181", gw, selector_path(gw, sel), what="selector",
                          value=goq(selector_string(sel)),
                          fix={"hint": "No gateway pod matches spec.selector, so the namespace its "
                                       "credentials are read from is unknown."})
            continue
        for i, server in enumerate(iter_dicts(gw.spec.get("servers"))):
            cn = str(as_dict(server.get("tls")).get("credentialName") or "")
            if not cn:
                continue
            ns, _, name = cn.rpartition("/") if "/" in cn else (pod.namespace, "", cn)
            secret = secrets.get((ns, name))
            path = ("spec", "servers", i, "tls", "credentialName")
            if secret is None:
                yield finding("ML1181", gw, path, what="credentialName", value=goq(cn),
                              fix={"hint": f"Create Secret {name} in namespace {ns} (the gateway "
                                           "pod's): until then the HTTPS listener is built but "
                                           "TLS handshakes on it fail."})
                continue
            if credential_problem(as_dict(secret.body.get(FACTS)), now):
                yield finding("ML1183", gw, path, name=gw.name, ns=ns, fix={"secret": name})
