"""Pure rules: CPS ATRs and the practice-situation objects (BER-TLV in a 0xEE container, docs/cps-card.md §1–§2)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cardreader import (
    CardError,
    CardModel,
    CardProblem,
    atr_hex,
    card_model,
    encode_practice_situation,
    practice_situation,
)


@pytest.mark.parametrize(("atr", "model"), [
    ("3B AC 00 40 2A 00 12 25 00 64 80 00 03 10 00 90 00", CardModel.CPS3),
    ("3B AC 00 40 2A 00 12 25 00 64 80 82 02 12 00 90 00", CardModel.CPS3),
    ("3B 8F 80 01 00 31 B8 64 04 B0 EC C1 73 94 01 80 82 90 00 0E", CardModel.CPS3_CONTACTLESS),
    ("3B DC 18 FF 00 00 12 25 00 64 80 00 04 01 00 90 00", CardModel.CPS4),
    ("3B 65 00 00 20 63 CB A0 00", None),                      # not a CPS card
    ("3B AC 00 40 2A 00 12 25 00 64 80 00 03 10 00 90", None),   # truncated CPS3 ATR
])
def test_cps_cards_are_told_by_their_atr(atr: str, model: CardModel | None) -> None:
    raw = bytes.fromhex(atr)
    assert card_model(raw) is model
    assert atr_hex(raw) == atr


def test_a_practice_situation_reads_structure_name_and_sector() -> None:
    value = bytes.fromhex("EE") + bytes([0x25]) + b"\x84\x0cCABINET TEST" + b"\x85\x0f499700012349012" + b"\x86\x04SA07"
    s = practice_situation(3, value)
    assert (s.number, s.structure_id, s.structure_name, s.sector) == (3, "499700012349012", "CABINET TEST", "SA07")


@given(st.text(min_size=0, max_size=300).filter(lambda t: t == t.strip()),
       st.from_regex(r"[0-9]{9,15}", fullmatch=True), st.from_regex(r"SA[0-9]{2}", fullmatch=True))
def test_practice_situations_round_trip(name: str, structure: str, sector: str) -> None:
    s = practice_situation(1, encode_practice_situation(structure, name, sector))
    assert (s.structure_id, s.structure_name, s.sector) == (structure, name, sector)


@pytest.mark.parametrize("value", [b"", b"\xee\x05\x85\x03123", b"\x30\x03\x85\x01\x31", b"\xee\x10\x85\x02"])
def test_a_malformed_practice_situation_is_a_clear_card_content_error(value: bytes) -> None:
    with pytest.raises(CardError) as info:
        practice_situation(2, value)
    assert info.value.problem is CardProblem.CARD_CONTENT
    assert "CPS_ACTIVITY_02_PS" in str(info.value)
