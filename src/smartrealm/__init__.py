"""smartrealm: one SMART on FHIR authorization server for a realm of FHIR servers."""

__version__ = "0.1.0"
