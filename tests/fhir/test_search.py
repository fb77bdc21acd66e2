import pytest

from smartrealm.fhir.errors import BadRequest
from smartrealm.fhir.search.parse import SearchRequest, page_links, parse_search
from smartrealm.fhir.search.query import DateValue, ReferenceValue, StringValue, TokenValue
from smartrealm.fhir.search.values import parse_date, split_values

BASE = "http://127.0.0.1:8701/fhir"


def parse(resource_type: str, query: list[tuple[str, str]], strict: bool = False) -> SearchRequest:
    return parse_search(resource_type, query, base_url=BASE, strict=strict)


def test_token_forms() -> None:
    clause = parse("Observation", [("code", "http://loinc.org|718-7,|x,y,s|")]).criteria[0]
    assert clause.values == (TokenValue("http://loinc.org", "718-7"), TokenValue("", "x"),
                             TokenValue(None, "y"), TokenValue("s", None))


def test_reference_forms() -> None:
    values = [parse("Observation", [("patient", v)]).criteria[0].values[0]
              for v in ("p1", "Patient/p1", f"{BASE}/Patient/p1", "HTTP://127.0.0.1:8701/fhir/Patient/p1/",
                        "http://other/fhir/Patient/p1")]
    assert values[:4] == [ReferenceValue("Patient", "p1")] * 4
    assert values[4] == ReferenceValue(None, None, url="http://other/fhir/Patient/p1")
    with pytest.raises(BadRequest):
        parse("Observation", [("patient", "Practitioner/1")])
    assert parse("Observation", [("subject", "x")]).criteria[0].values[0] == \
        ReferenceValue(None, "x")


def test_string_and_date() -> None:
    assert parse("Patient", [("name", "SMI")]).criteria[0].values == (StringValue("smi", "prefix"),)
    assert parse_date("birthdate", "1980") == DateValue(
        "eq", "1980-01-01T00:00:00.000000Z", "1981-01-01T00:00:00.000000Z")
    assert parse_date("birthdate", "ge1980-02") == DateValue(
        "ge", "1980-02-01T00:00:00.000000Z", "1980-03-01T00:00:00.000000Z")
    for bad in ("ap1980", "1980-13", "1980-01-01T25:00", "x"):
        with pytest.raises(BadRequest):
            parse_date("birthdate", bad)


def test_paging_parameters_and_links() -> None:
    request = parse("Patient", [("name", "a b"), ("_count", "500"), ("_offset", "200"),
                                ("unknown", "1"), ("_format", "json"), ("gender", "")])
    assert (request.count, request.offset, request.used) == (200, 200, (("name", "a b"),))
    links = page_links(BASE, request, total=450)
    assert [link["relation"] for link in links] == ["self", "first", "previous", "next",
                                                    "last"]
    assert links[0]["url"] == f"{BASE}/Patient?name=a+b&_count=200&_offset=200"
    assert links[2]["url"].endswith("_offset=0") and links[3]["url"].endswith("_offset=400")
    with pytest.raises(BadRequest, match="unknown search parameter 'unknown'"):
        parse("Patient", [("unknown", "1")], strict=True)


def test_escaped_commas() -> None:
    assert split_values(r"a\,b,c") == ["a,b", "c"]
