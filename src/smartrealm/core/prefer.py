"""The ``Prefer`` request header (RFC 7240), the one parser of it.

FHIR uses ``Prefer: handling=strict`` (R4 http.html#parameters, RFC 7240 §4.4) to ask that an
unknown or unsupported search parameter be an error instead of being ignored. Preferences
are separated by commas, parameters of one preference by semicolons; names are
case-insensitive (RFC 7240 §2) and so, for this token, is the value."""

from __future__ import annotations


def prefers_strict_handling(prefer: str | None) -> bool:
    """True when the header holds the ``handling=strict`` preference."""
    if not prefer:
        return False
    for preference in prefer.split(","):
        name, _, value = preference.split(";", 1)[0].partition("=")
        if name.strip().lower() == "handling" and value.strip().strip('"').lower() == "strict":
            return True
    return False
