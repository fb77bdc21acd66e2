"""Proxy mode (issue 4; docs/behaviour.md "Proxy mode"): URL rewriting, what is filtered,
what is refused (400 ``not-supported``), and upstream failures (502), against the built-in
EHR server as the upstream (tests/fhir/proxy_target.py). The shared enforcement matrix runs
through the proxy in tests/fhir/test_write_access.py."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from smartrealm.fhir.proxy import build_proxy_server
from smartrealm.fhir.proxy.upstream import NoCredentials
from smartrealm.realm.config import ConfigError, RealmConfig, default_config_text, load_config
from tests.fhir import proxy_target
from tests.fhir.conftest import Realm
from tests.fhir.proxy_target import PROXY_BASE, proxied_realm
from tests.fhir.restkit import LAB, VITALS, call, observation, unique
from tests.guard.tokens import FakeAuthServer

# The proxy target's fixtures (tests/fhir/proxy_target.py).
proxy_app = proxy_target.proxy_app
proxy_rs = proxy_target.proxy_rs

ME, OTHER = "p0001", "p0002"
ADMIN = "user/*.cruds"


@pytest.fixture
def upstream(realm: RealmConfig) -> str:
    return realm.server("ehr").base_url


# --------------------------------------------------------------------------- rewriting


async def test_search_links_and_full_urls_name_the_proxy(proxy_rs: Realm, upstream: str) -> None:
    token = proxy_rs.token("patient/Observation.rs", patient=ME)
    response = await call(proxy_rs, "GET", "Observation?_count=2", token)
    assert response.status_code == 200
    body = response.json()
    assert upstream not in response.text
    assert {link["relation"] for link in body["link"]} >= {"self", "next"}
    assert all(link["url"].startswith(f"{PROXY_BASE}/Observation?") for link in body["link"])
    assert [e["fullUrl"] for e in body["entry"]] == [
        f"{PROXY_BASE}/Observation/{e['resource']['id']}" for e in body["entry"]]


async def test_location_and_absolute_references_are_rewritten(proxy_rs: Realm,
                                                              upstream: str) -> None:
    admin = proxy_rs.token(ADMIN)
    body = observation(ME) | {"encounter": {"reference": f"{upstream}/Encounter/e1"}}
    created = await call(proxy_rs, "POST", "Observation", admin, body=body)
    assert created.status_code == 201
    oid = created.json()["id"]
    assert created.headers["location"] == f"{PROXY_BASE}/Observation/{oid}/_history/1"
    read = await call(proxy_rs, "GET", f"Observation/{oid}", admin)
    assert read.json()["encounter"] == {"reference": f"{PROXY_BASE}/Encounter/e1"}
    assert read.headers["etag"] == 'W/"1"'


async def test_a_search_naming_the_proxys_url_reaches_the_upstream_as_its_own(
        proxy_rs: Realm) -> None:
    token = proxy_rs.token("user/Observation.rs")
    response = await call(proxy_rs, "GET",
                          f"Observation?subject={PROXY_BASE}/Patient/{ME}&_count=1", token)
    assert response.status_code == 200
    assert response.json()["total"] > 0
    assert response.json()["entry"][0]["resource"]["subject"] == {"reference": f"Patient/{ME}"}


# --------------------------------------------------------------------------- filtering


async def test_a_union_of_granular_scopes_is_filtered_and_has_no_total(proxy_rs: Realm
                                                                       ) -> None:
    admin = proxy_rs.token(ADMIN)
    for category in ("laboratory", "vital-signs", "social-history"):
        await call(proxy_rs, "POST", "Observation", admin, body=observation(ME, category))
    token = proxy_rs.token(f"patient/Observation.rs?category={LAB} "
                           f"patient/Observation.rs?category={VITALS}", patient=ME)
    response = await call(proxy_rs, "GET", "Observation?_count=200", token)
    body = response.json()
    assert response.status_code == 200
    assert "total" not in body
    assert "last" not in {link["relation"] for link in body["link"]}
    categories = {e["resource"]["category"][0]["coding"][0]["code"] for e in body["entry"]}
    assert categories == {"laboratory", "vital-signs"}
    assert {e["resource"]["subject"]["reference"] for e in body["entry"]} == {
        f"Patient/{ME}"}
    counted = await call(proxy_rs, "GET", "Observation?_summary=count", token)
    assert counted.status_code == 400
    assert counted.json()["issue"][0]["code"] == "not-supported"


async def test_a_restriction_the_upstream_can_apply_keeps_the_exact_total(
        proxy_rs: Realm, rs: Realm) -> None:
    query = f"Observation?category={LAB}&_summary=count"
    through = await call(proxy_rs, "GET", query, proxy_rs.token(
        f"patient/Observation.rs?category={LAB}", patient=ME))
    direct = await call(rs, "GET", query, rs.token(
        f"patient/Observation.rs?category={LAB}", patient=ME))
    assert through.status_code == direct.status_code == 200
    assert through.json()["total"] == direct.json()["total"] > 0


async def test_a_patient_search_naming_another_patient_is_403(proxy_rs: Realm) -> None:
    token = proxy_rs.token("patient/Patient.rs patient/Observation.rs", patient=ME)
    assert (await call(proxy_rs, "GET", f"Patient?_id={OTHER}", token)).status_code == 403
    assert (await call(proxy_rs, "GET", f"Observation?patient={OTHER}", token)
            ).status_code == 403
    mine = await call(proxy_rs, "GET", f"Patient?_id={ME},{OTHER}", token)
    assert [e["resource"]["id"] for e in mine.json()["entry"]] == [ME]


async def test_instance_history_under_a_patient_scope(proxy_rs: Realm) -> None:
    admin = proxy_rs.token(ADMIN)
    mine, theirs = unique("h"), unique("h")
    await call(proxy_rs, "PUT", f"Observation/{mine}", admin,
               body=observation(ME, resource_id=mine))
    await call(proxy_rs, "PUT", f"Observation/{mine}", admin,
               body=observation(ME, resource_id=mine, status="amended"))
    await call(proxy_rs, "PUT", f"Observation/{theirs}", admin,
               body=observation(OTHER, resource_id=theirs))
    token = proxy_rs.token("patient/Observation.rs", patient=ME)
    history = await call(proxy_rs, "GET", f"Observation/{mine}/_history", token)
    assert history.status_code == 200
    assert "total" not in history.json()
    assert [e["resource"]["meta"]["versionId"] for e in history.json()["entry"]] == ["2", "1"]
    assert (await call(proxy_rs, "GET", f"Observation/{theirs}/_history", token)
            ).status_code == 403
    assert (await call(proxy_rs, "GET", f"Observation/{theirs}/_history/1", token)
            ).status_code == 403
    assert (await call(proxy_rs, "GET", f"Observation/{mine}/_history/1", token)
            ).status_code == 200
    assert (await call(proxy_rs, "GET", "Observation/_history", admin)).status_code == 200


async def test_if_match_must_name_the_version_that_was_checked(proxy_rs: Realm) -> None:
    admin = proxy_rs.token(ADMIN)
    oid = unique("im")
    await call(proxy_rs, "PUT", f"Observation/{oid}", admin,
               body=observation(ME, resource_id=oid))
    stale = await call(proxy_rs, "PUT", f"Observation/{oid}", admin,
                       body=observation(ME, resource_id=oid), If_Match='W/"7"')
    assert stale.status_code == 412
    fresh = await call(proxy_rs, "PUT", f"Observation/{oid}", admin,
                       body=observation(ME, resource_id=oid), If_Match='W/"1"')
    assert fresh.status_code == 200
    assert fresh.headers["etag"] == 'W/"2"'


async def test_invalid_bodies_and_ids_answer_as_the_built_in_server(proxy_rs: Realm) -> None:
    admin = proxy_rs.token(ADMIN)
    bad = observation(ME) | {"status": 7}
    assert (await call(proxy_rs, "POST", "Observation", admin, body=bad)).status_code == 422
    assert (await call(proxy_rs, "POST", "Observation", admin,
                       content=b"{nope")).status_code == 400
    assert (await call(proxy_rs, "GET", "Observation/bad_id!", admin)).status_code == 400
    assert (await call(proxy_rs, "GET", "Unknown/x", admin)).status_code == 404
    assert (await call(proxy_rs, "GET", "Observation/no-such-id", admin)).status_code == 404


# --------------------------------------------------------------------------- refusals

REFUSED_SEARCHES = [
    "Observation?_include=Observation:patient",
    "Patient?_revinclude=Observation:subject",
    "Patient?_has:Observation:patient:code=1234",
    "Observation?subject.name=Smith",
    "Observation?patient.identifier=x",
    "Observation?_elements=id",
    "Observation?_summary=true",
    "Observation?_summary=text",
    "Observation?_contained=true",
    "Observation?_filter=status eq final",
    "Observation?_query=custom",
    "Observation?_list=l1",
]


@pytest.mark.parametrize("query", REFUSED_SEARCHES)
async def test_searches_the_proxy_cannot_check_are_400(proxy_rs: Realm, query: str) -> None:
    response = await call(proxy_rs, "GET", query, proxy_rs.token(ADMIN))
    assert response.status_code == 400, response.text
    assert response.json()["issue"][0]["code"] == "not-supported"


REFUSED_REQUESTS = [
    ("GET", "Patient/p0001/$everything"),
    ("POST", "Observation/$validate"),
    ("GET", "$meta"),
    ("GET", "Patient/p0001/Observation"),
    ("GET", ""),
    ("GET", "_history"),
    ("POST", "Observation?identifier=x"),
]


@pytest.mark.parametrize(("method", "path"), REFUSED_REQUESTS)
async def test_interactions_the_proxy_cannot_enforce_are_400(proxy_rs: Realm, method: str,
                                                             path: str) -> None:
    response = await call(proxy_rs, method, path, proxy_rs.token(ADMIN),
                          body=observation(ME) if method == "POST" else None)
    assert response.status_code == 400, response.text
    assert response.json()["issue"][0]["code"] == "not-supported"


@pytest.mark.parametrize("kind", ["batch", "transaction"])
async def test_bundles_are_refused(proxy_rs: Realm, kind: str) -> None:
    bundle = {"resourceType": "Bundle", "type": kind, "entry": []}
    for path in ("", "/"):
        response = await call(proxy_rs, "POST", path, proxy_rs.token(ADMIN), body=bundle)
        assert response.status_code == 400
        assert response.json()["issue"][0]["code"] == "not-supported"


async def test_conditional_create_and_restricted_type_history_are_refused(
        proxy_rs: Realm) -> None:
    admin = proxy_rs.token(ADMIN)
    conditional = await call(proxy_rs, "POST", "Observation", admin, body=observation(ME),
                             If_None_Exist="identifier=x")
    assert conditional.status_code == 400
    patient = proxy_rs.token("patient/Observation.rs", patient=ME)
    history = await call(proxy_rs, "GET", "Observation/_history", patient)
    assert history.status_code == 400
    assert history.json()["issue"][0]["code"] == "not-supported"


async def test_no_token_is_401_before_any_refusal(proxy_rs: Realm) -> None:
    response = await call(proxy_rs, "GET", "Observation?_include=Observation:patient")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == f'Bearer realm="{PROXY_BASE}"'


async def test_a_token_for_the_upstream_only_is_refused_at_the_proxy(
        proxy_rs: Realm, rs: Realm) -> None:
    upstream_token = rs.token(ADMIN)  # aud = the built-in EHR, not the proxy
    response = await call(proxy_rs, "GET", f"Patient/{ME}", upstream_token)
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def test_discovery_documents(proxy_rs: Realm) -> None:
    metadata = (await call(proxy_rs, "GET", "metadata")).json()
    rest = metadata["rest"][0]
    assert rest["interaction"] == []
    assert all("searchInclude" not in r for r in rest["resource"])
    assert metadata["implementation"]["url"] == PROXY_BASE
    smart = (await call(proxy_rs, "GET", ".well-known/smart-configuration")).json()
    assert "auth-multi-aud-token" in smart["capabilities"]


# --------------------------------------------------------------------------- the upstream


async def _through(app: Starlette, token: str, path: str) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as client:
        return await client.get(f"{PROXY_BASE}/{path}",
                                headers={"Authorization": f"Bearer {token}"})


async def test_an_unreachable_upstream_is_502(realm: RealmConfig, auth: FakeAuthServer) -> None:
    closed = proxied_realm(realm)
    server = closed.server("ehr")
    unreachable = type(server)(**{**server.__dict__, "upstream": "http://127.0.0.1:9/fhir"})
    config = type(closed)(**{**closed.__dict__, "resource_servers": (
        unreachable, *(s for s in closed.resource_servers if s.id != "ehr"))})
    async with httpx.AsyncClient(timeout=5.0) as network:
        app = build_proxy_server(config, "ehr", http=auth.http(), upstream_http=network,
                                 credentials=NoCredentials())
        token = auth.mint([PROXY_BASE], ADMIN, details=None)
        response = await _through(app, token, f"Patient/{ME}")
    assert response.status_code == 502
    assert response.json()["resourceType"] == "OperationOutcome"


async def test_an_upstream_refusing_the_proxy_is_502(realm: RealmConfig, auth: FakeAuthServer,
                                                     apps: dict[str, Starlette]) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=apps["ehr"])) as upstream:
        app = build_proxy_server(proxied_realm(realm), "ehr", http=auth.http(),
                                 upstream_http=upstream, credentials=NoCredentials())
        response = await _through(app, auth.mint([PROXY_BASE], ADMIN), f"Patient/{ME}")
    assert response.status_code == 502
    assert "credentials" in json.dumps(response.json())


async def test_unsupported_methods_are_405(proxy_rs: Realm) -> None:
    admin = proxy_rs.token(ADMIN)
    assert (await call(proxy_rs, "POST", f"Observation/{ME}", admin,
                       body=observation(ME))).status_code == 405
    assert (await call(proxy_rs, "PATCH", f"Observation/{ME}", admin)).status_code == 405


def test_upstream_auth_is_validated(tmp_path: Path) -> None:
    base = proxy_config(tmp_path, 'upstream_auth = "basic"')
    with pytest.raises(ConfigError) as info:
        load_config(base)
    assert info.value.key == "resource_servers[3].upstream_auth"


def proxy_config(tmp_path: Path, extra: str) -> Path:
    """The default realm plus one proxy server carrying ``extra``."""
    path = tmp_path / "realm.toml"
    path.write_text(default_config_text() + f"""
[[resource_servers]]
id = "guarded"
name = "Guarded"
base_url = "http://127.0.0.1:8711/fhir"
mode = "proxy"
upstream = "http://127.0.0.1:8701/fhir"
{extra}
""", "utf-8")
    return path


async def test_post_search_is_confined_and_screened_like_get(proxy_rs: Realm) -> None:
    token = proxy_rs.token("patient/Observation.rs", patient=ME)
    found = await proxy_rs.clients["ehr"].post(
        f"{PROXY_BASE}/Observation/_search", content=f"patient={OTHER}",
        headers={"Authorization": f"Bearer {token}",
                 "Content-Type": "application/x-www-form-urlencoded"})
    assert found.status_code == 403
    included = await proxy_rs.clients["ehr"].post(
        f"{PROXY_BASE}/Observation/_search", content="_include=Observation:patient",
        headers={"Authorization": f"Bearer {token}",
                 "Content-Type": "application/x-www-form-urlencoded"})
    assert included.status_code == 400
    wrong_type = await call(proxy_rs, "POST", "Observation/_search", token, body={})
    assert wrong_type.status_code == 415
