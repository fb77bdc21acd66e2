"""SQL (SQLite / PostgreSQL) storage of FHIR resources."""

from smartrealm.fhir.sql.repository import SqlResourceRepository

__all__ = ["SqlResourceRepository"]
