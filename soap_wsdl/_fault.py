"""SOAP 1.2 faults (W3C SOAP 1.2 part 1 §5.4) with WS-Addressing fault action (WS-Addressing 1.0 SOAP §6).

Faults are reserved for envelope-level problems: not SOAP 1.2, unparseable XML or MIME, missing or unknown
``wsa:Action``, a mustUnderstand header we do not understand, a security header that fails, or a crash
before a business response can be built (docs/conformance.md §2 rule 5). Metadata problems are RegistryResponses,
not faults.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass

from lxml import etree

from soap_wsdl._namespaces import SOAP12, WSA, WSA_FAULT_ACTION, XML, q
from soap_wsdl._xml import serialize


class FaultCode(enum.Enum):
    """env:Code/env:Value values, with the HTTP status SOAP 1.2 part 2 §7.5.1 maps them to."""

    VERSION_MISMATCH = ("VersionMismatch", 500)
    MUST_UNDERSTAND = ("MustUnderstand", 500)
    SENDER = ("Sender", 400)
    RECEIVER = ("Receiver", 500)

    @property
    def local_name(self) -> str:
        return self.value[0]

    @property
    def http_status(self) -> int:
        return self.value[1]


DMP_FAULTS = "urn:dmp-xds:faults"


class FaultSubcode(enum.Enum):
    """Subcodes we emit, as (namespace, local name)."""

    ACTION_NOT_SUPPORTED = (WSA, "ActionNotSupported")
    MESSAGE_ADDRESSING_HEADER_REQUIRED = (WSA, "MessageAddressingHeaderRequired")
    INVALID_ADDRESSING_HEADER = (WSA, "InvalidAddressingHeader")
    INVALID_SECURITY = (
        "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd",
        "InvalidSecurity",
    )
    FAILED_AUTHENTICATION = (
        "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd",
        "FailedAuthentication",
    )
    # The DMP's refusals by its rights service (PDT-INF-527); the namespace is ours (docs/consent.md).
    DMP_ACCESS_DENIED_BY_RIGHTS_SERVICE = (DMP_FAULTS, "DMPAccessDeniedByRightsService")
    DMP_ACCESS_DENIED = (DMP_FAULTS, "DMPAccessDenied")


@dataclass
class SoapFault(Exception):
    """Raised anywhere in the pipeline; the server turns it into a fault response."""

    code: FaultCode
    reason: str
    subcode: FaultSubcode | None = None
    relates_to: str | None = None
    not_understood: tuple[str, ...] = ()   # Clark names of mustUnderstand headers (MustUnderstand fault)

    def __str__(self) -> str:
        return f"{self.code.local_name}: {self.reason}"

    @property
    def http_status(self) -> int:
        return self.code.http_status

    def to_envelope(self) -> bytes:
        nsmap = {"env": SOAP12, "wsa": WSA}
        env = etree.Element(q(SOAP12, "Envelope"), nsmap=nsmap)
        header = etree.SubElement(env, q(SOAP12, "Header"))
        etree.SubElement(header, q(WSA, "Action")).text = WSA_FAULT_ACTION
        etree.SubElement(header, q(WSA, "MessageID")).text = f"urn:uuid:{uuid.uuid4()}"
        if self.relates_to:
            etree.SubElement(header, q(WSA, "RelatesTo")).text = self.relates_to
        for i, name in enumerate(self.not_understood):
            ns, _, local = name[1:].partition("}")
            nu = etree.SubElement(header, q(SOAP12, "NotUnderstood"), nsmap={f"nu{i}": ns})
            nu.set("qname", f"nu{i}:{local}")
        body = etree.SubElement(env, q(SOAP12, "Body"))
        fault = etree.SubElement(body, q(SOAP12, "Fault"))
        code = etree.SubElement(fault, q(SOAP12, "Code"))
        etree.SubElement(code, q(SOAP12, "Value")).text = f"env:{self.code.local_name}"
        if self.subcode is not None:
            ns, local = self.subcode.value
            sub = etree.SubElement(code, q(SOAP12, "Subcode"))
            value = etree.SubElement(sub, q(SOAP12, "Value"), nsmap={"sc": ns})
            value.text = f"sc:{local}"
        reason = etree.SubElement(fault, q(SOAP12, "Reason"))
        text = etree.SubElement(reason, q(SOAP12, "Text"))
        text.set(q(XML, "lang"), "en")
        text.text = self.reason
        return serialize(env)
