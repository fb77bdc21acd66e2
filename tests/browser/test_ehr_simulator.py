"""The EHR simulator (``{issuer}/ehr``) in a real headless Chromium against the real realm:
a clinician signs in, searches and picks a patient, picks an app and presses Launch; the
browser lands on the app's launch URL with ``iss`` and ``launch`` (SMART §6.1 step 1). The
app is a tiny loopback web server that records what it was opened with; the test then plays
the app (authorize with the launch, the clinician signs in and approves) to the token."""

from __future__ import annotations

import re
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, expect

from smartrealm.client.auth import AuthorizationRequest, exchange_code, parse_callback
from smartrealm.oauth.registration import EHR_LAUNCH
from smartrealm.realm.config import RealmConfig
from tests.e2e.flow import PASSWORDS
from tests.initial_tokens import bearer

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

SCOPE = "launch openid fhirUser patient/*.rs"


@dataclass
class AppSite:
    url: str
    opened: list[str] = field(default_factory=list)  # every path+query the app was opened at


def _handler(site: AppSite) -> type[BaseHTTPRequestHandler]:
    class Pages(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = urlsplit(self.path).path
            if path not in ("/launch", "/callback"):
                self.send_response(204 if path == "/favicon.ico" else 404)
                self.end_headers()
                return
            site.opened.append(self.path)
            data = f"<!doctype html><title>app</title><p id=app>{path[1:]}</p>".encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Pages


@pytest.fixture(scope="module")
def app_site() -> Iterator[AppSite]:
    site = AppSite("")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(site))
    site.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield site
    server.shutdown()
    server.server_close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def client_id(realm: RealmConfig, app_site: AppSite) -> str:
    """The app registers its redirect URI and its launch URL (``initiate_login_uri``)."""
    async with httpx.AsyncClient(timeout=15.0) as http:
        response = await http.post(realm.auth_server.registration_endpoint, json={
            "client_name": "Chart Viewer", "redirect_uris": [f"{app_site.url}/callback"],
            "token_endpoint_auth_method": "none",
            "initiate_login_uri": f"{app_site.url}/launch"},
            headers=bearer(realm, EHR_LAUNCH))
    assert response.status_code == 201, response.text
    return str(response.json()["client_id"])


@pytest_asyncio.fixture(loop_scope="module")
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context()
    yield await context.new_page()
    await context.close()


async def _sign_in(page: Page, username: str) -> None:
    await page.locator("input[name=username]").fill(username)
    await page.locator("input[name=password]").fill(PASSWORDS[username])
    await page.get_by_role("button", name="Sign in").click()


async def test_clinician_launches_an_app_from_the_ehr(
        realm: RealmConfig, app_site: AppSite, client_id: str, page: Page) -> None:
    ehr_page = f"{realm.auth_server.issuer}/ehr"
    response = await page.goto(ehr_page)
    assert response is not None and response.status == 200
    headers = await response.all_headers()
    assert headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    await _sign_in(page, "clinician")

    await expect(page).to_have_url(ehr_page)
    await expect(page.locator("#user")).to_have_text("Dr. Ada Clinician")
    await page.locator("#search input[name=name]").fill("Garcia")
    await page.locator("#search").get_by_role("button", name="Search").click()
    radios = page.locator("#launch input[type=radio][name=patient]")
    await expect(radios.first).to_be_attached()
    assert await radios.count() > 1
    for label in await page.locator("#launch fieldset label").all_inner_texts():
        assert "Garcia" in label
    await expect(radios.first).to_be_checked()  # the last one must be clicked to count
    chosen = await radios.last.get_attribute("value")
    assert chosen
    await radios.last.check()
    await page.locator("#launch select[name=client_id]").select_option(label="Chart Viewer")
    await page.locator("#launch").get_by_role("button", name="Launch").click()

    await page.wait_for_url(re.compile("^" + re.escape(f"{app_site.url}/launch?")))
    await expect(page.locator("#app")).to_have_text("launch")
    query = parse_qs(urlsplit(app_site.opened[-1]).query)
    iss, launch = query["iss"], query["launch"]
    assert iss == [realm.server("ehr").base_url] and len(launch[0]) >= 43

    # The app goes on: authorize with the launch; the clinician signs in and approves.
    request = AuthorizationRequest.create(
        authorization_endpoint=realm.auth_server.authorization_endpoint,
        client_id=client_id, redirect_uri=f"{app_site.url}/callback", scope=SCOPE,
        aud=iss[0], launch=launch[0])
    await page.goto(request.url)
    await _sign_in(page, "clinician")
    await expect(page).to_have_url(re.compile(r"/interaction/consent$"))
    await page.locator("button[name=decision][value=approve]").click()
    await page.wait_for_url(re.compile("^" + re.escape(f"{app_site.url}/callback?")))
    code = parse_callback(page.url, request)
    async with httpx.AsyncClient(timeout=15.0) as http:
        token = await exchange_code(http, realm.auth_server.token_endpoint, request, code,
                                    client_id=client_id)
    assert token.patient == chosen
    assert token.raw["need_patient_banner"] is True


async def test_ehr_sign_in_with_a_wrong_password_stays_on_the_page(
        realm: RealmConfig, page: Page) -> None:
    await page.goto(f"{realm.auth_server.issuer}/ehr")
    await page.locator("input[name=username]").fill("clinician")
    await page.locator("input[name=password]").fill("wrong")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("#error")).to_have_text("Wrong user name or password.")
    await expect(page.locator("#launch")).to_have_count(0)
