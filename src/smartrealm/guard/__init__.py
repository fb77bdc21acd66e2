"""Bearer-token validation for resource servers. Knows no FHIR and no web framework."""

from .context import AccessContext, access_context, own_authorization_details
from .errors import KeySetUnavailable, TokenRejected
from .jwks import JwksCache
from .validator import ALLOWED_ALGORITHMS, TokenValidator

__all__ = [
    "ALLOWED_ALGORITHMS",
    "AccessContext",
    "JwksCache",
    "KeySetUnavailable",
    "TokenRejected",
    "TokenValidator",
    "access_context",
    "own_authorization_details",
]
