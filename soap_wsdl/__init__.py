"""The wire: SOAP 1.2 envelopes and faults, WS-Addressing, the streaming MTOM/XOP codec, the WSDL and
XSD files, and the one hardened XML parser every other package uses."""

from soap_wsdl import _namespaces as ns
from soap_wsdl._envelope import UNDERSTOOD_HEADERS, SoapRequest, read_envelope, response_envelope
from soap_wsdl._fault import FaultCode, FaultSubcode, SoapFault
from soap_wsdl._xml import XmlError, parse_xml, serialize

__all__ = [
    "UNDERSTOOD_HEADERS",
    "FaultCode",
    "FaultSubcode",
    "SoapFault",
    "SoapRequest",
    "XmlError",
    "ns",
    "parse_xml",
    "read_envelope",
    "response_envelope",
    "serialize",
]
