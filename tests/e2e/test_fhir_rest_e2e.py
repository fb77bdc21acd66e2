"""The FHIR REST write API on the really running realm, with tokens from the real AS: a
Backend Services client granted ``system/*.cruds`` (the EHR honours it, the read-only
imaging server gets ``.rs``), a patient's app confined to its own record, and
`smartrealm load` into a running server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from smartrealm.client.auth import exchange_code
from smartrealm.oauth.registration import BACKEND_SERVICES
from smartrealm.realm.config import RealmConfig
from tests.e2e.flow import authorize, register_app
from tests.initial_tokens import bearer
from tests.oauth.assertion_keys import ClientKey, assertion_form

pytestmark = pytest.mark.e2e
CLI = [sys.executable, "-m", "smartrealm.cli"]
LAB = "http://terminology.hl7.org/CodeSystem/observation-category"


def _observation(pid: str) -> dict[str, Any]:
    return {"resourceType": "Observation", "status": "final",
            "category": [{"coding": [{"system": LAB, "code": "laboratory"}]}],
            "code": {"text": "e2e glucose"}, "subject": {"reference": f"Patient/{pid}"}}


async def _backend_token(http: httpx.AsyncClient, realm: RealmConfig,
                         resources: list[str]) -> dict[str, Any]:
    key = ClientKey.generate("ES384")
    registered = await http.post(realm.auth_server.registration_endpoint, json={
        "client_name": "e2e writer", "grant_types": ["client_credentials"],
        "token_endpoint_auth_method": "private_key_jwt", "scope": "system/*.cruds",
        "jwks": key.jwks()}, headers=bearer(realm, BACKEND_SERVICES))
    assert registered.status_code == 201, registered.text
    client_id = registered.json()["client_id"]
    assertion = key.assertion(client_id, realm.auth_server.token_endpoint)
    response = await http.post(realm.auth_server.token_endpoint, data=assertion_form(
        assertion, grant_type="client_credentials", scope="system/*.cruds", resource=resources))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _auth(token: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Accept": "application/fhir+json", **headers}


async def test_backend_client_writes_at_the_ehr_only(live_realm: RealmConfig,
                                                     http: httpx.AsyncClient) -> None:
    ehr, imaging = (live_realm.server(s).base_url for s in ("ehr", "imaging"))
    for base, suffix in ((ehr, "cruds"), (imaging, "rs")):
        config = (await http.get(f"{base}/.well-known/smart-configuration")).json()
        assert f"system/*.{suffix}" in config["scopes_supported"]
    body = await _backend_token(http, live_realm, [ehr, imaging])
    shares = {d["locations"][0]: d["scope"] for d in body["authorization_details"]}
    assert shares == {ehr: "system/*.cruds", imaging: "system/*.rs"}
    token = body["access_token"]

    created = await http.post(f"{ehr}/Observation", json=_observation("p0001"),
                              headers=_auth(token))
    assert created.status_code == 201, created.text
    oid = created.json()["id"]
    assert created.headers["location"] == f"{ehr}/Observation/{oid}/_history/1"
    updated = await http.put(f"{ehr}/Observation/{oid}",
                             json={**created.json(), "status": "amended"},
                             headers=_auth(token, **{"If-Match": 'W/"1"'}))
    assert updated.status_code == 200 and updated.headers["etag"] == 'W/"2"'
    stale = await http.put(f"{ehr}/Observation/{oid}", json=created.json(),
                           headers=_auth(token, **{"If-Match": 'W/"1"'}))
    assert stale.status_code == 412
    history = await http.get(f"{ehr}/Observation/{oid}/_history", headers=_auth(token))
    assert history.json()["total"] == 2
    assert (await http.delete(f"{ehr}/Observation/{oid}", headers=_auth(token))
            ).status_code == 204
    assert (await http.get(f"{ehr}/Observation/{oid}", headers=_auth(token))).status_code == 410
    invalid = await http.post(f"{ehr}/Observation", json={**_observation("p0001"), "x": 1},
                              headers=_auth(token))
    assert invalid.status_code == 422

    transaction = await http.post(ehr, headers=_auth(token), json={
        "resourceType": "Bundle", "type": "transaction", "entry": [
            {"fullUrl": "urn:uuid:" + str(uuid.uuid4()), "request": {"method": "POST",
                                                                    "url": "Patient"},
             "resource": {"resourceType": "Patient", "name": [{"family": "E2e"}]}}]})
    assert transaction.status_code == 200, transaction.text
    assert transaction.json()["entry"][0]["response"]["status"] == "201 Created"

    refused = await http.post(f"{imaging}/ImagingStudy", headers=_auth(token), json={
        "resourceType": "ImagingStudy", "status": "available",
        "subject": {"reference": "Patient/p0001"}})
    assert refused.status_code == 405
    assert (await http.get(f"{imaging}/ImagingStudy/_history?_count=1",
                           headers=_auth(token))).status_code == 200


async def test_patient_app_writes_only_its_own_record(live_realm: RealmConfig,
                                                      http: httpx.AsyncClient) -> None:
    ehr, imaging = (live_realm.server(s).base_url for s in ("ehr", "imaging"))
    scope = "launch/patient patient/Observation.cruds patient/ImagingStudy.cruds"
    app = await register_app(http, live_realm, scope=scope)
    request, code = await authorize(http, app, resources=[ehr, imaging], scope=scope)
    tokens = await exchange_code(http, app.token_endpoint, request, code,
                                 client_id=app.client_id)
    shares = {d["locations"][0]: (d["scope"], d.get("patient"))
              for d in tokens.authorization_details}
    assert shares[ehr] == ("launch/patient patient/Observation.cruds", "p0012")
    assert shares[imaging] == ("launch/patient patient/ImagingStudy.rs", "img0012")
    token = tokens.access_token
    mine = await http.post(f"{ehr}/Observation", json=_observation("p0012"),
                           headers=_auth(token))
    assert mine.status_code == 201, mine.text
    theirs = await http.post(f"{ehr}/Observation", json=_observation("p0001"),
                             headers=_auth(token))
    assert theirs.status_code == 403
    moved = await http.put(f"{ehr}/Observation/{mine.json()['id']}",
                           json={**_observation("p0001"), "id": mine.json()["id"]},
                           headers=_auth(token))
    assert moved.status_code == 403
    study = await http.post(f"{imaging}/ImagingStudy", headers=_auth(token), json={
        "resourceType": "ImagingStudy", "status": "available",
        "subject": {"reference": "Patient/img0012"}})
    assert study.status_code == 405


def test_load_into_a_running_server(live_realm: RealmConfig, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:8]
    lines = [json.dumps({**_observation("p0003"), "id": f"load-{tag}-{n}"}) for n in range(3)]
    lines.append('{"resourceType": "Observation", "status": "final"}')
    source = tmp_path / "obs.ndjson"
    source.write_text("\n".join(lines) + "\n")
    result = subprocess.run(
        [*CLI, "load", "--server", "ehr", str(source), "--data-dir", str(live_realm.data_dir)],
        capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "200"})
    assert result.returncode == 1, result.stdout + result.stderr  # one line was rejected
    assert "Observation" in result.stdout and "line 4: Observation.code" in result.stdout
    with httpx.Client(timeout=15.0) as client:
        body = _sync_token(client, live_realm)
        ehr = live_realm.server("ehr").base_url
        read = client.get(f"{ehr}/Observation/load-{tag}-2", headers=_auth(body))
        assert read.status_code == 200, read.text


def _sync_token(client: httpx.Client, realm: RealmConfig) -> str:
    key = ClientKey.generate("RS384")
    registered = client.post(realm.auth_server.registration_endpoint, json={
        "client_name": "e2e reader", "grant_types": ["client_credentials"],
        "token_endpoint_auth_method": "private_key_jwt", "scope": "system/Observation.rs",
        "jwks": key.jwks()}, headers=bearer(realm, BACKEND_SERVICES))
    client_id = registered.json()["client_id"]
    response = client.post(realm.auth_server.token_endpoint, data=assertion_form(
        key.assertion(client_id, realm.auth_server.token_endpoint),
        grant_type="client_credentials", scope="system/Observation.rs",
        resource=realm.server("ehr").base_url))
    token: str = response.json()["access_token"]
    return token
