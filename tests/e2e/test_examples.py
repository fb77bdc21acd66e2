"""The README's example scripts, run as a reader runs them (subprocesses against a live
realm, headless with --scripted-user): they are the docs' proof."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from smartrealm.client import FileTokenStore
from smartrealm.devtools.useragent import authorize_as_user
from smartrealm.oauth.registration import BACKEND_SERVICES
from smartrealm.realm.config import RealmConfig
from tests.initial_tokens import initial_token

pytestmark = pytest.mark.e2e
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run_example(name: str, *args: str) -> str:
    result = subprocess.run([sys.executable, str(EXAMPLES / name), *args], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


def test_multi_server_app(live_realm: RealmConfig) -> None:
    ehr, imaging = live_realm.server("ehr").base_url, live_realm.server("imaging").base_url
    out = run_example("multi_server_app.py", "--iss", ehr, "--server", imaging,
                      "--scripted-user")
    lines = out.splitlines()
    assert lines[0] == "token reuse: possible"
    assert f"cannot grant: {ehr}: patient/ImagingStudy.rs: type-not-served" in lines
    assert lines[-2].startswith(f"{ehr}: Patient/p0012 ")
    assert lines[-1].startswith(f"{imaging}: Patient/img0012 ")
    assert "scopes: launch/patient patient/Patient.rs" in lines[-1]


def test_single_server_app(live_realm: RealmConfig, tmp_path: Path) -> None:
    ehr = live_realm.server("ehr").base_url
    token_file = tmp_path / "tokens.json"
    out = run_example("single_server_app.py", "--iss", ehr, "--scripted-user",
                      "--token-file", str(token_file))
    assert out.startswith("Patient/p0012: 5 vital signs on the first page; granted ")
    stored = FileTokenStore(token_file).load("ehr")
    assert stored is not None and stored.patient_id_for(ehr) == "p0012"
    assert stored.access_token not in out


def test_backend_service(live_realm: RealmConfig) -> None:
    ehr, lab = live_realm.server("ehr").base_url, live_realm.server("lab").base_url
    token = initial_token(live_realm, BACKEND_SERVICES)
    out = run_example("backend_service.py", "--server", ehr, "--server", lab,
                      "--initial-access-token", token)
    lines = out.splitlines()
    assert lines[0].startswith("registered ") and " with key es384-" in lines[0]
    assert lines[1] == "one token for 2 servers, expires in 300 s"
    assert lines[2].startswith(f"{ehr}: MRN000012 is Patient/p0012; scopes system/")
    assert lines[3].startswith(f"{lab}: MRN000012 is Patient/lab0012; scopes system/")


def test_multi_server_app_prints_the_url_and_waits_for_the_browser(
        live_realm: RealmConfig) -> None:
    """Without --scripted-user: the printed URL, followed by a user's browser, ends at the
    example's loopback port."""
    ehr, imaging = live_realm.server("ehr").base_url, live_realm.server("imaging").base_url
    process = subprocess.Popen([sys.executable, str(EXAMPLES / "multi_server_app.py"),
                                "--iss", ehr, "--server", imaging], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None
    url = next((line.strip() for line in process.stdout
                if line.startswith(live_realm.auth_server.authorization_endpoint)), None)
    assert url is not None, process.communicate(timeout=30)
    redirect_uri = parse_qs(urlsplit(url).query)["redirect_uri"][0]

    async def browser() -> None:
        async with httpx.AsyncClient(timeout=30.0) as http:
            callback = await authorize_as_user(http, url, redirect_uri, username="patient",
                                               password="patient-demo")
            assert (await http.get(callback)).status_code == 200

    asyncio.run(browser())
    out, err = process.communicate(timeout=90)
    assert process.returncode == 0, out + err
    assert f"{imaging}: Patient/img0012 " in out
