"""Which FHIR interactions a server answers, per profile, and the SMART permission letter
each one needs (spec §5.1). The letters a profile honours are ``core.profiles``; the REST
routes and the CapabilityStatement derive their interactions from them here."""

from __future__ import annotations

from smartrealm.core.profiles import WRITE_LETTERS, server_letters

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
# CapabilityStatement order (R4 codesystem-type-restful-interaction).
_TYPE_ORDER = ("read", "vread", "update", "delete", "history-instance", "history-type",
               "create", "search-type")


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
