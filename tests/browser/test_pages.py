"""The AS's login, patient-picker and consent pages in a real headless Chromium, against the
real realm (one uvicorn process per component): a user clicks through them as in the demo.

The app is a tiny loopback web server (``LoopbackSite``): its ``/callback`` page is where the
AS sends the browser back, and it also serves the pages of the framing test. Not
``page.route``: Playwright calls a route handler only for the first URL of a redirect chain,
and the AS always reaches the app by a 303, so the callback would go to the network anyway
(and port 9 of the HTTP-level tests is one Chromium refuses outright, ERR_UNSAFE_PORT)."""

from __future__ import annotations

import html
import re
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, Page, expect

from smartrealm.client.auth import AuthorizationRequest, exchange_code, register_client
from smartrealm.client.fhir import FhirSession
from smartrealm.realm.config import RealmConfig
from tests.e2e.flow import PASSWORDS, SCOPE

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "browser"
LOGIN_URL = re.compile(r"/interaction/login$")
PICKER_URL = re.compile(r"/interaction/patient$")
CONSENT_URL = re.compile(r"/interaction/consent$")


# ---------------------------------------------------------------- the app's web server


class _AppPages(BaseHTTPRequestHandler):
    """``/callback``: the app's landing page; ``/embed?src=…&control=…``: a page framing
    both URLs; ``/control``: a sign-in form sent without anti-framing headers; an empty
    ``/favicon.ico`` (else Chromium logs a 404)."""

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        if parts.path == "/callback":
            body = "<!doctype html><title>app</title><p id=app>Back at the app.</p>"
        elif parts.path == "/embed":
            body = ("<!doctype html><title>embedder</title>"
                    f'<iframe id="as" src="{html.escape(query["src"][0])}"></iframe>'
                    f'<iframe id="control" src="{html.escape(query["control"][0])}"></iframe>')
        elif parts.path == "/control":
            body = ('<!doctype html><form id="login"><input type="text" name="username">'
                    '<input type="password" name="password"></form>')
        elif parts.path == "/favicon.ico":
            self.send_response(204)
            self.end_headers()
            return
        else:
            self.send_error(404)
            return
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


@dataclass(frozen=True)
class Sites:
    app: str  # the app: callback and embedder
    other: str  # another loopback origin: the framing test's control frame


@pytest.fixture(scope="module")
def sites() -> Iterator[Sites]:
    """Two real loopback web servers, i.e. two origins (real, not ``route``-fulfilled, also
    because Chromium's local-network-access checks block a loopback frame inside a page
    that did not come from a loopback address)."""
    servers = [ThreadingHTTPServer(("127.0.0.1", 0), _AppPages) for _ in range(2)]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    app, other = (f"http://127.0.0.1:{s.server_address[1]}" for s in servers)
    yield Sites(app, other)
    for server in servers:
        server.shutdown()
        server.server_close()


# ---------------------------------------------------------------- fixtures and helpers


@dataclass(frozen=True)
class App:
    client_id: str
    redirect_uri: str
    authorization_endpoint: str
    token_endpoint: str

    def request(self, resources: list[str]) -> AuthorizationRequest:
        return AuthorizationRequest.create(
            authorization_endpoint=self.authorization_endpoint, client_id=self.client_id,
            redirect_uri=self.redirect_uri, scope=SCOPE, resources=resources)


@dataclass
class Tab:
    """One fresh browser context (own cookies) and its page. ``callbacks``: the URLs the
    browser requested at the app's redirect URI; ``problems``: console errors, uncaught
    page errors (a CSP violation shows up here) and failed requests."""

    context: BrowserContext
    page: Page
    callback_url: re.Pattern[str]
    callbacks: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def app(realm: RealmConfig, sites: Sites) -> App:
    """A public client registered through the AS's open registration (RFC 7591)."""
    redirect_uri = f"{sites.app}/callback"
    async with httpx.AsyncClient(timeout=15.0) as http:
        client = await register_client(http, f"{realm.auth_server.issuer}/register",
                                       redirect_uris=[redirect_uri],
                                       client_name="Browser Test App", scope=SCOPE)
    return App(str(client["client_id"]), redirect_uri, realm.auth_server.authorization_endpoint,
               realm.auth_server.token_endpoint)


@pytest_asyncio.fixture(loop_scope="module")
async def tab(browser: Browser, app: App) -> AsyncIterator[Tab]:
    context = await browser.new_context()
    page = await context.new_page()
    tab = Tab(context, page, re.compile("^" + re.escape(app.redirect_uri) + r"\?"))
    page.on("request", lambda r: tab.callbacks.append(r.url)
            if tab.callback_url.match(r.url) else None)
    page.on("console", lambda m: tab.problems.append(
        f"console {m.type}: {m.text} ({m.location.get('url')})") if m.type == "error" else None)
    page.on("pageerror", lambda e: tab.problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: tab.problems.append(
        f"request failed: {r.url} {r.failure}"))
    yield tab
    await context.close()


def both_servers(realm: RealmConfig) -> list[str]:
    return [realm.server("ehr").base_url, realm.server("imaging").base_url]


async def sign_in(page: Page, username: str, password: str) -> None:
    await expect(page).to_have_url(LOGIN_URL)
    await page.locator("input[name=username]").fill(username)
    await page.locator("input[name=password]").fill(password)
    await page.locator("#login").get_by_role("button", name="Sign in").click()


async def decide(tab: Tab, decision: str) -> dict[str, list[str]]:
    """Click Allow/Deny on the consent page; the query of the app's callback."""
    await expect(tab.page).to_have_url(CONSENT_URL)
    await tab.page.locator(f"button[name=decision][value={decision}]").click()
    await tab.page.wait_for_url(tab.callback_url)
    await expect(tab.page.locator("#app")).to_have_text("Back at the app.")
    assert tab.callbacks == [tab.page.url]
    return parse_qs(urlsplit(tab.page.url).query)


async def granted(page: Page, server_id: str) -> list[str]:
    return await page.locator(f"section.server[data-server={server_id}] ul.granted code"
                              ).all_inner_texts()


# ---------------------------------------------------------------- the flows


async def test_patient_consents_once_for_two_servers(
        realm: RealmConfig, app: App, tab: Tab) -> None:
    ehr, imaging = both_servers(realm)
    request = app.request([ehr, imaging])
    page = tab.page
    await page.goto(request.url)
    await expect(page).to_have_url(LOGIN_URL)
    await expect(page.locator("h1")).to_contain_text(realm.name)
    for base in (ehr, imaging):  # the login page names both servers asked for
        await expect(page.locator("main")).to_contain_text(base)
    await sign_in(page, "patient", PASSWORDS["patient"])

    await expect(page).to_have_url(CONSENT_URL)
    await expect(page.locator("h1")).to_contain_text("Browser Test App")
    sections = page.locator("section.server")
    await expect(sections).to_have_count(2)
    assert [await s.get_attribute("data-server") for s in await sections.all()] == [
        "ehr", "imaging"]
    ehr_section = page.locator("section.server[data-server=ehr]")
    img_section = page.locator("section.server[data-server=imaging]")
    await expect(ehr_section).to_contain_text(ehr)
    await expect(img_section).to_contain_text(imaging)
    # The patient's id differs per server, and each section shows its own.
    await expect(ehr_section).to_contain_text("Patient/p0012")
    await expect(img_section).to_contain_text("Patient/img0012")
    ehr_scopes, img_scopes = await granted(page, "ehr"), await granted(page, "imaging")
    assert "patient/ImagingStudy.rs" in img_scopes
    assert "patient/ImagingStudy.rs" not in ehr_scopes
    assert "patient/Observation.rs" in ehr_scopes
    assert "patient/Observation.rs" not in img_scopes
    assert "patient/Patient.rs" in ehr_scopes and "patient/Patient.rs" in img_scopes
    # What a server will not get is listed apart, under that server.
    await expect(img_section.locator("ul.refused")).to_contain_text("patient/Observation.rs")
    await expect(ehr_section.locator("ul.refused")).to_contain_text("patient/ImagingStudy.rs")

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "consent.png"
    await page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 0
    print(f"\nconsent page screenshot: {shot}")

    callback = await decide(tab, "approve")
    assert callback["state"] == [request.state]
    assert len(callback["code"]) == 1 and callback["code"][0]
    assert callback["iss"] == [realm.auth_server.issuer]

    async with httpx.AsyncClient(timeout=15.0) as http:
        token = await exchange_code(http, app.token_endpoint, request, callback["code"][0],
                                    client_id=app.client_id)
        assert token.patient_id_for(ehr) == "p0012"
        assert token.patient_id_for(imaging) == "img0012"
        patient = await FhirSession(http, ehr, token.access_token).read("Patient", "p0012")
        assert patient["id"] == "p0012"
        img_patient = await FhirSession(http, imaging, token.access_token).read(
            "Patient", "img0012")
        assert img_patient["id"] == "img0012"
    assert tab.problems == []


async def test_clinician_picks_a_patient(realm: RealmConfig, app: App, tab: Tab) -> None:
    request = app.request(both_servers(realm))
    page = tab.page
    await page.goto(request.url)
    await sign_in(page, "clinician", PASSWORDS["clinician"])

    await expect(page).to_have_url(PICKER_URL)
    radios = page.locator("#pick input[type=radio][name=patient]")
    assert await radios.count() > 1
    # The first patient is pre-selected; p0003 must be another one, so the click matters.
    assert await radios.first.get_attribute("value") != "p0003"
    choice = page.locator("#pick input[type=radio][name=patient][value=p0003]")
    await choice.click()
    await expect(choice).to_be_checked()
    await expect(radios.first).not_to_be_checked()
    await page.locator("#pick").get_by_role("button", name="Continue").click()

    await expect(page).to_have_url(CONSENT_URL)
    for server_id in ("ehr", "imaging"):
        await expect(page.locator(f"section.server[data-server={server_id}]")
                     ).to_contain_text("Patient/p0003")
    callback = await decide(tab, "approve")
    assert callback["state"] == [request.state]
    assert len(callback["code"]) == 1 and callback["code"][0]

    async with httpx.AsyncClient(timeout=15.0) as http:
        token = await exchange_code(http, app.token_endpoint, request, callback["code"][0],
                                    client_id=app.client_id)
    assert token.patient == "p0003"  # the patient clicked, the same id on both servers
    assert tab.problems == []


async def test_deny_returns_access_denied(realm: RealmConfig, app: App, tab: Tab) -> None:
    request = app.request(both_servers(realm))
    await tab.page.goto(request.url)
    await sign_in(tab.page, "patient", PASSWORDS["patient"])
    callback = await decide(tab, "deny")
    assert callback["error"] == ["access_denied"]
    assert callback["state"] == [request.state]
    assert "code" not in callback
    assert tab.problems == []


async def test_wrong_password_shows_the_login_page_again(
        realm: RealmConfig, app: App, tab: Tab) -> None:
    request = app.request(both_servers(realm))
    page = tab.page
    await page.goto(request.url)
    login_url = page.url
    async with page.expect_response(LOGIN_URL) as answered:
        await sign_in(page, "patient", "not-the-password")
    assert (await answered.value).status == 401
    await expect(page).to_have_url(login_url)
    await expect(page.locator("#error")).to_have_text("Wrong user name or password.")
    await expect(page.locator("#login input[name=password]")).to_be_visible()
    await expect(page.locator("#login input[name=password]")).to_have_value("")
    assert tab.callbacks == []
    # The same sign-in goes on with the right password.
    await sign_in(page, "patient", PASSWORDS["patient"])
    await expect(page).to_have_url(CONSENT_URL)
    # Only Chromium's note of the 401 itself; no CSP violation or script error.
    assert all("status of 401" in p for p in tab.problems), tab.problems


async def test_pages_cannot_be_framed(realm: RealmConfig, app: App, tab: Tab,
                                      sites: Sites) -> None:
    request = app.request(both_servers(realm))
    page = tab.page
    embed = f"{sites.app}/embed?src={quote(request.url, safe='')}&control=" + quote(
        f"{sites.other}/control", safe="")
    async with page.expect_response(LOGIN_URL) as answered:
        await page.goto(embed)
    response = await answered.value
    # The AS did serve its login page to the frame (the framing is refused by the browser)…
    assert response.status == 200
    headers = await response.all_headers()
    assert headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    await page.wait_for_load_state("load")
    # …while a form framed from another loopback origin, without those headers, shows…
    await expect(page.frame_locator("#control").locator("input[name=password]")
                 ).to_be_attached()
    # …but the AS's login form is not rendered inside its frame: an error page is.
    as_frame = page.frame_locator("#as")
    assert await as_frame.locator("input[name=password]").count() == 0
    assert await as_frame.locator("#login").count() == 0
    handle = await page.locator("iframe#as").element_handle()
    frame = await handle.content_frame() if handle else None
    assert frame is not None
    assert not frame.url.startswith(realm.auth_server.issuer), frame.url
    assert tab.callbacks == []
    # Chromium says why: the CSP's frame-ancestors (it takes precedence over X-Frame-Options).
    assert any("frame-ancestors" in p for p in tab.problems), tab.problems
