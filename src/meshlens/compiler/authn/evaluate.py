"""What Envoy's jwt_authn filter does with one request, for trace.

Layer: L4. Imports: compiler.authn (the fail-closed JWKS, jws), xDS protos.

Envoy (``source/extensions/filters/http/jwt_authn``, `AuthenticatorImpl::startVerify`): a token
is looked for in each provider's locations (``from_headers``/``from_params``/``from_cookies``;
without any, the ``Authorization: Bearer`` header and the ``access_token`` query parameter). No
token: the ``allow_missing`` requirement istiod writes lets the request through, without a
payload. A token is then checked in Envoy's order, each failure a ``401`` with Envoy's message:
parsed (three sections, JSON header and payload, an ``alg`` Envoy implements, integer
``exp``/``nbf``), its issuer configured, its time (`Jwt::verifyTimeConstraint`: ``nbf`` later
than now plus the clock skew is "Jwt not yet valid", ``exp`` earlier than now minus the skew is
"Jwt is expired"; the skew is the provider's ``clock_skew_seconds``, 60 s when unset as istiod
leaves it), its audiences, then its signature against the inline JWKS (:mod:`.jws`: RS, PS, ES,
HS and EdDSA); a JWKS nobody can sign for is what istiod writes when it cannot fetch a
``jwksUri``. A verified token's payload (``space_delimited_claims`` split into lists) is what
RBAC's ``request.auth.*`` matchers read.

``now`` (seconds since the epoch) is the caller's: the compiler reads no clock. Without it the
time is not checked, and a token with ``exp``/``nbf`` says so in its notes. Without the
``cryptography`` package an asymmetric signature is not checked either, and the notes say so.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qsl

from envoy.extensions.filters.http.jwt_authn.v3 import config_pb2 as jwt_pb2

from meshlens.compiler.authn import FAIL_CLOSED_JWKS
from meshlens.compiler.authn.jws import ALGORITHMS, CryptoMissing, b64url, verify_signature

DEFAULT_CLOCK_SKEW = 60  # JwtProvider.clock_skew_seconds when unset
BAD_FORMAT = "Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections"


@dataclass(slots=True)
class JwtResult:
    """The filter's outcome: a 401 (``status``/``reason``), or the payload (None: no token)."""

    status: int | None = None
    reason: str = ""
    provider: str = ""
    payload: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)


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


def _normalize(payload: dict[str, Any], claims: list[str]) -> dict[str, Any]:
    out = dict(payload)
    for c in claims:
        if isinstance(out.get(c), str):
            out[c] = out[c].split()
    return out


def _decode(part: str) -> bytes | None:
    """absl's ``WebSafeBase64Unescape``: None for a character outside base64url."""
    if not re.fullmatch(r"[A-Za-z0-9_\-]*=*", part):
        return None
    try:
        return b64url(part.rstrip("="))
    except ValueError:
        return None


def _section(part: str, what: str) -> dict[str, Any] | str:
    """A JSON object section of the token (``header``/``payload``), or Envoy's message."""
    raw = _decode(part)
    if raw is None:
        return f"Jwt {what} is an invalid Base64url encoded"
    try:
        value = json.loads(raw)
    except ValueError:
        value = None
    return value if isinstance(value, dict) else f"Jwt {what} is an invalid JSON"


def _uint(value: Any) -> str:
    """``StructUtils::GetUInt64``: "" (absent or fine), "type" or "range"."""
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "type"
    return "range" if value < 0 or value >= 2**64 else ""


def _parse(token: str) -> tuple[dict[str, Any], dict[str, Any], bytes, str] | str:
    """`Jwt::parseFromString`: (header, payload, signature, signed part) or Envoy's message."""
    parts = [x for x in token.split(".") if x]
    if len(parts) != 3:
        return BAD_FORMAT
    header = _section(parts[0], "header")
    if isinstance(header, str):
        return header
    if not isinstance(header.get("alg"), str):
        return "Jwt header [alg] field is required and must be a string"
    if header["alg"] not in ALGORITHMS:
        return "Jwt header [alg] is not supported"
    if "kid" in header and not isinstance(header["kid"], str):
        return "Jwt header [kid] field is not a string"
    payload = _section(parts[1], "payload")
    if isinstance(payload, str):
        return payload
    for claim in ("iss", "sub"):
        if claim in payload and not isinstance(payload[claim], str):
            return f"Jwt payload [{claim}] field is not a string"
    for claim in ("iat", "nbf", "exp"):
        bad = _uint(payload.get(claim))
        if bad:
            return f"Jwt payload [{claim}] field is not " + (
                "an integer" if bad == "type" else "a positive 64 bit integer")
    if "jti" in payload and not isinstance(payload["jti"], str):
        return "Jwt payload [jti] field is not a string"
    aud = payload.get("aud")
    if aud is not None and not (isinstance(aud, str) or isinstance(aud, list)
                                and all(isinstance(a, str) for a in aud)):
        return "Jwt payload [aud] field is not a string or string list"
    sig = _decode(parts[2])
    if sig is None:
        return "Jwt signature is an invalid Base64url encoded"
    return header, payload, sig, f"{parts[0]}.{parts[1]}"


def _time(payload: dict[str, Any], now: float, skew: int) -> str:
    """`Jwt::verifyTimeConstraint`: "" when the token is in its time window."""
    nbf, exp = int(payload.get("nbf") or 0), int(payload.get("exp") or 0)
    if int(now) + skew < nbf:
        return "Jwt not yet valid"
    if exp and int(now) > exp + skew:
        return "Jwt is expired"
    return ""


def run_jwt_authn(cfg: jwt_pb2.JwtAuthentication, headers: dict[str, str], *,
                  now: float | None = None) -> JwtResult:
    """The verdict of the jwt_authn filter ``cfg`` (as istiod writes it) for a request at ``now``."""
    for name in sorted(cfg.providers):
        p = cfg.providers[name]
        token = _token(p, headers)
        if token is None:
            continue
        parsed = _parse(token)
        if isinstance(parsed, str):
            return JwtResult(401, parsed, name)
        header, payload, sig, signed = parsed
        issuer = payload.get("iss")
        match = next((n for n in sorted(cfg.providers) if cfg.providers[n].issuer == issuer), None)
        if match is None:
            return JwtResult(401, f"Jwt issuer is not configured (token issuer {issuer!r})", name)
        prov = cfg.providers[match]
        out = JwtResult(provider=match,
                        payload=_normalize(payload, list(prov.normalize_payload_in_metadata
                                                         .space_delimited_claims)))
        if now is not None:
            late = _time(payload, now, prov.clock_skew_seconds or DEFAULT_CLOCK_SKEW)
            if late:
                return JwtResult(401, late, match)
        elif "exp" in payload or "nbf" in payload:
            out.notes.append("exp/nbf not checked: no time given (trace --now)")
        if prov.audiences and not set(_list(payload.get("aud"))) & set(prov.audiences):
            return JwtResult(401, "Audiences in Jwt are not allowed", match)
        jwks = prov.local_jwks.inline_string
        if jwks == FAIL_CLOSED_JWKS:
            return JwtResult(401, "Jwt verification fails (the JWKS is the fail-closed key istiod "
                                  "writes when it cannot fetch jwksUri)", match)
        try:
            keys = json.loads(jwks).get("keys") or []
        except (ValueError, AttributeError):
            keys = []
        try:
            failed = verify_signature(keys if isinstance(keys, list) else [], header,
                                      signed.encode(), sig)
        except CryptoMissing:
            out.notes.append(f"{header['alg']} signature not verified: meshlens needs the "
                             "cryptography package (pip install 'meshlens[lab]')")
            failed = ""
        if failed:
            return JwtResult(401, failed, match)
        return out
    return JwtResult()


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]
