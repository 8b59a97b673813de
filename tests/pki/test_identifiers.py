"""National identifiers (docs/identifiers.md): NIR keys, Luhn keys of RPPS / RPPS-rang / FINESS / SIRET,
Struct_IdNat."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from identifiers import luhn_valid, rpps_problem
from pki import PsIdentity, StructureIdentity, nir_problem, struct_idnat_problem


@pytest.mark.parametrize("nir", [
    "284067512345688",   # computed
    "185052A01234579",   # Corsica 2A -> 19
    "188102B17295264",   # Corsica 2B -> 18, DMPConnect test identity
    "207058575627097",   # key 97 (N mod 97 = 0)
    "255069999999934",   # DMPConnect demo patient
])
def test_valid_nirs(nir: str) -> None:
    assert nir_problem(nir) is None


@pytest.mark.parametrize(("nir", "why"), [
    ("284067512345687", "wrong key"),
    ("185054958815780", "wrong key: 80, expected 25"),   # seed S003
    ("28406751234568", "13 digits"),
    ("2840675123456888", "13 digits"),
    ("28406X512345688", "13 digits"),
    ("２84067512345688", "13 digits"),                 # full-width digit
])
def test_invalid_nirs(nir: str, why: str) -> None:
    problem = nir_problem(nir)
    assert problem is not None
    assert why in problem


@given(st.integers(min_value=10**12, max_value=10**13 - 1))
def test_nir_key_property(body: int) -> None:
    key = 97 - body % 97
    assert nir_problem(f"{body}{key:02d}") is None
    assert nir_problem(f"{body}{(key % 97) + 1:02d}") is not None


@pytest.mark.parametrize(("digits", "ok"), [
    ("99700012349", True), ("99900063480", True), ("99700024450", True), ("99900023351", True),
    ("99700012340", False), ("99700012349012", True), ("750712184", True), ("750712185", False),
    ("39172288100052", True), ("", False), ("12a", False),
])
def test_luhn(digits: str, ok: bool) -> None:
    assert luhn_valid(digits) is ok


def test_rpps_and_idnat_ps() -> None:
    assert rpps_problem("99700012349") is None
    assert "Luhn" in (rpps_problem("99700012340") or "")
    assert PsIdentity.from_rpps("99700012349", "TESTEUR", "ALICE").idnat_ps == "899700012349"
    assert PsIdentity.from_adeli("751234567", "INFIRMIER", "BOB").idnat_ps == "0751234567"
    with pytest.raises(ValueError, match="Luhn"):
        PsIdentity.from_rpps("99700012340", "X", "Y")
    with pytest.raises(ValueError, match="9 digits"):
        PsIdentity.from_adeli("7512345", "X", "Y")


@pytest.mark.parametrize("value", [
    "499700012349012", "499900063480001", "499700024450014", "499700735741008",   # RPPS-rang (Luhn)
    "1750712184", "10B0127189", "12A0000001",                                     # FINESS (letters: format only)
    "339172288100052",                                                            # SIRET
    "2391722881",                                                                 # SIREN
])
def test_valid_struct_idnat(value: str) -> None:
    assert struct_idnat_problem(value) is None


@pytest.mark.parametrize("value", ["", "499700012349013", "49970001234901", "9750712184", "1ABC", "3391722881"])
def test_invalid_struct_idnat(value: str) -> None:
    assert struct_idnat_problem(value) is not None


def test_structure_identities() -> None:
    assert StructureIdentity.from_finess("750712184", "AP-HP").struct_idnat == "1750712184"
    assert StructureIdentity.from_siret("39172288100052", "GIE SESAM-VITALE").struct_idnat == "339172288100052"
    assert StructureIdentity.from_siret("35600000000010", "LA POSTE").struct_idnat == "335600000000010"
    with pytest.raises(ValueError, match="Luhn"):
        StructureIdentity.from_finess("750712185", "X")
    with pytest.raises(ValueError, match="check digit"):
        StructureIdentity.from_siret("39172288100053", "X")
