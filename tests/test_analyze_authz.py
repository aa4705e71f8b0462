"""meshlens's own checks on AuthorizationPolicy and EnvoyFilter, proven on compiled filters."""

from __future__ import annotations

from meshlens.analyze import by_name, run
from meshlens.pipeline import load_string
from test_authn import WORKLOAD

HEAD = "---\napiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"


def codes(text: str) -> list[tuple[str, str]]:
    loaded = load_string(WORKLOAD + text, "a.yaml")
    found = run(loaded, proxies=(), analyzers=by_name(["meshlens.AuthorizationEffect"]),
                include_input_diagnostics=False)
    return [(f.code, f.message) for f in found]


def test_allow_without_rules_denies_everything() -> None:
    found = codes(HEAD + "metadata: {name: lockdown, namespace: foo}\nspec: {}\n")
    assert [c for c, _ in found] == ["ML1300"]
    assert "httpbin" in found[0][1]


def test_allow_with_rules_is_fine_on_http_only_workload() -> None:
    text = HEAD + ("metadata: {name: ok, namespace: foo}\nspec:\n  rules:\n"
                   "  - to: [{operation: {ports: ['8080', '9000']}}]\n")
    assert codes(text) == []


def test_http_only_allow_rules_deny_the_tcp_port() -> None:
    text = HEAD + ("metadata: {name: get-only, namespace: foo}\nspec:\n  rules:\n"
                   "  - to: [{operation: {methods: [GET]}}]\n")
    found = codes(text)
    assert [c for c, _ in found] == ["ML1301"]
    assert "port 9000" in found[0][1]


def test_identity_rule_without_mtls_never_matches() -> None:
    pa = ("---\napiVersion: security.istio.io/v1\nkind: PeerAuthentication\n"
          "metadata: {name: mtls-off, namespace: foo}\nspec: {mtls: {mode: DISABLE}}\n")
    text = pa + HEAD + ("metadata: {name: from-ns, namespace: foo}\nspec:\n  rules:\n"
                        "  - from: [{source: {namespaces: [foo]}}]\n    to: [{operation: {ports: ['9000']}}]\n")
    assert "ML1302" in [c for c, _ in codes(text)]


def test_envoyfilter_patch_that_matches_nothing() -> None:
    ef = """---
apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: {name: ef, namespace: foo}
spec:
  configPatches:
  - applyTo: CLUSTER
    match: {context: SIDECAR_OUTBOUND, cluster: {service: nothing.example.com}}
    patch: {operation: MERGE, value: {connect_timeout: 1s}}
  - applyTo: CLUSTER
    match: {context: SIDECAR_OUTBOUND, cluster: {portNumber: 8000}}
    patch: {operation: MERGE, value: {connect_timeout: 1s}}
"""
    found = codes(ef)
    assert [c for c, _ in found] == ["ML1303"]
    assert "configPatches[0]" in found[0][1]


JWT_ROUTE = """---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: claims, namespace: foo}
spec:
  hosts: [httpbin.example.com]
  gateways: [gw]
  http:
  - match: [{headers: {"@request.auth.claims[groups]": {exact: admin}}}]
    route: [{destination: {host: httpbin.foo.svc.cluster.local}}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: foo}
spec:
  selector: {app: httpbin}
  servers: [{port: {number: 8080, name: http, protocol: HTTP}, hosts: ["*"]}]
"""
REQUEST_AUTHN = """---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: jwt, namespace: foo}
spec:
  selector: {matchLabels: {app: httpbin}}
  jwtRules: [{issuer: issuer.example.com, jwksUri: https://issuer.example.com/jwks}]
"""


def test_jwt_claim_route_needs_request_authentication_on_the_gateway_pods() -> None:
    """istioctl `JWTClaimRouteAnalyzer` (IST0149)."""
    loaded = load_string(WORKLOAD + JWT_ROUTE, "a.yaml")
    found = run(loaded, proxies=(), analyzers=by_name(["virtualservice.JWTClaimRouteAnalyzer"]),
                include_input_diagnostics=False)
    assert [(f.code, f.istio_code) for f in found] == [("ML1162", "IST0149")]
    assert "@request.auth.claims[groups]" in found[0].message and "foo/gw" in found[0].message
    quiet = load_string(WORKLOAD + JWT_ROUTE + REQUEST_AUTHN, "a.yaml")
    assert run(quiet, proxies=(), analyzers=by_name(["virtualservice.JWTClaimRouteAnalyzer"]),
               include_input_diagnostics=False) == []
