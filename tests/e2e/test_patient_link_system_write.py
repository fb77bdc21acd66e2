"""A system-level write of a Patient's MRN on the really running realm moves the record's
link in the patient index (the EHR reports it to the AS as its client ``rs:ehr``): the next
multi-server authorization links the patient by the new MRN."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from smartrealm.authz.stores.sql_patient_index import SqlPatientIndex
from smartrealm.client.auth import exchange_code
from smartrealm.client.tokens import TokenSet
from smartrealm.realm.config import RealmConfig
from smartrealm.storage import make_engine
from tests.e2e.conftest import default_realm_running
from tests.e2e.flow import authorize, register_app
from tests.oauth.assertion_keys import ClientKey, assertion_form

pytestmark = pytest.mark.e2e
CLI = [sys.executable, "-m", "smartrealm.cli"]
SYSTEM_SCOPE = "system/Patient.cruds"


@pytest.fixture(scope="module")
def realm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealmConfig]:
    # A realm of its own: this module changes the patient's link.
    with default_realm_running(tmp_path_factory.mktemp("system-write")) as running:
        yield running


async def _patient_token(http: httpx.AsyncClient, realm: RealmConfig) -> TokenSet:
    app = await register_app(http, realm)
    bases = [realm.server(s).base_url for s in ("ehr", "imaging", "lab")]
    request, code = await authorize(http, app, resources=bases)
    return await exchange_code(http, app.token_endpoint, request, code,
                               client_id=app.client_id)


def _ids(token: TokenSet, realm: RealmConfig) -> dict[str, str | None]:
    return {s: token.patient_id_for(realm.server(s).base_url) for s in ("ehr", "imaging", "lab")}


async def _system_token(http: httpx.AsyncClient, realm: RealmConfig, tmp_path: Path) -> str:
    """A Backend Services client of the EHR added by the operator (`smartrealm client add`)."""
    key = ClientKey.generate("ES384")
    jwks_file = tmp_path / "jwks.json"
    jwks_file.write_text(json.dumps(key.jwks()))
    result = subprocess.run(
        [*CLI, "client", "add", "--name", "ehr interface", "--grant-type",
         "client_credentials", "--scope", SYSTEM_SCOPE, "--jwks-file", str(jwks_file),
         "--server", "ehr", "--client-id", "ehr-interface", "--data-dir",
         str(realm.data_dir)],
        capture_output=True, text=True, timeout=60, env={**os.environ, "COLUMNS": "200"})
    assert result.returncode == 0, result.stdout + result.stderr
    assertion = key.assertion("ehr-interface", realm.auth_server.token_endpoint)
    response = await http.post(realm.auth_server.token_endpoint, data=assertion_form(
        assertion, grant_type="client_credentials", scope=SYSTEM_SCOPE))
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def _with_mrn(patient: dict[str, Any], system: str, mrn: str) -> dict[str, Any]:
    return {**patient, "identifier": [{**i, "value": mrn} if i.get("system") == system else i
                                      for i in patient["identifier"]]}


async def test_a_system_write_of_a_new_mrn_relinks_the_patient(
        realm: RealmConfig, http: httpx.AsyncClient, tmp_path: Path) -> None:
    assert _ids(await _patient_token(http, realm), realm) == {
        "ehr": "p0012", "imaging": "img0012", "lab": "lab0012"}

    ehr = realm.server("ehr").base_url
    headers = {"Authorization": f"Bearer {await _system_token(http, realm, tmp_path)}",
               "Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
    me = (await http.get(f"{ehr}/Patient/p0012", headers=headers)).json()
    response = await http.put(f"{ehr}/Patient/p0012", headers=headers, json=_with_mrn(
        me, realm.patient_identifier_system, "MRN000013"))
    assert response.status_code == 200, response.text

    index = SqlPatientIndex(make_engine(realm.database_url_for(None)))
    [row] = [r for r in index.records_of("MRN000013") if (r.server_id, r.patient_id) == (
        "ehr", "p0012")]
    assert row.source == "system-write"
    assert _ids(await _patient_token(http, realm), realm) == {
        "ehr": "p0012", "imaging": "img0013", "lab": "lab0013"}
