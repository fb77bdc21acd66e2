"""The demo app (``{issuer}/demo-app``) in a real headless Chromium against the real realm:
standalone launch (Connect → sign in → consent → the record from both servers), EHR launch
from the EHR simulator as the clinician, and a declined consent shown as a readable page."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, expect

from smartrealm.demoapp.chart import CHARTS, measurements
from smartrealm.realm.config import RealmConfig
from smartrealm.realm.sample_data import generate_server_data
from tests.browser.test_pages import ARTIFACTS, CONSENT_URL, LOGIN_URL
from tests.e2e.flow import PASSWORDS

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]
RECORD_URL = re.compile(r"/demo-app/record$")


@pytest_asyncio.fixture(loop_scope="module")
async def page(browser: Browser) -> AsyncIterator[tuple[Page, list[str]]]:
    """A fresh context (own cookies); the list collects console errors, page errors (a
    CSP violation shows up there) and failed requests."""
    context = await browser.new_context(viewport={"width": 1400, "height": 900})
    page = await context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console: {m.text}")
            if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
    yield page, problems
    await context.close()


def _sample(realm: RealmConfig, profile: str, n: int, kind: str) -> list[dict[str, Any]]:
    return [r for r in generate_server_data(realm, profile, [n]) if r["resourceType"] == kind]


async def _sign_in(page: Page, username: str) -> None:
    await expect(page).to_have_url(LOGIN_URL)
    await page.locator("input[name=username]").fill(username)
    await page.locator("input[name=password]").fill(PASSWORDS[username])
    await page.get_by_role("button", name="Sign in").click()


async def _connect_and_sign_in(page: Page, realm: RealmConfig) -> None:
    app = f"{realm.auth_server.issuer}/demo-app"
    response = await page.goto(app)
    assert response is not None and response.status == 200
    assert page.url == app + "/"
    headers = await response.all_headers()
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["referrer-policy"] == "no-referrer"
    for server in realm.resource_servers:  # discovered: the EHR and its associated servers
        await expect(page.locator(f'#servers tr[data-base="{server.base_url}"]')).to_have_count(1)
    await expect(page.locator("#reuse")).to_have_text(
        "One token can be used at the EHR and the imaging server.")
    await page.locator("#connect").click()
    await _sign_in(page, "patient")
    await expect(page).to_have_url(CONSENT_URL)


async def _assert_record(page: Page, realm: RealmConfig, n: int, name: str) -> None:
    """Both columns show patient ``n``'s sample data, read with the ids each server uses."""
    ehr_id, imaging_id = (f"p{n:04d}", f"{'p' if n <= 6 else 'img'}{n:04d}")
    await expect(page).to_have_url(RECORD_URL)
    await expect(page.locator("#patient-name")).to_have_text(name)
    ehr_row, imaging_row = (page.locator(f"#mapping tr[data-server={s}]")
                            for s in ("ehr", "imaging"))
    await expect(ehr_row.locator(".patient-id")).to_have_text(ehr_id)
    await expect(imaging_row.locator(".patient-id")).to_have_text(imaging_id)
    await expect(ehr_row.locator(".audience")).to_have_text("yes")
    await expect(imaging_row.locator(".audience")).to_have_text("yes")
    await expect(ehr_row.locator(".scopes code", has_text=re.compile(
        r"^patient/Encounter\.rs$"))).to_have_count(1)
    await expect(imaging_row.locator(".scopes code", has_text=re.compile(
        r"^patient/ImagingStudy\.rs$"))).to_have_count(1)
    await expect(page.locator("#ehr")).to_have_attribute("data-base", realm.server("ehr").base_url)
    await expect(page.locator("p.error")).to_have_count(0)

    encounters = _sample(realm, "ehr", n, "Encounter")
    conditions = _sample(realm, "ehr", n, "Condition")
    await expect(page.locator("#encounter-count")).to_have_text(f"({len(encounters)})")
    await expect(page.locator("#encounters tbody tr")).to_have_count(len(encounters))
    await expect(page.locator("#condition-count")).to_have_text(f"({len(conditions)})")
    for condition in conditions:
        await expect(page.locator("#conditions")).to_contain_text(condition["code"]["text"])
    # One chart point per measured value: heart rate, weight, temperature, BP components.
    vitals = measurements(o for o in _sample(realm, "ehr", n, "Observation")
                          if o["category"][0]["coding"][0]["code"] == "vital-signs")
    charted = {code for _, _, series in CHARTS for code, _, _ in series}
    expected_points = sum(len(v) for code, v in vitals.items() if code in charted)
    assert expected_points >= 5 * len(encounters)
    await expect(page.locator("#vitals svg circle.point")).to_have_count(expected_points)
    await expect(page.locator('#vitals figure[data-chart="Heart rate"] circle.point')
                 ).to_have_count(len(encounters))
    await expect(page.locator("#vitals svg polyline.series")).to_have_count(5)

    studies = _sample(realm, "imaging", n, "ImagingStudy")
    await expect(page.locator("#study-count")).to_have_text(f"({len(studies)})")
    for study in studies:
        await expect(page.locator("#studies")).to_contain_text(study["description"])
    reports = _sample(realm, "imaging", n, "DiagnosticReport")
    await expect(page.locator("#report-count")).to_have_text(f"({len(reports)})")
    for report in reports:
        await expect(page.locator("#reports")).to_contain_text(report["conclusion"])


async def test_standalone_launch_shows_both_servers(
        realm: RealmConfig, page: tuple[Page, list[str]]) -> None:
    tab, problems = page
    await _connect_and_sign_in(tab, realm)
    await tab.locator("button[name=decision][value=approve]").click()
    await _assert_record(tab, realm, 12, "Pat Example")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "demo-app.png"
    await tab.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 0
    print(f"\ndemo app screenshot: {shot}")
    # The token never reaches the page: only the session cookie (httpOnly) does.
    html = await tab.content()
    assert "eyJ" not in html and "access_token" not in html
    cookies = await tab.context.cookies()
    assert [(c["name"], c["httpOnly"], c["path"]) for c in cookies
            if c["name"] == "smartrealm_demo"] == [("smartrealm_demo", True, "/demo-app")]
    # Sign out ends the session: the record page sends the browser back to the start.
    await tab.get_by_role("button", name="Sign out").click()
    await tab.goto(f"{realm.auth_server.issuer}/demo-app/record")
    await expect(tab.locator("#connect")).to_be_visible()
    assert problems == []


async def test_declined_consent_is_a_readable_page(
        realm: RealmConfig, page: tuple[Page, list[str]]) -> None:
    tab, _ = page
    await _connect_and_sign_in(tab, realm)
    async with tab.expect_response(re.compile(r"/demo-app/callback\?")) as answer:
        await tab.locator("button[name=decision][value=deny]").click()
    assert (await answer.value).status == 403
    await expect(tab.locator("#error-title")).to_have_text("Access denied")
    await expect(tab.locator("#error")).to_contain_text("The authorization was declined")


async def test_ehr_launch_by_the_clinician(realm: RealmConfig,
                                           page: tuple[Page, list[str]]) -> None:
    tab, problems = page
    await tab.goto(f"{realm.auth_server.issuer}/ehr")
    await tab.locator("input[name=username]").fill("clinician")
    await tab.locator("input[name=password]").fill(PASSWORDS["clinician"])
    await tab.get_by_role("button", name="Sign in").click()
    await tab.locator("#search input[name=name]").fill("Haddad")
    await tab.locator("#search").get_by_role("button", name="Search").click()
    await tab.locator("#launch input[type=radio][value=p0015]").check()
    await tab.locator("#launch select[name=client_id]").select_option(
        label="SmartRealm demo app")
    await tab.locator("#launch").get_by_role("button", name="Launch").click()
    # The demo app checks iss, discovers, and sends the browser to the AS with the launch.
    await _sign_in(tab, "clinician")
    await expect(tab).to_have_url(CONSENT_URL)
    await tab.locator("button[name=decision][value=approve]").click()
    await _assert_record(tab, realm, 15, "Clara Haddad")
    await expect(tab.locator("#patient")).to_contain_text("EHR launch")
    assert problems == []


async def test_a_server_refusing_is_shown_in_its_column(
        realm: RealmConfig, page: tuple[Page, list[str]]) -> None:
    """The user grants ImagingStudy on no server: the imaging server answers 403 and the
    column says so; the rest of the record is still there."""
    tab, problems = page
    await _connect_and_sign_in(tab, realm)
    await tab.locator('input[type=checkbox][name="scope:imaging"]'
                      '[value="patient/ImagingStudy.rs"]').uncheck()
    await tab.locator("button[name=decision][value=approve]").click()
    await expect(tab).to_have_url(RECORD_URL)
    errors = tab.locator("#imaging p.error")
    await expect(errors).to_have_count(1)
    await expect(errors).to_contain_text(
        "Imaging studies: the server refused (HTTP 403): insufficient_scope")
    await expect(tab.locator("#study-count")).to_have_text("(0)")
    reports = _sample(realm, "imaging", 12, "DiagnosticReport")
    await expect(tab.locator("#report-count")).to_have_text(f"({len(reports)})")
    await expect(tab.locator("#encounter-count")).to_have_text("(3)")
    await expect(tab.locator("#mapping tr[data-server=imaging] .scopes code",
                             has_text="ImagingStudy")).to_have_count(0)
    assert problems == []
