from __future__ import annotations

from typing import NoReturn

from smartrealm.oauth.negotiate import identity_scopes, negotiate_server, within_ceiling
from smartrealm.oauth.scopes import parse_scope, parse_scopes
from smartrealm.realm.config import load_config

REALM = load_config(None)
EHR, IMAGING = REALM.server("ehr"), REALM.server("imaging")


def test_per_server_support_and_patient_context() -> None:
    requested = parse_scopes("launch/patient patient/Observation.rs patient/ImagingStudy.rs "
                             "patient/*.rs user/Patient.rs system/Patient.rs openid")
    ehr = negotiate_server(requested, EHR, None, "p1", user_is_patient=False)
    assert ehr.granted == ("launch/patient", "patient/Observation.rs", "patient/*.rs",
                           "user/Patient.rs")
    assert ehr.refused == ("patient/ImagingStudy.rs", "system/Patient.rs")
    img = negotiate_server(requested, IMAGING, None, None, user_is_patient=True)
    assert img.granted == ()
    assert "launch/patient" in img.refused and "user/Patient.rs" in img.refused


def test_client_ceiling_narrows_permissions() -> None:
    ceiling = parse_scopes("patient/*.rs user/Observation.r")
    assert within_ceiling(parse_scope("patient/Observation.cruds") or _no(), ceiling) == (
        parse_scope("patient/Observation.rs"),)
    assert within_ceiling(parse_scope("user/Observation.rs") or _no(), ceiling) == (
        parse_scope("user/Observation.r"),)
    assert within_ceiling(parse_scope("user/Patient.rs") or _no(), ceiling) == ()
    v1 = parse_scope("patient/Patient.read") or _no()
    assert within_ceiling(v1, ceiling)[0] is v1  # unchanged scopes keep their v1 spelling
    granular = parse_scopes("patient/Observation.rs?category=laboratory")
    narrowed = within_ceiling(parse_scope("patient/Observation.rs") or _no(), granular)
    # A constrained ceiling grants the constrained part of an unconstrained request.
    assert [s.raw for s in narrowed] == ["patient/Observation.rs?category=laboratory"]


def test_identity_scopes() -> None:
    requested = parse_scopes("openid fhirUser profile offline_access launch")
    assert identity_scopes(requested, True) == ("openid", "fhirUser", "profile",
                                                "offline_access")
    assert identity_scopes(requested, False) == ("openid", "profile", "offline_access")


def _no() -> NoReturn:
    raise AssertionError("scope did not parse")
