"""The client library against the really running realm (one uvicorn process per component),
a second realm with its own AS, and a small real server lacking ``auth-multi-aud-token``:
discovery (brands, associated_endpoints), the reuse decision and its fallback, the full flow
for the same-id and the different-id patient, refresh with rotation, writes, and Backend
Services on two servers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from smartrealm.client import (
    BrandsCache,
    ClientKey,
    FhirSession,
    FhirUnauthorized,
    InvalidClient,
    InvalidGrant,
    PublicClient,
    RealmApp,
    TokenError,
    UntrustedIssuer,
    check_issuer,
    client_credentials,
    discover,
    exchange_code,
    parse_callback,
    parse_launch,
    register_client,
)
from smartrealm.devtools.useragent import authorize_as_user
from smartrealm.oauth.registration import BACKEND_SERVICES
from smartrealm.realm.config import RealmConfig, default_config_text, load_config
from smartrealm.realm.runner import AUTH_SERVER, Launch, free_ports, running_realm
from tests.client.conformance_server import serve_app
from tests.e2e.flow import PASSWORDS, REDIRECT_URI
from tests.initial_tokens import initial_token

pytestmark = pytest.mark.e2e
SCOPE = ("launch/patient openid fhirUser offline_access patient/Patient.rs "
         "patient/Observation.rs patient/ImagingStudy.rs")
MULTI = "auth-multi-aud-token"
ARCHIVE = '''[[resource_servers]]
id = "archive"
name = "Second Realm Archive"
base_url = "http://127.0.0.1:8801/fhir"
profile = "imaging"

[[users]]
username = "patient"
password = "patient-demo"
display_name = "Pat Example"
fhir_user_server = "archive"
fhir_user = "Patient/img0012"
'''


@pytest.fixture(scope="module")
def second_realm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealmConfig]:
    """Another realm: its own AS and one imaging-profile server ("a server naming another
    AS")."""
    data_dir = tmp_path_factory.mktemp("realm2")
    text = default_config_text()
    path = data_dir / "realm2.toml"
    path.write_text(text[: text.index("[[resource_servers]]")] + ARCHIVE)
    ports = free_ports([AUTH_SERVER, "archive"])
    realm = load_config(path).relocated(ports, data_dir)
    with running_realm(realm, Launch(path, ports, data_dir)):
        yield realm


@pytest.fixture(scope="module")
def no_multi(live_realm: RealmConfig) -> Iterator[str]:
    """A real server that names the realm's AS but does not advertise the capability."""
    ehr_config = httpx.get(f"{live_realm.server('ehr').base_url}/.well-known/"
                           "smart-configuration").json()
    doc = {**ehr_config, "capabilities": [c for c in ehr_config["capabilities"] if c != MULTI],
           "associated_endpoints": []}

    async def well_known(request: Request) -> JSONResponse:
        return JSONResponse(doc)

    with serve_app(lambda origin: Starlette(routes=[
            Route("/fhir/.well-known/smart-configuration", well_known)])) as origin:
        yield f"{origin}/fhir"


async def _public_client(http: httpx.AsyncClient, realm: RealmConfig) -> PublicClient:
    client = await register_client(http, realm.auth_server.registration_endpoint,
                                   redirect_uris=[REDIRECT_URI], client_name="library e2e",
                                   scope=SCOPE)
    return PublicClient(str(client["client_id"]))


async def _run(app: RealmApp, username: str = "patient", patient: str | None = None) -> int:
    """The user approves every step; returns how many authorizations it took."""
    url: str | None = app.begin()
    steps = 0
    while url is not None:
        async with httpx.AsyncClient(timeout=15) as browser:
            callback = await authorize_as_user(browser, url, REDIRECT_URI, username=username,
                                               password=PASSWORDS[username], patient=patient)
        url = await app.complete(callback)
        steps += 1
    return steps


async def _mrn(session: FhirSession) -> Any:
    assert session.patient_id is not None
    patient = await session.read("Patient", session.patient_id)
    return patient["identifier"][0]["value"]


async def test_discovery_via_brands_and_associated_endpoints(
        live_realm: RealmConfig, http: httpx.AsyncClient) -> None:
    ehr = live_realm.server("ehr").base_url
    every = [rs.base_url for rs in live_realm.resource_servers]
    app = RealmApp(http, client=PublicClient("x"), redirect_uri=REDIRECT_URI, scope=SCOPE)
    cache = BrandsCache()
    decision = await app.prepare_brand(ehr, cache=cache, plan=False)
    assert sorted(app.bases) == sorted(every) and decision.possible and len(cache) == 1
    decision = await app.prepare_associated(ehr)
    assert sorted(app.bases) == sorted(every) and decision.possible and app.mode == "shared"
    assert app.plan is not None
    # Only imaging serves ImagingStudy, and it serves no Observation.
    assert app.plan.report() == [f"{every[0]}: patient/ImagingStudy.rs: type-not-served",
                                 f"{every[1]}: patient/Observation.rs: type-not-served",
                                 f"{every[2]}: patient/ImagingStudy.rs: type-not-served"]
    assert app.plan.scope == SCOPE


async def test_different_ids_one_token(live_realm: RealmConfig, http: httpx.AsyncClient) -> None:
    ehr, imaging = (live_realm.server(s).base_url for s in ("ehr", "imaging"))
    app = RealmApp(http, client=await _public_client(http, live_realm),
                   redirect_uri=REDIRECT_URI, scope=SCOPE)
    await app.prepare([ehr, imaging])
    assert await _run(app) == 1
    assert app.tokens_for(ehr) == app.tokens_for(imaging)
    ehr_session, imaging_session = app.session(ehr), app.session(imaging)
    assert (ehr_session.patient_id, imaging_session.patient_id) == ("p0012", "img0012")
    assert await _mrn(ehr_session) == await _mrn(imaging_session) == "MRN000012"
    assert "patient/ImagingStudy.rs" in app.tokens_for(imaging).scopes_for(imaging)
    studies = [s async for s in imaging_session.iterate("ImagingStudy", {"patient": "img0012"})]
    assert studies and all(s["subject"]["reference"] == "Patient/img0012" for s in studies)

    # Refresh with rotation (the realm revokes the whole grant if an old one is replayed):
    first = app.tokens_for(ehr)
    second = await app.refresher_for(ehr).refresh_now()
    third = await app.refresher_for(imaging).refresh_now()
    assert len({first.refresh_token, second.refresh_token, third.refresh_token}) == 3
    assert (await app.session(imaging).read("Patient", "img0012"))["id"] == "img0012"


async def test_same_id_patient_chosen_by_clinician(live_realm: RealmConfig,
                                                   http: httpx.AsyncClient) -> None:
    ehr, lab = (live_realm.server(s).base_url for s in ("ehr", "lab"))
    app = RealmApp(http, client=await _public_client(http, live_realm),
                   redirect_uri=REDIRECT_URI, scope=SCOPE.replace("patient/ImagingStudy.rs", ""))
    await app.prepare([ehr, lab])
    assert await _run(app, username="clinician", patient="p0003") == 1
    tokens = app.tokens_for(lab)
    assert tokens.patient == "p0003"
    assert app.session(ehr).patient_id == app.session(lab).patient_id == "p0003"
    assert await _mrn(app.session(lab)) == "MRN000003"


async def test_another_as_falls_back_to_one_launch_per_server(
        live_realm: RealmConfig, second_realm: RealmConfig, http: httpx.AsyncClient) -> None:
    ehr, archive = live_realm.server("ehr").base_url, second_realm.server("archive").base_url
    app = RealmApp(http, client=await _public_client(http, live_realm),
                   clients={archive: await _public_client(http, second_realm)},
                   redirect_uri=REDIRECT_URI, scope=SCOPE)
    decision = await app.prepare([ehr, archive])
    as1, as2 = live_realm.auth_server, second_realm.auth_server
    assert decision.reasons == (
        f"{archive}: authorization_endpoint {as2.authorization_endpoint} differs from "
        f"{as1.authorization_endpoint} of {ehr}",
        f"{archive}: token_endpoint {as2.token_endpoint} differs from {as1.token_endpoint} "
        f"of {ehr}")
    assert await _run(app) == 2
    assert app.tokens_for(ehr) != app.tokens_for(archive)
    assert (app.session(ehr).patient_id, app.session(archive).patient_id) == ("p0012", "img0012")
    assert await _mrn(app.session(ehr)) == await _mrn(app.session(archive)) == "MRN000012"
    with pytest.raises(FhirUnauthorized):  # realm 1's token is not for realm 2's server
        await FhirSession(http, archive, app.tokens_for(ehr)).read("Patient", "img0012")


async def test_server_without_the_capability_is_reported(
        live_realm: RealmConfig, no_multi: str, http: httpx.AsyncClient) -> None:
    ehr = live_realm.server("ehr").base_url
    app = RealmApp(http, client=PublicClient("x"), redirect_uri=REDIRECT_URI, scope=SCOPE)
    decision = await app.prepare([ehr, no_multi], plan=False)
    assert decision.reasons == (f"{no_multi}: does not advertise the {MULTI} capability",)
    assert app.mode == "sequential"
    assert [(s.bases, s.config.authorization_endpoint) for s in app.steps] == [
        ((ehr,), live_realm.auth_server.authorization_endpoint),
        ((no_multi,), live_realm.auth_server.authorization_endpoint)]


async def test_backend_services_on_two_servers_and_writes(
        live_realm: RealmConfig, http: httpx.AsyncClient) -> None:
    ehr, imaging, lab = (rs.base_url for rs in live_realm.resource_servers)
    for alg in ("ES384", "RS384"):
        key = ClientKey.generate(alg)
        client = await register_client(
            http, live_realm.auth_server.registration_endpoint, redirect_uris=[],
            client_name=f"bulk {alg}", scope="system/*.rs system/Patient.cruds",
            token_endpoint_auth_method="private_key_jwt",
            grant_types=["client_credentials"], jwks=key.public_jwks(),
            initial_access_token=initial_token(live_realm, BACKEND_SERVICES))
        config = await discover(http, ehr)
        tokens = await client_credentials(http, config.token_endpoint,
                                          client_id=client["client_id"], key=key,
                                          scope="system/*.rs", resources=[ehr, imaging])
        assert tokens.refresh_token is None
        for base, pid in ((ehr, "p0001"), (imaging, "p0001")):
            assert (await FhirSession(http, base, tokens).read("Patient", pid))["id"] == pid
        with pytest.raises(FhirUnauthorized):
            await FhirSession(http, lab, tokens).read("Patient", "p0001")
    writer = await client_credentials(http, config.token_endpoint,
                                      client_id=client["client_id"], key=key,
                                      scope="system/Patient.cruds", resources=[ehr])
    session = FhirSession(http, ehr, writer)
    created = await session.create({"resourceType": "Patient", "name": [{"family": "Lib"}]})
    updated = await session.update({**created, "active": True},
                                   if_match=created["meta"]["versionId"])
    assert updated["active"] is True and updated["meta"]["versionId"] != "1"
    await session.delete("Patient", created["id"])


async def test_ehr_launch_with_the_library(live_realm: RealmConfig,
                                           http: httpx.AsyncClient) -> None:
    ehr, imaging = (live_realm.server(s).base_url for s in ("ehr", "imaging"))
    client = await _public_client(http, live_realm)
    created = await http.post(f"{live_realm.auth_server.issuer}/api/launch",
                              json={"launch_url": "http://127.0.0.1:9/app/launch",
                                    "patient": "p0012"},
                              auth=("clinician", PASSWORDS["clinician"]))
    assert created.status_code == 201, created.text
    launch = parse_launch(created.json()["url"])
    with pytest.raises(UntrustedIssuer):
        check_issuer(launch.iss, [imaging])
    iss = check_issuer(launch.iss, [imaging, ehr])
    app = RealmApp(http, client=client, redirect_uri=REDIRECT_URI, scope=SCOPE)
    await app.prepare([iss, imaging])
    url = app.begin(launch=launch.launch)
    async with httpx.AsyncClient(timeout=15) as browser:
        callback = await authorize_as_user(browser, url, REDIRECT_URI, username="clinician",
                                           password=PASSWORDS["clinician"])
    assert await app.complete(callback) is None
    assert "launch" in app.tokens_for(ehr).scope.split()
    assert (app.session(ehr).patient_id, app.session(imaging).patient_id) == ("p0012", "img0012")


async def test_live_oauth_errors(live_realm: RealmConfig, http: httpx.AsyncClient) -> None:
    ehr = live_realm.server("ehr").base_url
    client = await _public_client(http, live_realm)
    app = RealmApp(http, client=client, redirect_uri=REDIRECT_URI, scope=SCOPE)
    await app.prepare([ehr], plan=False)
    async with httpx.AsyncClient(timeout=15) as browser:
        callback = await authorize_as_user(browser, app.begin(), REDIRECT_URI,
                                           username="patient", password=PASSWORDS["patient"])
    step = app.pending
    assert step is not None and step.request is not None
    await app.complete(callback)
    with pytest.raises(TokenError) as replay:  # the code was used already
        await exchange_code(http, step.config.token_endpoint, step.request,
                            parse_callback(callback, step.request), client_id=client.client_id)
    assert isinstance(replay.value.oauth, InvalidGrant) and replay.value.status == 400
    with pytest.raises(TokenError) as stranger:
        await client_credentials(http, step.config.token_endpoint, client_id="nobody",
                                 key=ClientKey.generate(), scope="system/*.rs")
    assert isinstance(stranger.value.oauth, InvalidClient) and stranger.value.status == 401
