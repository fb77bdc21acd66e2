"""One test per scope-negotiation rule (oauth/negotiate.py docstring), plus property tests:
a grant never exceeds the request, the client's ceiling or the server's support."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smartrealm.oauth.approval import apply_choices, granular_alternatives
from smartrealm.oauth.endpoints.authorize import ErrorRedirect, validate_authorize
from smartrealm.oauth.negotiate import (
    client_ceiling,
    identity_scopes,
    negotiate_server,
    server_support,
)
from smartrealm.oauth.scope_algebra import covered_by_any, covers, meet
from smartrealm.oauth.scopes import ResourceScope, parse_scope, parse_scopes
from smartrealm.oauth.store import Client
from smartrealm.realm.config import ResourceServerConfig, load_config

REALM = load_config(None)
EHR, IMAGING = REALM.server("ehr"), REALM.server("imaging")
PROXY = replace(EHR, id="proxy", mode="proxy")


def granted(scope: str, server: ResourceServerConfig = EHR, ceiling: str = "",
            patient: str | None = "p1", user_is_patient: bool = False,
            encounter: str | None = None, ehr_launch: bool = False) -> tuple[str, ...]:
    offer = negotiate_server(parse_scopes(scope), server, client_ceiling(ceiling), patient,
                             user_is_patient, encounter=encounter, ehr_launch=ehr_launch)
    return offer.granted


# ---------------------------------------------------------------- the rules


def test_malformed_resource_scope_is_invalid_scope() -> None:
    client = Client("c", "c", ("http://127.0.0.1/cb",))
    params = {"client_id": ["c"], "redirect_uri": ["http://127.0.0.1/cb"], "state": ["s"],
              "response_type": ["code"], "scope": ["patient/Observation.sr"],
              "code_challenge": ["E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"],
              "code_challenge_method": ["S256"], "aud": [EHR.base_url]}
    with pytest.raises(ErrorRedirect) as caught:
        asyncio.run(validate_authorize(params, REALM, lambda _id: client))
    assert caught.value.error.error == "invalid_scope"


def test_unknown_non_resource_scopes_are_dropped() -> None:
    requested = parse_scopes("foo __ext.manage launch/imagingstudy https://x.example/s "
                             "patient/Patient.rs")
    assert granted(str(requested)) == ("patient/Patient.rs",)
    assert identity_scopes(requested, True) == ()


def test_a_type_the_server_does_not_hold_is_dropped() -> None:
    assert granted("patient/ImagingStudy.rs patient/Foo.rs", EHR) == ()
    assert granted("patient/ImagingStudy.rs", IMAGING) == ("patient/ImagingStudy.rs",)


def test_a_proxy_is_not_limited_by_type_or_letters() -> None:
    assert granted("patient/Foo.cruds", PROXY) == ("patient/Foo.cruds",)


def test_duplicates_are_tolerated() -> None:
    assert granted("patient/Patient.rs patient/Patient.rs launch/patient launch/patient") == (
        "launch/patient", "patient/Patient.rs")


def test_v1_requested_v1_returned() -> None:
    assert granted("patient/Observation.read user/Patient.read") == (
        "patient/Observation.read", "user/Patient.read")


def test_v1_narrowed_keeps_v1_when_it_can() -> None:
    # .* = cruds; the imaging server reads and searches only: rs = .read
    assert granted("patient/*.*", IMAGING) == ("patient/*.read",)
    # .write = cud: nothing left on a read-only server; all of it on the EHR
    assert granted("patient/DiagnosticReport.write", IMAGING) == ()
    assert granted("patient/*.*") == ("patient/*.*",)


def test_v1_narrowed_to_a_non_v1_set_becomes_v2() -> None:
    assert granted("patient/Observation.read", ceiling="patient/Observation.r") == (
        "patient/Observation.r",)


def test_server_support_narrows_letters() -> None:
    # fhir/interactions.py: imaging is read-only, the EHR reads and writes.
    assert granted("patient/ImagingStudy.cruds", IMAGING) == ("patient/ImagingStudy.rs",)
    assert granted("patient/Observation.cruds") == ("patient/Observation.cruds",)


def test_client_ceiling_narrows_letters_and_types() -> None:
    assert granted("patient/Observation.rs", ceiling="patient/Observation.r") == (
        "patient/Observation.r",)
    # A wildcard under a ceiling of two types splits into those two (§5.3 "split").
    assert granted("patient/*.rs", ceiling="patient/Patient.rs patient/Condition.s") == (
        "patient/Patient.rs", "patient/Condition.s")
    assert granted("patient/Observation.rs", ceiling="user/Observation.rs") == ()


def test_a_split_wildcard_keeps_only_types_the_server_holds() -> None:
    # Found by the property test below: imaging holds no Observation.
    assert granted("user/*.read", IMAGING, ceiling="user/Observation.cr user/Patient.r") == (
        "user/Patient.r",)


def test_client_ceiling_can_constrain_to_a_category() -> None:
    lab = "patient/Observation.rs?category=http://x|laboratory"
    assert granted("patient/Observation.rs", ceiling=lab) == (lab,)


def test_client_ceiling_does_not_cut_identity_or_context_scopes() -> None:
    assert granted("launch/patient patient/Patient.rs", ceiling="patient/Patient.rs") == (
        "launch/patient", "patient/Patient.rs")


def test_a_broken_ceiling_grants_no_data() -> None:
    ceiling = client_ceiling("patient/Observation.xyz")
    assert ceiling is not None and ceiling.resource == ()


def test_user_approval_narrows_per_server() -> None:
    offered = ("launch/patient", "patient/Patient.rs", "patient/Observation.rs")
    alternatives = granular_alternatives("patient/Observation.rs")
    assert apply_choices(offered, alternatives, {"patient/Patient.rs"}) == (
        "launch/patient", "patient/Patient.rs")
    assert apply_choices(offered, alternatives, {alternatives[0], "patient/*.cruds"}) == (
        "launch/patient", alternatives[0])


def test_system_scopes_never_for_a_user() -> None:
    assert granted("system/Patient.rs system/*.rs") == ()


def test_user_scopes_not_for_a_patient_user() -> None:
    assert granted("user/Patient.rs patient/Patient.rs", user_is_patient=True) == (
        "patient/Patient.rs",)


def test_patient_scopes_only_where_the_patient_exists() -> None:
    assert granted("launch/patient patient/Patient.rs user/Patient.rs", patient=None) == (
        "user/Patient.rs",)


def test_launch_patient_only_with_a_patient() -> None:
    assert "launch/patient" not in granted("launch/patient", patient=None)
    assert granted("launch/patient", patient="p1") == ("launch/patient",)


def test_launch_encounter_only_with_an_encounter() -> None:
    assert granted("launch/encounter") == ()
    assert granted("launch/encounter", encounter="e1") == ("launch/encounter",)


def test_launch_only_in_an_ehr_launch() -> None:
    assert granted("launch") == ()
    assert granted("launch", ehr_launch=True) == ("launch",)


def test_identity_and_refresh_scopes() -> None:
    requested = parse_scopes("openid fhirUser profile offline_access online_access")
    assert identity_scopes(requested, True) == ("openid", "fhirUser", "profile",
                                                "offline_access", "online_access")
    assert identity_scopes(requested, False) == ("openid", "profile", "offline_access",
                                                 "online_access")
    assert granted(str(requested)) == ()  # never a server's scope


def test_granular_scopes_pass_through() -> None:
    lab = "patient/Observation.rs?category=http://x|laboratory"
    assert granted(lab) == (lab,)


def test_alternatives_only_for_whole_observation_and_condition() -> None:
    assert len(granular_alternatives("patient/Observation.rs")) == 6
    assert len(granular_alternatives("user/Condition.read")) == 3
    assert granular_alternatives("user/Condition.read")[0].startswith("user/Condition.rs?")
    assert granular_alternatives("patient/Patient.rs") == ()
    assert granular_alternatives("patient/Observation.rs?category=a|b") == ()
    assert granular_alternatives("nonsense/") == ()


# ---------------------------------------------------------------- properties

CONTEXTS = st.sampled_from(["patient", "user", "system"])
TYPES = st.sampled_from(["Patient", "Observation", "Condition", "ImagingStudy", "Foo", "*"])
LETTERS = st.sets(st.sampled_from("cruds"), min_size=1).map(
    lambda s: "".join(ch for ch in "cruds" if ch in s))
SUFFIX = st.one_of(LETTERS, st.sampled_from(["read", "write", "*"]))
QUERY = st.sampled_from(["", "?category=a|b", "?category=a|c", "?code=x|1"])


@st.composite
def scope_strings(draw: st.DrawFn) -> str:
    suffix = draw(SUFFIX)
    query = draw(QUERY) if suffix not in ("read", "write", "*") else ""
    return f"{draw(CONTEXTS)}/{draw(TYPES)}.{suffix}{query}"


SCOPE_LISTS = st.lists(scope_strings(), min_size=1, max_size=5).map(" ".join)


def _parse(raw: str) -> ResourceScope:
    parsed = parse_scope(raw)
    assert parsed is not None
    return parsed


@given(SCOPE_LISTS, st.one_of(st.just(""), SCOPE_LISTS), st.sampled_from([EHR, IMAGING]),
       st.booleans())
def test_a_grant_never_exceeds_request_ceiling_or_server(
        requested: str, ceiling: str, server: ResourceServerConfig,
        user_is_patient: bool) -> None:
    asked = parse_scopes(requested).resource
    cap = client_ceiling(ceiling)
    support = server_support(server)
    for raw in granted(requested, server, ceiling, "p1", user_is_patient):
        scope = _parse(raw)
        assert covered_by_any(scope, asked)
        assert cap is None or covered_by_any(scope, cap.resource)
        assert scope.permissions <= support.letters and scope.context != "system"
        assert scope.resource_type == "*" or scope.resource_type in (support.types or ())


@given(SCOPE_LISTS)
def test_negotiation_is_idempotent(requested: str) -> None:
    once = granted(requested)
    assert granted(" ".join(once)) == once


@given(scope_strings(), scope_strings())
def test_meet_is_covered_by_both(a: str, b: str) -> None:
    m = meet(_parse(a), _parse(b))
    if m is not None:
        assert covers(_parse(a), m) and covers(_parse(b), m)
        assert _parse(m.raw) == m  # what meet builds parses back to itself


@given(SCOPE_LISTS, st.lists(st.one_of(scope_strings(), st.sampled_from(
    ["launch/patient", "openid", ""])), max_size=8))
def test_user_choices_never_widen_the_offer(offered: str, posted: list[str]) -> None:
    offer = granted(offered)
    alternatives = [a for s in offer for a in granular_alternatives(s)]
    approved = apply_choices(offer, alternatives, set(posted))
    assert set(approved) <= set(offer) | set(alternatives)
    assert [s for s in approved if s.startswith("launch")] == [
        s for s in offer if s.startswith("launch")]
