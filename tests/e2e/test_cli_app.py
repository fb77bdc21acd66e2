"""`smartrealm app connect|get|token` run as a developer runs them: subprocesses against a
live realm, a scripted user following the printed authorize URL with the demo patient's
credentials, the AS redirecting to the CLI's loopback callback."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import stat
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import httpx
import pytest

from smartrealm.client.storage import FileTokenStore
from smartrealm.devtools.useragent import authorize_as_user
from smartrealm.realm.config import RealmConfig, load_config
from tests.e2e.serve import realm_file, serving

pytestmark = pytest.mark.e2e
CLI = [sys.executable, "-m", "smartrealm.cli", "app"]


def env(home: Path) -> dict[str, str]:
    return {**os.environ, "SMARTREALM_HOME": str(home), "COLUMNS": "200"}


def run(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=90,
                            env=env(home))
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    return result


@dataclass
class Connect:
    """A running `app connect --no-browser`, stopped at the printed authorize URL."""

    process: subprocess.Popen[str]
    url: str
    seen: str

    @property
    def redirect_uri(self) -> str:
        return parse_qs(urlsplit(self.url).query)["redirect_uri"][0]

    @property
    def state(self) -> str:
        return parse_qs(urlsplit(self.url).query)["state"][0]

    def finish(self) -> tuple[int, str, str]:
        out, err = self.process.communicate(timeout=90)
        assert "Traceback" not in out + err, err
        return self.process.returncode, self.seen + out, err


def start_connect(realm: RealmConfig, home: Path, *args: str,
                  sigint: signal.Handlers = signal.SIG_DFL) -> Connect:
    """``sigint``: the disposition the command inherits — SIG_DFL from an interactive shell,
    SIG_IGN from a background job of a non-interactive one (``cmd &``, nohup, CI runners)."""
    process = subprocess.Popen([*CLI, "connect", realm.server("ehr").base_url, "--no-browser",
                                *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=env(home),
                               preexec_fn=lambda: signal.signal(signal.SIGINT, sigint))
    assert process.stdout is not None
    seen = []
    for line in process.stdout:
        seen.append(line)
        if line.startswith(realm.auth_server.authorization_endpoint + "?"):
            return Connect(process, line.strip(), "".join(seen))
    _out, err = process.communicate(timeout=30)
    raise AssertionError(f"no authorize URL printed:\n{''.join(seen)}\n{err}")


async def sign_in(connect: Connect) -> None:
    """The user's browser: the AS's login and consent pages, then the loopback redirect."""
    async with httpx.AsyncClient(timeout=30.0) as browser:
        callback = await authorize_as_user(browser, connect.url, connect.redirect_uri,
                                           username="patient", password="patient-demo")
        page = await browser.get(callback)
    assert page.status_code == 200 and "return to the terminal" in page.text


async def send_callback(connect: Connect, **params: str) -> None:
    """What a forged or error redirect looks like at the loopback port."""
    async with httpx.AsyncClient(timeout=30.0) as browser:
        page = await browser.get(f"{connect.redirect_uri}?{urlencode(params)}")
    assert page.status_code == 200


@pytest.fixture(scope="module")
def connected(live_realm: RealmConfig, tmp_path_factory: pytest.TempPathFactory
              ) -> tuple[Path, str]:
    home = tmp_path_factory.mktemp("app-home")
    connect = start_connect(live_realm, home, "--server", live_realm.server("imaging").base_url,
                            "--alias", "realm", "--timeout", "60")
    asyncio.run(sign_in(connect))
    code, out, err = connect.finish()
    assert code == 0, out + err
    return home, out


def test_connect_prints_decision_plan_and_stores_privately(
        live_realm: RealmConfig, connected: tuple[Path, str]) -> None:
    home, out = connected
    ehr, imaging = live_realm.server("ehr").base_url, live_realm.server("imaging").base_url
    assert "token reuse: possible — one token for all 2 servers" in out
    assert f"{ehr}: can grant openid fhirUser launch/patient offline_access patient/*.rs" in out
    assert "registered public client" in out and "callback received, state checked" in out
    assert f"stored as alias realm in {home}" in out
    tokens_file = home / "tokens.json"
    assert stat.S_IMODE(tokens_file.stat().st_mode) == 0o600
    assert stat.S_IMODE((home / "apps.json").stat().st_mode) == 0o600
    stored = FileTokenStore(tokens_file).load("realm")
    assert stored is not None and stored.refresh_token is not None
    assert stored.access_token not in out and stored.refresh_token not in out
    assert stored.patient_id_for(ehr) == "p0012"
    assert stored.patient_id_for(imaging) == "img0012"


def test_get_reads_patient_from_both_servers(live_realm: RealmConfig,
                                             connected: tuple[Path, str]) -> None:
    home, _ = connected
    ehr = run(home, "get", "realm", "Patient/p0012")
    assert ehr.returncode == 0, ehr.stderr
    imaging = run(home, "get", live_realm.server("ehr").base_url, "Patient/img0012",
                  "--server", live_realm.server("imaging").base_url)
    assert imaging.returncode == 0, imaging.stderr
    ehr_patient, imaging_patient = json.loads(ehr.stdout), json.loads(imaging.stdout)
    assert (ehr_patient["resourceType"], ehr_patient["id"]) == ("Patient", "p0012")
    assert (imaging_patient["resourceType"], imaging_patient["id"]) == ("Patient", "img0012")
    assert ehr_patient["identifier"][0]["value"] == imaging_patient["identifier"][0]["value"]


def test_get_searches(connected: tuple[Path, str]) -> None:
    home, _ = connected
    result = run(home, "get", "realm", "Observation?category=vital-signs&_count=2")
    assert result.returncode == 0, result.stderr
    bundle = json.loads(result.stdout)
    assert bundle["resourceType"] == "Bundle" and len(bundle["entry"]) == 2
    assert {e["resource"]["subject"]["reference"] for e in bundle["entry"]} == {"Patient/p0012"}


def test_token_shows_audience_scopes_and_patients(live_realm: RealmConfig,
                                                  connected: tuple[Path, str]) -> None:
    home, _ = connected
    result = run(home, "token", "realm")
    assert result.returncode == 0, result.stderr
    ehr, imaging = live_realm.server("ehr").base_url, live_realm.server("imaging").base_url
    out = result.stdout
    assert f"audience: {ehr}, {imaging}" in out
    assert f"{ehr}\n    patient p0012\n    scopes  " in out
    assert f"{imaging}\n    patient img0012\n    scopes  " in out
    assert out.count("scopes  launch/patient patient/*.rs") == 2
    assert "client_id " in out and "expires: in " in out and "refresh token: yes" in out
    stored = FileTokenStore(home / "tokens.json").load("realm")
    assert stored is not None and stored.access_token not in out


def test_get_refreshes_once_on_401(connected: tuple[Path, str]) -> None:
    home, _ = connected
    store = FileTokenStore(home / "tokens.json")
    before = store.load("realm")
    assert before is not None
    store.save("realm", replace(before, access_token="not-a-valid-token"))
    result = run(home, "get", "realm", "Patient/p0012")
    assert result.returncode == 0, result.stderr
    after = store.load("realm")
    assert after is not None and after.access_token not in ("not-a-valid-token",
                                                             before.access_token)


def test_unknown_alias_is_a_usage_error(tmp_path: Path) -> None:
    result = run(tmp_path, "get", "nope", "Patient/p0012")
    assert result.returncode == 2
    assert "no connection 'nope' (known aliases: none)" in result.stderr


def test_bad_path_is_a_usage_error(connected: tuple[Path, str]) -> None:
    result = run(connected[0], "get", "realm", "Patient/p0012/_history/1")
    assert result.returncode == 2
    assert "must be TYPE/ID, TYPE or TYPE?QUERY" in result.stderr


def test_unreachable_iss_fails_cleanly(tmp_path: Path) -> None:
    result = run(tmp_path, "connect", "http://127.0.0.1:9/fhir", "--no-browser")
    assert result.returncode == 1
    assert "DiscoveryError" in result.stderr and "http://127.0.0.1:9/fhir" in result.stderr


def test_state_mismatch_is_refused(live_realm: RealmConfig, tmp_path: Path) -> None:
    connect = start_connect(live_realm, tmp_path, "--timeout", "60")
    asyncio.run(send_callback(connect, code="forged", state="not-the-state"))
    code, _out, err = connect.finish()
    assert code == 1
    assert "StateMismatch: callback state is missing or does not match" in err
    assert not (tmp_path / "apps.json").exists()


def test_denied_consent_is_reported(live_realm: RealmConfig, tmp_path: Path) -> None:
    connect = start_connect(live_realm, tmp_path, "--timeout", "60")
    asyncio.run(send_callback(connect, error="access_denied", state=connect.state,
                              error_description="the user denied the request"))
    code, _out, err = connect.finish()
    assert code == 1
    assert "AccessDenied: access_denied: the user denied the request" in err


def test_no_redirect_times_out(live_realm: RealmConfig, tmp_path: Path) -> None:
    connect = start_connect(live_realm, tmp_path, "--timeout", "1")
    code, _out, err = connect.finish()
    assert code == 1
    assert "no redirect arrived within 1 s" in err


@pytest.mark.parametrize("inherited", [signal.SIG_DFL, signal.SIG_IGN],
                         ids=["interactive", "background-job"])
def test_ctrl_c_cancels_cleanly(live_realm: RealmConfig, tmp_path: Path,
                                inherited: signal.Handlers) -> None:
    """Also when started as a background job, which inherits SIGINT as ignored: the command
    must still stop at once with 130, not sit out its timeout and exit 1."""
    connect = start_connect(live_realm, tmp_path, "--timeout", "60", sigint=inherited)
    connect.process.send_signal(signal.SIGINT)
    code, out, err = connect.finish()
    assert code == 130, out + err  # what the command said, should this ever not be 130
    assert "cancelled" in err
    assert not (tmp_path / "tokens.json").exists() and not (tmp_path / "apps.json").exists()


def test_connect_against_smartrealm_serve(tmp_path: Path) -> None:
    """The issue's done-when: the real `smartrealm serve` command, then `app connect` with a
    loopback redirect, then `app get` on a server found through associated_endpoints."""
    config = realm_file(tmp_path)
    realm = load_config(config)
    with serving(config, tmp_path / "serve.log"):
        connect = start_connect(realm, tmp_path / "home", "--alias", "served")
        asyncio.run(sign_in(connect))
        code, out, err = connect.finish()
        assert code == 0, out + err
        assert "token reuse: possible — one token for all 3 servers" in out
        lab = run(tmp_path / "home", "get", "served", "Patient/lab0012", "--server",
                  realm.server("lab").base_url)
    assert lab.returncode == 0, lab.stderr
    assert json.loads(lab.stdout)["id"] == "lab0012"


def test_brands_adds_the_bundles_endpoints(live_realm: RealmConfig, tmp_path: Path) -> None:
    """--brands: the brands bundle lists the lab server too; no sign-in (times out)."""
    connect = start_connect(live_realm, tmp_path, "--server",
                            live_realm.server("imaging").base_url, "--brands", "--timeout", "1")
    code, out, err = connect.finish()
    assert code == 1 and "no redirect arrived within 1 s" in err
    assert "token reuse: possible — one token for all 3 servers" in out
    assert f"resource={quote(live_realm.server('lab').base_url, safe='')}" in connect.url


def test_token_without_connections_is_a_usage_error(tmp_path: Path) -> None:
    result = run(tmp_path, "token")
    assert result.returncode == 2
    assert "no stored connections; run `smartrealm app connect ISS`" in result.stderr


def test_fhir_errors_are_reported_by_name(connected: tuple[Path, str]) -> None:
    missing = run(connected[0], "get", "realm", "Patient/p9999")
    assert missing.returncode == 1
    assert missing.stderr.startswith("error: FhirNotFound: ")
    outside = run(connected[0], "get", "realm", "Patient/p0012", "--server",
                  "http://127.0.0.1:9/fhir")
    assert outside.returncode == 2
    assert "realm has no token for http://127.0.0.1:9/fhir" in outside.stderr
