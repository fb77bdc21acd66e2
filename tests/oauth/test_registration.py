"""RFC 7591 registration metadata: auth methods, grant/response type consistency, jwks XOR
jwks_uri, the scope ceiling and ``allowed_servers``; every refusal with its RFC 7591 code."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smartrealm.oauth.client_secrets import ClientSecrets, Match
from smartrealm.oauth.errors import OAuthError
from smartrealm.oauth.registration import (
    ANONYMOUS,
    BACKEND_SERVICES,
    EHR_LAUNCH,
    OPERATOR,
    PRIVILEGES,
    Authority,
    register,
)
from smartrealm.realm.config import RealmConfig, load_config
from tests.oauth.assertion_keys import ClientKey

REALM = load_config(None)
KEY = ClientKey.generate("ES384", "k1")
CB = "https://app.example.org/cb"
SECRETS = ClientSecrets(b"k" * 32)
BACKEND: dict[str, Any] = {"grant_types": ["client_credentials"],
                           "token_endpoint_auth_method": "private_key_jwt",
                           "jwks": KEY.jwks(), "scope": "system/*.rs"}


def _register(**meta: Any) -> Any:
    """As the operator registers (client add): validation beyond privileges."""
    return register({k: v for k, v in meta.items() if v is not None}, 1000, REALM,
                    authority=OPERATOR, secrets=SECRETS)


def test_defaults_are_a_confidential_authorization_code_client() -> None:
    reg = _register(redirect_uris=[CB])
    body = reg.response()
    assert body["token_endpoint_auth_method"] == "client_secret_basic"
    assert body["grant_types"] == ["authorization_code", "refresh_token"]
    assert body["response_types"] == ["code"]
    assert reg.secret is not None
    assert SECRETS.check(reg.secret, reg.client.secret_hash) is Match.YES  # the fast hash
    assert body["client_secret"] == reg.secret and "jwks" not in body


def test_backend_services_client() -> None:
    reg = _register(**BACKEND, allowed_servers=["ehr", REALM.server("imaging").base_url + "/"])
    body = reg.response()
    assert reg.secret is None and "client_secret" not in body
    assert body["grant_types"] == ["client_credentials"]
    assert body["response_types"] == [] and body["redirect_uris"] == []
    assert body["jwks"] == KEY.jwks() and body["scope"] == "system/*.rs"
    assert body["allowed_servers"] == ["ehr", "imaging"]
    assert reg.client.grant_types == ("client_credentials",)


def test_private_key_jwt_with_jwks_uri_for_an_app() -> None:
    reg = _register(redirect_uris=[CB], token_endpoint_auth_method="private_key_jwt",
                    jwks_uri="https://app.example.org/jwks.json")
    assert reg.client.jwks_uri == "https://app.example.org/jwks.json"
    assert reg.client.jwks is None and reg.secret is None


def test_public_client() -> None:
    reg = _register(redirect_uris=["http://127.0.0.1:9000/cb"], token_endpoint_auth_method="none")
    assert reg.secret is None and reg.client.is_public


def test_a_chosen_client_id() -> None:
    reg = register({"redirect_uris": [CB]}, 0, REALM, "mine", secrets=SECRETS)
    assert reg.client.client_id == "mine"


INVALID: list[tuple[dict[str, Any], str, str]] = [
    ({}, "invalid_redirect_uri", "required"),
    ({"redirect_uris": "x"}, "invalid_redirect_uri", "array"),
    ({"redirect_uris": ["http://app.example.org/cb"]}, "invalid_redirect_uri", "loopback"),
    ({"redirect_uris": ["https://a.example/cb#x"]}, "invalid_redirect_uri", "fragment"),
    ({"redirect_uris": ["https://[::1/cb"]}, "invalid_redirect_uri", "not a valid URL"),
    ({"redirect_uris": [CB], "token_endpoint_auth_method": "tls_client_auth"},
     "invalid_client_metadata", "token_endpoint_auth_method"),
    ({"redirect_uris": [CB], "grant_types": ["password"]}, "invalid_client_metadata",
     "grant_types"),
    ({"redirect_uris": [CB], "grant_types": []}, "invalid_client_metadata", "grant_types"),
    ({"redirect_uris": [CB], "grant_types": "authorization_code"}, "invalid_client_metadata",
     "array of strings"),
    ({"redirect_uris": [CB], "grant_types": ["refresh_token"]}, "invalid_client_metadata",
     "only with authorization_code"),
    ({"redirect_uris": [CB], "response_types": ["token"]}, "invalid_client_metadata",
     "response_types"),
    ({**BACKEND, "response_types": ["code"]}, "invalid_client_metadata", "response_types"),
    ({"redirect_uris": [CB], "response_types": []}, "invalid_client_metadata",
     "response_types"),
    ({**BACKEND, "token_endpoint_auth_method": "client_secret_basic", "jwks": None},
     "invalid_client_metadata", "requires private_key_jwt"),
    ({**BACKEND, "token_endpoint_auth_method": "none", "jwks": None},
     "invalid_client_metadata", "requires private_key_jwt"),
    ({**BACKEND, "jwks": None}, "invalid_client_metadata", "exactly one of jwks"),
    ({**BACKEND, "jwks_uri": "https://a.example/jwks"}, "invalid_client_metadata",
     "exactly one of jwks"),
    ({**BACKEND, "jwks": None, "jwks_uri": "http://a.example/jwks"},
     "invalid_client_metadata", "https"),
    ({**BACKEND, "jwks": None, "jwks_uri": "https://a.example/jwks#k"},
     "invalid_client_metadata", "fragment"),
    ({**BACKEND, "jwks": None, "jwks_uri": 42}, "invalid_client_metadata", "jwks_uri"),
    ({**BACKEND, "jwks": {"keys": [{"kty": "RSA"}]}}, "invalid_client_metadata", "kid"),
    ({**BACKEND, "jwks": {"keys": [KEY.key.as_dict(private=True) | {"kid": "k"}]}},
     "invalid_client_metadata", "private key material"),
    ({"redirect_uris": [CB], "jwks": KEY.jwks()}, "invalid_client_metadata",
     "only with private_key_jwt"),
    ({**BACKEND, "scope": "patient/*.rs"}, "invalid_client_metadata", "system/"),
    ({**BACKEND, "scope": "system/*.xyz"}, "invalid_client_metadata", "cruds"),
    ({**BACKEND, "scope": 5}, "invalid_client_metadata", "string"),
    ({**BACKEND, "allowed_servers": ["nowhere"]}, "invalid_client_metadata",
     "not a server of this realm"),
    ({**BACKEND, "allowed_servers": ["https://other.example/fhir"]},
     "invalid_client_metadata", "not a server of this realm"),
    ({**BACKEND, "allowed_servers": ["http://[::1"]}, "invalid_client_metadata",
     "not a server of this realm"),
    ({**BACKEND, "allowed_servers": "ehr"}, "invalid_client_metadata", "array of strings"),
    ({"redirect_uris": [CB], "client_name": ["x"]}, "invalid_client_metadata", "string"),
]


@pytest.mark.parametrize(("meta", "code", "text"), INVALID)
def test_invalid_metadata(meta: dict[str, Any], code: str, text: str) -> None:
    with pytest.raises(OAuthError) as info:
        _register(**meta)
    assert (info.value.error, info.value.status) == (code, 400)
    assert text in info.value.description


def test_the_body_must_be_an_object() -> None:
    with pytest.raises(OAuthError) as info:
        register(["redirect_uris"], 0, REALM, secrets=SECRETS)
    assert info.value.error == "invalid_client_metadata"


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=10)
FIELDS = st.sampled_from(["redirect_uris", "grant_types", "response_types", "scope", "jwks",
                          "jwks_uri", "token_endpoint_auth_method", "allowed_servers",
                          "client_name"])


@settings(max_examples=300, deadline=None)
@given(meta=st.dictionaries(FIELDS, JSON | st.just(["https://a.example/cb"]), max_size=6))
def test_arbitrary_metadata_registers_or_fails_with_an_rfc7591_code(
        meta: dict[str, Any]) -> None:
    realm: RealmConfig = REALM
    try:
        register(meta, 0, realm, secrets=SECRETS)
    except OAuthError as exc:
        assert exc.error in ("invalid_client_metadata", "invalid_redirect_uri")
        assert exc.status == 400


# ---------------------------------------------------------------- privileges


PRIVILEGED: list[tuple[dict[str, Any], str, str]] = [
    (BACKEND, BACKEND_SERVICES, "grant_types: client_credentials"),
    ({"redirect_uris": [CB], "scope": "system/*.cruds"}, BACKEND_SERVICES,
     "scope: system/ scopes"),
    ({"redirect_uris": [CB], "scope": "patient/*.rs system/Patient.read"}, BACKEND_SERVICES,
     "scope: system/ scopes"),
    ({"redirect_uris": [CB], "initiate_login_uri": "https://app.example.org/launch"},
     EHR_LAUNCH, "initiate_login_uri"),
]


@pytest.mark.parametrize(("meta", "privilege", "field"), PRIVILEGED)
def test_anonymous_registration_never_gets_a_privilege(meta: dict[str, Any], privilege: str,
                                                       field: str) -> None:
    with pytest.raises(OAuthError) as info:
        # the default authority is the anonymous one
        register(meta, 0, REALM, secrets=SECRETS)
    assert (info.value.error, info.value.status) == ("invalid_client_metadata", 400)
    assert field in info.value.description and privilege in info.value.description
    # An initial access token allowing something else does not help either.
    others = frozenset(PRIVILEGES) - {privilege}
    with pytest.raises(OAuthError):
        register(meta, 0, REALM, authority=Authority(others, ANONYMOUS.source),
                 secrets=SECRETS)


@pytest.mark.parametrize(("meta", "privilege", "field"), PRIVILEGED)
def test_an_authority_with_the_privilege_may_give_it(meta: dict[str, Any], privilege: str,
                                                      field: str) -> None:
    reg = register(meta, 0, REALM, authority=Authority(frozenset({privilege}), "t"),
                   secrets=SECRETS)
    assert reg.client.client_id


def test_a_body_cannot_choose_client_id_or_secret() -> None:
    reg = register({"redirect_uris": [CB], "client_id": "smartrealm-demo-app",
                    "client_secret": "chosen-by-the-caller"}, 0, REALM, secrets=SECRETS)
    assert reg.client.client_id != "smartrealm-demo-app"
    assert reg.secret != "chosen-by-the-caller"


def test_software_statements_are_refused() -> None:
    with pytest.raises(OAuthError) as info:
        register({"redirect_uris": [CB], "software_statement": "eyJ.x.y"}, 0, REALM,
                 authority=OPERATOR, secrets=SECRETS)
    assert (info.value.error, info.value.status) == ("unapproved_software_statement", 400)


ANY_META = st.fixed_dictionaries({}, optional={
    "redirect_uris": st.just([CB]),
    "grant_types": st.sampled_from([["client_credentials"], ["authorization_code"],
                                    ["authorization_code", "client_credentials"]]),
    "scope": st.sampled_from(["system/*.rs", "system/*.cruds patient/*.rs", "user/*.rs",
                              "patient/Patient.r system/Observation.rs"]),
    "token_endpoint_auth_method": st.sampled_from(["private_key_jwt", "none"]),
    "jwks": st.just(KEY.jwks()),
    "initiate_login_uri": st.just("https://a.example/launch"),
})


@settings(max_examples=300, deadline=None)
@given(meta=ANY_META)
def test_no_anonymous_registration_carries_system_access(meta: dict[str, Any]) -> None:
    """Whatever combination is asked for, an anonymous registration that succeeds has no
    client_credentials grant, no system/ scope and no launch URL."""
    try:
        reg = register(meta, 0, REALM, authority=ANONYMOUS, secrets=SECRETS)
    except OAuthError as exc:
        assert exc.status == 400
        return
    assert "client_credentials" not in reg.client.grant_types
    assert "system/" not in reg.client.scope
    assert "initiate_login_uri" not in meta


# ---------------------------------------------------------------- jwks_uri addresses


PUBLIC_ONLY_REALM = replace(REALM, auth_server=replace(REALM.auth_server,
                                                       private_fetch_networks=()))


@pytest.mark.parametrize(("uri", "reason"), [
    ("https://10.0.0.5/jwks", "private"), ("https://192.168.1.10/jwks", "private"),
    ("https://169.254.169.254/latest/meta-data", "link-local"),
    ("https://[fe80::1]/jwks", "link-local"), ("https://[fd00::1]/jwks", "private"),
    ("https://100.64.1.1/jwks", "CGNAT"), ("https://0.0.0.0/jwks", "unspecified"),
    ("https://[::ffff:127.0.0.1]/jwks", "loopback"), ("http://127.0.0.1:9/jwks", "loopback"),
    ("http://localhost:9/jwks", "loopback"), ("https://keys.localhost/jwks", "loopback"),
    ("https://[::1]/jwks", "loopback"),
])
def test_jwks_uri_on_a_forbidden_literal_address(uri: str, reason: str) -> None:
    meta = {**BACKEND, "jwks": None, "jwks_uri": uri}
    with pytest.raises(OAuthError) as info:
        register({k: v for k, v in meta.items() if v is not None}, 0, PUBLIC_ONLY_REALM,
                 authority=OPERATOR, secrets=SECRETS)
    assert (info.value.error, info.value.status) == ("invalid_client_metadata", 400)
    assert "jwks_uri" in info.value.description and reason in info.value.description


def test_jwks_uri_names_and_allowed_networks() -> None:
    meta = {**BACKEND, "jwks": None}
    meta = {k: v for k, v in meta.items() if v is not None}
    # A name is judged where the AS connects (authz/safe_fetch.py), not here.
    assert register({**meta, "jwks_uri": "https://keys.example.org/jwks"}, 0,
                    PUBLIC_ONLY_REALM, authority=OPERATOR, secrets=SECRETS).client.jwks_uri
    # The default (development) realm lists loopback; private networks stay refused.
    assert register({**meta, "jwks_uri": "http://127.0.0.1:9/jwks"}, 0, REALM,
                    authority=OPERATOR, secrets=SECRETS).client.jwks_uri
    with pytest.raises(OAuthError):
        register({**meta, "jwks_uri": "https://10.0.0.5/jwks"}, 0, REALM,
                 authority=OPERATOR, secrets=SECRETS)
