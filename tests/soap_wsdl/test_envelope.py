"""Response envelopes: an element body and the same body already serialized give the same envelope."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from soap_wsdl import SerializedElement, parse_xml, response_envelope, serialize, splice_into_empty
from soap_wsdl._namespaces import SOAP12, WSA

# Header texts that look like markup: escaped by lxml, so they can never be taken for the Body element.
tricky = st.lists(st.sampled_from(["<env:Body/>", "</env:Body>", "&", "x", "]]>", '"']), max_size=6).map("".join)


def body_element(n: int) -> etree._Element:
    root = etree.Element("{urn:example}Answer", nsmap={"ex": "urn:example"})
    for i in range(n):
        etree.SubElement(root, "{urn:example}Item").set("n", str(i))
    return root


def without_message_id(envelope: bytes) -> etree._Element:
    env = parse_xml(envelope)
    header = env.find(f"{{{SOAP12}}}Header")
    header.remove(header.find(f"{{{WSA}}}MessageID"))
    return env


@settings(max_examples=50, deadline=None)
@given(relates_to=tricky, items=st.integers(0, 3))
def test_serialized_body_gives_the_envelope_an_element_gives(relates_to, items):
    as_element = response_envelope("urn:a", relates_to or None, body_element(items))
    as_bytes = response_envelope("urn:a", relates_to or None,
                                 SerializedElement(etree.tostring(body_element(items), encoding="UTF-8")))
    assert serialize(without_message_id(as_bytes)) == serialize(without_message_id(as_element))
    env = parse_xml(as_bytes)
    assert env.find(f"{{{SOAP12}}}Header/{{{WSA}}}RelatesTo") is None or \
        env.find(f"{{{SOAP12}}}Header/{{{WSA}}}RelatesTo").text == relates_to
    assert [c.get("n") for c in env.find(f"{{{SOAP12}}}Body")[0]] == [str(i) for i in range(items)]


def test_splice_fills_the_last_empty_element_only():
    outer = b'<r xmlns:p="urn:p"><p:L/><x a="&lt;p:L/&gt;"/><p:L/></r>'
    assert splice_into_empty(outer, b"<p:L/>", b"<i/>") == \
        b'<r xmlns:p="urn:p"><p:L/><x a="&lt;p:L/&gt;"/><p:L><i/></p:L></r>'


def test_serialized_element_parses_with_the_hardened_parser():
    assert SerializedElement(b"<a><b/></a>").element()[0].tag == "b"
