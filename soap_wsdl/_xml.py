"""The one XML parser of the project.

Every XML byte string that enters the system (SOAP envelopes, metadata, assertions) goes through
:func:`parse_xml`. It refuses DTDs outright (a DOCTYPE is never legitimate in SOAP 1.2, W3C SOAP 1.2
part 1 §5), so entity expansion, external entities and entity bombs cannot happen, never touches the
network, and bounds the input size. libxml2's own nesting limit (256 levels without XML_PARSE_HUGE)
bounds the depth; we lower it further to keep recursive walkers safe.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lxml import etree

MAX_DEPTH = 128


class XmlError(Exception):
    """The bytes are not acceptable XML; ``str(e)`` is a reason safe to show to the sender."""


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_blank_text=False,
        collect_ids=False,
    )


def parse_xml(data: bytes, *, max_bytes: int = 64 * 1024 * 1024) -> etree._Element:
    """Parse ``data`` into an element tree, or raise :class:`XmlError`.

    Refused: more than ``max_bytes``, any DOCTYPE (internal subset included), processing of entities,
    nesting deeper than :data:`MAX_DEPTH`, malformed XML.
    """
    if len(data) > max_bytes:
        raise XmlError(f"XML document larger than {max_bytes} bytes")
    # A DOCTYPE can only appear in the prolog, before the root element; lxml reports it after parsing,
    # but looking first means an entity bomb's internal subset is never even handed to libxml2.
    head = data[:4096].lstrip()
    if b"<!DOCTYPE" in _prolog(head).upper():
        raise XmlError("DTDs are not allowed (DOCTYPE declaration found)")
    try:
        root = etree.fromstring(data, parser=_parser())
    except etree.XMLSyntaxError as exc:
        raise XmlError(f"malformed XML: {exc.msg}") from None
    tree = root.getroottree()
    docinfo: Any = tree.docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        raise XmlError("DTDs are not allowed (DOCTYPE declaration found)")
    _check_depth(root)
    return root


def _prolog(head: bytes) -> bytes:
    """The bytes before the first element start tag that is not a declaration, PI or comment."""
    i = 0
    while True:
        j = head.find(b"<", i)
        if j < 0 or j + 1 >= len(head):
            return head
        if head[j + 1 : j + 2] in (b"?", b"!"):
            i = j + 1
            continue
        return head[:j]


# True when some element sits deeper than MAX_DEPTH: evaluated by libxml2 in C (a Python walk over every
# element cost more than the parse itself on large query answers).
_TOO_DEEP = etree.XPath("boolean(" + "/*" * (MAX_DEPTH + 1) + ")")


def _check_depth(root: etree._Element) -> None:
    if _TOO_DEEP(root.getroottree()):
        raise XmlError(f"XML nested deeper than {MAX_DEPTH} levels")


def serialize(element: etree._Element) -> bytes:
    """UTF-8 bytes with an XML declaration, as every response is sent."""
    return etree.tostring(element, xml_declaration=True, encoding="UTF-8")


@dataclass(frozen=True)
class SerializedElement:
    """One element already serialized: UTF-8, no XML declaration, every namespace prefix it uses declared
    within it. A response body assembled from stored XML travels in this form to the wire, so it is never
    parsed and serialized again (for a 100-document query answer that was most of the answer's time)."""

    data: bytes

    def element(self) -> etree._Element:
        """The tree, for a caller that reads the answer rather than sends it."""
        return parse_xml(self.data)


def splice_into_empty(outer: bytes, empty_tag: bytes, content: bytes) -> bytes:
    """``outer`` (serialized by lxml) with its last ``<p:Tag/>`` element, given as ``empty_tag``, replaced by
    that element holding ``content``: text and attribute values are escaped, so the literal tag can only be
    the element itself."""
    at = outer.rindex(empty_tag)
    name = empty_tag[1:-2]
    return b"".join((outer[:at], b"<", name, b">", content, b"</", name, b">", outer[at + len(empty_tag):]))
