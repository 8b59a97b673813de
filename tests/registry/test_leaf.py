"""A LeafClass answer's objects spliced as bytes from their stored form (registry._leaf): exactly the text of
the stored object with its current status on its element and without its own ``rim`` declaration, whatever
the object, its characters and the status."""

from __future__ import annotations

import pytest
import xds_factory as f
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from registry import _model
from registry._compact_keys import STATUS_CODES
from registry._leaf import leaf_parts
from registry._rim_write import RIM_DECLARATION, attribute_text, object_xml
from registry._stored_form import encode
from registry._vocabulary import Status
from soap_wsdl import ns

# Attribute values and text with what XML escapes, non-ASCII (2-, 3- and 4-byte UTF-8) and spaces.
_VALUE = st.lists(st.sampled_from(["a", "é", "€", "\U0001f600", " ", "&amp;", "&quot;", "&lt;", ":", "-"]),
                  max_size=30).map("".join)
_NAME = st.sampled_from(["rim:ExtrinsicObject", "rim:RegistryPackage", "rim:Association"])
_STATUS = st.one_of(st.sampled_from([s.value for s in Status]),
                    st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")) | st.sampled_from("\t\n\r"),
                            max_size=40))


def _text_path(xml: str, status: str) -> bytes:
    """What the answer held before the bytes path: the stored text decoded, the status inserted as text (the
    value escaped for an attribute), the ``rim`` declaration dropped, then encoded."""
    if xml.startswith("<?xml"):
        xml = xml[xml.index("?>") + 2 :].lstrip()
    name_end = xml.index(" ")
    rest = xml[name_end:]
    if rest.startswith(RIM_DECLARATION):
        rest = rest[len(RIM_DECLARATION):]
    return f'{xml[:name_end]} status="{attribute_text(status)}"{rest}'.encode()


@st.composite
def _stored_text(draw: st.DrawFn) -> str:
    name = draw(_NAME)
    declared = RIM_DECLARATION if draw(st.booleans()) else ""
    attributes = "".join(f' a{i}="{v}"' for i, v in enumerate(draw(st.lists(_VALUE, min_size=0, max_size=3))))
    body = draw(_VALUE)
    xml = f'<{name}{declared} id="{draw(_VALUE)}"{attributes}><rim:Name>{body}</rim:Name></{name}>'
    if draw(st.booleans()):  # rows written before the text writer
        xml = "<?xml version='1.0' encoding='UTF-8'?>" + draw(st.sampled_from(["", "\n", " \r\n\t"])) + xml
    return xml


@given(_stored_text(), _STATUS)
def test_the_spliced_bytes_are_those_of_the_text_path(xml, status):
    spliced = b"".join(leaf_parts(encode(xml), STATUS_CODES.encode(status)))
    assert spliced == _text_path(xml, status)
    assert spliced.count(b' status="') == 1  # the generated attributes are a0.., never status


@given(_stored_text(), _STATUS)
def test_the_spliced_object_parses_with_its_status_and_its_own_attributes(xml, status):
    spliced = b"".join(leaf_parts(encode(xml), STATUS_CODES.encode(status)))
    (element,) = _listed(spliced)
    (original,) = _listed(xml[xml.index("?>") + 2 :].encode() if xml.startswith("<?xml") else xml.encode())
    assert element.get("status") == status
    assert {k: v for k, v in element.attrib.items() if k != "status"} == dict(original.attrib)
    assert element.tag == original.tag
    assert element.findtext("*") == original.findtext("*")


def _listed(objects: bytes) -> etree._Element:
    """``objects`` in a RegistryObjectList that declares ``rim``, as in an answer."""
    return etree.fromstring(b'<rim:RegistryObjectList xmlns:rim="%s">%s</rim:RegistryObjectList>'
                            % (ns.RIM.encode(), objects))


def test_a_document_entry_is_spliced_with_its_current_status():
    xml = object_xml(_model.document_entry_to_rim(f.document_entry(f.Doc(b"content", "Document01"))))
    for status in Status:
        spliced = b"".join(leaf_parts(encode(xml), STATUS_CODES.encode(status.value)))
        head, rest = xml.split(" ", 1)
        assert spliced == f'{head} status="{status.value}" {rest.removeprefix(RIM_DECLARATION[1:] + " ")}'.encode()


def test_a_damaged_stored_form_is_refused():
    stored = bytearray(encode('<rim:Association xmlns:rim="x" id="a"/>'))
    stored[-3] ^= 0x40
    with pytest.raises(ValueError, match="damaged stored form"):
        leaf_parts(bytes(stored), "A")
