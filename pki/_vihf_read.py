"""Reading the *signed* assertion into typed values, checking each attribute's presence and format
(docs/vihf.md §2–§3, §7 step 8). The caller hands over only what was signed: the assertion's own copy, once
its signature was verified over it and removed from it (no comments or processing instructions either: they
are refused before). Only direct children are looked at, never ``.//``, so nothing nested elsewhere can be
mistaken for a claim.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from lxml import etree

from identifiers import is_oid, nir_problem, struct_idnat_problem
from pki._errors import VihfError, VihfRefusal
from pki._policy import VihfPolicy
from pki._vihf_model import (
    HL7,
    PROFESSION_SYSTEM,
    PURPOSE_SYSTEMS,
    RESOURCE_URN_DMP,
    SAML,
    SECRET_CONNECTION,
    SECTOR_PATTERN,
    SPECIALTY_SYSTEM,
    VIHF_VERSIONS,
    X509_SUBJECT_NAME,
    Attr,
    AuthMode,
    CodedValue,
    PatientIns,
    PurposeOfUse,
    Software,
)

_INSTANT: Final = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,9}))?Z")
_CODE: Final = re.compile(r"[A-Za-z0-9_./-]{1,64}")
_RESOURCE_ID: Final = re.compile(r"([0-9A-Z]{15})\^\^\^&([0-9.]+)&ISO(?:\^NH)?")
_SPECIALTY_REQUIRED: Final = {"10": SPECIALTY_SYSTEM, "21": None}   # médecin: TRE_R01; pharmacien: any system
_ALLOWED_CONDITIONS: Final = frozenset({f"{{{SAML}}}OneTimeUse"})


@dataclass(frozen=True)
class SignedVihf:
    assertion_id: str
    issue_instant: datetime
    issuer: str
    name_id: str
    not_before: datetime | None
    not_on_or_after: datetime | None
    authn_context: str | None
    version: str
    mode: AuthMode
    structure_id: str
    sector: str
    subject_name: str
    roles: tuple[CodedValue, ...]
    patient: PatientIns | None
    purpose_of_use: PurposeOfUse
    secret_connection: bool
    software: Software


def parse_instant(text: str | None, what: str) -> datetime:
    """An xs:dateTime in UTC (``Z``), as SAML 2.0 core §1.3.3 requires."""
    m = _INSTANT.fullmatch(text or "")
    if m is None:
        raise VihfError(VihfRefusal.MALFORMED_ASSERTION, f"{what} '{text}' is not a UTC xs:dateTime")
    year, month, day, hour, minute, second, fraction = m.groups()
    try:
        return datetime(int(year), int(month), int(day), int(hour), int(minute), int(second),
                        int((fraction or "0").ljust(6, "0")[:6]), tzinfo=UTC)
    except ValueError:
        raise VihfError(VihfRefusal.MALFORMED_ASSERTION, f"{what} '{text}' is not a valid date") from None


def read_signed(assertion: etree._Element, policy: VihfPolicy) -> SignedVihf:
    issuer_el = _only(assertion, "Issuer")
    if issuer_el.get("Format") != X509_SUBJECT_NAME:
        raise VihfError(VihfRefusal.ISSUER_MISMATCH, f"saml2:Issuer Format must be {X509_SUBJECT_NAME}")
    name_id = _text(_only(_only(assertion, "Subject"), "NameID"))
    if not name_id:
        raise VihfError(VihfRefusal.MALFORMED_ASSERTION, "saml2:NameID is empty")
    not_before = not_on_or_after = None
    conditions = _optional(assertion, "Conditions")
    if conditions is not None:
        for child in conditions:
            if child.tag not in _ALLOWED_CONDITIONS:
                raise VihfError(VihfRefusal.MALFORMED_ASSERTION,
                                f"condition {etree.QName(child).localname} is not accepted in a VIHF")
        if conditions.get("NotBefore") is not None:
            not_before = parse_instant(conditions.get("NotBefore"), "Conditions/@NotBefore")
        if conditions.get("NotOnOrAfter") is not None:
            not_on_or_after = parse_instant(conditions.get("NotOnOrAfter"), "Conditions/@NotOnOrAfter")
    authn_context = None
    authn = _optional(assertion, "AuthnStatement")
    if authn is not None:
        context = _optional(authn, "AuthnContext")
        ref = _optional(context, "AuthnContextClassRef") if context is not None else None
        authn_context = _text(ref) or None if ref is not None else None

    attrs = _attributes(_only(assertion, "AttributeStatement"))
    version = _string(attrs, Attr.VERSION, VihfRefusal.VERSION_UNSUPPORTED)
    if version not in VIHF_VERSIONS:
        raise VihfError(VihfRefusal.VERSION_UNSUPPORTED, f"VIHF_Version '{version}' is not 3.0 or 4.0",
                        attribute=Attr.VERSION)
    mode_text = _string(attrs, Attr.MODE, VihfRefusal.MODE_INVALID)
    try:
        mode = AuthMode(mode_text)
    except ValueError:
        raise VihfError(VihfRefusal.MODE_INVALID, f"Authentification_Mode '{mode_text}' is not DIRECTE, "
                        "INDIRECTE or INDIRECTE_RENFORCEE", attribute=Attr.MODE) from None
    structure_id = _string(attrs, Attr.STRUCTURE, VihfRefusal.STRUCTURE_ID_INVALID)
    if problem := struct_idnat_problem(structure_id):
        raise VihfError(VihfRefusal.STRUCTURE_ID_INVALID, problem, attribute=Attr.STRUCTURE)
    sector_text = _string(attrs, Attr.SECTOR, VihfRefusal.SECTOR_INVALID)
    sector = SECTOR_PATTERN.fullmatch(sector_text)
    if sector is None:
        raise VihfError(VihfRefusal.SECTOR_INVALID, f"Secteur_Activite '{sector_text}' is not SAxx^1.2.250.1.71.4.2.4",
                        attribute=Attr.SECTOR)
    resource_urn = _string(attrs, Attr.RESOURCE_URN, VihfRefusal.RESOURCE_URN_INVALID)
    if resource_urn != RESOURCE_URN_DMP:
        raise VihfError(VihfRefusal.RESOURCE_URN_INVALID, f"Ressource_URN must be {RESOURCE_URN_DMP}",
                        attribute=Attr.RESOURCE_URN)

    return SignedVihf(
        assertion_id=assertion.get("ID") or "",
        issue_instant=parse_instant(assertion.get("IssueInstant"), "IssueInstant"),
        issuer=_text(issuer_el),
        name_id=name_id,
        not_before=not_before,
        not_on_or_after=not_on_or_after,
        authn_context=authn_context,
        version=version,
        mode=mode,
        structure_id=structure_id,
        sector=sector.group(1),
        subject_name=_string(attrs, Attr.SUBJECT_ID, VihfRefusal.SUBJECT_ID_INVALID),
        roles=_roles(attrs, policy),
        patient=_patient(attrs, policy),
        purpose_of_use=_purpose_of_use(attrs),
        secret_connection=_secret_connection(attrs),
        software=Software(
            name=_string(attrs, Attr.LPS_NAME, VihfRefusal.SOFTWARE_INVALID),
            homologation_id=_string(attrs, Attr.LPS_HOMOLOGATION, VihfRefusal.SOFTWARE_INVALID),
            version=_optional_string(attrs, Attr.LPS_VERSION, VihfRefusal.SOFTWARE_INVALID),
            installation_id=_optional_string(attrs, Attr.LPS_ID, VihfRefusal.SOFTWARE_INVALID),
        ),
    )


def _roles(attrs: dict[str, etree._Element], policy: VihfPolicy) -> tuple[CodedValue, ...]:
    values = _values(attrs, Attr.ROLE, required=True)
    roles = tuple(_coded(v, "Role", VihfRefusal.ROLE_INVALID, Attr.ROLE) for v in values)
    if not roles:
        raise VihfError(VihfRefusal.ROLE_INVALID, "role has no value", attribute=Attr.ROLE)
    profession = roles[0]
    if profession.code_system not in policy.profession_code_systems:
        raise VihfError(VihfRefusal.ROLE_INVALID,
                        f"the first role (profession) uses code system {profession.code_system}, not an allowed one",
                        attribute=Attr.ROLE)
    if profession.code_system == PROFESSION_SYSTEM and profession.code in _SPECIALTY_REQUIRED:
        system = _SPECIALTY_REQUIRED[profession.code]
        if len(roles) < 2 or (system is not None and roles[1].code_system != system):
            raise VihfError(VihfRefusal.SPECIALTY_MISSING,
                            f"profession {profession.code} needs its specialty as the second role value",
                            attribute=Attr.ROLE)
    return roles


def _patient(attrs: dict[str, etree._Element], policy: VihfPolicy) -> PatientIns | None:
    text = _optional_string(attrs, Attr.RESOURCE_ID, VihfRefusal.RESOURCE_ID_INVALID)
    if text is None:
        return None
    m = _RESOURCE_ID.fullmatch(text)
    if m is None:
        raise VihfError(VihfRefusal.RESOURCE_ID_INVALID, f"resource-id '{text}' is not NIR^^^&OID&ISO^NH",
                        attribute=Attr.RESOURCE_ID)
    nir, oid = m.groups()
    if oid not in policy.ins_oids:
        raise VihfError(VihfRefusal.RESOURCE_ID_INVALID, f"resource-id authority {oid} is not an INS-NIR authority",
                        attribute=Attr.RESOURCE_ID)
    if problem := nir_problem(nir):
        raise VihfError(VihfRefusal.NIR_INVALID, problem, attribute=Attr.RESOURCE_ID)
    return PatientIns(nir, oid)


def _purpose_of_use(attrs: dict[str, etree._Element]) -> PurposeOfUse:
    values = _values(attrs, Attr.PURPOSE_OF_USE, required=True)
    bad = VihfRefusal.PURPOSE_OF_USE_INVALID
    if len(values) != 1:
        raise VihfError(bad, "purposeofuse must have exactly one value", attribute=Attr.PURPOSE_OF_USE)
    cv = _coded(values[0], "PurposeOfUse", bad, Attr.PURPOSE_OF_USE)
    if cv.code_system not in PURPOSE_SYSTEMS:
        raise VihfError(bad, f"purposeofuse code system {cv.code_system} is not TRE_R248",
                        attribute=Attr.PURPOSE_OF_USE)
    try:
        return PurposeOfUse(cv.code)
    except ValueError:
        raise VihfError(bad, f"purposeofuse '{cv.code}' is not normal, bris_de_glace or centre_15",
                        attribute=Attr.PURPOSE_OF_USE) from None


def _secret_connection(attrs: dict[str, etree._Element]) -> bool:
    values = _values(attrs, Attr.CONFIDENTIALITY, required=False)
    if not values:
        return False
    bad = VihfRefusal.CONFIDENTIALITY_INVALID
    if len(values) != 1:
        raise VihfError(bad, "confidentiality-code must have exactly one value", attribute=Attr.CONFIDENTIALITY)
    value = values[0]
    children = [c for c in value if isinstance(c.tag, str)]
    code = children[0].get("code") if len(children) == 1 and etree.QName(children[0]).namespace == HL7 \
        else _text(value) if not children else None
    if code != SECRET_CONNECTION:
        raise VihfError(bad, f"confidentiality-code must be {SECRET_CONNECTION}", attribute=Attr.CONFIDENTIALITY)
    return True


# --- structure helpers -----------------------------------------------------------------------------------


def _s(local: str) -> str:
    return f"{{{SAML}}}{local}"


_ATTRIBUTE, _ATTRIBUTE_VALUE = _s("Attribute"), _s("AttributeValue")


def _only(parent: etree._Element, local: str) -> etree._Element:
    found = list(parent.iterchildren(_s(local)))
    if len(found) != 1:
        raise VihfError(VihfRefusal.MALFORMED_ASSERTION,
                        f"{etree.QName(parent).localname} must have exactly one saml2:{local}, found {len(found)}")
    return found[0]


def _optional(parent: etree._Element, local: str) -> etree._Element | None:
    found = list(parent.iterchildren(_s(local)))
    if len(found) > 1:
        raise VihfError(VihfRefusal.MALFORMED_ASSERTION,
                        f"{etree.QName(parent).localname} has {len(found)} saml2:{local}")
    return found[0] if found else None


def _text(el: etree._Element) -> str:
    if any(isinstance(c.tag, str) for c in el):
        raise VihfError(VihfRefusal.MALFORMED_ASSERTION, f"{etree.QName(el).localname} must hold text only")
    return (el.text or "").strip()


def _attributes(statement: etree._Element) -> dict[str, etree._Element]:
    out: dict[str, etree._Element] = {}
    for attr in statement:
        if attr.tag != _ATTRIBUTE:
            raise VihfError(VihfRefusal.MALFORMED_ASSERTION, "AttributeStatement may hold saml2:Attribute only")
        name = (attr.get("Name") or "").strip()
        if not name:
            raise VihfError(VihfRefusal.MALFORMED_ASSERTION, "saml2:Attribute without a Name")
        key = Attr.MODE if name == Attr.MODE_GIE_SPELLING else name
        if key in out:
            raise VihfError(VihfRefusal.ATTRIBUTE_DUPLICATED, f"attribute {name} appears more than once",
                            attribute=name)
        out[key] = attr
    return out


def _values(attrs: dict[str, etree._Element], name: str, *, required: bool) -> list[etree._Element]:
    attr = attrs.get(name)
    if attr is None:
        if required:
            raise VihfError(VihfRefusal.ATTRIBUTE_MISSING, f"attribute {name} is required", attribute=name)
        return []
    values = list(attr.iterchildren(_ATTRIBUTE_VALUE))
    if len(values) != len(attr):
        raise VihfError(VihfRefusal.MALFORMED_ASSERTION, f"attribute {name} holds something else than values")
    return values


def _string(attrs: dict[str, etree._Element], name: str, bad: VihfRefusal) -> str:
    text = _optional_string(attrs, name, bad, required=True)
    assert text is not None
    return text


def _optional_string(attrs: dict[str, etree._Element], name: str, bad: VihfRefusal, *,
                     required: bool = False) -> str | None:
    values = _values(attrs, name, required=required)
    if not values:
        if required:  # present without any value
            raise VihfError(bad, f"attribute {name} has no value", attribute=name)
        return None
    if len(values) != 1:
        raise VihfError(bad, f"attribute {name} must have exactly one value", attribute=name)
    if any(isinstance(c.tag, str) for c in values[0]):
        raise VihfError(bad, f"attribute {name} must be a string", attribute=name)
    text = (values[0].text or "").strip()
    if not text:
        raise VihfError(bad, f"attribute {name} is empty", attribute=name)
    return text


def _coded(value: etree._Element, local: str, bad: VihfRefusal, name: str) -> CodedValue:
    children = [c for c in value if isinstance(c.tag, str)]
    if len(children) != 1 or children[0].tag != f"{{{HL7}}}{local}":
        raise VihfError(bad, f"each value of {name} must be one hl7:{local}", attribute=name)
    ce = children[0]
    code, system = ce.get("code") or "", ce.get("codeSystem") or ""
    if _CODE.fullmatch(code) is None or not is_oid(system):
        raise VihfError(bad, f"hl7:{local} needs a code and an OID codeSystem (got '{code}', '{system}')",
                        attribute=name)
    return CodedValue(code, system, ce.get("codeSystemName"), ce.get("displayName"))
