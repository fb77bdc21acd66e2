from __future__ import annotations

from joserfc import jwt

from smartrealm.oauth.grants import Grant, ServerGrant
from smartrealm.oauth.keys import KeyRing, generate_key
from smartrealm.oauth.tokens import TokenMinter

RING = KeyRing([generate_key()])
KEYS = RING.public_key_set()
A, B = "http://127.0.0.1:8701/fhir", "http://127.0.0.1:8702/fhir"


def _grant(pa: str | None, pb: str | None, identity: tuple[str, ...] = ()) -> Grant:
    return Grant("app", "ann", (ServerGrant("a", A, "4.0.1", ("patient/*.rs",), pa),
                                ServerGrant("b", B, "4.0.1", ("patient/*.rs",), pb)),
                 identity, f"{A}/Patient/{pa}", "n0nce", 100)


def test_access_token_claims() -> None:
    minter = TokenMinter("http://as", RING, 3600, clock=lambda: 1000.0)
    issued = minter.access_token(_grant("p1", "p1"))
    token = jwt.decode(issued.token, KEYS)
    assert token.header == {"alg": "RS256", "typ": "at+jwt", "kid": RING.active.kid}
    c = token.claims
    assert c["aud"] == [A, B] and c["iss"] == "http://as" and c["sub"] == "ann"
    assert c["client_id"] == "app" and c["scope"] == "patient/*.rs"
    assert (c["iat"], c["exp"]) == (1000, 4600) and c["jti"]
    assert c["patient"] == "p1" and "fhirContext" not in c
    assert c["authorization_details"][1] == {"type": "smart_on_fhir", "locations": [B],
                                             "fhirVersions": ["4.0.1"],
                                             "scope": "patient/*.rs", "patient": "p1"}


def test_context_rule() -> None:
    assert _grant("p1", "p1").context() == {"patient": "p1"}
    assert _grant("p1", "x9").context() == {"fhirContext": [
        {"reference": f"{A}/Patient/p1", "role": "launch-full-url"},
        {"reference": f"{B}/Patient/x9", "role": "launch-full-url"}]}
    assert "patient" not in _grant("p1", None).context()
    assert _grant(None, None).context() == {}
    assert _grant("p1", "x9").narrowed([B]).context() == {"patient": "x9"}


def test_grant_round_trips() -> None:
    grant = _grant("p1", None, ("openid",))
    assert Grant.from_dict(grant.to_dict()) == grant


def test_id_token() -> None:
    minter = TokenMinter("http://as", RING, 3600, clock=lambda: 1000.0)
    claims = jwt.decode(minter.id_token(_grant("p1", "p1", ("openid", "fhirUser"))),
                        KEYS).claims
    assert claims["aud"] == "app" and claims["nonce"] == "n0nce"
    assert claims["fhirUser"] == f"{A}/Patient/p1" and claims["sub"] == "ann"
    bare = jwt.decode(minter.id_token(_grant("p1", "p1", ("openid",))), KEYS).claims
    assert "fhirUser" not in bare


def test_self_token() -> None:
    minter = TokenMinter("http://as", RING, 3600, clock=lambda: 1000.0)
    c = jwt.decode(minter.self_token(B), KEYS).claims
    assert c["sub"] == c["client_id"] == "smartrealm-as" and c["aud"] == [B]
    assert c["scope"] == "system/Patient.rs" and c["exp"] - c["iat"] == 60
    assert c["authorization_details"][0]["scope"] == "system/Patient.rs"
