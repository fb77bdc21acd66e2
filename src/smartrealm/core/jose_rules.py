"""JOSE header rules shared by every place that checks a JWT: the AS (its own tokens, client
assertions) and the resource servers' guard. Each caller answers with its own error."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# RFC 9068 §2.1: access tokens carry typ "at+jwt"; §4: "application/at+jwt" is the same
# media type spelled out, and media types compare case-insensitively.
ACCESS_TOKEN_TYP = "at+jwt"
_ACCESS_TOKEN_TYPES = frozenset({ACCESS_TOKEN_TYP, "application/" + ACCESS_TOKEN_TYP})


def is_access_token_typ(typ: Any) -> bool:
    return isinstance(typ, str) and typ.lower() in _ACCESS_TOKEN_TYPES


def has_critical_extensions(header: Mapping[str, Any]) -> bool:
    """RFC 7515 §4.1.11: a recipient MUST refuse a JWS whose ``crit`` lists an extension it
    does not understand. The realm understands none and never sets ``crit``, so any
    ``crit`` at all is refused (an empty list or registered names there are producer errors
    the RFC lets us refuse too) — checked before the signature, so the outcome never depends
    on which extensions the JOSE library happens to know."""
    return "crit" in header
