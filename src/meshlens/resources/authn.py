"""RequestAuthentication (security.istio.io v1/v1beta1): CRD schema and istiod's webhook checks.

Layer: L2. Imports: resources.schema (the DSL), resources.authz (selector / targetRef nodes).

The schema is transcribed from the RequestAuthentication CRD in ``tests/conformance/crds``; the
webhook half mirrors ``pkg/config/validation/validation.go:ValidateRequestAuthentication``
(`validateJwtRule`, `warnPrivateJwksKeys`). ``jwks`` is checked as JSON holding a key or a
``keys`` list (istiod parses it with ``jwx``: a JWKS JSON meshlens accepts but jwx rejects for a
bad key value is not caught here).
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlsplit

from meshlens.resources.authz import ONE_SELECTOR, TARGET_REF
from meshlens.resources.schema.cel import DURATION_1MS, Rule
from meshlens.resources.schema.common import BOOL, MATCH_SELECTOR, STR
from meshlens.resources.schema.dsl import List, Obj, Str, req
from meshlens.source import FieldPath

__all__ = ["REQUEST_AUTHENTICATION", "webhook_findings"]

NON_EMPTY = Rule("minLength: 1", "should be at least 1 chars long", lambda v: len(v) >= 1)
_HEADER = re.compile(r"^[-_A-Za-z0-9]+$")
HEADER_PATTERN = Rule(_HEADER.pattern, "should match '" + _HEADER.pattern + "'",
                      lambda v: _HEADER.match(v) is not None)
HTTP_SCHEME = Rule('url(self).getScheme() in ["http", "https"]',
                   "url must have scheme http:// or https://",
                   lambda v: urlsplit(v).scheme in ("http", "https"))
ONE_JWKS = Rule("(has(self.jwksUri) ? 1 : 0) + (has(self.jwks_uri) ? 1 : 0) + (has(self.jwks) ? 1 : 0) <= 1",
                "only one of jwks or jwksUri can be set",
                lambda r: sum(1 for k in ("jwksUri", "jwks_uri", "jwks") if k in r) <= 1)
_NE = Str(rules=(NON_EMPTY,))
_URI = Str(max_len=2048, rules=(NON_EMPTY, HTTP_SCHEME))
JWT_RULE = Obj({
    "audiences": List(_NE), "forwardOriginalToken": BOOL, "fromCookies": List(_NE),
    "fromHeaders": List(Obj({"name": req(_NE), "prefix": STR})), "fromParams": List(_NE),
    "issuer": _NE, "jwks": STR, "jwksUri": _URI, "jwks_uri": _URI,
    "outputClaimToHeaders": List(Obj({"claim": req(_NE),
                                      "header": req(Str(rules=(NON_EMPTY, HEADER_PATTERN)))})),
    "outputPayloadToHeader": STR, "spaceDelimitedClaims": List(_NE, max_items=64),
    "timeout": Str(rules=(DURATION_1MS,)),
}, rules=(ONE_JWKS,))
#: The ``spec`` schema of RequestAuthentication.
REQUEST_AUTHENTICATION = Obj({
    "jwtRules": List(JWT_RULE, max_items=4096), "selector": MATCH_SELECTOR,
    "targetRef": TARGET_REF, "targetRefs": List(TARGET_REF, max_items=16),
}, rules=(ONE_SELECTOR,))

_STRICT_HEADER = re.compile(r"^[a-zA-Z0-9!#$%&'*+\-.^_`|~]+$")
_PRIVATE = ("d", "p", "q", "dp", "dq", "qi")


def jwks_uri(rule: dict[str, Any]) -> str:
    """``jwksUri`` (or its old spelling ``jwks_uri``)."""
    return str(rule.get("jwksUri") or rule.get("jwks_uri") or "")


def parse_jwks_uri(uri: str) -> tuple[str, int] | str:
    """`security.ParseJwksURI`: (hostname, port), or the error."""
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError as exc:
        return str(exc)
    if parts.scheme not in ("http", "https"):
        return f'URI scheme "{parts.scheme}" is not supported'
    return parts.hostname or "", port or (80 if parts.scheme == "http" else 443)


def _jwks_keys(text: str) -> list[Any] | None:
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if isinstance(data, dict) and isinstance(data.get("keys"), list):
        return list(data["keys"])
    return [data] if isinstance(data, dict) and "kty" in data else None


def _jwt_rule(p: FieldPath, rule: dict[str, Any]) -> list[tuple[FieldPath, str, bool]]:
    """`validateJwtRule` and `warnPrivateJwksKeys`."""
    out: list[tuple[FieldPath, str, bool]] = []
    for aud in rule.get("audiences") or []:
        if aud == "":
            out.append((p + ("audiences",), "audience must be non-empty string", False))
    uri = jwks_uri(rule)
    if not rule.get("issuer") and not uri:
        out.append((p, "issuer or jwksUri must be non-empty string", False))
    if uri and isinstance(parse_jwks_uri(uri), str):
        out.append((p + ("jwksUri",), str(parse_jwks_uri(uri)), False))
    jwks = rule.get("jwks")
    if jwks:
        keys = _jwks_keys(str(jwks))
        if keys is None:
            out.append((p + ("jwks",), "jwks parse error: failed to parse JWKS", False))
        for i, key in enumerate(keys or []):
            if isinstance(key, dict) and (key.get("kty") == "oct" or any(k in key for k in _PRIVATE)):
                out.append((p + ("jwks",), f"jwks key at index {i} contains private key material; "
                                           "only public keys are used for verification", True))
    for i, h in enumerate(rule.get("outputClaimToHeaders") or []):
        if isinstance(h, dict) and h.get("header") and not _STRICT_HEADER.match(str(h["header"])):
            out.append((p + ("outputClaimToHeaders", i, "header"),
                        f"header name {h['header']} is not a valid header name", False))
    return out


def webhook_findings(obj: dict[str, Any]) -> list[tuple[FieldPath, str, bool]]:
    """istiod's webhook for one RequestAuthentication (`ValidateRequestAuthentication`)."""
    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
    out: list[tuple[FieldPath, str, bool]] = []
    for i, rule in enumerate(spec.get("jwtRules") or []):
        if isinstance(rule, dict):
            out.extend(_jwt_rule(("spec", "jwtRules", i), rule))
    return out
