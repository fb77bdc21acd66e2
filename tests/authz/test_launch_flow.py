"""EHR launch against the real AS app (in-process, FHIR stub for patient lookups): the
launch's context reaches the token response; unknown, used, expired, foreign-user and
foreign-client launches are refused with invalid_request (SMART §6.1, spec §14 item 27)."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import httpx
from joserfc import jwt
from joserfc.jwk import KeySet

from smartrealm.authz.stores.sql_launch import sql_ehr_stores
from smartrealm.oauth.launch import LaunchContext
from smartrealm.oauth.passwords import token_hash
from smartrealm.oauth.smart_style import style_url
from smartrealm.realm.config import RealmConfig
from smartrealm.storage import make_engine
from tests.authz.conftest import Flow, csrf, exchange, redirect_params, start
from tests.authz.launch_helpers import LAUNCH_SCOPE, create_launch, launch_code

LIST_ITEM = {"reference": "List/med-list-1", "role": "https://example.org/role/med-list"}


def _ehr_flow(realm: RealmConfig, *resources: str) -> Flow:
    return Flow(realm, scope=LAUNCH_SCOPE, resources=resources or ("ehr",))


async def test_single_server_launch_carries_the_whole_context(
        ua: httpx.AsyncClient, realm: RealmConfig) -> None:
    ehr = realm.server("ehr").base_url
    made = await create_launch(ua, patient="p0003", encounter="enc-p0003-1",
                               fhirContext=[LIST_ITEM], intent="reconcile-medications")
    assert made["iss"] == ehr
    query = parse_qs(urlsplit(made["url"]).query)
    assert query == {"iss": [ehr], "launch": [made["launch"]]}
    flow = _ehr_flow(realm)
    callback = await launch_code(ua, flow, made["launch"], aud=ehr, resource=None)
    assert callback["state"] == flow.state
    response = await exchange(ua, flow, callback["code"])
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["patient"] == "p0003"
    assert body["encounter"] == "enc-p0003-1"
    assert body["fhirContext"] == [LIST_ITEM]
    assert body["need_patient_banner"] is True
    assert body["smart_style_url"] == style_url(realm.auth_server.issuer)
    assert body["intent"] == "reconcile-medications"
    assert "launch" in body["scope"].split() and "patient/*.rs" in body["scope"].split()
    assert body["authorization_details"][0]["locations"] == [ehr]
    claims = jwt.decode(body["access_token"],
                        KeySet.import_key_set((await ua.get("/jwks")).json())).claims
    assert claims["aud"] == [ehr] and claims["patient"] == "p0003"
    assert claims["encounter"] == "enc-p0003-1"

    # §4.3: the refresh response repeats the launch context.
    refreshed = await ua.post("/token", data={"grant_type": "refresh_token",
                                              "refresh_token": body["refresh_token"],
                                              "client_id": flow.client_id})
    assert refreshed.status_code == 200, refreshed.text
    again = refreshed.json()
    for key in ("patient", "encounter", "fhirContext", "need_patient_banner",
                "smart_style_url", "intent"):
        assert again[key] == body[key], key


async def test_multi_server_launch_makes_the_ehr_primary(
        ua: httpx.AsyncClient, realm: RealmConfig) -> None:
    ehr, img = realm.server("ehr").base_url, realm.server("imaging").base_url
    made = await create_launch(ua, patient="p0012", encounter="enc-p0012-1",
                               fhirContext=[LIST_ITEM], need_patient_banner=False)
    flow = _ehr_flow(realm, "imaging", "ehr")  # the EHR is not first: it still is primary
    callback = await launch_code(ua, flow, made["launch"])
    body = (await exchange(ua, flow, callback["code"])).json()
    assert [d["locations"] for d in body["authorization_details"]] == [[ehr], [img]]
    assert "patient" not in body  # p0012 is img0012 on imaging: the seed's rule
    assert body["fhirContext"] == [
        {"reference": f"{ehr}/Patient/p0012", "role": "launch-full-url"},
        {"reference": f"{img}/Patient/img0012", "role": "launch-full-url"}]
    ehr_entry, img_entry = body["authorization_details"]
    assert ehr_entry["patient"] == "p0012" and img_entry["patient"] == "img0012"
    # The encounter and the launch's items are the EHR's: only in its entry (§10.1).
    assert ehr_entry["encounter"] == "enc-p0012-1" and "encounter" not in img_entry
    assert ehr_entry["fhirContext"] == [LIST_ITEM] and "fhirContext" not in img_entry
    assert "encounter" not in body
    assert "launch" in ehr_entry["scope"].split()
    assert body["need_patient_banner"] is False


async def test_same_patient_id_everywhere_gives_top_level_patient(
        ua: httpx.AsyncClient, realm: RealmConfig) -> None:
    made = await create_launch(ua, patient="p0003")
    flow = _ehr_flow(realm, "ehr", "lab")
    body = (await exchange(ua, flow, (await launch_code(ua, flow, made["launch"]))["code"])
            ).json()
    assert body["patient"] == "p0003" and "fhirContext" not in body


async def test_a_launch_is_single_use(ua: httpx.AsyncClient, realm: RealmConfig) -> None:
    made = await create_launch(ua)
    flow = _ehr_flow(realm)
    await launch_code(ua, flow, made["launch"])
    again = await ua.get("/authorize", params=flow.params(launch=made["launch"]))
    params = redirect_params(again)
    assert params["error"] == "invalid_request" and params["state"] == flow.state
    assert "code" not in params


async def test_unknown_and_expired_launches_are_invalid_request(
        ua: httpx.AsyncClient, realm: RealmConfig) -> None:
    stores = sql_ehr_stores(make_engine(realm.database_url_for(None)))
    now = int(time.time())
    stores.launches.save(token_hash("expired-launch"), LaunchContext(
        user="clinician", patient="p0003", iss=realm.server("ehr").base_url,
        expires_at=now - 1, created_at=now - 301))
    flow = _ehr_flow(realm)
    for value in ("expired-launch", "never-issued", ""):
        params = redirect_params(await ua.get("/authorize",
                                              params=flow.params(launch=value)))
        assert params["error"] == "invalid_request", value
        assert params["state"] == flow.state


async def test_another_user_signing_in_is_refused_and_uses_the_launch_up(
        ua: httpx.AsyncClient, realm: RealmConfig) -> None:
    made = await create_launch(ua, username="clinician")
    flow = _ehr_flow(realm)
    page = await start(ua, flow, launch=made["launch"])
    refused = await ua.post("/interaction/login", data={
        "csrf_token": csrf(page.text), "username": "patient", "password": "patient-demo"})
    params = redirect_params(refused)
    assert params["error"] == "invalid_request"
    assert "another user" in params["error_description"]
    assert params["state"] == flow.state and "code" not in params
    retry = redirect_params(await ua.get("/authorize", params=flow.params(
        launch=made["launch"])))
    assert retry["error"] == "invalid_request"


async def test_a_launch_bound_to_another_client_is_refused(
        ua: httpx.AsyncClient, realm: RealmConfig) -> None:
    other = await ua.post("/register", json={"redirect_uris": ["http://127.0.0.1:9/cb"],
                                              "client_name": "other",
                                              "token_endpoint_auth_method": "none"})
    assert other.status_code == 201, other.text
    made = await create_launch(ua, client_id=other.json()["client_id"])
    params = redirect_params(await ua.get("/authorize", params=_ehr_flow(realm).params(
        launch=made["launch"])))
    assert params["error"] == "invalid_request"
    assert "another application" in params["error_description"]


async def test_launch_without_the_launch_scope_is_invalid_scope(
        ua: httpx.AsyncClient, realm: RealmConfig) -> None:
    made = await create_launch(ua)
    flow = Flow(realm, scope="launch/patient patient/*.rs")
    params = redirect_params(await ua.get("/authorize", params=flow.params(
        launch=made["launch"])))
    assert params["error"] == "invalid_scope"


async def test_aud_other_than_the_launch_iss_is_invalid_request(
        ua: httpx.AsyncClient, realm: RealmConfig) -> None:
    flow = _ehr_flow(realm)
    for params in ({"aud": realm.server("imaging").base_url, "resource": None},
                   {"resource": [realm.server("imaging").base_url,
                                 realm.server("lab").base_url]}):
        made = await create_launch(ua)
        answer = redirect_params(await ua.get("/authorize", params=flow.params(
            launch=made["launch"], **params)))
        assert answer["error"] == "invalid_request", params


async def test_a_patient_user_launches_with_their_own_record(
        ua: httpx.AsyncClient, realm: RealmConfig) -> None:
    made = await create_launch(ua, username="patient", patient="p0012")
    flow = _ehr_flow(realm)
    body = (await exchange(ua, flow, (await launch_code(
        ua, flow, made["launch"], username="patient"))["code"])).json()
    assert body["patient"] == "p0012"
