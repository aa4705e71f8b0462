"""JWT signatures checked against a JWKS, as Envoy's jwt_authn does (``jwt_verify_lib``).

Layer: L4. Imports: stdlib; ``cryptography`` lazily (the ``lab`` extra brings it).

``jwt_verify_lib`` (``verify.cc``, `verifyJwtWithoutTimeChecking`): each key of the JWKS is tried
in order, skipping a key whose ``kid`` differs from the token's (when both have one) or whose
``alg`` differs from the token's; the first key that verifies wins. ``RS256/384/512``: RSA
PKCS#1 v1.5 over SHA-256/384/512; ``PS256/384/512``: RSA-PSS with MGF1 of the same hash (salt
length from the signature); ``ES256/384/512`` (any ``EC`` key): ECDSA over SHA-256/384/512 on
the key's curve, the signature split in halves ``r || s``; an ``OKP`` Ed25519 key whatever the
alg (a signature not 64 bytes long stops with "Jwt ED25519 signature is wrong length");
``HS256/384/512``: HMAC with an ``oct`` key. The key type picks the check, as
`verifyJwtWithoutTimeChecking` does: an RSA key tries RS* and PS* tokens only. No key left after the kid/alg filter is "Jwks doesn't have key to match kid
or alg from Jwt"; keys that do not verify, "Jwt verification fails". Other ``alg`` values are
refused when the token is parsed ("Jwt header [alg] field value is invalid").
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512",
              "HS256", "HS384", "HS512", "EdDSA")
VERIFY_FAILS = "Jwt verification fails"
KID_ALG_MISMATCH = "Jwks doesn't have key to match kid or alg from Jwt"
ED25519_LENGTH = "Jwt ED25519 signature is wrong length"


class _WrongLength(Exception):
    """An Ed25519 signature that is not 64 bytes: Envoy stops at the first OKP key."""


class CryptoMissing(Exception):
    """The ``cryptography`` package is not installed: the signature cannot be checked."""


def b64url(text: str) -> bytes:
    """Base64url without padding, as JWTs and JWKs write it."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _int(text: str) -> int:
    return int.from_bytes(b64url(text), "big")


def _hash(alg: str) -> Any:
    from cryptography.hazmat.primitives import hashes

    return {"384": hashes.SHA384(), "512": hashes.SHA512()}.get(alg[-3:], hashes.SHA256())


def _verify_key(key: dict[str, Any], alg: str, signed: bytes, sig: bytes) -> bool:
    """One key: True when it verifies ``sig`` over ``signed`` for ``alg``."""
    kty = key.get("kty")
    if kty == "oct" and alg.startswith("HS"):
        digest = {"384": hashlib.sha384, "512": hashlib.sha512}.get(alg[-3:], hashlib.sha256)
        return hmac.compare_digest(hmac.new(b64url(key["k"]), signed, digest).digest(), sig)
    try:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, utils
    except ImportError as exc:  # the core install: no cryptography
        raise CryptoMissing from exc
    try:
        if kty == "RSA" and alg[:2] in ("RS", "PS"):
            pub = rsa.RSAPublicNumbers(_int(key["e"]), _int(key["n"])).public_key()
            pad = padding.PKCS1v15() if alg.startswith("RS") else padding.PSS(
                mgf=padding.MGF1(_hash(alg)), salt_length=padding.PSS.AUTO)
            pub.verify(sig, signed, pad, _hash(alg))
            return True
        if kty == "EC":  # the key's curve; the signature is split in halves (r, s)
            curve = {"P-256": ec.SECP256R1(), "P-384": ec.SECP384R1(), "P-521": ec.SECP521R1()}
            if key.get("crv") not in curve:
                return False
            ecpub = ec.EllipticCurvePublicNumbers(_int(key["x"]), _int(key["y"]),
                                                  curve[key["crv"]]).public_key()
            half = len(sig) // 2
            der = utils.encode_dss_signature(int.from_bytes(sig[:half], "big"),
                                             int.from_bytes(sig[half:2 * half], "big"))
            ecpub.verify(der, signed, ec.ECDSA(_hash(alg)))
            return True
        if kty == "OKP" and key.get("crv") == "Ed25519":
            if len(sig) != 64:
                raise _WrongLength
            ed25519.Ed25519PublicKey.from_public_bytes(b64url(key["x"])).verify(sig, signed)
            return True
    except (InvalidSignature, KeyError, ValueError, TypeError):
        return False
    return False


def verify_signature(keys: list[Any], header: dict[str, Any], signed: bytes, sig: bytes) -> str:
    """`verifyJwtWithoutTimeChecking`: "" when a key verifies, else Envoy's failure message.

    Raises:
        CryptoMissing: an asymmetric key had to be tried and ``cryptography`` is not installed.
    """
    alg, kid = header.get("alg"), header.get("kid")
    matched = False
    for key in keys:
        if not isinstance(key, dict):
            continue
        if kid and key.get("kid") and key["kid"] != kid:
            continue
        if key.get("alg") and key["alg"] != alg:
            continue
        matched = True
        try:
            if _verify_key(key, str(alg), signed, sig):
                return ""
        except _WrongLength:
            return ED25519_LENGTH
    return VERIFY_FAILS if matched else KID_ALG_MISMATCH
