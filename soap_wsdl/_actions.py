"""The one table of SOAP actions (WS-Addressing ``wsa:Action`` values) the node serves and clients send, and
the one request-envelope builder both sides use.

Actions: IHE ITI TF-2b §3.18.5.1 (ITI-18), §3.41.5.1 (ITI-41), §3.42.5.1 (ITI-42), §3.43.5.1 (ITI-43);
ITI TF-2b §3.51 (ITI-51); ITI TF-2b §3.57 (ITI-57). A response's action is the request's + ``Response``.
"""

from __future__ import annotations

import copy
import enum
import uuid

from lxml import etree

from soap_wsdl._namespaces import SOAP12, WSA, WSA_ANONYMOUS, WSSE, q
from soap_wsdl._xml import serialize


class Action(enum.StrEnum):
    """IHE XDS.b request actions; members are plain strings, so they compare and hash as their URI."""

    ITI18 = "urn:ihe:iti:2007:RegistryStoredQuery"
    ITI41 = "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b"
    ITI42 = "urn:ihe:iti:2007:RegisterDocumentSet-b"
    ITI43 = "urn:ihe:iti:2007:RetrieveDocumentSet"
    ITI51 = "urn:ihe:iti:2009:MultiPatientStoredQuery"
    ITI57 = "urn:ihe:iti:2010:UpdateDocumentSet"

    @property
    def response(self) -> str:
        """The action of the answer (``…Response``)."""
        return self.value + "Response"


class DmpAction(enum.StrEnum):
    """The DMP's own services (GIE DMP-LPS samples) served on ``/dmp/services`` (docs/consent.md)."""

    TD02 = "urn:hl7-org:v3:PRPA_IN201307UV02"                                         # existence test
    TD03 = "urn:si-dmp-habilitations:HabilitationsEndPoint:setAuthorization"
    TD04 = "urn:si-dmp-patients:PatientSpecificEndPoint:patientList"
    TD16 = "urn:si-dmp-habilitations:HabilitationsEndPoint:listAuthorizationByPatient"

    @property
    def response(self) -> str:
        """The action of the answer: HL7v3's response interaction for TD0.2, ``…Response`` otherwise."""
        return "urn:hl7-org:v3:PRPA_IN201308UV02" if self is DmpAction.TD02 else self.value + "Response"


def request_envelope(action: str, body: etree._Element, *, to: str | None = None,
                     message_id: str | None = None, reply_to_anonymous: bool = True,
                     assertion: etree._Element | None = None) -> bytes:
    """A SOAP 1.2 request (docs/vihf.md §1): ``wsa:Action`` (mustUnderstand), ``wsa:MessageID`` (a fresh
    ``urn:uuid:`` unless given), ``wsa:ReplyTo`` anonymous, ``wsa:To`` when given, and ``wsse:Security``
    holding only ``assertion`` (the signed VIHF) when given; ``body`` becomes the single child of ``Body``.

    ``body`` is moved into the envelope (lxml elements have one parent); ``assertion`` is copied, so one signed
    VIHF may be sent in several envelopes, from several threads, without being taken from its tree."""
    env = etree.Element(q(SOAP12, "Envelope"), nsmap={"soap": SOAP12, "wsa": WSA})
    header = etree.SubElement(env, q(SOAP12, "Header"))
    act = etree.SubElement(header, q(WSA, "Action"))
    act.set(q(SOAP12, "mustUnderstand"), "true")
    act.text = str(action)
    etree.SubElement(header, q(WSA, "MessageID")).text = message_id or f"urn:uuid:{uuid.uuid4()}"
    if reply_to_anonymous:
        etree.SubElement(etree.SubElement(header, q(WSA, "ReplyTo")), q(WSA, "Address")).text = WSA_ANONYMOUS
    if to:
        etree.SubElement(header, q(WSA, "To")).text = to
    if assertion is not None:
        security = etree.SubElement(header, q(WSSE, "Security"), nsmap={"wsse": WSSE})
        security.append(copy.deepcopy(assertion))
    etree.SubElement(env, q(SOAP12, "Body")).append(body)
    return serialize(env)
