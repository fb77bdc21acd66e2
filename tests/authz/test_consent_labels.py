"""Plain-language scope labels of the consent page (spec §5.3 consent UI)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from smartrealm.authz.views.scope_labels import describe, describe_alternative


def test_resource_scopes_in_words() -> None:
    assert describe("patient/Observation.rs").short == (
        "Read and search observations (lab results, vital signs and other measurements) "
        "of the patient")
    assert describe("user/Patient.read").short == (
        "Read and search demographics (name, birth date, contact details) that you can access")
    assert describe("patient/Encounter.r").short == "Read visits and stays of the patient"


def test_wildcards_and_writes_are_explained() -> None:
    wildcard = describe("patient/*.rs")
    assert wildcard.short == "Read and search all kinds of data of the patient"
    assert "including kinds added later" in wildcard.long
    assert "may change data" in describe("patient/Observation.cud").long
    assert "may change data" not in describe("patient/Observation.rs").long


def test_query_scopes_are_explained() -> None:
    lab = ("patient/Observation.rs?category="
           "http://terminology.hl7.org/CodeSystem/observation-category|laboratory")
    assert describe(lab).short.endswith("of the patient — only laboratory results")
    assert describe_alternative(lab).short == "Only laboratory results"
    assert describe("patient/Observation.rs?code=http://loinc.org|1234-5").short.endswith(
        "— only code = http://loinc.org|1234-5")
    assert describe("patient/Condition.rs?category=unknown|x").short.endswith(
        "— only category unknown|x")


def test_other_scopes() -> None:
    assert describe("offline_access").short == "Keep access when you are away"
    assert describe("launch/patient").short == "Know which patient is selected"
    assert describe("__ext.thing").short == "Other permission"
    assert describe("patient/Observation.sr").short == "Other permission"  # malformed


@given(st.text(max_size=80))
def test_any_scope_string_gets_a_label(scope: str) -> None:
    label = describe(scope)
    assert label.scope == scope and label.short and label.long
