"""The cross-server patient link, attacked as a patient app would, against the default realm
really running: the app rewrites its own Patient's MRN to another person's (MRNs are
sequential) hoping that the next multi-server token carries that person's records."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from smartrealm.client.auth import exchange_code
from smartrealm.client.errors import FhirForbidden
from smartrealm.client.fhir import FhirSession
from smartrealm.client.tokens import TokenSet
from smartrealm.fhir.sql import SqlResourceRepository
from smartrealm.realm.config import RealmConfig
from smartrealm.storage import make_engine
from tests.e2e.conftest import default_realm_running
from tests.e2e.flow import SCOPE, authorize, register_app

pytestmark = pytest.mark.e2e
WRITE_SCOPE = SCOPE + " patient/*.cruds"
VICTIM_MRN = "MRN000013"


@pytest.fixture(scope="module")
def realm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealmConfig]:
    # A realm of its own: this module writes the patient's record.
    with default_realm_running(tmp_path_factory.mktemp("attack")) as running:
        yield running


async def _token(http: httpx.AsyncClient, realm: RealmConfig) -> TokenSet:
    app = await register_app(http, realm, scope=WRITE_SCOPE)
    bases = [realm.server(s).base_url for s in ("ehr", "imaging", "lab")]
    request, code = await authorize(http, app, resources=bases, scope=WRITE_SCOPE)
    return await exchange_code(http, app.token_endpoint, request, code,
                               client_id=app.client_id)


def _ids(token: TokenSet, realm: RealmConfig) -> dict[str, str | None]:
    return {s: token.patient_id_for(realm.server(s).base_url) for s in ("ehr", "imaging", "lab")}


def _with_mrn(patient: dict[str, Any], system: str, mrn: str) -> dict[str, Any]:
    return {**patient, "identifier": [{**i, "value": mrn} if i.get("system") == system else i
                                      for i in patient["identifier"]]}


async def test_a_patient_app_cannot_take_over_another_persons_records(
        realm: RealmConfig, http: httpx.AsyncClient) -> None:
    system = realm.patient_identifier_system
    ehr = realm.server("ehr").base_url
    token = await _token(http, realm)
    assert _ids(token, realm) == {"ehr": "p0012", "imaging": "img0012", "lab": "lab0012"}
    me = await FhirSession(http, ehr, token.access_token).read("Patient", "p0012")

    # 1. The app's write of the victim's MRN is refused, and says why.
    response = await http.put(f"{ehr}/Patient/p0012", json=_with_mrn(me, system, VICTIM_MRN),
                              headers={"Authorization": f"Bearer {token.access_token}",
                                       "Content-Type": "application/fhir+json"})
    assert response.status_code == 403, response.text
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert "managed by the realm" in outcome["issue"][0]["diagnostics"]

    # 2. Even if the home record's MRN changes by a trusted path (here: its store, directly),
    # the next token follows the realm's patient index, not the record.
    store = SqlResourceRepository(make_engine(realm.database_url_for("ehr")))
    store.put(_with_mrn(me, system, VICTIM_MRN))
    again = await _token(http, realm)
    assert _ids(again, realm) == {"ehr": "p0012", "imaging": "img0012", "lab": "lab0012"}
    lab = FhirSession(http, realm.server("lab").base_url, again.access_token)
    with pytest.raises(FhirForbidden):
        await lab.search("Observation", {"patient": "lab0013"})
