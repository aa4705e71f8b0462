"""RequestAuthentication → the ``jwt_authn`` HTTP filter of a sidecar's inbound HCMs.

Layer: L4. Imports: compiler.{attach,provenance}, xDS protos.

Mirrors ``pilot/pkg/security/authn/policy_applier.go`` (`NewPolicyApplier`, `JwtFilter`,
`convertToEnvoyJwtConfig`, `buildSpaceDelimitedClaims`) and `getConfigsForWorkload`
(``pilot/pkg/model/authentication.go``: the workload's namespace, then the root namespace; the
same attach rule as AuthorizationPolicy). All ``jwtRules`` of the selected policies are sorted by
issuer; each becomes provider ``origins-I``; one rule is "that provider, or no token", several
are "any one provider, or every token absent or valid". A token that fails validation is
rejected (401); a request without one passes jwt_authn and meets the AuthorizationPolicies.
Istio master builds no separate ``istio_authn`` filter any more: jwt_authn alone writes the
``payload`` metadata that RBAC matches (``request.auth.*``).

JWKS: with istiod's default ``PILOT_JWT_ENABLE_REMOTE_JWKS=false`` (fetch mode ``istiod``), an
inline ``jwks`` is written as ``local_jwks``; for a ``jwksUri`` (or an issuer only, resolved
by OpenID discovery) istiod fetches the keys itself and inlines them. meshlens never fetches: it
writes what istiod writes when its fetch fails (`BuildLocalJwks`): a ``local_jwks`` holding a
public RSA key whose private key was discarded, so every token is rejected (fail closed). The
key is meshlens's own (:data:`FAIL_CLOSED_JWKS`), not istiod's ``PublicOnlyJwks``: the behaviour
is the same, the bytes differ, and a note says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from envoy.extensions.filters.http.jwt_authn.v3 import config_pb2 as jwt_pb2

from meshlens.compiler import provenance as prov
from meshlens.compiler.attach import selects
from meshlens.compiler.provenance import Origin

__all__ = ["FAIL_CLOSED_JWKS", "JWT_FILTER", "BuiltJwt", "build_jwt_filter"]

JWT_FILTER = "envoy.filters.http.jwt_authn"
#: A JWKS whose private key was generated and discarded: no token validates against it.
FAIL_CLOSED_JWKS = (
    '{\n  "keys": [\n    {\n      "kty": "RSA",\n      "e": "AQAB",\n      "n": "'
    "xrcC4v_Jgl3_GgC8AUymNfHeec8w5HtTzQGwq0ez0cICuTN5mI4G61MJRvNfXxFU4nNPx4GbLPComD_dOoYGPLS9lT"
    "D0CmISsJtcxWN9Vhbhk6zYGYVFoOLx65FpS8-jzNfj2C84aQ-XfOuGBcMqmwZxAfIkvSDbNukYFeqXDePACFpl4dMBz"
    "nu-f1wfT0ymCLxChIzVLa6JbYczeYsVbbvQiijSjkQIGEjX9fiKVa6cxqhHlHNp96oYzUKxVeoOyTrnu1y4S-HLkwRBn"
    "7GA1tGrnXN6MJbh3W1VwaKe6bFmtinBcEgu1QC3rzL3-IYt7HuozJHhDoabz9RA5vczrw"
    '"\n    }\n  ]\n}')
DEFAULT_SPACE_DELIMITED = ("permission", "scope")


@dataclass(slots=True)
class BuiltJwt:
    """The jwt_authn filter config, the rule behind each provider, and notes."""

    config: jwt_pb2.JwtAuthentication
    origins: dict[str, Origin] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def space_delimited_claims(claims: Any) -> list[str]:
    """`buildSpaceDelimitedClaims`: ``permission`` and ``scope`` plus the rule's, sorted."""
    if claims is None:
        return list(DEFAULT_SPACE_DELIMITED)
    return sorted({*map(str, claims), *DEFAULT_SPACE_DELIMITED})


def select_request_authentications(resources: list[Any], namespace: str, labels: dict[str, str],
                                   root_namespace: str) -> list[Any]:
    """`GetJwtPoliciesForWorkload`: the workload's namespace, then the root namespace."""
    ras = sorted((r for r in resources if r.kind == "RequestAuthentication"), key=lambda r: r.order)
    return [r for ns in dict.fromkeys((namespace, root_namespace)) for r in ras
            if r.namespace == ns and selects(r, namespace, labels)]


def _provider(rule: dict[str, Any], notes: list[str]) -> jwt_pb2.JwtProvider:
    p = jwt_pb2.JwtProvider(issuer=str(rule.get("issuer") or ""),
                            audiences=[str(a) for a in rule.get("audiences") or []],
                            forward=bool(rule.get("forwardOriginalToken")),
                            forward_payload_header=str(rule.get("outputPayloadToHeader") or ""),
                            payload_in_metadata="payload", clear_route_cache=False)
    p.normalize_payload_in_metadata.space_delimited_claims.extend(
        space_delimited_claims(rule.get("spaceDelimitedClaims")))
    for ch in rule.get("outputClaimToHeaders") or []:
        p.claim_to_headers.add(header_name=str(ch.get("header")), claim_name=str(ch.get("claim")))
    for h in rule.get("fromHeaders") or []:
        p.from_headers.add(name=str(h.get("name")), value_prefix=str(h.get("prefix") or ""))
    p.from_params.extend(str(x) for x in rule.get("fromParams") or [])
    p.from_cookies.extend(str(x) for x in rule.get("fromCookies") or [])
    jwks = rule.get("jwks")
    if jwks:
        p.local_jwks.inline_string = str(jwks)
    else:
        p.local_jwks.inline_string = FAIL_CLOSED_JWKS
        where = rule.get("jwksUri") or rule.get("jwks_uri") or f"OpenID discovery of {p.issuer}"
        notes.append(f"JWKS from {where} is fetched by istiod, never by meshlens: written as "
                     "istiod writes it when the fetch fails (a key nobody can sign for): every "
                     "token of this issuer is rejected")
    return p


def _requirement(name: str = "", *, allow_missing: bool = False) -> jwt_pb2.JwtRequirement:
    r = jwt_pb2.JwtRequirement()
    if allow_missing:
        r.allow_missing.SetInParent()
    else:
        r.provider_name = name
    return r


def build_jwt_filter(mesh: Any, proxy: Any) -> BuiltJwt | None:
    """`JwtFilter(clearRouteCache=false)` for a sidecar; None without RequestAuthentication."""
    mc = mesh.mesh_config
    rules: list[tuple[dict[str, Any], Origin]] = []
    for res in select_request_authentications(mesh.resources, proxy.namespace, proxy.labels,
                                              mc.root_namespace):
        for i, rule in enumerate(res.spec.get("jwtRules") or []):
            if isinstance(rule, dict):
                rules.append((rule, prov.from_resource(res, ("spec", "jwtRules", i),
                                                       "RequestAuthentication")))
    if not rules:
        return None
    rules.sort(key=lambda r: str(r[0].get("issuer") or ""))
    out = BuiltJwt(jwt_pb2.JwtAuthentication(bypass_cors_preflight=True))
    inner: list[jwt_pb2.JwtRequirement] = []
    outer: list[jwt_pb2.JwtRequirement] = []
    for i, (rule, origin) in enumerate(rules):
        name = f"origins-{i}"
        out.config.providers[name].CopyFrom(_provider(rule, out.notes))
        out.origins[name] = origin if rule.get("jwks") else replace(origin, note=out.notes[-1])
        either = jwt_pb2.JwtRequirement()
        either.requires_any.requirements.extend([_requirement(name),
                                                 _requirement(allow_missing=True)])
        inner.append(either)
        outer.append(_requirement(name))
    top = out.config.rules.add()
    top.match.prefix = "/"
    if len(inner) == 1:
        top.requires.CopyFrom(inner[0])
    else:
        every = jwt_pb2.JwtRequirement()
        every.requires_all.requirements.extend(inner)
        top.requires.requires_any.requirements.extend([*outer, every])
    return out
