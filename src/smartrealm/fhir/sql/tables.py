"""Tables of one FHIR server's store. Each realm component has its own SQLite file or
PostgreSQL schema (RealmConfig.database_url_for), so the names need no server prefix."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
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
)

# One row per searchable value of the current version (see fhir/indexing.py).
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
    Index("ix_fhir_search_value", "resource_type", "param", "value"),
    Index("ix_fhir_search_ref", "resource_type", "param", "ref_id"),
    Index("ix_fhir_search_owner", "resource_type", "resource_id"),
)
