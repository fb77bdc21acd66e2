"""Bearer-token validation for resource servers. Knows no FHIR and no web framework."""

from .context import AccessContext, access_context, own_authorization_details
from .errors import KeySetUnavailable, TokenRejected
from .introspection import (
    IntrospectionUnavailable,
    IntrospectionValidator,
    TokenChecker,
    checker_for_server,
)
from .jwks import JwksCache
from .validator import ALLOWED_ALGORITHMS, TokenValidator

__all__ = [
    "ALLOWED_ALGORITHMS",
    "AccessContext",
    "IntrospectionUnavailable",
    "IntrospectionValidator",
    "JwksCache",
    "KeySetUnavailable",
    "TokenChecker",
    "TokenRejected",
    "TokenValidator",
    "access_context",
    "checker_for_server",
    "own_authorization_details",
]
