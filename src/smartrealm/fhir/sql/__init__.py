"""SQL (SQLite / PostgreSQL) storage of FHIR resources."""

from .repository import SqlResourceRepository

__all__ = ["SqlResourceRepository"]
