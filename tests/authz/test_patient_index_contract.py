"""The patient index store (authz/patient_index.py) on every backend: SQLite, a real
PostgreSQL and in memory (``contract_stores``)."""

from __future__ import annotations

import pytest

from smartrealm.authz.patient_index import BATCH, PatientIndex, PatientLink
from smartrealm.authz.records import Stores
from smartrealm.authz.stores.sql_patient_index import SqlPatientIndex
from smartrealm.storage import make_engine


@pytest.fixture
def index(contract_stores: Stores) -> PatientIndex:
    return contract_stores.patient_index


def test_link_replaces_a_records_previous_person(index: PatientIndex) -> None:
    assert index.link([PatientLink("ehr", "p1", "M1", "load", 1),
                       PatientLink("lab", "l1", "M1", "load", 1)]) == 2
    assert index.person_of("ehr", "p1") == "M1"
    index.link([PatientLink("ehr", "p1", "M2", "operator", 2)])
    assert index.person_of("ehr", "p1") == "M2"
    assert [(k.server_id, k.patient_id) for k in index.records_of("M1")] == [("lab", "l1")]
    assert index.records_of("M2") == [PatientLink("ehr", "p1", "M2", "operator", 2)]
    assert index.count() == 2 and index.count("ehr") == 1


def test_the_last_link_of_a_record_in_one_call_wins(index: PatientIndex) -> None:
    index.link([PatientLink("ehr", "p1", "M1"), PatientLink("ehr", "p1", "M2")])
    assert index.person_of("ehr", "p1") == "M2" and index.count() == 1


def test_unlink(index: PatientIndex) -> None:
    index.link([PatientLink("ehr", "p1", "M1")])
    assert index.unlink("ehr", "p1") is True
    assert index.unlink("ehr", "p1") is False
    assert index.person_of("ehr", "p1") is None and index.records_of("M1") == []


def test_a_server_id_does_not_leak_into_another(index: PatientIndex) -> None:
    index.link([PatientLink("ehr", "p1", "M1"), PatientLink("lab", "p1", "M9")])
    assert index.person_of("ehr", "p1") == "M1" and index.person_of("lab", "p1") == "M9"
    assert index.person_of("imaging", "p1") is None


def test_replace_server_touches_only_that_server(index: PatientIndex) -> None:
    index.link([PatientLink("ehr", "p1", "M1"), PatientLink("lab", "l1", "M1"),
                PatientLink("lab", "l2", "M2")])
    assert index.replace_server("lab", [PatientLink("lab", "l3", "M1", "rebuild")]) == 1
    assert [(k.server_id, k.patient_id) for k in index.records_of("M1")] == [
        ("ehr", "p1"), ("lab", "l3")]
    assert index.records_of("M2") == []
    with pytest.raises(ValueError, match="lab"):
        index.replace_server("lab", [PatientLink("ehr", "p9", "M1")])


def test_many_links_span_batches_and_page(index: PatientIndex) -> None:
    many = [PatientLink("lab", f"l{n:05d}", f"M{n:05d}", "load", 1)
            for n in range(2 * BATCH + 7)]
    assert index.link(many) == len(many)
    assert index.link(many[:BATCH + 1]) == BATCH + 1  # again: replaced, not duplicated
    assert index.count("lab") == len(many)
    page = index.on_server("lab", limit=10, offset=BATCH)
    assert [k.patient_id for k in page] == [f"l{n:05d}" for n in range(BATCH, BATCH + 10)]
    assert index.on_server("ehr", limit=10) == []
    assert index.replace_server("lab", many) == len(many)
    assert index.count() == len(many)


def test_the_table_is_created_once(sql_url: str) -> None:
    engine = make_engine(sql_url)
    SqlPatientIndex(engine).link([PatientLink("ehr", "p1", "M1")])
    assert SqlPatientIndex(engine).person_of("ehr", "p1") == "M1"  # kept on reopening
