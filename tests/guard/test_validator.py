"""TokenValidator against a real JWKS endpoint (a Starlette app over httpx.ASGITransport)."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from joserfc.jwk import ECKey, RSAKey

from smartrealm.guard import JwksCache, KeySetUnavailable, TokenRejected, TokenValidator
from tests.guard.tokens import (
    ISSUER,
    FakeAuthServer,
    details_entry,
    hmac_token,
    new_key,
    rs256_token,
    unsigned_token,
)

EHR = "http://127.0.0.1:8701/fhir"
IMAGING = "http://127.0.0.1:8702/fhir"


@pytest.fixture(scope="module")
def auth_key() -> Any:
    return new_key("k1")


@pytest.fixture
def auth(auth_key: Any) -> FakeAuthServer:
    return FakeAuthServer(key=auth_key)


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def validator(auth: FakeAuthServer, clock: Clock) -> AsyncIterator[TokenValidator]:
    async with auth.http() as http:
        keys = JwksCache(http, f"{ISSUER}/jwks", clock=clock)
        yield TokenValidator(issuer=ISSUER, audience=EHR, keys=keys, clock=clock)


async def rejected(validator: TokenValidator, token: str | None) -> TokenRejected:
    with pytest.raises(TokenRejected) as info:
        await validator.validate(token)
    return info.value


async def test_multi_audience_token_yields_this_servers_share(
        auth: FakeAuthServer, validator: TokenValidator) -> None:
    token = auth.mint(
        [EHR, IMAGING], "patient/Observation.rs patient/ImagingStudy.rs",
        fhirUser=f"{EHR}/Patient/p0012",
        details=[details_entry(IMAGING, "patient/ImagingStudy.rs", "img0012"),
                 details_entry(EHR, "patient/Observation.rs", "p0012")])
    ctx = await validator.validate(token)
    assert str(ctx.scopes) == "patient/Observation.rs"
    assert ctx.patient == "p0012"
    assert (ctx.subject, ctx.client_id) == ("user-1", "app-1")
    assert ctx.fhir_user == f"{EHR}/Patient/p0012"
    assert ctx.expires_at == ctx.claims["exp"]


async def test_without_details_the_top_level_scope_and_patient_apply(
        auth: FakeAuthServer, validator: TokenValidator) -> None:
    ctx = await validator.validate(auth.mint([EHR], "patient/*.rs launch", patient="p0001"))
    assert str(ctx.scopes) == "patient/*.rs launch"
    assert ctx.patient == "p0001"


async def test_patient_from_launch_full_url_fhir_context(
        auth: FakeAuthServer, validator: TokenValidator) -> None:
    context = [{"reference": f"{IMAGING}/Patient/img0012", "role": "launch-full-url"},
               {"reference": f"{EHR}/Patient/p0012", "role": "launch-full-url"}]
    ctx = await validator.validate(auth.mint([EHR], "patient/*.rs", fhirContext=context))
    assert ctx.patient == "p0012"


async def test_audience_is_membership_after_normalization(
        auth: FakeAuthServer, validator: TokenValidator) -> None:
    ctx = await validator.validate(auth.mint(
        ["HTTP://127.0.0.1:8701/fhir/", IMAGING], "system/Patient.rs system/*.rs",
        details=[details_entry("HTTP://127.0.0.1:8701/fhir/", "system/Patient.rs"),
                 details_entry(IMAGING, "system/*.rs")]))
    assert str(ctx.scopes) == "system/Patient.rs"
    ctx = await validator.validate(auth.mint(["HTTP://127.0.0.1:8701/fhir/"], "system/*.rs"))
    assert str(ctx.scopes) == "system/*.rs"
    assert (await validator.validate(auth.mint(EHR, "system/Patient.rs"))).patient is None


# ------------------------------------------------------------ fail closed: whose share


async def test_details_without_an_entry_for_this_server_are_refused(
        auth: FakeAuthServer, validator: TokenValidator) -> None:
    # The union scope names Observation, but only imaging's share is in the token: the EHR
    # must not take the union for its own.
    token = auth.mint([EHR, IMAGING], "patient/Observation.rs patient/ImagingStudy.rs",
                      patient="p0012",
                      details=[details_entry(IMAGING, "patient/ImagingStudy.rs", "p0012")])
    error = await rejected(validator, token)
    assert error.error == "invalid_token"
    assert error.reason == "the token's authorization_details grant nothing at this server"


@pytest.mark.parametrize("details", [[], None, [{"type": "other", "locations": [EHR],
                                                 "scope": "system/*.rs"}]])
async def test_empty_null_or_foreign_details_are_refused(
        auth: FakeAuthServer, validator: TokenValidator, details: Any) -> None:
    token = auth.sign(auth.claims([EHR], "system/*.rs", authorization_details=details))
    error = await rejected(validator, token)
    assert error.reason == "the token's authorization_details grant nothing at this server"


async def test_several_servers_without_details_are_refused(
        auth: FakeAuthServer, validator: TokenValidator) -> None:
    error = await rejected(validator, auth.mint([EHR, IMAGING], "system/*.rs"))
    assert error.error == "invalid_token"
    assert error.reason == ("the token names several servers but has no "
                            "authorization_details entry for this one")


async def test_with_an_entry_only_its_patient_counts(
        auth: FakeAuthServer, validator: TokenValidator) -> None:
    # No patient on this server: a top-level patient or a launch-full-url item naming an id
    # here must not stand in for the entry's missing one.
    context = [{"reference": f"{EHR}/Patient/p0001", "role": "launch-full-url"}]
    token = auth.mint([EHR, IMAGING], "patient/*.rs", patient="p0001", fhirContext=context,
                      details=[details_entry(EHR, "patient/*.rs"),
                               details_entry(IMAGING, "patient/*.rs", "img0001")])
    assert (await validator.validate(token)).patient is None


# ------------------------------------------------------------ header: crit (RFC 7515 §4.1.11)


def _crit_header(auth: FakeAuthServer, **extra: Any) -> dict[str, Any]:
    return {"alg": "RS256", "typ": "at+jwt", "kid": auth.key.kid, **extra}


async def test_a_validly_signed_token_without_crit_is_accepted(
        auth: FakeAuthServer, validator: TokenValidator) -> None:
    # The hand-made signature is a real one: only the crit header makes the tokens below fail.
    token = rs256_token(_crit_header(auth), auth.claims([EHR], "system/*.rs"), auth.key)
    assert str((await validator.validate(token)).scopes) == "system/*.rs"


@pytest.mark.parametrize("crit", [
    {"crit": ["x-realm-ext"], "x-realm-ext": True},  # an extension nobody here understands
    {"crit": ["exp"], "exp": 1},                    # a claim name dressed up as a header
    {"crit": ["b64"], "b64": True},                 # RFC 7797, known to the JOSE library
    {"crit": ["kid"]},                              # a registered name (producer error)
    {"crit": []},                                   # RFC 7515: MUST NOT be empty
])
async def test_any_crit_header_is_refused(auth: FakeAuthServer, validator: TokenValidator,
                                          crit: dict[str, Any]) -> None:
    token = rs256_token(_crit_header(auth, **crit), auth.claims([EHR], "system/*.rs"),
                        auth.key)
    error = await rejected(validator, token)
    assert error.error == "invalid_token"
    assert error.reason == ("the token header lists critical extensions (crit) this server "
                            "does not understand")


async def test_wrong_audience(auth: FakeAuthServer, validator: TokenValidator) -> None:
    error = await rejected(validator, auth.mint([IMAGING], "system/Patient.rs"))
    assert error.error == "invalid_token"
    assert "not meant for this server" in error.reason


async def test_missing_audience(auth: FakeAuthServer, validator: TokenValidator) -> None:
    claims = auth.claims([EHR], "system/Patient.rs")
    del claims["aud"]
    await rejected(validator, auth.sign(claims))


async def test_expired_token_and_leeway(auth: FakeAuthServer, validator: TokenValidator,
                                        clock: Clock) -> None:
    token = auth.mint([EHR], "system/Patient.rs", lifetime=10)
    clock.now += 10 + 29  # inside the 30 s leeway
    await validator.validate(token)
    clock.now += 2
    error = await rejected(validator, token)  # served from the cache: exp is re-checked
    assert error.reason == "the token has expired"
    fresh = FakeAuthServer(key=auth.key).mint([EHR], "system/Patient.rs", lifetime=-100)
    assert (await rejected(validator, fresh)).reason == "the token has expired"


async def test_missing_exp(auth: FakeAuthServer, validator: TokenValidator) -> None:
    claims = auth.claims([EHR], "system/Patient.rs")
    del claims["exp"]
    assert (await rejected(validator, auth.sign(claims))).reason == "the token has no exp claim"


async def test_not_yet_valid(auth: FakeAuthServer, validator: TokenValidator) -> None:
    token = auth.mint([EHR], "system/Patient.rs", nbf=int(time.time()) + 600)
    assert (await rejected(validator, token)).reason == "the token is not valid yet"


async def test_tampered_payload_fails_signature(auth: FakeAuthServer,
                                                validator: TokenValidator) -> None:
    head, body, sig = auth.mint([EHR], "patient/Patient.rs", patient="p0001").split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims["scope"] = "system/*.cruds"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    error = await rejected(validator, f"{head}.{forged}.{sig}")
    assert error.reason == "the token signature is invalid"


async def test_signed_by_a_stranger_with_a_known_kid(validator: TokenValidator) -> None:
    stranger = FakeAuthServer(key=new_key("k1"))
    error = await rejected(validator, stranger.mint([EHR], "system/Patient.rs"))
    assert error.reason == "the token signature is invalid"


async def test_alg_none_is_refused(auth: FakeAuthServer, validator: TokenValidator) -> None:
    token = unsigned_token({"alg": "none", "typ": "at+jwt", "kid": "k1"},
                           auth.claims([EHR], "system/*.rs"))
    assert "'none' is not accepted" in (await rejected(validator, token)).reason


async def test_hs256_keyed_with_the_public_key_is_refused(
        auth: FakeAuthServer, validator: TokenValidator) -> None:
    public_pem = auth.key.as_pem(private=False)
    token = hmac_token({"alg": "HS256", "typ": "at+jwt", "kid": "k1"},
                       auth.claims([EHR], "system/*.rs"), public_pem)
    assert "'HS256' is not accepted" in (await rejected(validator, token)).reason


async def test_header_alg_must_match_the_key(auth: FakeAuthServer,
                                             validator: TokenValidator) -> None:
    # The published key pins RS256; a token claiming RS384 with the same key is refused.
    unpinned = {k: v for k, v in auth.key.as_dict(private=True).items() if k != "alg"}
    token = auth.sign(auth.claims([EHR], "system/*.rs"), key=RSAKey.import_key(unpinned),
                      header={"alg": "RS384"})
    assert (await rejected(validator, token)).reason == "the token's alg does not match its key"


async def test_ec_key_with_rsa_alg_is_refused(auth: FakeAuthServer,
                                              validator: TokenValidator) -> None:
    ec = ECKey.generate_key("P-256", parameters={"kid": "ec1", "use": "sig"})
    auth.published.append(ec)  # type: ignore[arg-type]
    token = auth.sign(auth.claims([EHR], "system/*.rs"), key=ec,  # type: ignore[arg-type]
                      header={"alg": "ES256"})
    assert (await validator.validate(token)).client_id == "app-1"
    _head, body, sig = token.split(".")
    header = {"alg": "RS256", "typ": "at+jwt", "kid": "ec1"}
    forged_head = base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=").decode()
    error = await rejected(validator, f"{forged_head}.{body}.{sig}")
    assert error.reason == "the token's alg does not match its key"


async def test_wrong_typ(auth: FakeAuthServer, validator: TokenValidator) -> None:
    token = auth.sign(auth.claims([EHR], "system/*.rs"), header={"typ": "JWT"})
    assert "typ must be at+jwt" in (await rejected(validator, token)).reason


async def test_wrong_issuer(auth: FakeAuthServer, validator: TokenValidator) -> None:
    token = auth.mint([EHR], "system/*.rs", iss="http://127.0.0.1:9999")
    assert (await rejected(validator, token)).reason == "the token was issued by another server"


async def test_unknown_kid_refetches_once_then_rate_limits(
        auth: FakeAuthServer, validator: TokenValidator, clock: Clock) -> None:
    await validator.validate(auth.mint([EHR], "system/*.rs"))
    assert auth.jwks_hits == 1
    rotated = new_key("k2")
    auth.published.append(rotated)
    token = auth.sign(auth.claims([EHR], "system/*.rs"), key=rotated)
    clock.now += 11
    assert (await validator.validate(token)).client_id == "app-1"
    assert auth.jwks_hits == 2
    # A made-up kid right after a fetch does not hit the AS again.
    bogus = auth.sign(auth.claims([EHR], "system/*.rs"), key=new_key("k3"))
    error = await rejected(validator, bogus)
    assert error.reason == "the token is signed with an unknown key"
    assert auth.jwks_hits == 2


async def test_missing_token_has_no_error_code(validator: TokenValidator) -> None:
    for token in (None, ""):
        error = await rejected(validator, token)
        assert error.token_presented is False and error.error is None


@pytest.mark.parametrize("token", ["abc", "a.b.c", "a.b", "é.é.é", "eyJhbGciOiJSUzI1NiJ9.."])
async def test_garbage_is_rejected_not_crashed(validator: TokenValidator, token: str) -> None:
    assert (await rejected(validator, token)).error == "invalid_token"


async def test_missing_kid(auth: FakeAuthServer, validator: TokenValidator) -> None:
    token = auth.sign(auth.claims([EHR], "system/*.rs"), header={"kid": None})
    await rejected(validator, token)


async def test_malformed_scope_in_token(auth: FakeAuthServer,
                                        validator: TokenValidator) -> None:
    token = auth.mint([EHR], "patient/Observation.xyz")
    assert "malformed scope" in (await rejected(validator, token)).reason


async def test_unreachable_jwks_is_not_a_token_error(auth: FakeAuthServer) -> None:
    async with auth.http() as http:
        keys = JwksCache(http, f"{ISSUER}/no-such-jwks")
        validator = TokenValidator(issuer=ISSUER, audience=EHR, keys=keys)
        with pytest.raises(KeySetUnavailable):
            await validator.validate(auth.mint([EHR], "system/*.rs"))


def test_leeway_is_bounded(auth: FakeAuthServer) -> None:
    with pytest.raises(ValueError, match="leeway"):
        TokenValidator(issuer=ISSUER, audience=EHR,
                       keys=JwksCache(auth.http(), f"{ISSUER}/jwks"), leeway=300)
