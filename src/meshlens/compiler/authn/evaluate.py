"""What Envoy's jwt_authn filter does with one request, for trace.

Layer: L4. Imports: compiler.authn (the fail-closed JWKS), xDS protos, ``cryptography`` (lazily).

Envoy (``source/extensions/filters/http/jwt_authn``): a token is looked for in each provider's
locations (``from_headers``/``from_params``/``from_cookies``; without any, the
``Authorization: Bearer`` header and the ``access_token`` query parameter). No token: the
``allow_missing`` requirement istiod writes lets the request through, without a payload. A token
is decoded; an issuer no provider has, a malformed token, a signature that does not verify, or a
JWKS nobody can sign for (what istiod writes when it cannot fetch a ``jwksUri``) gives ``401``
with Envoy's message. A verified token's payload (``space_delimited_claims`` split into lists)
is what RBAC's ``request.auth.*`` matchers read. RS256 signatures are checked against an inline
JWKS; other algorithms are reported as not verified and taken as valid. ``exp``/``nbf`` are not
checked (the compiler has no clock).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qsl

from envoy.extensions.filters.http.jwt_authn.v3 import config_pb2 as jwt_pb2

from meshlens.compiler.authn import FAIL_CLOSED_JWKS


@dataclass(slots=True)
class JwtResult:
    """The filter's outcome: a 401 (``status``/``reason``), or the payload (None: no token)."""

    status: int | None = None
    reason: str = ""
    provider: str = ""
    payload: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)


def _b64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _token(p: jwt_pb2.JwtProvider, headers: dict[str, str]) -> str | None:
    """The token in the provider's locations (Envoy's ``JwtLocation`` extractors)."""
    path = headers.get(":path", "")
    query = dict(parse_qsl(path.split("?", 1)[1])) if "?" in path else {}
    locations = [(h.name.lower(), h.value_prefix) for h in p.from_headers]
    params, cookies = list(p.from_params), list(p.from_cookies)
    if not locations and not params and not cookies:
        locations, params = [("authorization", "Bearer ")], ["access_token"]
    for name, prefix in locations:
        value = headers.get(name)
        if value is not None and value.startswith(prefix):
            return value[len(prefix):].strip()
    for name in params:
        if name in query:
            return query[name]
    jar: SimpleCookie = SimpleCookie(headers.get("cookie", ""))
    for name in cookies:
        if name in jar:
            return jar[name].value
    return None


def _rs256_ok(jwks: str, header: dict[str, Any], signed: bytes, sig: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    try:
        keys = json.loads(jwks)
    except ValueError:
        return False
    for key in keys.get("keys", []) if isinstance(keys, dict) else []:
        if not isinstance(key, dict) or key.get("kty") != "RSA":
            continue
        if header.get("kid") and key.get("kid") and key["kid"] != header["kid"]:
            continue
        try:
            pub = rsa.RSAPublicNumbers(int.from_bytes(_b64(key["e"]), "big"),
                                       int.from_bytes(_b64(key["n"]), "big")).public_key()
            pub.verify(sig, signed, padding.PKCS1v15(), hashes.SHA256())
            return True
        except (InvalidSignature, KeyError, ValueError):
            continue
    return False


def _normalize(payload: dict[str, Any], claims: list[str]) -> dict[str, Any]:
    out = dict(payload)
    for c in claims:
        if isinstance(out.get(c), str):
            out[c] = out[c].split()
    return out


def run_jwt_authn(cfg: jwt_pb2.JwtAuthentication, headers: dict[str, str]) -> JwtResult:
    """The verdict of the jwt_authn filter ``cfg`` (as istiod writes it) for a request."""
    for name in sorted(cfg.providers):
        p = cfg.providers[name]
        token = _token(p, headers)
        if token is None:
            continue
        parts = token.split(".")
        try:
            header = json.loads(_b64(parts[0]))
            payload = json.loads(_b64(parts[1]))
            sig = _b64(parts[2])
        except (IndexError, ValueError):
            return JwtResult(401, "Jwt is not in the form of Header.Payload.Signature with two "
                                  "dots and 3 sections", name)
        issuer = payload.get("iss") if isinstance(payload, dict) else None
        match = next((n for n in sorted(cfg.providers) if cfg.providers[n].issuer == issuer), None)
        if match is None:
            return JwtResult(401, f"Jwt issuer is not configured (token issuer {issuer!r})", name)
        prov = cfg.providers[match]
        jwks = prov.local_jwks.inline_string
        if jwks == FAIL_CLOSED_JWKS:
            return JwtResult(401, "Jwt verification fails (the JWKS is the fail-closed key istiod "
                                  "writes when it cannot fetch jwksUri)", match)
        out = JwtResult(provider=match,
                        payload=_normalize(payload, list(prov.normalize_payload_in_metadata
                                                         .space_delimited_claims)))
        if header.get("alg") == "RS256":
            if not _rs256_ok(jwks, header, f"{parts[0]}.{parts[1]}".encode(), sig):
                return JwtResult(401, "Jwt verification fails", match)
        else:
            out.notes.append(f"{header.get('alg')} signature not verified by meshlens: taken as valid")
        if prov.audiences and not set(_list(payload.get("aud"))) & set(prov.audiences):
            return JwtResult(401, "Audiences in Jwt are not allowed", match)
        return out
    return JwtResult()


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]
