"""Tables of one FHIR server's store. Each realm component has its own SQLite file or
PostgreSQL schema (RealmConfig.database_url_for), so the names need no server prefix."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

# The current version of every resource.
resources = Table(
    "fhir_resource", metadata,
    Column("resource_type", String(64), primary_key=True),
    Column("id", String(64), primary_key=True),
    Column("version_id", Integer, nullable=False),
    Column("last_updated", String(40), nullable=False),
    Column("content", Text, nullable=False),
    Column("deleted", Boolean, nullable=False, default=False),
    # _sort=_lastUpdated and _lastUpdated criteria (the primary key serves _id).
    Index("ix_fhir_resource_updated", "resource_type", "last_updated", "id"),
)

# Every version ever written (vread and history build on it).
history = Table(
    "fhir_resource_history", metadata,
    Column("resource_type", String(64), primary_key=True),
    Column("id", String(64), primary_key=True),
    Column("version_id", Integer, primary_key=True),
    Column("last_updated", String(40), nullable=False),
    Column("content", Text, nullable=False),
    Column("deleted", Boolean, nullable=False),
    # Type history, newest first (fhir/sql/versions.py).
    Index("ix_fhir_history_updated", "resource_type", "last_updated"),
)

# One row per searchable value of the current version (see fhir/search/indexing.py). The
# composite indexes end in resource_id so a criterion is answered from the index alone
# (fhir/sql/predicates.py drives a search from one and probes the others by resource).
search_index = Table(
    "fhir_search_index", metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("resource_type", String(64), nullable=False),
    Column("resource_id", String(64), nullable=False),
    Column("param", String(64), nullable=False),
    Column("system", String(512)),
    Column("value", String(512)),
    Column("ref_type", String(64)),
    Column("ref_id", String(64)),
    Column("low", String(32)),       # date range [low, high), fhir/search/dates.py
    Column("high", String(32)),
    Column("number", Float),         # quantity value
    Column("exact", String(512)),    # string as written (:exact)
    Index("ix_fhir_search_token", "resource_type", "param", "value", "system", "resource_id"),
    Index("ix_fhir_search_refs", "resource_type", "param", "ref_id", "ref_type",
          "resource_id"),
    Index("ix_fhir_search_date", "resource_type", "param", "low", "high", "resource_id"),
    Index("ix_fhir_search_res", "resource_type", "resource_id", "param"),
)

# The columns of an index row as fhir/sql/reindex.py builds it: the resource, then the
# fields of fhir/search/indexing.py's IndexEntry in their order (the key ``pk`` is generated).
INDEX_COLUMNS = tuple(c.name for c in search_index.columns if c.name != "pk")

# The version of the index definition the rows were built with (fhir/sql/reindex.py).
index_state = Table(
    "fhir_search_index_state", metadata,
    Column("id", Integer, primary_key=True),
    Column("version", String(64), nullable=False),
)
