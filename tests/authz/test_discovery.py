"""Discovery documents, JWKS, brands and dynamic client registration."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from smartrealm.authz.app import build_auth_server
from smartrealm.fhir.app import build_resource_server
from smartrealm.realm.config import RealmConfig

RFC8414 = "/.well-known/oauth-authorization-server"
# What a FHIR server's smart-configuration says about itself rather than about the AS
# (SMART 2.2 §1.1: it SHALL support every scope it lists; §1.3 associated_endpoints).
SERVER_SPECIFIC = {"scopes_supported", "capabilities", "associated_endpoints"}


async def test_openid_configuration(ua: httpx.AsyncClient, realm: RealmConfig) -> None:
    response = await ua.get("/.well-known/openid-configuration")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    doc = response.json()
    a = realm.auth_server
    assert doc["issuer"] == a.issuer and doc["jwks_uri"] == a.jwks_uri
    assert doc["authorization_endpoint"] == a.authorization_endpoint
    assert doc["token_endpoint"] == a.token_endpoint
    assert doc["registration_endpoint"] == a.registration_endpoint
    assert doc["response_types_supported"] == ["code"]
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert doc["subject_types_supported"] == ["public"]
    assert doc["id_token_signing_alg_values_supported"] == ["RS256"]
    assert doc["grant_types_supported"] == ["authorization_code", "refresh_token",
                                            "client_credentials"]
    assert set(doc["token_endpoint_auth_methods_supported"]) == {
        "none", "client_secret_basic", "client_secret_post", "private_key_jwt"}
    assert doc["token_endpoint_auth_signing_alg_values_supported"] == [
        "RS384", "ES384", "RS256", "ES256"]


async def test_rfc8414_metadata_at_the_well_known_path(ua: httpx.AsyncClient,
                                                       realm: RealmConfig) -> None:
    response = await ua.get(RFC8414)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    doc = response.json()
    # RFC 8414 §3.2: issuer identical to the one the URL was built from; §2 REQUIRED members.
    assert doc["issuer"] == realm.auth_server.issuer
    assert doc["response_types_supported"] == ["code"]
    assert doc["authorization_endpoint"] == realm.auth_server.authorization_endpoint
    assert doc["token_endpoint"] == realm.auth_server.token_endpoint
    assert doc == (await ua.get("/.well-known/openid-configuration")).json()


async def test_rfc8414_inserts_the_issuer_path(realm: RealmConfig) -> None:
    issuer = "http://127.0.0.1:8700/realm/one"
    app = build_auth_server(replace(realm, auth_server=replace(realm.auth_server,
                                                               issuer=issuer)))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://127.0.0.1:8700") as c:
        # §3.1: the well-known suffix goes between the host and the issuer's path.
        inserted = await c.get(f"{RFC8414}/realm/one")
        assert inserted.status_code == 200 and inserted.json()["issuer"] == issuer
        assert inserted.json()["token_endpoint"] == f"{issuer}/token"
        # The OIDC-style form (suffix after the issuer) is answered too (§5).
        appended = await c.get(f"/realm/one{RFC8414}")
        assert appended.json() == inserted.json()
        # Nothing at the root: its issuer would not match the URL (§3.3).
        assert (await c.get(RFC8414)).status_code == 404


async def test_every_discovery_document_agrees_with_the_as_metadata(
        ua: httpx.AsyncClient, realm: RealmConfig) -> None:
    as_metadata = (await ua.get(RFC8414)).json()
    assert (await ua.get("/.well-known/openid-configuration")).json() == as_metadata
    as_smart = (await ua.get("/.well-known/smart-configuration")).json()
    documents = {"AS smart-configuration": as_smart}
    quiet = replace(realm, sample_data=False)
    for rs in realm.resource_servers:
        app = build_resource_server(quiet, rs.id)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url=rs.base_url) as fhir:
            response = await fhir.get(f"{rs.base_url}/.well-known/smart-configuration")
        assert response.status_code == 200, rs.id
        documents[f"{rs.id} smart-configuration"] = response.json()
    for name, doc in documents.items():
        # Field by field: every member of the AS metadata, with the AS's value, except
        # what a FHIR server says about itself.
        for member, value in as_metadata.items():
            if member in SERVER_SPECIFIC and name != "AS smart-configuration":
                continue
            assert doc.get(member) == value, (name, member)
        extra = set(doc) - set(as_metadata) - SERVER_SPECIFIC
        assert extra == {"user_access_brand_bundle", "user_access_brand_identifier"}, name
        for member in extra:
            assert doc[member] == as_smart[member], (name, member)
        assert set(doc["capabilities"]) <= set(as_smart["capabilities"]), name
    assert "none" in documents["ehr smart-configuration"][
        "token_endpoint_auth_methods_supported"]


async def test_smart_configuration(ua: httpx.AsyncClient) -> None:
    doc = (await ua.get("/.well-known/smart-configuration")).json()
    assert "auth-multi-aud-token" in doc["capabilities"]
    assert doc["code_challenge_methods_supported"] == ["S256"]


async def test_jwks_publishes_public_parts_only(ua: httpx.AsyncClient) -> None:
    keys = (await ua.get("/jwks")).json()["keys"]
    assert len(keys) == 1
    key = keys[0]
    assert key["kty"] == "RSA" and key["use"] == "sig" and key["alg"] == "RS256"
    assert key["kid"] and key["n"] and key["e"]
    assert not {"d", "p", "q", "dp", "dq", "qi"} & set(key)


async def test_brands_etag_and_304(ua: httpx.AsyncClient) -> None:
    response = await ua.get("/brands.json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/fhir+json")
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.json()["resourceType"] == "Bundle"
    etag = response.headers["etag"]
    assert etag.startswith('W/"')
    again = await ua.get("/brands.json", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    other = await ua.get("/brands.json", headers={"If-None-Match": 'W/"other"'})
    assert other.status_code == 200


async def test_keys_survive_a_restart(realm: RealmConfig) -> None:
    first = build_auth_server(realm)
    second = build_auth_server(realm)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=first),
                                 base_url="http://as") as a, \
            httpx.AsyncClient(transport=httpx.ASGITransport(app=second),
                              base_url="http://as") as b:
        assert (await a.get("/jwks")).json() == (await b.get("/jwks")).json()


async def test_directory_key_storage(realm: RealmConfig, tmp_path: Path) -> None:
    keydir = tmp_path / "keys"
    realm = replace(realm, auth_server=replace(realm.auth_server, key_storage=str(keydir)))
    app = build_auth_server(realm)
    files = list(keydir.glob("*.json"))
    assert len(files) == 1 and (files[0].stat().st_mode & 0o777) == 0o600
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://as") as c:
        assert (await c.get("/jwks")).json()["keys"][0]["kid"] == files[0].stem


async def test_register_public_client(ua: httpx.AsyncClient) -> None:
    response = await ua.post("/register", json={
        "client_name": "App", "token_endpoint_auth_method": "none",
        "redirect_uris": ["http://localhost:9000/cb"], "scope": "patient/*.rs"})
    assert response.status_code == 201
    body = response.json()
    assert body["client_id"] and isinstance(body["client_id_issued_at"], int)
    assert "client_secret" not in body
    assert body["token_endpoint_auth_method"] == "none"


async def test_register_confidential_client_by_default(ua: httpx.AsyncClient) -> None:
    body = (await ua.post("/register", json={
        "redirect_uris": ["https://app.example/cb"]})).json()
    assert body["token_endpoint_auth_method"] == "client_secret_basic"
    assert len(body["client_secret"]) >= 32


@pytest.mark.parametrize(("meta", "error"), [
    ({"redirect_uris": ["http://app.example/cb"]}, "invalid_redirect_uri"),
    ({"redirect_uris": ["https://app.example/cb#x"]}, "invalid_redirect_uri"),
    ({"redirect_uris": ["/relative"]}, "invalid_redirect_uri"),
    ({"redirect_uris": ["javascript:alert(1)"]}, "invalid_redirect_uri"),
    ({"redirect_uris": []}, "invalid_redirect_uri"),
    ({}, "invalid_redirect_uri"),
    ({"redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": "tls"},
     "invalid_client_metadata"),
    ({"redirect_uris": ["https://a.example/cb"], "grant_types": ["implicit"]},
     "invalid_client_metadata"),
    ({"redirect_uris": ["https://a.example/cb"], "scope": "patient/X.zz"},
     "invalid_client_metadata"),
    ([1, 2], "invalid_client_metadata"),
])
async def test_register_rejects_bad_metadata(ua: httpx.AsyncClient, meta: object,
                                             error: str) -> None:
    response = await ua.post("/register", json=meta)
    assert response.status_code == 400
    assert response.json()["error"] == error


async def test_register_rejects_non_json(ua: httpx.AsyncClient) -> None:
    response = await ua.post("/register", content=b"not json",
                             headers={"Content-Type": "application/json"})
    assert (response.status_code, response.json()["error"]) == (400, "invalid_client_metadata")


async def test_registration_closed(realm: RealmConfig) -> None:
    app = build_auth_server(replace(realm, dynamic_registration="closed"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://as") as c:
        response = await c.post("/register", json={"redirect_uris": ["https://a.example/cb"]})
        assert response.status_code == 403
        assert response.json()["error"] == "access_denied"
        doc = (await c.get("/.well-known/openid-configuration")).json()
        assert "registration_endpoint" not in doc
