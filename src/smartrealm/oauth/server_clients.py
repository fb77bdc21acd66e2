"""The realm's resource servers as clients of the AS: each authenticates as its confidential
client ``rs:<server id>`` with the secret kept in the AS's database (storage/rs_credentials.py,
handed in as a lookup),
with HTTP Basic (RFC 6749 §2.3.1) or, without an Authorization header, ``client_id`` and
``client_secret`` in the form body (``client_secret_post``).

One home for that check, used by every endpoint a resource server calls: introspection
(authz/views/lifecycle.py) and the patient-index reports (authz/views/patient_links.py). Wrong
secrets are counted by the same failure throttle as registered clients'
(authz/client_guard.py).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping, Sequence

from smartrealm.core.basic_auth import client_credentials
from smartrealm.core.rs_clients import server_id_of
from smartrealm.oauth.client_auth import FailureThrottle, single_param
from smartrealm.oauth.errors import InvalidClient, TooManyFailures
from smartrealm.oauth.realm_view import Realm, Server


def presented_server(authorization: str | None, params: Mapping[str, Sequence[str]]
                     ) -> tuple[str, str] | None:
    """The (client_id, secret) of a caller presenting an ``rs:`` client; None for anyone
    else (another client, a Bearer token, no credentials)."""
    pair = client_credentials(authorization) if authorization else None
    if pair is None and not authorization:
        client_id, secret = single_param(params, "client_id"), single_param(params,
                                                                              "client_secret")
        pair = (client_id, secret) if client_id and secret is not None else None
    if pair is None or server_id_of(pair[0]) is None:
        return None
    return pair


def authenticate_server(realm: Realm, stored_secret: Callable[[str], str | None],
                        client_id: str, secret: str, throttle: FailureThrottle) -> Server:
    """The realm server whose ``rs:`` credentials these are; 401 ``invalid_client`` for an
    unknown server or a wrong secret (the same answer, compared in constant time).
    ``stored_secret(server_id)`` is the server's secret as the AS keeps it."""
    server_id = server_id_of(client_id)
    wait = throttle.retry_after(client_id)
    if wait:
        raise TooManyFailures(wait)
    server = next((rs for rs in realm.resource_servers if rs.id == server_id), None)
    stored = stored_secret(server.id) if server is not None else None
    if server is None or stored is None or not hmac.compare_digest(
            secret.encode(), stored.encode()):
        wait = throttle.failed(client_id)
        if wait:
            raise TooManyFailures(wait)
        raise InvalidClient("resource server authentication failed")
    throttle.succeeded(client_id)
    return server
