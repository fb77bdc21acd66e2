"""The code exchange may narrow ``scope`` (issue 3: "the token request may narrow scope ...
never widen"; SMART §4.3 applies the same rule to a refresh): a subset is granted exactly,
on every server of the audience; anything beyond the grant is ``invalid_scope`` and uses
the code up."""

from __future__ import annotations

import httpx

from smartrealm.realm.config import RealmConfig
from tests.authz.conftest import Flow, authorize_code, exchange

SCOPE = ("launch/patient openid fhirUser offline_access patient/Patient.rs "
         "patient/Observation.rs patient/ImagingStudy.rs")


async def test_the_code_exchange_narrows_scope(ua: httpx.AsyncClient,
                                               realm: RealmConfig) -> None:
    flow = Flow(realm, scope=SCOPE, resources=("ehr", "imaging"))
    response = await exchange(ua, flow, await authorize_code(ua, flow),
                              scope="launch/patient patient/Patient.rs")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["scope"] == "launch/patient patient/Patient.rs"
    assert [d["scope"] for d in body["authorization_details"]] == [
        "launch/patient patient/Patient.rs"] * 2
    assert "id_token" not in body  # openid was left out


async def test_the_same_scope_is_granted_unchanged(ua: httpx.AsyncClient,
                                                   realm: RealmConfig) -> None:
    flow = Flow(realm, scope=SCOPE, resources=("ehr",))
    code = await authorize_code(ua, flow)
    full = await exchange(ua, flow, code, scope=None)
    flow2 = Flow(realm, scope=SCOPE, resources=("ehr",))
    same = await exchange(ua, flow2, await authorize_code(ua, flow2),
                          scope=full.json()["scope"])
    assert same.status_code == 200 and same.json()["scope"] == full.json()["scope"]


async def test_a_wider_scope_is_invalid_scope_and_uses_the_code_up(
        ua: httpx.AsyncClient, realm: RealmConfig) -> None:
    flow = Flow(realm, scope=SCOPE, resources=("ehr",))
    code = await authorize_code(ua, flow)
    wider = await exchange(ua, flow, code, scope="patient/Patient.rs patient/Condition.rs")
    assert wider.status_code == 400 and wider.json()["error"] == "invalid_scope"
    again = await exchange(ua, flow, code)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
