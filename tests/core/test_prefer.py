"""The one ``Prefer`` parser (RFC 7240) behind FHIR's ``handling=strict``."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smartrealm.core.prefer import prefers_strict_handling


@pytest.mark.parametrize("header", [
    "handling=strict", "HANDLING=Strict", " handling = strict ", "return=minimal, handling=strict",
    "handling=strict; x=1", 'handling="strict"', "respond-async,handling=strict",
])
def test_strict(header: str) -> None:
    assert prefers_strict_handling(header)


@pytest.mark.parametrize("header", [
    None, "", "handling=lenient", "handling", "return=representation", "x=1; handling=strict",
    "handlingstrict", "handling=strictly",
])
def test_not_strict(header: str | None) -> None:
    # "x=1; handling=strict": a parameter of another preference, not a preference of its own.
    assert not prefers_strict_handling(header)


@given(st.text(max_size=200))
def test_never_raises(header: str) -> None:
    assert prefers_strict_handling(header) in (True, False)
