"""The writer's refusal of characters XML 1.0 cannot carry (registry._rim_write.xml_compatible)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry._rim import Kind, RimObject, Slot
from registry._rim_write import object_xml, xml_compatible

# XML 1.0 §2.2, the production Char: what is outside it can be in no XML document.
NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
# Text around the interesting characters: ASCII, Latin-1 (the usual non-ASCII of French metadata), the edges of
# the surrogate block and U+FFFE/U+FFFF, astral characters.
CHARS = st.one_of(st.characters(max_codepoint=0x7F), st.characters(min_codepoint=0x80, max_codepoint=0xFF),
                  st.sampled_from(["\ud7ff", "\ud800", "\udbff", "\udc00", "\udfff", "\ue000", "\ufffd", "\ufffe",
                                   "\uffff", "\U00010000", "\U0010ffff", "\t", "\n", "\r", "\x00", "\x1f", "\x7f"]),
                  st.characters(codec=None))


@settings(max_examples=2000, deadline=None)
@given(st.text(alphabet=CHARS, max_size=60))
def test_xml_compatible_is_exactly_the_absence_of_non_xml_characters(text: str) -> None:
    assert xml_compatible(text) is (NOT_XML.search(text) is None)


@pytest.mark.parametrize("char", [chr(c) for c in (0x00, 0x08, 0x0B, 0x0C, 0x0E, 0x1F, 0xD800, 0xDFFF, 0xFFFE,
                                                   0xFFFF)])
def test_every_forbidden_character_is_refused_alone_and_inside_long_text(char: str) -> None:
    assert not xml_compatible(char)
    assert not xml_compatible("é" * 3000 + char + "a" * 3000)
    assert not xml_compatible("a" * 3000 + char)
    with pytest.raises(ValueError, match="XML compatible"):
        object_xml(RimObject(Kind.EXTRINSIC_OBJECT, id="urn:uuid:x", slots=[Slot("comment", [f"a{char}b"])]))


@pytest.mark.parametrize("text", ["", "plain", "tab\tLF\nCR\r", "Hôpital Saint-Éloi", "\ud7ff\ue000\ufffd",
                                  "\U0001f600 astral"])
def test_what_xml_can_carry_is_accepted(text: str) -> None:
    assert xml_compatible(text)
