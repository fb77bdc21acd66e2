"""Request logs and metrics of a really running realm (`serve --log-format json`): after
10,000 requests of the SMART flows — registration, authorization with login and consent,
code exchange, refresh, introspection, revocation, FHIR reads and searches, and refused
requests carrying secrets in their query strings — every log line is one JSON object with
exactly the documented fields, and not one token, code, secret, password, state or PKCE
verifier appears in any log; /metrics names the counters with the documented labels."""

from __future__ import annotations

import asyncio
import json
import re
import secrets
from pathlib import Path

import httpx
import pytest

from smartrealm.client.auth import exchange_code
from smartrealm.realm.config import RealmConfig, load_config
from smartrealm.realm.runner import AUTH_SERVER, Launch, running_realm
from tests.e2e.flow import PASSWORDS, SCOPE, authorize, register_app
from tests.e2e.serve import realm_file

pytestmark = pytest.mark.e2e
TARGET_REQUESTS = 10_000
LOG_FIELDS = {"time", "component", "method", "route", "status", "duration_ms", "request_id",
              "client_id"}


class Secrets:
    """Every secret value the run handed out or sent, to look for in the logs."""

    def __init__(self) -> None:
        self.values: set[str] = set(PASSWORDS.values())

    def add(self, *values: str | None) -> None:
        self.values.update(v for v in values if v and len(v) >= 8)


async def _flow(http: httpx.AsyncClient, realm: RealmConfig, seen: Secrets,
                counter: list[int]) -> tuple[str, str, str, str]:
    scope = SCOPE + " offline_access"
    app = await register_app(http, realm, scope=scope)
    request, code = await authorize(http, app, scope=scope,
                                    resources=[realm.server("ehr").base_url,
                                               realm.server("imaging").base_url])
    tokens = await exchange_code(http, app.token_endpoint, request, code,
                                 client_id=app.client_id)
    seen.add(code, request.state, request.code_verifier, tokens.access_token,
             tokens.refresh_token, tokens.id_token)
    counter[0] += 12  # register, discovery, authorize and the pages, token
    patient = tokens.patient_id_for(realm.server("ehr").base_url)
    assert tokens.refresh_token is not None and patient is not None
    return tokens.access_token, tokens.refresh_token, app.client_id, patient


async def _traffic(http: httpx.AsyncClient, realm: RealmConfig, seen: Secrets,
                   access: str, refresh: str, client_id: str, patient: str,
                   counter: list[int]) -> str:
    """One round of requests with a token set; returns the new refresh token."""
    ehr, issuer = realm.server("ehr").base_url, realm.auth_server.issuer
    bearer = {"Authorization": f"Bearer {access}"}
    junk = secrets.token_urlsafe(24)
    seen.add(junk)
    requests = [
        http.get(f"{ehr}/Patient/{patient}", headers=bearer),
        http.get(f"{ehr}/Observation", params={"patient": patient, "_count": "5"},
                 headers=bearer),
        http.get(f"{ehr}/Encounter", params={"patient": patient}, headers=bearer),
        http.get(f"{ehr}/Patient/{patient}", params={"access_token": access}),
        http.get(f"{ehr}/Patient/{patient}", headers={"Authorization": f"Bearer {junk}"}),
        http.get(f"{issuer}/authorize", params={"client_id": client_id, "code": junk,
                                                "state": junk}),
        http.post(f"{issuer}/token", data={"grant_type": "authorization_code",
                                           "code": junk, "client_id": client_id,
                                           "code_verifier": junk,
                                           "redirect_uri": "http://127.0.0.1:9/x"}),
        http.post(f"{issuer}/introspect", data={"token": access},
                  auth=("unknown-client", junk)),
    ]
    for response in await asyncio.gather(*requests):
        assert response.status_code < 500, response.text
    counter[0] += len(requests)
    rotated = await http.post(f"{issuer}/token", data={
        "grant_type": "refresh_token", "refresh_token": refresh, "client_id": client_id})
    counter[0] += 1
    assert rotated.status_code == 200, rotated.text
    body = rotated.json()
    seen.add(body["access_token"], body.get("refresh_token"))
    return str(body.get("refresh_token") or refresh)


async def _run(realm: RealmConfig, seen: Secrets) -> int:
    counter = [0]
    async with httpx.AsyncClient(timeout=30.0) as http:
        while counter[0] < TARGET_REQUESTS:
            access, refresh, client_id, patient = await _flow(http, realm, seen, counter)
            for _ in range(60):
                refresh = await _traffic(http, realm, seen, access, refresh, client_id,
                                         patient, counter)
            revoke = await http.post(f"{realm.auth_server.issuer}/revoke",
                                     data={"token": refresh, "client_id": client_id})
            counter[0] += 1
            assert revoke.status_code == 200
    return counter[0]


def test_ten_thousand_requests_log_no_secret_and_count_by_template(tmp_path: Path) -> None:
    path = realm_file(tmp_path)
    realm = load_config(path)
    seen = Secrets()
    with running_realm(realm, Launch(path, {}, realm.data_dir, "json")) as running:
        sent = asyncio.run(_run(realm, seen))
        metrics = {name: httpx.get(f"{_root(realm, name)}/metrics").text
                   for name in (AUTH_SERVER, "ehr")}
        assert not running.exited()
    logs = {name: (realm.data_dir / "logs" / f"{name}.log").read_text()
            for name in (AUTH_SERVER, "ehr", "imaging", "lab")}
    lines = [line for text in logs.values() for line in text.splitlines()
             if line.startswith("{")]
    assert sent >= TARGET_REQUESTS and len(lines) >= TARGET_REQUESTS
    for line in lines:
        record = json.loads(line)
        assert set(record) == LOG_FIELDS, line
        assert "?" not in record["route"] and "Patient/" not in record["route"]
    everything = "\n".join(logs.values())
    leaked = [v for v in seen.values if v in everything]
    assert leaked == [], f"{len(leaked)} secret values in the logs"
    assert not re.search(r"eyJ[A-Za-z0-9_-]{10,}\.", everything)  # no JWT at all
    _check_metrics(metrics)


def _root(realm: RealmConfig, name: str) -> str:
    url = realm.auth_server.issuer if name == AUTH_SERVER else realm.server(name).base_url
    return url.split("/fhir")[0]


def _check_metrics(metrics: dict[str, str]) -> None:
    auth, ehr = metrics[AUTH_SERVER], metrics["ehr"]
    assert 'smartrealm_tokens_issued_total{grant_type="authorization_code"}' in auth
    assert 'smartrealm_tokens_issued_total{grant_type="refresh_token"}' in auth
    assert re.search(r'smartrealm_oauth_errors_total\{endpoint="/token",'
                     r'error="invalid_grant"\} [1-9]', auth)
    assert re.search(r'smartrealm_oauth_errors_total\{endpoint="/introspect",'
                     r'error="invalid_client"\} [1-9]', auth)
    assert re.search(r'smartrealm_http_requests_total\{component="auth_server",'
                     r'method="POST",route="/token",status="200"\} [1-9]', auth)
    assert re.search(r'smartrealm_http_request_duration_seconds_bucket\{component="ehr",'
                     r'le="0.1",method="GET",route="/fhir/\{resource_type\}/\{resource_id\}"\}',
                     ehr)
    assert re.search(r'smartrealm_token_rejections_total\{reason="signature",server="ehr"\}'
                     r' [1-9]', ehr) or re.search(
        r'smartrealm_token_rejections_total\{reason="malformed",server="ehr"\} [1-9]', ehr)
    assert re.search(r'smartrealm_token_rejections_total\{reason="missing",server="ehr"\}'
                     r' [1-9]', ehr)
    assert re.search(r'smartrealm_fhir_interactions_total\{interaction="search-type",'
                     r'outcome="2xx",server="ehr",type="Observation"\} [1-9]', ehr)
    assert re.search(r'smartrealm_fhir_interactions_total\{interaction="read",'
                     r'outcome="2xx",server="ehr",type="Patient"\} [1-9]', ehr)
    for text in metrics.values():
        assert "Patient/" not in text and "?" not in text.replace("# HELP", "")
