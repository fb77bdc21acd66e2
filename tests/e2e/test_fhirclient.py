"""SMART's official Python client, ``fhirclient`` (PyPI), against `smartrealm serve`
(issue 3: "completes a standalone launch, a refresh and a Patient read").

fhirclient reads the EHR's ``/metadata`` (the SMART ``oauth-uris`` extension), builds the
authorize URL (``aud`` = the server's base URL, PKCE S256), the scripted user signs in and
approves on the AS's real pages, and fhirclient's own ``handle_callback``, ``reauthorize``
and FHIR models do the rest over real sockets.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fhirclient import client as fhir_client
from fhirclient.models.patient import Patient
from fhirclient.server import FHIRUnauthorizedException

from smartrealm.devtools.useragent import authorize_as_user
from smartrealm.realm.config import RealmConfig, load_config
from tests.e2e.serve import realm_file, serving

pytestmark = pytest.mark.e2e
REDIRECT_URI = "http://127.0.0.1:9/fhirclient-callback"
# fhirclient adds launch/patient itself (no patient known yet); v1 scopes as its docs use.
SCOPE = "openid fhirUser offline_access patient/*.read"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealmConfig]:
    tmp = tmp_path_factory.mktemp("fhirclient")
    config = realm_file(tmp)
    with serving(config, tmp / "serve.log"):
        yield load_config(config)


def register(realm: RealmConfig, auth_method: str) -> dict[str, str]:
    response = httpx.post(realm.auth_server.registration_endpoint, json={
        "client_name": "fhirclient", "redirect_uris": [REDIRECT_URI],
        "token_endpoint_auth_method": auth_method})
    assert response.status_code == 201, response.text
    return dict(response.json())


def user_approves(authorize_url: str) -> str:
    """The user's part: follow the URL fhirclient built through login and consent."""
    async def follow() -> str:
        async with httpx.AsyncClient(timeout=15.0) as browser:
            return await authorize_as_user(browser, authorize_url, REDIRECT_URI,
                                           username="patient", password="patient-demo")
    return asyncio.run(follow())


def launch(realm: RealmConfig, registered: dict[str, str]) -> fhir_client.FHIRClient:
    settings = {"app_id": registered["client_id"], "api_base": realm.server("ehr").base_url,
                "redirect_uri": REDIRECT_URI, "scope": SCOPE}
    if "client_secret" in registered:
        settings["app_secret"] = registered["client_secret"]
    smart = fhir_client.FHIRClient(settings=settings)
    smart.handle_callback(user_approves(smart.authorize_url))
    return smart


def test_standalone_launch_refresh_and_patient_read(served: RealmConfig) -> None:
    ehr = served.server("ehr").base_url
    smart = fhir_client.FHIRClient(settings={
        "app_id": register(served, "none")["client_id"], "api_base": ehr,
        "redirect_uri": REDIRECT_URI, "scope": SCOPE})
    url = smart.authorize_url
    query = parse_qs(urlsplit(url).query)
    assert url.startswith(served.auth_server.authorization_endpoint + "?")  # from /metadata
    assert query["aud"] == [ehr]
    assert query["code_challenge_method"] == ["S256"] and query["code_challenge"]
    assert query["scope"] == [f"launch/patient {SCOPE}"]

    smart.handle_callback(user_approves(url))
    assert smart.ready and smart.patient_id == "p0012"
    assert smart.launch_context["scope"].split() == [
        "launch/patient", "patient/*.read", "openid", "fhirUser", "offline_access"]
    first_access, first_refresh = smart.server.auth.access_token, smart.server.auth.refresh_token
    assert first_refresh

    assert smart.reauthorize()
    assert smart.server.auth.access_token != first_access
    assert smart.server.auth.refresh_token not in (None, first_refresh)  # rotated
    assert smart.patient_id == "p0012"

    patient = Patient.read(smart.patient_id, smart.server)
    assert patient.id == "p0012"
    assert smart.human_name(patient.name[0]) == "Pat Example"


def test_confidential_client_with_basic_auth(served: RealmConfig) -> None:
    """fhirclient sends the secret with HTTP Basic (client_secret_basic)."""
    registered = register(served, "client_secret_basic")
    smart = launch(served, registered)
    assert smart.reauthorize()
    assert smart.patient is not None and smart.patient.id == "p0012"


def test_no_token_is_refused_and_a_search_stays_in_the_compartment(served: RealmConfig
                                                                   ) -> None:
    smart = launch(served, register(served, "none"))
    with pytest.raises(FHIRUnauthorizedException):
        Patient.read("p0012", fhir_client.FHIRClient(settings={
            "app_id": "x", "api_base": served.server("ehr").base_url}).server)
    other = smart.server.request_json("Patient?_count=50")
    assert [e["resource"]["id"] for e in other.get("entry", [])] == ["p0012"]
