"""TLS settings that istiod does not apply as written: ``credentialName`` in a DestinationRule
without ``workloadSelector`` (sidecars send plaintext), and ISTIO_MUTUAL with certificate fields
(ignored: Istio's own certificates are used).

Layer: L6. Imports: analyze.core, analyze._compiled, analyze._routes, model.

The first is proven on compiled config (the cluster has no transport socket, and the compiler
recorded why); the second is a property of the DestinationRule alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from meshlens.analyze._compiled import NONE, describe_clusters, outbound, tls_state, value_at
from meshlens.analyze._routes import resource_by_ref
from meshlens.analyze.core import CodeDoc, Context, Finding, Metadata, as_dict, finding, iter_dicts
from meshlens.compiler.provenance import QUIRK
from meshlens.resources import Resource
from meshlens.source import FieldPath

METADATA = Metadata(
    name="meshlens.TlsSettingsAnalyzer",
    description="DestinationRule TLS settings that sidecars do not apply as written",
    inputs=("DestinationRule",),
    codes=("ML1252", "ML1253"),
    compiled=True,
)

DOCS = {
    "ML1252": CodeDoc(
        checks="DestinationRule tls with credentialName and no workloadSelector (proven on the "
               "compiled cluster: no transport socket).",
        matters="credentialName is read only by gateways; sidecars send plaintext, so a TLS "
                "server resets the connection: 503 UC.",
        quiet="credentialName with a workloadSelector; caCertificates/clientCertificate file "
              "paths instead.",
        example="host: partner.example.com\ntrafficPolicy: {tls: {mode: SIMPLE, credentialName: "
                "partner-ca}}"),
    "ML1253": CodeDoc(
        checks="tls mode ISTIO_MUTUAL together with clientCertificate, privateKey, "
               "caCertificates, credentialName, insecureSkipVerify or caCrl.",
        matters="Those fields are ignored: istiod uses the workload's Istio certificate and "
                "root. No response flag.",
        quiet="ISTIO_MUTUAL alone; the fields with MUTUAL or SIMPLE.",
        example="tls: {mode: ISTIO_MUTUAL, caCertificates: /etc/certs/ca.pem}"),
}

IGNORED_BY_ISTIO_MUTUAL = ("clientCertificate", "privateKey", "caCertificates", "credentialName",
                           "insecureSkipVerify", "caCrl")


def tls_blocks(dr: Resource) -> Iterator[tuple[FieldPath, dict[str, Any]]]:
    """Every ``tls`` block of a DestinationRule: top, port level, subsets and their ports."""
    tps: list[tuple[FieldPath, Any]] = [(("spec", "trafficPolicy"), dr.spec.get("trafficPolicy"))]
    for i, s in enumerate(dr.spec.get("subsets") or []):
        if isinstance(s, dict):
            tps.append((("spec", "subsets", i, "trafficPolicy"), s.get("trafficPolicy")))
    for base, tp in tps:
        tp = as_dict(tp)
        if isinstance(tp.get("tls"), dict):
            yield base + ("tls",), tp["tls"]
        for j, pls in enumerate(iter_dicts(tp.get("portLevelSettings"))):
            if isinstance(pls.get("tls"), dict):
                yield base + ("portLevelSettings", j, "tls"), pls["tls"]


def analyze(ctx: Context) -> Iterator[Finding]:
    for dr in ctx.of_kind("DestinationRule"):
        for path, tls in tls_blocks(dr):
            if tls.get("mode") != "ISTIO_MUTUAL":
                continue
            fields = [f for f in IGNORED_BY_ISTIO_MUTUAL if tls.get(f)]
            if fields:
                yield finding("ML1253", dr, path + (fields[0],), fields=", ".join(fields))
    hits: dict[tuple[Any, ...], dict[str, Any]] = {}
    for _, result in ctx.compiled():
        for bc in outbound(result):
            c = bc.cluster
            o = result.provenance.of("cluster", c.name).get("transport_socket")
            if o is None or o.rule != QUIRK or tls_state(c) != NONE:
                continue
            res = resource_by_ref(ctx, o.resource)
            if res is None:
                continue
            block = as_dict(value_at(res, o.field[:-1]))
            cred = block.get("credentialName")
            if not cred:
                continue
            hit = hits.setdefault((res.ref, o.field), {"res": res, "path": o.field[:-1] + (
                "credentialName",), "cred": str(cred), "mode": str(block.get("mode")),
                "clusters": []})
            hit["clusters"].append(c.name)
    for hit in hits.values():
        yield finding("ML1252", hit["res"], hit["path"], credential=hit["cred"], mode=hit["mode"],
                      clusters=describe_clusters(hit["clusters"]))
