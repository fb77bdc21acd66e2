"""Keeping the database's plan for a search index-driven, whatever the data looks like.

Two things decide whether ``Observation?patient=X&category=vital-signs`` reads X's thirty
observations or half of the store:

* **Probes go by resource.** A search is driven by one criterion (predicates.py) and every
  other criterion — and a sort by a search parameter (search.py) — is a correlated probe
  ``WHERE resource_type = T AND resource_id = <this resource> AND param = P AND value …``.
  Only ``ix_fhir_search_res (resource_type, resource_id, param)`` answers that in a few
  rows; but ``ix_fhir_search_token (resource_type, param, value, …)`` matches as many
  leading columns and covers the probe, so SQLite without statistics (or with stale ones)
  picks it and walks every Observation with that category for each candidate (seen: 0.7 s
  a search at 1M resources). Its unary ``+`` trick is not enough: with ``+param`` the
  planner still prefers a covering scan of the token index by resource type. So
  :func:`by_resource` pins the probe to the index with SQLite's ``INDEXED BY``
  (https://sqlite.org/lang_indexedby.html), whatever the statistics say. PostgreSQL has
  no hints and needs none: it costs the probe from statistics, which the next point keeps
  current (tests/fhir/test_search_plans.py checks both).
* **Statistics exist and follow the data.** :func:`refresh_statistics` runs ``ANALYZE``
  when the search index has grown by a factor since the statistics were gathered (or has
  none yet): after a bulk load (PostgreSQL's autovacuum comes minutes later, SQLite has
  none), at start-up, and as API writes add up (repository.py). SQLite's
  ``analysis_limit`` is not used: it reads the first rows of each index, which all share
  one resource type and parameter, and so records the patient reference as unselective —
  worse than no statistics.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Select, Table, func, select
from sqlalchemy.ext.compiler import compiles

from smartrealm.fhir.sql.tables import search_index

BY_RESOURCE = next(i for i in search_index.indexes if i.name == "ix_fhir_search_res")

MIN_ROWS = 10_000  # below this, any plan is fast and statistics are not worth gathering
# Refresh once the index holds this many times the rows it held at the last ANALYZE.
AFTER_LOAD = 1.1
WHILE_GROWING = 2.0


def by_resource(probe: Select[Any]) -> Select[Any]:
    """A per-resource probe of the search index, read through ``ix_fhir_search_res``."""
    return probe.with_hint(search_index, f"INDEXED BY {BY_RESOURCE.name}", "sqlite")


@compiles(Table, "sqlite")
def _table_with_hint(table: Table, compiler: Any, **kw: Any) -> str:
    """SQLAlchemy's SQLite dialect drops ``with_hint`` text; SQLite takes a table hint
    right after the table's name in FROM (``INDEXED BY``), so it is written there."""
    text = str(compiler.visit_table(table, **kw))
    hint = (kw.get("fromhints") or {}).get(table)
    return f"{text} {hint}" if hint else text


def index_rows_written(conn: Connection) -> int:
    """How many index rows the store has written (the key only grows): a size measure that
    costs one index lookup, where ``count(*)`` reads the whole table."""
    return int(conn.execute(select(func.coalesce(func.max(search_index.c.pk), 0))).scalar_one())


def analyzed_rows(conn: Connection) -> int | None:
    """The index's row count when statistics were last gathered; None if never."""
    if conn.dialect.name == "sqlite":
        if conn.exec_driver_sql("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'"
                                ).first() is None:
            return None
        row = conn.exec_driver_sql("SELECT stat FROM sqlite_stat1 WHERE tbl = "
                                   "'fhir_search_index' LIMIT 1").first()
        return int(str(row[0]).split()[0]) if row is not None else None
    tuples = conn.exec_driver_sql("SELECT reltuples FROM pg_class WHERE oid = "
                                  "'fhir_search_index'::regclass").scalar_one()
    # -1 (PostgreSQL 14+) or 0 before: never analyzed
    return int(tuples) if tuples is not None and tuples > 0 else None


def refresh_statistics(conn: Connection, growth: float = AFTER_LOAD) -> bool:
    """``ANALYZE`` if the search index holds ``growth`` times the rows it held at the last
    one (or was never analyzed and is no longer tiny); True if it ran."""
    rows = index_rows_written(conn)
    if rows < MIN_ROWS:
        return False
    before = analyzed_rows(conn)
    if before is not None and rows < before * growth:
        return False
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("ANALYZE")
    else:
        conn.exec_driver_sql("ANALYZE fhir_resource, fhir_resource_history, fhir_search_index")
    return True
