"""Test helpers: a Backend Services client's key pair and the private_key_jwt assertions it
signs (SMART §4.5), with any header or claim overridden or removed (``None``)."""

from __future__ import annotations

import base64
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from smartrealm.oauth.assertions import ASSERTION_TYPE

CURVES = {"ES256": "P-256", "ES384": "P-384"}


@dataclass(frozen=True)
class ClientKey:
    alg: str
    kid: str
    key: RSAKey | ECKey

    @classmethod
    def generate(cls, alg: str = "RS384", kid: str | None = None) -> ClientKey:
        key: RSAKey | ECKey = (ECKey.generate_key(CURVES[alg]) if alg.startswith("ES")
                               else RSAKey.generate_key(2048))
        return cls(alg, kid or f"{alg.lower()}-{secrets.token_hex(4)}", key)

    def public_jwk(self) -> dict[str, Any]:
        return {**self.key.as_dict(private=False), "kid": self.kid}

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.public_jwk()]}

    def assertion(self, client_id: str, audience: str, *, now: int | None = None,
                  header: dict[str, Any] | None = None, **claims: Any) -> str:
        """A signed assertion; ``claims``/``header`` entries override, ``None`` removes."""
        moment = int(time.time()) if now is None else now
        base_header: dict[str, Any] = {"alg": self.alg, "typ": "JWT", "kid": self.kid}
        base: dict[str, Any] = {"iss": client_id, "sub": client_id, "aud": audience,
                                "exp": moment + 240, "iat": moment,
                                "jti": secrets.token_urlsafe(16)}
        hdr = {k: v for k, v in {**base_header, **(header or {})}.items() if v is not None}
        body = {k: v for k, v in {**base, **claims}.items() if v is not None}
        return jwt.encode(hdr, body, self.key, algorithms=[hdr["alg"]])


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def raw_rs384(key: ClientKey, header: dict[str, Any], claims: dict[str, Any]) -> str:
    """An RS384 JWS signed by hand, for headers a JOSE library refuses to produce (no typ,
    unknown crit)."""
    signing_input = (f"{_b64(json.dumps(header).encode())}."
                     f"{_b64(json.dumps(claims).encode())}")
    private = key.key.raw_value
    assert isinstance(private, rsa.RSAPrivateKey)
    signature = private.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA384())
    return f"{signing_input}.{_b64(signature)}"


def assertion_form(assertion: str, **extra: str | list[str]) -> dict[str, str | list[str]]:
    return {"client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion, **extra}
