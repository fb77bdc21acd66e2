"""EHR launch on the real realm (one uvicorn process per component): the EHR creates a
launch through ``POST /api/launch`` (and through `smartrealm launch`), the app plays SMART
§6.1 (discovery on ``iss``, authorize with ``launch`` and ``aud=iss`` or several resources),
the scripted user signs in and approves; then the refusals (reuse, expiry, another user)."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smartrealm.authz.stores.sql_launch import sql_ehr_stores
from smartrealm.client.auth import (
    AuthorizationRequest,
    exchange_code,
    parse_callback,
    register_client,
)
from smartrealm.client.discovery import discover
from smartrealm.client.errors import AuthorizationError
from smartrealm.client.fhir import FhirSession
from smartrealm.client.tokens import TokenSet
from smartrealm.devtools.useragent import authorize_as_user
from smartrealm.oauth.launch import LaunchContext
from smartrealm.oauth.passwords import token_hash
from smartrealm.realm.config import RealmConfig, default_config_text
from smartrealm.realm.runner import AUTH_SERVER
from smartrealm.storage import make_engine
from tests.e2e.flow import PASSWORDS, REDIRECT_URI

pytestmark = pytest.mark.e2e
APP_LAUNCH_URL = "http://127.0.0.1:9/e2e-app/launch"
SCOPE = "launch openid fhirUser offline_access patient/*.rs"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


async def _app(http: httpx.AsyncClient, realm: RealmConfig) -> str:
    client = await register_client(http, realm.auth_server.registration_endpoint,
                                   redirect_uris=[REDIRECT_URI], client_name="e2e EHR app")
    return str(client["client_id"])


async def _api_launch(http: httpx.AsyncClient, realm: RealmConfig, username: str = "clinician",
                      **body: Any) -> str:
    """The EHR's side: create a launch; returns the URL the EHR would open."""
    body.setdefault("launch_url", APP_LAUNCH_URL)
    response = await http.post(f"{realm.auth_server.issuer}/api/launch", json=body,
                               auth=(username, PASSWORDS[username]))
    assert response.status_code == 201, response.text
    url = str(response.json()["url"])
    assert url.startswith(APP_LAUNCH_URL + "?")
    return url


async def _play_app(http: httpx.AsyncClient, client_id: str, launch_url: str, *,
                    username: str = "clinician", resources: tuple[str, ...] = ()
                    ) -> tuple[AuthorizationRequest, str]:
    """The app's side of §6.1: read iss and launch, discover iss, authorize with launch and
    aud=iss (or with resources), let the user sign in; returns the request and callback."""
    query = parse_qs(urlsplit(launch_url).query)
    iss, launch = query["iss"][0], query["launch"][0]
    config = await discover(http, iss)
    request = AuthorizationRequest.create(
        authorization_endpoint=config.authorization_endpoint, client_id=client_id,
        redirect_uri=REDIRECT_URI, scope=SCOPE, launch=launch,
        aud=None if resources else iss, resources=list(resources))
    async with httpx.AsyncClient(timeout=15.0) as browser:
        callback = await authorize_as_user(browser, request.url, REDIRECT_URI,
                                           username=username, password=PASSWORDS[username])
    return request, callback


async def _token(http: httpx.AsyncClient, realm: RealmConfig, client_id: str,
                 launch_url: str, **kwargs: Any) -> TokenSet:
    request, callback = await _play_app(http, client_id, launch_url, **kwargs)
    return await exchange_code(http, realm.auth_server.token_endpoint, request,
                               parse_callback(callback, request), client_id=client_id)


def _refused(request: AuthorizationRequest, callback: str) -> str:
    with pytest.raises(AuthorizationError) as caught:
        parse_callback(callback, request)
    return caught.value.error


async def test_ehr_launch_single_server(live_realm: RealmConfig,
                                        http: httpx.AsyncClient) -> None:
    ehr = live_realm.server("ehr").base_url
    client_id = await _app(http, live_realm)
    url = await _api_launch(http, live_realm, patient="p0003", encounter="enc-p0003-1",
                            client_id=client_id, intent="summary")
    assert parse_qs(urlsplit(url).query)["iss"] == [ehr]
    token = await _token(http, live_realm, client_id, url)
    raw = token.raw
    assert raw["patient"] == "p0003" and raw["encounter"] == "enc-p0003-1"
    assert raw["need_patient_banner"] is True and raw["intent"] == "summary"
    assert "launch" in token.scope.split()
    style = await http.get(raw["smart_style_url"])
    assert style.status_code == 200
    assert style.headers["content-type"].startswith("application/json")
    assert style.json()["color_background"]
    patient = await FhirSession(http, ehr, token.access_token).read("Patient", "p0003")
    assert patient["id"] == "p0003"


async def test_ehr_launch_for_two_servers(live_realm: RealmConfig,
                                          http: httpx.AsyncClient) -> None:
    ehr, img = live_realm.server("ehr").base_url, live_realm.server("imaging").base_url
    client_id = await _app(http, live_realm)
    url = await _api_launch(http, live_realm, patient="p0012", encounter="enc-p0012-1")
    token = await _token(http, live_realm, client_id, url, resources=(img, ehr))
    assert token.patient is None  # the ids differ: the seed's full-URL context
    assert token.patient_id_for(ehr) == "p0012" and token.patient_id_for(img) == "img0012"
    assert [d["locations"] for d in token.authorization_details] == [[ehr], [img]]
    assert token.authorization_details[0]["encounter"] == "enc-p0012-1"
    assert token.raw["need_patient_banner"] is True
    assert (await http.get(token.raw["smart_style_url"])).status_code == 200
    for base, pid in ((ehr, "p0012"), (img, "img0012")):
        read = await FhirSession(http, base, token.access_token).read("Patient", pid)
        assert read["id"] == pid


async def test_a_used_launch_is_refused(live_realm: RealmConfig,
                                        http: httpx.AsyncClient) -> None:
    client_id = await _app(http, live_realm)
    url = await _api_launch(http, live_realm, patient="p0003")
    await _token(http, live_realm, client_id, url)
    request, callback = await _play_app(http, client_id, url)
    assert _refused(request, callback) == "invalid_request"


async def test_an_expired_launch_is_refused(live_realm: RealmConfig,
                                            http: httpx.AsyncClient) -> None:
    """Five minutes are not waited for: the launch is written already expired into the
    realm database the running AS uses."""
    now = int(time.time())
    stores = sql_ehr_stores(make_engine(live_realm.database_url_for(None)))
    ehr = live_realm.server("ehr").base_url
    stores.launches.save(token_hash("e2e-expired"), LaunchContext(
        user="clinician", patient="p0003", iss=ehr, expires_at=now - 1, created_at=now - 301))
    client_id = await _app(http, live_realm)
    url = str(httpx.URL(APP_LAUNCH_URL, params={"iss": ehr, "launch": "e2e-expired"}))
    request, callback = await _play_app(http, client_id, url)
    assert _refused(request, callback) == "invalid_request"


async def test_another_user_cannot_use_the_launch(live_realm: RealmConfig,
                                                  http: httpx.AsyncClient) -> None:
    client_id = await _app(http, live_realm)
    url = await _api_launch(http, live_realm, username="clinician", patient="p0012")
    request, callback = await _play_app(http, client_id, url, username="patient")
    assert _refused(request, callback) == "invalid_request"


def _cli_config(realm: RealmConfig, tmp_path: Path) -> Path:
    """A realm file naming the live realm's ports (it was started on free ones)."""
    text = default_config_text()
    ports = {AUTH_SERVER: realm.auth_server.issuer,
             **{rs.id: rs.base_url for rs in realm.resource_servers}}
    for name, default in ((AUTH_SERVER, 8700), ("ehr", 8701), ("imaging", 8702),
                          ("lab", 8703)):
        port = urlsplit(ports[name]).port
        text = text.replace(f"127.0.0.1:{default}", f"127.0.0.1:{port}")
    path = tmp_path / "realm.toml"
    path.write_text(text)
    return path


async def test_cli_launch_prints_a_working_launch_url(
        live_realm: RealmConfig, http: httpx.AsyncClient, tmp_path: Path) -> None:
    config = _cli_config(live_realm, tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "smartrealm.cli", "launch", "--user", "clinician",
         "--patient", "p0004", "--app", APP_LAUNCH_URL, "--encounter", "enc-p0004-1",
         "--config", str(config), "--data-dir", str(live_realm.data_dir)],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    url = result.stdout.strip()
    query = parse_qs(urlsplit(url).query)
    assert url.startswith(APP_LAUNCH_URL + "?")
    assert query["iss"] == [live_realm.server("ehr").base_url]
    token = await _token(http, live_realm, await _app(http, live_realm), url)
    assert token.patient == "p0004" and token.raw["encounter"] == "enc-p0004-1"


def test_cli_launch_refuses_bad_input(live_realm: RealmConfig, tmp_path: Path) -> None:
    config = _cli_config(live_realm, tmp_path)
    base = [sys.executable, "-m", "smartrealm.cli", "launch", "--config", str(config),
            "--data-dir", str(live_realm.data_dir)]
    for args in (["--user", "nobody", "--patient", "p0003", "--app", APP_LAUNCH_URL],
                 ["--user", "clinician", "--patient", "bad id", "--app", APP_LAUNCH_URL],
                 ["--user", "clinician", "--patient", "p0003"]):
        result = subprocess.run([*base, *args], capture_output=True, text=True, timeout=60)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert result.stdout == "" and "Traceback" not in result.stderr


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=30)
                    | st.sampled_from(["p0003", "p9999", APP_LAUNCH_URL, "enc-p0003-1",
                                       "smartrealm-demo-app", "List/1", "https://x/r"]),
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=12)
FIELDS = st.sampled_from(["patient", "encounter", "fhirContext", "need_patient_banner",
                          "smart_style_url", "intent", "client_id", "launch_url", "user"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(body=st.dictionaries(FIELDS, JSON, max_size=6) | JSON)
def test_launch_api_never_answers_500(live_realm: RealmConfig, body: Any) -> None:
    response = httpx.post(f"{live_realm.auth_server.issuer}/api/launch", json=body,
                          auth=("clinician", PASSWORDS["clinician"]), timeout=15.0)
    assert response.status_code in (201, 400, 403), response.text
    if response.status_code != 201:
        assert response.json()["error"] in ("invalid_request", "access_denied")


@pytest.fixture(scope="module")
def ehr_session(live_realm: RealmConfig) -> Iterator[tuple[httpx.Client, str]]:
    """A browser-like client signed in at the EHR simulator, and its CSRF token."""
    with httpx.Client(base_url=live_realm.auth_server.issuer, timeout=15.0) as client:
        page = client.get("/ehr")
        token = CSRF.search(page.text)
        assert token is not None
        signed_in = client.post("/ehr/login", data={
            "csrf_token": token.group(1), "username": "clinician",
            "password": PASSWORDS["clinician"]})
        assert signed_in.status_code == 303
        home = client.get("/ehr")
        token = CSRF.search(home.text)
        assert token is not None
        yield client, token.group(1)


TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(fields=st.lists(st.tuples(st.sampled_from(["patient", "client_id", "csrf_token", "x"]),
                                 TEXT | st.sampled_from(["p0003", "smartrealm-demo-app"])),
                       max_size=5),
       valid_csrf=st.booleans())
def test_ehr_launch_form_never_answers_500(ehr_session: tuple[httpx.Client, str],
                                           fields: list[tuple[str, str]],
                                           valid_csrf: bool) -> None:
    client, token = ehr_session
    data = [*fields, ("csrf_token", token)] if valid_csrf else fields
    response = client.post("/ehr/launch", content=urlencode(data), headers={
        "Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code in (303, 400, 403), response.text
