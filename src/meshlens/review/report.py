"""``meshlens report``: the mesh as a graph, built from what istiod would program.

Layer: L7 (review). Imports: pipeline, analyze, simulate, render, emit, dump, compiler.names.

The graph is read from compiled configs, not from the YAML: for each group of sidecars with the
same outbound view (``analyze.inputs.proxy_groups``) one representative is compiled, and its
route tables and TCP proxies give the edges: a Service's virtual host routes to clusters
(subsets, weights, matches) whose EDS endpoints are pods of workloads. A route to a cluster the
proxy does not have is an edge to a *missing* node (503 NC); a cluster without endpoints is an
edge to an *empty* node (503 UH). Gateways enter through their VirtualServices. Findings from
``analyze`` sit on the node of their resource and on the edges whose cluster they name.

The result is plain JSON (:func:`build_report`); :mod:`meshlens.review.report_html` turns it
into one self-contained HTML file. Nothing here runs in the browser but the drawing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from meshlens.compiler import CompileResult
from meshlens.compiler.names import parse_cluster_name
from meshlens.pipeline import Loaded, compile_for, server_compiler

#: The response flags a finding can predict, in the legend's order, with their colours.
FLAG_COLOURS = {"NC": "#d62728", "UH": "#e4572e", "UF": "#9467bd", "UC": "#8c564b",
                "UO": "#ff7f0e", "NR": "#bcbd22", "403": "#17becf", "other": "#7f7f7f"}
#: Up to this many services, traces follow requests into the server sidecar.
SERVER_TRACE_LIMIT = 60
_SUBSET = re.compile(r"subset (?P<s>[\w.-]+)", re.IGNORECASE)


@dataclass(slots=True)
class Graph:
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    edges: dict[str, dict[str, Any]] = field(default_factory=dict)

    def node(self, nid: str, **data: Any) -> dict[str, Any]:
        n = self.nodes.setdefault(nid, {"id": nid, "findings": []})
        n.update({k: v for k, v in data.items() if v is not None})
        return n

    def edge(self, source: str, target: str, key: str, **data: Any) -> dict[str, Any]:
        eid = f"{source}->{target}#{key}"
        e = self.edges.setdefault(eid, {"id": eid, "source": source, "target": target,
                                        "findings": [], "matches": []})
        e.update({k: v for k, v in data.items() if v is not None and k != "match"})
        if data.get("match") and data["match"] not in e["matches"]:
            e["matches"].append(data["match"])
        return e


def _ns_id(ns: str) -> str:
    return f"ns:{ns}"


def _svc_id(host: str) -> str:
    return f"svc:{host}"


def _wl_id(ref: str) -> str:
    return f"wl:{ref}"


def _tls(c: Any) -> str:
    from meshlens.analyze._compiled import tls_state

    state = tls_state(c)
    return {"plaintext": "plaintext", "auto mTLS": "mTLS", "ISTIO_MUTUAL": "mTLS",
            "SIMPLE": "TLS origination", "MUTUAL": "TLS origination"}.get(state, state)


def _destinations(action: dict[str, Any]) -> list[tuple[str, int]]:
    if "cluster" in action:
        return [(action["cluster"], 100)]
    wc = action.get("weighted_clusters", {}).get("clusters", [])
    total = sum(int(c.get("weight", 0)) for c in wc) or 1
    return [(c["name"], round(100 * int(c.get("weight", 0)) / total)) for c in wc]


class _Builder:
    def __init__(self, loaded: Loaded) -> None:
        from meshlens.analyze.inputs import proxy_ref

        self.loaded = loaded
        self.g = Graph()
        self.reg = loaded.mesh.registry
        self.by_ip: dict[str, str] = {}
        for w in self.reg.workloads:
            ref = proxy_ref(w)
            self.by_ip[w.ip] = ref
            self.g.node(_ns_id(w.namespace), kind="namespace", label=w.namespace)
            n = self.g.node(_wl_id(ref), kind="gateway" if _is_gateway(w) else "workload",
                            label=ref.split("/")[-1].rsplit(".", 1)[0], parent=_ns_id(w.namespace),
                            namespace=w.namespace, injected=bool(w.injected), proxy=ref)
            n.setdefault("pods", []).append(f"{w.name} {w.ip}")
        for s in self.reg.services:
            if s.registry == "External" or getattr(s, "mesh_external", False):
                self.g.node(_svc_id(s.hostname), kind="external", label=s.hostname, namespace=s.namespace,
                            ports=[f"{p.port}/{p.protocol}" for p in s.ports])
            else:
                self.g.node(_ns_id(s.namespace), kind="namespace", label=s.namespace)
                self.g.node(_svc_id(s.hostname), kind="service", label=s.name, parent=_ns_id(s.namespace),
                            namespace=s.namespace, ports=[f"{p.port}/{p.protocol}" for p in s.ports])

    def add_routes(self, result: CompileResult) -> None:
        from meshlens.emit import to_dict

        clusters = {c.name: c for c in result.clusters}
        cla = {a.cluster_name: a for a in result.endpoints}
        for rc in result.routes or []:
            d = to_dict(rc)
            for vh in d.get("virtual_hosts", []):
                host = str(vh.get("name", "")).rsplit(":", 1)[0]
                if _svc_id(host) not in self.g.nodes:
                    continue
                for r in vh.get("routes", []):
                    from meshlens.review.impact import match_text

                    match = match_text(r.get("match", {}))
                    for cname, weight in _destinations(r.get("route", {})):
                        self._edge_to_cluster(_svc_id(host), cname, weight, match, "http", clusters, cla)
        for lst in result.listeners or []:
            self._tcp_edges(lst, clusters, cla)

    def _tcp_edges(self, lst: Any, clusters: dict[str, Any], cla: dict[str, Any]) -> None:
        from meshlens.emit import to_dict

        if lst.name in ("virtualInbound", "virtualOutbound"):
            return
        d = to_dict(lst)
        for fc in d.get("filter_chains", []):
            for f in fc.get("filters", []):
                t = f.get("typed_config", {})
                if f.get("name") != "envoy.filters.network.tcp_proxy":
                    continue
                for cname, weight in _destinations(t):
                    key = parse_cluster_name(cname)
                    if key is None or _svc_id(key.host) not in self.g.nodes:
                        continue
                    self._edge_to_cluster(_svc_id(key.host), cname, weight, "any", "tcp", clusters, cla)

    def _edge_to_cluster(self, source: str, cname: str, weight: int, match: str, protocol: str,
                         clusters: dict[str, Any], cla: dict[str, Any]) -> None:
        key = parse_cluster_name(cname)
        if key is None:
            self.g.node(f"special:{cname}", kind="external", label=cname)
            self.g.edge(source, f"special:{cname}", cname, protocol=protocol, cluster=cname,
                        weight=weight, match=match, tls="plaintext")
            return
        if _svc_id(key.host) != source and _svc_id(key.host) in self.g.nodes:
            # a route to another host: service → service
            self.g.edge(source, _svc_id(key.host), cname, protocol=protocol, cluster=cname,
                        subset=key.subset or None, weight=weight, match=match,
                        tls=_tls(clusters[cname]) if cname in clusters else "")
            return
        if cname not in clusters:
            mid = f"missing:{cname}"
            self.g.node(mid, kind="missing", label=f"{key.subset or 'port ' + str(key.port)} (no cluster)",
                        parent=self.g.nodes[source].get("parent"), flag="NC")
            self.g.edge(source, mid, cname, protocol=protocol, cluster=cname, subset=key.subset or None,
                        weight=weight, match=match, flag="NC", tls="")
            return
        tls = _tls(clusters[cname])
        targets = self._targets(cla.get(cname))
        if not targets and clusters[cname].type == clusters[cname].EDS:
            mid = f"empty:{cname}"
            self.g.node(mid, kind="missing", label=f"{key.subset or 'port ' + str(key.port)} (no endpoints)",
                        parent=self.g.nodes[source].get("parent"), flag="UH")
            self.g.edge(source, mid, cname, protocol=protocol, cluster=cname, subset=key.subset or None,
                        weight=weight, match=match, flag="UH", tls=tls)
            return
        for wl in targets or []:
            self.g.edge(source, wl, cname, protocol=protocol, cluster=cname, subset=key.subset or None,
                        weight=weight, match=match, tls=tls)

    def _targets(self, assignment: Any) -> list[str]:
        out: list[str] = []
        if assignment is None:
            return out
        for loc in assignment.endpoints:
            for lb in loc.lb_endpoints:
                ref = self.by_ip.get(lb.endpoint.address.socket_address.address)
                if ref is not None and _wl_id(ref) not in out:
                    out.append(_wl_id(ref))
        return out

    def add_gateways(self) -> None:
        """Gateways enter through the VirtualServices bound to them (``spec.gateways``)."""
        for r in self.loaded.mesh.resources:
            if r.kind != "VirtualService" or not isinstance(r.spec, dict):
                continue
            for gw in r.spec.get("gateways") or []:
                if gw == "mesh" or not isinstance(gw, str):
                    continue
                ns, _, name = gw.rpartition("/")
                gid = f"gw:{ns or r.namespace}/{name}"
                self.g.node(gid, kind="gateway", label=f"Gateway {name}", namespace=ns or r.namespace)
                for section in ("http", "tcp", "tls"):
                    for rule in r.spec.get(section) or []:
                        for dest in (rule.get("route") or []) if isinstance(rule, dict) else []:
                            host = (dest.get("destination") or {}).get("host", "")
                            svc = self.reg.service(_fqdn(host, r.namespace)) or self.reg.service(host)
                            if svc is not None:
                                self.g.edge(gid, _svc_id(svc.hostname), f"{r.namespace}/{r.name}",
                                            protocol="tcp" if section != "http" else "http",
                                            vs=f"{r.namespace}/{r.name}", weight=dest.get("weight", 100),
                                            tls="")


def _fqdn(host: str, ns: str) -> str:
    return host if "." in host else f"{host}.{ns}.svc.cluster.local"


def _is_gateway(w: Any) -> bool:
    return w.labels.get("istio") in ("ingressgateway", "egressgateway") or \
        "gateway.networking.k8s.io/gateway-name" in w.labels


def _attach(g: Graph, findings: list[dict[str, Any]], loaded: Loaded) -> None:
    """Each finding on its resource's node, and on the edges whose cluster or subset it names."""
    hosts: dict[str, str] = {}
    for r in loaded.mesh.resources:
        if r.kind in ("DestinationRule",) and isinstance(r.spec, dict):
            h = str(r.spec.get("host", ""))
            hosts[f"{r.kind} {r.namespace}/{r.name}"] = _fqdn(h, r.namespace)
        elif r.kind == "Service":
            hosts[f"Service {r.namespace}/{r.name}"] = f"{r.name}.{r.namespace}.svc.cluster.local"
        elif r.kind == "VirtualService" and isinstance(r.spec, dict):
            for h in r.spec.get("hosts") or []:
                hosts.setdefault(f"{r.kind} {r.namespace}/{r.name}", _fqdn(str(h), r.namespace))
    by_cluster: dict[str, list[dict[str, Any]]] = {}
    for e in g.edges.values():
        by_cluster.setdefault(e.get("cluster", ""), []).append(e)
    for i, f in enumerate(findings):
        placed = False
        for cname, edges in by_cluster.items():
            if cname and cname in f["message"]:
                for e in edges:
                    e["findings"].append(i)
                    placed = True
        host = hosts.get(f["resource"])
        sub = _SUBSET.search(f["message"])
        if host is not None and _svc_id(host) in g.nodes:
            g.nodes[_svc_id(host)]["findings"].append(i)
            placed = True
            if sub:
                for e in g.edges.values():
                    if e["source"] == _svc_id(host) and e.get("subset") == sub.group("s") and i not in e["findings"]:
                        e["findings"].append(i)
        kind, _, ref = f["resource"].partition(" ")
        if kind in ("Deployment", "StatefulSet", "DaemonSet", "Pod") and "/" in ref:
            ns, name = ref.split("/", 1)
            for nid, n in g.nodes.items():
                if n.get("kind") in ("workload", "gateway") and n.get("namespace") == ns and \
                        n.get("label", "").startswith(name):
                    n["findings"].append(i)
                    placed = True
        f["placed"] = placed


def _finding(f: Any) -> dict[str, Any]:
    s = f.span
    return {"code": f.code, "level": f.level_name, "message": f.message, "resource": f.origin,
            "file": s.path if s else "", "line": s.line if s else 0, "flag": f.flag or "", "fix": f.fix}


def _worst(findings: list[dict[str, Any]], idx: Iterable[int]) -> tuple[str, str]:
    order = {"Error": 0, "Warning": 1, "Info": 2}
    best = ("", "")
    rank = 9
    for i in idx:
        f = findings[i]
        r = order.get(f["level"], 3)
        if r < rank:
            rank, best = r, (f["level"], f["flag"] or ("other" if r < 2 else ""))
    return best


def _panels(loaded: Loaded, results: dict[str, CompileResult], members: dict[str, list[str]]) -> dict[str, Any]:
    """Per workload: istioctl's tables of its (group's) compiled config."""
    from meshlens.dump import clusters_status_of, from_message
    from meshlens.emit import config_dump
    from meshlens.render.proxy_config.cluster import render_clusters
    from meshlens.render.proxy_config.endpoint import render_endpoints
    from meshlens.render.proxy_config.listener import render_listeners
    from meshlens.render.proxy_config.route import render_routes

    out: dict[str, Any] = {}
    for rep, result in results.items():
        dump = from_message(config_dump(result))
        sections = []
        for title, fn in (("clusters", lambda: render_clusters(dump)),
                          ("listeners", lambda: render_listeners(dump)),
                          ("routes", lambda: render_routes(dump)),
                          ("endpoints", lambda: render_endpoints(clusters_status_of(dump)))):
            try:
                sections.append({"title": f"proxy-config {title}", "text": fn()})
            except Exception as exc:  # a table that cannot render must not lose the report
                sections.append({"title": f"proxy-config {title}", "text": f"(not available: {exc})"})
        for m in members.get(rep, [rep]):
            # alike proxies share one set of tables (the page shows the representative's)
            out[_wl_id(m)] = {"proxy": m, "group": rep, "sections": sections if m == rep else None}
    return out


def _service_panels(loaded: Loaded, g: Graph, client: CompileResult | None) -> dict[str, Any]:
    """Per service: its clusters with the fields that made them, and traces of its routes."""
    from meshlens.simulate import Request, simulate

    out: dict[str, Any] = {}
    if client is None:
        return out
    services = [n for n in g.nodes.values() if n.get("kind") == "service"]
    # Following each request into its server sidecar compiles that pod too: worth it for a
    # mesh one reads service by service, not for a thousand services (the route is the answer).
    server = server_compiler(loaded) if len(services) <= SERVER_TRACE_LIMIT else None
    origins_by_cluster = {name: fields for (kind, name), fields in client.provenance.fields.items()
                          if kind == "cluster"}
    for nid, n in g.nodes.items():
        if n.get("kind") != "service":
            continue
        host = nid[len("svc:"):]
        clusters = []
        for cname, fields in sorted(origins_by_cluster.items()):
            key = parse_cluster_name(cname)
            if key is None or key.host != host:
                continue
            rows = [f"{path}: {o.describe()}" for path, o in sorted(fields.items())
                    if o.resource is not None and o.resource.kind == "DestinationRule"]
            clusters.append({"cluster": cname, "fields": rows})
        traces = []
        ports = [int(p.split("/")[0]) for p in n.get("ports", []) if p.split("/")[0].isdigit()]
        matches = sorted({m for e in g.edges.values() if e["source"] == nid for m in e["matches"]})
        for port in ports[:2]:
            for match in (["prefix '/'"] + [m for m in matches if m != "prefix '/'"])[:6]:
                headers, path = _request_for(match)
                url = f"http://{n['label']}.{n['namespace']}:{port}{path}"
                try:
                    t = simulate(client, Request.parse(url, headers=headers), server=server).to_dict()
                except Exception as exc:  # a request meshlens cannot express is shown, not fatal
                    traces.append({"request": url, "match": match, "verdict": f"not traced: {exc}"})
                    continue
                traces.append({"request": url + "".join(f" -H '{h}'" for h in headers), "match": match,
                               "verdict": t.get("verdict"), "status": t.get("status"),
                               "clusters": [c.get("name") for c in t.get("clusters", [])],
                               "reason": t.get("reason", "")})
        out[nid] = {"clusters": clusters, "traces": traces}
    return out


def _request_for(match: str) -> tuple[list[str], str]:
    """A request that satisfies a route match written by impact.match_text (best effort)."""
    headers, path = [], "/"
    for part in match.split(", "):
        words = part.split(" ", 2)
        if words[0] in ("prefix", "exact", "path_separated_prefix") and len(words) > 1:
            path = words[1].strip("'")
        elif words[0] == "header" and len(words) == 3 and words[2].startswith("exact "):
            headers.append(f"{words[1]}: {words[2][len('exact '):].strip(chr(39))}")
        elif words[0] == "header" and len(words) == 3 and words[2].startswith("prefix "):
            headers.append(f"{words[1]}: {words[2][len('prefix '):].strip(chr(39))}x")
    return headers, path


def build_report(loaded: Loaded, *, title: str = "", base: Loaded | None = None,
                 panels: bool = True) -> dict[str, Any]:
    """The report's data: nodes, edges, findings, panels (and the change against ``base``)."""
    from meshlens.analyze import run
    from meshlens.analyze.inputs import proxy_groups

    b = _Builder(loaded)
    groups = proxy_groups(loaded)
    results: dict[str, CompileResult] = {}
    for rep in groups:
        try:
            results[rep] = compile_for(loaded, rep)
        except Exception:  # a proxy that does not compile still leaves the rest of the picture
            continue
        b.add_routes(results[rep])
    b.add_gateways()
    findings = [_finding(f) for f in run(loaded)]
    _attach(b.g, findings, loaded)
    for item in list(b.g.nodes.values()) + list(b.g.edges.values()):
        level, flag = _worst(findings, item["findings"])
        if level:
            item["level"] = level
        if flag and "flag" not in item:
            item["flag"] = flag
    data: dict[str, Any] = {
        "title": title or "meshlens report",
        "nodes": list(b.g.nodes.values()), "edges": list(b.g.edges.values()),
        "findings": findings, "flags": FLAG_COLOURS,
        "panels": _panels(loaded, results, groups) if panels else {},
        "services": _service_panels(loaded, b.g, next(iter(results.values()), None)) if panels else {},
    }
    if base is not None:
        data["change"] = _change(build_report(base, panels=False), data)
    data["summary"] = {"namespaces": sum(1 for n in data["nodes"] if n.get("kind") == "namespace"),
                       "services": sum(1 for n in data["nodes"] if n.get("kind") == "service"),
                       "workloads": sum(1 for n in data["nodes"] if n.get("kind") in ("workload", "gateway")),
                       "edges": len(data["edges"]),
                       "findings": {lvl: sum(1 for f in findings if f["level"] == lvl)
                                    for lvl in ("Error", "Warning", "Info")}}
    return data


def _change(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Edges added, removed, reweighted; findings new and gone (marks the new report's edges)."""
    before = {e["id"]: e for e in old["edges"]}
    after = {e["id"]: e for e in new["edges"]}
    for eid, e in after.items():
        if eid not in before:
            e["change"] = "added"
        elif before[eid].get("weight") != e.get("weight"):
            e["change"] = "reweighted"
            e["was_weight"] = before[eid].get("weight")
    removed = [dict(e, change="removed") for eid, e in before.items() if eid not in after]
    new["edges"].extend(removed)
    known = {n["id"] for n in new["nodes"]}
    for e in removed:
        for end in (e["source"], e["target"]):
            if end not in known:
                gone = next((n for n in old["nodes"] if n["id"] == end), None)
                if gone is not None:
                    new["nodes"].append(dict(gone, change="removed", findings=[]))
                    known.add(end)
    fkey = lambda f: (f["code"], f["resource"], f["message"])  # noqa: E731
    old_keys = {fkey(f) for f in old["findings"]}
    new_keys = {fkey(f) for f in new["findings"]}
    for f in new["findings"]:
        if fkey(f) not in old_keys:
            f["change"] = "new"
    return {"edges_added": sum(1 for e in after.values() if e.get("change") == "added"),
            "edges_removed": len(removed),
            "edges_reweighted": sum(1 for e in after.values() if e.get("change") == "reweighted"),
            "findings_new": [f for f in new["findings"] if f.get("change") == "new"],
            "findings_gone": [f for f in old["findings"] if fkey(f) not in new_keys]}
