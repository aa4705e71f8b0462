"""ServiceEntries that declare the same host and port with different protocols
(istioctl `serviceentry.ConflictingServiceEntryProtocolAnalyzer`).

Layer: L6. Imports: analyze.core, analyze._istio.
"""

from __future__ import annotations

from collections.abc import Iterator

from meshlens.analyze._istio import EXPORT_ALL, EXPORT_LOCAL, full_name
from meshlens.analyze.core import CodeDoc, Context, Finding, Metadata, finding, goq, iter_dicts
from meshlens.resources import Resource

METADATA = Metadata(
    name="serviceentry.ConflictingServiceEntryProtocolAnalyzer",
    description="Checks if multiple ServiceEntries define the same host and port with different "
                "protocols",
    inputs=("ServiceEntry",),
    codes=("ML1142",),
)

DOCS = {
    "ML1142": CodeDoc(
        checks="ServiceEntries visible in the same namespace that define the same host and "
               "port number with different protocols (istioctl IST0177).",
        matters="Which protocol the sidecar uses for that host and port is undefined; HTTP "
                "routing or TLS passthrough may break for it.",
        quiet="One protocol per host and port; entries not exported to the same namespaces.",
        example="SE a: hosts [api.example.com], ports [{number: 443, protocol: TLS}]; SE b: same "
                "host, [{number: 443, protocol: HTTPS}]"),
}


def _scopes(export: list[str], ns: str) -> set[str]:
    if not export or EXPORT_ALL in export:
        return {EXPORT_ALL}
    return {ns if e == EXPORT_LOCAL else e for e in export}


def analyze(ctx: Context) -> Iterator[Finding]:
    index: dict[tuple[str, str, int], list[tuple[str, Resource]]] = {}
    for se in ctx.of_kind("ServiceEntry"):
        export = [str(e) for e in se.spec.get("exportTo") or []]
        for scope in sorted(_scopes(export, se.namespace)):
            for h in se.spec.get("hosts") or []:
                for p in iter_dicts(se.spec.get("ports")):
                    if isinstance(p.get("number"), int):
                        index.setdefault((scope, str(h), p["number"]), []).append(
                            (str(p.get("protocol") or ""), se))
    reported: set[str] = set()
    for (scope, host, port), entries in index.items():
        if scope != EXPORT_ALL:
            entries = entries + index.get((EXPORT_ALL, host, port), [])
        protocols = sorted({p.upper() for p, _ in entries})
        if len(protocols) < 2:
            continue
        names = ", ".join(sorted({full_name(r) for _, r in entries}))
        for _, se in entries:
            if full_name(se) in reported:
                continue
            reported.add(full_name(se))
            yield finding("ML1142", se, ("metadata", "name"), names=names, host=goq(host),
                          port=port, protocols=", ".join(protocols),
                          fix={"host": host})
