"""Each request observed once (serving/observe.py, fhir/http/metering.py): its request id,
its HTTP metrics under the route template (never the raw path), a JSON log line with
exactly the listed fields, /metrics only to the allowed networks, and the FHIR interaction
read from the route that answered."""

from __future__ import annotations

import ipaddress
import json
import logging

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import REGISTRY
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

from smartrealm.fhir.http.metering import INTERACTIONS, FhirMeter, interaction
from smartrealm.serving.health import HealthFront, Readiness
from smartrealm.serving.observe import ACCESS_LOG, RequestObserver, use_json_logs

LOG_FIELDS = {"time", "component", "method", "route", "status", "duration_ms", "request_id",
              "client_id"}


def _inner() -> Starlette:
    async def item(request: Request) -> PlainTextResponse:
        request.state.client_id = "app-1"
        return PlainTextResponse(request.path_params["resource_id"])

    async def boom(_request: Request) -> PlainTextResponse:
        raise RuntimeError("secret-in-exception")

    return Starlette(routes=[Route("/{resource_type}/{resource_id}", item),
                             Route("/boom", boom)])


def _app(component: str = "ehr", json_logs: bool = True) -> RequestObserver:
    outer = Starlette(routes=[Mount("/fhir", app=_inner())])
    return RequestObserver(outer, component, json_logs)


def _sample(name: str, labels: dict[str, str]) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def _call(app: object, path: str, headers: dict[str, str] | None = None,
                client: tuple[str, int] = ("127.0.0.1", 5000)) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, client=client, raise_app_exceptions=False)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://svc") as http:
        return await http.get(path, headers=headers)


@pytest.fixture
def logged(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    use_json_logs()
    ACCESS_LOG.propagate = True  # let caplog see the lines too
    caplog.set_level(logging.INFO, logger=ACCESS_LOG.name)
    return caplog


async def test_a_sane_request_id_is_kept_and_returned(logged: pytest.LogCaptureFixture) -> None:
    response = await _call(_app(), "/fhir/Patient/p1?code=SECRET",
                           {"X-Request-ID": "req-42.a:b"})
    assert response.headers["x-request-id"] == "req-42.a:b"
    record = json.loads(logged.records[-1].getMessage())
    assert record["request_id"] == "req-42.a:b"


@pytest.mark.parametrize("given_id", ["", "a b", "x" * 129, "line\u2028break", 'a"b'])
async def test_any_other_request_id_is_replaced(given_id: str,
                                                logged: pytest.LogCaptureFixture) -> None:
    response = await _call(_app(), "/fhir/Patient/p1",
                           {"X-Request-ID": given_id.encode("utf-8")})  # type: ignore[dict-item]
    returned = response.headers["x-request-id"]
    assert returned != given_id and len(returned) == 32
    assert json.loads(logged.records[-1].getMessage())["request_id"] == returned


async def test_a_log_line_holds_exactly_the_listed_fields(
        logged: pytest.LogCaptureFixture) -> None:
    await _call(_app(), "/fhir/Patient/p-secret-id?access_token=TOKEN123&state=S",
                {"Authorization": "Bearer TOKEN123"})
    line = logged.records[-1].getMessage()
    record = json.loads(line)
    assert set(record) == LOG_FIELDS
    assert record["route"] == "/fhir/{resource_type}/{resource_id}"
    assert (record["component"], record["method"], record["status"]) == ("ehr", "GET", 200)
    assert record["client_id"] == "app-1"
    for secret in ("TOKEN123", "p-secret-id", "state=S", "Bearer"):
        assert secret not in line


async def test_an_exception_is_logged_as_500_without_its_text(
        logged: pytest.LogCaptureFixture) -> None:
    response = await _call(_app(), "/fhir/boom")
    assert response.status_code == 500
    line = logged.records[-1].getMessage()
    assert json.loads(line)["status"] == 500 and "secret-in-exception" not in line


async def test_no_log_lines_without_json_logs(logged: pytest.LogCaptureFixture) -> None:
    before = len(logged.records)
    await _call(_app(json_logs=False), "/fhir/Patient/p1")
    assert len(logged.records) == before


async def test_metrics_count_by_route_template_never_by_path() -> None:
    labels = {"component": "obs-test", "route": "/fhir/{resource_type}/{resource_id}",
              "method": "GET", "status": "200"}
    before = _sample("smartrealm_http_requests_total", labels)
    for rid in ("a1", "a2", "a3"):
        await _call(_app("obs-test", json_logs=False), f"/fhir/Patient/{rid}")
    assert _sample("smartrealm_http_requests_total", labels) == before + 3
    missing = {**labels, "route": "unmatched", "status": "404"}
    before = _sample("smartrealm_http_requests_total", missing)
    await _call(_app("obs-test", json_logs=False), "/nothing/here/at/all")
    assert _sample("smartrealm_http_requests_total", missing) == before + 1
    assert _sample("smartrealm_http_request_duration_seconds_count",
                   {k: labels[k] for k in ("component", "route", "method")}) >= 3


@pytest.mark.parametrize(("peer", "allowed", "status"), [
    ("127.0.0.1", "127.0.0.0/8", 200), ("10.1.2.3", "127.0.0.0/8", 403),
    ("10.1.2.3", "10.0.0.0/8", 200), ("::1", "127.0.0.0/8", 403),
])
async def test_metrics_only_to_the_allowed_networks(peer: str, allowed: str,
                                                    status: int) -> None:
    front = HealthFront(_app(json_logs=False), Readiness({}),
                        metrics_networks=(ipaddress.ip_network(allowed),))
    response = await _call(front, "/metrics", client=(peer, 4000))
    assert response.status_code == status
    if status == 200:
        assert "smartrealm_http_requests_total" in response.text
        assert response.headers["content-type"].startswith("text/plain")


def test_every_fhir_route_has_an_interaction_name() -> None:
    assert interaction("GET", "/fhir/{resource_type}/{resource_id}", "/fhir") == "read"
    assert interaction("POST", "/fhir/", "/fhir") == "batch-transaction"
    assert interaction("GET", "/fhir/.well-known/smart-configuration", "/fhir") is None
    assert interaction("GET", "unmatched", "/fhir") is None
    assert len(set(INTERACTIONS.values())) == 11


@given(method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"]),
       template=st.text(alphabet="/{}_abcdefghijklmnopqrstuvwxyz", max_size=40))
def test_an_interaction_is_named_only_for_a_known_route(method: str, template: str) -> None:
    found = interaction(method, "/base" + template, "/base")
    assert found is None or (method, template or "/") in INTERACTIONS


async def test_the_fhir_meter_bounds_the_type_label() -> None:
    app = FhirMeter(Starlette(routes=[Mount("/fhir", app=_inner())]), server_id="meter-test",
                    base_path="/fhir", types=("Patient",))
    for kind in ("Patient", "Observation", "NoSuchType"):
        await _call(app, f"/fhir/{kind}/x1")
    def count(kind: str) -> float:
        return _sample("smartrealm_fhir_interactions_total", {
            "server": "meter-test", "type": kind, "interaction": "read", "outcome": "2xx"})
    assert count("Patient") == 1 and count("other") == 2 and count("NoSuchType") == 0
