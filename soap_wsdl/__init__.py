"""The wire: SOAP 1.2 envelopes and faults, WS-Addressing, the streaming MTOM/XOP codec, the WSDL and
XSD files, the one table of actions and the one request-envelope builder (shared by the node and its
clients), and the one hardened XML parser every other package uses."""

from soap_wsdl import _namespaces as ns
from soap_wsdl._actions import Action, DmpAction, request_envelope
from soap_wsdl._envelope import UNDERSTOOD_HEADERS, SoapRequest, read_envelope, response_envelope
from soap_wsdl._fault import FaultCode, FaultSubcode, SoapFault
from soap_wsdl._mtom import (
    Attachment,
    MimeError,
    MtomDecoder,
    MtomMessage,
    OutgoingAttachment,
    mtom_content_type,
    mtom_stream,
    new_boundary,
    parse_content_type,
)
from soap_wsdl._wsdl import schema_document, wsdl_document
from soap_wsdl._xml import SerializedElement, XmlError, parse_xml, serialize, splice_into_empty

__all__ = [
    "UNDERSTOOD_HEADERS",
    "Action",
    "Attachment",
    "DmpAction",
    "FaultCode",
    "FaultSubcode",
    "MimeError",
    "MtomDecoder",
    "MtomMessage",
    "OutgoingAttachment",
    "SerializedElement",
    "SoapFault",
    "SoapRequest",
    "XmlError",
    "mtom_content_type",
    "mtom_stream",
    "new_boundary",
    "ns",
    "parse_content_type",
    "parse_xml",
    "read_envelope",
    "request_envelope",
    "response_envelope",
    "schema_document",
    "serialize",
    "splice_into_empty",
    "wsdl_document",
]
