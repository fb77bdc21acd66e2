"""What one FHIR server needs to know about itself and its realm."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from smartrealm.core.profiles import supported_types
from smartrealm.fhir.search.parse import DEFAULT_COUNT, MAX_COUNT
from smartrealm.realm.config import RealmConfig, ResourceServerConfig


@dataclass(frozen=True)
class FhirSettings:
    realm: RealmConfig
    server_id: str
    default_count: int = DEFAULT_COUNT
    max_count: int = MAX_COUNT

    # Cached: every request asks (settings never change while a server runs).
    @cached_property
    def server(self) -> ResourceServerConfig:
        return self.realm.server(self.server_id)

    @cached_property
    def base_url(self) -> str:
        """The configured base, exactly: it is this server's audience and the prefix of
        every absolute URL we hand out."""
        return self.server.base_url.rstrip("/")

    @cached_property
    def resource_types(self) -> tuple[str, ...]:
        return supported_types(self.server.profile)

    @property
    def other_servers(self) -> tuple[ResourceServerConfig, ...]:
        return tuple(rs for rs in self.realm.resource_servers if rs.id != self.server_id)
