"""The consent page on a real realm (one process per component, loopback): three resources
with the patient missing on one of them, per-server scope removal, a remembered consent
that skips the page, and its revocation through ``/manage``.

The realm is the default one plus a fourth server, "archive", whose sample-data profile is
``empty``: it has no record of any patient."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator
from pathlib import Path
from urllib.parse import urljoin

import httpx
import pytest

from smartrealm.client.auth import AuthorizationRequest, exchange_code, parse_callback
from smartrealm.client.tokens import TokenSet
from smartrealm.devtools.useragent import Form, parse_page
from smartrealm.realm.config import RealmConfig, default_config_text, load_config
from smartrealm.realm.runner import AUTH_SERVER, Launch, free_ports, running_realm
from tests.e2e.flow import REDIRECT_URI, App, register_app
from tests.e2e.flow import authorize as authorize_flow

pytestmark = pytest.mark.e2e

ARCHIVE = '''
[[resource_servers]]
id = "archive"
name = "SmartRealm Archive"
base_url = "http://127.0.0.1:8704/fhir"
fhir_version = "4.0.1"
mode = "server"
profile = "empty"

'''
SCOPE = ("launch/patient openid fhirUser offline_access patient/Patient.rs "
         "patient/Observation.rs patient/DiagnosticReport.rs patient/ImagingStudy.rs")


@pytest.fixture(scope="module")
def realm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealmConfig]:
    tmp = tmp_path_factory.mktemp("consent-realm")
    text = default_config_text().replace("[[users]]", ARCHIVE + "[[users]]", 1)
    path = Path(tmp / "realm.toml")
    path.write_text(text)
    config = load_config(path)
    ports = free_ports([AUTH_SERVER, *(rs.id for rs in config.resource_servers)])
    relocated = config.relocated(ports, tmp / "state")
    with running_realm(relocated, Launch(path, ports, tmp / "state")) as running:
        yield relocated
        assert not running.exited(), running.exited()


class Browser:
    """A user at the real pages, making the choices a test asks for."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.page: httpx.Response | None = None

    async def open(self, url: str) -> str | None:
        """Follow redirects; the app callback URL when the AS went back to the app."""
        response = await self.http.get(url)
        while response.is_redirect:
            location = urljoin(str(response.url), response.headers["location"])
            if location.startswith(REDIRECT_URI):
                return location
            response = await self.http.get(location)
        self.page = response
        return None

    def form(self) -> Form:
        assert self.page is not None
        forms, _text = parse_page(self.page.text)
        return next(f for f in forms if f.method == "post")

    async def submit(self, fields: list[tuple[str, str]]) -> str | None:
        assert self.page is not None
        form = self.form()
        given = {name for name, _ in fields}
        kept = [(n, v) for n, v in form.fields if n not in given]  # hidden fields
        response = await self.http.post(urljoin(str(self.page.url), form.action),
                                        data=_multi([*kept, *fields]))
        if response.is_redirect:
            location = urljoin(str(response.url), response.headers["location"])
            if location.startswith(REDIRECT_URI):
                return location
            return await self.open(location)
        self.page = response
        return None

    async def login(self, username: str = "patient", password: str = "patient-demo"
                    ) -> str | None:
        return await self.submit([("username", username), ("password", password)])

    async def consent(self, untick: Collection[tuple[str, str]] = (),
                      remember: bool = False) -> str | None:
        form = self.form()
        boxes = [(n, v) for n, v, on in form.checkboxes if on and (n, v) not in untick]
        extra = [("remember", "1")] if remember else []
        return await self.submit([*boxes, *extra, ("decision", "approve")])


def _multi(pairs: list[tuple[str, str]]) -> dict[str, list[str]]:
    data: dict[str, list[str]] = {}
    for name, value in pairs:
        data.setdefault(name, []).append(value)
    return data


def section(page: str, server_id: str) -> str:
    return page.split(f'data-server="{server_id}"')[1].split("</section>")[0]


async def authorize(http: httpx.AsyncClient, app: App, browser: Browser,
                    resources: list[str]) -> tuple[AuthorizationRequest, str | None]:
    request = AuthorizationRequest.create(
        authorization_endpoint=app.authorization_endpoint, client_id=app.client_id,
        redirect_uri=REDIRECT_URI, scope=SCOPE, resources=resources)
    assert await browser.open(request.url) is None  # the login page
    return request, await browser.login()


async def tokens(http: httpx.AsyncClient, app: App, request: AuthorizationRequest,
                 callback: str) -> TokenSet:
    code = parse_callback(callback, request)
    return await exchange_code(http, app.token_endpoint, request, code,
                               client_id=app.client_id)


def details(token: TokenSet) -> dict[str, dict[str, object]]:
    return {str(d["locations"][0]): d for d in token.authorization_details}


async def test_three_servers_patient_missing_on_one_and_per_server_removal(
        realm: RealmConfig, http: httpx.AsyncClient) -> None:
    ehr, imaging, archive = (realm.server(s) for s in ("ehr", "imaging", "archive"))
    app = await register_app(http, realm, scope=SCOPE)
    async with httpx.AsyncClient(timeout=15.0) as user:
        browser = Browser(user)
        request, callback = await authorize(
            http, app, browser, [ehr.base_url, imaging.base_url, archive.base_url])
        assert callback is None and browser.page is not None
        page = browser.page.text
        assert "The patient was not found on this server" in section(page, "archive")
        assert "Patient/img0012" in section(page, "imaging")
        assert "patient/Patient.rs" in section(page, "archive").split("Not allowed here")[1]
        callback = await browser.consent(
            untick={("scope:imaging", "patient/DiagnosticReport.rs")})
    assert callback is not None
    token = await tokens(http, app, request, callback)
    got = details(token)
    assert str(got[ehr.base_url]["scope"]).split() == [
        "launch/patient", "patient/Patient.rs", "patient/Observation.rs",
        "patient/DiagnosticReport.rs"]
    assert str(got[imaging.base_url]["scope"]).split() == [
        "launch/patient", "patient/Patient.rs", "patient/ImagingStudy.rs"]
    assert got[archive.base_url]["scope"] == "" and "patient" not in got[archive.base_url]
    bearer = {"Authorization": f"Bearer {token.access_token}"}
    # The removal is enforced by the imaging server; the EHR still allows it.
    on_imaging = await http.get(f"{imaging.base_url}/DiagnosticReport",
                                params={"patient": "img0012"}, headers=bearer)
    assert on_imaging.status_code == 403
    on_ehr = await http.get(f"{ehr.base_url}/DiagnosticReport", params={"patient": "p0012"},
                            headers=bearer)
    assert on_ehr.status_code == 200
    on_archive = await http.get(f"{archive.base_url}/Patient", headers=bearer)
    assert on_archive.status_code == 403  # in the audience, but nothing granted there


async def test_remembered_consent_skips_the_page_until_revoked_at_manage(
        realm: RealmConfig, http: httpx.AsyncClient) -> None:
    servers = [realm.server("ehr").base_url, realm.server("lab").base_url]
    app = await register_app(http, realm, scope=SCOPE)
    async with httpx.AsyncClient(timeout=15.0) as user:
        browser = Browser(user)
        request, callback = await authorize(http, app, browser, servers)
        assert callback is None  # the consent page
        callback = await browser.consent(untick={("scope:lab", "patient/Observation.rs")},
                                         remember=True)
        assert callback is not None
        first = await tokens(http, app, request, callback)
        request, callback = await authorize(http, app, browser, servers)
        assert callback is not None, "a remembered consent skips the page"
        second = await tokens(http, app, request, callback)
        assert details(second) == details(first)
        assert "patient/Observation.rs" not in str(
            details(second)[servers[1]]["scope"]).split()
        # Revoke at the management endpoint.
        assert await browser.open(realm.auth_server.management_endpoint) is None
        await browser.submit([("username", "patient"), ("password", "patient-demo")])
        assert browser.page is not None and app.client_id in browser.page.text
        forms, _ = parse_page(browser.page.text)
        revoke = next(f for f in forms if ("client_id", app.client_id) in f.fields)
        response = await user.post(realm.auth_server.management_endpoint,
                                   data=dict(revoke.fields), follow_redirects=True)
        assert "revoked" in response.text and 'id="no-consents"' in response.text
        _request, callback = await authorize(http, app, browser, servers)
        assert callback is None and "decision" in browser.page.text  # asked again
    refresh = await http.post(app.token_endpoint, data={
        "grant_type": "refresh_token", "client_id": app.client_id,
        "refresh_token": second.refresh_token or ""})
    assert refresh.status_code == 400 and refresh.json()["error"] == "invalid_grant"


async def test_encounter_picker_on_the_real_ehr(realm: RealmConfig,
                                                http: httpx.AsyncClient) -> None:
    """g10_encounter_context: ``encounter`` in the response, and readable with the token."""
    scope = "launch/patient launch/encounter patient/Patient.rs patient/Encounter.rs"
    ehr = realm.server("ehr").base_url
    app = await register_app(http, realm, scope=scope)
    request, code = await authorize_flow(http, app, resources=[ehr], username="clinician",
                                         patient="p0003", scope=scope)
    token = await exchange_code(http, app.token_endpoint, request, code,
                                client_id=app.client_id)
    encounter = token.raw["encounter"]
    assert token.patient == "p0003" and "launch/encounter" in token.scope.split()
    read = await http.get(f"{ehr}/Encounter/{encounter}",
                          headers={"Authorization": f"Bearer {token.access_token}"})
    assert read.status_code == 200
    assert read.json()["subject"]["reference"] == "Patient/p0003"


async def test_picker_searches_the_real_ehr_by_mrn_and_name(
        realm: RealmConfig, http: httpx.AsyncClient) -> None:
    app = await register_app(http, realm, scope=SCOPE)
    async with httpx.AsyncClient(timeout=15.0) as user:
        browser = Browser(user)
        request = AuthorizationRequest.create(
            authorization_endpoint=app.authorization_endpoint, client_id=app.client_id,
            redirect_uri=REDIRECT_URI, scope=SCOPE, resources=[realm.server("ehr").base_url])
        await browser.open(request.url)
        await browser.login("clinician", "clinician-demo")
        picker = f"{realm.auth_server.issuer}/interaction/patient"
        by_mrn = await user.get(picker, params={"mrn": "MRN000017"})
        forms, _text = parse_page(by_mrn.text)
        assert [f.choices.get("patient") for f in forms if f.method == "post"] == [["p0017"]]
        shown = re.search(r'value="p0017"[^>]*> ([^(<]+)', by_mrn.text)
        assert shown is not None
        family = shown.group(1).split()[-1]
        by_name = await user.get(picker, params={"name": family})
        forms, _text = parse_page(by_name.text)
        assert "p0017" in next(f for f in forms if f.method == "post").choices["patient"]
