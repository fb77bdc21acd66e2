"""The EHR serves its sample medication orders, allergies, procedures and notes (searchable
by patient and by their codes), and a patient/ read of the patient's own record keeps every
restriction of the token (fhir/rest/handlers.py answers the plain ``_id`` case without a query)."""

from __future__ import annotations

import httpx

from tests.fhir.conftest import Realm

SCOPES = ("patient/Patient.rs patient/MedicationRequest.rs patient/AllergyIntolerance.rs "
          "patient/Procedure.rs patient/DocumentReference.rs")


def ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text[:300]
    return sorted(e["resource"]["id"] for e in response.json().get("entry", []))


async def test_new_types_are_searchable_by_patient(rs: Realm) -> None:
    token = rs.token(SCOPES, patient="p0012")
    base = rs.ehr
    assert ids(await rs.get(f"{base}/MedicationRequest?patient=p0012", token)) == \
        ["medrx-p0012-1", "medrx-p0012-2"]
    assert ids(await rs.get(f"{base}/AllergyIntolerance?patient=p0012", token)) == \
        ["allergy-p0012-1"]
    assert ids(await rs.get(f"{base}/Procedure?patient=p0012&encounter=enc-p0012-2",
                            token)) == ["proc-p0012-2"]
    assert ids(await rs.get(f"{base}/DocumentReference?type=http://loinc.org|11506-3",
                            token)) == ["note-p0012-1"]
    rx = "http://www.nlm.nih.gov/research/umls/rxnorm|314076"
    assert ids(await rs.get(f"{base}/MedicationRequest?code={rx}&status=active", token)) \
        == ["medrx-p0012-1"]


async def test_other_patients_records_stay_out_of_reach(rs: Realm) -> None:
    token = rs.token(SCOPES, patient="p0012")
    response = await rs.get(f"{rs.ehr}/MedicationRequest/medrx-p0001-1", token)
    assert response.status_code == 403
    assert (await rs.get(f"{rs.ehr}/MedicationRequest/medrx-p0012-1", token)).status_code \
        == 200


async def test_own_patient_read_still_applies_granular_constraints(rs: Realm) -> None:
    # p0012 (Pat Example) is female: the gender constraint must still be checked.
    male = rs.token("patient/Patient.rs?gender=male", patient="p0012")
    assert (await rs.get(f"{rs.ehr}/Patient/p0012", male)).status_code == 403
    female = rs.token("patient/Patient.rs?gender=female", patient="p0012")
    assert (await rs.get(f"{rs.ehr}/Patient/p0012", female)).status_code == 200
    plain = rs.token("patient/Patient.rs", patient="p0012")
    assert (await rs.get(f"{rs.ehr}/Patient/p0012", plain)).status_code == 200
    assert (await rs.get(f"{rs.ehr}/Patient/p0001", plain)).status_code == 403
    assert (await rs.get(f"{rs.ehr}/Patient/nobody", plain)).status_code == 404
