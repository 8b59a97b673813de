"""The compact stored form of the registry's keys (registry._compact_keys, migration 0009_compact_keys): every id,
status and attribute name reads back exactly as it was written, and a canonical ``urn:uuid:`` takes 16 bytes."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from registry._compact_keys import ATTRIBUTE_CODES, STATUS_CODES, Codes, decode_id, encode_id
from registry._vocabulary import Status

canonical = st.uuids().map(lambda u: f"urn:uuid:{u}")


@given(st.text())
def test_any_id_reads_back_exactly(value):
    assert decode_id(encode_id(value)) == value


@given(canonical)
def test_a_canonical_uuid_takes_its_16_bytes(value):
    stored = encode_id(value)
    assert stored == uuid.UUID(value[9:]).bytes
    assert decode_id(stored) == value


@given(st.one_of(canonical.map(str.upper), canonical.map(lambda v: "urn:uuid:" + v[9:].upper()),
                 canonical.map(lambda v: v.replace("-", "")), st.text(min_size=15, max_size=16)))
def test_other_ids_are_never_taken_for_a_uuid(value):
    stored = encode_id(value)
    assert len(stored) != 16 or value == f"urn:uuid:{uuid.UUID(bytes=stored)}"
    assert decode_id(stored) == value


@pytest.mark.parametrize("value", ["", "x" * 15, "é" * 7 + "x", "\x00" * 15, "\x01" * 14, "urn:uuid:short"])
def test_texts_near_the_length_of_a_uuid_read_back(value):
    assert len(encode_id(value)) != 16
    assert decode_id(encode_id(value)) == value


@given(st.lists(canonical, min_size=2, max_size=20))
def test_stored_uuids_sort_as_their_text(values):
    """``ORDER BY id`` (the tie-break of stored queries' order) gives the same order as on the text."""
    assert sorted(values, key=encode_id) == sorted(values)


@given(st.text())
def test_any_status_or_attribute_reads_back_exactly(value):
    for codes in (STATUS_CODES, ATTRIBUTE_CODES):
        assert codes.decode(codes.encode(value)) == value


def test_known_statuses_and_attributes_take_one_character():
    for value in [*(s.value for s in Status), "confidentialityCode", "eventCodeList", "authorPerson",
                  "referenceIdList", "codeList"]:
        codes = STATUS_CODES if value.startswith("urn:") else ATTRIBUTE_CODES
        assert len(codes.encode(value)) == 1
    assert STATUS_CODES.encode("A") == "~A"  # a text that looks like a code is not taken for one


def test_codes_must_be_unambiguous():
    with pytest.raises(ValueError):
        Codes({"a": "~"})
    with pytest.raises(ValueError):
        Codes({"a": "x", "b": "x"})
