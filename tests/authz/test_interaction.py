"""Login, patient picker and consent pages: CSRF, credentials, decisions, framing headers."""

from __future__ import annotations

import httpx
import pytest

from smartrealm.realm.config import RealmConfig
from tests.authz.conftest import Flow, approve, csrf, login, redirect_params, start
from tests.authz.fhir_stub import FhirStub


async def test_login_page_has_form_fields_and_anti_framing_headers(
        ua: httpx.AsyncClient, realm: RealmConfig) -> None:
    page = await start(ua, Flow(realm))
    assert page.status_code == 200
    assert str(page.url).endswith("/interaction/login")
    for field in ('name="username"', 'name="password"', 'name="csrf_token"'):
        assert field in page.text
    assert page.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert "no-store" in page.headers["cache-control"]


async def test_login_post_without_csrf_is_refused(ua: httpx.AsyncClient,
                                                  realm: RealmConfig) -> None:
    await start(ua, Flow(realm))
    response = await ua.post("/interaction/login",
                             data={"username": "patient", "password": "patient-demo"})
    assert response.status_code == 403
    assert "CSRF" in response.text
    wrong = await ua.post("/interaction/login", data={
        "csrf_token": "forged", "username": "patient", "password": "patient-demo"})
    assert wrong.status_code == 403


async def test_login_without_interaction_cookie_is_an_error_page(
        ua: httpx.AsyncClient) -> None:
    response = await ua.post("/interaction/login", data={"csrf_token": "x"})
    assert response.status_code == 400 and "expired" in response.text


@pytest.mark.parametrize(("username", "password"), [("patient", "wrong"),
                                                    ("nobody", "patient-demo")])
async def test_wrong_credentials_show_the_login_page_again(
        ua: httpx.AsyncClient, realm: RealmConfig, username: str, password: str) -> None:
    page = await login(ua, await start(ua, Flow(realm)), username, password)
    assert page.status_code == 401
    assert "Wrong user name or password" in page.text
    assert 'name="password"' in page.text


async def test_repeated_failures_lock_the_user_name_and_keep_the_login_page(
        ua: httpx.AsyncClient, realm: RealmConfig) -> None:
    # The lockout (authz/lockout.py; tests/authz/test_lockout.py) replaced the old
    # access_denied: the authorization stays on the login page, recoverable.
    page = await start(ua, Flow(realm))
    for _ in range(4):
        page = await login(ua, page, "patient", "wrong")
        assert page.status_code == 401
    final = await login(ua, page, "patient", "wrong")
    assert final.status_code == 429 and "blocked for 15 minutes" in final.text
    assert 'name="password"' in final.text and "location" not in final.headers


async def test_deny_redirects_with_access_denied(ua: httpx.AsyncClient,
                                                 realm: RealmConfig) -> None:
    flow = Flow(realm)
    page = await login(ua, await start(ua, flow), "patient", "patient-demo")
    assert 'name="decision" value="approve"' in page.text
    params = redirect_params(await approve(ua, page, "deny"))
    assert params == {"error": "access_denied", "error_description": "the user denied access",
                      "state": flow.state, "iss": realm.auth_server.issuer}
    # The interaction is over: its pages are gone.
    again = await ua.get("/interaction/consent")
    assert again.status_code == 400


async def test_consent_post_without_csrf_is_refused(ua: httpx.AsyncClient,
                                                    realm: RealmConfig) -> None:
    await login(ua, await start(ua, Flow(realm)), "patient", "patient-demo")
    response = await ua.post("/interaction/consent", data={"decision": "approve"})
    assert response.status_code == 403 and "location" not in response.headers


async def test_consent_shows_scopes_per_server(ua: httpx.AsyncClient,
                                               realm: RealmConfig) -> None:
    flow = Flow(realm, resources=("ehr", "imaging"),
                scope="launch/patient patient/Observation.rs patient/ImagingStudy.rs "
                      "user/Patient.rs")
    page = await login(ua, await start(ua, flow), "patient", "patient-demo")
    ehr, imaging = page.text.split('data-server="ehr"')[1].split('data-server="imaging"')
    assert "patient/Observation.rs" in ehr.split("Not allowed here")[0]
    assert "patient/ImagingStudy.rs" in ehr.split("Not allowed here")[1]
    assert "patient/ImagingStudy.rs" in imaging.split("Not allowed here")[0]
    assert "Patient/img0012" in imaging
    assert "user/Patient.rs" in imaging.split("Not allowed here")[1]


async def test_patient_missing_on_a_server_gets_no_patient_scopes_there(
        ua: httpx.AsyncClient, realm: RealmConfig, stub: FhirStub) -> None:
    stub.missing["lab"] = {12}
    flow = Flow(realm, resources=("ehr", "lab"))
    page = await login(ua, await start(ua, flow), "patient", "patient-demo")
    lab = page.text.split('data-server="lab"')[1]
    assert "was not found on this server" in lab
    params = redirect_params(await approve(ua, page))
    from tests.authz.conftest import exchange
    body = (await exchange(ua, flow, params["code"])).json()
    details = {d["locations"][0]: d for d in body["authorization_details"]}
    lab_entry = details[realm.server("lab").base_url]
    assert lab_entry["scope"] == "" and "patient" not in lab_entry
    assert "patient" not in body
    assert body["fhirContext"] == [{"reference": f"{realm.server('ehr').base_url}/Patient/p0012",
                                    "role": "launch-full-url"}]


async def test_picker_lists_and_searches_patients(ua: httpx.AsyncClient,
                                                  realm: RealmConfig, stub: FhirStub) -> None:
    page = await login(ua, await start(ua, Flow(realm)), "clinician", "clinician-demo")
    assert str(page.url).endswith("/interaction/patient")
    assert page.text.count('name="patient"') == 24
    found = await ua.get("/interaction/patient", params={"name": "Given13"})
    assert found.text.count('name="patient"') == 1 and 'value="p0013"' in found.text
    assert any(c.startswith("ehr search") for c in stub.calls)


async def test_picker_refuses_an_unknown_patient(ua: httpx.AsyncClient,
                                                 realm: RealmConfig) -> None:
    page = await login(ua, await start(ua, Flow(realm)), "clinician", "clinician-demo")
    for bad in ("p9999", "../Practitioner/pr0001", ""):
        response = await ua.post("/interaction/patient",
                                 data={"csrf_token": csrf(page.text), "patient": bad})
        assert response.status_code == 400 and "Choose a patient" in response.text


async def test_out_of_order_post_goes_back_to_the_current_step(
        ua: httpx.AsyncClient, realm: RealmConfig) -> None:
    page = await start(ua, Flow(realm))
    response = await ua.post("/interaction/consent",
                             data={"csrf_token": csrf(page.text), "decision": "approve"})
    assert response.status_code == 303
    assert response.headers["location"] == "/interaction/login"
