"""Each resource server of the realm is a confidential client of the AS with client_id
``rs:<server id>`` (docs/behaviour.md: "each RS is a confidential client of the AS"): it
introspects tokens and reports patient links with it. Its secret is kept by
``storage.rs_credentials``; on the wire it travels as RFC 6749 §2.3.1 Basic
(``core.basic_auth``)."""

from __future__ import annotations

PREFIX = "rs:"


def rs_client_id(server_id: str) -> str:
    return PREFIX + server_id


def server_id_of(client_id: str) -> str | None:
    """The server id of an ``rs:<id>`` client_id, else None."""
    return client_id[len(PREFIX):] if client_id.startswith(PREFIX) else None
