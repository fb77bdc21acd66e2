"""Search parameter types (R4 search.html §3.1.1.4): the parsers, property tests that bad
input is always a 400 and never anything else, and the semantics of each type on SQLite
and PostgreSQL (the repository contract, ``sql_url``)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smartrealm.fhir.errors import BadRequest
from smartrealm.fhir.search.dates import MAX_INSTANT, MIN_INSTANT, parse_range, period_range
from smartrealm.fhir.search.indexing import fold, index_entries
from smartrealm.fhir.search.params import SEARCH_PARAMS
from smartrealm.fhir.search.parse import parse_search
from smartrealm.fhir.search.query import (
    DateValue,
    MissingValue,
    PageQuery,
    QuantityValue,
    ReferenceValue,
    StringValue,
    TokenValue,
)
from smartrealm.fhir.search.values import parse_date, parse_param, parse_quantity
from smartrealm.fhir.sql import SqlResourceRepository
from smartrealm.realm.config import RealmConfig
from tests.fhir.search_app import SearchServer, search_server
from tests.fhir.sql_repo import Ticker
from tests.guard.tokens import FakeAuthServer

BASE = "http://127.0.0.1:8701/fhir"
UCUM = "http://unitsofmeasure.org"


def value(resource_type: str, name: str, raw: str) -> Any:
    clause = parse_param(resource_type, name, raw, base_url=BASE)
    assert clause is not None
    return clause.values[0]


# --------------------------------------------------------------------------- parsers


def test_token_forms() -> None:
    assert value("Observation", "code", "s|c") == TokenValue("s", "c")
    assert value("Observation", "code", "|c") == TokenValue("", "c")
    assert value("Observation", "code", "c") == TokenValue(None, "c")
    assert value("Observation", "code", "s|") == TokenValue("s", None)


def test_string_modifiers_fold_case_and_accents() -> None:
    assert value("Patient", "name", "ÉLODIE") == StringValue("elodie", "prefix")
    assert value("Patient", "name:contains", "Ødegård") == StringValue("ødegard", "contains")
    assert value("Patient", "name:exact", "Élodie") == StringValue("Élodie", "exact")
    assert fold("Straße") == "strasse"


def test_reference_forms() -> None:
    for raw in ("p1", "Patient/p1", f"{BASE}/Patient/p1", "HTTP://127.0.0.1:8701/fhir/Patient/p1"):
        assert value("Observation", "patient", raw) == ReferenceValue("Patient", "p1")
    assert value("Observation", "subject:Patient", "p1") == ReferenceValue("Patient", "p1")
    assert value("Observation", "subject", "Group/g") == ReferenceValue("Group", "g")
    foreign = "http://elsewhere/fhir/Patient/p1"
    assert value("Observation", "patient", foreign) == ReferenceValue(None, None, url=foreign)


def test_date_prefixes_and_precision() -> None:
    assert parse_date("date", "2024") == DateValue(
        "eq", "2024-01-01T00:00:00.000000Z", "2025-01-01T00:00:00.000000Z")
    assert parse_date("date", "sa2024-02") == DateValue(
        "sa", "2024-02-01T00:00:00.000000Z", "2024-03-01T00:00:00.000000Z")
    assert parse_date("date", "eb2024-02-29T10:00+02:00") == DateValue(
        "eb", "2024-02-29T08:00:00.000000Z", "2024-02-29T08:01:00.000000Z")
    assert parse_date("date", "ne2024-01-01T00:00:00.5Z").hi == "2024-01-01T00:00:00.600000Z"
    for prefix in ("eq", "ne", "lt", "le", "gt", "ge", "sa", "eb"):
        assert parse_date("date", f"{prefix}2024").prefix == prefix


def test_dates_and_periods_as_ranges() -> None:
    assert parse_range("2024-12").high == "2025-01-01T00:00:00.000000Z"
    assert parse_range("2024-03-10T23:30:00-01:00").low == "2024-03-11T00:30:00.000000Z"
    assert period_range({"start": "2024-01-01"}) == parse_range("2024-01-01").__class__(
        "2024-01-01T00:00:00.000000Z", MAX_INSTANT)
    assert period_range({"end": "2024"}).low == MIN_INSTANT  # type: ignore[union-attr]
    assert period_range({}) is None


def test_quantity_forms_and_precision() -> None:
    assert parse_quantity("q", "5.4") == QuantityValue("eq", 5.4, 5.35, 5.45)
    found = parse_quantity("q", f"gt100|{UCUM}|mg")
    assert (found.prefix, found.number, found.system, found.code) == ("gt", 100.0, UCUM, "mg")
    assert parse_quantity("q", "ap5e2||mg") == QuantityValue("ap", 500.0, 450.0, 550.0,
                                                              None, "mg")


def test_missing_modifier() -> None:
    assert value("Observation", "code:missing", "true") == MissingValue(True)
    assert value("Patient", "birthdate:missing", "false") == MissingValue(False)


@pytest.mark.parametrize(("resource_type", "query"), [
    ("Observation", "code:text=x"), ("Observation", "code:not=x"),
    ("Observation", "patient:identifier=urn|1"), ("Patient", "name:fuzzy=x"),
    ("Observation", "date=ap2024"), ("Observation", "date=2024-13"),
    ("Observation", "date=yesterday"), ("Patient", "birthdate=2024-02-30"),
    ("Observation", "date=2024-01-01T10:00+15:00"), ("Observation", "value-quantity=abc"),
    ("Observation", "value-quantity=5|mg"), ("Observation", "value-quantity=zz5"),
    ("Observation", "value-quantity=1e999"), ("Observation", "patient=Practitioner/1"),
    ("Observation", "patient=a/b/c"), ("Observation", "patient=http://[bad/Patient/1"),
    ("Observation", "code:missing=maybe"), ("Patient", "_id:exact=1"),
    ("Patient", "_lastUpdated=someday"),
])
def test_malformed_values_are_400(resource_type: str, query: str) -> None:
    name, raw = query.split("=", 1)
    with pytest.raises(BadRequest):
        parse_search(resource_type, [(name, raw)], base_url=BASE)


NAMES = sorted({n for params in SEARCH_PARAMS.values() for n in params}
               | {"_id", "_lastUpdated", "_count", "_offset", "_sort", "_summary", "_total",
                  "_include", "_revinclude", "name:exact", "name:contains", "code:missing",
                  "patient:Patient", "unknown", "_sort:desc"})
RAW = st.one_of(
    st.text(max_size=30),
    st.from_regex(r"(eq|ne|lt|le|gt|ge|sa|eb|ap)?-?\d{1,5}(-\d{1,2}(-\d{1,2}(T\d\d:\d\d(:\d\d"
                  r"(\.\d{1,9})?)?(Z|[+-]\d\d:\d\d)?)?)?)?", fullmatch=True),
    st.from_regex(r"[a-z]{0,8}\|[a-z0-9.:/]{0,12}(\|[a-z]{0,4})?", fullmatch=True),
    st.sampled_from(["Observation:patient", "Observation:subject:Patient", "*", "-date,_id",
                     "count", "none", "Patient/p1", "http://[x", "1e400", "\x00", "a\\,b"]))


@settings(max_examples=400, deadline=None)
@given(resource_type=st.sampled_from([*SEARCH_PARAMS, "Nope"]),
       params=st.lists(st.tuples(st.sampled_from(NAMES), RAW), max_size=6),
       strict=st.booleans())
def test_parsing_never_raises_anything_but_400(resource_type: str,
                                               params: list[tuple[str, str]],
                                               strict: bool) -> None:
    try:
        request = parse_search(resource_type, params, base_url=BASE, strict=strict)
    except BadRequest as exc:
        assert exc.status == 400 and exc.diagnostics
        return
    assert 0 <= request.count <= 200 and request.offset >= 0


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_date_ranges_are_ordered_or_refused(text: str) -> None:
    try:
        found = parse_range(text)
    except ValueError:
        return
    assert MIN_INSTANT <= found.low <= found.high <= MAX_INSTANT
    assert len(found.low) == len(found.high) == len(MIN_INSTANT)


# --------------------------------------------------------------------------- semantics


@pytest.fixture
def ticker() -> Ticker:
    return Ticker(timedelta(minutes=1))


def find(repo: SqlResourceRepository, resource_type: str, query: str) -> list[str]:
    pairs = [tuple(p.split("=", 1)) for p in query.split("&") if p]
    request = parse_search(resource_type, pairs, base_url=BASE)  # type: ignore[arg-type]
    page = repo.page(PageQuery(resource_type, request.criteria, 100))
    assert page.total == len(page.resources)
    return sorted(r["id"] for r in page.resources)


def obs(oid: str, **fields: Any) -> dict[str, Any]:
    return {"resourceType": "Observation", "id": oid, "status": "final",
            "code": {"text": "x"}, **fields}


def test_date_prefixes_against_datetimes_and_periods(repo: SqlResourceRepository) -> None:
    repo.bulk_load([
        obs("day", effectiveDateTime="2024-03-10"),
        obs("instant", effectiveDateTime="2024-03-10T23:30:00-01:00"),  # 2024-03-11 UTC
        obs("period", effectivePeriod={"start": "2024-03-09", "end": "2024-03-12"}),
        obs("open", effectivePeriod={"start": "2024-03-11T08:00:00Z"}),
        obs("old", effectiveDateTime="2023"),
        obs("none"),
    ])
    assert find(repo, "Observation", "date=2024-03-10") == ["day"]
    assert find(repo, "Observation", "date=2024-03") == ["day", "instant", "period"]
    assert find(repo, "Observation", "date=ne2024-03-10") == ["instant", "old", "open",
                                                              "period"]
    assert find(repo, "Observation", "date=lt2024-03-10") == ["old", "period"]
    assert find(repo, "Observation", "date=gt2024-03-10") == ["instant", "open", "period"]
    assert find(repo, "Observation", "date=ge2024-03-11") == ["instant", "open", "period"]
    assert find(repo, "Observation", "date=le2024-03-10") == ["day", "old", "period"]
    assert find(repo, "Observation", "date=sa2024-03-10") == ["instant", "open"]
    assert find(repo, "Observation", "date=eb2024-03-10") == ["old"]
    assert find(repo, "Observation", "date=2024-03-11T00:30:00Z") == ["instant"]
    assert find(repo, "Observation", "date=2024-03-11T01:30+01:00") == ["instant"]
    assert find(repo, "Observation", "date=ge2024&date=lt2025") == ["day", "instant", "open",
                                                                    "period"]
    assert find(repo, "Observation", "date:missing=true") == ["none"]


def test_string_search_is_case_and_accent_insensitive(repo: SqlResourceRepository) -> None:
    repo.bulk_load([
        {"resourceType": "Patient", "id": "a", "name": [{"family": "Müller", "given": ["Zoë"]}]},
        {"resourceType": "Patient", "id": "b", "name": [{"family": "MULLER"}]},
        {"resourceType": "Patient", "id": "c", "name": [{"family": "Mullerova"}]},
    ])
    assert find(repo, "Patient", "family=muller") == ["a", "b", "c"]
    assert find(repo, "Patient", "given=ZOE") == ["a"]
    assert find(repo, "Patient", "family:exact=Müller") == ["a"]
    assert find(repo, "Patient", "family:exact=muller") == []
    assert find(repo, "Patient", "name:contains=LEROV") == ["c"]
    assert find(repo, "Patient", "family=müllerov") == ["c"]


def test_token_and_reference_forms(repo: SqlResourceRepository) -> None:
    repo.bulk_load([
        obs("o1", category=[{"coding": [{"system": "cat", "code": "lab"}]}],
            subject={"reference": "Patient/p1"}),
        obs("o2", category=[{"coding": [{"code": "lab"}]}],
            subject={"reference": f"{BASE}/Patient/p2"}),
        obs("o3", category=[{"coding": [{"system": "other", "code": "vital"}]}],
            subject={"reference": "Group/g1"}),
    ])
    assert find(repo, "Observation", "category=cat|lab") == ["o1"]
    assert find(repo, "Observation", "category=|lab") == ["o2"]
    assert find(repo, "Observation", "category=lab") == ["o1", "o2"]
    assert find(repo, "Observation", "category=other|") == ["o3"]
    assert find(repo, "Observation", "category=cat|lab,other|vital") == ["o1", "o3"]
    assert find(repo, "Observation", "patient=p1") == ["o1"]
    assert find(repo, "Observation", f"subject={BASE}/Group/g1") == ["o3"]
    assert find(repo, "Observation", f"patient={BASE}/Patient/p2") == []  # stored absolute
    assert find(repo, "Observation", f"subject={BASE}/Patient/p2") == []
    assert find(repo, "Observation", "_id=o1,o3&category=lab") == ["o1"]


def test_quantity_search(repo: SqlResourceRepository) -> None:
    def qty(value: float, code: str = "mg") -> dict[str, Any]:
        return {"value": value, "unit": code, "system": UCUM, "code": code}

    repo.bulk_load([obs("a", valueQuantity=qty(5.4)), obs("b", valueQuantity=qty(5.449)),
                    obs("c", valueQuantity=qty(100, "g")),
                    obs("d", valueQuantity={"value": 101, "unit": "gram"})])
    assert find(repo, "Observation", "value-quantity=5.4") == ["a", "b"]
    assert find(repo, "Observation", "value-quantity=5.40") == ["a"]
    assert find(repo, "Observation", f"value-quantity=gt5.4|{UCUM}|mg") == ["b"]
    assert find(repo, "Observation", "value-quantity=le100") == ["a", "b", "c"]
    assert find(repo, "Observation", "value-quantity=ap100") == ["c", "d"]
    assert find(repo, "Observation", "value-quantity=ge100||gram") == ["d"]
    assert find(repo, "Observation", "value-quantity=ne5.4") == ["c", "d"]


def test_last_updated(repo: SqlResourceRepository) -> None:
    for i in range(3):  # stamped 2025-01-01T00:01, :02, :03 by the Ticker
        repo.put({"resourceType": "Patient", "id": f"p{i}"})
    assert find(repo, "Patient", "_lastUpdated=2025-01-01T00:02Z") == ["p1"]
    assert find(repo, "Patient", "_lastUpdated=gt2025-01-01T00:01Z") == ["p1", "p2"]
    assert find(repo, "Patient", "_lastUpdated=ge2025-01-01T00:02:00.000Z") == ["p1", "p2"]
    assert find(repo, "Patient", "_lastUpdated=lt2025-01-01T01:02+01:00") == ["p0"]
    assert find(repo, "Patient", "_lastUpdated=2025-01") == ["p0", "p1", "p2"]
    assert find(repo, "Patient", "_lastUpdated=sa2024&_lastUpdated=eb2026") == ["p0", "p1",
                                                                                 "p2"]
    assert find(repo, "Patient", "_lastUpdated=ne2025-01-01T00:02Z") == ["p0", "p2"]


def test_every_declared_parameter_is_indexed() -> None:
    """Each parameter of the table yields an index entry for a resource that has it."""
    resource = {"resourceType": "Encounter", "id": "e", "status": "finished",
                "class": {"system": "s", "code": "AMB"}, "subject": {"reference": "Patient/p"},
                "period": {"start": "2024-01-01T09:00:00Z"},
                "participant": [{"individual": {"reference": "Practitioner/d"}}]}
    assert {e.param for e in index_entries(resource)} == set(SEARCH_PARAMS["Encounter"])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.just(10 ** 400)
                    | st.floats() | st.text(),
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.sampled_from(["reference", "coding", "system", "code",
                                                       "value", "start", "end", "family"]),
                                      inner, max_size=3), max_leaves=12),
       st.sampled_from(sorted(SEARCH_PARAMS)))
def test_indexing_never_fails_on_odd_content(content: Any, resource_type: str) -> None:
    resource = {"resourceType": resource_type, "id": "x",
                **{p.path[0]: content for p in SEARCH_PARAMS[resource_type].values()}}
    for entry in index_entries(resource):
        assert entry.param in SEARCH_PARAMS[resource_type]


# --------------------------------------------------------------------------- over HTTP


class SyncServer:
    """The FHIR app over a filled store, driven from synchronous hypothesis examples
    through one private event loop."""

    def __init__(self, server: SearchServer, loop: asyncio.AbstractEventLoop) -> None:
        self.server = server
        self.loop = loop
        self.token = server.token("user/*.rs")

    def get(self, resource_type: str, params: list[tuple[str, str]]) -> httpx.Response:
        return self.loop.run_until_complete(self.server.client.get(
            f"{self.server.base}/{resource_type}", params=params,
            headers={"Authorization": f"Bearer {self.token}"}))

    def post(self, resource_type: str, params: list[tuple[str, str]]) -> httpx.Response:
        return self.loop.run_until_complete(self.server.post_search(
            resource_type, urlencode(params), self.token))


@pytest.fixture
def http(sql_url: str, realm: RealmConfig, auth: FakeAuthServer) -> Iterator[SyncServer]:
    loop = asyncio.new_event_loop()
    generator = search_server.__wrapped__(sql_url, realm, auth)  # type: ignore[attr-defined]
    server = loop.run_until_complete(generator.__anext__())
    server.load([
        {"resourceType": "Patient", "id": "p1", "birthDate": "1980-02",
         "name": [{"family": "Ødegård", "given": ["Zoë"]}]},
        obs("o1", subject={"reference": "Patient/p1"}, effectiveDateTime="2024-03-10",
            valueQuantity={"value": 5.4, "unit": "mg", "system": UCUM, "code": "mg"}),
    ])
    yield SyncServer(server, loop)
    loop.run_until_complete(generator.aclose())
    loop.close()


TYPES = ["Patient", "Observation", "Encounter", "Practitioner", "DiagnosticReport"]


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(resource_type=st.sampled_from(TYPES),
       params=st.lists(st.tuples(st.sampled_from(NAMES), RAW), max_size=5),
       post=st.booleans())
def test_search_over_http_never_500(http: SyncServer, resource_type: str,
                                    params: list[tuple[str, str]], post: bool) -> None:
    response = http.post(resource_type, params) if post else http.get(resource_type, params)
    assert response.status_code in (200, 400), response.text[:300]
    body = response.json()
    assert body["resourceType"] == ("Bundle" if response.status_code == 200
                                    else "OperationOutcome")
