"""The compact stored form of a registry object's XML (registry._stored_form): what is read back is exactly what
was stored, including values written by an earlier release (the format is the dictionary's version)."""

from __future__ import annotations

import hashlib

import pytest
import xds_factory as f
from hypothesis import given
from hypothesis import strategies as st

from registry import _model
from registry._rim_write import object_xml
from registry._stored_form import _DICTIONARY_1, decode, decode_utf8, encode

# The text of a HasMember Association and its stored form as version 1 wrote it: stored data must stay readable.
ASSOCIATION = (
    '<rim:Association xmlns:rim="urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0" '
    'id="urn:uuid:0b7c4f0e-2f63-4b7a-9d8e-6a1d2c3b4a59" lid="urn:uuid:0b7c4f0e-2f63-4b7a-9d8e-6a1d2c3b4a59" '
    'associationType="urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember" '
    'sourceObject="urn:uuid:1c2d3e4f-5a6b-4c7d-8e9f-a0b1c2d3e4f5" '
    'targetObject="urn:uuid:2d3e4f5a-6b7c-4d8e-9fa0-b1c2d3e4f5a6"><rim:Slot name="SubmissionSetStatus">'
    '<rim:ValueList><rim:Value>Original</rim:Value></rim:ValueList></rim:Slot><rim:VersionInfo versionName="1"/>'
    '</rim:Association>')
ASSOCIATION_V1 = bytes.fromhex(
    "0128b52ffd641801f5020032840c0fb0e701a4941980b6664b13cb0c9e0376cfb794719cf9e24689f3ecc25b1a921014f1ba8094e0"
    "662559fc604bd6d9c271130d00a10d8262afab89c6f2d02ceed7ba3e09bf841a4452091e4caf345e7dc0d785a18c19fc2c4e34087f"
    "7b38fd")


@given(st.text())
def test_any_text_reads_back_exactly(text):
    assert decode(encode(text)) == text
    assert decode_utf8(encode(text)) == text.encode()  # what a LeafClass answer splices


@given(st.lists(st.sampled_from(["<rim:Slot name=\"", "urn:uuid:", "é", "&amp;", "\"/>", "x", "\n", "\U0001f600"]),
                max_size=200))
def test_boilerplate_and_other_characters_read_back_exactly(parts):
    text = "".join(parts)
    assert decode(encode(text)) == text


def test_a_document_entry_reads_back_exactly_in_a_fraction_of_its_size():
    xml = object_xml(_model.document_entry_to_rim(f.document_entry(f.Doc(b"content", "Document01"))))
    stored = encode(xml)
    assert decode(stored) == xml
    assert len(stored) * 6 < len(xml.encode())  # the boilerplate is the dictionary's (without it: 1 to 4)


def test_values_stored_by_version_1_read_back():
    assert decode(ASSOCIATION_V1) == ASSOCIATION
    # Version 1's dictionary is part of the format of stored data: a change needs a new version byte.
    assert hashlib.sha256(_DICTIONARY_1).hexdigest() == (
        "4b0cd1d93be5b65324f7e2b5d52eb909ecb9c8718c1fa4fd92fe747b5e69a39f")


@pytest.mark.parametrize("stored", [b"", b"\x00" + ASSOCIATION_V1[1:], b"<rim:Association/>"])
@pytest.mark.parametrize("read", [decode, decode_utf8])
def test_what_is_not_a_stored_form_is_refused(stored, read):
    with pytest.raises(ValueError, match="not a stored form"):
        read(stored)


@pytest.mark.parametrize("read", [decode, decode_utf8])
def test_a_damaged_value_is_refused(read):
    damaged = bytearray(ASSOCIATION_V1)
    damaged[-10] ^= 0x40  # a bit of the compressed text: the content checksum no longer matches
    with pytest.raises(ValueError, match="damaged stored form"):
        read(bytes(damaged))
    with pytest.raises(ValueError, match="damaged stored form"):
        read(ASSOCIATION_V1[:-5])
