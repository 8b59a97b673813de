"""A LeafClass answer's objects as UTF-8 bytes, straight from their stored form (ITI TF-2a 3.18.4.1.3: each
returned object with its current availabilityStatus; docs/registry-storage.md).

The stored XML is never parsed: it is decompressed to bytes and the current status, read from the row as its
one-letter code, is inserted after the element's name as a ready-made attribute. No ``str`` is made of the
~6 KB of a DocumentEntry and the answer is not encoded again; what the answer holds is byte for byte what the
text path (``decode``, insert the status, join, encode) gave."""

from __future__ import annotations

from typing import Final

from registry._compact_keys import STATUS_CODES
from registry._rim_write import RIM_DECLARATION, attribute_text
from registry._stored_form import decode_utf8

_DECLARATION: Final = RIM_DECLARATION.encode()  # on the stored element; the answer's RegistryObjectList has it
_XML_DECLARATION: Final = b"<?xml"  # rows written before the text writer start with one
# ' status="..."' for each stored status code, made once; other codes (``~`` + text) are made when met.
_STATUS_ATTRIBUTES: dict[str, bytes] = {}


def status_attribute(code: str) -> bytes:
    """`` status="<availabilityStatus>"`` for the stored status ``code`` (``registry._compact_keys``)."""
    attribute = _STATUS_ATTRIBUTES.get(code)
    if attribute is None:
        attribute = f' status="{attribute_text(STATUS_CODES.decode(code))}"'.encode()
        if code in STATUS_CODES.text_of:  # a bounded set: unknown statuses are not kept
            _STATUS_ATTRIBUTES[code] = attribute
    return attribute


def leaf_parts(stored: bytes, status_code: str) -> tuple[bytes | memoryview, ...]:
    """The pieces whose concatenation is the stored object's XML with its status (stored ``status_code``) on
    its element and without the ``rim`` declaration: joined once with the whole answer, not copied per object.
    Raises ValueError for a damaged stored form."""
    xml = decode_utf8(stored)
    start = 0
    if xml.startswith(_XML_DECLARATION):
        start = xml.index(b"?>") + 2
        while xml[start : start + 1] in (b" ", b"\t", b"\r", b"\n"):
            start += 1
    name_end = xml.index(b" ", start)  # every stored object has attributes (at least its id)
    rest = name_end + len(_DECLARATION) if xml.startswith(_DECLARATION, name_end) else name_end
    view = memoryview(xml)
    return view[start:name_end], status_attribute(status_code), view[rest:]
