"""Search size limits (fhir/search/limits.py, docs/behaviour.md "Searching"): a search at
every limit runs on SQLite and PostgreSQL and returns exactly the right resources (a
property test over every parameter type, GET and POST ``_search``, with and without a
patient restriction, with ``_sort`` and ``_include``/``_revinclude``); one step over any
limit is a 400 ``too-costly`` OperationOutcome — on the built-in server, in a batch search
entry and through the proxy, which never sends such a search upstream."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.routing import Mount

from smartrealm.fhir.app import create_app
from smartrealm.fhir.proxy import build_proxy_server
from smartrealm.fhir.proxy.upstream import NoCredentials
from smartrealm.fhir.search.limits import (
    MAX_PARAMETERS,
    MAX_SEARCH_LENGTH,
    MAX_VALUE_LENGTH,
    MAX_VALUES,
    MAX_VALUES_PER_PARAMETER,
)
from smartrealm.fhir.settings import FhirSettings
from smartrealm.fhir.sql import SqlResourceRepository
from smartrealm.guard import checker_for_server
from smartrealm.realm.config import RealmConfig
from smartrealm.storage import make_engine
from tests.fhir.proxy_target import PROXY_BASE, proxied_realm
from tests.fhir.search_app import SERVER, SearchServer
from tests.guard.tokens import FakeAuthServer, details_entry

UCUM = "http://unitsofmeasure.org"
CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
LOINC = "http://loinc.org"
O1, O2 = "Observation/o1", "Observation/o2"
P1, P2 = "Patient/p1", "Patient/p2"

RESOURCES: list[dict[str, Any]] = [
    {"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1980-02",
     "name": [{"family": "Ødegård", "given": ["Zoë"]}],
     "identifier": [{"system": "urn:mrn", "value": "M1"}],
     "generalPractitioner": [{"reference": "Practitioner/d1"}]},
    {"resourceType": "Patient", "id": "p2", "gender": "male", "birthDate": "1990-05-05",
     "name": [{"family": "Smith", "given": ["Anna"]}],
     "identifier": [{"system": "urn:mrn", "value": "M2"}],
     "generalPractitioner": [{"reference": "Practitioner/d2"}]},
    {"resourceType": "Observation", "id": "o1", "status": "final",
     "subject": {"reference": "Patient/p1"}, "encounter": {"reference": "Encounter/e1"},
     "category": [{"coding": [{"system": CATEGORY, "code": "laboratory"}]}],
     "code": {"coding": [{"system": LOINC, "code": "2339-0"}]},
     "effectiveDateTime": "2024-03-10T10:00:00Z",
     "valueQuantity": {"value": 5.4, "unit": "mg", "system": UCUM, "code": "mg"}},
    {"resourceType": "Observation", "id": "o2", "status": "amended",
     "subject": {"reference": "Patient/p2"}, "encounter": {"reference": "Encounter/e2"},
     "category": [{"coding": [{"system": CATEGORY, "code": "vital-signs"}]}],
     "code": {"coding": [{"system": LOINC, "code": "8867-4"}]},
     "effectivePeriod": {"start": "2019-01-01", "end": "2019-02-01"},
     "valueQuantity": {"value": 120, "unit": "mmHg", "system": UCUM, "code": "mm[Hg]"}},
]


@dataclass(frozen=True)
class Param:
    """A search parameter of the catalogue: values that match known resources, and a
    filler for value ``i`` that matches none of them. ``single``: one value only."""

    name: str
    options: tuple[tuple[str, frozenset[str]], ...]
    filler: str
    single: bool = False
    long_filler: bool = False  # a filler may be MAX_VALUE_LENGTH long (token, string)

    def fill(self, i: int, long: bool) -> str:
        value = self.filler.format(i=i, y=i % 100)
        return value + "z" * (MAX_VALUE_LENGTH - len(value)) if long else value


def _p(name: str, filler: str, *options: tuple[str, set[str]], single: bool = False,
       long_filler: bool = False) -> Param:
    return Param(name, tuple((v, frozenset(m)) for v, m in options), filler, single,
                 long_filler)


BASE = "http://127.0.0.1:8701/fhir"  # the default realm's EHR (tests/fhir/conftest.py)


def _updated(*matches: str) -> Param:
    return _p("_lastUpdated", "lt18{y:02d}", ("gt2000", set(matches)))


CATALOGUE: dict[str, list[Param]] = {
    "Observation": [
        _p("patient", "Patient/x{i}", ("Patient/p1", {O1}), ("Patient/p2", {O2})),
        _p("patient:Patient", "x{i}", ("p1", {O1}), ("p2", {O2})),
        _p("subject", "Patient/x{i}", (f"{BASE}/Patient/p1", {O1}), ("Patient/p2", {O2})),
        _p("category", "c{i}", (f"{CATEGORY}|laboratory", {O1}),
           ("vital-signs", {O2}), long_filler=True),
        _p("code", LOINC + "|z{i}", (f"{LOINC}|2339-0", {O1}), ("8867-4", {O2}),
           (f"{LOINC}|", {O1, O2}), long_filler=True),
        _p("encounter", "Encounter/z{i}", ("Encounter/e1", {O1}), ("Encounter/e2", {O2})),
        _p("status", "s{i}", ("final", {O1}), ("amended", {O2})),
        _p("date", "18{y:02d}", ("2024-03-10", {O1}), ("eb2019-06", {O2}),
           ("ge2000", {O1, O2}), ("ne2024-03-10", {O2})),
        _p("value-quantity", "ap{i}000", (f"5.4|{UCUM}|mg", {O1}), ("ge100||mm[Hg]", {O2}),
           ("lt1000", {O1, O2})),
        _p("_id", "x{i}", ("o1", {O1}), ("o2", {O2})),
        _p("code:missing", "", ("false", {O1, O2}), ("true", set()), single=True),
        _updated(O1, O2),
    ],
    "Patient": [
        _p("name", "qz{i}", ("ØDE", {P1}), ("SMI", {P2}), long_filler=True),
        _p("family:exact", "Qz{i}", ("Ødegård", {P1}), ("Smith", {P2}), long_filler=True),
        _p("given:contains", "qq{i}", ("oe", {P1}), ("nn", {P2}), long_filler=True),
        _p("birthdate", "17{y:02d}", ("1980", {P1}), ("ge1990-05-05", {P2})),
        _p("gender", "g{i}", ("female", {P1}), ("male", {P2})),
        _p("identifier", "urn:mrn|N{i}", ("urn:mrn|M1", {P1}), ("M2", {P2}),
           long_filler=True),
        _p("general-practitioner", "Practitioner/z{i}", ("Practitioner/d1", {P1}),
           ("Practitioner/d2", {P2})),
        _p("_id", "x{i}", ("p1", {P1}), ("p2", {P2})),
        _updated(P1, P2),
    ],
}
SORT_KEYS = {"Observation": ["date", "-date", "status", "code", "-category", "_id",
                             "-_lastUpdated"],
             "Patient": ["name", "-family", "given", "birthdate", "-gender", "identifier",
                         "-_id", "_lastUpdated"]}
INCLUDE = {"Observation": ("_include", "Observation:patient"),
           "Patient": ("_revinclude", "Observation:patient")}
LINKED = {O1: P1, O2: P2, P1: O1, P2: O2}  # what the include above adds for a match
COMPARTMENT = {"Observation": {O1}, "Patient": {P1}}  # patient p1's, under patient/ scopes
RESULT_PARAMS = 3  # _count, _sort and the include, besides the criteria
MAX_CRITERIA = MAX_PARAMETERS - RESULT_PARAMS


@dataclass(frozen=True)
class Criterion:
    param: Param
    chosen: tuple[int, ...]     # indexes of param.options sent (in this order)
    size: int                   # values in all
    long: int = 0               # how many fillers are MAX_VALUE_LENGTH long

    def values(self) -> list[str]:
        sent = [self.param.options[i][0] for i in self.chosen]
        fillers = [self.param.fill(i, i < self.long) for i in range(self.size - len(sent))]
        # the matching values in the middle, not only first
        half = len(fillers) // 2
        return fillers[:half] + sent + fillers[half:]

    def matches(self) -> frozenset[str]:
        return frozenset().union(*(self.param.options[i][1] for i in self.chosen))


@dataclass(frozen=True)
class Plan:
    resource_type: str
    criteria: tuple[Criterion, ...]
    sort_keys: int
    patient_token: bool
    post: bool

    def params(self) -> list[tuple[str, str]]:
        keys = SORT_KEYS[self.resource_type]
        sort = ",".join(keys[i % len(keys)] for i in range(self.sort_keys))
        return [*[(c.param.name, ",".join(c.values())) for c in self.criteria],
                ("_count", "200"), ("_sort", sort), INCLUDE[self.resource_type]]

    def forbidden(self) -> bool:
        """A patient-confined search naming only other patients is a 403 (fhir/access.py
        check_named_patients)."""
        naming = {"Observation": ("patient", "patient:Patient", "subject"),
                  "Patient": ("_id",)}[self.resource_type]
        return self.patient_token and any(
            c.param.name in naming and 0 not in c.chosen for c in self.criteria)

    def expected(self) -> set[str]:
        found = {f"{r['resourceType']}/{r['id']}" for r in RESOURCES
                 if r["resourceType"] == self.resource_type}
        for criterion in self.criteria:
            found &= criterion.matches()
        return found & COMPARTMENT[self.resource_type] if self.patient_token else found


def check_size(params: list[tuple[str, str]]) -> None:
    """The plan is at or under every limit (so the search must succeed)."""
    values = [v for _, raw in params for v in raw.split(",")]
    assert len(params) <= MAX_PARAMETERS and len(values) <= MAX_VALUES
    assert all(len(raw.split(",")) <= MAX_VALUES_PER_PARAMETER for _, raw in params)
    assert max(len(v) for v in values) <= MAX_VALUE_LENGTH
    assert sum(len(n) + len(v) for n, v in params) <= MAX_SEARCH_LENGTH


# --------------------------------------------------------------------------- the server


class Driver:
    """The FHIR app over RESOURCES on one backend, driven synchronously (hypothesis)."""

    def __init__(self, client: httpx.AsyncClient, loop: asyncio.AbstractEventLoop,
                 auth: FakeAuthServer, base: str) -> None:
        self.client, self.loop, self.base = client, loop, base
        self.tokens = {False: self._token(auth, "user/*.rs"),
                       True: self._token(auth, "patient/*.rs", "p1")}

    def _token(self, auth: FakeAuthServer, scope: str, patient: str | None = None) -> str:
        return auth.mint([self.base], scope, details=[details_entry(self.base, scope, patient)])

    def search(self, plan: Plan) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.tokens[plan.patient_token]}"}
        url = f"{self.base}/{plan.resource_type}"
        if plan.post:
            request = self.client.post(f"{url}/_search", content=urlencode(plan.params()),
                                       headers={**headers, "Content-Type":
                                                "application/x-www-form-urlencoded"})
        else:
            request = self.client.get(url, params=plan.params(), headers=headers)
        return self.loop.run_until_complete(request)


@pytest.fixture
def driver(sql_url: str, realm: RealmConfig, auth: FakeAuthServer) -> Iterator[Driver]:
    engine = make_engine(sql_url)
    repository = SqlResourceRepository(engine)
    repository.create_tables()
    repository.bulk_load(RESOURCES)
    fhir = create_app(FhirSettings(realm, SERVER), repository,
                      checker_for_server(realm, SERVER, auth.http()))
    base = realm.server(SERVER).base_url
    app = Starlette(routes=[Mount(urlsplit(base).path, app=fhir)])
    loop = asyncio.new_event_loop()
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app))
    yield Driver(client, loop, auth, base)
    loop.run_until_complete(client.aclose())
    loop.close()
    engine.dispose()


def check(driver: Driver, plan: Plan) -> None:
    params = plan.params()
    check_size(params)
    response = driver.search(plan)
    if plan.forbidden():
        assert response.status_code == 403, response.text[:300]
        return
    assert response.status_code == 200, response.text[:300]
    bundle = response.json()
    entries = [(e["search"]["mode"], f"{e['resource']['resourceType']}/{e['resource']['id']}")
               for e in bundle.get("entry", [])]
    expected = plan.expected()
    assert {key for mode, key in entries if mode == "match"} == expected
    assert bundle["total"] == len(expected)
    allowed = COMPARTMENT["Patient"] | COMPARTMENT["Observation"] if plan.patient_token \
        else set(LINKED)
    assert {key for mode, key in entries if mode == "include"} == \
        {LINKED[k] for k in expected} & allowed


# --------------------------------------------------------------------------- at the limits


@st.composite
def plans(draw: st.DrawFn) -> Plan:
    """Searches up to every limit at once, biased to the limits themselves: up to
    MAX_CRITERIA criteria of every parameter type, up to MAX_VALUES_PER_PARAMETER values
    each and MAX_VALUES in all (the sort keys included), some MAX_VALUE_LENGTH long."""
    resource_type = draw(st.sampled_from(sorted(CATALOGUE)))
    catalogue = CATALOGUE[resource_type]
    count = draw(st.sampled_from([MAX_CRITERIA, 1]) | st.integers(1, MAX_CRITERIA))
    sort_keys = draw(st.sampled_from([MAX_VALUES_PER_PARAMETER, 1])
                     | st.integers(1, MAX_VALUES_PER_PARAMETER))
    budget = MAX_VALUES - sort_keys - (RESULT_PARAMS - 1)
    longs = 10  # 10 values of MAX_VALUE_LENGTH keep the search under MAX_SEARCH_LENGTH
    criteria = []
    for index in range(count):
        param = draw(st.sampled_from(catalogue))
        most = 1 if param.single else \
            min(MAX_VALUES_PER_PARAMETER, budget - (count - index - 1))
        chosen = tuple(draw(st.lists(st.integers(0, len(param.options) - 1), unique=True,
                                     max_size=min(most, len(param.options)))))
        if param.single:
            chosen = chosen or (0,)
        size = max(draw(st.sampled_from([most]) | st.integers(1, most)), len(chosen))
        long = draw(st.integers(0, min(longs, size - len(chosen)))) if param.long_filler \
            else 0
        longs -= long
        budget -= size
        criteria.append(Criterion(param, chosen, size, long))
    return Plan(resource_type, tuple(criteria), sort_keys, draw(st.booleans()),
                draw(st.booleans()))


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(plan=plans())
def test_searches_up_to_the_limits_run_and_are_right(driver: Driver, plan: Plan) -> None:
    check(driver, plan)


def _spread(resource_type: str, count: int, total: int, *, chosen: int = 0) -> list[Criterion]:
    """``count`` criteria cycling through every parameter of the type, ``total`` values,
    each holding option ``chosen`` (the first: matches o1 / p1) and fillers."""
    catalogue = CATALOGUE[resource_type]
    params = [catalogue[i % len(catalogue)] for i in range(count)]
    multi = [p for p in params if not p.single]
    share, extra = divmod(total - (len(params) - len(multi)), len(multi))
    criteria, given_extra = [], 0
    for param in params:
        size = 1 if param.single else share + (given_extra < extra)
        given_extra += 0 if param.single else 1
        criteria.append(Criterion(param, (chosen,), size))
    return criteria


@pytest.mark.parametrize("resource_type", sorted(CATALOGUE))
@pytest.mark.parametrize("post", [False, True])
def test_every_limit_reached_at_once(driver: Driver, resource_type: str, post: bool) -> None:
    """MAX_PARAMETERS parameters holding MAX_VALUES values (MAX_VALUES_PER_PARAMETER in the
    sort), every parameter type of the type; then MAX_VALUES_PER_PARAMETER values in as
    many criteria as MAX_VALUES allows."""
    sort = MAX_VALUES_PER_PARAMETER
    wide = _spread(resource_type, MAX_CRITERIA, MAX_VALUES - sort - 2)
    plan = Plan(resource_type, tuple(wide), sort, patient_token=False, post=post)
    assert len(plan.params()) == MAX_PARAMETERS
    assert sum(len(v.split(",")) for _, v in plan.params()) == MAX_VALUES
    check(driver, plan)
    assert plan.expected() == {"Observation": {O1}, "Patient": {P1}}[resource_type]
    # every multi-valued parameter at MAX_VALUES_PER_PARAMETER values, as many at once as
    # MAX_VALUES allows
    multi = [p for p in CATALOGUE[resource_type] if not p.single]
    width = (MAX_VALUES - 3) // MAX_VALUES_PER_PARAMETER
    for start in range(0, len(multi), width):
        deep = tuple(Criterion(multi[(start + j) % len(multi)], (0,),
                               MAX_VALUES_PER_PARAMETER) for j in range(width))
        for patient_token in (False, True):
            check(driver, Plan(resource_type, deep, 1, patient_token, post))


# --------------------------------------------------------------------------- over the limits


def _over_limits() -> dict[str, list[tuple[str, str]]]:
    """One step over each limit, everything else within."""
    codes = [f"c{i}" for i in range(MAX_VALUES)]
    long_value = "z" * (MAX_VALUE_LENGTH - 2)
    long_param = ("code", f"{long_value}00,{long_value}01")
    return {
        "parameters": [("status", f"s{i}") for i in range(MAX_PARAMETERS + 1)],
        "values per parameter": [("code", ",".join(codes[:MAX_VALUES_PER_PARAMETER + 1]))],
        "values": [("code", ",".join(codes[i:i + MAX_VALUES_PER_PARAMETER]))
                   for i in range(0, MAX_VALUES, MAX_VALUES_PER_PARAMETER)] + [("status", "x")],
        "value length": [("code", "z" * (MAX_VALUE_LENGTH + 1))],
        "length": [long_param] * (MAX_SEARCH_LENGTH // (len(long_param[0])
                                                        + len(long_param[1])) + 1),
    }


def test_over_limit_searches_are_one_step_over() -> None:
    """Each over-limit search minus one step is within every limit."""
    over = _over_limits()
    check_size(over["parameters"][:-1])
    check_size([("code", over["values per parameter"][0][1].rsplit(",", 1)[0])])
    check_size(over["values"][:-1])
    check_size([("code", over["value length"][0][1][:-1])])
    check_size(over["length"][:-1])


def _too_costly(response: httpx.Response, words: str) -> None:
    assert response.status_code == 400, response.text[:300]
    issue = response.json()["issue"][0]
    assert response.json()["resourceType"] == "OperationOutcome"
    assert (issue["severity"], issue["code"]) == ("error", "too-costly")
    assert words in issue["diagnostics"]


WORDS = {"parameters": f"at most {MAX_PARAMETERS} parameters",
         "values per parameter": f"at most {MAX_VALUES_PER_PARAMETER}",
         "values": f"at most {MAX_VALUES} values",
         "value length": f"longer than {MAX_VALUE_LENGTH}",
         "length": f"at most {MAX_SEARCH_LENGTH} characters"}


@pytest.mark.parametrize("limit", sorted(WORDS))
async def test_one_over_any_limit_is_400_too_costly(search_server: SearchServer,
                                                    limit: str) -> None:
    token = search_server.token("user/*.rs")
    params = _over_limits()[limit]
    if limit != "length":  # a longer URL than that: httpx refuses to send it
        got = await search_server.client.get(f"{search_server.base}/Observation",
                                             params=params,
                                             headers={"Authorization": f"Bearer {token}"})
        _too_costly(got, WORDS[limit])
    posted = await search_server.post_search("Observation", urlencode(params), token)
    _too_costly(posted, WORDS[limit])


async def test_the_query_string_and_the_form_body_count_together(
        search_server: SearchServer) -> None:
    token = search_server.token("user/*.rs")
    half = MAX_PARAMETERS // 2
    query = urlencode([("status", f"s{i}") for i in range(half)])
    form = [("status", f"t{i}") for i in range(MAX_PARAMETERS - half)]
    url = f"Observation/_search?{query}"
    at_limit = await search_server.client.post(
        f"{search_server.base}/{url}", content=urlencode(form),
        headers={"Authorization": f"Bearer {token}",
                 "Content-Type": "application/x-www-form-urlencoded"})
    assert at_limit.status_code == 200, at_limit.text[:300]
    over = await search_server.client.post(
        f"{search_server.base}/{url}", content=urlencode([*form, ("status", "u")]),
        headers={"Authorization": f"Bearer {token}",
                 "Content-Type": "application/x-www-form-urlencoded"})
    _too_costly(over, WORDS["parameters"])
    fields = "&".join(["status=x"] * 1001)  # over the form parser's own field limit
    _too_costly(await search_server.post_search("Observation", fields, token), "fields")


@pytest.mark.parametrize(("params", "words"), [
    ([("code", ",".join(f"c{i}" for i in range(500)))], WORDS["values per parameter"]),
    ([("code", f"c{i}") for i in range(1000)], WORDS["parameters"]),
])
async def test_the_searches_that_answered_500_are_refused(
        search_server: SearchServer, params: list[tuple[str, str]], words: str) -> None:
    """500 OR values, or 1,000 repeated parameters, went past SQLite's expression depth."""
    token = search_server.token("user/*.rs")
    got = await search_server.client.get(f"{search_server.base}/Observation", params=params,
                                         headers={"Authorization": f"Bearer {token}"})
    _too_costly(got, words)


async def test_a_batch_search_entry_over_a_limit_is_its_own_400(
        search_server: SearchServer) -> None:
    token = search_server.token("user/*.rs")
    query = urlencode(_over_limits()["parameters"])
    bundle = {"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": f"Observation?{query}"}},
        {"request": {"method": "GET", "url": "Observation?status=final"}}]}
    response = await search_server.client.post(
        f"{search_server.base}/", content=json.dumps(bundle),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"})
    assert response.status_code == 200
    first, second = (e["response"] for e in response.json()["entry"])
    assert first["status"].startswith("400")
    assert first["outcome"]["issue"][0]["code"] == "too-costly"
    assert second["status"].startswith("200")


# --------------------------------------------------------------------------- the proxy


@pytest.mark.parametrize("limit", sorted(WORDS))
async def test_the_proxy_refuses_over_limit_searches_without_asking_upstream(
        realm: RealmConfig, auth: FakeAuthServer, limit: str) -> None:
    sent: list[httpx.Request] = []

    def upstream(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json={"resourceType": "Bundle", "type": "searchset",
                                         "entry": []})

    app = build_proxy_server(proxied_realm(realm), "ehr", http=auth.http(),
                             upstream_http=httpx.AsyncClient(
                                 transport=httpx.MockTransport(upstream)),
                             credentials=NoCredentials())
    token = auth.mint([PROXY_BASE], "user/*.rs",
                      details=[details_entry(PROXY_BASE, "user/*.rs")])
    headers = {"Authorization": f"Bearer {token}"}
    params = _over_limits()[limit]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as client:
        if limit != "length":  # a longer URL than that: httpx refuses to send it
            _too_costly(await client.get(f"{PROXY_BASE}/Observation", params=params,
                                         headers=headers), WORDS[limit])
            _too_costly(await client.get(f"{PROXY_BASE}/Observation/_history",
                                         params=params, headers=headers), WORDS[limit])
        _too_costly(await client.post(
            f"{PROXY_BASE}/Observation/_search", content=urlencode(params),
            headers={**headers, "Content-Type": "application/x-www-form-urlencoded"}),
            WORDS[limit])
        assert sent == []
        within = await client.get(f"{PROXY_BASE}/Observation",
                                  params=[("status", "final")], headers=headers)
    assert within.status_code == 200 and len(sent) == 1
