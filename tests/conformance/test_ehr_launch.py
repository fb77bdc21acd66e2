"""Spec §12.1 group 2, EHR Launch (``smart_ehr_launch_stu2_2``), default scopes
``launch openid fhirUser offline_access patient/*.rs``: the EHR (the launch API, as the
clinician) opens the app's launch URL with ``iss`` and ``launch``; the app authorizes with
``launch`` and ``aud=iss``; then the token checks of group 1, and the g10 EHR checks
(``smart_style_url``, ``need_patient_banner``, encounter context). Discovery is covered for
every server by test_discovery.py, the OIDC and refresh groups by their own modules."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.conformance.browser import Choices
from tests.conformance.checks import (
    check_cors,
    check_fhir_context_stu2_2,
    check_json,
    check_no_store,
    check_token_response_body,
)
from tests.conformance.conftest import Realm
from tests.conformance.inferno import (
    EHR_SCOPES,
    KINDS,
    LAUNCH_URI,
    REDIRECT_URI,
    AuthRequest,
    Client,
    Launched,
    create_launch,
    fhir_get,
    launch,
    register,
)

pytestmark = pytest.mark.e2e
# SMART 2.2 fhirContext items of the launch: relative reference, canonical, identifier.
FHIR_CONTEXT = [
    {"reference": "Observation/obs-p0003-vital-1", "role": "https://smartrealm.example.org/role/focus"},
    {"type": "Questionnaire", "canonical": "https://forms.example.org/Questionnaire/phq9|2.0",
     "role": "https://smartrealm.example.org/role/questionnaire-to-display"},
    {"type": "Coverage", "identifier": {"system": "https://payer.example.org", "value": "C-1"}},
]
STYLE_KEYS = ("color_background", "color_error", "color_highlight", "color_modal_backdrop",
              "color_success", "color_text", "dim_border_radius", "dim_font_size",
              "dim_spacing_size", "font_family_body", "font_family_heading")


@dataclass
class EhrLaunch:
    launch_url: str
    launched: Launched

    @property
    def query(self) -> dict[str, str]:
        return dict(httpx.URL(self.launch_url).params)


def run_ehr_launch(http: httpx.Client, realm: Realm, client: Client, **body: Any) -> EhrLaunch:
    url = create_launch(http, realm, client, **body)
    query = httpx.URL(url).params
    request = AuthRequest(client, EHR_SCOPES, aud=query["iss"], launch=query["launch"])
    return EhrLaunch(url, launch(http, realm, request, Choices(username="clinician")))


@pytest.fixture(scope="module", params=KINDS)
def ehr(request: pytest.FixtureRequest, realm: Realm) -> Iterator[EhrLaunch]:
    with httpx.Client(timeout=15.0) as http:
        client = register(http, realm, str(request.param))
        yield run_ehr_launch(http, realm, client, patient="p0003", encounter="enc-p0003-1",
                             fhirContext=FHIR_CONTEXT, intent="summary")


def test_smart_app_launch(realm: Realm, ehr: EhrLaunch) -> None:
    """``smart_app_launch``: "Inferno waits until the EHR opens the launch URI with iss ==
    the configured FHIR URL" (exactly)."""
    assert ehr.launch_url.startswith(LAUNCH_URI + "?")
    assert ehr.query["iss"] == realm.base("ehr")


def test_smart_launch_received(ehr: EhrLaunch) -> None:
    """``smart_launch_received``: "a launch parameter is present"."""
    assert ehr.query["launch"]


def test_smart_app_redirect_stu2(ehr: EhrLaunch) -> None:
    """``smart_app_redirect_stu2`` with ``launch=<value>``: the redirect back carries the
    same state."""
    assert ehr.launched.visit.callback.startswith(REDIRECT_URI + "?")
    assert ehr.launched.visit.params["state"] == ehr.launched.request.state
    assert "launch" in dict(ehr.launched.request.fields())


def test_smart_code_received(ehr: EhrLaunch) -> None:
    """``smart_code_received``: "the redirect has code and no error"."""
    assert ehr.launched.visit.params.get("code")
    assert "error" not in ehr.launched.visit.params


def test_smart_token_exchange_stu2_2(ehr: EhrLaunch) -> None:
    """``smart_token_exchange_stu2_2``, per client type: 200 and valid JSON."""
    assert ehr.launched.response.status_code == 200, ehr.launched.response.text
    assert ehr.launched.response.headers["content-type"].startswith("application/json")


def test_smart_token_response_body_stu2_2(ehr: EhrLaunch) -> None:
    """``smart_token_response_body_stu2_2``: the body checks of group 1 and "fhirContext
    follows the 2.2 object rules of §4.4 (relative reference only)". A single-server EHR
    launch carries the launch's items as given (relative references, canonical,
    identifier); multi-server launches put the seed's ``launch-full-url`` items with
    absolute references on purpose (spec §6.5/§14.2, test_multi_server.py)."""
    body = ehr.launched.body
    check_token_response_body(body, EHR_SCOPES)
    check_fhir_context_stu2_2(body["fhirContext"])
    assert body["fhirContext"] == FHIR_CONTEXT
    assert body["patient"] == "p0003" and body["encounter"] == "enc-p0003-1"
    assert body["intent"] == "summary"


def test_smart_token_response_headers(ehr: EhrLaunch) -> None:
    """``smart_token_response_headers``: no-store and no-cache."""
    check_no_store(ehr.launched.response)


@pytest.mark.parametrize("ehr", ["public"], indirect=True)
def test_smart_cors_token_exchange(ehr: EhrLaunch) -> None:
    """``smart_cors_token_exchange`` (public clients): ACAO is the Origin or *."""
    check_cors(ehr.launched.response)


def test_g10_smart_style_url(http: httpx.Client, ehr: EhrLaunch) -> None:
    """``g10_smart_style_url``: "the token response has smart_style_url, and a GET of it →
    200 JSON" (with SMART Style properties, §4.4)."""
    style = check_json(http.get(ehr.launched.body["smart_style_url"]))
    assert set(style) <= set(STYLE_KEYS) and "color_background" in style


def test_g10_smart_need_patient_banner(ehr: EhrLaunch) -> None:
    """``g10_smart_need_patient_banner``: "the token response has a need_patient_banner key
    (EHR launch)" — a boolean, true by default."""
    assert ehr.launched.body["need_patient_banner"] is True


def test_g10_encounter_context(http: httpx.Client, realm: Realm, ehr: EhrLaunch) -> None:
    """``g10_encounter_context``: "encounter is present and GET Encounter/{id} → 200"."""
    body = ehr.launched.body
    read = fhir_get(http, realm.base("ehr"), f"Encounter/{body['encounter']}",
                    ehr.launched.access_token)
    assert read.status_code == 200, read.text
    assert read.json()["resourceType"] == "Encounter"
    assert read.json()["subject"]["reference"] == f"Patient/{body['patient']}"


def test_g10_patient_context(http: httpx.Client, realm: Realm, ehr: EhrLaunch) -> None:
    """``g10_patient_context`` (EHR launch): GET Patient/{patient} → 200 Patient."""
    read = fhir_get(http, realm.base("ehr"), f"Patient/{ehr.launched.body['patient']}",
                    ehr.launched.access_token)
    assert read.status_code == 200 and read.json()["resourceType"] == "Patient"


def test_ehr_launch_without_banner(http: httpx.Client, realm: Realm) -> None:
    """§4.4 ``need_patient_banner`` false when the EHR shows its own banner: the key is
    still present (g10 wants the key), with the launch's value."""
    launched = run_ehr_launch(http, realm, register(http, realm), patient="p0004",
                              need_patient_banner=False).launched
    assert launched.response.status_code == 200, launched.response.text
    assert launched.body["need_patient_banner"] is False
