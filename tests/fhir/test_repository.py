"""Contract suite for ResourceRepository: runs on SQLite and on a real PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest

from smartrealm.fhir.repository import ResourceRepository
from smartrealm.fhir.search.parse import parse_search
from smartrealm.fhir.search.query import AnyOf, Clause, DateValue, IdValue, ReferenceValue
from smartrealm.fhir.sql import SqlResourceRepository

BASE = "http://127.0.0.1:8701/fhir"
LAB = "http://terminology.hl7.org/CodeSystem/observation-category|laboratory"


def patient(pid: str, family: str, mrn: str, birth: str = "1980-05-17") -> dict[str, Any]:
    return {"resourceType": "Patient", "id": pid, "birthDate": birth,
            "identifier": [{"system": "urn:mrn", "value": mrn}],
            "name": [{"family": family, "given": ["Ann"]}]}


def observation(oid: str, pid: str, category: str, code: str) -> dict[str, Any]:
    return {"resourceType": "Observation", "id": oid, "status": "final",
            "subject": {"reference": f"Patient/{pid}"},
            "category": [{"coding": [{"system": LAB.split("|")[0], "code": category}]}],
            "code": {"coding": [{"system": "http://loinc.org", "code": code}]}}


def find(repo: ResourceRepository, resource_type: str, query: str,
         extra: tuple[Any, ...] = ()) -> list[str]:
    pairs = [tuple(p.split("=", 1)) for p in query.split("&") if p]
    request = parse_search(resource_type, pairs, base_url=BASE)  # type: ignore[arg-type]
    found, total = repo.search(resource_type, [*request.criteria, *extra], count=100, offset=0)
    assert total == len(found)
    return sorted(r["id"] for r in found)


def test_put_assigns_version_and_last_updated(repo: SqlResourceRepository) -> None:
    first = repo.put(patient("a", "Smith", "1"))
    assert first["meta"]["versionId"] == "1"
    assert first["meta"]["lastUpdated"].startswith("2025-01-01T00:00:01")
    second = repo.put({**patient("a", "Smythe", "1"), "meta": {"versionId": "99"}})
    assert second["meta"]["versionId"] == "2"
    stored = repo.get("Patient", "a")
    assert stored is not None and stored.version_id == 2 and not stored.deleted
    assert stored.resource["name"][0]["family"] == "Smythe"
    assert find(repo, "Patient", "name=smy") == ["a"]
    assert find(repo, "Patient", "name=smi") == []  # the index follows the new version


def test_put_assigns_an_id_and_rejects_bad_ones(repo: SqlResourceRepository) -> None:
    created = repo.put({"resourceType": "Patient"})
    assert repo.get("Patient", created["id"]) is not None
    for bad in ({"resourceType": "Patient", "id": "a b"}, {"id": "x"},
                {"resourceType": "patient", "id": "x"}):
        with pytest.raises(ValueError):
            repo.put(bad)


def test_get_unknown_and_delete(repo: SqlResourceRepository) -> None:
    assert repo.get("Patient", "nope") is None
    repo.put(patient("a", "Smith", "1"))
    assert repo.delete("Patient", "a") is True
    assert repo.delete("Patient", "a") is False
    stored = repo.get("Patient", "a")
    assert stored is not None and stored.deleted and stored.version_id == 2
    assert repo.count() == 0 and not repo.is_empty()
    assert find(repo, "Patient", "identifier=1") == []


def test_bulk_load_count_and_is_empty(repo: SqlResourceRepository) -> None:
    assert repo.is_empty()
    loaded = repo.bulk_load([patient(f"p{i}", "Doe", str(i)) for i in range(5)]
                            + [observation("o1", "p1", "laboratory", "718-7")])
    assert loaded == 6
    assert (repo.count(), repo.count("Patient"), repo.count("Observation")) == (6, 5, 1)
    assert not repo.is_empty()


def test_token_search_forms(repo: SqlResourceRepository) -> None:
    repo.bulk_load([patient("a", "Smith", "M1"), patient("b", "Jones", "M2"),
                    {"resourceType": "Patient", "id": "c",
                     "identifier": [{"value": "M1"}]}])
    assert find(repo, "Patient", "identifier=urn:mrn|M1") == ["a"]
    assert find(repo, "Patient", "identifier=M1") == ["a", "c"]
    assert find(repo, "Patient", "identifier=|M1") == ["c"]
    assert find(repo, "Patient", "identifier=urn:mrn|") == ["a", "b"]
    assert find(repo, "Patient", "identifier=urn:mrn|M1,urn:mrn|M2") == ["a", "b"]
    assert find(repo, "Patient", "identifier=other|M1") == []


def test_reference_search_forms(repo: SqlResourceRepository) -> None:
    repo.bulk_load([observation("o1", "p1", "laboratory", "718-7"),
                    observation("o2", "p2", "vital-signs", "8867-4"),
                    {"resourceType": "Observation", "id": "o3", "status": "final",
                     "code": {"text": "x"}, "subject": {"reference": "Group/p1"}}])
    assert find(repo, "Observation", "patient=p1") == ["o1"]
    assert find(repo, "Observation", "patient=Patient/p1") == ["o1"]
    assert find(repo, "Observation", f"patient={BASE}/Patient/p2") == ["o2"]
    assert find(repo, "Observation", "subject=p1") == ["o1", "o3"]
    assert find(repo, "Observation", "subject=Group/p1") == ["o3"]
    assert find(repo, "Observation", "subject:Patient=p1") == ["o1"]
    assert find(repo, "Observation", "patient=http://elsewhere/fhir/Patient/p1") == []


def test_category_code_and_and_or(repo: SqlResourceRepository) -> None:
    repo.bulk_load([observation("o1", "p1", "laboratory", "718-7"),
                    observation("o2", "p1", "vital-signs", "8867-4"),
                    observation("o3", "p2", "laboratory", "2339-0")])
    assert find(repo, "Observation", f"category={LAB}") == ["o1", "o3"]
    assert find(repo, "Observation", "category=laboratory&patient=p1") == ["o1"]
    assert find(repo, "Observation", "code=http://loinc.org|718-7,http://loinc.org|8867-4") \
        == ["o1", "o2"]
    assert find(repo, "Observation", "_id=o1,o3&code=2339-0") == ["o3"]


def test_string_and_date_search(repo: SqlResourceRepository) -> None:
    repo.bulk_load([patient("a", "Smith", "1", "1980-05-17"),
                    patient("b", "Smithers", "2", "1990-01-01"),
                    patient("c", "O'Neil_%", "3", "2001-12-31")])
    assert find(repo, "Patient", "name=SMITH") == ["a", "b"]
    assert find(repo, "Patient", "family=smithe") == ["b"]
    assert find(repo, "Patient", "given=ann") == ["a", "b", "c"]
    assert find(repo, "Patient", "name:contains=ither") == ["b"]
    assert find(repo, "Patient", "name=o'neil_") == ["c"]
    assert find(repo, "Patient", "name=o'neil_%") == ["c"]
    # LIKE wildcards in the query are literals: "%" and "_" match only themselves.
    assert find(repo, "Patient", "name=o'neil%") == []
    assert find(repo, "Patient", "name=smit_") == []
    assert find(repo, "Patient", "birthdate=1980") == ["a"]
    assert find(repo, "Patient", "birthdate=1980-05") == ["a"]
    assert find(repo, "Patient", "birthdate=ge1990-01-01") == ["b", "c"]
    assert find(repo, "Patient", "birthdate=lt1990") == ["a"]
    assert find(repo, "Patient", "birthdate=gt1990") == ["c"]
    assert find(repo, "Patient", "birthdate=le1990-01") == ["a", "b"]


def test_any_of_is_a_union_of_groups(repo: SqlResourceRepository) -> None:
    repo.bulk_load([observation("o1", "p1", "laboratory", "718-7"),
                    observation("o2", "p1", "vital-signs", "8867-4"),
                    observation("o3", "p2", "laboratory", "2339-0")])
    p1 = Clause("patient", "reference", (ReferenceValue("Patient", "p1"),))
    o3 = Clause("_id", "id", (IdValue("o3"),))
    assert find(repo, "Observation", "", (AnyOf(((p1,), (o3,))),)) == ["o1", "o2", "o3"]
    assert find(repo, "Observation", "", (AnyOf(((p1, o3),)),)) == []
    assert find(repo, "Observation", "", (AnyOf(()),)) == []
    assert find(repo, "Observation", "", (AnyOf(((),)),)) == ["o1", "o2", "o3"]


def test_paging_and_total(repo: SqlResourceRepository) -> None:
    repo.bulk_load([patient(f"p{i:02d}", "Doe", str(i)) for i in range(25)])
    page, total = repo.search("Patient", [], count=10, offset=20)
    assert total == 25 and [r["id"] for r in page] == [f"p{i}" for i in range(20, 25)]
    page, total = repo.search("Patient", [], count=0, offset=0)
    assert (page, total) == ([], 25)
    page, total = repo.search("Patient", [], count=10, offset=100)
    assert (page, total) == ([], 25)


def test_date_value_bounds_are_inclusive(repo: SqlResourceRepository) -> None:
    repo.bulk_load([patient("a", "Smith", "1", "1980-12-31")])
    eq = Clause("birthdate", "date", (DateValue("eq", "1980-01-01T00:00:00.000000Z",
                                                "1981-01-01T00:00:00.000000Z"),))
    assert find(repo, "Patient", "", (eq,)) == ["a"]
