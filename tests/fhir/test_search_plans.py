"""The search index on SQLite and PostgreSQL: the database plans the benchmark searches
with the composite indexes (never a scan of the resource or index table), sorts by id and
lastUpdated from an index, and a store's index follows the code (rebuilt when the
parameter table changes; absolute references on the server's own base count as local).
Timing is measured by bench/search_latency.py, not here."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, insert, inspect, select, text, update

from smartrealm.fhir.access import compartment_clause
from smartrealm.fhir.query import AnyOf, PageQuery
from smartrealm.fhir.search import parse_search
from smartrealm.fhir.sql import SqlResourceRepository
from smartrealm.fhir.sql.explain import explain
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
    """Decision (fhir/indexing.py): an absolute reference is foreign, even on this server's
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
