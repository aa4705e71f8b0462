"""RequestAuthentication: read (schema, webhook) and compiled to istiod's jwt_authn filter."""

from __future__ import annotations

from typing import Any

from envoy.extensions.filters.http.jwt_authn.v3 import config_pb2 as jwt_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)

from meshlens.compiler.authn import FAIL_CLOSED_JWKS, space_delimited_claims
from meshlens.pipeline import compile_string, load_string

WORKLOAD = """
apiVersion: v1
kind: Namespace
metadata: {name: foo, labels: {istio-injection: enabled}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: httpbin, namespace: foo}
spec:
  selector: {matchLabels: {app: httpbin}}
  template:
    metadata: {labels: {app: httpbin}}
    spec: {containers: [{name: httpbin, image: httpbin, ports: [{containerPort: 8080}]}]}
---
apiVersion: v1
kind: Service
metadata: {name: httpbin, namespace: foo}
spec:
  selector: {app: httpbin}
  ports: [{name: http, port: 8000, targetPort: 8080}, {name: tcp, port: 9000}]
"""
JWKS = '{"keys":[{"kty":"RSA","e":"AQAB","n":"abc"}]}'


def _ra(rules: str, name: str = "jwt", ns: str = "foo", selector: str = "app: httpbin") -> str:
    return (f"---\napiVersion: security.istio.io/v1\nkind: RequestAuthentication\n"
            f"metadata: {{name: {name}, namespace: {ns}}}\nspec:\n  selector: {{matchLabels: {{{selector}}}}}\n"
            f"  jwtRules:\n{rules}")


def _http_filters(text: str) -> list[tuple[str, Any]]:
    result = compile_string(WORKLOAD + text, "deploy/httpbin.foo")
    vi = next(x for x in result.listeners or [] if x.name == "virtualInbound")
    chain = next(c for c in vi.filter_chains if c.name == "0.0.0.0_8080")
    h = hcm_pb2.HttpConnectionManager()
    chain.filters[-1].typed_config.Unpack(h)
    return [(f.name, f.typed_config) for f in h.http_filters]


def _jwt(text: str) -> jwt_pb2.JwtAuthentication:
    cfg = jwt_pb2.JwtAuthentication()
    any_cfg = next(c for n, c in _http_filters(text) if n == "envoy.filters.http.jwt_authn")
    any_cfg.Unpack(cfg)
    return cfg


def test_no_request_authentication_no_jwt_filter() -> None:
    assert "envoy.filters.http.jwt_authn" not in [n for n, _ in _http_filters("")]


def test_one_rule_allows_a_missing_token_and_sits_after_metadata_exchange() -> None:
    text = _ra(f"  - issuer: a.example.com\n    jwks: '{JWKS}'\n")
    names = [n for n, _ in _http_filters(text)]
    assert names[:2] == ["istio.metadata_exchange", "envoy.filters.http.jwt_authn"]
    cfg = _jwt(text)
    assert cfg.bypass_cors_preflight
    req = cfg.rules[0].requires.requires_any.requirements
    assert [r.WhichOneof("requires_type") for r in req] == ["provider_name", "allow_missing"]
    p = cfg.providers["origins-0"]
    assert (p.issuer, p.payload_in_metadata, p.local_jwks.inline_string) == ("a.example.com", "payload", JWKS)
    assert list(p.normalize_payload_in_metadata.space_delimited_claims) == ["permission", "scope"]
    assert not p.clear_route_cache  # sidecars: JwtFilter(clearRouteCache=false)


def test_rules_sorted_by_issuer_any_provider_or_all_valid_or_missing() -> None:
    text = _ra(f"  - issuer: z.example.com\n    jwks: '{JWKS}'\n  - issuer: a.example.com\n    jwks: '{JWKS}'\n")
    cfg = _jwt(text)
    assert [cfg.providers[f"origins-{i}"].issuer for i in range(2)] == ["a.example.com", "z.example.com"]
    outer = cfg.rules[0].requires.requires_any.requirements
    assert [r.provider_name for r in outer[:2]] == ["origins-0", "origins-1"]
    assert len(outer[2].requires_all.requirements) == 2


def test_locations_outputs_and_a_jwks_uri_written_fail_closed() -> None:
    text = _ra("  - issuer: b.example.com\n    jwksUri: https://keys.example.com/jwks.json\n"
               "    fromHeaders: [{name: x-jwt, prefix: 'Bearer '}]\n    fromParams: [tok]\n"
               "    fromCookies: [sess]\n    outputPayloadToHeader: x-payload\n"
               "    forwardOriginalToken: true\n    outputClaimToHeaders: [{header: x-sub, claim: sub}]\n"
               "    spaceDelimitedClaims: [roles]\n")
    p = _jwt(text).providers["origins-0"]
    assert [(h.name, h.value_prefix) for h in p.from_headers] == [("x-jwt", "Bearer ")]
    assert (list(p.from_params), list(p.from_cookies)) == (["tok"], ["sess"])
    assert (p.forward_payload_header, p.forward) == ("x-payload", True)
    assert [(c.header_name, c.claim_name) for c in p.claim_to_headers] == [("x-sub", "sub")]
    assert p.local_jwks.inline_string == FAIL_CLOSED_JWKS
    assert space_delimited_claims(["roles", "scope"]) == ["permission", "roles", "scope"]


def test_root_namespace_policy_applies_other_selector_does_not() -> None:
    text = (_ra(f"  - issuer: root.example.com\n    jwks: '{JWKS}'\n", name="r", ns="istio-system",
                selector="app: httpbin")
            + _ra(f"  - issuer: other.example.com\n    jwks: '{JWKS}'\n", name="o", selector="app: x"))
    assert [p.issuer for p in _jwt(text).providers.values()] == ["root.example.com"]


def test_webhook_and_schema_reject_bad_rules() -> None:
    text = WORKLOAD + _ra("  - issuer: a\n    jwksUri: ftp://x/y\n    jwks: '{}'\n")
    messages = [d.message for d in load_string(text).diagnostics]
    assert any("url must have scheme http:// or https://" in m for m in messages)
    assert any("only one of jwks or jwksUri can be set" in m for m in messages)
    bad_jwks = WORKLOAD + _ra("  - issuer: a\n    jwks: 'not json'\n")
    assert any("jwks parse error" in d.message for d in load_string(bad_jwks).diagnostics)
