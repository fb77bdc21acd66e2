"""Remembered consent (a later identical or narrower request skips the page, with the same
choices) and its revocation at the management endpoint ``/manage``."""

from __future__ import annotations

import re

import httpx

from smartrealm.realm.config import RealmConfig
from tests.authz.conftest import Flow, exchange, login, redirect_params, start
from tests.authz.consent_helpers import decide, per_server, ticked
from tests.authz.lifecycle import rs_auth

SCOPE = "launch/patient patient/Patient.rs patient/Observation.rs offline_access"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


async def consent_page(ua: httpx.AsyncClient, flow: Flow) -> httpx.Response:
    return await login(ua, await start(ua, flow), "patient", "patient-demo")


async def remember(ua: httpx.AsyncClient, flow: Flow,
                   untick: set[tuple[str, str]] | None = None) -> dict[str, object]:
    page = await consent_page(ua, flow)
    assert str(page.url).endswith("/interaction/consent"), page.text
    response = await decide(ua, page, ticked(page.text, untick=untick or set()), remember=True)
    body: dict[str, object] = (await exchange(ua, flow, redirect_params(response)["code"])).json()
    return body


async def skipped(ua: httpx.AsyncClient, flow: Flow) -> dict[str, object] | None:
    """Sign in; the token response when the AS went straight back to the app, else None."""
    page = await login(ua, await start(ua, flow), "patient", "patient-demo")
    if not page.history or "code=" not in page.history[-1].headers.get("location", ""):
        return None
    body: dict[str, object] = (await exchange(ua, flow, redirect_params(
        page.history[-1])["code"])).json()
    return body


async def test_an_identical_request_skips_the_page_with_the_same_choices(
        ua: httpx.AsyncClient, realm: RealmConfig) -> None:
    flow = Flow(realm, scope=SCOPE, resources=("ehr", "lab"))
    first = await remember(ua, flow, {("scope:lab", "patient/Observation.rs")})
    again = await skipped(ua, flow)
    assert again is not None
    assert per_server(again) == per_server(first)
    assert per_server(again)[realm.server("lab").base_url] == ["launch/patient",
                                                               "patient/Patient.rs"]
    assert "refresh_token" in again


async def test_a_narrower_request_skips_the_page(ua: httpx.AsyncClient,
                                                 realm: RealmConfig) -> None:
    await remember(ua, Flow(realm, scope=SCOPE, resources=("ehr", "lab")))
    narrower = Flow(realm, scope="launch/patient patient/Observation.r", resources=("ehr",))
    body = await skipped(ua, narrower)
    assert body is not None and body["scope"] == "launch/patient patient/Observation.r"


async def test_a_wider_request_shows_the_page_again(ua: httpx.AsyncClient,
                                                    realm: RealmConfig) -> None:
    await remember(ua, Flow(realm, scope=SCOPE))
    for wider in (Flow(realm, scope=SCOPE + " patient/Condition.rs"),  # a new scope
                  Flow(realm, scope=SCOPE, resources=("ehr", "lab")),  # a new server
                  Flow(realm, scope=SCOPE + " openid")):  # a new identity scope
        assert await skipped(ua, wider) is None


async def test_a_granular_choice_is_remembered(ua: httpx.AsyncClient,
                                               realm: RealmConfig) -> None:
    flow = Flow(realm, scope="launch/patient patient/Observation.rs")
    page = await consent_page(ua, flow)
    lab = ("patient/Observation.rs?category="
           "http://terminology.hl7.org/CodeSystem/observation-category|laboratory")
    fields = ticked(page.text, untick={("scope:ehr", "patient/Observation.rs")},
                    tick={("scope:ehr", lab)})
    await decide(ua, page, fields, remember=True)
    body = await skipped(ua, flow)
    assert body is not None and body["scope"] == f"launch/patient {lab}"


async def test_without_remember_the_page_comes_back(ua: httpx.AsyncClient,
                                                    realm: RealmConfig) -> None:
    flow = Flow(realm, scope=SCOPE)
    page = await consent_page(ua, flow)
    await decide(ua, page, ticked(page.text))
    assert await skipped(ua, flow) is None


async def test_consent_is_per_user(ua: httpx.AsyncClient, realm: RealmConfig) -> None:
    await remember(ua, Flow(realm, scope=SCOPE))
    page = await login(ua, await start(ua, Flow(realm, scope=SCOPE)), "clinician",
                       "clinician-demo")
    assert str(page.url).endswith("/interaction/patient")  # then the consent page


# ---------------------------------------------------------------- /manage


def csrf_of(page: httpx.Response) -> str:
    match = CSRF.search(page.text)
    assert match, page.text
    return match.group(1)


async def manage_login(ua: httpx.AsyncClient, password: str = "patient-demo"
                       ) -> httpx.Response:
    page = await ua.get("/manage")
    return await ua.post("/manage", follow_redirects=True, data={
        "csrf_token": csrf_of(page), "action": "login", "username": "patient",
        "password": password})


async def test_manage_needs_a_login_and_csrf(ua: httpx.AsyncClient) -> None:
    page = await ua.get("/manage")
    assert page.status_code == 200 and 'name="password"' in page.text
    assert page.headers["x-frame-options"] == "DENY" and "no-store" in page.headers[
        "cache-control"]
    cookie = page.headers["set-cookie"]
    assert "smartrealm_manage=" in cookie and "Path=/manage" in cookie
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie
    forged = await ua.post("/manage", data={"action": "login", "username": "patient",
                                            "password": "patient-demo"})
    assert forged.status_code == 403
    wrong = await manage_login(ua, "wrong")
    assert wrong.status_code == 401 and "Wrong user name or password." in wrong.text
    revoke = await ua.post("/manage", data={"csrf_token": csrf_of(wrong), "action": "revoke",
                                            "client_id": "smartrealm-demo-app"})
    assert revoke.status_code == 400  # not signed in


async def test_manage_lists_and_revokes(ua: httpx.AsyncClient, realm: RealmConfig) -> None:
    flow = Flow(realm, scope=SCOPE)
    first = await remember(ua, flow)
    before = await ua.post("/introspect", data={"token": first["access_token"]},
                           headers=rs_auth(realm, "ehr"))
    assert before.json()["active"] is True
    page = await manage_login(ua)
    assert "Signed in as patient" in page.text
    assert page.text.count('data-client="smartrealm-demo-app"') == 2  # consent and tokens
    assert "SmartRealm demo app" in page.text
    revoked = await ua.post("/manage", follow_redirects=True, data={
        "csrf_token": csrf_of(page), "action": "revoke", "client_id": "smartrealm-demo-app"})
    assert "Access of SmartRealm demo app revoked." in revoked.text
    assert 'id="no-consents"' in revoked.text and 'id="no-apps"' in revoked.text
    refresh = await ua.post("/token", data={"grant_type": "refresh_token",
                                            "client_id": flow.client_id,
                                            "refresh_token": first["refresh_token"]})
    assert refresh.status_code == 400 and refresh.json()["error"] == "invalid_grant"
    introspected = await ua.post("/introspect", data={"token": first["access_token"]},
                                 headers=rs_auth(realm, "ehr"))
    assert introspected.json() == {"active": False}  # its access token is revoked too
    assert await skipped(ua, flow) is None  # the consent page is back


async def test_manage_sign_out(ua: httpx.AsyncClient) -> None:
    page = await manage_login(ua)
    out = await ua.post("/manage", follow_redirects=True,
                        data={"csrf_token": csrf_of(page), "action": "logout"})
    assert 'name="password"' in out.text


def cookie_value(response: httpx.Response, name: str) -> str:
    for r in [*response.history, response]:
        for header in r.headers.get_list("set-cookie"):
            if header.startswith(f"{name}="):
                return header.split(";", 1)[0].split("=", 1)[1]
    raise AssertionError(f"no {name} cookie set")


async def test_cookies_of_one_page_do_not_open_the_other(ua: httpx.AsyncClient,
                                                         realm: RealmConfig) -> None:
    signed_in = await manage_login(ua)
    assert "Signed in as" in signed_in.text
    manage_key = cookie_value(signed_in, "smartrealm_manage")
    interaction_key = cookie_value(await start(ua, Flow(realm)), "smartrealm_interaction")
    ua.cookies.clear()
    response = await ua.get("/interaction/login",
                            headers={"cookie": f"smartrealm_interaction={manage_key}"})
    assert response.status_code == 400 and "expired" in response.text
    page = await ua.get("/manage", headers={"cookie": f"smartrealm_manage={interaction_key}"})
    assert 'name="password"' in page.text and "Signed in as" not in page.text
