"""Test helper: a stand-in authorization server that owns RSA keys, serves its JWKS from a
real (tiny) Starlette app and mints RFC 9068 access tokens shaped like the realm's AS does
(CONTRACT.md "The access token")."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from typing import Any
from urllib.parse import unquote_plus

import httpx
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from joserfc import jwt
from joserfc.jwk import RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

ISSUER = "http://127.0.0.1:8700"


def new_key(kid: str) -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig", "alg": "RS256"})


class FakeAuthServer:
    """Keys + JWKS endpoint + token minting. ``published`` is what /jwks serves."""

    def __init__(self, issuer: str = ISSUER, key: RSAKey | None = None) -> None:
        self.issuer = issuer
        self.key = key or new_key("k1")
        self.published: list[RSAKey] = [self.key]
        self.jwks_hits = 0
        # What resource servers reported at /patient-index (fhir/link_reports.py): each
        # request's form, with the Basic credentials' client_id as "client".
        self.link_reports: list[dict[str, str]] = []
        self.app = Starlette(routes=[Route("/jwks", self._jwks),
                                     Route("/patient-index", self._link_report,
                                           methods=["POST"])])

    async def _jwks(self, _request: Request) -> JSONResponse:
        self.jwks_hits += 1
        return JSONResponse({"keys": [k.as_dict(private=False) for k in self.published]})

    async def _link_report(self, request: Request) -> JSONResponse:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        client = base64.b64decode(value).decode().rpartition(":")[0] if scheme == "Basic" \
            else ""
        form = {k: str(v) for k, v in (await request.form()).items()}
        self.link_reports.append({"client": unquote_plus(client), **form})
        return JSONResponse({"patient": form.get("patient"), "person": form.get("person")})

    def http(self) -> httpx.AsyncClient:
        """An httpx client whose requests all reach this server's ASGI app."""
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app),
                                 base_url=self.issuer)

    def claims(self, aud: list[str] | str, scope: str, *, patient: str | None = None,
               details: list[dict[str, Any]] | None = None, lifetime: int = 300,
               **extra: Any) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer, "aud": aud, "sub": "user-1", "client_id": "app-1",
            "scope": scope, "iat": now, "exp": now + lifetime, "jti": uuid.uuid4().hex,
        }
        if patient is not None:
            claims["patient"] = patient
        if details is not None:
            claims["authorization_details"] = details
        claims.update(extra)
        return claims

    def sign(self, claims: dict[str, Any], *, key: RSAKey | None = None,
             header: dict[str, Any] | None = None) -> str:
        signing_key = key or self.key
        head = {"alg": "RS256", "typ": "at+jwt", "kid": signing_key.kid, **(header or {})}
        head = {k: v for k, v in head.items() if v is not None}  # None = leave it out
        return jwt.encode(head, claims, signing_key, algorithms=[head["alg"]])

    def mint(self, aud: list[str] | str, scope: str, **kwargs: Any) -> str:
        return self.sign(self.claims(aud, scope, **kwargs))


def details_entry(base: str, scope: str, patient: str | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"type": "smart_on_fhir", "locations": [base],
                             "fhirVersions": ["4.0.1"], "scope": scope}
    if patient is not None:
        entry["patient"] = patient
    return entry


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned_token(header: dict[str, Any], claims: dict[str, Any]) -> str:
    """An ``alg: none`` token, built by hand because joserfc refuses to make one."""
    return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}."


def hmac_token(header: dict[str, Any], claims: dict[str, Any], secret: bytes) -> str:
    """An HS256 token keyed with ``secret`` (the alg-confusion attack uses the public key)."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"


def rs256_token(header: dict[str, Any], claims: dict[str, Any], key: RSAKey) -> str:
    """A validly RS256-signed token with exactly ``header``, built by hand: joserfc refuses
    to sign headers it would refuse to verify (an unknown ``crit`` extension)."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    private = key.private_key
    assert private is not None
    signature = private.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{b64(signature)}"
