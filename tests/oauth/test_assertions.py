"""private_key_jwt verification (SMART §4.5, RFC 7523 §3): every failure is invalid_client;
the happy paths with RS384, ES384, RS256 and ES256. The replay cache is the real SQL one."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smartrealm.authz.stores.sql_replay import SqlReplayCache
from smartrealm.oauth.assertions import ASSERTION_TYPE, AssertionVerifier
from smartrealm.oauth.client_auth import ClientAuth, authenticate_request
from smartrealm.oauth.client_secrets import ClientSecrets
from smartrealm.oauth.errors import InvalidClient, InvalidRequest
from smartrealm.oauth.store import PRIVATE_KEY_JWT, Client
from smartrealm.storage import make_engine
from tests.oauth.assertion_keys import ClientKey, assertion_form, raw_rs384
from tests.oauth.memory_clients import MemoryClients

TOKEN_URL = "https://as.example.org/token"
JWKS_URL = "https://client.example.org/jwks.json"
NOW = int(time.time())
RS384 = ClientKey.generate("RS384", "rsa-1")
ES384 = ClientKey.generate("ES384", "ec-1")
OTHER_RSA = ClientKey.generate("RS384", "rsa-1")  # same kid, different key


def _client(client_id: str, **fields: Any) -> Client:
    defaults: dict[str, Any] = {"auth_method": PRIVATE_KEY_JWT,
                                "grant_types": ("client_credentials",),
                                "scope": "system/*.rs",
                                "jwks": {"keys": [RS384.public_jwk(), ES384.public_jwk()]}}
    return Client(client_id, client_id, (), **{**defaults, **fields})


CLIENTS = {
    "bulk": _client("bulk"),
    "remote": _client("remote", jwks=None, jwks_uri=JWKS_URL),
    "secret": Client("secret", "secret", ("https://a/cb",), "client_secret_basic", "x"),
}
REMOTE_JWKS = {"keys": [RS384.public_jwk()]}
AUTH = ClientAuth(MemoryClients(CLIENTS), ClientSecrets(b"k" * 32))



def _keys(client: Client) -> Mapping[str, Any] | None:
    if client.jwks is not None:
        return client.jwks
    return REMOTE_JWKS if client.jwks_uri == JWKS_URL else None


@pytest.fixture
def verifier(tmp_path: Path) -> AssertionVerifier:
    cache = SqlReplayCache.create(make_engine(f"sqlite:///{tmp_path / 'replay.db'}"))
    return AssertionVerifier(TOKEN_URL, cache, _keys, NOW)


def _authenticate(verifier: AssertionVerifier, form: Mapping[str, Any]) -> Client:
    return verifier.authenticate(_multi(form), CLIENTS.get)


def _multi(form: Mapping[str, Any]) -> dict[str, list[str]]:
    return {k: list(v) if isinstance(v, list) else [v] for k, v in form.items()}


def _sign(key: ClientKey, client_id: str = "bulk", **kw: Any) -> str:
    return key.assertion(client_id, TOKEN_URL, now=NOW, **kw)


@pytest.mark.parametrize("alg", ["RS384", "ES384", "RS256", "ES256"])
def test_each_accepted_algorithm(tmp_path: Path, alg: str) -> None:
    key = ClientKey.generate(alg)
    client = _client("c1", jwks=key.jwks())
    cache = SqlReplayCache.create(make_engine(f"sqlite:///{tmp_path / 'r.db'}"))
    verifier = AssertionVerifier(TOKEN_URL, cache, _keys, NOW)
    form = _multi(assertion_form(key.assertion("c1", TOKEN_URL, now=NOW)))
    assert verifier.authenticate(form, {"c1": client}.get) == client


def test_registered_jwks_and_jwks_uri(verifier: AssertionVerifier) -> None:
    assert _authenticate(verifier, assertion_form(_sign(ES384))).client_id == "bulk"
    remote = _sign(RS384, "remote", header={"jku": JWKS_URL})
    assert _authenticate(verifier, assertion_form(remote)).client_id == "remote"


def test_aud_may_be_an_array_and_client_id_may_repeat_iss(verifier: AssertionVerifier) -> None:
    token = _sign(RS384, aud=["https://other.example", TOKEN_URL])
    assert _authenticate(verifier, assertion_form(token, client_id="bulk")).client_id == "bulk"


def _hs256_with_public_key() -> str:
    """The alg-confusion attack: HMAC keyed with the client's *public* key."""
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
    pem = RS384.key.as_pem(private=False)
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": RS384.kid}).encode())
    claims = {"iss": "bulk", "sub": "bulk", "aud": TOKEN_URL, "exp": NOW + 60, "jti": "hs"}
    payload = b64(json.dumps(claims).encode())
    mac = hmac.new(pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64(mac)}"


def _alg_none() -> str:
    def b64(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()
    claims = {"iss": "bulk", "sub": "bulk", "aud": TOKEN_URL, "exp": NOW + 60, "jti": "n"}
    return f"{b64({'alg': 'none', 'typ': 'JWT', 'kid': RS384.kid})}.{b64(claims)}."


def _raw(header: dict[str, Any]) -> str:
    claims = {"iss": "bulk", "sub": "bulk", "aud": TOKEN_URL, "exp": NOW + 60, "jti": "raw"}
    return raw_rs384(RS384, header, claims)


def test_hand_signed_assertions_verify(verifier: AssertionVerifier) -> None:
    # raw_rs384 is a faithful signer: with an ordinary header it passes.
    token = _raw({"alg": "RS384", "typ": "JWT", "kid": RS384.kid})
    assert _authenticate(verifier, assertion_form(token)).client_id == "bulk"


FAILURES: dict[str, Any] = {
    "wrong aud": lambda: _sign(RS384, aud="https://as.example.org/authorize"),
    "aud is the issuer, not the token URL": lambda: _sign(RS384, aud="https://as.example.org"),
    "expired": lambda: _sign(RS384, exp=NOW - 120),
    "exp more than 5 minutes ahead": lambda: _sign(RS384, exp=NOW + 600),
    "no exp": lambda: _sign(RS384, exp=None),
    "exp not an integer": lambda: _sign(RS384, exp=str(NOW + 60)),
    "nbf in the future": lambda: _sign(RS384, nbf=NOW + 120),
    "no jti": lambda: _sign(RS384, jti=None),
    "unknown kid": lambda: _sign(RS384, header={"kid": "nope"}),
    "kid of another key type": lambda: _sign(RS384, header={"kid": ES384.kid}),
    "no kid": lambda: _sign(RS384, header={"kid": None}),
    "unknown client": lambda: _sign(RS384, "ghost"),
    "iss differs from sub": lambda: _sign(RS384, sub="someone-else"),
    "no iss": lambda: _sign(RS384, iss=None),
    "client is not private_key_jwt": lambda: _sign(RS384, "secret"),
    "HS256 signed with the public key": _hs256_with_public_key,
    "alg none": _alg_none,
    "RS512": lambda: ClientKey("RS512", RS384.kid, RS384.key).assertion(
        "bulk", TOKEN_URL, now=NOW),
    "jku not registered": lambda: _sign(RS384, header={"jku": "https://evil.example/jwks"}),
    "jku on a client with inline jwks": lambda: _sign(RS384, header={"jku": JWKS_URL}),
    "bad signature": lambda: _sign(OTHER_RSA),
    "typ missing": lambda: _raw({"alg": "RS384", "kid": RS384.kid}),
    "typ at+jwt": lambda: _sign(RS384, header={"typ": "at+jwt"}),
    "crit header": lambda: _raw({"alg": "RS384", "typ": "JWT", "kid": RS384.kid,
                                 "crit": ["x-custom"], "x-custom": 1}),
    "not a JWS": lambda: "not-a-jwt",
    "payload not an object": lambda: "eyJhbGciOiJSUzM4NCJ9.WzFd.c2ln",
}


@pytest.mark.parametrize("case", FAILURES)
def test_every_failure_is_invalid_client(verifier: AssertionVerifier, case: str) -> None:
    with pytest.raises(InvalidClient) as info:
        _authenticate(verifier, assertion_form(FAILURES[case]()))
    assert info.value.status == 401


def test_reused_jti_is_invalid_client(verifier: AssertionVerifier) -> None:
    token = _sign(RS384, jti="once")
    _authenticate(verifier, assertion_form(token))
    with pytest.raises(InvalidClient, match="already used"):
        _authenticate(verifier, assertion_form(_sign(RS384, jti="once")))
    # The same jti from another client is that client's own.
    assert _authenticate(verifier, assertion_form(_sign(RS384, "remote", jti="once")))


def test_a_forged_assertion_does_not_burn_the_jti(verifier: AssertionVerifier) -> None:
    with pytest.raises(InvalidClient):
        _authenticate(verifier, assertion_form(_sign(OTHER_RSA, jti="j1")))
    assert _authenticate(verifier, assertion_form(_sign(RS384, jti="j1"))).client_id == "bulk"


@pytest.mark.parametrize("form", [
    {"client_assertion_type": "not_an_assertion_type", "client_assertion": "x"},
    {"client_assertion_type": ASSERTION_TYPE},
    {"client_assertion_type": ASSERTION_TYPE, "client_assertion": ""},
    {"client_assertion": "x"},
])
def test_wrong_assertion_type_or_missing_assertion(verifier: AssertionVerifier,
                                                   form: dict[str, str]) -> None:
    with pytest.raises(InvalidClient):
        _authenticate(verifier, form)


def test_client_id_must_equal_iss(verifier: AssertionVerifier) -> None:
    with pytest.raises(InvalidClient, match="client_id"):
        _authenticate(verifier, assertion_form(_sign(RS384), client_id="remote"))
    with pytest.raises(InvalidRequest):
        _authenticate(verifier, assertion_form(_sign(RS384), client_id=["bulk", "bulk"]))


def test_unobtainable_jwks_uri_is_invalid_client(tmp_path: Path) -> None:
    cache = SqlReplayCache.create(make_engine(f"sqlite:///{tmp_path / 'r.db'}"))
    verifier = AssertionVerifier(TOKEN_URL, cache, lambda client: None, NOW)
    with pytest.raises(InvalidClient, match="could not be obtained"):
        _authenticate(verifier, assertion_form(_sign(RS384, "remote")))


def test_assertion_and_secret_together_is_invalid_request(verifier: AssertionVerifier) -> None:
    form = _multi(assertion_form(_sign(RS384)))
    with pytest.raises(InvalidRequest):
        authenticate_request(None, {**form, "client_secret": ["x"]}, AUTH, verifier)
    with pytest.raises(InvalidRequest):
        authenticate_request("Basic eDp5", form, AUTH, verifier)
    with pytest.raises(InvalidClient):
        authenticate_request(None, form, AUTH, None)
    assert authenticate_request(None, form, AUTH, verifier).client_id == "bulk"


def test_a_private_key_jwt_client_cannot_skip_authentication() -> None:
    with pytest.raises(InvalidClient):
        authenticate_request(None, {"client_id": ["bulk"]}, AUTH, None)
    with pytest.raises(InvalidClient):
        authenticate_request(None, {"client_id": ["bulk"], "client_secret": [""]},
                             AUTH, None)


def test_arbitrary_assertions_only_ever_fail_as_invalid_client(tmp_path: Path) -> None:
    cache = SqlReplayCache.create(make_engine(f"sqlite:///{tmp_path / 'r.db'}"))
    verifier = AssertionVerifier(TOKEN_URL, cache, _keys, NOW)

    @settings(max_examples=300, deadline=None)
    @given(value=st.text(max_size=300) | st.from_regex(r"[A-Za-z0-9_\-]{0,40}\.[A-Za-z0-9_\-]"
                                                         r"{0,80}\.[A-Za-z0-9_\-]{0,40}"),
           kind=st.sampled_from([ASSERTION_TYPE, "x", ""]))
    def check(value: str, kind: str) -> None:
        with pytest.raises(InvalidClient):
            verifier.authenticate({"client_assertion_type": [kind],
                                   "client_assertion": [value]}, CLIENTS.get)

    check()
