"""The EHR simulator (``/ehr``) in-process: its own session (CSRF, fixation-safe, never
framed), the patient search, the apps with a launch URL, and Launch → the app's URL with
``iss`` and ``launch``, which then works at ``/authorize``."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import httpx

from smartrealm.authz.stores.sql_launch import sql_ehr_stores
from smartrealm.oauth.registration import EHR_LAUNCH
from smartrealm.realm.config import RealmConfig
from smartrealm.storage import make_engine
from tests.authz.conftest import Flow, csrf, exchange
from tests.authz.launch_helpers import LAUNCH_SCOPE, basic, launch_code
from tests.initial_tokens import bearer

APP_LAUNCH = "http://127.0.0.1:9/ehr-app/launch"


async def _register_app(ua: httpx.AsyncClient, realm: RealmConfig) -> str:
    response = await ua.post("/register", json={
        "redirect_uris": ["http://127.0.0.1:9/ehr-app/cb"], "client_name": "Chart App",
        "token_endpoint_auth_method": "none", "initiate_login_uri": APP_LAUNCH},
        headers=bearer(realm, EHR_LAUNCH))
    assert response.status_code == 201, response.text
    return str(response.json()["client_id"])


async def _sign_in(ua: httpx.AsyncClient, username: str = "clinician",
                   password: str = "clinician-demo") -> httpx.Response:
    page = await ua.get("/ehr")
    return await ua.post("/ehr/login", data={"csrf_token": csrf(page.text),
                                             "username": username, "password": password})


async def test_sign_in_page_is_protected(ua: httpx.AsyncClient) -> None:
    page = await ua.get("/ehr")
    assert page.status_code == 200
    assert 'name="password"' in page.text
    assert page.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    cookie = page.headers["set-cookie"]
    assert cookie.startswith("smartrealm_ehr=")
    assert "HttpOnly" in cookie and "Path=/ehr" in cookie and "SameSite=strict" in cookie
    refused = await ua.post("/ehr/login", data={"csrf_token": "forged", "username":
                                                "clinician", "password": "clinician-demo"})
    assert refused.status_code == 403


async def test_wrong_passwords_lock_the_user_name_as_everywhere(
        ua: httpx.AsyncClient) -> None:
    """The AS's lockout rules (lockout.py) apply to the EHR's sign-in too."""
    first = await _sign_in(ua, password="wrong")
    assert first.status_code == 401 and "Wrong user name or password." in first.text
    token = csrf(first.text)
    for _ in range(3):
        again = await ua.post("/ehr/login", data={"csrf_token": token, "username":
                                                  "clinician", "password": "wrong"})
        assert again.status_code == 401
    for password in ("wrong", "clinician-demo"):  # locked: even the right one is refused
        locked = await ua.post("/ehr/login", data={"csrf_token": token, "username":
                                                   "clinician", "password": password})
        assert locked.status_code == 429 and "blocked" in locked.text
    api = await ua.post("/api/launch", headers=basic("clinician"),
                        json={"patient": "p0003", "launch_url": "https://a/l"})
    assert api.status_code == 429 and api.json()["error"] == "access_denied"


async def test_clinician_searches_picks_and_launches(
        ua: httpx.AsyncClient, realm: RealmConfig) -> None:
    client_id = await _register_app(ua, realm)
    before = ua.cookies.get("smartrealm_ehr", path="/ehr")
    signed_in = await _sign_in(ua)
    assert signed_in.status_code == 303
    after = ua.cookies.get("smartrealm_ehr", path="/ehr")
    assert after and after != before  # a new session at sign-in (no fixation)

    home = await ua.get("/ehr", params={"name": "Family3"})
    assert home.status_code == 200 and "Dr. Ada Clinician" in home.text
    assert 'value="p0003"' in home.text
    assert f'<option value="{client_id}">Chart App</option>' in home.text

    launched = await ua.post("/ehr/launch", data={"csrf_token": csrf(home.text),
                                                  "patient": "p0003", "client_id": client_id})
    assert launched.status_code == 303
    target = launched.headers["location"]
    assert target.startswith(APP_LAUNCH + "?")
    query = parse_qs(urlsplit(target).query)
    assert query["iss"] == [realm.server("ehr").base_url] and len(query["launch"]) == 1

    flow = Flow(realm, scope=LAUNCH_SCOPE, client_id=client_id, resources=("ehr",))
    flow_redirect = "http://127.0.0.1:9/ehr-app/cb"
    page = await ua.get("/authorize", params={**flow.params(launch=query["launch"][0]),
                                              "redirect_uri": flow_redirect})
    assert page.status_code == 303 and page.headers["location"].endswith("/interaction/login")


async def test_launch_from_the_page_reaches_the_token(
        ua: httpx.AsyncClient, realm: RealmConfig) -> None:
    """The demo client gets a launch URL in the store, as from clients[].launch_url."""
    flow = Flow(realm, scope=LAUNCH_SCOPE, resources=("ehr",))
    sql_ehr_stores(make_engine(realm.database_url_for(None))).app_launch_urls.put(
        flow.client_id, APP_LAUNCH)
    signed_in = await _sign_in(ua)
    home = await ua.get(signed_in.headers["location"])
    launched = await ua.post("/ehr/launch", data={"csrf_token": csrf(home.text),
                                                  "patient": "p0005",
                                                  "client_id": flow.client_id})
    launch = parse_qs(urlsplit(launched.headers["location"]).query)["launch"][0]
    callback = await launch_code(ua, flow, launch)
    body = (await exchange(ua, flow, callback["code"])).json()
    assert body["patient"] == "p0005" and body["need_patient_banner"] is True


async def test_launch_form_errors_stay_on_the_page(ua: httpx.AsyncClient,
                                                   realm: RealmConfig) -> None:
    client_id = await _register_app(ua, realm)
    await _sign_in(ua)
    home = await ua.get("/ehr")
    token = csrf(home.text)
    for data in ({"patient": "p9999", "client_id": client_id},
                 {"patient": "p0003", "client_id": ""},
                 {"patient": "p0003", "client_id": "smartrealm-demo-app"},
                 {"patient": "../../x", "client_id": client_id}):
        answer = await ua.post("/ehr/launch", data={"csrf_token": token, **data})
        assert answer.status_code == 400, data
        assert re.search(r'id="error"', answer.text), data
    assert (await ua.post("/ehr/launch", data={"patient": "p0003", "client_id": client_id})
            ).status_code == 403


async def test_sign_out_ends_the_session(ua: httpx.AsyncClient) -> None:
    await _sign_in(ua)
    home = await ua.get("/ehr")
    out = await ua.post("/ehr/logout", data={"csrf_token": csrf(home.text)})
    assert out.status_code == 303
    assert 'name="password"' in (await ua.get("/ehr")).text


async def test_no_session_post_is_refused(realm: RealmConfig, ua: httpx.AsyncClient) -> None:
    ua.cookies.clear()
    answer = await ua.post("/ehr/launch", data={"csrf_token": "x", "patient": "p0003",
                                                "client_id": "c"})
    assert answer.status_code == 400


async def test_a_patient_user_sees_only_their_own_record(ua: httpx.AsyncClient,
                                                         realm: RealmConfig) -> None:
    await _register_app(ua, realm)
    await _sign_in(ua, "patient", "patient-demo")
    home = await ua.get("/ehr", params={"name": "Family"})
    assert re.findall(r'name="patient" value="([^"]+)"', home.text) == ["p0012"]
