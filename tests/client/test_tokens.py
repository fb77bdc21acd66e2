"""TokenSet: the per-server view of one multi-audience grant (spec §4.4, §10, seed)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smartrealm.client import TokenError, TokenSet

EHR = "http://127.0.0.1:8701/fhir"
IMAGING = "http://127.0.0.1:8702/fhir"
LAB = "http://127.0.0.1:8703/fhir"


def tokens(**extra: Any) -> TokenSet:
    return TokenSet.from_response(
        {
            "access_token": "a",
            "token_type": "Bearer",
            "scope": "launch/patient patient/*.rs",
            **extra,
        }
    )


def test_authorization_details_entry_wins() -> None:
    ts = tokens(
        patient="top",
        fhirContext=[{"reference": f"{IMAGING}/Patient/ctx", "role": "launch-full-url"}],
        authorization_details=[
            {
                "type": "smart_on_fhir",
                "locations": [EHR],
                "fhirVersions": ["4.0.1"],
                "scope": "patient/Patient.rs",
                "patient": "p0012",
            },
            {
                "type": "smart_on_fhir",
                "locations": ["HTTP://127.0.0.1:8702/fhir/"],
                "fhirVersions": ["4.0.1"],
                "scope": "patient/ImagingStudy.rs",
                "patient": "img0012",
            },
        ],
    )
    assert ts.patient_id_for(EHR) == "p0012"
    assert ts.patient_id_for(IMAGING + "/") == "img0012"  # normalised both ways
    assert ts.scopes_for(IMAGING) == ("patient/ImagingStudy.rs",)
    assert ts.patient_id_for(LAB) == "top"  # no entry, no context → top level
    assert ts.scopes_for(LAB) == ("launch/patient", "patient/*.rs")


def test_launch_full_url_fhir_context() -> None:
    ts = tokens(
        fhirContext=[
            {"reference": f"{EHR}/Patient/p0012", "role": "launch-full-url"},
            {
                "reference": "HTTP://127.0.0.1:8702/fhir/Patient/img0012/_history/3",
                "role": "launch-full-url",
            },
            {"reference": f"{LAB}/Patient/wrong-role", "role": "https://example.org/other"},
            {"reference": f"{LAB}x/Patient/sibling", "role": "launch-full-url"},
        ]
    )
    assert ts.patient_id_for(EHR) == "p0012"
    assert ts.patient_id_for(IMAGING) == "img0012"
    assert ts.patient_id_for(LAB) is None
    assert ts.patient is None


def test_entry_without_patient_falls_back_to_context_then_top_level() -> None:
    ts = tokens(
        patient="same-everywhere",
        authorization_details=[
            {"type": "smart_on_fhir", "locations": [EHR, IMAGING], "fhirVersions": ["4.0.1"]}
        ],
        fhirContext=[{"reference": f"{IMAGING}/Patient/i1", "role": "launch-full-url"}],
    )
    assert ts.patient_id_for(EHR) == "same-everywhere"
    assert ts.patient_id_for(IMAGING) == "i1"
    assert ts.scopes_for(EHR) == ("launch/patient", "patient/*.rs")


def test_other_authorization_details_types_are_ignored() -> None:
    ts = tokens(
        patient="top",
        authorization_details=[{"type": "payment_initiation", "locations": [EHR], "patient": "no"}],
    )
    assert ts.patient_id_for(EHR) == "top" and ts.details_for(EHR) is None


def test_minimal_response_and_lower_case_bearer() -> None:
    ts = TokenSet.from_response({"access_token": "a", "token_type": "bearer"})
    assert ts.scope == "" and ts.expires_in is None and ts.refresh_token is None
    assert ts.fhir_context == () and ts.authorization_details == ()
    assert ts.patient_id_for(EHR) is None and ts.scopes_for(EHR) == ()


@pytest.mark.parametrize("bad", [True, -1, "3600"])
def test_bad_expires_in(bad: object) -> None:
    with pytest.raises(TokenError, match="expires_in"):
        tokens(expires_in=bad)


ids = st.from_regex(r"[A-Za-z0-9\-.]{1,64}", fullmatch=True)


@given(ehr_id=ids, img_id=ids, upper=st.booleans(), slash=st.booleans())
def test_context_forms_agree(ehr_id: str, img_id: str, upper: bool, slash: bool) -> None:
    """The three forms an AS may use for the same per-server patient give the same answer."""
    base = (IMAGING.upper().replace("/FHIR", "/fhir") if upper else IMAGING) + (
        "/" if slash else ""
    )
    via_details = tokens(
        authorization_details=[
            {
                "type": "smart_on_fhir",
                "locations": [EHR],
                "fhirVersions": ["4.0.1"],
                "patient": ehr_id,
            },
            {
                "type": "smart_on_fhir",
                "locations": [IMAGING],
                "fhirVersions": ["4.0.1"],
                "patient": img_id,
            },
        ]
    )
    via_context = tokens(
        fhirContext=[
            {"reference": f"{EHR}/Patient/{ehr_id}", "role": "launch-full-url"},
            {"reference": f"{IMAGING}/Patient/{img_id}", "role": "launch-full-url"},
        ]
    )
    assert via_details.patient_id_for(base) == via_context.patient_id_for(base) == img_id
    assert via_details.patient_id_for(EHR) == via_context.patient_id_for(EHR) == ehr_id
    assert tokens(patient=img_id).patient_id_for(base) == img_id
