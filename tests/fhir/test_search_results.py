"""Result parameters (R4 search.html §3.1.1.5): ``_count``, ``_sort``, ``_summary``,
``_total``, paging links, and ``POST [type]/_search`` — over HTTP (in-process ASGI, the
seeded realm) and, for sorting, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
from fhir.resources.R4B.bundle import Bundle

from smartrealm.fhir.search.parse import parse_search
from smartrealm.fhir.search.query import PageQuery
from smartrealm.fhir.sql import SqlResourceRepository
from tests.fhir.conftest import Realm
from tests.fhir.search_app import SearchServer

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def bundle_of(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    Bundle.model_validate(body)
    return body


def ids(body: dict[str, Any]) -> list[str]:
    return [e["resource"]["id"] for e in body.get("entry", [])]


def links(body: dict[str, Any]) -> dict[str, str]:
    return {link["relation"]: link["url"] for link in body["link"]}


# --------------------------------------------------------------------------- _count, _total


async def test_count_bounds(rs: Realm) -> None:
    token = rs.token("system/Patient.rs")
    none = bundle_of(await rs.get(f"{rs.ehr}/Patient?_count=0", token))
    assert none["total"] == 24 and "entry" not in none
    big = bundle_of(await rs.get(f"{rs.ehr}/Patient?_count=5000", token))
    assert len(ids(big)) == 24 and "_count=200" in links(big)["self"]
    for bad in ("-1", "abc", "1.5", "²", "9999999999"):
        response = await rs.get(f"{rs.ehr}/Patient?_count={bad}", token)
        assert response.status_code == 400, bad


async def test_total_modes(rs: Realm) -> None:
    token = rs.token("system/Patient.rs")
    none = bundle_of(await rs.get(f"{rs.ehr}/Patient?_total=none&_count=10", token))
    assert "total" not in none and len(ids(none)) == 10
    assert {"self", "first", "next"} == set(links(none))  # no "last" without a total
    assert "_total=none" in links(none)["next"]
    for mode in ("estimate", "accurate"):
        body = bundle_of(await rs.get(f"{rs.ehr}/Patient?_total={mode}", token))
        assert body["total"] == 24
    assert (await rs.get(f"{rs.ehr}/Patient?_total=some", token)).status_code == 400


# --------------------------------------------------------------------------- _summary


async def test_summary_count_gives_only_the_total(rs: Realm) -> None:
    token = rs.token("user/Observation.rs")
    body = bundle_of(await rs.get(
        f"{rs.ehr}/Observation?patient=p0003&_summary=count&_include=Observation:patient",
        token))
    assert body["total"] == 15 and "entry" not in body
    assert list(links(body)) == ["self"]


async def test_summary_data_drops_the_narrative(search_server: SearchServer) -> None:
    server = search_server
    narrative = {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>"}
    server.load([{"resourceType": "Patient", "id": "p1", "text": narrative},
                 {"resourceType": "Patient", "id": "p2"}])
    token = server.token("system/Patient.rs")
    body = await server.bundle("Patient?_summary=data", token)
    first, second = (e["resource"] for e in body["entry"])
    assert "text" not in first and second["id"] == "p2" and "tag" not in second["meta"]
    assert {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
            "code": "SUBSETTED", "display": "subsetted"} in first["meta"]["tag"]
    full = await server.bundle("Patient?_id=p1&_summary=true", token)
    assert full["entry"][0]["resource"]["text"] == narrative  # true: whole resources (R4)
    assert (await server.get("Patient?_summary=yes", token)).status_code == 400


# --------------------------------------------------------------------------- _sort


async def test_sort_over_http(rs: Realm) -> None:
    token = rs.token("system/Patient.rs")
    everyone = bundle_of(await rs.get(f"{rs.ehr}/Patient?_count=100", token))
    births = {e["resource"]["id"]: e["resource"]["birthDate"] for e in everyone["entry"]}
    body = bundle_of(await rs.get(f"{rs.ehr}/Patient?_sort=-birthdate,_id&_count=100", token))
    # stable sort: ids ascending within one birth date
    assert ids(body) == sorted(sorted(births), key=lambda i: births[i], reverse=True)
    assert "_sort=-birthdate%2C_id" in links(body)["self"]
    for bad in ("gender:x", "nope", "-", "subject"):
        response = await rs.get(f"{rs.ehr}/Patient?_sort={bad}", token)
        assert response.status_code == 400, bad


def sorted_ids(repo: SqlResourceRepository, resource_type: str, query: str) -> list[str]:
    pairs = [tuple(p.split("=", 1)) for p in query.split("&") if p]
    request = parse_search(resource_type, pairs, base_url="http://x/fhir")  # type: ignore[arg-type]
    page = repo.page(PageQuery(resource_type, request.criteria, 100, sort=request.sort))
    return [r["id"] for r in page.resources]


def test_sort_keys(repo: SqlResourceRepository) -> None:
    def person(pid: str, family: str, given: str, birth: str | None) -> dict[str, Any]:
        found: dict[str, Any] = {"resourceType": "Patient", "id": pid,
                                 "name": [{"family": family, "given": [given]}]}
        if birth:
            found["birthDate"] = birth
        return found

    for resource in (person("c", "Berg", "Anna", "1990"), person("a", "Ålund", "Zed", None),
                     person("b", "Berg", "Carl", "1980-06-01"),
                     person("d", "Cole", "Bo", "1990-01-01")):
        repo.put(resource)
    assert sorted_ids(repo, "Patient", "_sort=_id") == ["a", "b", "c", "d"]
    assert sorted_ids(repo, "Patient", "_sort=-_id") == ["d", "c", "b", "a"]
    assert sorted_ids(repo, "Patient", "_sort=_lastUpdated") == ["c", "a", "b", "d"]
    assert sorted_ids(repo, "Patient", "_sort=-_lastUpdated") == ["d", "b", "a", "c"]
    # a date sorts by its range: low ascending, high descending; no value: last
    assert sorted_ids(repo, "Patient", "_sort=birthdate") == ["b", "c", "d", "a"]
    assert sorted_ids(repo, "Patient", "_sort=-birthdate") == ["c", "d", "b", "a"]
    assert sorted_ids(repo, "Patient", "_sort=family,-given") == ["a", "b", "c", "d"]
    assert sorted_ids(repo, "Patient", "_sort=-family,given") == ["d", "c", "b", "a"]
    # name: the lowest part of any name (alund, anna, berg, bo), folded
    assert sorted_ids(repo, "Patient", "_sort=name") == ["a", "c", "b", "d"]


def test_sort_by_observation_and_imaging_dates(repo: SqlResourceRepository) -> None:
    repo.bulk_load([
        {"resourceType": "Observation", "id": "o1", "status": "final", "code": {"text": "x"},
         "effectivePeriod": {"start": "2024-01-01", "end": "2024-06-01"}},
        {"resourceType": "Observation", "id": "o2", "status": "final", "code": {"text": "x"},
         "effectiveDateTime": "2024-03-01T10:00:00Z"},
        {"resourceType": "ImagingStudy", "id": "i1", "status": "available",
         "subject": {"reference": "Patient/p"}, "started": "2023-05-01T10:00:00Z"},
        {"resourceType": "ImagingStudy", "id": "i2", "status": "available",
         "subject": {"reference": "Patient/p"}, "started": "2022-05-01T10:00:00Z"},
    ])
    assert sorted_ids(repo, "Observation", "_sort=date") == ["o1", "o2"]
    assert sorted_ids(repo, "Observation", "_sort=-date") == ["o1", "o2"]  # o1 ends later
    assert sorted_ids(repo, "ImagingStudy", "_sort=started") == ["i2", "i1"]
    assert sorted_ids(repo, "ImagingStudy", "patient=p&_sort=-started") == ["i1", "i2"]


# --------------------------------------------------------------------------- paging


async def test_paging_links_keep_the_query(rs: Realm) -> None:
    token = rs.token("user/Observation.rs user/Patient.rs")
    query = ("patient=p0003&_sort=-date&_include=Observation:patient&_count=4&unknown=1")
    body = bundle_of(await rs.get(f"{rs.ehr}/Observation?{query}", token))
    assert body["total"] == 15
    found = links(body)
    assert list(found) == ["self", "first", "next", "last"]
    for url in found.values():
        parts = urlsplit(url)
        assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{rs.ehr}/Observation"
        params = dict(parse_qsl(parts.query))
        assert params["patient"] == "p0003" and params["_sort"] == "-date"
        assert params["_include"] == "Observation:patient" and "unknown" not in params
    assert found["last"].endswith("_count=4&_offset=12")
    seen: list[str] = []
    url = found["first"]
    while url:
        page = bundle_of(await rs.get(url, token))
        seen += [e["resource"]["id"] for e in page["entry"] if e["search"]["mode"] == "match"]
        url = links(page).get("next", "")
    assert len(seen) == len(set(seen)) == 15
    last = bundle_of(await rs.get(found["last"], token))
    assert set(links(last)) == {"self", "first", "previous", "last"}
    assert links(last)["previous"].endswith("_offset=8")


# --------------------------------------------------------------------------- POST _search


async def test_post_search_matches_get(rs: Realm) -> None:
    token = rs.token("user/Observation.rs")
    client = rs.clients["ehr"]
    headers = {"Authorization": f"Bearer {token}", **FORM}
    got = bundle_of(await rs.get(f"{rs.ehr}/Observation?patient=p0003&category=vital-signs",
                                 token))
    posted = bundle_of(await client.post(f"{rs.ehr}/Observation/_search",
                                         content="patient=p0003&category=vital-signs",
                                         headers=headers))
    assert ids(posted) == ids(got) and posted["total"] == got["total"] == 12
    merged = bundle_of(await client.post(f"{rs.ehr}/Observation/_search?patient=p0003",
                                         content="category=vital-signs&_count=2",
                                         headers=headers))
    assert merged["total"] == 12 and len(ids(merged)) == 2
    assert links(merged)["self"].startswith(f"{rs.ehr}/Observation?patient=p0003&category=")


async def test_post_search_errors(rs: Realm) -> None:
    token = rs.token("user/Observation.rs")
    client = rs.clients["ehr"]
    auth = {"Authorization": f"Bearer {token}"}
    url = f"{rs.ehr}/Observation/_search"
    assert (await client.post(url, content="patient=p0003", headers=FORM)).status_code == 401
    json_body = await client.post(url, json={"patient": "p0003"}, headers=auth)
    assert json_body.status_code == 415
    bad_utf8 = await client.post(url, content=b"patient=%FF", headers={**auth, **FORM})
    assert bad_utf8.status_code == 400
    bad_value = await client.post(url, content="date=yesterday", headers={**auth, **FORM})
    assert bad_value.status_code == 400
    strict = await client.post(url, content="nope=1", headers={**auth, **FORM,
                                                                "Prefer": "handling=strict"})
    assert strict.status_code == 400
    empty = await client.post(url, headers=auth)
    assert empty.status_code == 200 and empty.json()["total"] > 0
    other = await rs.get(f"{rs.ehr}/Observation/_search", token)
    assert other.status_code in (400, 404, 405)
