"""The client_credentials grant (SMART §9): who may use it, the scope ceiling, the servers a
token is for and each server's share."""

from __future__ import annotations

from typing import Any

import pytest

from smartrealm.oauth.client_credentials import backend_grant
from smartrealm.oauth.errors import OAuthError
from smartrealm.oauth.store import PRIVATE_KEY_JWT, Client
from smartrealm.realm.config import load_config

REALM = load_config(None)
EHR, IMAGING, LAB = (REALM.server(s).base_url for s in ("ehr", "imaging", "lab"))


def _client(**fields: Any) -> Client:
    defaults: dict[str, Any] = {"auth_method": PRIVATE_KEY_JWT,
                                "grant_types": ("client_credentials",),
                                "scope": "system/*.rs", "jwks": {"keys": []}}
    return Client("bulk", "Bulk", (), **{**defaults, **fields})


def _fails(code: str, client: Client, scope: str | None, resources: list[str] | None = None
           ) -> str:
    with pytest.raises(OAuthError) as info:
        backend_grant(REALM, client, scope, resources or [])
    assert (info.value.error, info.value.status) == (code, 400)
    return info.value.description


def test_default_audience_is_every_server_with_per_server_scopes() -> None:
    grant = backend_grant(REALM, _client(), "system/*.rs", [])
    assert grant.base_urls == [EHR, IMAGING, LAB]
    assert grant.subject == grant.client_id == "bulk"
    assert [d["scope"] for d in grant.authorization_details()] == ["system/*.rs"] * 3
    assert grant.context() == {} and grant.fhir_user is None


def test_resources_select_servers_in_request_order() -> None:
    grant = backend_grant(REALM, _client(), "system/Patient.rs", [IMAGING, EHR + "/"])
    assert grant.base_urls == [IMAGING, EHR]


def test_allowed_servers_limit_the_default_and_refuse_others() -> None:
    client = _client(allowed_servers=("lab",))
    assert backend_grant(REALM, client, "system/*.rs", []).base_urls == [LAB]
    _fails("invalid_target", client, "system/*.rs", [EHR])


def test_a_server_gets_only_the_types_it_holds() -> None:
    grant = backend_grant(REALM, _client(), "system/ImagingStudy.rs system/Patient.rs", [])
    shares = {d["locations"][0]: d["scope"] for d in grant.authorization_details()}
    assert shares == {EHR: "system/Patient.rs", LAB: "system/Patient.rs",
                      IMAGING: "system/ImagingStudy.rs system/Patient.rs"}


def test_servers_that_would_get_nothing_are_left_out() -> None:
    grant = backend_grant(REALM, _client(), "system/ImagingStudy.rs", [EHR, IMAGING])
    assert grant.base_urls == [IMAGING]
    assert "none of the selected servers" in _fails(
        "invalid_scope", _client(), "system/ImagingStudy.rs", [EHR])


def test_servers_grant_only_what_they_answer() -> None:
    # The lab server reads and searches only (r, s; fhir/interactions.py); the EHR also
    # writes. v1 spelling survives.
    grant = backend_grant(REALM, _client(scope="system/*.cruds"), "system/*.cruds", [LAB])
    assert grant.scope == "system/*.rs"
    grant = backend_grant(REALM, _client(scope="system/*.cruds"), "system/*.cruds", [EHR])
    assert grant.scope == "system/*.cruds"
    grant = backend_grant(REALM, _client(scope="system/*.*"), "system/*.read", [EHR])
    assert grant.scope == "system/*.read"


def test_union_of_ceiling_scopes_counts() -> None:
    client = _client(scope="system/Patient.r system/Patient.s")
    assert backend_grant(REALM, client, "system/Patient.rs", [EHR]).scope == "system/Patient.rs"


@pytest.mark.parametrize(("scope", "text"), [
    (None, "required"),
    ("  ", "required"),
    ("system/*.cruds", "outside"),
    ("system/Observation.rs system/*.rs", "outside"),
    ("patient/*.rs", "outside"),
    ("user/Patient.rs", "outside"),
    ("openid", "without a user"),
    ("system/*.rs offline_access", "without a user"),
    ("system/Patient.xyz", "cruds"),
])
def test_scope_must_lie_within_the_ceiling(scope: str | None, text: str) -> None:
    client = _client(scope="system/Patient.rs system/Observation.rs")
    assert text in _fails("invalid_scope", client, scope)


def test_granular_ceiling() -> None:
    lab = "system/Observation.rs?category=http://terminology.hl7.org/CodeSystem/" \
          "observation-category|laboratory"
    client = _client(scope=lab)
    assert backend_grant(REALM, client, lab, [LAB]).scope == lab
    _fails("invalid_scope", client, "system/Observation.rs", [LAB])


@pytest.mark.parametrize("client", [
    _client(grant_types=("authorization_code",)),
    _client(auth_method="none"),
    _client(scope=""),
    _client(scope="patient/*.rs"),
    _client(scope="system/*.bad"),
])
def test_clients_not_registered_for_backend_services(client: Client) -> None:
    _fails("unauthorized_client", client, "system/*.rs")


@pytest.mark.parametrize("resource", ["ehr", "https://elsewhere.example/fhir",
                                      EHR + "#frag"])
def test_bad_resources_are_invalid_target(resource: str) -> None:
    _fails("invalid_target", _client(), "system/*.rs", [resource])
