"""Route rules that can never match and matches that are shadowed by earlier ones (the
IST0130/IST0131 part of istioctl `schema.ValidationAnalyzer.VirtualService`).

Layer: L6. Imports: analyze.core.

Mirrors `pkg/config/validation/validation.go`: `analyzeUnreachableHTTPRules` (with the prefix
overlap check `genMatchHTTPRoutes`/`coveredValidation`), `analyzeUnreachableTCPRules` and
`analyzeUnreachableTLSRules`. Matches are compared as their JSON without the match ``name``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from meshlens.analyze.core import CodeDoc, Context, Finding, Metadata, as_dict, finding, goq
from meshlens.resources import Resource

METADATA = Metadata(
    name="schema.ValidationAnalyzer.VirtualService",
    description="Runs the unreachable-rule part of Istio's VirtualService validation",
    inputs=("VirtualService",),
    codes=("ML1106", "ML1107"),
)

DOCS = {
    "ML1106": CodeDoc(
        checks="http, tcp and tls rules of a VirtualService that follow a rule without match, or "
               "whose every match repeats an earlier rule's (istiod's analyzeUnreachable*Rules, "
               "IST0130).",
        matters="The rule's route, faults and retries never apply.",
        quiet="Only the last rule lacks a match; matches differ.",
        example="http:\n- route: [{destination: {host: details}}]\n- match: [{uri: {prefix: "
                "/v2}}]\n  route: [...]"),
    "ML1107": CodeDoc(
        checks="A match of a rule that duplicates (or, for prefixes, is covered by) a match of "
               "an earlier rule (IST0131).",
        matters="Info: that match never selects the rule; other matches of the rule still do.",
        quiet="No earlier rule covers the match.",
        example="http:\n- match: [{uri: {prefix: /api}}]\n  route: [...]\n- match: [{uri: "
                "{prefix: /api/v2}}, {headers: ...}]\n  route: [...]"),
}

EXACT, PREFIX = "exact:", "prefix:"


def _prune(value: Any) -> Any:
    """Drop empty values, as Go's ``omitempty`` JSON of the proto struct does."""
    if isinstance(value, dict):
        out = {k: _prune(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v not in (None, "", 0, False, {}, [])}
    if isinstance(value, list):
        return [_prune(v) for v in value]
    return value


def as_json(match: Any, *, http: bool) -> str:
    """`asJSON`: the match without its name (HTTP only), canonically serialized."""
    m = dict(match) if isinstance(match, dict) else match
    if http and isinstance(m, dict):
        m.pop("name", None)
    return json.dumps(_prune(m), sort_keys=True)


def route_name(rule: Any, n: int, *, http: bool) -> str:
    """`routeName`: ``"name"`` for named HTTP routes, else ``#n``."""
    name = as_dict(rule).get("name") if http else None
    return goq(str(name)) if name else f"#{n}"


def request_name(match: Any, n: int, *, http: bool) -> str:
    name = as_dict(match).get("name") if http else None
    return goq(str(name)) if name else f"#{n}"


def _exact_or_prefix(sm: Any) -> str:
    sm = as_dict(sm)
    if sm.get("exact"):
        return EXACT + str(sm["exact"])
    if sm.get("prefix"):
        return PREFIX + str(sm["prefix"])
    return ""


@dataclass(frozen=True, slots=True)
class _Prefix:
    """`OverlappingMatchValidationForHTTPRoute`."""

    route: str
    match: str
    prefix: str
    port: int
    method: str
    authority: str
    headers: dict[str, str]
    query: dict[str, str]
    without: dict[str, str]


def _gen(rule: Any, match: Any, rn: int, mn: int) -> _Prefix | None:
    """`genMatchHTTPRoutes`: only URI prefix matches take part."""
    m = as_dict(match)
    prefix = as_dict(m.get("uri")).get("prefix")
    if not prefix:
        return None
    method = _exact_or_prefix(m.get("method")) or EXACT + "GET"

    def smap(key: str) -> dict[str, str]:
        return {str(k): _exact_or_prefix(v) for k, v in as_dict(m.get(key)).items()}

    port = m.get("port")
    return _Prefix(route_name(rule, rn, http=True), request_name(match, mn, http=True),
                   str(prefix), port if isinstance(port, int) else 0, method,
                   _exact_or_prefix(m.get("authority")), smap("headers"), smap("queryParams"),
                   smap("withoutHeaders"))


def _covered(a: _Prefix, b: _Prefix) -> bool:
    """`coveredValidation`: does ``a`` (earlier) cover ``b`` (later)?"""
    if not b.prefix.startswith(a.prefix):
        return False
    if a.port != b.port:
        return False
    if a.method != b.method and not a.method.startswith(b.method):
        return False
    if a.authority != b.authority and not a.authority.startswith(b.authority):
        return False
    for mine, theirs in ((a.headers, b.headers), (a.query, b.query), (a.without, b.without)):
        if len(mine) != len(theirs):
            return False
        for k, v in mine.items():
            if k not in theirs:
                return False
            if v != theirs[k] and not v.startswith(theirs[k]):
                return False
    return True


Report = Callable[..., None]


def _rules(routes: list[Any], *, http: bool, unused: Report, ineffective: Report) -> None:
    seen: dict[str, int] = {}
    empty = -1
    prefixes: list[tuple[_Prefix, int]] = []
    for rn, rule in enumerate(routes):
        if rule is None:
            continue
        matches = as_dict(rule).get("match") or []
        if not isinstance(matches, list) or not matches:
            if empty >= 0:
                unused(rn, route_name(rule, rn, http=http),
                       "only the last rule can have no matches")
            empty = rn
            continue
        duplicates = 0
        for mn, match in enumerate(matches):
            if empty >= 0:
                unused(rn, route_name(rule, rn, http=http), "route without matches defined before")
                continue
            key = as_json(match, http=http)
            if key in seen:
                dup = seen[key]
                ineffective(rn, route_name(rule, rn, http=http), request_name(match, mn, http=http),
                            route_name(routes[dup], dup, http=http))
                duplicates += 1
                continue
            seen[key] = rn
            if http:
                p = _gen(rule, match, rn, mn)
                if p is not None:
                    prefixes.append((p, rn))
        if duplicates == len(matches):
            unused(rn, route_name(rule, rn, http=http), "all matches used by prior rules")
    for i, (a, _) in enumerate(prefixes):
        for b, bn in prefixes[i + 1:]:
            if b.prefix == a.prefix:
                continue
            if _covered(a, b):
                ineffective(bn, b.route, f"{b.match} of prefix {b.prefix}",
                            f"{a.match} of prefix {a.prefix} on {a.route}")


def analyze(ctx: Context) -> Iterator[Finding]:
    for vs in ctx.of_kind("VirtualService"):
        yield from _analyze(vs)


def _analyze(vs: Resource) -> Iterator[Finding]:
    out: list[Finding] = []
    for section in ("http", "tcp", "tls"):
        routes = vs.spec.get(section)
        if not isinstance(routes, list):
            continue

        def unused(rn: int, rule: str, reason: str, section: str = section) -> None:
            out.append(finding("ML1106", vs, ("spec", section, rn), rule=rule, reason=reason))

        def ineffective(rn: int, rule: str, match: str, dup: str, section: str = section) -> None:
            out.append(finding("ML1107", vs, ("spec", section, rn), rule=rule, match=match,
                               dup=dup))

        _rules(routes, http=section == "http", unused=unused, ineffective=ineffective)
    yield from out
