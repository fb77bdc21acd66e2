"""The realm's patient index: which record on which server belongs to one person.

A multi-server token carries the in-context patient's id on every server of its audience.
The AS finds those ids here and nowhere else — never in what a FHIR server's Patient says
at authorization time, because a patient-facing app may be able to write that Patient. A row
says "record ``patient_id`` on server ``server_id`` is person ``person``", the person being
the value of the realm's patient identifier (``realm.patient_identifier_system``, e.g. an
MRN) when the link was made.

Who writes rows (docs/behaviour.md "Linking a patient's records across servers"): only
trusted paths — ``smartrealm load`` for the Patients it stores, the sample data of a realm
with ``sample_data``, an operator with ``smartrealm patients``, and a built-in FHIR server
reporting a committed ``system/``-level write that changed a Patient's linking identifier
(authz/views/patient_links.py, for that server's own records only). No patient- or user-level
FHIR write changes a row: those may not change the linking identifier at all.

Fail closed: a record without a row has no counterpart anywhere; a person with no record,
or more than one, on a server has no patient there (a data problem is never guessed at).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from smartrealm.core.urls import normalize_url
from smartrealm.realm.config import RealmConfig
from smartrealm.realm.patient_links import linking_value as linking_value  # re-exported
from smartrealm.realm.sample_data import ID_PREFIX, mrn, patient_id

# Where a link came from (shown by `smartrealm patients`): an operator needs to know
# whether a row is theirs or a loader's before changing it.
SOURCES = ("load", "operator", "sample", "rebuild", "system-write")
BATCH = 500  # rows per statement: well below every backend's bound-parameter limit


@dataclass(frozen=True)
class PatientLink:
    server_id: str
    patient_id: str
    person: str       # the realm identifier's value (the MRN) that links the records
    source: str = "operator"
    updated_at: int = 0


class PatientIndex(Protocol):
    def link(self, links: Sequence[PatientLink]) -> int:
        """Add or replace the rows of these (server, record) pairs; returns how many."""
        ...

    def unlink(self, server_id: str, patient_id: str) -> bool: ...

    def person_of(self, server_id: str, patient_id: str) -> str | None: ...

    def records_of(self, person: str) -> list[PatientLink]: ...

    def on_server(self, server_id: str | None, *, limit: int, offset: int = 0
                  ) -> list[PatientLink]: ...

    def count(self, server_id: str | None = None) -> int: ...

    def replace_server(self, server_id: str, links: Sequence[PatientLink]) -> int:
        """Every row of ``server_id`` becomes exactly ``links`` (one transaction)."""
        ...


# ------------------------------------------------------------------------- reading records


def links_from(resources: Iterable[Any], server_id: str, system: str, source: str,
               now: int) -> list[PatientLink]:
    """The links of the Patients among ``resources`` (stored on ``server_id``)."""
    links = []
    for resource in resources:
        person = linking_value(resource, system)
        if person is not None and isinstance(resource.get("id"), str):
            links.append(PatientLink(server_id, resource["id"], person, source, now))
    return links


# ------------------------------------------------------------------------- the sample data


def seed_sample_links(realm: RealmConfig, index: PatientIndex, now: int) -> int:
    """With ``realm.sample_data``, link the sample patients of every built-in server that
    has no links yet (the same ids and MRNs realm/sample_data.py seeds its store with), and
    of every proxy in front of such a server (the same records under the proxy's base).
    A server with links keeps them: what an operator or a load decided is not undone by a
    restart. A proxy in front of anything else is never guessed at (`smartrealm patients`)."""
    if not realm.sample_data:
        return 0
    seeded = {normalize_url(rs.base_url): rs for rs in realm.resource_servers
              if rs.mode == "server" and rs.profile in ID_PREFIX}
    added = 0
    for rs in realm.resource_servers:
        source = rs if rs.mode == "server" else seeded.get(normalize_url(rs.upstream or "-"))
        if source is None or source.profile not in ID_PREFIX or index.count(rs.id):
            continue
        added += index.link([PatientLink(rs.id, patient_id(source.profile, n), mrn(n),
                                         "sample", now)
                             for n in range(1, realm.sample_patients + 1)])
    return added
