"""The authorization server as a Starlette app.

``create_app`` wires already-built parts (tests pass their own stores, keys and patient
directory); ``build_auth_server`` builds them from the realm configuration: the realm
database, the signing keys, the configured users and clients.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager

import httpx
from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route

from smartrealm.authz.client_keys import ClientJwksCache
from smartrealm.authz.flow import AuthzContext
from smartrealm.authz.launch import seed_launch_urls
from smartrealm.authz.lockout import LoginPolicy
from smartrealm.authz.maintenance import key_pruner, periodic_purge
from smartrealm.authz.multi_aud import MultiAudienceCheck
from smartrealm.authz.patient_index import seed_sample_links
from smartrealm.authz.patients import HttpPatientDirectory, PatientDirectory
from smartrealm.authz.records import Stores, User
from smartrealm.authz.safe_fetch import policy_client
from smartrealm.authz.stores.sql import sql_stores
from smartrealm.authz.views.consent import ConsentViews
from smartrealm.authz.views.endpoints import Endpoints
from smartrealm.authz.views.interaction import LoginViews
from smartrealm.authz.views.launch_api import launch_routes
from smartrealm.authz.views.lifecycle import lifecycle_routes
from smartrealm.authz.views.manage import ManageViews
from smartrealm.authz.views.outage import outage_response
from smartrealm.authz.views.patient_links import patient_link_routes
from smartrealm.authz.views.picker import PickerViews
from smartrealm.authz.views.session import InteractionSession
from smartrealm.authz.views.token_front import TokenFront
from smartrealm.authz.views.web import make_pages
from smartrealm.oauth.client_secrets import KEY_NAME as CLIENT_SECRETS_KEY
from smartrealm.oauth.client_secrets import ClientSecrets, Match
from smartrealm.oauth.key_rotation import RotatingKeyRing, max_token_lifetime
from smartrealm.oauth.keys import KeyRing, KeyStore
from smartrealm.oauth.metadata import rfc8414_paths
from smartrealm.oauth.passwords import hash_secret
from smartrealm.oauth.store import PUBLIC, SECRET_BASIC, Client
from smartrealm.oauth.tokens import TokenMinter
from smartrealm.realm.config import RealmConfig
from smartrealm.realm.tls import client_verify
from smartrealm.storage import OUTAGES, database_check, make_engine
from smartrealm.storage.key_store import key_store_for
from smartrealm.storage.rs_credentials import ensure_all
from smartrealm.storage.schema import AUTH_SCHEMA, require_current


def create_app(realm: RealmConfig, stores: Stores, keys: KeyRing,
               client_secrets: ClientSecrets, patients: PatientDirectory | None = None, *,
               http: httpx.AsyncClient | None = None,
               jwks_http: httpx.AsyncClient | None = None,
               clock: Callable[[], float] = time.time,
               login_policy: LoginPolicy | None = None) -> Starlette:
    """The AS app. Outbound HTTP to the realm's servers (patient lookups unless ``patients``
    is given) goes through ``http`` (an ``httpx.AsyncClient`` the caller owns), else through
    a client this app opens and closes. Clients' ``jwks_uri`` documents — URLs a client
    chose — go through ``jwks_http``, else through a client that connects only where the
    realm's fetch policy allows (authz/safe_fetch.py), whatever ``http`` is."""
    minter = TokenMinter(realm.auth_server.issuer, keys, realm.auth_server.access_token_lifetime,
                         clock)
    # Trusts the realm's CA too (realm/tls.py), at least TLS 1.2.
    own_http = None if http is not None else httpx.AsyncClient(verify=client_verify(realm.tls))
    client = http if http is not None else own_http
    assert client is not None
    if patients is None:
        patients = HttpPatientDirectory(client, minter, realm.patient_identifier_system)
    ctx = AuthzContext(realm, stores, keys, minter, patients, client_secrets, clock,
                       login_policy=login_policy or LoginPolicy(),
                       multi_aud=MultiAudienceCheck(client))
    pages = make_pages(realm.auth_server.issuer)
    session = InteractionSession(ctx, pages)
    login, picker, consent = LoginViews(session), PickerViews(session), ConsentViews(session)
    manage = ManageViews(ctx, pages)
    own_jwks_http = None if jwks_http is not None else policy_client(
        realm.auth_server.fetch_policy, client_verify(realm.tls))
    fetcher = jwks_http if jwks_http is not None else own_jwks_http
    assert fetcher is not None
    client_keys = ClientJwksCache(fetcher)  # private_key_jwt clients' jwks_uri documents
    api = Endpoints(ctx, client_keys)
    p = pages.path
    routes = [
        Route(p("/authorize"), login.authorize, methods=["GET", "POST"]),
        Route(p("/interaction/login"), login.login_page, methods=["GET"]),
        Route(p("/interaction/login"), login.login, methods=["POST"]),
        Route(p("/interaction/patient"), picker.patient_page, methods=["GET"]),
        Route(p("/interaction/patient"), picker.pick_patient, methods=["POST"]),
        Route(p("/interaction/encounter"), picker.encounter_page, methods=["GET"]),
        Route(p("/interaction/encounter"), picker.pick_encounter, methods=["POST"]),
        Route(p("/interaction/consent"), consent.consent_page, methods=["GET"]),
        Route(p("/interaction/consent"), consent.decide, methods=["POST"]),
        Route(p("/manage"), manage.page, methods=["GET"]),
        Route(p("/manage"), manage.post, methods=["POST"]),
        Route(p("/token"), api.token, methods=["POST"]),
        Route(p("/token"), api.token_preflight, methods=["OPTIONS"]),
        Route(p("/jwks"), api.jwks, methods=["GET"]),
        Route(p("/.well-known/openid-configuration"), api.openid_configuration,
              methods=["GET"]),
        Route(p("/.well-known/smart-configuration"), api.smart_configuration,
              methods=["GET"]),
        Route(p("/brands.json"), api.brands, methods=["GET"]),
        Route(p("/register"), api.register, methods=["POST"]),
    ]
    # RFC 8414 §3.1: at the host root, before the issuer's path (and after it, see there).
    routes += [Route(path, api.oauth_authorization_server, methods=["GET"])
               for path in rfc8414_paths(realm.auth_server.issuer)]
    routes += launch_routes(ctx, pages)  # EHR launch: /api/launch, /ehr, /smart-style.json
    routes += lifecycle_routes(ctx, p, client_keys)  # /introspect (RFC 7662), /revoke (7009)
    routes += patient_link_routes(ctx, p)  # /patient-index: realm servers' link reports

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with periodic_purge(stores, clock, key_pruner(keys)):
            yield
        for owned in (own_http, own_jwks_http):
            if owned is not None:
                await owned.aclose()

    # The token endpoint's POST skips the route table (authz/views/token_front.py: throughput).
    front = Middleware(TokenFront, path=p("/token"), endpoint=api.token)
    return Starlette(routes=routes, lifespan=lifespan, middleware=[front],
                     exception_handlers=dict.fromkeys(OUTAGES, outage_response))


def key_store(realm: RealmConfig, engine: Engine) -> KeyStore:
    """The AS's key store (storage/key_store.py ``key_store_for``)."""
    return key_store_for(realm, engine)


def client_secrets(store: KeyStore) -> ClientSecrets:
    """The realm's client-secret hash, keyed by the key store's secret (client_secrets.py)."""
    return ClientSecrets(store.secret_key(CLIENT_SECRETS_KEY))


def seed_config(realm: RealmConfig, stores: Stores, now: int, secrets: ClientSecrets) -> None:
    """Upsert the configured users and clients (the configuration wins over the store);
    link the sample patients of a realm with sample data (patient_index.py)."""
    for u in realm.users:
        stores.users.put(User(u.username, hash_secret(u.password), u.display_name,
                              u.fhir_user_server, u.fhir_user))
    for c in realm.clients:
        existing = stores.clients.get(c.client_id)
        stores.clients.put(Client(
            client_id=c.client_id, name=c.name, redirect_uris=c.redirect_uris,
            auth_method=SECRET_BASIC if c.secret else PUBLIC,
            secret_hash=_configured_secret_hash(secrets, c.secret, existing),
            scope=c.scope,
            allowed_servers=c.allowed_servers,
            created_at=existing.created_at if existing else now))
    seed_sample_links(realm, stores.patient_index, now)


def _configured_secret_hash(secrets: ClientSecrets, secret: str | None,
                            existing: Client | None) -> str | None:
    """The stored hash stays when it still matches (cheap, and no rewrite at each start)."""
    if not secret:
        return None
    if existing is not None and secrets.check(secret, existing.secret_hash) is Match.YES:
        return existing.secret_hash
    return secrets.hash(secret)


def build_auth_server(realm: RealmConfig, http: httpx.AsyncClient | None = None, *,
                      launch_urls: Mapping[str, str] | None = None) -> Starlette:
    """The AS of ``realm`` on its database. ``launch_urls``: {client_id: EHR-launch URL} of
    apps served beside it (the demo app), seeded before the configured ones, which win."""
    engine = make_engine(realm.database_url_for(None))
    require_current(engine, AUTH_SCHEMA, "auth_server")  # storage/schema.py
    stores = sql_stores(engine)
    store = key_store(realm, engine)
    # Follows `smartrealm keys rotate` while running (oauth/key_rotation.py).
    keys = RotatingKeyRing(store, max_token_lifetime(realm.auth_server.access_token_lifetime))
    secrets = client_secrets(store)
    ensure_all(realm, stores.rs_credentials)  # each resource server's introspection secret
    seed_config(realm, stores, int(time.time()), secrets)
    for client_id, url in (launch_urls or {}).items():
        stores.ehr.app_launch_urls.put(client_id, url)
    seed_launch_urls(realm, stores)
    app = create_app(realm, stores, keys, secrets, http=http)
    app.state.ready_checks = {"database": database_check(engine),
                              "signing_keys": lambda: None if keys.active else "no signing key"}
    return app
