"""The consent page's choices and the sign-in lockout in a real headless Chromium against
the real realm: the user unticks a scope on one server only, and five wrong passwords lock
the user name with a message that does not say whether the user exists."""

from __future__ import annotations

import httpx
import pytest
from playwright.async_api import expect

from smartrealm.client.auth import exchange_code
from smartrealm.realm.config import RealmConfig
from tests.browser.test_pages import (  # fixtures and helpers of the page tests
    ARTIFACTS,
    CONSENT_URL,
    LOGIN_URL,
    App,
    Tab,
    app,
    both_servers,
    decide,
    sign_in,
    sites,
    tab,
)
from tests.e2e.flow import PASSWORDS

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]
__all__ = ["app", "sites", "tab"]  # fixtures used by name below
LOCKED = "Too many failed sign-ins with this user name"


async def test_unticking_a_scope_on_one_server_only(realm: RealmConfig, app: App,
                                                    tab: Tab) -> None:
    ehr, imaging = both_servers(realm)
    request = app.request([ehr, imaging])
    page = tab.page
    await page.goto(request.url)
    await sign_in(page, "patient", PASSWORDS["patient"])
    await expect(page).to_have_url(CONSENT_URL)
    on_imaging = page.locator(
        'input[type=checkbox][name="scope:imaging"][value="patient/DiagnosticReport.rs"]')
    on_ehr = page.locator(
        'input[type=checkbox][name="scope:ehr"][value="patient/DiagnosticReport.rs"]')
    await expect(on_imaging).to_be_checked()
    await expect(on_ehr).to_be_checked()
    # Whole Observation access comes with category alternatives, unticked.
    lab = page.locator('section[data-server=ehr] input[name="scope:ehr"]'
                       '[value$="observation-category|laboratory"]')
    await expect(lab).not_to_be_checked()
    await expect(page.locator("section[data-server=ehr]")).to_contain_text(
        "Read and search diagnostic reports of the patient")
    await on_imaging.uncheck()
    await expect(on_imaging).not_to_be_checked()
    await expect(on_ehr).to_be_checked()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "consent-choices.png"), full_page=True)

    callback = await decide(tab, "approve")
    async with httpx.AsyncClient(timeout=15.0) as http:
        token = await exchange_code(http, app.token_endpoint, request, callback["code"][0],
                                    client_id=app.client_id)
        scopes = {d["locations"][0]: d["scope"].split() for d in token.authorization_details}
        assert "patient/DiagnosticReport.rs" in scopes[ehr]
        assert "patient/DiagnosticReport.rs" not in scopes[imaging]
        assert "patient/ImagingStudy.rs" in scopes[imaging]
        bearer = {"Authorization": f"Bearer {token.access_token}"}
        refused = await http.get(f"{imaging}/DiagnosticReport", headers=bearer,
                                 params={"patient": "img0012"})
        assert refused.status_code == 403
        allowed = await http.get(f"{ehr}/DiagnosticReport", headers=bearer,
                                 params={"patient": "p0012"})
        assert allowed.status_code == 200
    assert tab.problems == []


async def test_five_wrong_passwords_lock_the_user_name(realm: RealmConfig, app: App,
                                                       tab: Tab) -> None:
    request = app.request(both_servers(realm))
    page = tab.page
    await page.goto(request.url)
    statuses = []
    for _ in range(5):
        async with page.expect_response(LOGIN_URL) as answered:
            await sign_in(page, "clinician", "not-the-password")
        statuses.append((await answered.value).status)
    assert statuses == [401, 401, 401, 401, 429]
    await expect(page.locator("#error")).to_contain_text(LOCKED)
    await expect(page.locator("#error")).to_contain_text("15 minutes")
    # Even the right password is refused now, with the same message.
    async with page.expect_response(LOGIN_URL) as answered:
        await sign_in(page, "clinician", PASSWORDS["clinician"])
    assert (await answered.value).status == 429
    await expect(page.locator("#error")).to_contain_text(LOCKED)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "login-locked.png"), full_page=True)
    # Another user name is not locked: the same authorization goes on.
    await sign_in(page, "patient", PASSWORDS["patient"])
    await expect(page).to_have_url(CONSENT_URL)
    assert tab.callbacks == []
    assert all("status of 401" in p or "status of 429" in p for p in tab.problems), \
        tab.problems
