"""The framework-free EHR-launch rules: launch ids, the launch API's input (fhirContext per
SMART 2.2 §4.4), the authorization-request rules (§3.2, §6.1) and the style document."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smartrealm.oauth.errors import InvalidRequest, InvalidScope
from smartrealm.oauth.launch import (
    LaunchContext,
    app_launch_url,
    check_launch_use,
    check_launch_value,
    new_launch_id,
)
from smartrealm.oauth.launch_input import parse_fhir_context, parse_launch_input
from smartrealm.oauth.resources import parse_audience
from smartrealm.oauth.scopes import parse_scopes
from smartrealm.oauth.smart_style import SMART_STYLE, style_document, style_url
from smartrealm.realm.config import RealmConfig, load_config

STYLE_KEYS = {"color_background", "color_error", "color_highlight", "color_modal_backdrop",
              "color_success", "color_text", "dim_border_radius", "dim_font_size",
              "dim_spacing_size", "font_family_body", "font_family_heading"}


@pytest.fixture
def realm(tmp_path: Path) -> RealmConfig:
    return load_config(None).relocated({}, tmp_path)


def _launch(realm: RealmConfig, **overrides: Any) -> LaunchContext:
    values: dict[str, Any] = {"user": "clinician", "patient": "p0003",
                              "iss": realm.server("ehr").base_url, "expires_at": 0}
    values.update(overrides)
    return LaunchContext(**values)


# ---------------------------------------------------------------- ids and URLs


def test_launch_ids_are_256_bit_and_distinct() -> None:
    ids = {new_launch_id() for _ in range(200)}
    assert len(ids) == 200
    assert all(len(i) == 43 for i in ids)  # 32 bytes, base64url without padding


def test_app_launch_url_adds_iss_and_launch_keeping_the_query() -> None:
    assert app_launch_url("https://app.example/launch?x=1", "http://127.0.0.1:8701/fhir",
                          "L1") == ("https://app.example/launch?x=1&"
                                    "iss=http%3A%2F%2F127.0.0.1%3A8701%2Ffhir&launch=L1")


def test_a_launch_round_trips_through_its_dict(realm: RealmConfig) -> None:
    launch = _launch(realm, encounter="e1", fhir_context=({"reference": "List/1"},),
                     need_patient_banner=False, smart_style_url="https://s/x.json",
                     intent="i", client_id="c", created_at=5)
    assert LaunchContext.from_dict(json.loads(json.dumps(launch.to_dict()))) == launch


# ---------------------------------------------------------------- the authorize rules


def _use(realm: RealmConfig, launch: LaunchContext | None, *, scope: str = "launch",
         aud: list[str] | None = None, resources: list[str] | None = None,
         client_id: str = "app") -> list[str]:
    audience = parse_audience(realm, aud or [], resources or [])
    result = check_launch_use(launch, client_id=client_id, scopes=parse_scopes(scope),
                              audience=audience, aud_given=bool(aud), realm=realm)
    return [rs.id for rs in result.servers]


def test_launch_value_syntax() -> None:
    check_launch_value(None)
    check_launch_value("x" * 256)
    for bad in ("", "x" * 257):
        with pytest.raises(InvalidRequest):
            check_launch_value(bad)


def test_unknown_launch_is_invalid_request(realm: RealmConfig) -> None:
    with pytest.raises(InvalidRequest, match="unknown, expired or already used"):
        _use(realm, None, aud=[realm.server("ehr").base_url])


def test_launch_needs_the_launch_scope(realm: RealmConfig) -> None:
    with pytest.raises(InvalidScope):
        _use(realm, _launch(realm), scope="launch/patient patient/*.rs",
             aud=[realm.server("ehr").base_url])


def test_aud_must_be_the_launch_iss(realm: RealmConfig) -> None:
    ehr, img = realm.server("ehr").base_url, realm.server("imaging").base_url
    assert _use(realm, _launch(realm), aud=[ehr + "/"]) == ["ehr"]
    with pytest.raises(InvalidRequest, match="aud must be the launch's iss"):
        _use(realm, _launch(realm), aud=[img])
    with pytest.raises(InvalidRequest, match="aud must be the launch's iss"):
        _use(realm, _launch(realm), aud=[img], resources=[img, ehr])


def test_the_ehr_among_the_resources_becomes_primary(realm: RealmConfig) -> None:
    ehr, img, lab = (realm.server(s).base_url for s in ("ehr", "imaging", "lab"))
    assert _use(realm, _launch(realm), resources=[img, lab, ehr]) == ["ehr", "imaging", "lab"]
    assert _use(realm, _launch(realm), aud=[ehr], resources=[img, ehr]) == ["ehr", "imaging"]
    with pytest.raises(InvalidRequest, match="must be the aud or one of the resources"):
        _use(realm, _launch(realm), resources=[img, lab])


def test_a_launch_bound_to_a_client_refuses_others(realm: RealmConfig) -> None:
    ehr = realm.server("ehr").base_url
    assert _use(realm, _launch(realm, client_id="app"), aud=[ehr]) == ["ehr"]
    with pytest.raises(InvalidRequest, match="another application"):
        _use(realm, _launch(realm, client_id="other"), aud=[ehr])


def test_a_launch_for_a_server_no_longer_in_the_realm_is_unknown(realm: RealmConfig) -> None:
    with pytest.raises(InvalidRequest, match="unknown"):
        _use(realm, _launch(realm, iss="http://127.0.0.1:1/fhir"),
             aud=[realm.server("ehr").base_url])


# ---------------------------------------------------------------- the launch API input


def test_minimal_and_full_launch_input() -> None:
    assert parse_launch_input({"patient": "p0003", "launch_url": "https://a/l"}).patient == \
        "p0003"
    spec = parse_launch_input({
        "patient": "p0003", "user": "clinician", "encounter": "enc-p0003-1",
        "fhirContext": [{"reference": "List/12", "role": "https://example.org/med-list"}],
        "need_patient_banner": False, "smart_style_url": "https://ehr/style.json",
        "intent": "reconcile-medications", "client_id": "app",
        "launch_url": "http://127.0.0.1:9/launch?x=1"})
    assert spec.encounter == "enc-p0003-1" and spec.need_patient_banner is False
    assert spec.fhir_context == ({"reference": "List/12",
                                  "role": "https://example.org/med-list"},)
    assert spec.launch_url == "http://127.0.0.1:9/launch?x=1"


@pytest.mark.parametrize("body", [
    [], "x", None, {}, {"patient": ""}, {"patient": "bad id"}, {"patient": "x" * 65},
    {"patient": "p1", "encounter": "e/1"}, {"patient": "p1", "need_patient_banner": "yes"},
    {"patient": "p1", "intent": ""}, {"patient": "p1", "intent": "a\nb"},
    {"patient": "p1", "launch_url": "ftp://x/y"}, {"patient": "p1", "launch_url": "/rel"},
    {"patient": "p1", "launch_url": "https://a/b#frag"}, {"patient": "p1", "unknown": 1},
    {"patient": "p1", "smart_style_url": "style.json"}, {"patient": "p1", "client_id": 3},
    {"patient": "p1", "fhirContext": {}},
])
def test_bad_launch_input_is_invalid_request(body: Any) -> None:
    with pytest.raises(InvalidRequest):
        parse_launch_input(body)


@pytest.mark.parametrize("item", [
    {"reference": "List/123"},
    {"reference": "List/123", "role": "https://example.org/med-list-at-home"},
    {"reference": "Observation/o1/_history/2", "type": "Observation"},
    {"type": "Questionnaire", "canonical": "https://example.org/Questionnaire/123|v2023-05-03",
     "role": "https://example.org/role/questionnaire-to-display"},
    {"identifier": {"system": "urn:x", "value": "1"}, "type": "ServiceRequest"},
    {"reference": "Patient/p0004", "role": "https://example.org/role/mother"},
    {"reference": "List/1", "role": "launch"},
])
def test_good_fhir_context_items(item: dict[str, Any]) -> None:
    assert parse_fhir_context([item]) == (item,)


@pytest.mark.parametrize("item", [
    "List/1", {}, {"type": "List"}, {"reference": "http://ehr/fhir/List/1"},
    {"reference": "list/1"}, {"reference": "List/a b"}, {"reference": "List/1", "role": ""},
    {"reference": "List/1", "role": "relative-role"}, {"reference": "List/1", "extra": 1},
    {"reference": "List/1", "type": "Observation"}, {"reference": "Patient/p1"},
    {"reference": "Encounter/e1", "role": "launch"}, {"canonical": "urn:x"},
    {"identifier": "x"}, {"identifier": {}}, {"identifier": {"value": 1}},
    {"reference": "List/1", "type": "not a type"}, {"reference": 5},
])
def test_bad_fhir_context_items(item: Any) -> None:
    with pytest.raises(InvalidRequest, match=r"fhirContext\[0\]"):
        parse_fhir_context([item])


def test_too_many_fhir_context_items() -> None:
    with pytest.raises(InvalidRequest):
        parse_fhir_context([{"reference": f"List/{i}"} for i in range(21)])


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=12), inner, max_size=5), max_leaves=20)
KEYS = st.sampled_from(["user", "patient", "encounter", "fhirContext", "need_patient_banner",
                        "smart_style_url", "intent", "client_id", "launch_url"])


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(KEYS, JSON, max_size=9) | JSON)
def test_any_json_is_accepted_or_invalid_request(body: Any) -> None:
    """The parser never fails with anything but invalid_request (no 500 on bad input)."""
    try:
        spec = parse_launch_input(body)
    except InvalidRequest:
        return
    assert spec.patient


@settings(max_examples=300, deadline=None)
@given(st.lists(JSON, max_size=4))
def test_any_fhir_context_is_accepted_or_invalid_request(items: list[Any]) -> None:
    try:
        parsed = parse_fhir_context(items)
    except InvalidRequest:
        return
    assert all({"reference", "canonical", "identifier"} & set(i) for i in parsed)


# ---------------------------------------------------------------- the style document


def test_style_document_and_versioned_url() -> None:
    assert set(json.loads(style_document())) == STYLE_KEYS == set(SMART_STYLE)
    url = style_url("http://127.0.0.1:8700/")
    assert url.startswith("http://127.0.0.1:8700/smart-style.json?v=")
    assert url == style_url("http://127.0.0.1:8700")  # stable while the content is
