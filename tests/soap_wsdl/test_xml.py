"""The hardened parser's nesting bound (MAX_DEPTH) is exact."""

from __future__ import annotations

import pytest

from soap_wsdl import XmlError, parse_xml
from soap_wsdl._xml import MAX_DEPTH


def nested(depth: int) -> bytes:
    return b"<a>" * depth + b"</a>" * depth


def test_depth_at_the_bound_is_accepted():
    assert parse_xml(nested(MAX_DEPTH)).tag == "a"


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 200])
def test_deeper_is_refused(depth):
    with pytest.raises(XmlError, match="nested deeper"):
        parse_xml(nested(depth))


def test_deep_branch_beside_shallow_ones_is_found():
    doc = b"<r>" + b"<b/>" * 50 + nested(MAX_DEPTH) + b"</r>"
    with pytest.raises(XmlError, match="nested deeper"):
        parse_xml(doc)
