"""PKCE (RFC 7636) with S256 only: SMART §3.4 says servers SHALL NOT support ``plain``."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

# RFC 7636 §4.1: code_verifier = 43*128unreserved
_VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
# A S256 challenge is BASE64URL-no-padding of a SHA-256 digest: exactly 43 characters.
_CHALLENGE = re.compile(r"^[A-Za-z0-9\-_]{43}$")
SUPPORTED_METHODS = ("S256",)


def is_valid_verifier(verifier: str) -> bool:
    return _VERIFIER.fullmatch(verifier) is not None


def is_valid_challenge(challenge: str) -> bool:
    return _CHALLENGE.fullmatch(challenge) is not None


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def verify(verifier: str, challenge: str) -> bool:
    """True only for a grammatical verifier whose S256 equals ``challenge``. A verifier equal
    to the challenge (a ``plain`` attempt) fails because its hash differs. Constant-time
    comparison so the answer time does not leak how much of the challenge matched."""
    if not is_valid_verifier(verifier) or not is_valid_challenge(challenge):
        return False
    return hmac.compare_digest(s256(verifier), challenge)


def new_verifier() -> str:
    """A 43-character verifier with 256 bits of entropy (for clients and tests)."""
    return secrets.token_urlsafe(32)
