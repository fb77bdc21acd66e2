"""The database's plan for a search statement (for the plan tests and the benchmark):
``EXPLAIN QUERY PLAN`` on SQLite, ``EXPLAIN`` on PostgreSQL, one line per plan step."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Select


def explain(conn: Connection, statement: Select[Any], *, analyze: bool = False) -> list[str]:
    dialect = conn.dialect
    sql = str(statement.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
    if dialect.name == "sqlite":
        return [str(row[-1]) for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql)]
    prefix = "EXPLAIN (ANALYZE, BUFFERS) " if analyze else "EXPLAIN "
    return [str(row[0]) for row in conn.exec_driver_sql(prefix + sql)]
