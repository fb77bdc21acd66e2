"""Media types the realm speaks."""

from __future__ import annotations

FHIR_JSON = "application/fhir+json"  # FHIR R4 http.html#mime-type
