"""A ClientStore in a dict, for protocol-core tests (the SQL store runs the contract suite
in tests/authz)."""

from __future__ import annotations

from dataclasses import replace

from smartrealm.oauth.store import Client


class MemoryClients:
    """Clients in a dict."""

    def __init__(self, clients: dict[str, Client]) -> None:
        self.clients = dict(clients)

    def get(self, client_id: str) -> Client | None:
        return self.clients.get(client_id)

    def put(self, client: Client) -> None:
        self.clients[client.client_id] = client

    def all(self) -> list[Client]:
        return sorted(self.clients.values(), key=lambda c: c.client_id)

    def delete(self, client_id: str) -> bool:
        return self.clients.pop(client_id, None) is not None

    def replace_secret_hash(self, client_id: str, old: str, new: str) -> bool:
        client = self.clients.get(client_id)
        if client is None or client.secret_hash != old:
            return False
        self.clients[client_id] = replace(client, secret_hash=new)
        return True
