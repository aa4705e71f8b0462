"""HTTP/2 upgrade settings that do nothing: ``useClientProtocol`` together with
``h2UpgradePolicy`` (the seed: "useClientProtocol wins, h2UpgradePolicy is ignored"), and
``h2UpgradePolicy: UPGRADE`` on a port whose cluster cannot be upgraded (a sniffed port follows
the downstream protocol; a TCP port is proxied by tcp_proxy).

Layer: L6. Imports: analyze.core, analyze._compiled, analyze._routes, model.

Proven on compiled config: the cluster's HTTP protocol options and the provenance the compiler
recorded for them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from meshlens.analyze._compiled import describe_clusters, outbound, value_at
from meshlens.analyze._routes import resource_by_ref
from meshlens.analyze.core import CodeDoc, Context, Finding, Metadata, as_dict, finding
from meshlens.model import protocol

METADATA = Metadata(
    name="meshlens.H2UpgradeAnalyzer",
    description="HTTP/2 upgrade settings without effect",
    inputs=("DestinationRule", "Service"),
    codes=("ML1260", "ML1261"),
    compiled=True,
)

DOCS = {
    "ML1260": CodeDoc(
        checks="connectionPool.http with both useClientProtocol: true and h2UpgradePolicy, read "
               "off the compiled clusters' HTTP protocol options.",
        matters="useClientProtocol wins: the cluster uses the downstream protocol "
                "(use_downstream_protocol_config) and the h2 policy is ignored.",
        quiet="Only one of the two fields set.",
        example="connectionPool: {http: {useClientProtocol: true, h2UpgradePolicy: UPGRADE}}"),
    "ML1261": CodeDoc(
        checks="h2UpgradePolicy: UPGRADE on clusters that cannot be upgraded: a TCP port "
               "(tcp_proxy) or a sniffed (undeclared) port, which follows the downstream "
               "protocol.",
        matters="The setting does nothing there: connections stay HTTP/1.1 (or raw TCP). No "
                "response flag.",
        quiet="HTTP ports (declared by name or appProtocol), where the upgrade applies.",
        example="Service port {name: tcp-db, port: 5432}; DestinationRule: connectionPool: "
                "{http: {h2UpgradePolicy: UPGRADE}}"),
}

HPO = "typed_extension_protocol_options."


def analyze(ctx: Context) -> Iterator[Finding]:
    hits: dict[tuple[Any, ...], dict[str, Any]] = {}
    for _, result in ctx.compiled():
        for bc in outbound(result):
            c = bc.cluster
            fields = result.provenance.of("cluster", c.name)
            o = fields.get(HPO + "use_downstream_protocol_config")
            if o is not None and o.field[-1:] == ("useClientProtocol",):
                res = resource_by_ref(ctx, o.resource)
                http = as_dict(value_at(res, o.field[:-1])) if res is not None else {}
                if res is not None and http.get("h2UpgradePolicy"):
                    path = o.field[:-1] + ("h2UpgradePolicy",)
                    hit = hits.setdefault(("ML1260", res.ref, path), {
                        "res": res, "path": path, "clusters": [],
                        "args": {"policy": str(http["h2UpgradePolicy"])}})
                    hit["clusters"].append(c.name)
            ignored = fields.get(HPO + "h2_upgrade_ignored")
            h2 = fields.get(HPO + "explicit_http_config.http2_protocol_options")
            port = bc.port
            why = fix = ""
            origin = None
            if ignored is not None and ignored.resource is not None:
                origin = ignored
                why = (f"port {port.port if port else '?'} does not declare its protocol, so the "
                       "cluster follows the downstream protocol (use_downstream_protocol_config) "
                       "and is never upgraded")
                fix = ("Declare the port http (name http-*, or appProtocol http) so istiod can "
                       "upgrade it, or http2/grpc for HTTP/2 end to end; else remove "
                       "h2UpgradePolicy.")
            elif h2 is not None and h2.field[-1:] == ("h2UpgradePolicy",) and port is not None \
                    and not protocol.is_http(port.protocol) \
                    and not protocol.is_unsupported(port.protocol):
                origin = h2
                why = (f"port {port.port} is {port.protocol}: its traffic goes through tcp_proxy, "
                       "which never speaks HTTP/2 (the upgrade only adds h2 to the TLS ALPN)")
                fix = "Remove h2UpgradePolicy for this port (or declare it HTTP if it is HTTP)."
            if origin is None:
                continue
            res = resource_by_ref(ctx, origin.resource)
            if res is None:
                continue
            hit = hits.setdefault(("ML1261", res.ref, origin.field, why), {
                "res": res, "path": origin.field, "clusters": [], "args": {"why": why},
                "fix": fix})
            hit["clusters"].append(c.name)
    for key, hit in hits.items():
        fix_args = {"fix": hit["fix"]} if key[0] == "ML1261" else None
        yield finding(key[0], hit["res"], hit["path"], clusters=describe_clusters(hit["clusters"]),
                      fix=fix_args, **hit["args"])
