from __future__ import annotations

import string

from hypothesis import given
from hypothesis import strategies as st

from smartrealm.oauth import pkce

UNRESERVED = string.ascii_letters + string.digits + "-._~"
verifiers = st.text(alphabet=UNRESERVED, min_size=43, max_size=128)


def test_rfc7636_appendix_b_example() -> None:
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert pkce.s256(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    assert pkce.verify(verifier, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")


@given(verifiers)
def test_every_grammatical_verifier_verifies_against_its_challenge(verifier: str) -> None:
    challenge = pkce.s256(verifier)
    assert pkce.is_valid_challenge(challenge)
    assert pkce.verify(verifier, challenge)
    assert not pkce.verify(challenge, challenge) or verifier == challenge


@given(verifiers, verifiers)
def test_another_verifier_fails(a: str, b: str) -> None:
    if a != b:
        assert not pkce.verify(b, pkce.s256(a))


@given(st.text(max_size=200))
def test_verifier_grammar(text: str) -> None:
    ok = 43 <= len(text) <= 128 and all(ch in UNRESERVED for ch in text)
    assert pkce.is_valid_verifier(text) == ok


def test_out_of_grammar_verifier_never_verifies() -> None:
    short = "a" * 42
    assert not pkce.verify(short, pkce.s256(short))
    spaced = "a" * 42 + " "
    assert not pkce.verify(spaced, pkce.s256(spaced))
    assert len(pkce.new_verifier()) == 43
