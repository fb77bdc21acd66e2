import pytest

from smartrealm.fhir.access import authorize, check_named_patients, compartment_clause
from smartrealm.fhir.errors import Forbidden
from smartrealm.fhir.search.query import AnyOf, Clause, ReferenceValue, TokenValue
from smartrealm.guard import AccessContext
from smartrealm.oauth.scopes import parse_scopes

BASE = "http://127.0.0.1:8701/fhir"
LAB = "http://terminology.hl7.org/CodeSystem/observation-category|laboratory"


def ctx(scope: str, patient: str | None = None) -> AccessContext:
    return AccessContext("u", "c", parse_scopes(scope), patient, None, {}, 0)


def test_user_and_system_scopes_are_unrestricted() -> None:
    for scope in ("user/Observation.rs", "system/*.rs", "user/Observation.read"):
        assert authorize(ctx(scope), "Observation", "s", base_url=BASE).restriction is None


def test_letters_and_types_must_match() -> None:
    for scope, letter in (("user/Observation.s", "r"), ("user/Observation.c", "s"),
                          ("user/Condition.rs", "r"), ("launch openid", "r")):
        with pytest.raises(Forbidden):
            authorize(ctx(scope), "Observation", letter, base_url=BASE)


def test_patient_scope_confines_to_compartment() -> None:
    permit = authorize(ctx("patient/Observation.rs", "p1"), "Observation", "r", base_url=BASE)
    assert permit.patient_only
    assert permit.restriction == AnyOf(((compartment_clause("Observation", "p1"),),))


def test_scopes_are_a_union() -> None:
    token = ctx(f"patient/Observation.rs user/Observation.rs?category={LAB}", "p1")
    permit = authorize(token, "Observation", "s", base_url=BASE)
    assert not permit.patient_only
    assert permit.restriction is not None and len(permit.restriction.groups) == 2
    category = Clause("category", "token", (TokenValue(*LAB.split("|")),))
    assert permit.restriction.groups[1] == (category,)
    wide = ctx("patient/Observation.rs user/Observation.rs", "p1")
    assert authorize(wide, "Observation", "s", base_url=BASE).restriction is None


def test_named_patients() -> None:
    token = ctx("patient/Observation.rs", "p1")
    permit = authorize(token, "Observation", "s", base_url=BASE)
    own = Clause("patient", "reference", (ReferenceValue("Patient", "p1"),))
    other = Clause("patient", "reference", (ReferenceValue("Patient", "p2"),))
    either = Clause("subject", "reference", (ReferenceValue("Patient", "p2"),
                                             ReferenceValue(None, "p1")))
    check_named_patients(permit, token, [own])
    check_named_patients(permit, token, [either])
    with pytest.raises(Forbidden):
        check_named_patients(permit, token, [other])
