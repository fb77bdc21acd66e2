"""An asymmetric client's key pair and its RFC 7523 client assertions (spec §4.5, §9).

SMART clients SHALL support RS384 and ES384 (spec §4.5). ``ClientKey.generate`` makes one;
``public_jwks()`` is what the client registers (``jwks``) or serves at its ``jwks_uri``;
``private_jwk()`` / ``ClientKey.from_jwk`` persist it. Each assertion carries the claims
Inferno's client suite checks (spec §12.5): header ``alg``, ``kid``, ``typ=JWT``; claims
``iss`` = ``sub`` = client_id, ``aud`` = the token endpoint URL, a fresh ``jti`` and an
``exp`` no more than five minutes ahead."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, RSAKey, import_key

from smartrealm.client.errors import ClientUsageError
from smartrealm.core.defaults import CLIENT_ASSERTION_LIFETIME as ASSERTION_LIFETIME

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# Spec §4.5: clients SHALL support RS384 and ES384; the curve/size follow the algorithm.
ALGORITHMS = ("RS384", "ES384")
RSA_BITS = 2048
EC_CURVE = "P-384"


@dataclass(frozen=True)
class ClientKey:
    alg: str
    kid: str
    key: RSAKey | ECKey

    @classmethod
    def generate(cls, alg: str = "ES384", kid: str | None = None) -> ClientKey:
        if alg not in ALGORITHMS:
            raise ClientUsageError(f"alg must be one of {', '.join(ALGORITHMS)}, not {alg!r}")
        key: RSAKey | ECKey = (
            RSAKey.generate_key(RSA_BITS) if alg == "RS384" else ECKey.generate_key(EC_CURVE)
        )
        return cls(alg, kid or f"{alg.lower()}-{secrets.token_hex(8)}", key)

    @classmethod
    def from_jwk(cls, jwk: dict[str, Any]) -> ClientKey:
        """Load a key written by ``private_jwk()`` (needs ``kid`` and ``alg``)."""
        alg, kid = jwk.get("alg"), jwk.get("kid")
        if alg not in ALGORITHMS or not isinstance(kid, str) or not kid:
            raise ClientUsageError("private JWK needs alg RS384 or ES384 and a kid")
        try:
            key = import_key({k: v for k, v in jwk.items() if k not in ("alg", "kid")})
        except (JoseError, ValueError, TypeError) as exc:
            raise ClientUsageError(f"not a usable private JWK: {exc.__class__.__name__}") from exc
        if not isinstance(key, RSAKey | ECKey) or not key.is_private:
            raise ClientUsageError("the JWK is not an RSA or EC private key")
        if (alg == "RS384") != isinstance(key, RSAKey):
            raise ClientUsageError(f"alg {alg} does not fit key type {key.key_type}")
        return cls(str(alg), kid, key)

    def public_jwk(self) -> dict[str, Any]:
        """Bare public members plus ``kid``/``alg``/``use`` (spec §4.5: kty and kid SHALL)."""
        return {**self.key.as_dict(private=False), "kid": self.kid, "alg": self.alg, "use": "sig"}

    def public_jwks(self) -> dict[str, Any]:
        """The JWK Set to register as ``jwks`` or to serve at the client's ``jwks_uri``."""
        return {"keys": [self.public_jwk()]}

    def private_jwk(self) -> dict[str, Any]:
        """The private key as a JWK (keep it secret; store it with 0600 permissions)."""
        return {**self.key.as_dict(private=True), "kid": self.kid, "alg": self.alg}

    def client_assertion(
        self, client_id: str, token_endpoint: str, *, now: int | None = None
    ) -> str:
        """A signed RFC 7523 assertion for one request to ``token_endpoint`` (spec §4.5).
        A new ``jti`` every call: servers reject a replayed one."""
        moment = int(time.time()) if now is None else now
        header = {"alg": self.alg, "typ": "JWT", "kid": self.kid}
        claims = {
            "iss": client_id,
            "sub": client_id,
            "aud": token_endpoint,
            "iat": moment,
            "exp": moment + ASSERTION_LIFETIME,
            "jti": secrets.token_urlsafe(24),
        }
        return jwt.encode(header, claims, self.key, algorithms=[self.alg])
