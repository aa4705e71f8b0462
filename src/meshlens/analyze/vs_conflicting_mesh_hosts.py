"""Several VirtualServices bound to the mesh for the same host: sidecars use only one
(istioctl `virtualservice.ConflictingMeshGatewayHostsAnalyzer`).

Layer: L6. Imports: analyze.core, analyze._istio.

Sidecars do not merge VirtualServices: for one host the first in import order wins (private,
exported, public; each oldest first) and the others' routes are silently dropped.
"""

from __future__ import annotations

from collections.abc import Iterator

from meshlens.analyze._istio import EXPORT_ALL, EXPORT_LOCAL, full_name, to_fqdn
from meshlens.analyze.core import CodeDoc, Context, Finding, Metadata, finding
from meshlens.resources import Resource

METADATA = Metadata(
    name="virtualservice.ConflictingMeshGatewayHostsAnalyzer",
    description="Checks if multiple virtual services associated with the mesh gateway have "
                "conflicting hosts",
    inputs=("VirtualService",),
    codes=("ML1105",),
)

DOCS = {
    "ML1105": CodeDoc(
        checks="VirtualServices bound to the mesh gateway (no gateways, or mesh listed) that "
               "define the same host in overlapping exportTo scopes (istioctl IST0109).",
        matters="Sidecars do not merge them: the first in import order (oldest) wins and the "
                "others' routes are silently dropped.",
        quiet="One VirtualService per host; gateway-only VirtualServices; disjoint exportTo.",
        example="VirtualService a: {hosts: [reviews], http: [...]}; VirtualService b: {hosts: "
                "[reviews], http: [...]}"),
}


def host_matches(a: str, b: str) -> bool:
    """`host.Name.Matches`: symmetric overlap with ``*`` wildcards.

    Example:
        >>> host_matches("*.com", "foo.com"), host_matches("*.foo.com", "foo.com")
        (True, False)
    """
    if a == b:
        return True
    aw, bw = a.startswith("*"), b.startswith("*")
    if aw and bw:
        return a[1:].endswith(b[1:]) or b[1:].endswith(a[1:])
    if aw:
        return b.endswith(a[1:])
    if bw:
        return a.endswith(b[1:])
    return False


def _mesh_hosts(ctx: Context) -> dict[tuple[str, str], list[Resource]]:
    out: dict[tuple[str, str], list[Resource]] = {}
    for r in ctx.of_kind("VirtualService"):
        gateways = [str(g) for g in r.spec.get("gateways") or []]
        if gateways and "mesh" not in gateways:
            continue
        export = [str(e) for e in r.spec.get("exportTo") or []]
        if not export or EXPORT_ALL in export:
            scopes = [EXPORT_ALL]
        else:
            scopes = sorted({r.namespace if e == EXPORT_LOCAL else e for e in export})
        for scope in scopes:
            for h in r.spec.get("hosts") or []:
                out.setdefault((scope, to_fqdn(r.namespace, str(h))), []).append(r)
    return out


def analyze(ctx: Context) -> Iterator[Finding]:
    hosts = _mesh_hosts(ctx)
    reported: set[str] = set()
    for (scope, fqdn), vs_list in hosts.items():
        vs_list = list(vs_list)
        if scope != EXPORT_ALL:
            for (other_scope, other), rs in hosts.items():
                if other_scope == EXPORT_ALL and host_matches(fqdn, other):
                    vs_list.extend(rs)
        if len(vs_list) < 2:
            continue
        names = ",".join(sorted(full_name(r) for r in vs_list))
        winner = min(vs_list, key=lambda r: (r.creation, r.doc.index))
        for r in vs_list:
            if full_name(r) in reported:
                continue
            reported.add(full_name(r))
            yield finding("ML1105", r, ("metadata", "name"), names=names,
                          host=f"{scope}/{fqdn}", fix={"host": fqdn, "winner": full_name(winner)})
