"""A private_key_jwt client's public keys (SMART §4.5 "Confidential asymmetric"): what a
registered JWK Set must look like, and how one assertion's key is chosen from it.

Registration refuses anything the token endpoint could not use: every JWK needs ``kty`` and
``kid``, only bare public members (RSA ``n``/``e``, EC ``crv``/``x``/``y``), and no private or
symmetric material — the AS must never hold a client's secret key.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import Any

from joserfc.errors import JoseError
from joserfc.jwk import ECKey, JWKRegistry, RSAKey

from smartrealm.core.defaults import CLIENT_JWKS_MAX_KEYS as MAX_KEYS

# SMART §4.5: clients SHALL support RS384 and ES384; RS256/ES256 MAY be used. Never "none"
# nor HS*: an HMAC "signed" with a public key proves nothing (alg confusion).
ASSERTION_ALGORITHMS = ("RS384", "ES384", "RS256", "ES256")
_KTY_FOR_ALG = {"RS384": "RSA", "RS256": "RSA", "ES384": "EC", "ES256": "EC"}
_CURVE_FOR_ALG = {"ES256": "P-256", "ES384": "P-384"}
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
MIN_RSA_BITS = 2048


class JwksError(ValueError):
    """Why a JWK Set cannot be registered, or why no key fits an assertion."""


def check_jwks(jwks: object) -> dict[str, Any]:
    """A registrable JWK Set (RFC 7517 §5), returned unchanged; JwksError otherwise."""
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
        raise JwksError("jwks must be a JWK Set: an object with a \"keys\" array")
    keys = jwks["keys"]
    if not 1 <= len(keys) <= MAX_KEYS:
        raise JwksError(f"jwks must hold between 1 and {MAX_KEYS} keys")
    seen: set[tuple[str, str]] = set()
    for index, jwk in enumerate(keys):
        kty, kid = _check_jwk(jwk, index)
        if (kty, kid) in seen:
            raise JwksError(f"kid {kid!r} is used by two {kty} keys; kids must be unique")
        seen.add((kty, kid))
    return jwks


def _check_jwk(jwk: object, index: int) -> tuple[str, str]:
    where = f"jwks.keys[{index}]"
    if not isinstance(jwk, dict):
        raise JwksError(f"{where} is not a JSON object")
    kty, kid = jwk.get("kty"), jwk.get("kid")
    if kty not in ("RSA", "EC"):
        raise JwksError(f"{where}: kty must be RSA or EC")
    if not isinstance(kid, str) or not kid:
        raise JwksError(f"{where}: kid is required (SMART §4.5)")
    if _PRIVATE_MEMBERS & jwk.keys():
        raise JwksError(f"{where} contains private key material; register public keys only")
    if jwk.get("use", "sig") != "sig":
        raise JwksError(f"{where}: use must be sig")
    key = _import(jwk, where)
    if isinstance(key, RSAKey) and key.raw_value.key_size < MIN_RSA_BITS:
        raise JwksError(f"{where}: RSA keys need at least {MIN_RSA_BITS} bits")
    if isinstance(key, ECKey) and key.curve_name not in _CURVE_FOR_ALG.values():
        raise JwksError(f"{where}: EC keys must use P-256 or P-384")
    return str(kty), kid


def _import(jwk: Mapping[str, Any], where: str) -> RSAKey | ECKey:
    try:
        key = _imported(json.dumps(jwk, sort_keys=True))
    except (JoseError, ValueError, TypeError):
        raise JwksError(f"{where} is not a valid public key") from None
    if not isinstance(key, RSAKey | ECKey):
        raise JwksError(f"{where}: kty must be RSA or EC")
    return key


@functools.lru_cache(maxsize=1024)
def _imported(jwk_json: str) -> Any:
    """Parsing a public key (point decoding, RSA checks) costs more than verifying with it:
    keys are kept by their exact content, so a rotated or changed key is a new entry and a
    removed one is simply never asked for again."""
    return JWKRegistry.import_key(json.loads(jwk_json))


def select_key(jwks: Mapping[str, Any], kid: str, alg: str) -> RSAKey | ECKey:
    """SMART §4.5 key resolution step 3: exactly one key whose ``kid`` matches and whose
    ``kty`` fits the ``alg`` (RSA for RS*, EC for ES* on the alg's curve)."""
    kty = _KTY_FOR_ALG[alg]
    entries = jwks.get("keys")
    candidates = [k for k in entries if isinstance(k, dict) and k.get("kid") == kid
                  and k.get("kty") == kty] if isinstance(entries, list) else []
    if len(candidates) != 1:
        raise JwksError(f"the client's JWK Set has {len(candidates)} {kty} keys with kid "
                          f"{kid!r}; exactly one is required")
    jwk = candidates[0]
    if _PRIVATE_MEMBERS & jwk.keys() or jwk.get("use", "sig") != "sig":
        raise JwksError(f"key {kid!r} is not a public signature key")
    if jwk.get("alg") not in (None, alg):
        raise JwksError(f"key {kid!r} is registered for {jwk.get('alg')}, not {alg}")
    key = _import(jwk, f"key {kid!r}")
    if isinstance(key, ECKey) and key.curve_name != _CURVE_FOR_ALG[alg]:
        raise JwksError(f"key {kid!r} is on {key.curve_name}, which {alg} does not use")
    return key
