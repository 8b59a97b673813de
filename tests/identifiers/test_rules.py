"""The one source of the identifier rules (docs/identifiers.md), property-tested, and the registry and the PKI
giving the same answer for every input because both ask it."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

import pki
from identifiers import INS_NIR_OIDS, is_oid, nir_problem
from registry import _hl7, check_nir

DIGITS = "0123456789"


@st.composite
def nir_bodies(draw: st.DrawFn) -> str:
    """13 characters: sex, year, month, département (2 digits or 2A/2B), commune, order."""
    dept = draw(st.sampled_from(["2A", "2B"]) | st.text(DIGITS, min_size=2, max_size=2))
    return (draw(st.text(DIGITS, min_size=5, max_size=5)) + dept + draw(st.text(DIGITS, min_size=6, max_size=6)))


def key(body: str) -> str:
    n = int(body[:5] + body[5:7].replace("2A", "19").replace("2B", "18") + body[7:])
    return f"{97 - n % 97:02d}"


@given(nir_bodies())
def test_a_nir_with_its_key_is_accepted(body: str) -> None:
    assert nir_problem(body + key(body)) is None


@given(nir_bodies(), st.integers(0, 99))
def test_any_other_key_is_refused(body: str, other: int) -> None:
    if f"{other:02d}" != key(body):
        assert nir_problem(f"{body}{other:02d}") is not None


@given(nir_bodies(), st.sampled_from([" ", "\t", "-", "."]), st.integers(0, 14))
def test_a_separator_anywhere_is_refused(body: str, sep: str, at: int) -> None:
    nir = body + key(body)
    assert nir_problem(nir[:at] + sep + nir[at:]) is not None


@given(nir_bodies())
def test_corsica_in_lower_case_is_refused(body: str) -> None:
    nir = body + key(body)
    if "2A" in nir[5:7] or "2B" in nir[5:7]:
        assert nir_problem(nir[:5] + nir[5:7].lower() + nir[7:]) is not None


@st.composite
def oids(draw: st.DrawFn) -> str:
    first = draw(st.integers(0, 2))
    second = draw(st.integers(0, 39 if first < 2 else 10**6))
    rest = draw(st.lists(st.integers(0, 10**9), max_size=8))
    return ".".join(str(a) for a in (first, second, *rest))


@given(oids())
def test_oids_are_accepted(oid: str) -> None:
    assert is_oid(oid)


@given(oids(), st.integers(3, 99))
def test_a_first_arc_above_2_is_refused(oid: str, first: int) -> None:
    assert not is_oid(f"{first}.{oid.split('.', 1)[1]}")


@given(oids(), st.integers(0, 8))
def test_a_leading_zero_is_refused(oid: str, arc: int) -> None:
    arcs = oid.split(".")
    arcs[arc % len(arcs)] = "0" + arcs[arc % len(arcs)]
    assert not is_oid(".".join(arcs))


@pytest.mark.parametrize(("value", "ok"), [("7.1", False), ("1.40", False), ("1.39", True), ("2.40", True),
                                           ("1", False), ("1.2.", False), (".1.2", False), ("1..2", False)])
def test_oid_examples(value: str, ok: bool) -> None:
    assert is_oid(value) is ok


ANY_TEXT = st.text(alphabet=DIGITS + "2AB ab.-\t\n²٣", max_size=20)


@given(st.one_of(ANY_TEXT, nir_bodies().map(lambda b: b + key(b))))
def test_registry_and_pki_agree_on_every_nir(value: str) -> None:
    assert check_nir(value) == pki.nir_problem(value) == nir_problem(value)


@given(st.one_of(st.text(alphabet="0123456789.", max_size=30), oids()))
def test_registry_oid_rule_is_the_shared_one_with_the_xds_length_limit(value: str) -> None:
    assert (_hl7.check_oid(value) is None) == (is_oid(value) and len(value) <= 64)


def test_ins_nir_authorities_are_defined_once() -> None:
    assert pki.INS_NIR_OIDS is INS_NIR_OIDS
    assert not hasattr(_hl7, "INS_NIR_OIDS")


@pytest.mark.parametrize("value", ["185052a01234579", "2840675123456 88"])
def test_the_values_the_two_copies_disagreed_on_are_refused_by_both(value: str) -> None:
    assert check_nir(value) is not None
    assert pki.nir_problem(value) is not None
