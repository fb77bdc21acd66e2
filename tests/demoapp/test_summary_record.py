"""Resource summaries never fail on odd data; the per-server panel of a token response."""

from __future__ import annotations

import base64
import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from smartrealm.client import TokenSet
from smartrealm.demoapp.record import panel, token_audience
from smartrealm.demoapp.sessions import Connection
from smartrealm.demoapp.summary import (
    Row,
    condition_row,
    encounter_row,
    patient_summary,
    report_row,
    study_row,
)

EHR, IMAGING = "http://127.0.0.1:8701/fhir", "http://127.0.0.1:8702/fhir"
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=3),
    max_leaves=10)
resources = st.dictionaries(
    st.sampled_from(["name", "gender", "birthDate", "identifier", "id", "period", "type",
                     "class", "code", "category", "clinicalStatus", "onsetDateTime",
                     "modality", "numberOfInstances", "started", "description",
                     "conclusion", "status", "effectiveDateTime"]), json_values)


@given(resources)
def test_any_resource_shape_gives_a_summary(resource: dict[str, Any]) -> None:
    assert all(isinstance(v, str) for v in patient_summary(resource).values())
    for make in (encounter_row, condition_row, study_row, report_row):
        row = make(resource)
        assert isinstance(row, Row) and isinstance(row.text, str) and row.text


def test_summaries_of_sample_like_resources() -> None:
    patient = {"id": "p0012", "gender": "female", "birthDate": "1947-04-22",
               "name": [{"family": "Example", "given": ["Pat"]}],
               "identifier": [{"system": "s", "value": "MRN000012"}]}
    assert patient_summary(patient) == {"name": "Pat Example", "gender": "female",
                                        "birth_date": "1947-04-22", "mrn": "MRN000012",
                                        "id": "p0012"}
    study = {"id": "is-1", "started": "2025-02-27T10:00:00+00:00", "description": "US Abdomen",
             "modality": [{"code": "US"}], "numberOfInstances": 4, "status": "available"}
    assert study_row(study) == Row("2025-02-27", "US Abdomen", "US · 4 images", "available",
                                   "is-1")
    condition = {"code": {"coding": [{"display": "Hypertensive disorder"}]},
                 "onsetDateTime": "2023-01-08T09:00:00+00:00",
                 "clinicalStatus": {"coding": [{"code": "active", "display": "Active"}]}}
    assert condition_row(condition).text == "Hypertensive disorder"
    assert condition_row(condition).status == "Active"


def _jwt(claims: dict[str, Any]) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()
    return f"{part({'alg': 'RS256'})}.{part(claims)}.c2ln"


def _tokens(access_token: str) -> TokenSet:
    return TokenSet.from_response({
        "access_token": access_token, "token_type": "Bearer", "scope": "openid",
        "authorization_details": [
            {"type": "smart_on_fhir", "locations": [EHR], "scope": "patient/Encounter.rs",
             "patient": "p0012"},
            {"type": "smart_on_fhir", "locations": [IMAGING],
             "scope": "patient/ImagingStudy.rs", "patient": "img0012"}]})


def test_the_panel_shows_each_servers_patient_scopes_and_audience() -> None:
    tokens = _tokens(_jwt({"aud": [EHR, IMAGING]}))
    assert panel(tokens, Connection(IMAGING, "imaging", "Imaging")).__dict__ == {
        "name": "Imaging", "base_url": IMAGING, "patient_id": "img0012",
        "scopes": ("patient/ImagingStudy.rs",), "in_audience": True}
    only_ehr = _tokens(_jwt({"aud": EHR}))
    assert token_audience(only_ehr) == (EHR,)
    assert panel(only_ehr, Connection(IMAGING, "imaging", "Imaging")).in_audience is False


def test_an_opaque_token_falls_back_to_the_details_locations() -> None:
    for opaque in ("not-a-jwt", "a.%%%.c", _jwt({"aud": 5}), "a.bm90IGpzb24.c"):
        assert token_audience(_tokens(opaque)) == (EHR, IMAGING)
