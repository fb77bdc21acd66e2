"""Backend Services against the real AS app (SMART §9, §4.5, §12.1 group 3): discovery, a
client registered with its JWK Set, client_credentials with RS384 and ES384 assertions, and
every private_key_jwt failure with its exact status and code."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from smartrealm.oauth.registration import BACKEND_SERVICES
from smartrealm.realm.config import RealmConfig
from tests.authz.conftest import Flow, authorize_code
from tests.initial_tokens import bearer
from tests.oauth.assertion_keys import ClientKey, assertion_form, raw_rs384

RS384 = ClientKey.generate("RS384", "rsa-1")
ES384 = ClientKey.generate("ES384", "ec-1")


def _error(response: httpx.Response, status: int, error: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"] == error
    assert response.json()["error_description"]  # §9: SHOULD explain
    assert "no-store" in response.headers["cache-control"]


async def register(ua: httpx.AsyncClient, realm: RealmConfig, **meta: Any) -> str:
    body = {"client_name": "bulk exporter", "grant_types": ["client_credentials"],
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": {"keys": [RS384.public_jwk(), ES384.public_jwk()]},
            "scope": "system/*.rs", **meta}
    response = await ua.post("/register", json=body, headers=bearer(realm, BACKEND_SERVICES))
    assert response.status_code == 201, response.text
    client_id: str = response.json()["client_id"]
    return client_id


@pytest.fixture
async def backend(ua: httpx.AsyncClient, realm: RealmConfig) -> str:
    return await register(ua, realm)


def _assertion(realm: RealmConfig, client_id: str, key: ClientKey = RS384, **kw: Any) -> str:
    return key.assertion(client_id, realm.auth_server.token_endpoint, **kw)


async def token(ua: httpx.AsyncClient, assertion: str, scope: str | None = "system/*.rs",
                **extra: str | list[str]) -> httpx.Response:
    data: dict[str, Any] = assertion_form(assertion, grant_type="client_credentials", **extra)
    if scope is not None:
        data["scope"] = scope
    return await ua.post("/token", data=data)


async def _claims(ua: httpx.AsyncClient, access_token: str) -> dict[str, Any]:
    keys = KeySet.import_key_set((await ua.get("/jwks")).json())
    return dict(jwt.decode(access_token, keys).claims)


@pytest.mark.parametrize("key", [RS384, ES384], ids=["RS384", "ES384"])
async def test_client_credentials(ua: httpx.AsyncClient, realm: RealmConfig, backend: str,
                                  key: ClientKey) -> None:
    response = await token(ua, _assertion(realm, backend, key))
    assert response.status_code == 200, response.text
    assert response.headers["pragma"] == "no-cache"
    body = response.json()
    assert body["token_type"] == "Bearer" and body["scope"] == "system/*.rs"
    assert isinstance(body["expires_in"], int) and 0 < body["expires_in"] <= 300
    assert "refresh_token" not in body and "id_token" not in body
    bases = [rs.base_url for rs in realm.resource_servers]
    assert [d["locations"] for d in body["authorization_details"]] == [[b] for b in bases]
    claims = await _claims(ua, body["access_token"])
    assert claims["aud"] == bases
    assert claims["sub"] == claims["client_id"] == backend
    assert claims["exp"] - claims["iat"] == body["expires_in"]
    assert "patient" not in claims and "fhirUser" not in claims


async def test_resources_pick_the_servers(ua: httpx.AsyncClient, realm: RealmConfig,
                                          backend: str) -> None:
    ehr, lab = realm.server("ehr").base_url, realm.server("lab").base_url
    response = await token(ua, _assertion(realm, backend), "system/Patient.rs system/*.rs",
                           resource=[ehr, lab])
    assert response.status_code == 200, response.text
    claims = await _claims(ua, response.json()["access_token"])
    assert claims["aud"] == [ehr, lab]
    assert [d["scope"] for d in claims["authorization_details"]] == \
        ["system/Patient.rs system/*.rs"] * 2


async def test_allowed_servers(ua: httpx.AsyncClient, realm: RealmConfig) -> None:
    client = await register(ua, realm, allowed_servers=["imaging"])
    ok = await token(ua, _assertion(realm, client))
    assert (await _claims(ua, ok.json()["access_token"]))["aud"] == \
        [realm.server("imaging").base_url]
    refused = await token(ua, _assertion(realm, client), resource=realm.server("ehr").base_url)
    _error(refused, 400, "invalid_target")


def _hs256(realm: RealmConfig, client_id: str) -> str:
    """The alg-confusion attack: an HMAC keyed with the client's public key."""
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": RS384.kid}).encode())
    body = b64(json.dumps({"iss": client_id, "sub": client_id, "jti": "h",
                           "aud": realm.auth_server.token_endpoint,
                           "exp": int(time.time()) + 60}).encode())
    mac = hmac.new(RS384.key.as_pem(private=False), f"{head}.{body}".encode(), hashlib.sha256)
    return f"{head}.{body}.{b64(mac.digest())}"


def _none(realm: RealmConfig, client_id: str) -> str:
    token = raw_rs384(RS384, {"alg": "none", "typ": "JWT", "kid": RS384.kid},
                      {"iss": client_id, "sub": client_id, "jti": "n",
                       "aud": realm.auth_server.token_endpoint,
                       "exp": int(time.time()) + 60})
    return token.rsplit(".", 1)[0] + "."


FAILURES: dict[str, Any] = {
    "wrong aud": lambda r, c: RS384.assertion(c, r.auth_server.issuer + "/authorize"),
    "expired": lambda r, c: _assertion(r, c, exp=int(time.time()) - 120),
    "exp more than 5 minutes ahead": lambda r, c: _assertion(r, c, exp=int(time.time()) + 900),
    "wrong kid": lambda r, c: _assertion(r, c, header={"kid": "nope"}),
    "unknown client": lambda r, c: _assertion(r, "no-such-client"),
    "iss differs from sub": lambda r, c: _assertion(r, c, sub="other"),
    "HS256 signed with the public key": _hs256,
    "alg none": _none,
    "jku not registered": lambda r, c: _assertion(r, c, header={"jku": "https://x.example/j"}),
    "bad signature": lambda r, c: _assertion(r, c, ClientKey.generate("RS384", "rsa-1")),
    "no jti": lambda r, c: _assertion(r, c, jti=None),
}


@pytest.mark.parametrize("case", FAILURES)
async def test_every_assertion_failure_is_401_invalid_client(
        ua: httpx.AsyncClient, realm: RealmConfig, backend: str, case: str) -> None:
    response = await token(ua, FAILURES[case](realm, backend))
    _error(response, 401, "invalid_client")
    assert "www-authenticate" not in response.headers  # no Basic was tried


async def test_reused_jti_is_401_invalid_client(ua: httpx.AsyncClient, realm: RealmConfig,
                                                backend: str) -> None:
    assertion = _assertion(realm, backend)
    assert (await token(ua, assertion)).status_code == 200
    _error(await token(ua, assertion), 401, "invalid_client")


async def test_wrong_assertion_type_is_401_invalid_client(
        ua: httpx.AsyncClient, realm: RealmConfig, backend: str) -> None:
    # §12.1 invalid_client_assertion: 400 or 401 are accepted; every failure is invalid_client.
    response = await token(ua, _assertion(realm, backend),
                           client_assertion_type="not_an_assertion_type")
    _error(response, 401, "invalid_client")


async def test_invalid_grant_type_is_exactly_400(ua: httpx.AsyncClient, realm: RealmConfig,
                                                 backend: str) -> None:
    response = await ua.post("/token", data=assertion_form(
        _assertion(realm, backend), grant_type="not_a_grant_type", scope="system/*.rs"))
    _error(response, 400, "unsupported_grant_type")


@pytest.mark.parametrize(("scope", "error"), [
    ("system/*.cruds", "invalid_scope"),
    ("patient/*.rs", "invalid_scope"),
    ("system/*.rs openid", "invalid_scope"),
    (None, "invalid_scope"),
])
async def test_scope_outside_the_ceiling(ua: httpx.AsyncClient, realm: RealmConfig,
                                         backend: str, scope: str | None, error: str) -> None:
    _error(await token(ua, _assertion(realm, backend), scope), 400, error)


async def test_unregistered_grants_are_unauthorized_client(
        ua: httpx.AsyncClient, realm: RealmConfig, backend: str) -> None:
    response = await ua.post("/token", data=assertion_form(
        _assertion(realm, backend), grant_type="authorization_code", code="x",
        redirect_uri="https://a/cb", code_verifier="v" * 43))
    _error(response, 400, "unauthorized_client")
    public = await ua.post("/token", data={"grant_type": "client_credentials",
                                           "client_id": "smartrealm-demo-app",
                                           "scope": "system/*.rs"})
    _error(public, 400, "unauthorized_client")


async def test_assertion_with_a_secret_is_invalid_request(
        ua: httpx.AsyncClient, realm: RealmConfig, backend: str) -> None:
    response = await token(ua, _assertion(realm, backend), client_secret="x")
    _error(response, 400, "invalid_request")


async def test_private_key_jwt_app_exchanges_its_code(ua: httpx.AsyncClient,
                                                      realm: RealmConfig) -> None:
    flow = Flow(realm)
    response = await ua.post("/register", json={
        "client_name": "asymmetric app", "redirect_uris": [flow.redirect_uri],
        "token_endpoint_auth_method": "private_key_jwt", "jwks": ES384.jwks()})
    assert response.status_code == 201, response.text
    flow.client_id = response.json()["client_id"]
    code = await authorize_code(ua, flow)
    data = {"grant_type": "authorization_code", "code": code,
            "redirect_uri": flow.redirect_uri, "code_verifier": flow.verifier}
    unauthenticated = await ua.post("/token", data={**data, "client_id": flow.client_id})
    _error(unauthenticated, 401, "invalid_client")
    code = await authorize_code(ua, flow)
    exchanged = await ua.post("/token", data=assertion_form(
        _assertion(realm, flow.client_id, ES384), **{**data, "code": code}))
    assert exchanged.status_code == 200, exchanged.text
    assert exchanged.json()["patient"] == "p0012"


@pytest.mark.parametrize("path", ["/.well-known/openid-configuration",
                                  "/.well-known/smart-configuration"])
async def test_discovery(ua: httpx.AsyncClient, path: str) -> None:
    meta = (await ua.get(path)).json()
    assert "client_credentials" in meta["grant_types_supported"]
    assert "private_key_jwt" in meta["token_endpoint_auth_methods_supported"]
    assert {"RS384", "ES384"} <= set(meta["token_endpoint_auth_signing_alg_values_supported"])
    assert not {"none", "HS256"} & set(meta["token_endpoint_auth_signing_alg_values_supported"])
    assert "system/*.rs" in meta["scopes_supported"]
    if "capabilities" in meta:
        assert "client-confidential-asymmetric" in meta["capabilities"]


@pytest.mark.parametrize(("meta", "error"), [
    ({"jwks": None}, "invalid_client_metadata"),
    ({"jwks_uri": "https://client.example/jwks"}, "invalid_client_metadata"),
    ({"token_endpoint_auth_method": "client_secret_basic", "jwks": None},
     "invalid_client_metadata"),
    ({"scope": "patient/*.rs"}, "invalid_client_metadata"),
    ({"allowed_servers": ["mars"]}, "invalid_client_metadata"),
    ({"grant_types": ["authorization_code"]}, "invalid_redirect_uri"),
    ({"jwks": {"keys": [RS384.key.as_dict(private=True) | {"kid": "x"}]}},
     "invalid_client_metadata"),
])
async def test_registration_errors(ua: httpx.AsyncClient, realm: RealmConfig,
                                   meta: dict[str, Any], error: str) -> None:
    body = {"grant_types": ["client_credentials"], "scope": "system/*.rs",
            "token_endpoint_auth_method": "private_key_jwt", "jwks": RS384.jwks(), **meta}
    response = await ua.post("/register", json={k: v for k, v in body.items() if v is not None},
                             headers=bearer(realm, BACKEND_SERVICES))
    assert response.status_code == 400, response.text
    assert response.json()["error"] == error
