"""Spec §12.6, the ONC (g)(10) kit's scope checks: scopes requested and received, the
patient-level Patient scope, the limited scope grant (the user unticks resources on the
consent page) with restricted and unrestricted access per resource type, granular scope
selection (categories instead of whole types), fine-grained searches, and the v1-scopes
launch. Patient user, standalone launch at the EHR (types: Patient, Encounter, Condition,
Observation, DiagnosticReport, Practitioner)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from tests.conformance.browser import Choices
from tests.conformance.conftest import Realm
from tests.conformance.inferno import Launched, fhir_get, standalone

pytestmark = pytest.mark.e2e
OBS = "http://terminology.hl7.org/CodeSystem/observation-category"
COND = "http://terminology.hl7.org/CodeSystem/condition-category"
TYPES = ("Patient", "Encounter", "Condition", "Observation", "DiagnosticReport")
OTHERS = ("AllergyIntolerance", "MedicationRequest", "Immunization", "Goal")  # USCDI too
G10_SCOPE = re.compile(r"(patient|user)/(\*|[A-Z][A-Za-z]+)\.(\*|read|c?r?u?d?s?)")
V2_SCOPES = " ".join(["launch/patient openid fhirUser offline_access",
                      *(f"patient/{t}.rs" for t in (*TYPES, *OTHERS))])
LIMITED_SCOPES = " ".join(["launch/patient openid fhirUser offline_access",
                           *(f"patient/{t}.rs" for t in TYPES)])
UNTICKED = ("Condition", "Encounter")


def granted_types(scope: str) -> set[str]:
    return {s.split("/")[1].split(".")[0] for s in scope.split() if s.startswith("patient/")}


def check_access(http: httpx.Client, realm: Realm, token: str, resource_type: str) -> int:
    """g10's per-type access check: a search by patient (and a read for Patient)."""
    path = "Patient/p0012" if resource_type == "Patient" else resource_type
    params = {} if resource_type == "Patient" else {"patient": "p0012"}
    return fhir_get(http, realm.base("ehr"), path, token, **params).status_code


@pytest.fixture(scope="module")
def full(realm: Realm) -> Iterator[Launched]:
    with httpx.Client(timeout=15.0) as http:
        yield standalone(http, realm, "symmetric", scope=V2_SCOPES)


@pytest.fixture(scope="module")
def limited(realm: Realm) -> Iterator[Launched]:
    """``g10_limited_scope_grant``'s launch: the user unticks Condition and Encounter."""
    untick = [("scope:ehr", f"patient/{t}.rs") for t in UNTICKED]
    with httpx.Client(timeout=15.0) as http:
        yield standalone(http, realm, "symmetric", scope=LIMITED_SCOPES,
                         choices=Choices(untick=untick))


def held_types(http: httpx.Client, realm: Realm) -> set[str]:
    """The resource types the EHR's CapabilityStatement lists."""
    metadata = http.get(f"{realm.base('ehr')}/metadata").json()
    return {r["type"] for r in metadata["rest"][0]["resource"]}


def test_g10_smart_scopes(http: httpx.Client, realm: Realm, full: Launched) -> None:
    """``g10_smart_scopes``: "requested scopes are well formed ((patient|user)/Type.(perm),
    v1 (*|read) or v2 (*|c?ru?d?s?)) and the resource types valid; received scopes have the
    right level (patient for standalone); they cover the required resource types". Every
    requested type the EHR holds (its CapabilityStatement) is granted; a type no server of
    the audience holds is dropped (spec §5.3, docs/behaviour.md)."""
    for scope in V2_SCOPES.split():
        if "/" in scope and not scope.startswith("launch/"):
            assert G10_SCOPE.fullmatch(scope), scope
    assert full.response.status_code == 200, full.response.text
    received = full.body["scope"].split()
    assert not [s for s in received if s.startswith(("user/", "system/"))]
    requested = set(TYPES) | set(OTHERS)
    assert set(TYPES) <= held_types(http, realm)
    assert granted_types(full.body["scope"]) == requested & held_types(http, realm)


def test_g10_patient_scope(full: Launched) -> None:
    """``g10_patient_scope``: "patient-level scopes were granted; for v2 Patient,
    patient/Patient.rs, .r or .s style"."""
    assert {"patient/Patient.rs", "patient/Patient.r", "patient/Patient.s"} & set(
        full.body["scope"].split())


def test_g10_unrestricted_resource_type_access(http: httpx.Client, realm: Realm,
                                               full: Launched) -> None:
    """``g10_unrestricted_resource_type_access``: "for each resource type, a read or search
    by patient → 200 if granted"."""
    for resource_type in TYPES:
        assert check_access(http, realm, full.access_token, resource_type) == 200, resource_type


def test_g10_limited_scope_grant(limited: Launched) -> None:
    """``g10_limited_scope_grant``: "after the user unchecks some resources, the granted
    scope grants exactly the expected resources and at least one resource is forbidden"."""
    assert limited.response.status_code == 200, limited.response.text
    assert granted_types(limited.body["scope"]) == set(TYPES) - set(UNTICKED)
    assert set(limited.body["scope"].split()) == {
        "launch/patient", "openid", "fhirUser", "offline_access",
        *(f"patient/{t}.rs" for t in TYPES if t not in UNTICKED)}


def test_g10_restricted_resource_type_access(http: httpx.Client, realm: Realm,
                                             limited: Launched) -> None:
    """``g10_restricted_resource_type_access``: "a read or search by patient → 200 if
    granted, 401 or 403 if not granted" — the unticked types are ``403
    insufficient_scope`` at the server, the others 200."""
    for resource_type in TYPES:
        status = check_access(http, realm, limited.access_token, resource_type)
        assert status == (403 if resource_type in UNTICKED else 200), resource_type


def category_scope(resource_type: str, system: str, code: str) -> str:
    return f"patient/{resource_type}.rs?category={system}|{code}"


GRANULAR_REQUEST = ("launch/patient openid fhirUser offline_access patient/Condition.rs "
                    "patient/Observation.rs patient/Patient.rs")
CHOSEN = (category_scope("Observation", OBS, "laboratory"),
          category_scope("Condition", COND, "problem-list-item"))


def test_g10_smart_granular_scope_selection(http: httpx.Client, realm: Realm) -> None:
    """``g10_smart_granular_scope_selection``: "the app requests resource-level Condition,
    Observation and Patient v2 scopes; the user grants category sub-scopes instead. The
    granted result has no resource-level Condition or Observation scope, has granular
    Type.(perms)?param=value scopes for both, and has a v2 resource-level Patient scope"."""
    choices = Choices(untick=[("scope:ehr", "patient/Condition.rs"),
                              ("scope:ehr", "patient/Observation.rs")],
                      tick=[("scope:ehr", s) for s in CHOSEN])
    launched = standalone(http, realm, "symmetric", scope=GRANULAR_REQUEST, choices=choices)
    assert launched.response.status_code == 200, launched.response.text
    granted = launched.body["scope"].split()
    assert "patient/Condition.rs" not in granted and "patient/Observation.rs" not in granted
    assert set(CHOSEN) <= set(granted)
    assert "patient/Patient.rs" in granted


@pytest.mark.parametrize("categories", [("laboratory", "problem-list-item"),
                                        ("vital-signs", "encounter-diagnosis")])
def test_g10_fine_grained_scopes(http: httpx.Client, realm: Realm,
                                 categories: tuple[str, str]) -> None:
    """g10 fine-grained scopes: "two launches with specific category scopes; every search
    is re-run and only resources in the granted categories may come back". Each search
    also finds something, and the other category exists for this patient."""
    observation, condition = categories
    scope = " ".join(["launch/patient", category_scope("Observation", OBS, observation),
                      category_scope("Condition", COND, condition)])
    launched = standalone(http, realm, "symmetric", scope=scope)
    assert launched.response.status_code == 200, launched.response.text
    assert set(scope.split()) <= set(launched.body["scope"].split())
    for resource_type, wanted in (("Observation", observation), ("Condition", condition)):
        bundle = fhir_get(http, realm.base("ehr"), resource_type, launched.access_token,
                          patient="p0012", _count="200").json()
        found = [c["code"] for e in bundle.get("entry", [])
                 for cat in e["resource"].get("category", []) for c in cat["coding"]]
        assert found and set(found) == {wanted}, (resource_type, found)


def test_g10_standalone_launch_v1_scopes(http: httpx.Client, realm: Realm) -> None:
    """g10 v1 scopes scenario: "a standalone launch requesting v1 scopes (patient/*.read
    style) must succeed (permission-v1)". v1 is answered in v1 (docs/behaviour.md)."""
    scope = "launch/patient openid fhirUser offline_access patient/*.read"
    launched = standalone(http, realm, "symmetric", scope=scope)
    assert launched.response.status_code == 200, launched.response.text
    assert "patient/*.read" in launched.body["scope"].split()
    for resource_type in ("Patient", "Observation"):
        assert check_access(http, realm, launched.access_token, resource_type) == 200
