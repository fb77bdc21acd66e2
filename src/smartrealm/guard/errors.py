"""Why a bearer token was refused. The guard knows no HTTP framework: the layer above turns
these into 401 (RFC 6750 §3.1) or 503 responses."""

from __future__ import annotations


class TokenRejected(Exception):  # noqa: N818 - the name the whole team uses
    """The request carries no usable access token (RFC 6750 §3.1).

    ``token_presented`` is False when no token was sent at all: RFC 6750 §3.1 says the
    ``WWW-Authenticate`` challenge then carries no ``error`` attribute. ``kind`` is one of
    ``KINDS``: a bounded name for metrics, where ``reason`` is text for the client."""

    KINDS = ("missing", "malformed", "signature", "expired", "issuer", "audience",
             "inactive", "claims")

    def __init__(self, reason: str, *, token_presented: bool = True,
                 kind: str = "claims") -> None:
        super().__init__(reason)
        self.reason = reason
        self.token_presented = token_presented
        self.kind = "missing" if not token_presented else kind

    @property
    def error(self) -> str | None:
        """The RFC 6750 error code for the challenge, or None when no token was sent."""
        return "invalid_token" if self.token_presented else None


class KeySetUnavailable(Exception):  # noqa: N818 - reads as a state, like TokenRejected
    """The authorization server's JWKS could not be fetched or parsed. Not the client's
    fault, so the FHIR layer answers 503 rather than 401."""
