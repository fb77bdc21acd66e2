"""Every lifetime, time-to-live and size limit of the realm, in one place.

Each module that applies one imports it from here (often under its local name), so this
is the one list to read or review: seconds for lifetimes, intervals and timeouts; bytes,
characters or counts for limits. Values that a realm file can set (such as
``auth_server.access_token_lifetime``) are documented with the realm file and are not
repeated here."""

from __future__ import annotations

# ---------- Authorization server: lifetimes

# A refresh token's lifetime; a rotation issues a new one with a new lifetime
# (oauth/endpoints/token.py).
REFRESH_LIFETIME = 14 * 86400
# SMART §3.5: "usually about one minute" (authz/flow.py)
CODE_LIFETIME = 60
# seconds a user has to log in and decide (authz/records.py)
INTERACTION_LIFETIME = 600
# An OpenID Connect id_token's lifetime (oauth/tokens.py).
ID_TOKEN_LIFETIME = 300
# The AS's own short-lived system token for its patient lookups at the FHIR servers
# (oauth/tokens.py).
SELF_TOKEN_LIFETIME = 60
# §9: expires_in SHOULD NOT exceed 300 (oauth/client_credentials.py)
BACKEND_TOKEN_MAX_LIFETIME = 300
# seconds: a launch id lives at most 5 minutes (docs/behaviour.md) (oauth/launch.py)
LAUNCH_LIFETIME = 300
# an anonymous session only has to last until sign-in (authz/views/ehr.py)
EHR_SIGN_IN_LIFETIME = 600
# a clinician's shift at the simulator (authz/views/ehr.py)
EHR_SESSION_LIFETIME = 8 * 3600

# ---------- Authorization server: retention and housekeeping

# Used authorization codes are kept this long after expiry, so a replay is recognised as a
# replay (authz/stores/sql.py).
CODE_RETENTION = 3600
# Sign-in and client-authentication failure rows idle this long are forgotten
# (authz/lockout.py).
LOGIN_FAILURE_PURGE_AFTER = 86400

# Refresh-token rows are purged this long after they expire. (authz/stores/sql.py)
REFRESH_RETENTION = 86400
# EHR launch rows are purged this long after they expire (authz/launch_store.py).
LAUNCH_RETENTION = 3600
# Rows past their expiry (or used up) stay this long for `initial-token list`, then go.
# (authz/initial_tokens.py)
INITIAL_TOKEN_RETENTION = 7 * 86400
# Seconds between two purges of expired rows while the AS runs (authz/maintenance.py).
PURGE_INTERVAL = 600.0
# seconds between two looks at the key store's version (oauth/key_rotation.py)
KEY_RELOAD_INTERVAL = 5.0

# ---------- Client assertions and client documents

# §4.5: exp "no more than 5 minutes in the future" (oauth/assertions.py)
ASSERTION_MAX_LIFETIME = 300
# clock skew tolerated on exp, nbf and iat (oauth/assertions.py)
ASSERTION_LEEWAY = 30
# Characters of a client assertion's jti; longer ones are refused (oauth/assertions.py).
ASSERTION_MAX_JTI = 255
# Keys in a client's JWK Set (oauth/client_jwks.py).
CLIENT_JWKS_MAX_KEYS = 20
# no Cache-Control at all: HTTP heuristic freshness, kept short (authz/client_keys.py)
JWKS_DEFAULT_MAX_AGE = 300.0
# Longest time a fetched client JWK Set is cached, whatever its Cache-Control says
# (authz/client_keys.py).
JWKS_MAX_CACHE_AGE = 86400.0
# Bytes of a fetched client JWK Set (authz/client_keys.py).
JWKS_MAX_DOCUMENT = 64 * 1024
# Seconds to fetch a client's jwks_uri (authz/client_keys.py).
JWKS_FETCH_TIMEOUT = 5.0

# ---------- Authorization server: input limits

# Bytes of a form posted to the AS (token, pages, registration) (authz/views/web.py).
AS_MAX_FORM_BODY = 64 * 1024
# Bytes of a launch-API request body (authz/views/launch_api.py).
LAUNCH_API_MAX_BODY = 64 * 1024
# longer values cannot be ours; refused before any lookup (oauth/launch.py)
LAUNCH_MAX_ID = 256
# fhirContext items of one EHR launch (oauth/launch_input.py).
LAUNCH_MAX_CONTEXT_ITEMS = 20
# Characters of a launch's free-text values (intent, banner and the like)
# (oauth/launch_input.py).
LAUNCH_MAX_TEXT = 200
# Characters of a URL given in a launch (oauth/launch_input.py).
LAUNCH_MAX_URL = 2000
# far above any token we mint; bounds the work on garbage (oauth/own_tokens.py)
TOKEN_MAX_LENGTH = 16 * 1024
# characters of a name or MRN search term (authz/views/picker.py)
PICKER_MAX_TERM = 100
# Highest page number of the patient picker (authz/views/picker.py).
PICKER_MAX_PAGE = 1000
# Patients per patient-picker page (authz/patients.py).
PICKER_PAGE_SIZE = 25
# Encounters offered by the encounter picker (authz/patients.py).
PICKER_MAX_ENCOUNTERS = 50
# Longest lifetime an operator may give an RFC 7591 initial access token (cli/clients.py).
INITIAL_TOKEN_MAX_LIFETIME = 30 * 86400
# Most registrations one initial access token may allow (cli/clients.py).
INITIAL_TOKEN_MAX_USES = 1000

# ---------- Authorization server: calls to other components

# seconds an answer is trusted (authz/multi_aud.py)
CAPABILITY_CACHE_TTL = 300.0
# Seconds to fetch a server's smart-configuration for the multi-server check
# (authz/multi_aud.py).
CAPABILITY_FETCH_TIMEOUT = 5.0

# ---------- Resource servers: tokens

# Most clock skew a resource server may be configured to tolerate on exp/nbf
# (guard/validator.py).
TOKEN_MAX_LEEWAY = 60
# Seconds a resource server reuses an introspection answer (revocations show after at most this)
# (guard/introspection.py).
INTROSPECTION_CACHE_TTL = 30.0
# Introspection answers a resource server keeps (guard/introspection.py).
INTROSPECTION_CACHE_SIZE = 1024
# seconds per try: the AS answers these in milliseconds (fhir/link_reports.py)
LINK_REPORT_TIMEOUT = 2.0

# ---------- Resource servers: request limits

# bytes: large Bundles and attachments fit, abuse does not (fhir/validation.py)
FHIR_MAX_BODY = 16 * 1024 * 1024
# nesting of JSON objects/arrays; R4 resources stay far below (fhir/validation.py)
FHIR_MAX_DEPTH = 64
# issues reported per resource (fhir/validation.py)
FHIR_MAX_ISSUES = 20
# Entries of one batch or transaction Bundle (fhir/rest/bundle_entries.py).
BUNDLE_MAX_ENTRIES = 1000

# ---------- Resource servers: search limits

# Largest _count; more is capped to this (fhir/search/parse.py).
SEARCH_MAX_COUNT = 200
# Fields of a POST _search form (fhir/search/parse.py).
SEARCH_MAX_FORM_FIELDS = 1000
# name=value pairs of one search, of every kind (criteria, result parameters, unknown or empty
# ones), query string and form together (fhir/search/limits.py)
SEARCH_MAX_PARAMETERS = 64
# comma-separated values (OR, or _sort keys) of one parameter (fhir/search/limits.py)
SEARCH_MAX_VALUES_PER_PARAMETER = 100
# comma-separated values of all parameters together (fhir/search/limits.py)
SEARCH_MAX_VALUES = 1000
# characters of one value (after splitting on commas) (fhir/search/limits.py)
SEARCH_MAX_VALUE_LENGTH = 1024
# characters of all names and values together (fhir/search/limits.py)
SEARCH_MAX_LENGTH = 65536
# Resources added to one search page by _include/_revinclude (fhir/rest/includes.py).
SEARCH_MAX_INCLUDED = 500
# the width of the index's string columns (fhir/sql/predicates.py)
SEARCH_INDEX_MAX_STRING = 512

# ---------- Realm

# the index's column (authz/patient_index.py) (realm/patient_links.py)
PATIENT_INDEX_MAX_PERSON = 255
# Seconds `smartrealm serve` waits for every component to answer (realm/runner.py).
SERVE_STARTUP_TIMEOUT = 60.0

# ---------- Apps: the client library, the app CLI and the demo app

# Spec §4.5: exp no more than 5 minutes in the future; stay clear of that edge. (client/keys.py)
CLIENT_ASSERTION_LIFETIME = 240
# Bytes of the request line the app CLI's loopback redirect listener reads (appcli/loopback.py).
LOOPBACK_MAX_REQUEST_LINE = 16_384
# Seconds a demo-app session lasts (demoapp/sessions.py).
DEMO_SESSION_LIFETIME = 3600
# Demo-app sessions kept in memory (demoapp/sessions.py).
DEMO_MAX_SESSIONS = 1000
# per search: enough for a demo record, bounded whatever a server sends (demoapp/record.py)
DEMO_MAX_ITEMS = 200
# iss / launch values longer than this are not ours (demoapp/views.py)
DEMO_MAX_LAUNCH_PARAM = 2048
# Seconds for the demo app's calls to the realm (demoapp/app.py).
DEMO_HTTP_TIMEOUT = 15.0

# ---------- Serving

# seconds a readiness check (a database round trip) may take before /readyz reports it
# failed, so a load balancer's probe never hangs on a database that does not answer
# (serving/health.py)
READY_CHECK_TIMEOUT = 2.0
# Retry-After (seconds) of a 503 while the database is unavailable (storage/__init__.py
# OUTAGES; oauth/errors.py, fhir/errors.py, serving/health.py)
OUTAGE_RETRY_AFTER = 5
# seconds to wait for a PostgreSQL connection to open (storage/__init__.py): while the
# database is unreachable a request ends in a 503 this quickly, not in a hang
DB_CONNECT_TIMEOUT = 3
# seconds a request waits for a free pooled connection before it is answered 503
# (storage/__init__.py)
DB_POOL_TIMEOUT = 5
# PostgreSQL connections a process keeps open (storage/__init__.py): enough for the requests
# one process serves at once, so they are reused rather than opened and closed per request
# (an overflow connection is closed when returned: a new backend process every time)
DB_POOL_SIZE = 16
# connections a process may open beyond DB_POOL_SIZE at a peak (storage/__init__.py)
DB_POOL_OVERFLOW = 8
