"""private_key_jwt client authentication (SMART §4.5 "Confidential asymmetric", RFC 7523 §3,
RFC 7521 §4.2; security notes §13).

The checks run in a fixed order, and the ``jti`` is recorded only after the signature and
every claim have passed, so a forged or stale assertion cannot burn a genuine client's jti.
Every failure is ``invalid_client`` (401): SMART §4.5 "every authentication failure".

The verifier does no I/O: keys come from a ``KeySource`` (the registered ``jwks``, or the
``jwks_uri`` document the web layer fetched for this request).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jws import CompactSignature

from smartrealm.core.defaults import ASSERTION_LEEWAY as LEEWAY
from smartrealm.core.defaults import ASSERTION_MAX_JTI as MAX_JTI
from smartrealm.core.defaults import ASSERTION_MAX_LIFETIME as MAX_LIFETIME
from smartrealm.core.jose_rules import has_critical_extensions
from smartrealm.core.urls import normalize_url
from smartrealm.oauth.client_jwks import ASSERTION_ALGORITHMS, JwksError, select_key
from smartrealm.oauth.errors import InvalidClient, InvalidRequest
from smartrealm.oauth.store import PRIVATE_KEY_JWT, Client

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

# The keys for a client: its registered JWK Set, or the fetched jwks_uri document; None when
# the document could not be obtained.
KeySource = Callable[[Client], Mapping[str, Any] | None]


class ReplayCache(Protocol):
    def first_use(self, key: str, expires_at: int, now: int) -> bool:
        """Record ``key`` until ``expires_at``. False when it is already recorded and has
        not expired: a replay."""
        ...


def uses_assertion(form: Mapping[str, Sequence[str]]) -> bool:
    return "client_assertion" in form or "client_assertion_type" in form


@dataclass(frozen=True)
class Assertion:
    """A parsed, not yet verified, client assertion."""

    token: CompactSignature
    header: dict[str, Any]
    claims: dict[str, Any]

    @property
    def issuer(self) -> str:
        iss = self.claims.get("iss")
        if not isinstance(iss, str) or not iss:
            raise InvalidClient("the client assertion has no iss")
        return iss


def _one(form: Mapping[str, Sequence[str]], name: str) -> str | None:
    values = form.get(name, [])
    if len(values) > 1:
        raise InvalidRequest(f"{name} must not be repeated")
    return values[0] if values else None


def parse_assertion(form: Mapping[str, Sequence[str]]) -> Assertion:
    """The form's ``client_assertion`` (RFC 7521 §4.2), parsed without verification."""
    if _one(form, "client_assertion_type") != ASSERTION_TYPE:
        raise InvalidClient(f"client_assertion_type must be {ASSERTION_TYPE}")
    value = _one(form, "client_assertion")
    if not value:
        raise InvalidClient("client_assertion is required")
    try:
        token = jws.extract_compact(value.encode("ascii"))
        claims = json.loads(token.payload or b"")
    except (JoseError, ValueError, UnicodeError, RecursionError):
        raise InvalidClient("client_assertion is not a compact JWS with a JSON payload") from None
    if not isinstance(claims, dict):
        raise InvalidClient("the client assertion's payload is not a JSON object")
    return Assertion(token, dict(token.headers()), claims)


def request_assertion(form: Mapping[str, Sequence[str]]) -> Assertion | None:
    """The request's assertion, parsed once for the whole request (the web layer looks at
    it to fetch the client's keys, then hands it to ``AssertionVerifier``); None when the
    request has none or a malformed one — the verifier then parses the form itself and
    reports what is wrong, in its order of checks."""
    if not uses_assertion(form):
        return None
    try:
        return parse_assertion(form)
    except (InvalidClient, InvalidRequest):
        return None


def check_header(header: Mapping[str, Any]) -> tuple[str, str]:
    """§4.5 assertion header: ``alg`` RS384/ES384 (RS256/ES256 accepted), ``kid`` and
    ``typ: JWT`` required. Returns (alg, kid)."""
    alg, kid, typ = header.get("alg"), header.get("kid"), header.get("typ")
    if alg not in ASSERTION_ALGORITHMS:
        raise InvalidClient(f"alg {alg!r} is not accepted; use one of "
                            f"{', '.join(ASSERTION_ALGORITHMS)}")
    if not isinstance(kid, str) or not kid:
        raise InvalidClient("the client assertion header needs a kid")
    if not isinstance(typ, str) or typ.upper() != "JWT":
        raise InvalidClient("the client assertion header needs typ JWT")
    if has_critical_extensions(header):  # RFC 7515 §4.1.11
        raise InvalidClient("critical header parameters are not supported")
    return str(alg), kid


@dataclass(frozen=True)
class AssertionVerifier:
    """Verifies assertions posted to ``token_endpoint`` at time ``now``. At another
    endpoint (introspection, revocation) ``other_audiences`` names that endpoint and the
    issuer, which RFC 7523 §3 also accepts as the AS's identity; SMART clients send the
    token endpoint URL everywhere (§4.5), so it is always accepted."""

    token_endpoint: str
    replays: ReplayCache
    keys: KeySource
    now: int
    other_audiences: tuple[str, ...] = ()
    # ``request_assertion`` of the very form ``authenticate`` is given (the same parse:
    # decoding the JWS once per request); None: parsed there.
    parsed: Assertion | None = None

    def authenticate(self, form: Mapping[str, Sequence[str]],
                     find_client: Callable[[str], Client | None]) -> Client:
        assertion = self.parsed if self.parsed is not None else parse_assertion(form)
        alg, kid = check_header(assertion.header)
        client = self._client(assertion, form, find_client)
        self._verify_signature(assertion, client, alg, kid)
        exp = self._check_claims(assertion.claims, client.client_id)
        self._check_jti(assertion.claims, client.client_id, exp)
        return client

    def _client(self, assertion: Assertion, form: Mapping[str, Sequence[str]],
                find_client: Callable[[str], Client | None]) -> Client:
        iss = assertion.issuer
        sent_id = _one(form, "client_id")
        if sent_id is not None and sent_id != iss:
            # RFC 7521 §4.2 allows client_id; if sent it must name the assertion's issuer.
            raise InvalidClient("client_id does not match the client assertion's iss")
        client = find_client(iss)
        if client is None:
            raise InvalidClient("unknown client")
        if client.auth_method != PRIVATE_KEY_JWT:
            raise InvalidClient("this client is not registered for private_key_jwt")
        return client

    def _verify_signature(self, assertion: Assertion, client: Client, alg: str,
                          kid: str) -> None:
        jku = assertion.header.get("jku")
        if jku is not None and (client.jwks_uri is None or jku != client.jwks_uri):
            # §4.5 key resolution step 1: a jku must be the registered JWKS URL.
            raise InvalidClient("jku is not the JWKS URL registered for this client")
        jwks = self.keys(client)
        if jwks is None:
            raise InvalidClient("the client's JWK Set could not be obtained")
        try:
            key = select_key(jwks, kid, alg)
            valid = jws.validate_compact(assertion.token, key, algorithms=[alg])
        except JwksError as exc:
            raise InvalidClient(str(exc)) from None
        except (JoseError, ValueError):
            valid = False
        if not valid:
            raise InvalidClient("the client assertion's signature is invalid")

    def _check_claims(self, claims: Mapping[str, Any], client_id: str) -> int:
        """RFC 7523 §3: sub, aud, exp (and nbf/iat when present). Returns exp."""
        if claims.get("sub") != client_id:
            raise InvalidClient("the client assertion's sub must equal its iss")
        if not _audience_ok(claims.get("aud"), (self.token_endpoint, *self.other_audiences)):
            raise InvalidClient(f"the client assertion's aud must be {self.token_endpoint}")
        exp = claims.get("exp")
        if not isinstance(exp, int) or isinstance(exp, bool):
            raise InvalidClient("the client assertion needs an integer exp")
        if exp <= self.now - LEEWAY:
            raise InvalidClient("the client assertion has expired")
        if exp > self.now + MAX_LIFETIME + LEEWAY:
            raise InvalidClient("the client assertion's exp is more than 5 minutes ahead")
        for name in ("nbf", "iat"):
            value = claims.get(name)
            if value is not None and (not _is_int(value) or int(value) > self.now + LEEWAY):
                raise InvalidClient(f"the client assertion's {name} is in the future")
        return exp

    def _check_jti(self, claims: Mapping[str, Any], client_id: str, exp: int) -> None:
        # §4.5: reject a jti already seen for the same iss within the assertion lifetime.
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti or len(jti) > MAX_JTI:
            raise InvalidClient("the client assertion needs a jti")
        key = hashlib.sha256(f"private_key_jwt\0{client_id}\0{jti}".encode()).hexdigest()
        if not self.replays.first_use(key, exp + LEEWAY, self.now):
            raise InvalidClient("the client assertion's jti was already used")


def _audience_ok(aud: Any, accepted: Sequence[str]) -> bool:
    """RFC 7523 §3: aud identifies the AS; SMART §4.5 fixes it to the token endpoint URL.
    aud may be a string or an array (RFC 7519 §4.1.3)."""
    members = [aud] if isinstance(aud, str) else aud
    if not isinstance(members, list):
        return False
    wanted = {normalize_url(url) for url in accepted}
    return any(isinstance(a, str) and _normalized(a) in wanted for a in members)


def _normalized(url: str) -> str | None:
    try:
        return normalize_url(url)
    except ValueError:  # e.g. an unbalanced IPv6 bracket
        return None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
