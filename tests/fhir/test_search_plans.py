"""The search index on SQLite and PostgreSQL: the database plans the benchmark searches
with the composite indexes (never a scan of the resource or index table) — also on skewed
data, without, with stale or with misleading planner statistics —, sorts by id and
lastUpdated from an index, and a store's index follows the code (rebuilt when the
parameter table changes; absolute references on the server's own base count as local).
Timing is measured by bench/search_latency.py, not here."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, func, insert, inspect, select, text, update

from smartrealm.fhir.access import compartment_clause
from smartrealm.fhir.rest.loader import Item, load
from smartrealm.fhir.search.parse import parse_search
from smartrealm.fhir.search.query import AnyOf, PageQuery
from smartrealm.fhir.sql import SqlResourceRepository, planning
from smartrealm.fhir.sql import repository as repository_module
from smartrealm.fhir.sql.explain import explain
from smartrealm.fhir.sql.planning import analyzed_rows, index_rows_written
from smartrealm.fhir.sql.reindex import ensure_search_index
from smartrealm.fhir.sql.search import count_statement, page_statement
from smartrealm.fhir.sql.tables import index_state, search_index
from smartrealm.storage import make_engine

BASE = "http://127.0.0.1:8701/fhir"
CAT = "http://terminology.hl7.org/CodeSystem/observation-category"


def dataset(patients: int) -> Iterator[dict[str, Any]]:
    for n in range(patients):
        pid = f"p{n}"
        yield {"resourceType": "Patient", "id": pid, "birthDate": f"19{50 + n % 40}"}
        for k in range(30):
            yield {"resourceType": "Observation", "id": f"{pid}-o{k}", "status": "final",
                   "code": {"coding": [{"system": "http://loinc.org", "code": str(k)}]},
                   "category": [{"coding": [{"system": CAT, "code": ("laboratory",
                                                                     "vital-signs")[k % 2]}]}],
                   "subject": {"reference": f"Patient/{pid}"}}
        for k in range(2):
            yield {"resourceType": "ImagingStudy", "id": f"{pid}-i{k}", "status": "available",
                   "subject": {"reference": f"Patient/{pid}"}}


@pytest.fixture
def engine(sql_url: str) -> Iterator[Engine]:
    found = make_engine(sql_url)
    repository = SqlResourceRepository(found)
    repository.create_tables()
    repository.bulk_load(dataset(20))
    if found.dialect.name == "postgresql":
        with found.begin() as conn:  # what autovacuum does on a real store after a load
            conn.execute(text("ANALYZE"))
    yield found
    found.dispose()


def plan(engine: Engine, resource_type: str, query: list[tuple[str, str]],
         patient_scope: bool = False, count: bool = False, ordered: bool = False) -> str:
    request = parse_search(resource_type, query, base_url=BASE)
    criteria: list[Any] = list(request.criteria)
    if patient_scope:
        criteria.append(AnyOf(((compartment_clause(resource_type, "p7"),),)))
    page = PageQuery(resource_type, tuple(criteria), 20, sort=request.sort)
    statement = count_statement(page) if count else page_statement(page)
    assert statement is not None
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            # Tiny tables make a scan (and a sort) the cheapest plan; forbid them to see
            # whether an index can answer the query (and give its order) at all.
            for setting in ("enable_seqscan", *(("enable_bitmapscan", "enable_sort")
                                                 if ordered else ())):
                conn.execute(text(f"SET {setting} = off"))
        return "\n".join(explain(conn, statement))


@pytest.mark.parametrize("patient_scope", [False, True])
@pytest.mark.parametrize("count", [False, True])
def test_benchmark_searches_are_driven_by_the_reference_index(
        engine: Engine, patient_scope: bool, count: bool) -> None:
    for resource_type, query in (
            ("Observation", [("patient", "p7"), ("category", f"{CAT}|laboratory")]),
            ("ImagingStudy", [("patient", "p7")]),
            ("Observation", [("category", f"{CAT}|laboratory")]) if patient_scope else
            ("ImagingStudy", [("subject", "Patient/p7")])):
        found = plan(engine, resource_type, query, patient_scope, count)
        assert "ix_fhir_search_refs" in found, found
        for scan in ("SCAN fhir_resource", "SCAN fhir_search_index", "Seq Scan"):
            assert scan not in found, found


def test_token_criteria_use_the_token_index(engine: Engine) -> None:
    found = plan(engine, "Observation", [("code", "http://loinc.org|7")])
    assert "ix_fhir_search_token" in found and "Seq Scan" not in found, found


def test_sorting_by_id_and_last_updated_reads_an_index(engine: Engine) -> None:
    for sort, index in (("_lastUpdated", "ix_fhir_resource_updated"),
                        ("-_lastUpdated", "ix_fhir_resource_updated"),
                        ("_id", "fhir_resource"), ("-_id", "fhir_resource")):
        found = plan(engine, "Patient", [("_sort", sort)], ordered=True)
        assert index in found, found
        assert "TEMP B-TREE" not in found and "Sort Key" not in found, (sort, found)


def test_only_relative_references_place_in_a_compartment(sql_url: str) -> None:
    """Decision (fhir/search/indexing.py): an absolute reference is foreign, even on this server's
    base, for search as for writes (fhir/access.py)."""
    engine = make_engine(sql_url)
    repository = SqlResourceRepository(engine)
    repository.create_tables()
    repository.bulk_load([
        {"resourceType": "Observation", "id": "own", "status": "final", "code": {"text": "x"},
         "subject": {"reference": f"{BASE}/Patient/p1"}},
        {"resourceType": "Observation", "id": "foreign", "status": "final",
         "code": {"text": "x"}, "subject": {"reference": "http://other/fhir/Patient/p1"}},
        {"resourceType": "Observation", "id": "relative", "status": "final",
         "code": {"text": "x"}, "subject": {"reference": "Patient/p1"}}])
    compartment = AnyOf(((compartment_clause("Observation", "p1"),),))
    found = repository.page(PageQuery("Observation", (compartment,), 10))
    assert [r["id"] for r in found.resources] == ["relative"]
    by_url = parse_search("Observation", [("subject", "http://other/fhir/Patient/p1")],
                          base_url=BASE)
    found = repository.page(PageQuery("Observation", by_url.criteria, 10))
    assert [r["id"] for r in found.resources] == ["foreign"]
    engine.dispose()


def test_index_is_rebuilt_when_its_definition_changes(sql_url: str) -> None:
    engine = make_engine(sql_url)
    repository = SqlResourceRepository(engine)
    repository.create_tables()
    repository.bulk_load(dataset(2))
    with engine.begin() as conn:
        before = conn.execute(select(search_index.c.param)).all()
        conn.execute(update(index_state).values(version="old"))
        conn.execute(search_index.delete().where(search_index.c.param == "category"))
        conn.execute(text("CREATE INDEX ix_fhir_search_value ON fhir_search_index (value)"))
    assert ensure_search_index(engine) is True
    names = {i["name"] for i in inspect(engine).get_indexes("fhir_search_index")}
    assert "ix_fhir_search_value" not in names and "ix_fhir_search_refs" in names
    with engine.connect() as conn:
        assert sorted(conn.execute(select(search_index.c.param)).all()) == sorted(before)
        assert conn.execute(select(index_state.c.version)).scalar_one() != "old"
    # ... and a second start with the same definition changes nothing.
    with engine.begin() as conn:
        conn.execute(insert(search_index).values(resource_type="Patient", resource_id="x",
                                                 param="marker"))
    SqlResourceRepository(engine).create_tables()
    with engine.connect() as conn:
        markers = conn.execute(select(search_index).where(search_index.c.param == "marker"))
        assert len(markers.all()) == 1
    engine.dispose()


# --------------------------------------------------------------------------- skewed data
# A store like the realm's sample data at scale: most Observations are vital signs, so the
# category index finds half the table for one value, and only the patient is selective.
# The plans must not depend on the planner's statistics being there, fresh or truthful
# (sql/planning.py).

SKEWED_PATIENTS = 300
VITALS = [("8867-4", "vital-signs"), ("8480-6", "vital-signs"), ("9279-1", "vital-signs"),
          ("8310-5", "vital-signs"), ("718-7", "laboratory")]


def skewed(patients: int) -> Iterator[dict[str, Any]]:
    for n in range(patients):
        pid = f"p{n}"
        yield {"resourceType": "Patient", "id": pid}
        for k in range(4):
            yield {"resourceType": "Encounter", "id": f"{pid}-e{k}", "status": "finished",
                   "class": {"code": "AMB"}, "subject": {"reference": f"Patient/{pid}"},
                   "period": {"start": f"20{10 + (n * 7 + k * 3) % 15}-0{1 + k}-15T09:00:00Z"}}
        for k in range(25):
            code, category = VITALS[k % len(VITALS)]
            yield {"resourceType": "Observation", "id": f"{pid}-o{k}", "status": "final",
                   "category": [{"coding": [{"system": CAT, "code": category}]}],
                   "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
                   "subject": {"reference": f"Patient/{pid}"},
                   "encounter": {"reference": f"Encounter/{pid}-e{k % 4}"},
                   "effectiveDateTime": f"2024-0{1 + k % 9}-1{k % 10}T08:00:00Z"}


USER_SEARCHES = (
    ("Observation", [("patient", "p7"), ("category", "vital-signs")], "ix_fhir_search_res"),
    ("Observation", [("patient", "p7"), ("category", f"{CAT}|vital-signs")],
     "ix_fhir_search_res"),
    ("Observation", [("patient", "p7"), ("code", "http://loinc.org|8867-4")],
     "ix_fhir_search_res"),
    ("Encounter", [("patient", "p7"), ("_sort", "-date")], "ix_fhir_search_res"),
)


@pytest.fixture
def skewed_store(sql_url: str) -> Iterator[tuple[str, SqlResourceRepository]]:
    engine = make_engine(sql_url)
    repository = SqlResourceRepository(engine)
    repository.create_tables()
    repository.bulk_load(skewed(SKEWED_PATIENTS))  # nothing else: no manual ANALYZE
    yield sql_url, repository
    engine.dispose()


def real_plan(url: str, resource_type: str, query: list[tuple[str, str]],
              count: bool = False) -> str:
    """The plan the database picks by itself (no planner settings), on a fresh
    connection (SQLite reads its statistics when a connection opens)."""
    request = parse_search(resource_type, query, base_url=BASE)
    page = PageQuery(resource_type, tuple(request.criteria), 20, sort=request.sort)
    statement = count_statement(page) if count else page_statement(page)
    assert statement is not None
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return "\n".join(explain(conn, statement))
    finally:
        engine.dispose()


def assert_patient_driven(url: str) -> None:
    for resource_type, query, probe in USER_SEARCHES:
        for count in (False, True):
            found = real_plan(url, resource_type, query, count)
            assert "ix_fhir_search_refs" in found, (query, found)  # the patient drives
            lines = found.splitlines()
            for scan in ("SCAN fhir_resource", "SCAN fhir_search_index", "Seq Scan"):
                assert not any(scan in line for line in lines), (query, found)
            if not count or (len(query) > 1 and query[1][0] != "_sort"):
                # every other criterion, and the sort key, is read by resource
                assert probe in found, (query, found)
                for other in ("ix_fhir_search_token", "ix_fhir_search_date"):
                    assert other not in found, (query, found)


def test_a_bulk_load_leaves_statistics_behind(
        skewed_store: tuple[str, SqlResourceRepository]) -> None:
    engine = make_engine(skewed_store[0])
    with engine.connect() as conn:
        assert analyzed_rows(conn) is not None
    engine.dispose()


def test_user_searches_are_patient_driven_after_a_load(
        skewed_store: tuple[str, SqlResourceRepository]) -> None:
    assert_patient_driven(skewed_store[0])


def _sqlite_stats(url: str, rows: list[tuple[str, str, str]] | None) -> None:
    """Replace SQLite's statistics: none at all, or the rows given."""
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM sqlite_stat1")
        for row in rows or []:
            conn.exec_driver_sql("INSERT INTO sqlite_stat1 VALUES (?, ?, ?)", row)
    engine.dispose()


@pytest.mark.parametrize("stats", ["none", "category looks selective"])
def test_sqlite_plans_do_not_depend_on_statistics(tmp_path: Any, stats: str) -> None:
    """Without statistics SQLite probes a criterion through the token index (all of the
    category's rows for every candidate); with statistics that make the category look
    rare, too. The probe is pinned to the per-resource index (sql/planning.py)."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    engine = make_engine(url)
    repository = SqlResourceRepository(engine)
    repository.create_tables()
    repository.bulk_load(skewed(SKEWED_PATIENTS))
    engine.dispose()
    lies = [("fhir_search_index", "ix_fhir_search_token", "100000 2 2 1 1 1"),
            ("fhir_search_index", "ix_fhir_search_date", "100000 2 2 1 1 1"),
            ("fhir_search_index", "ix_fhir_search_res", "100000 50000 50000 50000"),
            ("fhir_search_index", "ix_fhir_search_refs", "100000 50000 50000 20 20 1")]
    _sqlite_stats(url, None if stats == "none" else lies)
    assert_patient_driven(url)


def test_statistics_are_gathered_when_a_store_has_none(tmp_path: Any) -> None:
    """A store loaded by an earlier version (no statistics) gets them at start-up."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    engine = make_engine(url)
    SqlResourceRepository(engine).create_tables()
    SqlResourceRepository(engine).bulk_load(skewed(SKEWED_PATIENTS))
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE sqlite_stat1")
        assert analyzed_rows(conn) is None
    SqlResourceRepository(engine).create_tables()  # what `smartrealm serve` does first
    with engine.connect() as conn:
        assert analyzed_rows(conn) == index_rows_written(conn)
    engine.dispose()


def test_statistics_follow_the_data_as_it_grows(sql_url: str,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """After a load that grew the store by a fifth, and after API writes that more than
    doubled it, the statistics describe the store as it is now."""
    monkeypatch.setattr(planning, "MIN_ROWS", 100)
    monkeypatch.setattr(repository_module, "WRITES_PER_CHECK", 10)
    engine = make_engine(sql_url)
    repository = SqlResourceRepository(engine)
    repository.create_tables()
    people = list(skewed(60))  # 30 resources a person
    repository.bulk_load(people[:600])
    with engine.connect() as conn:
        first = analyzed_rows(conn)
    assert first is not None
    report = load(repository, [Item(f"line {i}", r) for i, r in enumerate(people[600:720])],
                  ("Patient", "Observation", "Encounter"), workers=0)
    assert report.total == 120 and not report.errors
    with engine.connect() as conn:
        after_load = analyzed_rows(conn)
        assert after_load == index_rows_written(conn) > first, (first, after_load)
    for resource in people[720:]:
        repository.put(resource)
    with engine.connect() as conn:
        grown = analyzed_rows(conn)
        live = conn.execute(select(func.count()).select_from(search_index)).scalar_one()
    # Gathered again while the puts doubled the store, and never more than the growth
    # factor behind it. (The growth measure is the index key, which on PostgreSQL also
    # counts sequence values never used, so there a refresh may come earlier, not later.)
    assert grown is not None and grown > after_load, (after_load, grown)
    assert live <= planning.WHILE_GROWING * grown, (live, grown)
    engine.dispose()
