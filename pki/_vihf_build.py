"""Building and signing a VIHF (docs/vihf.md §2–§3.6): the assertion skeleton in schema order, then an enveloped
RSA-SHA256 signature placed right after ``saml2:Issuer``, exclusive c14n, the signer certificate in KeyInfo."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import cast

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from lxml import etree
from signxml import DigestAlgorithm, SignatureMethod  # type: ignore[attr-defined]

from pki._dn import dn_string
from pki._signer import Signer, SignxmlKey
from pki._vihf_model import (
    CONFIDENTIALITY_SYSTEM,
    DS,
    HL7,
    PURPOSE_SYSTEM,
    RESOURCE_URN_DMP,
    SAML,
    SECRET_CONNECTION,
    SECTOR_SYSTEM,
    SMARTCARD_PKI,
    X509_SUBJECT_NAME,
    XS,
    XSI,
    Attr,
    AuthMode,
    CodedValue,
    PatientIns,
    PurposeOfUse,
    Software,
)
from pki._xmldsig import EXC_C14N, HardenedSigner
from soap_wsdl import parse_xml


@dataclass(frozen=True)
class VihfClaims:
    """What the caller asserts (docs/vihf.md §3): the content of a VIHF before it is signed."""

    name_id: str                      # IdNat_PS of the user (direct mode: the card holder = certificate CN)
    subject_name: str                 # subject-id: "Prénom Nom"
    auth_mode: AuthMode
    structure_id: str                 # Struct_IdNat of the practice situation
    sector: str                       # TRE_R02 code, e.g. "SA07"
    profession: CodedValue            # 1st role value
    software: Software
    specialty: CodedValue | None = None
    other_roles: tuple[CodedValue, ...] = ()
    purpose_of_use: PurposeOfUse = PurposeOfUse.NORMAL
    patient: PatientIns | None = None
    vihf_version: str = "3.0"
    authn_context: str = SMARTCARD_PKI
    secret_connection: bool = False
    extra_attributes: tuple[tuple[str, str], ...] = field(default=())  # (Name, string value), appended as is


def xs_datetime(moment: datetime) -> str:
    """``2026-03-02T09:15:00.000Z`` (UTC, milliseconds, as the samples)."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def build_vihf(
    claims: VihfClaims,
    *,
    signer_certificate: x509.Certificate,
    issue_instant: datetime,
    lifetime: timedelta | None = timedelta(minutes=5),
    assertion_id: str | None = None,
) -> etree._Element:
    """An unsigned ``saml2:Assertion`` whose Issuer is ``signer_certificate``'s subject DN; with ``lifetime``,
    ``saml2:Conditions`` bounds it to [issue_instant, issue_instant + lifetime)."""
    nsmap = {"saml2": SAML, "xsi": XSI, "xs": XS}
    a = etree.Element(_s("Assertion"), nsmap=nsmap)
    a.set("ID", assertion_id or f"_{uuid.uuid4()}")
    a.set("IssueInstant", xs_datetime(issue_instant))
    a.set("Version", "2.0")
    issuer = etree.SubElement(a, _s("Issuer"), Format=X509_SUBJECT_NAME)
    issuer.text = dn_string(signer_certificate.subject)
    etree.SubElement(etree.SubElement(a, _s("Subject")), _s("NameID")).text = claims.name_id
    if lifetime is not None:
        etree.SubElement(a, _s("Conditions"), NotBefore=xs_datetime(issue_instant),
                         NotOnOrAfter=xs_datetime(issue_instant + lifetime))
    authn = etree.SubElement(a, _s("AuthnStatement"), AuthnInstant=xs_datetime(issue_instant))
    etree.SubElement(etree.SubElement(authn, _s("AuthnContext")), _s("AuthnContextClassRef")).text = \
        claims.authn_context

    statement = etree.SubElement(a, _s("AttributeStatement"))
    _string(statement, Attr.VERSION, claims.vihf_version)
    _string(statement, Attr.MODE, claims.auth_mode.value)
    _string(statement, Attr.STRUCTURE, claims.structure_id)
    _string(statement, Attr.SECTOR, f"{claims.sector}^{SECTOR_SYSTEM}")
    _string(statement, Attr.SUBJECT_ID, claims.subject_name)
    roles = [claims.profession, *([claims.specialty] if claims.specialty else []), *claims.other_roles]
    _coded(statement, Attr.ROLE, "Role", roles)
    if claims.patient is not None:
        _string(statement, Attr.RESOURCE_ID, claims.patient.resource_id)
    _string(statement, Attr.RESOURCE_URN, RESOURCE_URN_DMP)
    pou = claims.purpose_of_use
    _coded(statement, Attr.PURPOSE_OF_USE, "PurposeOfUse",
           [CodedValue(pou.value, PURPOSE_SYSTEM, "mode acces VIHF 2.0", pou.display_name)])
    if claims.secret_connection:
        _coded(statement, Attr.CONFIDENTIALITY, "ConfidentialityCode",
               [CodedValue(SECRET_CONNECTION, CONFIDENTIALITY_SYSTEM)])
    sw = claims.software
    if sw.installation_id:
        _string(statement, Attr.LPS_ID, sw.installation_id)
    _string(statement, Attr.LPS_NAME, sw.name)
    if sw.version:
        _string(statement, Attr.LPS_VERSION, sw.version)
    _string(statement, Attr.LPS_HOMOLOGATION, sw.homologation_id)
    for name, value in claims.extra_attributes:
        _string(statement, name, value)
    return a


def sign_assertion(assertion: etree._Element, signer: Signer) -> etree._Element:
    """A signed copy of ``assertion``: enveloped signature right after ``saml2:Issuer`` (docs/vihf.md §2),
    one Reference to ``#ID`` with enveloped-signature + exclusive c14n, exclusive c14n of SignedInfo,
    RSA-SHA256/SHA-256 (docs/vihf.md §6), the signer certificate in ``KeyInfo/X509Data``."""
    issuer = assertion.find(_s("Issuer"))
    assertion_id = assertion.get("ID")
    if issuer is None or not assertion_id:
        raise ValueError("a VIHF needs an ID and a saml2:Issuer before it can be signed")
    doc = parse_xml(etree.tostring(assertion))  # a standalone copy: the caller's tree is left unsigned
    doc_issuer = doc.find(_s("Issuer"))
    assert doc_issuer is not None
    # signxml fills a placeholder in place; without one it would append the signature as the last child.
    doc_issuer.addnext(etree.Element(f"{{{DS}}}Signature", Id="placeholder", nsmap={"ds": DS}))
    xml_signer = HardenedSigner(
        signature_algorithm=SignatureMethod.RSA_SHA256,
        digest_algorithm=DigestAlgorithm.SHA256,
        c14n_algorithm=EXC_C14N,
    )
    key = cast(rsa.RSAPrivateKey, SignxmlKey(signer))  # signxml only calls sign(); see SignxmlKey
    signed: etree._Element = xml_signer.sign(doc, key=key, cert=[signer.certificate],
                                             reference_uri=f"#{assertion_id}")
    return signed


def _s(local: str) -> str:
    return f"{{{SAML}}}{local}"


def _attribute(statement: etree._Element, name: str) -> etree._Element:
    return etree.SubElement(statement, _s("Attribute"), Name=name)


def _string(statement: etree._Element, name: str, value: str) -> None:
    v = etree.SubElement(_attribute(statement, name), _s("AttributeValue"))
    v.set(f"{{{XSI}}}type", "xs:string")
    v.text = value


def _coded(statement: etree._Element, name: str, element: str, values: list[CodedValue]) -> None:
    attribute = _attribute(statement, name)
    for cv in values:
        holder = etree.SubElement(attribute, _s("AttributeValue"))
        ce = etree.SubElement(holder, f"{{{HL7}}}{element}", nsmap={None: HL7})  # type: ignore[dict-item]
        ce.set(f"{{{XSI}}}type", "CE")
        ce.set("code", cv.code)
        ce.set("codeSystem", cv.code_system)
        if cv.code_system_name:
            ce.set("codeSystemName", cv.code_system_name)
        if cv.display_name:
            ce.set("displayName", cv.display_name)
