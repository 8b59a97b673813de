"""The WSDL/XSD documents of the two SOAP endpoints (soap_wsdl/_wsdl.py, soap_wsdl/wsdl/).

(a) every schema compiles when fetched only through the rewritten ``?xsd=`` locations;
(b) example bodies (a made-up French patient, one per transaction) validate, and wrong ones do not;
(c) zeep loads both WSDLs over real HTTP and builds the right envelopes and wsa:Action headers.
"""

from __future__ import annotations

import base64
import re
import socket
import threading
import time
from collections.abc import Iterator
from importlib import resources
from typing import Any

import pytest
import requests
import uvicorn
import zeep
from lxml import etree
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from zeep.wsa import WsAddressingPlugin

from soap_wsdl._wsdl import Endpoint, schema_document, wsdl_document

RIM = "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"
RS = "urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0"
LCM = "urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0"
QUERY = "urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0"
XDSB = "urn:ihe:iti:xds-b:2007"
WSA = "http://www.w3.org/2005/08/addressing"
SOAP12_ENV = "http://www.w3.org/2003/05/soap-envelope"
WSDL_NS = {
    "wsdl": "http://schemas.xmlsoap.org/wsdl/",
    "soap12": "http://schemas.xmlsoap.org/wsdl/soap12/",
    "xsd": "http://www.w3.org/2001/XMLSchema",
    "wsaw": "http://www.w3.org/2006/05/addressing/wsdl",
    "wsp": "http://schemas.xmlsoap.org/ws/2004/09/policy",
    "wsu": "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd",
    "wsoma": "http://schemas.xmlsoap.org/ws/2004/09/policy/optimizedmimeserialization",
}

XDS_SCHEMAS = {"rim.xsd", "rs.xsd", "lcm.xsd", "query.xsd", "xdsb.xsd", "xml.xsd"}
SCHEMAS = {*XDS_SCHEMAS, "dmp.xsd"}   # dmp.xsd: the node's DMP services (TD0.2, TD0.3, TD0.4, TD1.6)
# ITI TF-2x Appendix V: operation -> (request action, response action, request root, response root)
OPERATIONS: dict[Endpoint, dict[str, tuple[str, str, str, str]]] = {
    "registry": {
        "DocumentRegistry_RegisterDocumentSet-b": (
            "urn:ihe:iti:2007:RegisterDocumentSet-b",
            "urn:ihe:iti:2007:RegisterDocumentSet-bResponse",
            f"{{{LCM}}}SubmitObjectsRequest",
            f"{{{RS}}}RegistryResponse",
        ),
        "DocumentRegistry_RegistryStoredQuery": (
            "urn:ihe:iti:2007:RegistryStoredQuery",
            "urn:ihe:iti:2007:RegistryStoredQueryResponse",
            f"{{{QUERY}}}AdhocQueryRequest",
            f"{{{QUERY}}}AdhocQueryResponse",
        ),
        "DocumentRegistry_UpdateDocumentSet": (
            "urn:ihe:iti:2010:UpdateDocumentSet",
            "urn:ihe:iti:2010:UpdateDocumentSetResponse",
            f"{{{LCM}}}SubmitObjectsRequest",
            f"{{{RS}}}RegistryResponse",
        ),
        "DocumentRegistry_MultiPatientStoredQuery": (
            "urn:ihe:iti:2009:MultiPatientStoredQuery",
            "urn:ihe:iti:2009:MultiPatientStoredQueryResponse",
            f"{{{QUERY}}}AdhocQueryRequest",
            f"{{{QUERY}}}AdhocQueryResponse",
        ),
    },
    "repository": {
        "DocumentRepository_ProvideAndRegisterDocumentSet-b": (
            "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b",
            "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-bResponse",
            f"{{{XDSB}}}ProvideAndRegisterDocumentSetRequest",
            f"{{{RS}}}RegistryResponse",
        ),
        "DocumentRepository_RetrieveDocumentSet": (
            "urn:ihe:iti:2007:RetrieveDocumentSet",
            "urn:ihe:iti:2007:RetrieveDocumentSetResponse",
            f"{{{XDSB}}}RetrieveDocumentSetRequest",
            f"{{{XDSB}}}RetrieveDocumentSetResponse",
        ),
    },
}
SERVICES = {"registry": "DocumentRegistry_Service", "repository": "DocumentRepository_Service"}

OFFLINE_URL = "https://xds.example.fr/xds/registry"
PATIENT = "123456789012345^^^&amp;1.2.250.1.213.1.4.10&amp;ISO"
DOCUMENT = b"Compte rendu de consultation du 12/03/2024 - patient fictif.\r\n"  # the examples' document, 62 bytes


# --------------------------------------------------------------------------------------------------------
# Example messages for a made-up French patient: ITI-41 request and answer, ITI-18 request and answer, ITI-43,
# ITI-57 DMP archive (Body contents only; the ITI-18 answer shortened to three classifications)
# --------------------------------------------------------------------------------------------------------


def _slot(name: str, *values: str) -> str:
    vals = "".join(f"<rim:Value>{v}</rim:Value>" for v in values)
    return f'<rim:Slot name="{name}"><rim:ValueList>{vals}</rim:ValueList></rim:Slot>'


def _name(value: str, lang: str = "") -> str:
    attr = f' xml:lang="{lang}"' if lang else ""
    return f'<rim:Name><rim:LocalizedString{attr} value="{value}"/></rim:Name>'


def _coded(obj: str, cid: str, scheme: str, code: str, coding_scheme: str, display: str) -> str:
    return (
        f'<rim:Classification id="{cid}" classificationScheme="urn:uuid:{scheme}" classifiedObject="{obj}"'
        f' nodeRepresentation="{code}">'
        + _slot("codingScheme", coding_scheme)
        + _name(display)
        + "</rim:Classification>"
    )


def _author(obj: str, cid: str, scheme: str) -> str:
    return (
        f'<rim:Classification id="{cid}" classificationScheme="urn:uuid:{scheme}" classifiedObject="{obj}"'
        ' nodeRepresentation="">'
        + _slot("authorPerson", "801234567897^MARTIN^Claire^^^^^^&amp;1.2.250.1.71.4.2.1&amp;ISO")
        + _slot("authorInstitution", "CH FICTIF^^^^^&amp;1.2.250.1.71.4.2.2&amp;ISO^^^^1750000000")
        + "</rim:Classification>"
    )


def _external_id(obj: str, eid: str, scheme: str, value: str, name: str) -> str:
    return (
        f'<rim:ExternalIdentifier id="{eid}" registryObject="{obj}" identificationScheme="urn:uuid:{scheme}"'
        f' value="{value}">{_name(name)}</rim:ExternalIdentifier>'
    )


# (classification id, scheme UUID, code, coding scheme, display name)
SS_CODES = [
    ("cl-ss-ct", "aa543740-bdda-424e-8c96-df4873be8500", "04", "1.2.250.1.213.2.2", "Hospitalisation de jour")
]
DE_CODES = [
    ("cl-de-class", "41a5887f-8865-4c09-adf7-e362475b143a", "10", "1.2.250.1.213.1.1.4.1", "Compte rendu"),
    ("cl-de-conf", "f4f85eac-e6cb-4883-b524-f2705394840f", "N", "2.16.840.1.113883.5.25", "Normal"),
    (
        "cl-de-format",
        "a09d5840-386c-46f2-b5ad-9c3699a4309d",
        "urn:ihe:iti:xds-sd:text:2008",
        "1.3.6.1.4.1.19376.1.2.3",
        "Document à corps non structuré en texte brut",
    ),
    (
        "cl-de-hcft",
        "f33fb8ac-18af-42cc-ae0e-ed0b0bdb91e1",
        "SA01",
        "1.2.250.1.71.4.2.4",
        "Etablissement public",
    ),
    (
        "cl-de-ps",
        "cccf5598-8b07-4b77-a05e-ae952c785ead",
        "ETABLISSEMENT",
        "1.2.250.1.213.1.1.4.9",
        "Etablissement",
    ),
    (
        "cl-de-type",
        "f0306f51-975f-434e-a61c-c59651d33983",
        "11488-4",
        "2.16.840.1.113883.6.1",
        "CR de consultation",
    ),
]
# (external identifier id, scheme UUID, value, name)
SS_IDS = [
    (
        "ei-ss-uid",
        "96fdda7c-d067-4183-912e-bf5ee74998a8",
        "1.2.250.1.999.1.1.8121.2.1",
        "XDSSubmissionSet.uniqueId",
    ),
    (
        "ei-ss-src",
        "554ac39e-e3fe-47fe-b233-965d2a147832",
        "1.2.250.1.999.1.1.8121",
        "XDSSubmissionSet.sourceId",
    ),
    ("ei-ss-pid", "6b5aea1a-874d-4603-a4bc-96a0a7b38446", PATIENT, "XDSSubmissionSet.patientId"),
]
DE_IDS = [
    ("ei-de-pid", "58a6f841-87b3-4a3e-92fd-a8ffeff98427", PATIENT, "XDSDocumentEntry.patientId"),
    (
        "ei-de-uid",
        "2e82c1f6-a085-4c72-9da3-8640a32e42ab",
        "1.2.250.1.999.1.1.8121.1.1",
        "XDSDocumentEntry.uniqueId",
    ),
]
DE_SLOTS = (
    _slot("creationTime", "20240312093000")
    + _slot("languageCode", "fr-FR")
    + _slot("serviceStartTime", "20240312090000")
    + _slot("serviceStopTime", "20240312093000")
    + _slot("sourcePatientId", "IPP0001^^^&amp;1.2.250.1.999.1.1.8121.4&amp;ISO")
    + _slot("sourcePatientInfo", "PID-5|DUPONT^Marie^^^^^L", "PID-7|19800101", "PID-8|F")
    + _slot("hash", "2fac7e66622f681a12881b4c22817b1aec4c7a00")
    + _slot("size", "62")
)

SUBMISSION_SET = (
    '<rim:RegistryPackage id="SubmissionSet01">'
    + _slot("submissionTime", "20240312101500")
    + _name("Consultation du 12/03/2024", "fr-FR")
    + _author("SubmissionSet01", "cl-ss-author", "a7058bb9-b4e4-4307-ba5b-e3f0ab85e12d")
    + "".join(_coded("SubmissionSet01", *code) for code in SS_CODES)
    + "".join(_external_id("SubmissionSet01", *eid) for eid in SS_IDS)
    + "</rim:RegistryPackage>"
    + '<rim:Classification id="cl-ss-node" classifiedObject="SubmissionSet01"'
    ' classificationNode="urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd"/>'
)

DOCUMENT_ENTRY = (
    '<rim:ExtrinsicObject id="Document01" mimeType="text/plain"'
    ' objectType="urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1">'
    + DE_SLOTS
    + _name("Compte rendu de consultation", "fr-FR")
    + _author("Document01", "cl-de-author", "93606bcf-9494-43ec-9b4e-a7748d1a838d")
    + "".join(_coded("Document01", *code) for code in DE_CODES)
    + "".join(_external_id("Document01", *eid) for eid in DE_IDS)
    + "</rim:ExtrinsicObject>"
)

HAS_MEMBER = (
    '<rim:Association id="Assoc01"'
    ' associationType="urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember"'
    ' sourceObject="SubmissionSet01" targetObject="Document01">'
    + _slot("SubmissionSetStatus", "Original")
    + "</rim:Association>"
)

# 11.1, inline base64 variant (the xop:Include variant is only valid after XOP decoding)
ITI41_REQUEST = (
    f'<xdsb:ProvideAndRegisterDocumentSetRequest xmlns:xdsb="{XDSB}" xmlns:lcm="{LCM}" xmlns:rim="{RIM}">'
    f"<lcm:SubmitObjectsRequest><rim:RegistryObjectList>{SUBMISSION_SET}{DOCUMENT_ENTRY}{HAS_MEMBER}"
    "</rim:RegistryObjectList></lcm:SubmitObjectsRequest>"
    '<xdsb:Document id="Document01">'
    "Q29tcHRlIHJlbmR1IGRlIGNvbnN1bHRhdGlvbiBkdSAxMi8wMy8yMDI0IC0gcGF0aWVudCBmaWN0aWYuDQo="
    "</xdsb:Document>"
    "</xdsb:ProvideAndRegisterDocumentSetRequest>"
)

# 11.2
SUCCESS = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success"
ITI41_SUCCESS = f'<rs:RegistryResponse xmlns:rs="{RS}" status="{SUCCESS}"/>'
ITI41_FAILURE = f"""\
<rs:RegistryResponse xmlns:rs="{RS}" status="urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Failure">
 <rs:RegistryErrorList highestSeverity="urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Error">
  <rs:RegistryError errorCode="XDSRepositoryMetadataError"
      severity="urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Error"
      codeContext="Document01 (1.2.250.1.999.1.1.8121.1.1): hash does not match document content"
      location="repository.hash_check"/>
 </rs:RegistryErrorList>
</rs:RegistryResponse>"""

# 11.3
ITI18_REQUEST = f"""\
<query:AdhocQueryRequest xmlns:query="{QUERY}" xmlns:rim="{RIM}">
 <query:ResponseOption returnType="LeafClass" returnComposedObjects="true"/>
 <rim:AdhocQuery id="urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d">
  {_slot("$XDSDocumentEntryPatientId", f"'{PATIENT}'")}
  {_slot("$XDSDocumentEntryStatus", "('urn:oasis:names:tc:ebxml-regrep:StatusType:Approved')")}
  {_slot("$XDSDocumentEntryClassCode", "('10^^1.2.250.1.213.1.1.4.1')")}
  {_slot("$XDSDocumentEntryCreationTimeFrom", "20240301")}
 </rim:AdhocQuery>
</query:AdhocQueryRequest>"""

# 11.4 (registry-assigned UUIDs; shortened to three classifications)
_DE_UUID = "urn:uuid:d831e2f9-aade-4783-b37d-fbe69811e11d"
_CL_UUIDS = ["urn:uuid:212e6f51-9701-40ef-b85e-85c8851fefb4", "urn:uuid:6ee15aaa-97d3-46fb-8f1d-238501d6e3f9"]
_EI_UUIDS = ["urn:uuid:278f8089-1614-41f6-ab9d-b13e30733f3a", "urn:uuid:d1e30f5e-4325-4aac-b09d-98874f64005a"]
ITI18_LEAF_CLASS = (
    f'<query:AdhocQueryResponse xmlns:query="{QUERY}" xmlns:rim="{RIM}"'
    ' status="urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success"><rim:RegistryObjectList>'
    f'<rim:ExtrinsicObject id="{_DE_UUID}" lid="{_DE_UUID}"'
    ' objectType="urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1"'
    ' status="urn:oasis:names:tc:ebxml-regrep:StatusType:Approved" mimeType="text/plain">'
    + DE_SLOTS
    + _slot("repositoryUniqueId", "1.2.250.1.999.1.1.8121.3")
    + '<rim:Name><rim:LocalizedString xml:lang="fr-FR" charset="UTF-8" value="Compte rendu de consultation"/>'
    "</rim:Name><rim:Description/>"
    '<rim:VersionInfo versionName="1"/>'
    + _author(
        _DE_UUID, "urn:uuid:2dbfe087-e6cd-43f3-87f1-ff56a38902f6", "93606bcf-9494-43ec-9b4e-a7748d1a838d"
    )
    + "".join(_coded(_DE_UUID, cid, *code[1:]) for cid, code in zip(_CL_UUIDS, DE_CODES, strict=False))
    + "".join(_external_id(_DE_UUID, eid, *ext[1:]) for eid, ext in zip(_EI_UUIDS, DE_IDS, strict=True))
    + "</rim:ExtrinsicObject></rim:RegistryObjectList></query:AdhocQueryResponse>"
)
ITI18_OBJECT_REF = (
    f'<query:AdhocQueryResponse xmlns:query="{QUERY}" xmlns:rim="{RIM}"'
    ' status="urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success">'
    f'<rim:RegistryObjectList><rim:ObjectRef id="{_DE_UUID}"/></rim:RegistryObjectList>'
    "</query:AdhocQueryResponse>"
)
ITI18_ERROR = f"""\
<query:AdhocQueryResponse xmlns:query="{QUERY}" xmlns:rim="{RIM}" xmlns:rs="{RS}"
    status="urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Failure">
 <rs:RegistryErrorList>
  <rs:RegistryError errorCode="XDSStoredQueryParamNumber"
      severity="urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Error"
      codeContext="$XDSDocumentEntryEntryUUID and $XDSDocumentEntryUniqueId are mutually exclusive"/>
 </rs:RegistryErrorList>
 <rim:RegistryObjectList/>
</query:AdhocQueryResponse>"""

# 11.5 (response with the inline base64 form of the MTOM attachment)
ITI43_REQUEST = f"""\
<xdsb:RetrieveDocumentSetRequest xmlns:xdsb="{XDSB}">
 <xdsb:DocumentRequest>
  <xdsb:RepositoryUniqueId>1.2.250.1.999.1.1.8121.3</xdsb:RepositoryUniqueId>
  <xdsb:DocumentUniqueId>1.2.250.1.999.1.1.8121.1.1</xdsb:DocumentUniqueId>
 </xdsb:DocumentRequest>
</xdsb:RetrieveDocumentSetRequest>"""
ITI43_RESPONSE = f"""\
<xdsb:RetrieveDocumentSetResponse xmlns:xdsb="{XDSB}" xmlns:rs="{RS}">
 <rs:RegistryResponse status="urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success"/>
 <xdsb:DocumentResponse>
  <xdsb:RepositoryUniqueId>1.2.250.1.999.1.1.8121.3</xdsb:RepositoryUniqueId>
  <xdsb:DocumentUniqueId>1.2.250.1.999.1.1.8121.1.1</xdsb:DocumentUniqueId>
  <xdsb:mimeType>text/plain</xdsb:mimeType>
  <xdsb:Document>{base64.b64encode(DOCUMENT).decode()}</xdsb:Document>
 </xdsb:DocumentResponse>
</xdsb:RetrieveDocumentSetResponse>"""
ITI43_PARTIAL = f"""\
<xdsb:RetrieveDocumentSetResponse xmlns:xdsb="{XDSB}" xmlns:rs="{RS}">
 <rs:RegistryResponse status="urn:ihe:iti:2007:ResponseStatusType:PartialSuccess">
  <rs:RegistryErrorList highestSeverity="urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Error">
   <rs:RegistryError errorCode="XDSDocumentUniqueIdError" codeContext="1.2.250.1.999.1.1.8121.1.2 not found"/>
  </rs:RegistryErrorList>
 </rs:RegistryResponse>
</xdsb:RetrieveDocumentSetResponse>"""

# 11.6
ITI57_REQUEST = f"""\
<lcm:SubmitObjectsRequest xmlns:lcm="{LCM}" xmlns:rim="{RIM}">
 <rim:RegistryObjectList>
  <rim:RegistryPackage id="SubmissionSet02">{_slot("submissionTime", "20240401080000")}</rim:RegistryPackage>
  <rim:Classification id="cl-ss2" classifiedObject="SubmissionSet02"
      classificationNode="urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd"/>
  <rim:Association id="Upd01" associationType="urn:ihe:iti:2010:AssociationType:UpdateAvailabilityStatus"
      sourceObject="SubmissionSet02" targetObject="{_DE_UUID}">
   {_slot("OriginalStatus", "urn:oasis:names:tc:ebxml-regrep:StatusType:Approved")}
   {_slot("NewStatus", "urn:asip:ci-sis:2010:StatusType:Archived")}
  </rim:Association>
 </rim:RegistryObjectList>
</lcm:SubmitObjectsRequest>"""

EXAMPLES = {
    "11.1 ITI-41 request (inline)": ITI41_REQUEST,
    "11.2 ITI-41 success": ITI41_SUCCESS,
    "11.2 ITI-41 failure": ITI41_FAILURE,
    "11.3 ITI-18 request": ITI18_REQUEST,
    "11.4 ITI-18 LeafClass": ITI18_LEAF_CLASS,
    "11.4 ITI-18 ObjectRef": ITI18_OBJECT_REF,
    "11.4 ITI-18 error": ITI18_ERROR,
    "11.5 ITI-43 request": ITI43_REQUEST,
    "11.5 ITI-43 response": ITI43_RESPONSE,
    "11.5 ITI-43 partial": ITI43_PARTIAL,
    "11.6 ITI-57 request": ITI57_REQUEST,
}

# Each: a valid example with one change that the schemas must refuse
INVALID = {
    "Name before Slot": ITI41_REQUEST.replace(
        _slot("submissionTime", "20240312101500") + _name("Consultation du 12/03/2024", "fr-FR"),
        _name("Consultation du 12/03/2024", "fr-FR") + _slot("submissionTime", "20240312101500"),
    ),
    "ExternalIdentifier before Classification": ITI18_LEAF_CLASS.replace(
        '<rim:VersionInfo versionName="1"/>',
        '<rim:VersionInfo versionName="1"/>' + _external_id(_DE_UUID, *DE_IDS[1]),
    ),
    "ExtrinsicObject without id": ITI41_REQUEST.replace(
        '<rim:ExtrinsicObject id="Document01"', "<rim:ExtrinsicObject"
    ),
    "Association without targetObject": ITI41_REQUEST.replace(' targetObject="Document01"', ""),
    "Slot without ValueList": ITI18_REQUEST.replace(
        _slot("$XDSDocumentEntryCreationTimeFrom", "20240301"),
        '<rim:Slot name="$XDSDocumentEntryCreationTimeFrom"/>',
    ),
    "LocalizedString without value": ITI57_REQUEST.replace(
        "</rim:RegistryPackage>",
        '<rim:Name><rim:LocalizedString xml:lang="fr-FR"/></rim:Name></rim:RegistryPackage>',
    ),
    "unknown returnType": ITI18_REQUEST.replace('returnType="LeafClass"', 'returnType="Leaf"'),
    "AdhocQueryRequest without ResponseOption": re.sub(r"<query:ResponseOption [^>]*/>", "", ITI18_REQUEST),
    "RegistryResponse without status": ITI41_SUCCESS.replace(f' status="{SUCCESS}"', ""),
    "RegistryError without codeContext": ITI43_PARTIAL.replace(' codeContext="', ' context="'),
    "AdhocQueryResponse without RegistryObjectList": ITI18_ERROR.replace("<rim:RegistryObjectList/>", ""),
    "Document without id": ITI41_REQUEST.replace('<xdsb:Document id="Document01">', "<xdsb:Document>"),
    "Document not base64": ITI43_RESPONSE.replace(base64.b64encode(DOCUMENT).decode(), "not base64!"),
    "RetrieveDocumentSetRequest without DocumentRequest": re.sub(
        r"<xdsb:DocumentRequest>.*</xdsb:DocumentRequest>", "", ITI43_REQUEST, flags=re.DOTALL
    ),
    "DocumentRequest ids swapped": ITI43_REQUEST.replace(
        "<xdsb:RepositoryUniqueId>1.2.250.1.999.1.1.8121.3</xdsb:RepositoryUniqueId>\n"
        "  <xdsb:DocumentUniqueId>1.2.250.1.999.1.1.8121.1.1</xdsb:DocumentUniqueId>",
        "<xdsb:DocumentUniqueId>1.2.250.1.999.1.1.8121.1.1</xdsb:DocumentUniqueId>\n"
        "  <xdsb:RepositoryUniqueId>1.2.250.1.999.1.1.8121.3</xdsb:RepositoryUniqueId>",
    ),
    "Slot value longer than LongName": ITI18_REQUEST.replace("20240301", "2" * 257),
}


# --------------------------------------------------------------------------------------------------------
# (a) schemas reachable only through the rewritten locations
# --------------------------------------------------------------------------------------------------------


class _ServedSchemas(etree.Resolver):
    """Answers ``{OFFLINE_URL}?xsd=NAME`` from schema_document(); records what it served and what else was
    asked for (the parser has no network, so anything else fails the compilation)."""

    def __init__(self) -> None:
        super().__init__()
        self.served: set[str] = set()
        self.unexpected: list[str] = []

    def resolve(self, system_url: str, public_id: str, context: object) -> Any:
        prefix = f"{OFFLINE_URL}?xsd="
        document = (
            schema_document(system_url[len(prefix) :], OFFLINE_URL) if system_url.startswith(prefix) else None
        )
        if document is None:
            self.unexpected.append(system_url)
            return None
        self.served.add(system_url[len(prefix) :])
        return self.resolve_string(document, context, base_url=system_url)


def _compile(schema_xml: bytes, base_url: str) -> tuple[etree.XMLSchema, _ServedSchemas]:
    resolver = _ServedSchemas()
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    parser.resolvers.add(resolver)
    schema = etree.XMLSchema(etree.fromstring(schema_xml, parser, base_url=base_url))
    assert resolver.unexpected == []
    return schema, resolver


@pytest.fixture(scope="module")
def message_schema() -> etree.XMLSchema:
    """All message namespaces at once, as a WSDL's types section would import them."""
    imports = "".join(
        f'<xs:import namespace="{ns}" schemaLocation="{OFFLINE_URL}?xsd={name}"/>'
        for ns, name in ((XDSB, "xdsb.xsd"), (QUERY, "query.xsd"), (LCM, "lcm.xsd"), (RS, "rs.xsd"))
    )
    driver = f'<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">{imports}</xs:schema>'
    schema, resolver = _compile(driver.encode(), "urn:test:driver")
    assert resolver.served == XDS_SCHEMAS
    return schema


def test_shipped_schemas_are_one_per_namespace() -> None:
    folder = resources.files("soap_wsdl") / "wsdl"
    assert {entry.name for entry in folder.iterdir() if entry.name.endswith(".xsd")} == SCHEMAS


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_schema_compiles_from_served_locations(name: str) -> None:
    document = schema_document(name, OFFLINE_URL)
    assert document is not None
    root = etree.fromstring(document)
    locations = root.xpath("//xsd:import/@schemaLocation | //xsd:include/@schemaLocation", namespaces=WSDL_NS)
    assert all(loc.startswith(f"{OFFLINE_URL}?xsd=") for loc in locations)
    _, resolver = _compile(document, f"{OFFLINE_URL}?xsd={name}")
    assert {loc.removeprefix(f"{OFFLINE_URL}?xsd=") for loc in locations} <= resolver.served


@pytest.mark.parametrize("endpoint", ["registry", "repository", "dmp"])
def test_wsdl_document_points_at_the_endpoint(endpoint: Endpoint) -> None:
    root = etree.fromstring(wsdl_document(endpoint, OFFLINE_URL))
    assert root.xpath("//soap12:address/@location", namespaces=WSDL_NS) == [OFFLINE_URL]
    locations = root.xpath("//xsd:import/@schemaLocation", namespaces=WSDL_NS)
    assert locations
    for location in locations:
        assert location.startswith(f"{OFFLINE_URL}?xsd=")
        assert location.removeprefix(f"{OFFLINE_URL}?xsd=") in SCHEMAS


def test_endpoint_url_is_escaped() -> None:
    url = 'http://h/xds/registry?a=1&b="2"<'
    root = etree.fromstring(wsdl_document("registry", url))
    assert root.xpath("//soap12:address/@location", namespaces=WSDL_NS) == [url]
    schema = etree.fromstring(schema_document("rs.xsd", url) or b"")
    assert schema.xpath("//xsd:import/@schemaLocation", namespaces=WSDL_NS) == [f"{url}?xsd=rim.xsd"]


@pytest.mark.parametrize(
    "name",
    [
        "",
        "rim",
        "RIM.XSD",
        "../rim.xsd",
        "wsdl/rim.xsd",
        "./rim.xsd",
        "/etc/passwd",
        "rim.xsd/",
        "rim.xsd\x00",
        "registry.wsdl",
        "missing.xsd",
        "__init__.py",
        "..",
        ".",
    ],
)
def test_schema_document_serves_only_shipped_schemas(name: str) -> None:
    assert schema_document(name, OFFLINE_URL) is None


def test_unknown_endpoint_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown SOAP endpoint"):
        wsdl_document("consumer", OFFLINE_URL)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------------------
# WSDL facts (ITI TF-2x Appendix V)
# --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", ["registry", "repository"])
def test_wsdl_operations_actions_and_binding(endpoint: Endpoint) -> None:
    root = etree.fromstring(wsdl_document(endpoint, OFFLINE_URL))
    assert root.get("targetNamespace") == XDSB
    assert root.xpath("wsdl:service/@name", namespaces=WSDL_NS) == [SERVICES[endpoint]]
    (binding,) = root.xpath("wsdl:binding", namespaces=WSDL_NS)
    assert binding.xpath("soap12:binding/@style", namespaces=WSDL_NS) == ["document"]
    assert binding.xpath("wsaw:UsingAddressing", namespaces=WSDL_NS)
    port_type_ops = {
        op.get("name"): op for op in root.xpath("wsdl:portType/wsdl:operation", namespaces=WSDL_NS)
    }
    binding_ops = {op.get("name"): op for op in binding.xpath("wsdl:operation", namespaces=WSDL_NS)}
    assert set(port_type_ops) == set(binding_ops) == set(OPERATIONS[endpoint])
    wsaw_action = f"{{{WSDL_NS['wsaw']}}}Action"
    for name, (request_action, response_action, _, _) in OPERATIONS[endpoint].items():
        assert port_type_ops[name].find("wsdl:input", WSDL_NS).get(wsaw_action) == request_action
        assert port_type_ops[name].find("wsdl:output", WSDL_NS).get(wsaw_action) == response_action
        (soap_op,) = binding_ops[name].xpath("soap12:operation", namespaces=WSDL_NS)
        assert soap_op.get("soapAction") == request_action
        assert soap_op.get("soapActionRequired") == "false"
        assert binding_ops[name].xpath("*/soap12:body/@use", namespaces=WSDL_NS) == ["literal", "literal"]


def test_repository_binding_asks_for_mtom() -> None:
    root = etree.fromstring(wsdl_document("repository", OFFLINE_URL))
    (reference,) = root.xpath("wsdl:binding/wsp:PolicyReference/@URI", namespaces=WSDL_NS)
    (policy,) = root.xpath(f"wsp:Policy[@wsu:Id='{reference.removeprefix('#')}']", namespaces=WSDL_NS)
    assert policy.xpath(".//wsoma:OptimizedMimeSerialization", namespaces=WSDL_NS)


# --------------------------------------------------------------------------------------------------------
# (b) the example messages
# --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(EXAMPLES))
def test_example_validates(message_schema: etree.XMLSchema, name: str) -> None:
    document = etree.fromstring(EXAMPLES[name].encode())
    assert message_schema.validate(document), message_schema.error_log


@pytest.mark.parametrize("name", list(INVALID))
def test_wrong_message_is_refused(message_schema: etree.XMLSchema, name: str) -> None:
    assert INVALID[name] not in EXAMPLES.values(), "the mutation did not apply"
    assert not message_schema.validate(etree.fromstring(INVALID[name].encode()))


# --------------------------------------------------------------------------------------------------------
# (c) zeep over real HTTP
# --------------------------------------------------------------------------------------------------------


def _wsdl_app() -> Starlette:
    """GET {endpoint}?wsdl and GET {endpoint}?xsd=NAME, as the server serves them."""

    def route(endpoint: Endpoint) -> Route:
        async def serve(request: Request) -> Response:
            endpoint_url = str(request.url.replace(query=""))
            if "wsdl" in request.query_params:
                return Response(wsdl_document(endpoint, endpoint_url), media_type="text/xml")
            document = schema_document(request.query_params.get("xsd", ""), endpoint_url)
            if document is None:
                return Response(status_code=404)
            return Response(document, media_type="text/xml")

        return Route(f"/xds/{endpoint}", serve, methods=["GET"])

    return Starlette(routes=[route("registry"), route("repository")])


@pytest.fixture(scope="module")
def service_root() -> Iterator[str]:
    """``http://127.0.0.1:PORT/xds`` served by uvicorn in a background thread, stopped at teardown."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(_wsdl_app(), lifespan="off", ws="none", http="h11", log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert thread.is_alive(), "uvicorn stopped while starting"
            assert time.monotonic() < deadline, "uvicorn did not start within 10 s"
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}/xds"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture(scope="module")
def clients(service_root: str) -> Iterator[dict[tuple[Endpoint, bool], zeep.Client]]:
    """zeep clients per (endpoint, with WsAddressingPlugin), loaded from ``?wsdl``."""
    made: dict[tuple[Endpoint, bool], zeep.Client] = {}
    try:
        for endpoint in ("registry", "repository"):
            for with_plugin in (False, True):
                plugins = [WsAddressingPlugin()] if with_plugin else []
                made[endpoint, with_plugin] = zeep.Client(f"{service_root}/{endpoint}?wsdl", plugins=plugins)
        yield made
    finally:
        for client in made.values():
            client.transport.session.close()


def test_wsdl_and_schemas_over_http(service_root: str) -> None:
    url = f"{service_root}/registry"
    with requests.Session() as http:
        wsdl = http.get(f"{url}?wsdl", timeout=10)
        assert wsdl.status_code == 200
        assert wsdl.content == wsdl_document("registry", url)
        assert http.get(f"{url}?xsd=rim.xsd", timeout=10).content == schema_document("rim.xsd", url)
        assert http.get(f"{url}?xsd=../registry.wsdl", timeout=10).status_code == 404


@pytest.mark.parametrize("endpoint", ["registry", "repository"])
def test_zeep_lists_the_operations(
    clients: dict[tuple[Endpoint, bool], zeep.Client], endpoint: Endpoint
) -> None:
    client = clients[endpoint, False]
    (service,) = client.wsdl.services.values()
    assert service.name == SERVICES[endpoint]
    (port,) = service.ports.values()
    assert set(port.binding.all()) == set(OPERATIONS[endpoint])
    assert port.binding_options["address"].endswith(f"/xds/{endpoint}")
    for name, (request_action, *_) in OPERATIONS[endpoint].items():
        assert port.binding.get(name).abstract.wsa_action == request_action


def _slot_value(name: str, *values: str) -> dict[str, Any]:
    return {"name": name, "ValueList": {"Value": list(values)}}


def _localized(value: str) -> dict[str, Any]:
    return {"LocalizedString": [{"value": value}]}


SUBMIT_ARGS: dict[str, Any] = {
    "RegistryObjectList": {
        "_value_1": [
            {
                "RegistryPackage": {
                    "id": "SubmissionSet01",
                    "Slot": [_slot_value("submissionTime", "20240312101500")],
                    "Name": _localized("Consultation du 12/03/2024"),
                    "ExternalIdentifier": [
                        {
                            "id": "ei-ss-uid",
                            "registryObject": "SubmissionSet01",
                            "identificationScheme": "urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8",
                            "value": "1.2.250.1.999.1.1.8121.2.1",
                            "Name": _localized("XDSSubmissionSet.uniqueId"),
                        }
                    ],
                }
            },
            {
                "Classification": {
                    "id": "cl-ss-node",
                    "classifiedObject": "SubmissionSet01",
                    "classificationNode": "urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd",
                }
            },
            {
                "ExtrinsicObject": {
                    "id": "Document01",
                    "mimeType": "text/plain",
                    "objectType": "urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1",
                    "Slot": [
                        _slot_value("creationTime", "20240312093000"),
                        _slot_value("languageCode", "fr-FR"),
                    ],
                    "Classification": [
                        {
                            "id": "cl-de-class",
                            "classifiedObject": "Document01",
                            "nodeRepresentation": "10",
                            "classificationScheme": "urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a",
                            "Slot": [_slot_value("codingScheme", "1.2.250.1.213.1.1.4.1")],
                            "Name": _localized("Compte rendu"),
                        }
                    ],
                }
            },
            {
                "Association": {
                    "id": "Assoc01",
                    "sourceObject": "SubmissionSet01",
                    "targetObject": "Document01",
                    "associationType": "urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember",
                    "Slot": [_slot_value("SubmissionSetStatus", "Original")],
                }
            },
        ]
    }
}
QUERY_ARGS: dict[str, Any] = {
    "ResponseOption": {"returnType": "LeafClass", "returnComposedObjects": True},
    "AdhocQuery": {
        "id": "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d",
        "Slot": [_slot_value("$XDSDocumentEntryPatientId", "'123456789012345^^^&1.2.250.1.213.1.4.10&ISO'")],
    },
}
ARGS: dict[str, dict[str, Any]] = {
    "DocumentRegistry_RegisterDocumentSet-b": SUBMIT_ARGS,
    "DocumentRegistry_RegistryStoredQuery": QUERY_ARGS,
    "DocumentRegistry_UpdateDocumentSet": SUBMIT_ARGS,
    "DocumentRegistry_MultiPatientStoredQuery": QUERY_ARGS,
    "DocumentRepository_ProvideAndRegisterDocumentSet-b": {
        "SubmitObjectsRequest": SUBMIT_ARGS,
        "Document": [{"id": "Document01", "_value_1": DOCUMENT}],
    },
    "DocumentRepository_RetrieveDocumentSet": {
        "DocumentRequest": [
            {
                "RepositoryUniqueId": "1.2.250.1.999.1.1.8121.3",
                "DocumentUniqueId": "1.2.250.1.999.1.1.8121.1.1",
            },
        ],
    },
}
ALL_OPERATIONS = [(endpoint, name) for endpoint, operations in OPERATIONS.items() for name in operations]


@pytest.mark.parametrize("with_plugin", [False, True], ids=["zeep-wsa", "WsAddressingPlugin"])
@pytest.mark.parametrize(("endpoint", "operation"), ALL_OPERATIONS)
def test_zeep_builds_the_request(
    clients: dict[tuple[Endpoint, bool], zeep.Client],
    message_schema: etree.XMLSchema,
    endpoint: Endpoint,
    operation: str,
    with_plugin: bool,
) -> None:
    client = clients[endpoint, with_plugin]
    envelope = client.create_message(client.service, operation, **ARGS[operation])
    request_action, _, request_root, _ = OPERATIONS[endpoint][operation]

    assert envelope.tag == f"{{{SOAP12_ENV}}}Envelope"
    (body_root,) = envelope.find(f"{{{SOAP12_ENV}}}Body")
    assert body_root.tag == request_root
    assert message_schema.validate(body_root), message_schema.error_log

    actions = [element.text for element in envelope.iter(f"{{{WSA}}}Action")]
    # zeep adds the WS-Addressing headers by itself when the WSDL input carries wsaw:Action; the plugin then
    # adds a second set (zeep 4.3 behaviour). Either way every wsa:Action is the IHE one.
    if with_plugin:
        assert set(actions) == {request_action}
    else:
        assert actions == [request_action]
    destinations = {element.text for element in envelope.iter(f"{{{WSA}}}To")}
    assert destinations == {client.service._binding_options["address"]}
    assert next(iter(destinations)).endswith(f"/xds/{endpoint}")


def test_zeep_sends_the_document_inline(clients: dict[tuple[Endpoint, bool], zeep.Client]) -> None:
    client = clients["repository", False]
    operation = "DocumentRepository_ProvideAndRegisterDocumentSet-b"
    envelope = client.create_message(client.service, operation, **ARGS[operation])
    (document,) = envelope.iter(f"{{{XDSB}}}Document")
    assert document.get("id") == "Document01"
    assert base64.b64decode(document.text or "") == DOCUMENT


def test_zeep_reads_an_mtom_retrieve_response(clients: dict[tuple[Endpoint, bool], zeep.Client]) -> None:
    """The xop:Include child of Document (the ITI-43 example) is resolved by zeep before schema decoding."""
    client = clients["repository", False]
    # zeep strips CR/LF around a 'binary' attachment, so this document does not end with a line break.
    content = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF"
    root_part = f"""\
<soap:Envelope xmlns:soap="{SOAP12_ENV}" xmlns:wsa="{WSA}">
 <soap:Header><wsa:Action>urn:ihe:iti:2007:RetrieveDocumentSetResponse</wsa:Action></soap:Header>
 <soap:Body>{
        ITI43_RESPONSE.replace(
            f"<xdsb:Document>{base64.b64encode(DOCUMENT).decode()}</xdsb:Document>",
            '<xdsb:Document><xop:Include xmlns:xop="http://www.w3.org/2004/08/xop/include"'
            ' href="cid:doc1@xds.example.fr"/></xdsb:Document>',
        )
    }</soap:Body>
</soap:Envelope>""".encode()
    body = (
        b"--MIMEBoundary_r1\r\n"
        b'Content-Type: application/xop+xml; charset=UTF-8; type="application/soap+xml"\r\n'
        b"Content-Transfer-Encoding: binary\r\nContent-ID: <root.0@xds.example.fr>\r\n\r\n"
        + root_part
        + b"\r\n--MIMEBoundary_r1\r\n"
        b"Content-Type: application/pdf\r\nContent-Transfer-Encoding: binary\r\n"
        b"Content-ID: <doc1@xds.example.fr>\r\n\r\n" + content + b"\r\n--MIMEBoundary_r1--\r\n"
    )
    response = requests.Response()
    response.status_code = 200
    response.headers["Content-Type"] = (
        'multipart/related; boundary="MIMEBoundary_r1"; type="application/xop+xml";'
        ' start="<root.0@xds.example.fr>"; start-info="application/soap+xml"'
    )
    response._content = body
    binding = client.service._binding
    result = binding.process_reply(client, binding.get("DocumentRepository_RetrieveDocumentSet"), response)

    assert result.RegistryResponse.status == "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success"
    (document,) = result.DocumentResponse
    assert document.DocumentUniqueId == "1.2.250.1.999.1.1.8121.1.1"
    assert document.mimeType == "text/plain"
    assert document.Document == content
