"""The resource server over HTTP (in-process ASGI): authentication, scopes, compartments,
search, errors and discovery."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.operationoutcome import OperationOutcome

from smartrealm.fhir.app import build_resource_server
from smartrealm.fhir.sql import SqlResourceRepository
from smartrealm.realm.config import ConfigError, RealmConfig
from smartrealm.storage import make_engine
from tests.fhir.conftest import Realm

LAB = "http://terminology.hl7.org/CodeSystem/observation-category|laboratory"


def outcome_code(response: httpx.Response) -> str:
    assert response.headers["content-type"].startswith("application/fhir+json")
    body = response.json()
    OperationOutcome.model_validate(body)
    return str(body["issue"][0]["code"])


def ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    bundle = response.json()
    Bundle.model_validate(bundle)
    return [e["resource"]["id"] for e in bundle.get("entry", [])]


# --------------------------------------------------------------------------- authentication


async def test_no_token_is_401_without_error_code(rs: Realm) -> None:
    response = await rs.get(f"{rs.ehr}/Patient/p0001")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == f'Bearer realm="{rs.ehr}"'
    assert outcome_code(response) == "login"


async def test_token_for_another_server_is_401_invalid_token(rs: Realm) -> None:
    token = rs.token("system/Patient.rs", server="imaging")
    response = await rs.get(f"{rs.ehr}/Patient/p0001", token)
    assert response.status_code == 401
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith(f'Bearer realm="{rs.ehr}", error="invalid_token"')
    assert 'error_description="the token is not meant for this server"' in challenge
    assert outcome_code(response) == "login"


async def test_non_bearer_authorization_is_401(rs: Realm) -> None:
    response = await rs.get(f"{rs.ehr}/Patient", Authorization="Basic YTpi")
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


# --------------------------------------------------------------------------- scopes


async def test_type_not_in_scope_is_403_insufficient_scope(rs: Realm) -> None:
    token = rs.token("patient/Observation.rs", patient="p0012")
    response = await rs.get(f"{rs.ehr}/Condition", token)
    assert response.status_code == 403
    assert 'error="insufficient_scope"' in response.headers["www-authenticate"]
    assert outcome_code(response) == "forbidden"


async def test_search_letter_does_not_grant_read(rs: Realm) -> None:
    token = rs.token("system/Patient.s")
    assert (await rs.get(f"{rs.ehr}/Patient/p0001", token)).status_code == 403
    assert (await rs.get(f"{rs.ehr}/Patient?_id=p0001", token)).status_code == 200


async def test_patient_scope_reads_own_record_only(rs: Realm) -> None:
    token = rs.token("patient/Patient.rs patient/Observation.rs", patient="p0012")
    own = await rs.get(f"{rs.ehr}/Patient/p0012", token)
    assert own.status_code == 200 and own.json()["id"] == "p0012"
    assert own.headers["etag"] == 'W/"1"'
    other = await rs.get(f"{rs.ehr}/Patient/p0001", token)
    assert other.status_code == 403  # decision: 403, not 404 (see fhir/access.py)
    assert 'error="insufficient_scope"' in other.headers["www-authenticate"]
    obs = await rs.get(f"{rs.ehr}/Observation/enc-p0001-1-hr", token)
    assert obs.status_code == 403
    assert (await rs.get(f"{rs.ehr}/Observation/enc-p0012-1-hr", token)).status_code == 200


async def test_search_naming_another_patient_is_403(rs: Realm) -> None:
    token = rs.token("patient/Observation.rs patient/Patient.rs", patient="p0012")
    for query in ("Observation?patient=p0001", "Observation?subject=Patient/p0001",
                  f"Observation?patient={rs.ehr}/Patient/p0001", "Patient?_id=p0001"):
        response = await rs.get(f"{rs.ehr}/{query}", token)
        assert response.status_code == 403, query
        assert outcome_code(response) == "forbidden"


async def test_patient_search_is_confined_automatically(rs: Realm) -> None:
    token = rs.token("patient/Observation.rs patient/Patient.rs", patient="p0012")
    response = await rs.get(f"{rs.ehr}/Observation?_count=200", token)
    found = response.json()["entry"]
    assert found and {e["resource"]["subject"]["reference"] for e in found} == {"Patient/p0012"}
    assert response.json()["total"] == len(found)
    named = await rs.get(f"{rs.ehr}/Observation?patient=p0012&_count=200", token)
    assert named.json()["total"] == len(found)
    assert ids(await rs.get(f"{rs.ehr}/Patient", token)) == ["p0012"]
    assert ids(await rs.get(f"{rs.ehr}/Patient?_id=p0012,p0001", token)) == ["p0012"]


async def test_patient_scope_without_patient_context_grants_nothing(rs: Realm) -> None:
    token = rs.token("patient/Observation.rs")
    assert (await rs.get(f"{rs.ehr}/Observation", token)).status_code == 403


async def test_patient_scope_reaches_practitioners(rs: Realm) -> None:
    token = rs.token("patient/Practitioner.rs", patient="p0012")
    assert (await rs.get(f"{rs.ehr}/Practitioner/pr0001", token)).status_code == 200


async def test_granular_category_scope_filters_search_and_read(rs: Realm) -> None:
    token = rs.token(f"patient/Observation.rs?category={LAB}", patient="p0012")
    response = await rs.get(f"{rs.ehr}/Observation?_count=200", token)
    entries = response.json()["entry"]
    assert entries and all(e["resource"]["category"][0]["coding"][0]["code"] == "laboratory"
                           for e in entries)
    assert (await rs.get(f"{rs.ehr}/Observation/enc-p0012-1-hr", token)).status_code == 403
    lab_id = entries[0]["resource"]["id"]
    assert (await rs.get(f"{rs.ehr}/Observation/{lab_id}", token)).status_code == 200


async def test_unsupported_granular_param_grants_nothing(rs: Realm) -> None:
    token = rs.token("user/Observation.rs?code:in=http://example.org/vs")
    assert (await rs.get(f"{rs.ehr}/Observation", token)).status_code == 403


async def test_user_scope_sees_every_patient(rs: Realm) -> None:
    token = rs.token("user/Observation.rs", fhirUser=f"{rs.ehr}/Practitioner/pr0001")
    response = await rs.get(f"{rs.ehr}/Observation?patient=p0001&category=vital-signs", token)
    assert len(ids(response)) == 12


# --------------------------------------------------------------------------- search


async def test_system_identifier_search_finds_patient_by_mrn(rs: Realm) -> None:
    system = rs.config.patient_identifier_system
    for server, expected in (("ehr", "p0012"), ("imaging", "img0012")):
        base = rs.config.server(server).base_url
        token = rs.token("system/Patient.rs", server=server)
        response = await rs.get(f"{base}/Patient?identifier={system}|MRN000012", token)
        assert ids(response) == [expected]
        read = await rs.get(f"{base}/Patient/{expected}", token)
        assert read.json()["identifier"][0]["value"] == "MRN000012"


async def test_paging_links_are_absolute_and_walk_the_set(rs: Realm) -> None:
    token = rs.token("user/Observation.rs")
    url = f"{rs.ehr}/Observation?patient=p0003&_count=5"
    seen: list[str] = []
    total = None
    while url:
        response = await rs.get(url, token)
        bundle = response.json()
        total = bundle["total"]
        seen += ids(response)
        links = {link["relation"]: link["url"] for link in bundle["link"]}
        assert links["self"].startswith(f"{rs.ehr}/Observation?patient=p0003&_count=5")
        url = links.get("next", "")
    assert total == len(seen) == len(set(seen)) == 15  # 12 vitals + 3 CBC results
    first = (await rs.get(f"{rs.ehr}/Observation?patient=p0003&_count=5&_offset=5",
                          token)).json()
    prev = next(link["url"] for link in first["link"] if link["relation"] == "previous")
    assert prev.endswith("_count=5&_offset=0")


async def test_unknown_params_ignored_unless_strict(rs: Realm) -> None:
    token = rs.token("system/Patient.rs")
    lenient = await rs.get(f"{rs.ehr}/Patient?foo=bar&_count=1", token)
    assert lenient.status_code == 200 and lenient.json()["total"] == 24
    assert "foo" not in lenient.json()["link"][0]["url"]
    strict = await rs.get(f"{rs.ehr}/Patient?foo=bar", token, Prefer="handling=strict")
    assert strict.status_code == 400 and outcome_code(strict) == "invalid"


@pytest.mark.parametrize("query", ["_count=abc", "_offset=-1", "birthdate=yesterday",
                                   "identifier:not=x", "name:text=Pat",
                                   "organization=x"])
async def test_bad_search_input_is_400_or_ignored(rs: Realm, query: str) -> None:
    token = rs.token("system/Patient.rs")
    response = await rs.get(f"{rs.ehr}/Patient?{query}", token, Prefer="handling=strict")
    assert response.status_code == 400
    assert outcome_code(response) == "invalid"


async def test_name_and_birthdate_search(rs: Realm) -> None:
    token = rs.token("system/Patient.rs")
    pat = await rs.get(f"{rs.ehr}/Patient?name=EXAMP", token)
    assert ids(pat) == ["p0012"]
    birth = pat.json()["entry"][0]["resource"]["birthDate"]
    assert "p0012" in ids(await rs.get(f"{rs.ehr}/Patient?birthdate={birth}", token))


# --------------------------------------------------------------------------- errors


async def test_unknown_type_is_404(rs: Realm) -> None:
    token = rs.token("system/*.rs")
    for path in ("Bogus", "Bogus/1", "ImagingStudy"):  # ImagingStudy: not served by the EHR
        response = await rs.get(f"{rs.ehr}/{path}", token)
        assert response.status_code == 404 and outcome_code(response) == "not-found"


async def test_unknown_id_is_404_and_bad_id_400(rs: Realm) -> None:
    token = rs.token("system/*.rs")
    assert (await rs.get(f"{rs.ehr}/Patient/nope", token)).status_code == 404
    bad = await rs.get(f"{rs.ehr}/Patient/{'x' * 65}", token)
    assert bad.status_code == 400


async def test_unsupported_method_is_405(rs: Realm) -> None:
    response = await rs.clients["ehr"].patch(f"{rs.ehr}/Patient/p0001", json={})
    assert response.status_code == 405
    assert outcome_code(response) == "not-supported"


# --------------------------------------------------------------------------- discovery


async def test_metadata_is_a_valid_r4_capability_statement(rs: Realm) -> None:
    response = await rs.get(f"{rs.ehr}/metadata", Origin="https://app.example")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/fhir+json")
    assert response.headers["access-control-allow-origin"] == "*"
    body = response.json()
    CapabilityStatement.model_validate(body)
    rest = body["rest"][0]
    assert {r["type"] for r in rest["resource"]} == {
        "Patient", "Practitioner", "Organization", "Encounter", "Condition", "Observation",
        "DiagnosticReport", "MedicationRequest", "AllergyIntolerance", "Procedure",
        "DocumentReference"}
    patient = next(r for r in rest["resource"] if r["type"] == "Patient")
    assert {i["code"] for i in patient["interaction"]} == {
        "read", "vread", "update", "delete", "history-instance", "history-type", "create",
        "search-type"}
    assert {"identifier", "name", "birthdate", "_id"} <= {p["name"] for p in
                                                           patient["searchParam"]}
    security = rest["security"]
    assert security["cors"] is True
    assert security["service"][0]["coding"][0]["code"] == "SMART-on-FHIR"
    uris = {e["url"]: e["valueUri"] for e in security["extension"][0]["extension"]}
    auth = rs.config.auth_server
    assert uris == {"authorize": auth.authorization_endpoint, "token": auth.token_endpoint,
                    "register": auth.registration_endpoint,
                    "manage": auth.management_endpoint,
                    "introspect": auth.introspection_endpoint,
                    "revoke": auth.revocation_endpoint}


async def test_smart_configuration(rs: Realm) -> None:
    response = await rs.get(f"{rs.imaging}/.well-known/smart-configuration")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["access-control-allow-origin"] == "*"
    config = response.json()
    auth = rs.config.auth_server
    assert config["issuer"] == auth.issuer and config["jwks_uri"] == auth.jwks_uri
    assert config["authorization_endpoint"] == auth.authorization_endpoint
    assert config["token_endpoint"] == auth.token_endpoint
    assert config["registration_endpoint"] == auth.registration_endpoint
    assert config["code_challenge_methods_supported"] == ["S256"]
    assert config["response_types_supported"] == ["code"]
    assert config["grant_types_supported"] == ["authorization_code", "refresh_token",
                                               "client_credentials"]
    assert config["token_endpoint_auth_methods_supported"] == [
        "none", "client_secret_basic", "client_secret_post", "private_key_jwt"]
    assert {"auth-multi-aud-token", "context-style", "launch-ehr", "launch-standalone",
            "sso-openid-connect", "permission-v2", "permission-patient"} \
        <= set(config["capabilities"])
    assert config["associated_endpoints"] == [
        {"url": rs.config.server(s).base_url, "capabilities": ["auth-multi-aud-token"]}
        for s in ("ehr", "lab")]
    assert config["user_access_brand_bundle"] == auth.brands_url
    assert config["user_access_brand_identifier"] == {
        "system": rs.config.brands.identifier_system,
        "value": rs.config.brands.identifier_value}
    assert "patient/ImagingStudy.rs" in config["scopes_supported"]
    assert "patient/Encounter.rs" not in config["scopes_supported"]


# --------------------------------------------------------------------------- assembly


async def test_multi_server_token_uses_each_servers_patient(rs: Realm) -> None:
    scope = "patient/Patient.rs patient/ImagingStudy.rs"
    token = rs.auth.mint([rs.ehr, rs.imaging], scope, details=[
        {"type": "smart_on_fhir", "locations": [rs.ehr], "scope": "patient/Patient.rs",
         "patient": "p0012"},
        {"type": "smart_on_fhir", "locations": [rs.imaging], "scope": scope,
         "patient": "img0012"}])
    assert (await rs.get(f"{rs.ehr}/Patient/p0012", token)).status_code == 200
    assert ids(await rs.get(f"{rs.imaging}/Patient", token)) == ["img0012"]
    studies = await rs.get(f"{rs.imaging}/ImagingStudy", token)
    assert {e["resource"]["subject"]["reference"] for e in studies.json()["entry"]} \
        == {"Patient/img0012"}
    # The EHR share does not include ImagingStudy (and the EHR does not serve it anyway).
    assert (await rs.get(f"{rs.imaging}/ImagingStudy?patient=p0012", token)).status_code \
        == 403


def test_restart_never_reseeds(realm: RealmConfig, tmp_path: Path) -> None:
    own = replace(realm, data_dir=tmp_path)
    build_resource_server(own, "lab")
    engine = make_engine(own.database_url_for("lab"))
    repository = SqlResourceRepository(engine)
    before = repository.count()
    assert before == 240
    assert repository.delete("Patient", "lab0024")
    for rs in own.resource_servers:  # a restart of every server
        build_resource_server(own, rs.id)
    assert repository.count() == before - 1
    stored = repository.get("Patient", "p0001")
    assert stored is not None and stored.version_id == 1
    engine.dispose()


async def test_proxy_mode_builds_the_proxy(realm: RealmConfig) -> None:
    """mode = "proxy" is served by fhir/proxy/ (tests/fhir/test_proxy.py); an unknown
    server id is still a ConfigError."""
    servers = tuple(replace(rs, mode="proxy", upstream="http://127.0.0.1:9000/fhir",
                            upstream_auth="none")
                    if rs.id == "lab" else rs for rs in realm.resource_servers)
    proxy = build_resource_server(replace(realm, resource_servers=servers), "lab")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=proxy)) as client:
        metadata = await client.get(f"{realm.server('lab').base_url}/metadata")
    assert metadata.json()["software"] == {"name": "smartrealm (proxy mode)"}
    with pytest.raises(ConfigError):
        build_resource_server(realm, "nope")
