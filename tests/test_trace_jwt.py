"""trace through jwt_authn: no token → RBAC decides (403), a bad token → 401, a good one passes."""

from __future__ import annotations

import base64
import json

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from meshlens.pipeline import compile_for, load_string, server_compiler
from meshlens.simulate import Request, Trace, simulate
from test_authn import WORKLOAD

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _jwks(key: rsa.RSAPrivateKey) -> str:
    n = key.public_key().public_numbers().n
    return json.dumps({"keys": [{"kty": "RSA", "e": "AQAB",
                                 "n": _b64(n.to_bytes((n.bit_length() + 7) // 8, "big"))}]})


def token(claims: dict[str, object], key: rsa.RSAPrivateKey = KEY) -> str:
    head = _b64(json.dumps({"alg": "RS256", "typ": "JWT"}).encode())
    body = _b64(json.dumps(claims).encode())
    sig = key.sign(f"{head}.{body}".encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{head}.{body}.{_b64(sig)}"


POLICIES = f"""
---
apiVersion: v1
kind: ServiceAccount
metadata: {{name: curl, namespace: foo}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: curl, namespace: foo}}
spec:
  selector: {{matchLabels: {{app: curl}}}}
  template:
    metadata: {{labels: {{app: curl}}}}
    spec: {{serviceAccountName: curl, containers: [{{name: c, image: curl}}]}}
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {{name: jwt, namespace: foo}}
spec:
  selector: {{matchLabels: {{app: httpbin}}}}
  jwtRules:
  - issuer: issuer.example.com
    jwks: '{_jwks(KEY)}'
  - issuer: remote.example.com
    jwksUri: https://remote.example.com/jwks.json
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {{name: require-jwt, namespace: foo}}
spec:
  selector: {{matchLabels: {{app: httpbin}}}}
  rules:
  - from: [{{source: {{requestPrincipals: ["issuer.example.com/*"]}}}}]
    when: [{{key: "request.auth.claims[groups]", values: [admins]}}]
"""


def trace(*headers: str) -> Trace:
    loaded = load_string(WORKLOAD + POLICIES, "jwt.yaml")
    result = compile_for(loaded, "deploy/curl.foo")
    return simulate(result, Request.parse("http://httpbin.foo:8000/get", headers=list(headers)),
                    server=server_compiler(loaded))


def test_no_token_passes_jwt_authn_and_rbac_answers_403() -> None:
    t = trace()
    assert (t.verdict, t.status) == ("rbac_access_denied", 403)
    assert t.fix is not None and t.fix["resource"] == "AuthorizationPolicy foo/require-jwt"


def test_valid_token_with_the_claim_is_allowed() -> None:
    good = token({"iss": "issuer.example.com", "sub": "alice", "groups": ["admins"]})
    t = trace(f"authorization: Bearer {good}")
    assert t.verdict == "ok", t.reason
    assert t.layers[-1].detail["rbac"]["jwt"]["payload"]["sub"] == "alice"


def test_valid_token_without_the_claim_is_403() -> None:
    t = trace(f"authorization: Bearer {token({'iss': 'issuer.example.com', 'sub': 'bob', 'groups': 'users'})}")
    assert t.status == 403


def test_token_signed_by_another_key_is_401() -> None:
    bad = token({"iss": "issuer.example.com", "sub": "alice", "groups": ["admins"]}, OTHER)
    t = trace(f"authorization: Bearer {bad}")
    assert (t.verdict, t.status) == ("jwt_authn_access_denied", 401)
    assert "Jwt verification fails" in t.reason
    assert t.fix is not None and t.fix["resource"] == "RequestAuthentication foo/jwt"


def test_unknown_issuer_and_unfetched_jwks_uri_are_401() -> None:
    assert trace(f"authorization: Bearer {token({'iss': 'nobody'})}").status == 401
    t = trace(f"authorization: Bearer {token({'iss': 'remote.example.com', 'sub': 'x'})}")
    assert t.status == 401 and "fail-closed" in t.reason
