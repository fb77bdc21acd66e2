"""The realm's Prometheus metrics (``prometheus_client``), one definition each, and the
``/metrics`` answer.

Labels are bounded: route templates (never raw paths), RFC error codes, grant types, FHIR
interaction names and the served resource types — no ids, no client-chosen text. With
several workers (``serve --workers``) each process writes its samples to
``PROMETHEUS_MULTIPROC_DIR`` and ``/metrics`` merges them (prometheus_client's multiprocess
mode), so a scrape sees the whole instance whichever worker answers it."""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

HTTP_REQUESTS = Counter(
    "smartrealm_http_requests", "HTTP requests answered, by component, route template, "
    "method and status.", ["component", "route", "method", "status"])
HTTP_DURATION = Histogram(
    "smartrealm_http_request_duration_seconds", "Time to answer an HTTP request, by "
    "component, route template and method.", ["component", "route", "method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0))
TOKENS_ISSUED = Counter(
    "smartrealm_tokens_issued", "Access tokens issued by the AS, by grant type.",
    ["grant_type"])
OAUTH_ERRORS = Counter(
    "smartrealm_oauth_errors", "OAuth error answers of the AS, by endpoint and RFC error "
    "code.", ["endpoint", "error"])
TOKEN_REJECTIONS = Counter(
    "smartrealm_token_rejections", "Access tokens refused by a FHIR server, by reason.",
    ["server", "reason"])
FHIR_INTERACTIONS = Counter(
    "smartrealm_fhir_interactions", "FHIR interactions answered, by server, resource type, "
    "interaction and outcome (the status class).", ["server", "type", "interaction",
                                                    "outcome"])

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"


def exposition() -> tuple[bytes, str]:
    """The text exposition of every metric of this process — or, in multiprocess mode, of
    every worker of the instance — and its content type."""
    if os.environ.get(MULTIPROCESS_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
