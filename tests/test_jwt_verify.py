"""Envoy's jwt_authn checks as trace runs them: time (exp/nbf with the clock skew), every signature
algorithm Envoy verifies against a JWKS, parse errors and the order of the checks.

Envoy ``source/common/jwt`` (`Jwt::parseFromString`, `Jwt::verifyTimeConstraint`,
`verifyJwtWithoutTimeChecking`, status strings of ``status.cc``) and
``extensions/filters/http/jwt_authn/authenticator.cc`` (issuer, time, audiences, then the key).
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, utils
from envoy.extensions.filters.http.jwt_authn.v3 import config_pb2 as jwt_pb2

from meshlens.compiler.authn.evaluate import run_jwt_authn
from meshlens.compiler.authn.jws import KID_ALG_MISMATCH, VERIFY_FAILS
from meshlens.pipeline import compile_for, load_string, server_compiler
from meshlens.simulate import Request, simulate
from test_authn import WORKLOAD
from test_trace_jwt import POLICIES, token

ISSUER = "issuer.example.com"
NOW = 1_800_000_000
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEYS = {"ES256": (ec.SECP256R1(), "P-256", 32), "ES384": (ec.SECP384R1(), "P-384", 48),
           "ES512": (ec.SECP521R1(), "P-521", 66)}
EC_PRIVATE = {alg: ec.generate_private_key(curve) for alg, (curve, _, _) in EC_KEYS.items()}
ED_KEY = ed25519.Ed25519PrivateKey.generate()
HMAC_SECRET = b"a shared secret of some length!!"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _int(n: int, size: int | None = None) -> str:
    return b64(n.to_bytes(size or (n.bit_length() + 7) // 8, "big"))


def jwk(alg: str, **extra: Any) -> dict[str, Any]:
    """The public JWK for ``alg``'s test key."""
    if alg[:2] in ("RS", "PS"):
        n = RSA_KEY.public_key().public_numbers().n
        return {"kty": "RSA", "e": "AQAB", "n": _int(n), **extra}
    if alg in EC_KEYS:
        nums = EC_PRIVATE[alg].public_key().public_numbers()
        _, crv, size = EC_KEYS[alg]
        return {"kty": "EC", "crv": crv, "x": _int(nums.x, size), "y": _int(nums.y, size), **extra}
    if alg == "EdDSA":
        from cryptography.hazmat.primitives import serialization

        raw = ED_KEY.public_key().public_bytes(serialization.Encoding.Raw,
                                               serialization.PublicFormat.Raw)
        return {"kty": "OKP", "crv": "Ed25519", "x": b64(raw), **extra}
    return {"kty": "oct", "k": b64(HMAC_SECRET), **extra}


def sign(alg: str, claims: dict[str, Any], header: dict[str, Any] | None = None) -> str:
    head = b64(json.dumps({"alg": alg, "typ": "JWT", **(header or {})}).encode())
    body = b64(json.dumps(claims).encode())
    data = f"{head}.{body}".encode()
    digest = {"384": hashes.SHA384(), "512": hashes.SHA512()}.get(alg[-3:], hashes.SHA256())
    if alg.startswith("RS"):
        sig = RSA_KEY.sign(data, padding.PKCS1v15(), digest)
    elif alg.startswith("PS"):
        sig = RSA_KEY.sign(data, padding.PSS(mgf=padding.MGF1(digest),
                                             salt_length=padding.PSS.DIGEST_LENGTH), digest)
    elif alg in EC_KEYS:
        r, s = utils.decode_dss_signature(EC_PRIVATE[alg].sign(data, ec.ECDSA(digest)))
        size = EC_KEYS[alg][2]
        sig = r.to_bytes(size, "big") + s.to_bytes(size, "big")
    elif alg == "EdDSA":
        sig = ED_KEY.sign(data)
    else:
        import hashlib
        import hmac

        sig = hmac.new(HMAC_SECRET, data, {"384": hashlib.sha384, "512": hashlib.sha512}
                       .get(alg[-3:], hashlib.sha256)).digest()
    return f"{head}.{body}.{b64(sig)}"


def config(keys: list[dict[str, Any]], **provider: Any) -> jwt_pb2.JwtAuthentication:
    cfg = jwt_pb2.JwtAuthentication()
    p = cfg.providers["origins-0"]
    p.issuer = ISSUER
    p.local_jwks.inline_string = json.dumps({"keys": keys})
    for k, v in provider.items():
        if isinstance(v, list):
            getattr(p, k).extend(v)
        else:
            setattr(p, k, v)
    return cfg


def verdict(cfg: jwt_pb2.JwtAuthentication, jwt: str, now: float | None = NOW) -> tuple[int | None, str]:
    r = run_jwt_authn(cfg, {"authorization": f"Bearer {jwt}"}, now=now)
    return r.status, r.reason


ALGS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512",
        "EdDSA", "HS256", "HS384", "HS512")


@pytest.mark.parametrize("alg", ALGS)
def test_each_algorithm_verifies_with_its_key_and_fails_with_a_tampered_payload(alg: str) -> None:
    cfg = config([jwk(alg)])
    good = sign(alg, {"iss": ISSUER, "sub": "alice"})
    assert verdict(cfg, good) == (None, "")
    head, _, sig = good.split(".")
    forged = f"{head}.{b64(json.dumps({'iss': ISSUER, 'sub': 'mallory'}).encode())}.{sig}"
    status, reason = verdict(cfg, forged)
    assert status == 401
    assert reason in (VERIFY_FAILS, "Jwt ED25519 signature is wrong length")


def test_the_key_type_picks_the_check_and_kid_alg_filter_keys() -> None:
    """`verifyJwtWithoutTimeChecking`: an RSA key never verifies an ES256 token; a key whose kid
    or alg differs is skipped, and no key left is JwksKidAlgMismatch."""
    es = sign("ES256", {"iss": ISSUER})
    assert verdict(config([jwk("RS256")]), es) == (401, VERIFY_FAILS)
    assert verdict(config([jwk("RS256"), jwk("ES256")]), es) == (None, "")
    kid = sign("RS256", {"iss": ISSUER}, {"kid": "k2"})
    assert verdict(config([jwk("RS256", kid="k1")]), kid) == (401, KID_ALG_MISMATCH)
    assert verdict(config([jwk("RS256", kid="k1"), jwk("RS256", kid="k2")]), kid) == (None, "")
    assert verdict(config([{**jwk("RS256"), "alg": "RS384"}]), sign("RS256", {"iss": ISSUER})) == \
        (401, KID_ALG_MISMATCH)


def test_expired_and_not_yet_valid_with_the_default_skew_of_60_seconds() -> None:
    cfg = config([jwk("RS256")])
    assert verdict(cfg, sign("RS256", {"iss": ISSUER, "exp": NOW - 60})) == (None, "")
    assert verdict(cfg, sign("RS256", {"iss": ISSUER, "exp": NOW - 61})) == (401, "Jwt is expired")
    assert verdict(cfg, sign("RS256", {"iss": ISSUER, "nbf": NOW + 60})) == (None, "")
    assert verdict(cfg, sign("RS256", {"iss": ISSUER, "nbf": NOW + 61})) == (401, "Jwt not yet valid")
    # a provider's own clock_skew_seconds
    assert verdict(config([jwk("RS256")], clock_skew_seconds=5),
                   sign("RS256", {"iss": ISSUER, "exp": NOW - 6})) == (401, "Jwt is expired")


def test_time_is_checked_before_audiences_and_signature() -> None:
    """authenticator.cc: issuer, then time, then audiences, then the key."""
    cfg = config([jwk("RS256")], audiences=["svc"])
    expired_wrong_aud = sign("RS256", {"iss": ISSUER, "exp": NOW - 3600, "aud": "other"})
    assert verdict(cfg, expired_wrong_aud) == (401, "Jwt is expired")
    assert verdict(cfg, sign("RS256", {"iss": ISSUER, "aud": "other"})) == \
        (401, "Audiences in Jwt are not allowed")
    forged_wrong_aud = sign("RS256", {"iss": ISSUER, "aud": "other"})[:-4] + "AAAA"
    assert verdict(cfg, forged_wrong_aud) == (401, "Audiences in Jwt are not allowed")


def test_without_a_time_exp_is_not_checked_and_the_notes_say_so() -> None:
    r = run_jwt_authn(config([jwk("RS256")]),
                      {"authorization": f"Bearer {sign('RS256', {'iss': ISSUER, 'exp': 1})}"})
    assert r.status is None and any("exp/nbf not checked" in n for n in r.notes)


@pytest.mark.parametrize(("jwt", "message"), [
    ("a.b", "Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections"),
    ("!!.e30.c2ln", "Jwt header is an invalid Base64url encoded"),
    (f"{b64(b'[1]')}.e30.c2ln", "Jwt header is an invalid JSON"),
    (f"{b64(b'{}')}.e30.c2ln", "Jwt header [alg] field is required and must be a string"),
    (f"{b64(json.dumps({'alg': 'none'}).encode())}.e30.c2ln", "Jwt header [alg] is not supported"),
    (f"{b64(json.dumps({'alg': 'RS256'}).encode())}.{b64(json.dumps({'exp': 'soon'}).encode())}.c2ln",
     "Jwt payload [exp] field is not an integer"),
    (f"{b64(json.dumps({'alg': 'RS256'}).encode())}.{b64(json.dumps({'nbf': -1}).encode())}.c2ln",
     "Jwt payload [nbf] field is not a positive 64 bit integer"),
    (f"{b64(json.dumps({'alg': 'RS256'}).encode())}.{b64(json.dumps({'iss': 7}).encode())}.c2ln",
     "Jwt payload [iss] field is not a string"),
])
def test_parse_errors_carry_envoys_messages(jwt: str, message: str) -> None:
    assert verdict(config([jwk("RS256")]), jwt) == (401, message)


# --- through trace -------------------------------------------------------------------------------

def _trace(jwt: str, now: float | None) -> Any:
    loaded = load_string(WORKLOAD + POLICIES, "jwt.yaml")
    req = Request.parse("http://httpbin.foo:8000/get", headers=[f"authorization: Bearer {jwt}"],
                        now=now)
    return simulate(compile_for(loaded, "deploy/curl.foo"), req, server=server_compiler(loaded))


def test_trace_answers_401_for_an_expired_token() -> None:
    expired = token({"iss": ISSUER, "sub": "alice", "groups": ["admins"], "exp": NOW - 3600})
    t = _trace(expired, NOW)
    assert (t.verdict, t.status) == ("jwt_authn_access_denied", 401)
    assert "Jwt is expired" in t.reason
    assert _trace(expired, NOW - 7200).verdict == "ok"


def test_trace_cli_checks_exp_against_now_or_the_given_time(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "m.yaml"
    path.write_text(WORKLOAD + POLICIES)
    expired = token({"iss": ISSUER, "sub": "alice", "groups": ["admins"], "exp": 1_000_000_000})
    base = [sys.executable, "-m", "meshlens", "trace", "deploy/curl.foo",
            "http://httpbin.foo:8000/get", "-f", str(path), "-H", f"authorization: Bearer {expired}",
            "-o", "json"]
    late = subprocess.run(base, capture_output=True, text=True, check=False)
    assert late.returncode == 1 and json.loads(late.stdout)["status"] == 401
    early = subprocess.run(base + ["--now", "2001-09-01T00:00:00Z"], capture_output=True, text=True,
                           check=False)
    assert early.returncode == 0, early.stdout + early.stderr


def test_without_cryptography_the_signature_is_reported_unverified(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The core install has no ``cryptography``: the trace says so instead of failing."""
    monkeypatch.setitem(sys.modules, "cryptography.exceptions", None)
    r = run_jwt_authn(config([jwk("RS256")]),
                      {"authorization": f"Bearer {sign('RS256', {'iss': ISSUER})}"}, now=NOW)
    assert r.status is None and any("not verified" in n and "cryptography" in n for n in r.notes)
    # HMAC needs only the standard library and is still checked
    forged = sign("HS256", {"iss": ISSUER})[:-4] + "AAAA"
    assert verdict(config([jwk("HS256")]), forged) == (401, VERIFY_FAILS)
