"""The early read route (fhir/app.py: ``/{type:letters}/{id:FHIR id}``) takes only reads:
discovery, type history and odd ids still reach their own routes, as before."""

from __future__ import annotations

from tests.fhir.conftest import Realm


async def test_discovery_is_not_taken_for_a_read(rs: Realm) -> None:
    response = await rs.get(f"{rs.ehr}/.well-known/smart-configuration")
    assert response.status_code == 200
    assert "scopes_supported" in response.json()
    assert (await rs.get(f"{rs.ehr}/metadata")).json()["resourceType"] == "CapabilityStatement"


async def test_history_and_invalid_ids_keep_their_routes(rs: Realm) -> None:
    token = rs.token("user/Patient.rs")
    history = await rs.get(f"{rs.ehr}/Patient/_history", token)
    assert history.status_code == 200 and history.json()["type"] == "history"
    assert (await rs.get(f"{rs.ehr}/Patient/bad_id", token)).status_code == 400
    assert (await rs.get(f"{rs.ehr}/Patient/p0012", token)).json()["id"] == "p0012"
    assert (await rs.get(f"{rs.ehr}/Nothing/p0012", token)).status_code == 404
    assert (await rs.get(f"{rs.ehr}/Patient/p0012")).status_code == 401
