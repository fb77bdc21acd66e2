"""Which FHIR interactions a server answers, per profile, and the SMART permission letter
each one needs (spec §5.1). The REST routes, the CapabilityStatement, ``scopes_supported``
and the AS's scope negotiation (``oauth.negotiate``) all read this table, so what a server
advertises, what the AS grants for it and what it answers cannot disagree.

Decision (documented in docs/behaviour.md "Writing"): the EHR and general-purpose
("empty") profiles are read-write (``cruds``); the imaging and lab profiles model
departmental systems whose records come from their own workflow (modalities, analysers) and
enter with ``smartrealm load``, so over the API they are read-only (``rs``): a write there is
405 and the AS never grants ``c``/``u``/``d`` for them."""

from __future__ import annotations

# SMART §5.1: c = create; r = read, vread, instance history; u = update (and update-as-
# create, "upsert"); d = delete; s = type search, type history, system history.
LETTER_OF: dict[str, str] = {
    "create": "c",
    "read": "r",
    "vread": "r",
    "history-instance": "r",
    "update": "u",
    "delete": "d",
    "search-type": "s",
    "history-type": "s",
    "history-system": "s",
}
WRITE_LETTERS = frozenset("cud")
READ_WRITE = frozenset("cruds")
READ_ONLY = frozenset("rs")

PROFILE_LETTERS: dict[str, frozenset[str]] = {
    "ehr": READ_WRITE,
    "empty": READ_WRITE,
    "imaging": READ_ONLY,
    "lab": READ_ONLY,
}

# CapabilityStatement order (R4 codesystem-type-restful-interaction).
_TYPE_ORDER = ("read", "vread", "update", "delete", "history-instance", "history-type",
               "create", "search-type")


def server_letters(profile: str) -> frozenset[str]:
    """The permission letters a server with ``profile`` can honour."""
    return PROFILE_LETTERS.get(profile, READ_ONLY)


def writable(profile: str) -> bool:
    return bool(server_letters(profile) & WRITE_LETTERS)


def type_interactions(profile: str) -> tuple[str, ...]:
    """The type-level interactions every type of such a server supports."""
    letters = server_letters(profile)
    return tuple(i for i in _TYPE_ORDER if LETTER_OF[i] in letters)


def system_interactions(profile: str) -> tuple[str, ...]:
    """``batch`` (any entries, each checked on its own) everywhere; ``transaction`` only
    where there is something to write atomically; ``history-system`` everywhere."""
    return ("transaction", "batch", "history-system") if writable(profile) \
        else ("batch", "history-system")


def scope_suffix(profile: str) -> str:
    """The v2 suffix of the widest scope the server honours (``cruds`` or ``rs``)."""
    letters = server_letters(profile)
    return "".join(ch for ch in "cruds" if ch in letters)
