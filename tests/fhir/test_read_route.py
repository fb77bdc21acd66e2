"""The early read route (fhir/app.py: ``/{type:letters}/{id:FHIR id}``) takes only reads:
discovery, type history and odd ids still reach their own routes, as before."""

from __future__ import annotations

import httpx
import pytest

from tests.fhir.conftest import Realm
from tests.fhir.restkit import call, patient, unique


async def test_discovery_is_not_taken_for_a_read(rs: Realm) -> None:
    response = await rs.get(f"{rs.ehr}/.well-known/smart-configuration")
    assert response.status_code == 200
    assert "scopes_supported" in response.json()
    assert (await rs.get(f"{rs.ehr}/metadata")).json()["resourceType"] == "CapabilityStatement"


async def test_history_and_invalid_ids_keep_their_routes(rs: Realm) -> None:
    token = rs.token("user/Patient.rs")
    history = await rs.get(f"{rs.ehr}/Patient/_history", token)
    assert history.status_code == 200 and history.json()["type"] == "history"
    assert (await rs.get(f"{rs.ehr}/Patient/bad_id", token)).status_code == 400
    assert (await rs.get(f"{rs.ehr}/Patient/p0012", token)).json()["id"] == "p0012"
    assert (await rs.get(f"{rs.ehr}/Nothing/p0012", token)).status_code == 404
    assert (await rs.get(f"{rs.ehr}/Patient/p0012")).status_code == 401


# The front for plain reads (fhir/http/fast_read.py) answers exactly as the routed read: a
# request with an ``Origin`` header or a query string always takes the routed path, so the
# pairs below compare the two.
ORIGIN = "https://app.example.org"


def _same_answer(fast: httpx.Response, routed: httpx.Response) -> None:
    assert fast.status_code == routed.status_code
    assert fast.content == routed.content
    for name in ("content-type", "etag", "last-modified", "www-authenticate"):
        assert fast.headers.get(name) == routed.headers.get(name), name
    assert "access-control-allow-origin" not in fast.headers
    assert routed.headers["access-control-allow-origin"] == "*"


@pytest.mark.parametrize(("scope", "path", "status"), [
    ("user/Patient.rs", "Patient/p0012", 200),
    ("user/Patient.rs", "Patient/nobody", 404),
    ("user/Patient.rs", "Nothing/p0012", 404),
    ("user/Observation.rs", "Patient/p0012", 403),
    ("patient/Patient.rs", "Patient/p0001", 200),
    ("patient/Patient.rs", "Patient/p0002", 403),
    (None, "Patient/p0012", 401),
])
async def test_plain_read_answers_like_the_routed_read(rs: Realm, scope: str | None,
                                                       path: str, status: int) -> None:
    token = None if scope is None else rs.token(scope, patient="p0001")
    fast = await call(rs, "GET", path, token)
    routed = await call(rs, "GET", path, token, Origin=ORIGIN)
    assert fast.status_code == status, fast.text
    _same_answer(fast, routed)


async def test_plain_read_of_a_bad_header_and_a_bad_token(rs: Realm) -> None:
    for header in ("Basic abc", "Bearer not-a-jwt"):
        fast = await call(rs, "GET", "Patient/p0012", Authorization=header)
        routed = await call(rs, "GET", "Patient/p0012", Authorization=header, Origin=ORIGIN)
        assert fast.status_code == 401
        _same_answer(fast, routed)


async def test_plain_read_sees_every_write_and_delete(rs: Realm) -> None:
    """The read connection is kept open (sql/repository.py _reader): it must never serve
    an old snapshot."""
    admin = rs.token("user/Patient.cruds")
    pid = unique("fast")
    for family in ("First", "Second"):
        await call(rs, "PUT", f"Patient/{pid}", admin, body=patient(pid, family))
        read = await call(rs, "GET", f"Patient/{pid}", admin)
        assert read.json()["name"][0]["family"] == family
    assert read.headers["etag"] == 'W/"2"'
    assert (await call(rs, "DELETE", f"Patient/{pid}", admin)).status_code in (200, 204)
    gone = await call(rs, "GET", f"Patient/{pid}", admin)
    assert gone.status_code == 410
    _same_answer(gone, await call(rs, "GET", f"Patient/{pid}", admin, Origin=ORIGIN))
