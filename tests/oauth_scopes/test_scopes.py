import contextlib
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smartrealm.oauth.scopes import ScopeSyntaxError, parse_scope, parse_scopes

TYPES = st.sampled_from(["Patient", "Observation", "Condition", "ImagingStudy", "*"])
CONTEXT = st.sampled_from(["patient", "user", "system"])
LETTER_SETS = st.sets(st.sampled_from("cruds"), min_size=1)


def test_v2_scope_parts() -> None:
    s = parse_scope("patient/Observation.rs")
    assert s is not None
    assert (s.context, s.resource_type, s.letters, s.version) == ("patient", "Observation", "rs", 2)
    assert s.covers("Observation", "r") and s.covers("Observation", "s")
    assert not s.covers("Observation", "c")
    assert not s.covers("Condition", "r")


@pytest.mark.parametrize(("suffix", "letters"), [("read", "rs"), ("write", "cud"), ("*", "cruds")])
def test_v1_suffixes_map_to_v2(suffix: str, letters: str) -> None:
    s = parse_scope(f"user/Patient.{suffix}")
    assert s is not None and s.letters == letters and s.version == 1


def test_wildcard_type_covers_every_type() -> None:
    s = parse_scope("patient/*.r")
    assert s is not None and s.covers("Anything", "r") and not s.covers("Anything", "s")


def test_write_does_not_imply_read() -> None:
    s = parse_scope("patient/Observation.c")
    assert s is not None and not s.covers("Observation", "r")


@pytest.mark.parametrize("bad", ["patient/Observation.sr", "patient/Observation.dr",
                                 "patient/Observation.", "patient/observation.rs",
                                 "patient/Observation.x", "user/Observation.read?category=a",
                                 "patient/Observation.rs?category", "patient/.rs"])
def test_malformed_resource_scopes_are_errors(bad: str) -> None:
    with pytest.raises(ScopeSyntaxError):
        parse_scope(bad)


def test_granular_query_raw_or_percent_encoded() -> None:
    system = "http://terminology.hl7.org/CodeSystem/observation-category"
    raw = f"patient/Observation.rs?category={system}|laboratory"
    enc = "patient/Observation.rs?category=" + quote(f"{system}|laboratory", safe="")
    a, b = parse_scope(raw), parse_scope(enc)
    assert a is not None and b is not None
    assert a.params == b.params == (("category", f"{system}|laboratory"),)


def test_non_resource_scopes_are_other_and_duplicates_dropped() -> None:
    s = parse_scopes("openid fhirUser launch/patient patient/Patient.rs openid  __ext.x")
    assert s.other == ("openid", "fhirUser", "launch/patient", "__ext.x")
    assert [r.raw for r in s.resource] == ["patient/Patient.rs"]
    assert str(s) == "openid fhirUser launch/patient patient/Patient.rs __ext.x"
    assert "launch/patient" in s and s.has_patient_scopes()


@given(CONTEXT, TYPES, LETTER_SETS)
def test_every_ordered_letter_subset_parses(context: str, rtype: str, letters: set[str]) -> None:
    suffix = "".join(ch for ch in "cruds" if ch in letters)
    s = parse_scope(f"{context}/{rtype}.{suffix}")
    assert s is not None and s.permissions == frozenset(letters)
    assert s.with_permissions(suffix).raw == f"{context}/{rtype}.{suffix}"


@given(CONTEXT, TYPES, st.permutations("cruds"), st.integers(2, 5))
def test_out_of_order_letters_rejected(context: str, rtype: str, perm: list[str], n: int) -> None:
    suffix = "".join(perm[:n])
    ordered = "".join(ch for ch in "cruds" if ch in suffix)
    if suffix != ordered:
        with pytest.raises(ScopeSyntaxError):
            parse_scope(f"{context}/{rtype}.{suffix}")


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60))
def test_parser_never_crashes(text: str) -> None:
    with contextlib.suppress(ScopeSyntaxError):
        parse_scopes(text)
