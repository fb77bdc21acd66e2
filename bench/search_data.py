"""Data for bench/search_inprocess.py and bench/memory_under_load.py: the synthetic
dataset, loading it with the repository's bulk loader, and copying an already loaded store
to another backend."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Table, select

from smartrealm.fhir.sql import SqlResourceRepository
from smartrealm.fhir.sql.tables import index_state, resources, search_index
from smartrealm.storage import make_engine

PER_PATIENT = 100
CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"


def synthetic(patients: int) -> Iterator[dict[str, Any]]:
    for n in range(patients):
        pid = f"pt{n:07d}"
        subject = {"reference": f"Patient/{pid}"}
        yield {"resourceType": "Patient", "id": pid, "gender": "female" if n % 2 else "male",
               "birthDate": f"{1930 + n % 80}-0{1 + n % 9}-1{n % 10}",
               "identifier": [{"system": "urn:mrn", "value": f"MRN{n:07d}"}],
               "name": [{"family": f"Family{n % 5000}", "given": [f"Given{n % 700}"]}]}
        for k in range(85):
            category = ("laboratory" if k % 10 < 6 else
                        "vital-signs" if k % 10 < 9 else "social-history")
            yield {"resourceType": "Observation", "id": f"{pid}-o{k}", "status": "final",
                   "category": [{"coding": [{"system": CATEGORY, "code": category}]}],
                   "code": {"coding": [{"system": "http://loinc.org", "code": f"{k % 40}-1"}]},
                   "subject": subject, "effectiveDateTime": f"2024-{1 + k % 12:02d}-15T08:00:00Z",
                   "valueQuantity": {"value": k, "unit": "mg", "system": "http://unitsofmeasure.org",
                                     "code": "mg"}}
        for k in range(3):
            yield {"resourceType": "ImagingStudy", "id": f"{pid}-i{k}", "status": "available",
                   "subject": subject, "started": f"2023-0{1 + k}-10T10:00:00Z",
                   "modality": [{"system": "http://dicom.nema.org/resources/ontology/DCM",
                                 "code": ("CT", "MR", "DX")[k]}]}
        for k in range(4):
            yield {"resourceType": "DiagnosticReport", "id": f"{pid}-r{k}", "status": "final",
                   "code": {"coding": [{"system": "http://loinc.org", "code": "58410-2"}]},
                   "subject": subject, "effectiveDateTime": f"2024-0{1 + k}-15"}
            yield {"resourceType": "Encounter", "id": f"{pid}-e{k}", "status": "finished",
                   "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                             "code": "AMB"}, "subject": subject,
                   "period": {"start": f"2024-0{1 + k}-15T09:00:00Z"}}
        for k in range(3):
            yield {"resourceType": "Condition", "id": f"{pid}-c{k}", "subject": subject,
                   "code": {"coding": [{"system": "http://snomed.info/sct", "code": f"{k}00"}]}}


def load(repository: SqlResourceRepository, total: int, batch: int) -> float:
    """Bulk-load ``total`` resources; returns the rate (resources/s)."""
    started = time.perf_counter()
    source = synthetic(max(1, total // PER_PATIENT))
    written = 0
    while written < total:
        chunk = [r for _, r in zip(range(min(batch, total - written)), source, strict=False)]
        if not chunk:
            break
        written += repository.bulk_load(chunk)
        rate = written / (time.perf_counter() - started)
        print(f"\r  loaded {written:,}/{total:,} ({rate:,.0f}/s)", end="", flush=True)
    print()
    return written / (time.perf_counter() - started)


def copy_store(source_url: str, target_url: str, batch: int = 20_000) -> float:
    """Copy the resources and their search-index rows (the rows bulk_load wrote, so the
    very same index) from one store to another — PostgreSQL COPY when the target is one;
    the history table is left out: no search reads it. Returns rows/s."""
    source, target = make_engine(source_url), make_engine(target_url)
    SqlResourceRepository(target).create_tables()
    started, copied = time.perf_counter(), 0
    for table in (resources, search_index, index_state):
        columns = [c.name for c in table.columns if not (table is search_index
                                                         and c.name == "pk")]
        with source.connect() as read, target.begin() as write:
            if table is index_state:
                write.execute(table.delete())
            rows = read.execute(select(*(table.c[c] for c in columns))).yield_per(batch)
            copied += _write(write, table, columns, rows)
            print(f"\r  copied {copied:,} rows", end="", flush=True)
    print()
    source.dispose()
    target.dispose()
    return copied / (time.perf_counter() - started)


def _write(conn: Any, table: Table, columns: list[str], rows: Any) -> int:
    count = 0
    if conn.dialect.name == "postgresql":
        cursor = conn.connection.driver_connection.cursor()
        with cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(tuple(row))
                count += 1
        return count
    chunk: list[dict[str, Any]] = []
    for row in rows:
        chunk.append(dict(zip(columns, row, strict=True)))
        count += 1
        if len(chunk) >= 10_000:
            conn.execute(table.insert(), chunk)
            chunk = []
    if chunk:
        conn.execute(table.insert(), chunk)
    return count
