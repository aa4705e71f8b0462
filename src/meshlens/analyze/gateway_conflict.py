"""istioctl's `gateway.ConflictingGatewayAnalyzer`: Gateways on the same workloads and port with
a host in common (IST0145); a selector no other Gateway shares is IST0101.

Layer: L6. Imports: analyze.core, analyze._istio, analyze.gateway_port.

Mirrors pkg/config/analysis/analyzers/gateway/conflictinggateway.go: Gateways are grouped by
selector string and server port; two selectors are "the same" when equal, or when one string
contains the other and some pod matches both; a server conflicts with another Gateway's server
when `CheckDuplicates` finds a host with the same bind (which, as in istioctl, records the hosts
it did not find, so later comparisons see them). istiod itself keeps the first Gateway's server
(see ``compile``'s notes); istioctl reports both sides.
"""

from __future__ import annotations

from collections.abc import Iterator

from meshlens.analyze._istio import full_name, labels_match
from meshlens.analyze.core import (CodeDoc, Context, Finding, Metadata, as_dict, finding, goq, iter_dicts,
                                   selector_string)
from meshlens.analyze.gateway_port import gateway_selector, istio_gateways, selector_path

METADATA = Metadata(
    name="gateway.ConflictingGatewayAnalyzer",
    description="Checks a gateway's selector, port number and hosts",
    inputs=("Gateway", "Pod"),
    codes=("ML1181", "ML1184"),
)

DOCS = {
    "ML1181": CodeDoc(
        checks="A Gateway selector that neither another Gateway shares nor any pod matches (IST0101).",
        matters="The Gateway applies to no proxy.",
        quiet="The selector is shared, or a pod matches it.",
        example="selector: {istio: ingressgateway, version: v9}"),
    "ML1184": CodeDoc(
        checks="Servers of different Gateways on the same workloads and port that declare the same "
               "host with the same bind (IST0145).",
        matters="istiod keeps only the first server for that host and port; the other Gateway's "
                "routes for it never apply (404 or the wrong backend).",
        quiet="Hosts, ports, binds or selected workloads differ.",
        example="Gateways alpha and beta both: port 80, hosts [foo.bar], selector istio=ingressgateway"),
}


def _port(server: dict[str, object]) -> str:
    n = as_dict(server.get("port")).get("number")
    return str(n if isinstance(n, int) else 0)


def _parse_selector(text: str) -> dict[str, str]:
    """`parseSelectorFromString`."""
    out = {}
    for pair in text.split(","):
        kv = pair.split("=")
        if len(kv) == 2:
            out[kv[0]] = kv[1]
    return out


def analyze(ctx: Context) -> Iterator[Finding]:
    gateways = istio_gateways(ctx)
    pods = ctx.mesh.registry.workloads
    table: dict[tuple[str, str], dict[str, dict[str, str]]] = {}  # `initGatewaysMap`
    for gw in gateways:
        sel = selector_string(gateway_selector(gw))
        for server in iter_dicts(gw.spec.get("servers")):
            hb = {str(h): str(server.get("bind") or "") for h in server.get("hosts") or []}
            table.setdefault((sel, _port(server)), {})[full_name(gw)] = hb
    for gw in gateways:
        name = full_name(gw)
        sel_map = gateway_selector(gw)
        sel = selector_string(sel_map)
        hits: dict[tuple[str, str], dict[str, dict[str, str]]] = {}
        for key in sorted(table):
            other = key[0]
            matched = other == sel
            if not matched and (other in sel or sel in other):
                xsel = _parse_selector(other)
                matched = any(labels_match(sel_map, p.labels) and labels_match(xsel, p.labels) for p in pods)
            if matched:
                hits[key] = table[key]
        if sel and not hits:
            yield finding("ML1181", gw, selector_path(gw, sel_map), what="selector", value=goq(sel),
                          fix={"hint": "No Gateway shares this selector and no pod has its labels."})
            continue
        for server in iter_dicts(gw.spec.get("servers")):
            port = _port(server)
            hosts = [str(h) for h in server.get("hosts") or []]
            bind = str(server.get("bind") or "")
            conflicts = []
            for key in sorted(hits):
                if key[1] != port:
                    continue
                for other_name in sorted(hits[key]):
                    known = hits[key][other_name]
                    if other_name == name:
                        continue
                    dupes = [h for h in hosts if h in known and known[h] == bind]
                    if not dupes:
                        known.update(dict.fromkeys(hosts, bind))  # `CheckDuplicates` records them
                    else:
                        conflicts.append(other_name)
            if conflicts:
                yield finding("ML1184", gw, (), gateways=",".join(sorted(conflicts)), selector=sel,
                              port=port, hosts=",".join(hosts))
