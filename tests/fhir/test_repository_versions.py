"""Contract suite for the versioned side of ResourceRepository (write sessions, vread,
history, versions_matching): runs on SQLite and on a real PostgreSQL (``sql_url``)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import insert, select

from smartrealm.fhir.repository import HistoryQuery, VersionConflictError
from smartrealm.fhir.search.query import AnyOf, Clause, IdValue, ReferenceValue, TokenValue
from smartrealm.fhir.sql import SqlResourceRepository
from smartrealm.fhir.sql.tables import history, resources, search_index
from smartrealm.storage import make_engine

CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"


def obs(oid: str, pid: str, category: str = "laboratory") -> dict[str, Any]:
    return {"resourceType": "Observation", "id": oid, "status": "final",
            "subject": {"reference": f"Patient/{pid}"},
            "category": [{"coding": [{"system": CATEGORY, "code": category}]}],
            "code": {"text": "x"}}


def of_patient(pid: str) -> Clause:
    return Clause("patient", "reference", (ReferenceValue("Patient", pid),))


def in_category(code: str) -> Clause:
    return Clause("category", "token", (TokenValue(CATEGORY, code),))


def test_session_commits_together(repo: SqlResourceRepository) -> None:
    with repo.transaction() as session:
        first = session.put(obs("o1", "p1"))
        session.put(obs("o2", "p1"))
        assert first.version_id == 1 and not first.deleted
        assert session.get("Observation", "o1") is not None
        assert session.matches("Observation", "o1", [of_patient("p1")])
        assert not session.matches("Observation", "o1", [of_patient("p2")])
        assert session.matches("Observation", "o1", [AnyOf(((of_patient("p2"),),
                                                            (in_category("laboratory"),)))])
    assert repo.count("Observation") == 2


def test_session_rolls_back_on_error(repo: SqlResourceRepository) -> None:
    repo.put(obs("o1", "p1"))
    with pytest.raises(RuntimeError), repo.transaction() as session:
        session.put(obs("o2", "p1"))
        session.put({**obs("o1", "p2")})
        assert session.delete("Observation", "o1") is not None
        raise RuntimeError("refused")
    assert repo.get("Observation", "o2") is None
    current = repo.get("Observation", "o1")
    assert current is not None and current.version_id == 1 and not current.deleted


def test_session_delete_and_vread(repo: SqlResourceRepository) -> None:
    repo.put(obs("o1", "p1"))
    repo.put(obs("o1", "p2"))
    with repo.transaction() as session:
        deletion = session.delete("Observation", "o1")
        assert session.delete("Observation", "o1") is None  # nothing live any more
    assert deletion is not None and deletion.deleted and deletion.version_id == 3
    assert deletion.resource["subject"]["reference"] == "Patient/p2"  # last live content
    first = repo.vread("Observation", "o1", 1)
    assert first is not None and first.resource["subject"]["reference"] == "Patient/p1"
    assert first.resource["meta"]["versionId"] == "1"
    third = repo.vread("Observation", "o1", 3)
    assert third is not None and third.deleted
    assert repo.vread("Observation", "o1", 4) is None
    assert repo.vread("Observation", "nope", 1) is None
    assert repo.search("Observation", [of_patient("p2")], count=10, offset=0) == ([], 0)


def test_history_pages_newest_first(repo: SqlResourceRepository) -> None:
    for pid in ("p1", "p2", "p3"):
        repo.put(obs("o1", pid))
    repo.put(obs("o2", "p1"))
    repo.delete("Observation", "o1")
    instance = HistoryQuery((("Observation", None),), "o1")
    found, total = repo.history(instance)
    assert total == 4
    assert [v.version_id for v in found] == [4, 3, 2, 1]
    assert found[0].deleted and not found[1].deleted
    page, _ = repo.history(HistoryQuery((("Observation", None),), "o1", count=2, offset=2))
    assert [v.version_id for v in page] == [2, 1]
    since = found[1].last_updated
    recent, recent_total = repo.history(HistoryQuery((("Observation", None),), "o1", since))
    assert recent_total == 2 and [v.version_id for v in recent] == [4, 3]
    typed, typed_total = repo.history(HistoryQuery((("Observation", None),)))
    assert typed_total == 5 and typed[0].resource["id"] == "o1"
    assert repo.history(HistoryQuery((("Patient", None),))) == ([], 0)


def test_history_restriction_keeps_resources_now_in_scope(repo: SqlResourceRepository) -> None:
    repo.put(obs("o1", "p2"))
    repo.put(obs("o1", "p1"))          # moved into p1's compartment
    repo.put(obs("o2", "p2"))
    repo.put({"resourceType": "Patient", "id": "p1"})
    restricted = HistoryQuery((("Observation", AnyOf(((of_patient("p1"),),))),
                               ("Patient", AnyOf(((Clause("_id", "id", (IdValue("p1"),)),),)))))
    found, total = repo.history(restricted)
    assert total == 3
    assert sorted((v.resource["id"], v.version_id) for v in found) == [
        ("o1", 1), ("o1", 2), ("p1", 1)]
    nothing = HistoryQuery((("Observation", AnyOf(())),))
    assert repo.history(nothing) == ([], 0)


def test_versions_matching_changes_nothing(repo: SqlResourceRepository) -> None:
    repo.put(obs("o1", "p2", "vital-signs"))
    repo.put(obs("o1", "p1", "laboratory"))
    repo.put({"resourceType": "Patient", "id": "p1"})
    repo.put({"resourceType": "Patient", "id": "p1", "gender": "other"})
    versions, _ = repo.history(HistoryQuery((("Observation", None),), "o1"))
    assert repo.versions_matching(versions, [of_patient("p1")]) == [True, False]
    assert repo.versions_matching(versions, [in_category("vital-signs")]) == [False, True]
    assert repo.versions_matching([], [of_patient("p1")]) == []
    patients, _ = repo.history(HistoryQuery((("Patient", None),), "p1"))
    assert repo.versions_matching(patients, [Clause("_id", "id", (IdValue("p1"),))]) == [
        True, True]
    current = repo.get("Observation", "o1")
    assert current is not None and current.version_id == 2
    assert repo.history(HistoryQuery((("Observation", None),), "o1"))[1] == 2
    assert repo.search("Observation", [of_patient("p2")], count=10, offset=0)[1] == 0


def test_colliding_versions_are_a_conflict(repo: SqlResourceRepository) -> None:
    repo.put(obs("o1", "p1"))
    # Another writer stored version 2 first (as a concurrent update would).
    with repo._engine.begin() as conn:
        conn.execute(insert(history).values(resource_type="Observation", id="o1",
                                            version_id=2, last_updated="2025-01-01",
                                            content="{}", deleted=False))
    with pytest.raises(VersionConflictError), repo.transaction() as session:
        session.put(obs("o1", "p9"))
    current = repo.get("Observation", "o1")
    assert current is not None and current.resource["subject"]["reference"] == "Patient/p1"


def test_bulk_load_matches_one_put_at_a_time(repo: SqlResourceRepository) -> None:
    repo.put(obs("o1", "p1"))
    items = [obs("o1", "p2"), obs("o2", "p1"), obs("o2", "p3"), obs("o3", "p1", "vital-signs"),
             {"resourceType": "Patient", "name": [{"family": "NoId"}]}]
    assert repo.bulk_load(iter(items)) == 5
    current = repo.get("Observation", "o1")
    assert current is not None and current.version_id == 2
    again = repo.get("Observation", "o2")  # new, then updated within the same load
    assert again is not None and again.version_id == 2
    assert again.resource["subject"]["reference"] == "Patient/p3"
    assert [v.version_id for v in repo.history(HistoryQuery((("Observation", None),),
                                                            "o2"))[0]] == [2, 1]
    found, total = repo.search("Observation", [of_patient("p3")], count=10, offset=0)
    assert total == 1 and found[0]["id"] == "o2"
    assert repo.search("Observation", [of_patient("p2")], count=10, offset=0)[1] == 1
    assert repo.search("Observation", [in_category("vital-signs")], count=10, offset=0)[1] == 1
    assert repo.count("Patient") == 1 and repo.count("Observation") == 3
    with pytest.raises(ValueError):
        repo.bulk_load([{"resourceType": "Observation", "id": "bad id"}])


@pytest.mark.parametrize("action", ["put", "delete"])
def test_racing_sessions_never_both_win(repo: SqlResourceRepository, action: str) -> None:
    """Two sessions read version 1, then both write: the second to reach the database
    must fail (its checks were made against a version that is gone), never overwrite."""
    repo.put(obs("o1", "p1"))
    barrier = threading.Barrier(2, timeout=30)
    outcomes: list[str] = []

    def writer(pid: str) -> None:
        try:
            with repo.transaction() as session:
                assert session.get("Observation", "o1") is not None
                barrier.wait()
                if action == "put":
                    session.put(obs("o1", pid))
                else:
                    session.delete("Observation", "o1")
            outcomes.append("won")
        except VersionConflictError:
            outcomes.append("conflict")

    threads = [threading.Thread(target=writer, args=(pid,)) for pid in ("p2", "p3")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes) == ["conflict", "won"]
    current = repo.get("Observation", "o1")
    assert current is not None and current.version_id == 2


def test_bulk_load_writes_the_rows_put_writes(sql_url: str) -> None:
    """The bulk path (driver-level inserts, COPY on PostgreSQL) stores exactly what one
    ``put`` per resource stores — index rows, strings cut to the column width and NULs
    removed included — and leaves the caller's resources as they were."""
    long = "x" * 600 + "\x00end"
    items = [obs("o1", "p1"), obs("o2", "p2", "vital-signs"),
             {"resourceType": "Patient", "id": "p1", "name": [{"family": long}],
              "birthDate": "1970-01-01", "identifier": [{"system": "urn:s", "value": "v"}]},
             {"resourceType": "Observation", "id": "o3", "status": "final", "code": {"text": "q"},
              "valueQuantity": {"value": 1.5, "unit": "mg", "code": "mg",
                                "system": "http://unitsofmeasure.org"},
              "effectivePeriod": {"start": "2024-01-01", "end": "2024-02-01"}}]
    before = [dict(r) for r in items]
    dumps: list[list[tuple[Any, ...]]] = []
    for way in ("put", "bulk"):
        engine = make_engine(sql_url)
        repository = SqlResourceRepository(engine)
        repository.create_tables()
        with engine.begin() as conn:
            conn.execute(search_index.delete())
            conn.execute(resources.delete())
            conn.execute(history.delete())
        if way == "put":
            for item in items:
                repository.put(item)
        else:
            assert repository.bulk_load(items) == len(items)
        columns = [c for c in search_index.columns if c.name != "pk"]
        with engine.connect() as conn:
            dumps.append(sorted(tuple(r) for r in conn.execute(select(*columns))))
            assert [(r.id, r.version_id) for r in conn.execute(
                select(resources.c.id, resources.c.version_id).order_by(resources.c.id))] == [
                ("o1", 1), ("o2", 1), ("o3", 1), ("p1", 1)]
        engine.dispose()
    assert dumps[0] == dumps[1] and len(dumps[0]) > 10
    assert items == before  # no id, no meta added to what the caller passed
