"""Request impact: which requests now go elsewhere, read from the routes and TCP proxies.

Layer: L7 (review). Imports: compiler.names.

For every HTTP route of every virtual host (``route`` resources) and every ``tcp_proxy`` of
every listener filter chain, the *action* (the cluster or weighted clusters, a redirect, a
direct response, an injected fault) is keyed by *where the request matches* (route
configuration, virtual host, match conditions). Comparing the two sides' tables tells which
requests change destination or outcome, without the noise of renamed or reordered fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from meshlens.compiler.names import parse_cluster_name

FAULT = "envoy.filters.http.fault"


@dataclass(frozen=True, slots=True)
class Impact:
    """Requests matching ``match`` on ``where`` went to ``before`` and now go to ``after``."""

    where: str  # route configuration and virtual host, or listener
    domains: tuple[str, ...]
    match: str
    before: str | None  # None: no such route before
    after: str | None  # None: no such route now

    def to_dict(self) -> dict[str, Any]:
        return {"where": self.where, "domains": list(self.domains), "match": self.match,
                "before": self.before, "after": self.after}


def short_cluster(name: str) -> str:
    """``outbound|9080|v1|reviews.default.svc.cluster.local`` → ``reviews.default:9080 subset v1``.

    Example:
        >>> short_cluster("outbound|9080|v1|reviews.default.svc.cluster.local")
        'reviews.default:9080 (subset v1)'
        >>> short_cluster("PassthroughCluster")
        'PassthroughCluster'
    """
    key = parse_cluster_name(name)
    if key is None:
        return name
    host = key.host.removesuffix(".svc.cluster.local")
    return f"{host}:{key.port}" + (f" (subset {key.subset})" if key.subset else "")


def _string_match(m: dict[str, Any]) -> str:
    for op in ("exact", "prefix", "suffix", "contains"):
        if op in m:
            return f"{op} {m[op]!r}"
    if "safe_regex" in m:
        return f"regex {m['safe_regex'].get('regex', '')!r}"
    return "present"


def match_text(match: dict[str, Any]) -> str:
    """A route match in words: path, then headers and query parameters.

    Example:
        >>> match_text({"prefix": "/", "headers": [{"name": "end-user",
        ...     "string_match": {"exact": "jason"}}]})
        "prefix '/', header end-user exact 'jason'"
    """
    parts = []
    for op in ("path", "prefix", "path_separated_prefix"):
        if op in match:
            parts.append(f"{'exact' if op == 'path' else op} {match[op]!r}")
    if "safe_regex" in match:
        parts.append(f"regex {match['safe_regex'].get('regex', '')!r}")
    for h in match.get("headers", []):
        sm = h.get("string_match")
        text = _string_match(sm) if sm else ("present" if h.get("present_match") else "matches")
        parts.append(f"header {h.get('name')} {'not ' if h.get('invert_match') else ''}{text}")
    for q in match.get("query_parameters", []):
        sm = q.get("string_match")
        parts.append(f"query {q.get('name')} {_string_match(sm) if sm else 'present'}")
    return ", ".join(parts) or "any"


def _fault_text(route: dict[str, Any]) -> str:
    cfg = route.get("typed_per_filter_config", {}).get(FAULT)
    if not isinstance(cfg, dict):
        return ""
    out = []
    abort = cfg.get("abort")
    if isinstance(abort, dict):
        pct = abort.get("percentage", {}).get("numerator", 100)
        status = abort.get("http_status") or (f"grpc {abort['grpc_status']}" if "grpc_status" in abort else "?")
        out.append(f"abort {status} for {pct}%")
    delay = cfg.get("delay")
    if isinstance(delay, dict):
        pct = delay.get("percentage", {}).get("numerator", 100)
        out.append(f"delay {delay.get('fixed_delay', '?')} for {pct}%")
    return " + fault: " + ", ".join(out) if out else ""


def action_text(route: dict[str, Any]) -> str:
    """What Envoy does with a matched request, in words."""
    if "direct_response" in route:
        return f"direct response {route['direct_response'].get('status')}"
    if "redirect" in route:
        r = route["redirect"]
        target = (r.get("host_redirect", "") + r.get("path_redirect", r.get("prefix_rewrite", ""))) or "same URL"
        return f"redirect {r.get('response_code', 'MOVED_PERMANENTLY')} to {target}"
    act = route.get("route", {})
    if "cluster" in act:
        text = short_cluster(act["cluster"])
    elif "weighted_clusters" in act:
        wc = act["weighted_clusters"].get("clusters", [])
        total = sum(int(c.get("weight", 0)) for c in wc) or 1
        text = ", ".join(f"{short_cluster(c['name'])} {round(100 * int(c.get('weight', 0)) / total)}%"
                         for c in wc)
    elif "cluster_header" in act:
        text = f"the cluster named by header {act['cluster_header']}"
    else:
        text = "no action"
    return text + _fault_text(route)


def http_table(routes: dict[str, dict[str, Any]]) -> dict[tuple[str, str, str], tuple[tuple[str, ...], str]]:
    """(route config, virtual host, match) → (domains, action), first match of each kind wins."""
    out: dict[tuple[str, str, str], tuple[tuple[str, ...], str]] = {}
    for rc_name, rc in routes.items():
        for vh in rc.get("virtual_hosts", []):
            domains = tuple(vh.get("domains", []))
            for r in vh.get("routes", []):
                key = (rc_name, str(vh.get("name", "")), match_text(r.get("match", {})))
                out.setdefault(key, (domains, action_text(r)))
    return out


def _tcp_action(typed: dict[str, Any]) -> str:
    if "cluster" in typed:
        return short_cluster(typed["cluster"])
    wc = typed.get("weighted_clusters", {}).get("clusters", [])
    total = sum(int(c.get("weight", 0)) for c in wc) or 1
    return ", ".join(f"{short_cluster(c['name'])} {round(100 * int(c.get('weight', 0)) / total)}%" for c in wc)


def tcp_table(listeners: dict[str, dict[str, Any]]) -> dict[tuple[str, str, str], tuple[tuple[str, ...], str]]:
    """(listener, filter chain, match) → ((), action) for every tcp_proxy."""
    out: dict[tuple[str, str, str], tuple[tuple[str, ...], str]] = {}
    for name, lst in listeners.items():
        chains = list(lst.get("filter_chains", []))
        if "default_filter_chain" in lst:
            chains.append(lst["default_filter_chain"])
        for fc in chains:
            for f in fc.get("filters", []):
                typed = f.get("typed_config", {})
                if f.get("name") != "envoy.filters.network.tcp_proxy" or not isinstance(typed, dict):
                    continue
                m = fc.get("filter_chain_match", {})
                desc = ", ".join(f"{k}={v}" for k, v in sorted(m.items())) or "any"
                out[(name, str(fc.get("name", "")), desc)] = ((), _tcp_action(typed))
    return out


def compare(old: dict[str, dict[str, Any]], new: dict[str, dict[str, Any]], *, tcp: bool = False
            ) -> list[Impact]:
    """The requests whose action differs between two sides' route (or listener) resources."""
    table = tcp_table if tcp else http_table
    a, b = table(old), table(new)
    out = []
    for key in sorted(set(a) | set(b)):
        before, after = a.get(key), b.get(key)
        if before is not None and after is not None and before[1] == after[1]:
            continue
        where = f"listener {key[0]}" if tcp else f"route {key[0]}, virtual host {key[1]}"
        domains = (after or before or ((), ""))[0]
        out.append(Impact(where, domains, key[2], before[1] if before else None,
                          after[1] if after else None))
    return out
