"""XML namespace URIs of the wire protocols (ITI TF-2x Appendix V, ebRS 3.0, SOAP 1.2, XOP, WS-Addressing).
Match on URI, never on prefix."""

from typing import Final

SOAP12: Final = "http://www.w3.org/2003/05/soap-envelope"
SOAP11: Final = "http://schemas.xmlsoap.org/soap/envelope/"
WSA: Final = "http://www.w3.org/2005/08/addressing"
RIM: Final = "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"
LCM: Final = "urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0"
QUERY: Final = "urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0"
RS: Final = "urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0"
XDSB: Final = "urn:ihe:iti:xds-b:2007"
XOP: Final = "http://www.w3.org/2004/08/xop/include"
WSSE: Final = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
XML: Final = "http://www.w3.org/XML/1998/namespace"

WSA_ANONYMOUS: Final = "http://www.w3.org/2005/08/addressing/anonymous"
WSA_FAULT_ACTION: Final = "http://www.w3.org/2005/08/addressing/soap/fault"


def q(ns: str, local: str) -> str:
    """Clark notation ``{ns}local`` as lxml uses it."""
    return f"{{{ns}}}{local}"
