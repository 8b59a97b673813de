"""SOAP 1.2 envelopes with WS-Addressing 1.0 headers: reading requests, writing responses.

The action in ``wsa:Action`` is authoritative for dispatch (ITI TF-2x Appendix V; docs/conformance.md §2); we
trim it. A header block marked ``env:mustUnderstand="true"`` (or ``"1"``) that is not in the understood set gets the
MustUnderstand fault (SOAP 1.2 part 1 §5.2.3); an unqualified ``mustUnderstand`` attribute has no SOAP
meaning and is ignored (DRIMbox sends one).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from lxml import etree

from soap_wsdl._fault import FaultCode, FaultSubcode, SoapFault
from soap_wsdl._namespaces import SOAP11, SOAP12, WSA, WSSE, q
from soap_wsdl._xml import SerializedElement, XmlError, parse_xml, serialize, splice_into_empty

#: Header blocks this stack processes itself. ``wsse:Security`` is handed to the security layer, which
#: refuses the request if it cannot verify it, so declaring it understood here is honest.
UNDERSTOOD_HEADERS: frozenset[str] = frozenset(
    {q(WSA, n) for n in ("Action", "MessageID", "To", "ReplyTo", "From", "FaultTo", "RelatesTo")}
    | {q(WSSE, "Security")}
)

_MU_TRUE = {"true", "1"}


@dataclass(frozen=True)
class SoapRequest:
    """A parsed request envelope. ``body`` is the single child element of ``env:Body``."""

    envelope: etree._Element
    body: etree._Element
    action: str
    message_id: str | None
    to: str | None
    reply_to: str | None
    security: etree._Element | None


def read_envelope(data: bytes, *, max_bytes: int = 64 * 1024 * 1024) -> SoapRequest:
    """Parse and check a SOAP 1.2 request envelope, raising :class:`SoapFault` for every envelope problem."""
    try:
        root = parse_xml(data, max_bytes=max_bytes)
    except XmlError as exc:
        raise SoapFault(FaultCode.SENDER, str(exc)) from None
    if root.tag == q(SOAP11, "Envelope"):
        raise SoapFault(FaultCode.VERSION_MISMATCH, "SOAP 1.1 envelope received; this endpoint speaks SOAP 1.2")
    if root.tag != q(SOAP12, "Envelope") and etree.QName(root).localname == "Envelope":
        # SOAP 1.2 Part 1 §5.4.7: an Envelope of another namespace is a version mismatch.
        raise SoapFault(FaultCode.VERSION_MISMATCH, f"{_name(root)} received; this endpoint speaks SOAP 1.2 "
                        f"({SOAP12})")
    if root.tag != q(SOAP12, "Envelope"):
        raise SoapFault(FaultCode.SENDER, f"root element is {_name(root)}, expected a SOAP 1.2 Envelope")

    header = root.find(q(SOAP12, "Header"))
    body = root.find(q(SOAP12, "Body"))
    message_id = _header_text(header, "MessageID")
    if body is None:
        raise SoapFault(FaultCode.SENDER, "SOAP Body is missing", relates_to=message_id)
    children = [c for c in body if isinstance(c.tag, str)]
    if len(children) != 1:
        raise SoapFault(
            FaultCode.SENDER,
            f"SOAP Body must hold exactly one element, found {len(children)}",
            relates_to=message_id,
        )

    not_understood = tuple(
        block.tag
        for block in (header if header is not None else ())
        if isinstance(block.tag, str)
        and (block.get(q(SOAP12, "mustUnderstand")) or "").strip() in _MU_TRUE
        and block.tag not in UNDERSTOOD_HEADERS
    )
    if not_understood:
        raise SoapFault(
            FaultCode.MUST_UNDERSTAND,
            "header block not understood: " + ", ".join(not_understood),
            relates_to=message_id,
            not_understood=not_understood,
        )

    action = _header_text(header, "Action")
    if not action:
        raise SoapFault(
            FaultCode.SENDER,
            "WS-Addressing header wsa:Action is required",
            subcode=FaultSubcode.MESSAGE_ADDRESSING_HEADER_REQUIRED,
            relates_to=message_id,
        )
    reply_to = None
    if header is not None:
        addr = header.find(f"{q(WSA, 'ReplyTo')}/{q(WSA, 'Address')}")
        reply_to = (addr.text or "").strip() if addr is not None else None
    security = header.find(q(WSSE, "Security")) if header is not None else None
    return SoapRequest(
        envelope=root,
        body=children[0],
        action=action,
        message_id=message_id,
        to=_header_text(header, "To"),
        reply_to=reply_to,
        security=security,
    )


def _header_text(header: etree._Element | None, local: str) -> str | None:
    if header is None:
        return None
    el = header.find(q(WSA, local))
    if el is None:
        return None
    return (el.text or "").strip() or None


def _name(el: etree._Element) -> str:
    return etree.QName(el).localname if isinstance(el.tag, str) else "?"


def response_envelope(action: str, relates_to: str | None, body: etree._Element | SerializedElement) -> bytes:
    """A SOAP 1.2 response with ``wsa:Action`` (mustUnderstand), a fresh ``wsa:MessageID`` and
    ``wsa:RelatesTo`` the request's MessageID (WS-Addressing 1.0 Core §3); a serialized body goes in as is."""
    env = etree.Element(q(SOAP12, "Envelope"), nsmap={"env": SOAP12, "wsa": WSA})
    header = etree.SubElement(env, q(SOAP12, "Header"))
    act = etree.SubElement(header, q(WSA, "Action"))
    act.set(q(SOAP12, "mustUnderstand"), "true")
    act.text = action
    etree.SubElement(header, q(WSA, "MessageID")).text = f"urn:uuid:{uuid.uuid4()}"
    if relates_to:
        etree.SubElement(header, q(WSA, "RelatesTo")).text = relates_to
    soap_body = etree.SubElement(env, q(SOAP12, "Body"))
    if isinstance(body, SerializedElement):
        return splice_into_empty(serialize(env), b"<env:Body/>", body.data)
    soap_body.append(body)
    return serialize(env)
