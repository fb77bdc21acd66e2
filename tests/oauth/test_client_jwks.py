"""Registered JWK Sets (SMART §4.5: kty and kid on every key, bare public members) and the
choice of one assertion's key (exactly one key with that kid and a fitting kty)."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
from joserfc.jwk import ECKey, OctKey, RSAKey

from smartrealm.oauth.client_jwks import JwksError, check_jwks, select_key
from tests.oauth.assertion_keys import ClientKey

RSA = ClientKey.generate("RS384", "r1")
EC = ClientKey.generate("ES384", "e1")


def _weak_rsa() -> dict[str, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # joserfc warns about the very weakness we test
        return RSAKey.generate_key(1024).as_dict(private=False) | {"kid": "s"}


def test_a_good_set_is_returned_unchanged() -> None:
    jwks = {"keys": [RSA.public_jwk(), EC.public_jwk()]}
    assert check_jwks(jwks) is jwks


def _with(**changes: Any) -> dict[str, Any]:
    jwk = {**RSA.public_jwk(), **changes}
    return {"keys": [{k: v for k, v in jwk.items() if v is not None}]}


@pytest.mark.parametrize(("jwks", "problem"), [
    ([], "JWK Set"),
    ({"keys": "x"}, "JWK Set"),
    ({"keys": []}, "between 1 and"),
    ({"keys": ["x"]}, "not a JSON object"),
    (_with(kid=None), "kid is required"),
    (_with(kid=""), "kid is required"),
    (_with(kty=None), "kty must be"),
    (_with(kty="OKP"), "kty must be"),
    ({"keys": [RSA.key.as_dict(private=True) | {"kid": "p"}]}, "private key material"),
    ({"keys": [EC.key.as_dict(private=True) | {"kid": "p"}]}, "private key material"),
    ({"keys": [OctKey.generate_key(256).as_dict() | {"kid": "o"}]}, "kty must be"),
    (_with(use="enc"), "use must be sig"),
    (_with(n="not-base64!"), "not a valid public key"),
    ({"keys": [_weak_rsa()]}, "at least 2048"),
    ({"keys": [ECKey.generate_key("P-521").as_dict(private=False) | {"kid": "c"}]},
     "P-256 or P-384"),
    ({"keys": [RSA.public_jwk(), RSA.public_jwk()]}, "unique"),
    ({"keys": [RSA.public_jwk()] * 21}, "between 1 and"),
])
@pytest.mark.filterwarnings("ignore::joserfc.errors.SecurityWarning")
def test_unregistrable_sets(jwks: Any, problem: str) -> None:
    with pytest.raises(JwksError, match=problem):
        check_jwks(jwks)


def test_same_kid_on_an_rsa_and_an_ec_key_is_allowed_and_told_apart_by_alg() -> None:
    ec = ClientKey.generate("ES384", "r1")
    jwks = check_jwks({"keys": [RSA.public_jwk(), ec.public_jwk()]})
    assert isinstance(select_key(jwks, "r1", "RS384"), RSAKey)
    assert isinstance(select_key(jwks, "r1", "ES384"), ECKey)


@pytest.mark.parametrize(("kid", "alg", "problem"), [
    ("nope", "RS384", "0 RSA keys"),
    ("e1", "RS384", "0 RSA keys"),
    ("e1", "ES256", "P-384"),
])
def test_select_key_failures(kid: str, alg: str, problem: str) -> None:
    jwks = {"keys": [RSA.public_jwk(), EC.public_jwk()]}
    with pytest.raises(JwksError, match=problem):
        select_key(jwks, kid, alg)


def test_select_key_refuses_duplicates_pinned_algs_and_garbage() -> None:
    with pytest.raises(JwksError, match="2 RSA keys"):
        select_key({"keys": [RSA.public_jwk(), RSA.public_jwk()]}, "r1", "RS384")
    with pytest.raises(JwksError, match="registered for RS256"):
        select_key({"keys": [RSA.public_jwk() | {"alg": "RS256"}]}, "r1", "RS384")
    with pytest.raises(JwksError):
        select_key({"keys": "garbage"}, "r1", "RS384")
    with pytest.raises(JwksError, match="not a public signature key"):
        select_key({"keys": [RSA.key.as_dict(private=True) | {"kid": "r1"}]}, "r1", "RS384")
