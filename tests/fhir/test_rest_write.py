"""create, update (If-Match, update-as-create), delete, Prefer and the error statuses of the
write interactions (R4 http.html), on the in-process EHR (read-write) and imaging
(read-only) servers."""

from __future__ import annotations

import asyncio

import pytest

from tests.fhir.conftest import Realm
from tests.fhir.restkit import call, observation, patient, unique

ALL = "user/*.cruds"


@pytest.fixture
def token(rs: Realm) -> str:
    return rs.token(ALL)


async def test_create_assigns_id_version_and_headers(rs: Realm, token: str) -> None:
    sent = {**observation("p0001"), "id": "ignored-id", "meta": {"versionId": "7"}}
    response = await call(rs, "POST", "Observation", token, body=sent)
    assert response.status_code == 201
    body = response.json()
    assert body["id"] != "ignored-id"  # R4 http.html#create: the server assigns the id
    assert body["meta"]["versionId"] == "1" and body["meta"]["lastUpdated"]
    assert response.headers["etag"] == 'W/"1"'
    assert response.headers["location"] == f"{rs.ehr}/Observation/{body['id']}/_history/1"
    assert response.headers["last-modified"].endswith(" GMT")
    assert response.headers["content-type"].startswith("application/fhir+json")
    read = await call(rs, "GET", f"Observation/{body['id']}", token)
    assert read.status_code == 200 and read.json() == body


async def test_prefer_return(rs: Realm, token: str) -> None:
    minimal = await call(rs, "POST", "Observation", token, body=observation("p0001"),
                         Prefer="return=minimal")
    assert minimal.status_code == 201 and minimal.content == b""
    assert minimal.headers["location"].endswith("/_history/1")
    outcome = await call(rs, "POST", "Observation", token, body=observation("p0001"),
                         Prefer="return=OperationOutcome")
    assert outcome.status_code == 201
    assert outcome.json()["resourceType"] == "OperationOutcome"
    assert outcome.json()["issue"][0]["severity"] == "information"
    full = await call(rs, "POST", "Observation", token, body=observation("p0001"),
                      Prefer="return=representation")
    assert full.status_code == 201 and full.json()["resourceType"] == "Observation"


async def test_update_versions_and_if_match(rs: Realm, token: str) -> None:
    created = (await call(rs, "POST", "Observation", token, body=observation("p0001"))).json()
    oid = created["id"]
    changed = {**created, "status": "amended"}
    response = await call(rs, "PUT", f"Observation/{oid}", token, body=changed,
                          If_Match='W/"1"')
    assert response.status_code == 200
    assert response.headers["etag"] == 'W/"2"'
    assert response.json()["meta"]["versionId"] == "2"
    assert response.json()["status"] == "amended"
    stale = await call(rs, "PUT", f"Observation/{oid}", token, body=changed, If_Match='W/"1"')
    assert stale.status_code == 412
    assert stale.json()["issue"][0]["code"] == "conflict"
    strong = await call(rs, "PUT", f"Observation/{oid}", token, body=changed, If_Match='"2"')
    assert strong.status_code == 200 and strong.headers["etag"] == 'W/"3"'
    bad = await call(rs, "PUT", f"Observation/{oid}", token, body=changed, If_Match="yes")
    assert bad.status_code == 400
    unconditional = await call(rs, "PUT", f"Observation/{oid}", token, body=changed)
    assert unconditional.status_code == 200 and unconditional.headers["etag"] == 'W/"4"'


async def test_update_as_create_with_a_client_id(rs: Realm, token: str) -> None:
    oid = unique("obs")
    response = await call(rs, "PUT", f"Observation/{oid}", token,
                          body=observation("p0001", resource_id=oid))
    assert response.status_code == 201
    assert response.headers["location"] == f"{rs.ehr}/Observation/{oid}/_history/1"
    assert response.json()["meta"]["versionId"] == "1"
    again = await call(rs, "PUT", f"Observation/{oid}", token,
                       body=observation("p0001", resource_id=oid))
    assert again.status_code == 200 and again.headers["etag"] == 'W/"2"'
    # If-Match on a resource that does not exist cannot hold.
    other = unique("obs")
    missing = await call(rs, "PUT", f"Observation/{other}", token,
                         body=observation("p0001", resource_id=other), If_Match='W/"1"')
    assert missing.status_code == 412
    assert (await call(rs, "GET", f"Observation/{other}", token)).status_code == 404


async def test_delete_then_gone_then_recreate(rs: Realm, token: str) -> None:
    oid = unique("obs")
    await call(rs, "PUT", f"Observation/{oid}", token, body=observation("p0001", resource_id=oid))
    deleted = await call(rs, "DELETE", f"Observation/{oid}", token)
    assert deleted.status_code == 204 and deleted.content == b""
    assert deleted.headers["etag"] == 'W/"2"'
    assert (await call(rs, "GET", f"Observation/{oid}", token)).status_code == 410
    again = await call(rs, "DELETE", f"Observation/{oid}", token)
    assert again.status_code == 204  # R4: deleting a deleted resource has no effect
    assert (await call(rs, "DELETE", f"Observation/{unique()}", token)).status_code == 404
    back = await call(rs, "PUT", f"Observation/{oid}", token,
                      body=observation("p0001", resource_id=oid))
    assert back.status_code == 201 and back.headers["etag"] == 'W/"3"'
    assert (await call(rs, "GET", f"Observation/{oid}", token)).status_code == 200


async def test_delete_if_match_and_prefer_outcome(rs: Realm, token: str) -> None:
    oid = unique("obs")
    await call(rs, "PUT", f"Observation/{oid}", token, body=observation("p0001", resource_id=oid))
    stale = await call(rs, "DELETE", f"Observation/{oid}", token, If_Match='W/"5"')
    assert stale.status_code == 412
    done = await call(rs, "DELETE", f"Observation/{oid}", token, If_Match='W/"1"',
                      Prefer="return=OperationOutcome")
    assert done.status_code == 200
    assert done.json()["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize(("path", "body", "status"), [
    # R4 http.html#update: the body's id SHALL equal the URL's; missing is 400 too.
    ("Observation/abc", observation("p0001", resource_id="xyz"), 400),
    ("Observation/abc", observation("p0001"), 400),
    # resourceType must be the URL's type.
    ("Observation/abc", patient("abc"), 400),
    ("Observation/bad_id!", observation("p0001", resource_id="bad_id!"), 400),
    # Not a type this server serves, or not a FHIR type at all.
    ("ImagingStudy/abc", {"resourceType": "ImagingStudy", "id": "abc", "status": "available",
                          "subject": {"reference": "Patient/p0001"}}, 404),
    ("Foo/abc", {"resourceType": "Foo", "id": "abc"}, 404),
])
async def test_bad_updates(rs: Realm, token: str, path: str, body: dict[str, object],
                           status: int) -> None:
    response = await call(rs, "PUT", path, token, body=body)
    assert response.status_code == status
    assert response.json()["resourceType"] == "OperationOutcome"


async def test_create_errors(rs: Realm, token: str) -> None:
    assert (await call(rs, "POST", "Observation", token, body=patient())).status_code == 400
    assert (await call(rs, "POST", "Foo", token, body={"resourceType": "Foo"})).status_code == 404
    medication = {"resourceType": "Medication", "status": "active"}
    assert (await call(rs, "POST", "Medication", token, body=medication)).status_code == 404


async def test_unsupported_methods_are_405(rs: Realm, token: str) -> None:
    for method, path in (("PATCH", "Observation/x"), ("POST", "Observation/x"),
                         ("PUT", "Observation"), ("DELETE", "Observation"),
                         ("DELETE", "Observation/x/_history/1"), ("PUT", "_history")):
        response = await call(rs, method, path, token, body={})
        assert response.status_code == 405, (method, path)
        assert response.json()["issue"][0]["code"] == "not-supported"


async def test_read_only_server_refuses_writes_with_405(rs: Realm) -> None:
    token = rs.token(ALL, server="imaging")
    study = {"resourceType": "ImagingStudy", "status": "available",
             "subject": {"reference": "Patient/p0001"}}
    for method, path in (("POST", "ImagingStudy"), ("PUT", "ImagingStudy/x"),
                         ("DELETE", "ImagingStudy/x")):
        response = await call(rs, method, path, token, server="imaging",
                              body={**study, "id": "x"})
        assert response.status_code == 405, (method, path)
    assert (await call(rs, "GET", "ImagingStudy/_history", token,
                       server="imaging")).status_code == 200


async def test_writes_need_a_token(rs: Realm) -> None:
    response = await call(rs, "POST", "Observation", body=observation("p0001"))
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    response = await call(rs, "DELETE", "Observation/x", "not-a-token")
    assert response.status_code == 401


async def test_media_type_and_size(rs: Realm, token: str) -> None:
    xml = await call(rs, "POST", "Observation", token, content=b"<Observation/>",
                     Content_Type="application/fhir+xml")
    assert xml.status_code == 415
    plain_json = await call(rs, "POST", "Observation", token,
                            content=b'{"resourceType": "Observation", "status": "final", '
                                    b'"code": {"text": "x"}}',
                            Content_Type="application/json; charset=utf-8")
    assert plain_json.status_code == 201
    huge = await call(rs, "POST", "Observation", token, content=b" " * (17 * 1024 * 1024),
                      Content_Type="application/fhir+json")
    assert huge.status_code == 413


async def test_cors_preflight_allows_writes(rs: Realm) -> None:
    response = await call(rs, "OPTIONS", "Observation/x", Origin="https://app.example",
                          Access_Control_Request_Method="PUT",
                          Access_Control_Request_Headers="authorization, if-match")
    assert response.status_code == 200
    assert "PUT" in response.headers["access-control-allow-methods"]
    exposed = await call(rs, "GET", "metadata", Origin="https://app.example")
    assert exposed.headers["access-control-allow-origin"] == "*"


async def test_capability_and_scopes_say_what_each_server_answers(rs: Realm) -> None:
    expected = {"ehr": ({"read", "vread", "update", "delete", "history-instance",
                         "history-type", "create", "search-type"},
                        {"transaction", "batch", "history-system"}, "cruds"),
                "imaging": ({"read", "vread", "history-instance", "history-type",
                             "search-type"}, {"batch", "history-system"}, "rs")}
    for server, (per_type, system, suffix) in expected.items():
        rest = (await call(rs, "GET", "metadata", server=server)).json()["rest"][0]
        assert {i["code"] for i in rest["interaction"]} == system
        for resource in rest["resource"]:
            assert {i["code"] for i in resource["interaction"]} == per_type
            assert resource["readHistory"] is True
            assert resource.get("updateCreate", False) is (suffix == "cruds")
        scopes = (await call(rs, "GET", ".well-known/smart-configuration",
                             server=server)).json()["scopes_supported"]
        assert f"patient/*.{suffix}" in scopes and f"system/Patient.{suffix}" in scopes


async def test_concurrent_conditional_updates_one_wins(rs: Realm, token: str) -> None:
    """Writers racing with the same If-Match: exactly one succeeds, whatever the timing
    (a stale read is 412 at the check, a lost race 412 at the commit)."""
    for _ in range(5):
        oid = unique("race")
        await call(rs, "PUT", f"Observation/{oid}", token,
                   body=observation("p0001", resource_id=oid))
        attempts = [call(rs, "PUT", f"Observation/{oid}", token,
                         body=observation("p0001", resource_id=oid, status=status),
                         If_Match='W/"1"') for status in ("amended", "corrected", "cancelled")]
        statuses = sorted(r.status_code for r in await asyncio.gather(*attempts))
        assert statuses == [200, 412, 412]
        final = await call(rs, "GET", f"Observation/{oid}", token)
        assert final.json()["meta"]["versionId"] == "2"


async def test_concurrent_unconditional_writes_never_lose_a_version(rs: Realm,
                                                                    token: str) -> None:
    """Without If-Match a lost race is 409 (retry); every success is its own version."""
    oid = unique("race")
    await call(rs, "PUT", f"Observation/{oid}", token, body=observation("p0001", resource_id=oid))
    attempts = [call(rs, "PUT", f"Observation/{oid}", token,
                     body=observation("p0001", resource_id=oid, status=status))
                for status in ("amended", "corrected", "cancelled", "final")]
    statuses = [r.status_code for r in await asyncio.gather(*attempts)]
    assert set(statuses) <= {200, 409} and 200 in statuses
    final = await call(rs, "GET", f"Observation/{oid}", token)
    assert final.json()["meta"]["versionId"] == str(1 + statuses.count(200))
    deletes = [call(rs, "DELETE", f"Observation/{oid}", token, If_Match=final.headers["etag"])
               for _ in range(3)]
    assert sorted(r.status_code for r in await asyncio.gather(*deletes)) == [204, 412, 412]
