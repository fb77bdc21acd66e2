"""HTTP Basic credentials: the one parser (and encoder) every endpoint uses.

RFC 7617 §2: ``Basic base64(user-id ":" password)``; the user-id cannot contain a colon, so
the pair splits at the *first* colon. Two callers differ only in what the parts are:

* OAuth client authentication (token, introspection, revocation, the FHIR servers' own
  ``rs:`` clients, the patient-index reports): RFC 6749 §2.3.1 has the client form-encode
  ``client_id`` and ``client_secret`` (application/x-www-form-urlencoded) before Basic, so
  :func:`client_credentials` decodes both parts — which is how an ``rs:<id>`` client_id
  carries its colon (``rs%3Aehr``). A plain ASCII id and secret decode to themselves, so
  clients that follow SMART's unencoded example work as long as their id has no colon.
* A realm user at the launch API: RFC 7617 alone, :func:`parse_basic` — the password is
  taken exactly as sent (a ``%`` or ``+`` in it is a character, not an escape).

Anything malformed (another scheme, bad base64, not UTF-8, no colon, an empty user-id) is
``None``: the caller answers with its own error (``invalid_client`` or a 401)."""

from __future__ import annotations

import base64
import binascii
from urllib.parse import quote_plus, unquote_plus


def parse_basic(authorization: str | None) -> tuple[str, str] | None:
    """(user-id, password) of an ``Authorization: Basic …`` value, split at the first colon;
    None when the value is not well-formed Basic."""
    scheme, _, value = (authorization or "").strip().partition(" ")
    if scheme.lower() != "basic" or not value.strip():
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep and user else None


def client_credentials(authorization: str | None) -> tuple[str, str] | None:
    """(client_id, client_secret) of a Basic value, each part form-decoded (RFC 6749
    §2.3.1); None when malformed or when the decoded client_id is empty."""
    pair = parse_basic(authorization)
    if pair is None:
        return None
    client_id, secret = unquote_plus(pair[0]), unquote_plus(pair[1])
    return (client_id, secret) if client_id else None


def encode_client_credentials(client_id: str, client_secret: str) -> str:
    """The ``Authorization`` value for client_secret_basic: each part form-encoded, then
    base64 (RFC 6749 §2.3.1)."""
    pair = f"{quote_plus(client_id)}:{quote_plus(client_secret)}".encode()
    return "Basic " + base64.b64encode(pair).decode("ascii")
