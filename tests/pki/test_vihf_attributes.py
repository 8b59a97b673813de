"""Every required VIHF attribute (docs/vihf.md §3): missing → ATTRIBUTE_MISSING naming it; malformed → its own
reason. The assertions are validly signed: only the content is wrong."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from lxml import etree
from vihf_support import (
    Pkis,
    alice_claims,
    attribute,
    first_value,
    hospital_claims,
    refusal,
    reparse,
    signed_vihf,
    verifier,
)

from pki import CodedValue, PatientIns, VihfRefusal

SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
HL7 = "urn:hl7-org:v3"
ROLE = "urn:oasis:names:tc:xacml:2.0:subject:role"
PURPOSE = "urn:oasis:names:tc:xspa:1.0:subject:purposeofuse"
RESOURCE_ID = "urn:oasis:names:tc:xacml:2.0:resource:resource-id"
SUBJECT_ID = "urn:oasis:names:tc:xspa:1.0:subject:subject-id"
CONFIDENTIALITY = "urn:oasis:names:tc:xspa:1.0:resource:patient:hl7:confidentiality-code"

REQUIRED = [
    "VIHF_Version",
    "Authentification_Mode",
    "Identifiant_Structure",
    "Secteur_Activite",
    SUBJECT_ID,
    ROLE,
    "Ressource_URN",
    PURPOSE,
    "LPS_Nom",
    "LPS_ID_HOMOLOGATION_DMP",
]


@pytest.mark.parametrize("name", REQUIRED)
def test_missing_required_attribute(pkis: Pkis, name: str) -> None:
    def edit(a: etree._Element) -> None:
        node = attribute(a, name)
        node.getparent().remove(node)  # type: ignore[union-attr]
    err = refusal(verifier(pkis), signed_vihf(pkis.alice.signature.signer(), edit=edit))
    assert err.reason is VihfRefusal.ATTRIBUTE_MISSING
    assert err.attribute == name
    assert err.reason.dmp_subcode == "DMPInvalidVIHF"


@pytest.mark.parametrize("name", ["LPS_ID", "LPS_Version", RESOURCE_ID])
def test_optional_attribute_may_be_absent(pkis: Pkis, name: str) -> None:
    def edit(a: etree._Element) -> None:
        node = attribute(a, name)
        node.getparent().remove(node)  # type: ignore[union-attr]
    assert verifier(pkis).verify(reparse(signed_vihf(pkis.alice.signature.signer(), edit=edit)))


def set_text(name: str, text: str) -> Callable[[etree._Element], None]:
    """The first value of ``name`` becomes the string ``text`` (any child element is dropped)."""
    def edit(a: etree._Element) -> None:
        value = first_value(a, name)
        for child in list(value):
            value.remove(child)
        value.text = text
    return edit


@pytest.mark.parametrize(("name", "text", "reason"), [
    ("VIHF_Version", "2.0", VihfRefusal.VERSION_UNSUPPORTED),
    ("VIHF_Version", "", VihfRefusal.VERSION_UNSUPPORTED),
    ("Authentification_Mode", "DIRECT", VihfRefusal.MODE_INVALID),
    ("Authentification_Mode", "directe", VihfRefusal.MODE_INVALID),
    ("Identifiant_Structure", "ABC", VihfRefusal.STRUCTURE_ID_INVALID),
    ("Identifiant_Structure", "499700012349013", VihfRefusal.STRUCTURE_ID_INVALID),  # RPPS-rang Luhn
    ("Identifiant_Structure", "9750712184", VihfRefusal.STRUCTURE_ID_INVALID),       # no such type
    ("Secteur_Activite", "SA07", VihfRefusal.SECTOR_INVALID),
    ("Secteur_Activite", "SA07^1.2.250.1.71.4.2.5", VihfRefusal.SECTOR_INVALID),
    ("Secteur_Activite", "XX07^1.2.250.1.71.4.2.4", VihfRefusal.SECTOR_INVALID),
    (SUBJECT_ID, "   ", VihfRefusal.SUBJECT_ID_INVALID),
    (RESOURCE_ID, "284067512345688", VihfRefusal.RESOURCE_ID_INVALID),
    (RESOURCE_ID, "284067512345688^^^&1.2.250.1.213.1.4.2&ISO^NH", VihfRefusal.RESOURCE_ID_INVALID),  # INS-C
    (RESOURCE_ID, "284067512345687^^^&1.2.250.1.213.1.4.10&ISO^NH", VihfRefusal.NIR_INVALID),
    (RESOURCE_ID, "185054958815780^^^&1.2.250.1.213.1.4.8&ISO^NH", VihfRefusal.NIR_INVALID),   # seed S003
    ("Ressource_URN", "urn:dmp:other", VihfRefusal.RESOURCE_URN_INVALID),
    ("LPS_Nom", "", VihfRefusal.SOFTWARE_INVALID),
    ("LPS_ID_HOMOLOGATION_DMP", " ", VihfRefusal.SOFTWARE_INVALID),
])
def test_malformed_attribute(pkis: Pkis, name: str, text: str, reason: VihfRefusal) -> None:
    err = refusal(verifier(pkis), signed_vihf(pkis.alice.signature.signer(), edit=set_text(name, text)))
    assert err.reason is reason
    assert err.attribute == name


@pytest.mark.parametrize("resource_id", [
    "185052A01234579^^^&1.2.250.1.213.1.4.10&ISO^NH",   # Corsica 2A
    "188102B17295264^^^&1.2.250.1.213.1.4.8&ISO",       # Corsica 2B, without ^NH
    "207058575627097^^^&1.2.250.1.213.1.4.10&ISO^NH",   # key 97
    "255069999999934^^^&1.2.250.1.213.1.4.11&ISO^NH",   # demonstration patient
])
def test_valid_resource_ids(pkis: Pkis, resource_id: str) -> None:
    p = verifier(pkis).verify(reparse(signed_vihf(pkis.alice.signature.signer(),
                                                  edit=set_text(RESOURCE_ID, resource_id))))
    assert p.patient is not None
    assert p.patient == PatientIns(resource_id[:15], resource_id.split("&")[1])


def set_coded(name: str, index: int, **attrs: str) -> Callable[[etree._Element], None]:
    def edit(a: etree._Element) -> None:
        ce = attribute(a, name)[index][0]
        for k, v in attrs.items():
            if v:
                ce.set(k, v)
            else:
                del ce.attrib[k]
    return edit


@pytest.mark.parametrize("edit", [
    set_coded(ROLE, 0, codeSystem=""),                      # no code system
    set_coded(ROLE, 0, codeSystem="not an oid"),
    set_coded(ROLE, 0, code=""),                            # no code
    set_coded(ROLE, 0, codeSystem="1.2.250.1.213.1.1.4.5"),  # profession from a system that is not allowed
], ids=["no-code-system", "code-system-not-oid", "no-code", "profession-system"])
def test_malformed_role(pkis: Pkis, edit: Callable[[etree._Element], None]) -> None:
    err = refusal(verifier(pkis), signed_vihf(pkis.alice.signature.signer(), edit=edit))
    assert err.reason is VihfRefusal.ROLE_INVALID
    assert err.attribute == ROLE


def test_role_as_a_string_is_malformed(pkis: Pkis) -> None:
    err = refusal(verifier(pkis), signed_vihf(pkis.alice.signature.signer(), edit=set_text(ROLE, "10")))
    assert err.reason is VihfRefusal.ROLE_INVALID


def test_role_in_another_namespace_is_malformed(pkis: Pkis) -> None:
    def edit(a: etree._Element) -> None:
        ce = attribute(a, ROLE)[0][0]
        ce.tag = "{urn:not-hl7}Role"
    err = refusal(verifier(pkis), signed_vihf(pkis.alice.signature.signer(), edit=edit))
    assert err.reason is VihfRefusal.ROLE_INVALID


@pytest.mark.parametrize(("profession", "specialty"), [
    ("10", None),                                                          # médecin without specialty
    ("10", CodedValue("G15_21", "1.2.250.1.213.1.1.4.5")),                # médecin, 2nd value not TRE_R01
    ("21", None),                                                          # pharmacien without specialty
])
def test_specialty_is_mandatory_for_medecins_and_pharmaciens(pkis: Pkis, profession: str,
                                                              specialty: CodedValue | None) -> None:
    claims = alice_claims(profession=CodedValue.profession(profession), specialty=specialty)
    err = refusal(verifier(pkis, policy=None), signed_vihf(pkis.alice.signature.signer(), claims))
    assert err.reason is VihfRefusal.SPECIALTY_MISSING


def test_automaton_profession_is_accepted(pkis: Pkis) -> None:
    claims = hospital_claims(profession=CodedValue("AUTOMATE", "1.2.250.1.213.1.1.4.6", None, "Automate"))
    p = verifier(pkis).verify(reparse(signed_vihf(pkis.hospital.seal.signer(), claims)))
    assert p.profession.code == "AUTOMATE"


@pytest.mark.parametrize("edit", [
    set_coded(PURPOSE, 0, code="urgence"),
    set_coded(PURPOSE, 0, code="NORMAL"),
    set_coded(PURPOSE, 0, codeSystem="1.2.250.1.213.1.1.4.13"),
    set_text(PURPOSE, "normal"),
], ids=["unknown-code", "wrong-case", "wrong-system", "string-value"])
def test_malformed_purpose_of_use(pkis: Pkis, edit: Callable[[etree._Element], None]) -> None:
    err = refusal(verifier(pkis), signed_vihf(pkis.alice.signature.signer(), edit=edit))
    assert err.reason is VihfRefusal.PURPOSE_OF_USE_INVALID
    assert err.attribute == PURPOSE


def test_two_purposes_of_use(pkis: Pkis) -> None:
    def edit(a: etree._Element) -> None:
        node = attribute(a, PURPOSE)
        node.append(etree.fromstring(etree.tostring(node[0])))
    err = refusal(verifier(pkis), signed_vihf(pkis.alice.signature.signer(), edit=edit))
    assert err.reason is VihfRefusal.PURPOSE_OF_USE_INVALID


def test_malformed_confidentiality_code(pkis: Pkis) -> None:
    claims = alice_claims(secret_connection=True)
    err = refusal(verifier(pkis), signed_vihf(pkis.alice.signature.signer(), claims,
                                              edit=set_coded(CONFIDENTIALITY, 0, code="INVISIBLE_PATIENT")))
    assert err.reason is VihfRefusal.CONFIDENTIALITY_INVALID


def test_single_valued_attribute_with_two_values(pkis: Pkis) -> None:
    def edit(a: etree._Element) -> None:
        node = attribute(a, "Identifiant_Structure")
        node.append(etree.fromstring(etree.tostring(node[0])))
    err = refusal(verifier(pkis), signed_vihf(pkis.alice.signature.signer(), edit=edit))
    assert err.reason is VihfRefusal.STRUCTURE_ID_INVALID


@pytest.mark.parametrize("second_name", ["VIHF_Version", "Authentification_mode"])
def test_duplicated_attribute(pkis: Pkis, second_name: str) -> None:
    """Two attributes for one claim (also the two accepted spellings of the mode): which one would count?"""
    def edit(a: etree._Element) -> None:
        source = attribute(a, "VIHF_Version" if second_name == "VIHF_Version" else "Authentification_Mode")
        copy = etree.fromstring(etree.tostring(source))
        copy.set("Name", second_name)
        source.addnext(copy)
    err = refusal(verifier(pkis), signed_vihf(pkis.alice.signature.signer(), edit=edit))
    assert err.reason is VihfRefusal.ATTRIBUTE_DUPLICATED


def test_missing_nameid(pkis: Pkis) -> None:
    def edit(a: etree._Element) -> None:
        subject = a.find(f"{{{SAML}}}Subject")
        assert subject is not None
        subject.remove(subject[0])
    err = refusal(verifier(pkis), signed_vihf(pkis.alice.signature.signer(), edit=edit))
    assert err.reason is VihfRefusal.MALFORMED_ASSERTION


def test_empty_nameid(pkis: Pkis) -> None:
    def edit(a: etree._Element) -> None:
        a.find(f"{{{SAML}}}Subject/{{{SAML}}}NameID").text = ""  # type: ignore[union-attr]
    err = refusal(verifier(pkis), signed_vihf(pkis.alice.signature.signer(), edit=edit))
    assert err.reason is VihfRefusal.MALFORMED_ASSERTION


def test_unknown_attributes_are_ignored(pkis: Pkis) -> None:
    claims = alice_claims(extra_attributes=(("Identifiant_Local", "X-42"),))
    assert verifier(pkis).verify(reparse(signed_vihf(pkis.alice.signature.signer(), claims)))
