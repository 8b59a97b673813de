"""VihfVerifier: valid VIHFs give the right Principal; each check of docs/vihf.md §7 refuses with its own reason.

Every assertion here is really signed (RSA-SHA256, signxml) by certificates of a real test PKI; the bad
ones are validly signed unless the test is about the signature itself.
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Callable
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree
from vihf_support import (
    ALICE,
    ALICE_STRUCTURE,
    HOSPITAL,
    NOW,
    PATIENT,
    SOFTWARE,
    Pkis,
    alice_claims,
    attribute,
    envelope,
    first_value,
    hospital_claims,
    refusal,
    reparse,
    signed_vihf,
    verifier,
)

from pki import (
    AuthMode,
    CodedValue,
    PurposeOfUse,
    TrustStore,
    VihfPolicy,
    VihfRefusal,
    build_vihf,
    dn_string,
    find_assertion,
)

SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
BOB_ID = "0751234567"


def s(local: str) -> str:
    return f"{{{SAML}}}{local}"


# --- accepted -----------------------------------------------------------------------------------------------


def test_direct_mode_medecin_gives_the_principal(pkis: Pkis) -> None:
    vihf = signed_vihf(pkis.alice.signature.signer())
    p = verifier(pkis).verify(reparse(vihf))
    assert p.assertion_id == vihf.get("ID")
    assert p.professional_id == "899700012349"
    assert p.name == "ALICE TESTEUR"
    assert p.profession == CodedValue("10", "1.2.250.1.71.1.2.7", "G15", "Médecin")
    assert p.specialty is not None
    assert p.specialty.code == "SM26"
    assert [r.code for r in p.roles] == ["10", "SM26"]
    assert p.structure_id == ALICE_STRUCTURE
    assert p.sector == "SA07"
    assert p.auth_mode is AuthMode.DIRECT
    assert p.purpose_of_use is PurposeOfUse.NORMAL
    assert p.patient == PATIENT
    assert p.patient is not None
    assert p.patient.cx == "284067512345688^^^&1.2.250.1.213.1.4.10&ISO"
    assert p.software == SOFTWARE
    assert p.vihf_version == "3.0"
    assert p.authn_context == "urn:oasis:names:tc:SAML:2.0:ac:classes:SmartcardPKI"
    assert not p.secret_connection
    assert p.signer_subject == "CN=899700012349+SN=TESTEUR+GN=ALICE,title=Médecin,C=FR"
    assert p.issued_at == NOW
    assert p.valid_until == NOW + timedelta(minutes=5) + timedelta(seconds=60)


def test_principal_is_frozen(pkis: Pkis) -> None:
    p = verifier(pkis).verify(reparse(signed_vihf(pkis.alice.signature.signer())))
    with pytest.raises(AttributeError):
        p.professional_id = "other"  # type: ignore[misc]


def test_assertion_inside_a_soap_envelope_is_verified_in_place(pkis: Pkis) -> None:
    vihf = signed_vihf(pkis.alice.signature.signer())
    wire = reparse(envelope(vihf))
    p = verifier(pkis).verify(find_assertion(wire))
    assert p.professional_id == ALICE.idnat_ps


def test_namespaces_declared_on_the_envelope_only(pkis: Pkis) -> None:
    """Clients may declare saml2/ds/xsi on the Envelope: the assertion, copied out, must still verify."""
    env = etree.Element("{http://www.w3.org/2003/05/soap-envelope}Envelope", nsmap={
        "saml2": SAML, "ds": "http://www.w3.org/2000/09/xmldsig#", "xs": "http://www.w3.org/2001/XMLSchema",
        "xsi": "http://www.w3.org/2001/XMLSchema-instance", "env": "http://www.w3.org/2003/05/soap-envelope"})
    security = envelope(signed_vihf(pkis.alice.signature.signer()))[0][0]
    env.append(security.getparent())  # type: ignore[arg-type]
    wire = etree.tostring(env)
    assert b'<saml2:Assertion ID=' in wire   # no declaration left on the assertion itself
    assert verifier(pkis).verify(find_assertion(reparse(env))).professional_id == ALICE.idnat_ps


def test_text_around_the_assertion_is_not_part_of_it(pkis: Pkis) -> None:
    vihf = signed_vihf(pkis.alice.signature.signer())
    vihf.tail = "trailing text in wsse:Security"
    wire = reparse(envelope(vihf))
    assert verifier(pkis).verify(find_assertion(wire)).professional_id == ALICE.idnat_ps


def test_indirect_mode_structure_seal(pkis: Pkis) -> None:
    vihf = signed_vihf(pkis.hospital.seal.signer(), hospital_claims())
    p = verifier(pkis).verify(reparse(vihf))
    assert p.auth_mode is AuthMode.INDIRECT
    assert p.professional_id == "1750712184/INT0042"
    assert p.structure_id == HOSPITAL.struct_idnat
    assert p.profession.code == "60"
    assert p.specialty is None
    assert p.signer_subject == dn_string(pkis.hospital.seal.certificate.subject)


def test_air_mode_has_a_30_second_window(pkis: Pkis) -> None:
    claims = hospital_claims(auth_mode=AuthMode.INDIRECT_REINFORCED)
    vihf = signed_vihf(pkis.hospital.seal.signer(), claims)
    p = verifier(pkis, at=NOW + timedelta(seconds=29)).verify(reparse(vihf))
    assert p.auth_mode is AuthMode.INDIRECT_REINFORCED
    assert p.valid_until == NOW + timedelta(seconds=30 + 60)
    err = refusal(verifier(pkis, at=NOW + timedelta(seconds=91)), vihf)
    assert err.reason is VihfRefusal.ASSERTION_EXPIRED


@pytest.mark.parametrize("purpose", list(PurposeOfUse))
def test_each_purpose_of_use(pkis: Pkis, purpose: PurposeOfUse) -> None:
    vihf = signed_vihf(pkis.alice.signature.signer(), alice_claims(purpose_of_use=purpose))
    assert verifier(pkis).verify(reparse(vihf)).purpose_of_use is purpose


def test_purpose_code_system_336_is_accepted(pkis: Pkis) -> None:
    def edit(a: etree._Element) -> None:
        first_value(a, "urn:oasis:names:tc:xspa:1.0:subject:purposeofuse")[0].set(
            "codeSystem", "1.2.250.1.213.1.1.4.336")
    vihf = signed_vihf(pkis.alice.signature.signer(), edit=edit)
    assert verifier(pkis).verify(reparse(vihf)).purpose_of_use is PurposeOfUse.NORMAL


@pytest.mark.parametrize("version", ["3.0", "4.0"])
def test_both_vihf_versions(pkis: Pkis, version: str) -> None:
    vihf = signed_vihf(pkis.alice.signature.signer(), alice_claims(vihf_version=version))
    assert verifier(pkis).verify(reparse(vihf)).vihf_version == version


def test_gie_spelling_of_the_mode_attribute(pkis: Pkis) -> None:
    vihf = signed_vihf(pkis.alice.signature.signer(),
                       edit=lambda a: attribute(a, "Authentification_Mode").set("Name", "Authentification_mode"))
    assert verifier(pkis).verify(reparse(vihf)).auth_mode is AuthMode.DIRECT


def test_request_without_patient_and_without_conditions(pkis: Pkis) -> None:
    vihf = signed_vihf(pkis.alice.signature.signer(), alice_claims(patient=None), lifetime=None)
    p = verifier(pkis).verify(reparse(vihf))
    assert p.patient is None
    assert p.valid_until == NOW + timedelta(seconds=300 + 60)


def test_secret_connection_of_a_minor(pkis: Pkis) -> None:
    vihf = signed_vihf(pkis.alice.signature.signer(), alice_claims(secret_connection=True))
    assert verifier(pkis).verify(reparse(vihf)).secret_connection


def test_nurse_with_adeli_needs_no_specialty(pkis: Pkis) -> None:
    claims = alice_claims(name_id="0751234567", subject_name="BOB INFIRMIER",
                          profession=CodedValue.profession("60"), specialty=None)
    p = verifier(pkis).verify(reparse(signed_vihf(pkis.bob.signature.signer(), claims)))
    assert p.professional_id == "0751234567"
    assert p.profession.code == "60"


def test_one_verifier_keeps_what_it_learnt_of_each_signer_apart(pkis: Pkis) -> None:
    """A verifier remembers each KeyInfo certificate (key, identity, subject) and its validation: signers met
    again, in any order, are still told apart, and a known certificate does not vouch for another key."""
    v = verifier(pkis)
    bob = alice_claims(name_id=BOB_ID, subject_name="BOB INFIRMIER", profession=CodedValue.profession("60"),
                       specialty=None)
    for _ in range(2):
        assert v.verify(reparse(signed_vihf(pkis.alice.signature.signer()))).signer_subject == \
            dn_string(pkis.alice.signature.certificate.subject)
        p = v.verify(reparse(signed_vihf(pkis.bob.signature.signer(), bob)))
        assert (p.professional_id, p.signer_subject) == (BOB_ID, dn_string(pkis.bob.signature.certificate.subject))
        p = v.verify(reparse(signed_vihf(pkis.hospital.seal.signer(), hospital_claims())))
        assert (p.auth_mode, p.structure_id) == (AuthMode.INDIRECT, HOSPITAL.struct_idnat)
    swapped = signed_vihf(pkis.bob.signature.signer(), alice_claims())   # BOB's key, ALICE's certificate
    key_info = swapped.find(".//{http://www.w3.org/2000/09/xmldsig#}X509Certificate")
    assert key_info is not None
    key_info.text = base64.b64encode(pkis.alice.signature.certificate.public_bytes(Encoding.DER)).decode()
    assert refusal(v, swapped).reason is VihfRefusal.SIGNATURE_INVALID
    revoked = signed_vihf(pkis.revoked.signature.signer())   # ALICE's identity, a revoked card
    assert refusal(v, revoked).reason is VihfRefusal.CERTIFICATE_REVOKED


def test_nameid_check_can_be_relaxed_for_legacy_samples(pkis: Pkis) -> None:
    vihf = signed_vihf(pkis.alice.signature.signer(), alice_claims(name_id="899700012340"))
    relaxed = verifier(pkis, policy=VihfPolicy(strict_nameid=False))
    assert relaxed.verify(reparse(vihf)).professional_id == "899700012340"


def test_clock_skew_is_tolerated_on_both_ends(pkis: Pkis) -> None:
    vihf = signed_vihf(pkis.alice.signature.signer())
    assert verifier(pkis, at=NOW - timedelta(seconds=59)).verify(reparse(vihf))
    vihf = signed_vihf(pkis.alice.signature.signer())
    assert verifier(pkis, at=NOW + timedelta(minutes=5, seconds=59)).verify(reparse(vihf))


def test_tls_peer_of_the_same_holder_is_accepted(pkis: Pkis) -> None:
    vihf = signed_vihf(pkis.alice.signature.signer())
    p = verifier(pkis).verify(reparse(vihf), tls_peer=pkis.alice.authentication.certificate)
    assert p.professional_id == ALICE.idnat_ps
    vihf = signed_vihf(pkis.hospital.seal.signer(), hospital_claims())
    assert verifier(pkis).verify(reparse(vihf), tls_peer=pkis.hospital.authentication.certificate)


# --- refused: presence and signature --------------------------------------------------------------------------


def test_unsigned_assertion(pkis: Pkis) -> None:
    unsigned = build_vihf(alice_claims(), signer_certificate=pkis.alice.signature.certificate, issue_instant=NOW)
    assert refusal(verifier(pkis), unsigned).reason is VihfRefusal.SIGNATURE_MISSING


def test_not_an_assertion(pkis: Pkis) -> None:
    assert refusal(verifier(pkis), etree.Element("Assertion")).reason is VihfRefusal.MISSING_ASSERTION


def test_tampered_after_signing(pkis: Pkis) -> None:
    vihf = signed_vihf(pkis.alice.signature.signer())
    first_value(vihf, "urn:oasis:names:tc:xacml:2.0:resource:resource-id").text = \
        "185052A01234579^^^&1.2.250.1.213.1.4.10&ISO^NH"
    err = refusal(verifier(pkis), vihf)
    assert err.reason is VihfRefusal.SIGNATURE_INVALID


def test_tampered_signature_value(pkis: Pkis) -> None:
    vihf = signed_vihf(pkis.alice.signature.signer())
    value = vihf.find(".//{http://www.w3.org/2000/09/xmldsig#}SignatureValue")
    assert value is not None
    assert value.text
    value.text = ("A" if value.text[0] != "A" else "B") + value.text[1:]
    assert refusal(verifier(pkis), vihf).reason is VihfRefusal.SIGNATURE_INVALID


def test_certificate_swapped_in_key_info(pkis: Pkis) -> None:
    """Signed by BOB's key, KeyInfo claims ALICE's (trusted) certificate."""
    import base64

    from cryptography.hazmat.primitives.serialization import Encoding

    vihf = signed_vihf(pkis.bob.signature.signer(), alice_claims())
    cert = vihf.find(".//{http://www.w3.org/2000/09/xmldsig#}X509Certificate")
    assert cert is not None
    cert.text = base64.b64encode(pkis.alice.signature.certificate.public_bytes(Encoding.DER)).decode()
    assert refusal(verifier(pkis), vihf).reason is VihfRefusal.SIGNATURE_INVALID


def test_no_certificate_in_key_info(pkis: Pkis) -> None:
    vihf = signed_vihf(pkis.alice.signature.signer())
    key_info = vihf.find(".//{http://www.w3.org/2000/09/xmldsig#}KeyInfo")
    assert key_info is not None
    key_info.getparent().remove(key_info)  # type: ignore[union-attr]
    assert refusal(verifier(pkis), vihf).reason is VihfRefusal.CERTIFICATE_MISSING


def test_garbage_certificate_in_key_info(pkis: Pkis) -> None:
    vihf = signed_vihf(pkis.alice.signature.signer())
    cert = vihf.find(".//{http://www.w3.org/2000/09/xmldsig#}X509Certificate")
    assert cert is not None
    cert.text = "bm90IGEgY2VydGlmaWNhdGU="
    assert refusal(verifier(pkis), vihf).reason is VihfRefusal.CERTIFICATE_MALFORMED


def test_sha1_is_refused_by_default(pkis: Pkis) -> None:
    vihf = signed_vihf(pkis.alice.signature.signer())
    method = vihf.find(".//{http://www.w3.org/2000/09/xmldsig#}SignatureMethod")
    assert method is not None
    method.set("Algorithm", "http://www.w3.org/2000/09/xmldsig#rsa-sha1")
    assert refusal(verifier(pkis), vihf).reason is VihfRefusal.ALGORITHM_NOT_ALLOWED


def test_inclusive_c14n_is_refused(pkis: Pkis) -> None:
    vihf = signed_vihf(pkis.alice.signature.signer())
    method = vihf.find(".//{http://www.w3.org/2000/09/xmldsig#}CanonicalizationMethod")
    assert method is not None
    method.set("Algorithm", "http://www.w3.org/TR/2001/REC-xml-c14n-20010315")
    assert refusal(verifier(pkis), vihf).reason is VihfRefusal.ALGORITHM_NOT_ALLOWED


DS = "http://www.w3.org/2000/09/xmldsig#"


def ds(element: etree._Element, path: str) -> etree._Element:
    found = element.find(path.replace("ds:", f"{{{DS}}}"))
    assert found is not None, path
    return found


def _append_object(sig: etree._Element) -> None:
    etree.SubElement(sig, f"{{{DS}}}Object").text = "x"


def _second_reference(sig: etree._Element) -> None:
    ds(sig, "ds:SignedInfo").append(copy.deepcopy(ds(sig, "ds:SignedInfo/ds:Reference")))


def _no_transforms(sig: etree._Element) -> None:
    reference = ds(sig, "ds:SignedInfo/ds:Reference")
    reference.remove(ds(reference, "ds:Transforms"))


def _transforms_swapped(sig: etree._Element) -> None:
    transforms = ds(sig, ".//ds:Transforms")
    transforms.append(transforms[0])


def _xpath_transform_added(sig: etree._Element) -> None:
    etree.SubElement(ds(sig, ".//ds:Transforms"), f"{{{DS}}}Transform",
                     Algorithm="http://www.w3.org/TR/1999/REC-xpath-19991116")


def _algorithm(path: str, uri: str) -> Callable[[etree._Element], None]:
    return lambda sig: ds(sig, path).set("Algorithm", uri)


def _signature_value(text: str) -> Callable[[etree._Element], None]:
    def edit(sig: etree._Element) -> None:
        ds(sig, "ds:SignatureValue").text = text
    return edit


def _no_signature_value(sig: etree._Element) -> None:
    sig.remove(ds(sig, "ds:SignatureValue"))


def _signed_info_reordered(sig: etree._Element) -> None:
    signed_info = ds(sig, "ds:SignedInfo")
    signed_info.insert(0, ds(signed_info, "ds:SignatureMethod"))


def _key_info_first(sig: etree._Element) -> None:
    sig.insert(1, ds(sig, "ds:KeyInfo"))


def _parameter_in_enveloped_transform(sig: etree._Element) -> None:
    etree.SubElement(ds(sig, ".//ds:Transforms")[0], "{http://www.w3.org/2001/10/xml-exc-c14n#}InclusiveNamespaces",
                     PrefixList="ds")


@pytest.mark.parametrize(("edit", "reason"), [
    (_append_object, VihfRefusal.SIGNATURE_MALFORMED),
    (_second_reference, VihfRefusal.REFERENCE_MISMATCH),
    (_no_transforms, VihfRefusal.ALGORITHM_NOT_ALLOWED),
    (_transforms_swapped, VihfRefusal.ALGORITHM_NOT_ALLOWED),
    (_xpath_transform_added, VihfRefusal.ALGORITHM_NOT_ALLOWED),
    (_parameter_in_enveloped_transform, VihfRefusal.ALGORITHM_NOT_ALLOWED),
    (_algorithm("ds:SignedInfo/ds:SignatureMethod", "http://www.w3.org/2001/04/xmldsig-more#hmac-sha256"),
     VihfRefusal.ALGORITHM_NOT_ALLOWED),
    (_algorithm(".//ds:DigestMethod", "http://www.w3.org/2000/09/xmldsig#sha1"), VihfRefusal.ALGORITHM_NOT_ALLOWED),
    (_algorithm(".//ds:DigestMethod", "http://www.w3.org/2001/04/xmldsig-more#md5"),
     VihfRefusal.ALGORITHM_NOT_ALLOWED),
    (_signature_value("not base64!"), VihfRefusal.SIGNATURE_MALFORMED),
    (_signature_value(""), VihfRefusal.SIGNATURE_INVALID),
    (_no_signature_value, VihfRefusal.SIGNATURE_MALFORMED),
    (_signed_info_reordered, VihfRefusal.SIGNATURE_MALFORMED),
    (_key_info_first, VihfRefusal.SIGNATURE_MALFORMED),
], ids=lambda v: v.code if isinstance(v, VihfRefusal) else getattr(v, "__name__", None))
def test_signature_of_another_shape(pkis: Pkis, edit: Callable[[etree._Element], None], reason: VihfRefusal) -> None:
    """docs/vihf.md §6: one shape of XML-DSig only, checked before any cryptography."""
    vihf = signed_vihf(pkis.alice.signature.signer())
    edit(ds(vihf, "ds:Signature"))
    assert refusal(verifier(pkis), vihf).reason is reason


def test_line_breaks_around_the_signature_are_signed(pkis: Pkis) -> None:
    """The enveloped-signature transform removes the Signature element, not the text after it."""
    vihf = signed_vihf(pkis.alice.signature.signer())
    vihf[1].tail = "\n  "   # whitespace the signer did not sign
    assert refusal(verifier(pkis), vihf).reason is VihfRefusal.SIGNATURE_INVALID


# --- refused: the signer certificate ----------------------------------------------------------------------------


def test_untrusted_ca(pkis: Pkis) -> None:
    """Same names as our hierarchy, other keys."""
    vihf = signed_vihf(pkis.foreign_alice.signature.signer())
    assert refusal(verifier(pkis), vihf).reason is VihfRefusal.CERTIFICATE_UNTRUSTED


def test_expired_certificate(pkis: Pkis) -> None:
    vihf = signed_vihf(pkis.expired.signature.signer())
    err = refusal(verifier(pkis), vihf)
    assert err.reason is VihfRefusal.CERTIFICATE_EXPIRED
    assert err.reason.dmp_subcode == "DMPCertificateExpired"


def test_not_yet_valid_certificate(pkis: Pkis) -> None:
    vihf = signed_vihf(pkis.not_yet_valid.signature.signer())
    assert refusal(verifier(pkis), vihf).reason is VihfRefusal.CERTIFICATE_NOT_YET_VALID


def test_revoked_certificate(pkis: Pkis) -> None:
    vihf = signed_vihf(pkis.revoked.signature.signer())
    err = refusal(verifier(pkis), vihf)
    assert err.reason is VihfRefusal.CERTIFICATE_REVOKED
    assert err.reason.dmp_subcode == "DMPCertificateRevoked"


def test_unknown_revocation_status(pkis: Pkis) -> None:
    no_crls = TrustStore([pkis.pki.root], [pkis.pki.persons_ca, pkis.pki.organisations_ca])
    vihf = signed_vihf(pkis.alice.signature.signer())
    assert refusal(verifier(pkis, trust=no_crls), vihf).reason is VihfRefusal.REVOCATION_UNKNOWN


def test_signed_with_the_authentication_certificate(pkis: Pkis) -> None:
    """The real DMP: "Le certificat ayant signé le VIHF est invalide : Not a valid signature certificate"."""
    vihf = signed_vihf(pkis.alice.authentication.signer())
    err = refusal(verifier(pkis), vihf)
    assert err.reason is VihfRefusal.CERTIFICATE_USAGE
    assert err.reason.dmp_subcode == "DMPInvalidCertificate"


def test_certificate_must_have_been_valid_at_issue_instant(pkis: Pkis) -> None:
    """Issued (by its own clock) before the certificate began; checked at a time both are valid."""
    cert = pkis.alice.signature.certificate
    before = cert.not_valid_before_utc - timedelta(seconds=30)
    vihf = signed_vihf(pkis.alice.signature.signer(), issue_instant=before)
    err = refusal(verifier(pkis, at=cert.not_valid_before_utc + timedelta(seconds=1)), vihf)
    assert err.reason is VihfRefusal.CERTIFICATE_NOT_YET_VALID


# --- refused: identity -------------------------------------------------------------------------------------------


def test_issuer_is_not_the_signer(pkis: Pkis) -> None:
    def edit(a: etree._Element) -> None:
        a.find(s("Issuer")).text = dn_string(pkis.bob.signature.certificate.subject)  # type: ignore[union-attr]
    err = refusal(verifier(pkis), signed_vihf(pkis.alice.signature.signer(), edit=edit))
    assert err.reason is VihfRefusal.ISSUER_MISMATCH


@pytest.mark.parametrize("issuer", [
    "C=FR,title=Médecin,CN=899700012349+SN=TESTEUR+GN=ALICE",         # forward order (.NET style)
    "GN=ALICE+CN=899700012349+SN=TESTEUR, T=médecin, C=fr",           # other RDN order, spaces, case, T
    "CN=899700012349+SN=TESTEUR+G=ALICE,title=M\\C3\\A9decin,C=FR",   # G, hex-escaped UTF-8
])
def test_issuer_dn_is_compared_after_normalisation(pkis: Pkis, issuer: str) -> None:
    def edit(a: etree._Element) -> None:
        a.find(s("Issuer")).text = issuer  # type: ignore[union-attr]
    assert verifier(pkis).verify(reparse(signed_vihf(pkis.alice.signature.signer(), edit=edit)))


def test_issuer_format_must_be_x509_subject_name(pkis: Pkis) -> None:
    def edit(a: etree._Element) -> None:
        a.find(s("Issuer")).set("Format", "urn:oasis:names:tc:SAML:2.0:nameid-format:entity")  # type: ignore[union-attr]
    err = refusal(verifier(pkis), signed_vihf(pkis.alice.signature.signer(), edit=edit))
    assert err.reason is VihfRefusal.ISSUER_MISMATCH


def test_nameid_is_not_the_card_holder(pkis: Pkis) -> None:
    vihf = signed_vihf(pkis.alice.signature.signer(), alice_claims(name_id="810001234567"))
    err = refusal(verifier(pkis), vihf)
    assert err.reason is VihfRefusal.NAMEID_MISMATCH
    assert err.reason.dmp_subcode == "DMPIdentityMismatch"


def test_profession_is_not_the_cards(pkis: Pkis) -> None:
    """BOB's card says infirmier (60): he may not claim to be a médecin."""
    claims = alice_claims(name_id=BOB_ID, subject_name="BOB INFIRMIER")
    err = refusal(verifier(pkis), signed_vihf(pkis.bob.signature.signer(), claims))
    assert err.reason is VihfRefusal.PROFESSION_MISMATCH


def test_indirect_mode_for_another_structure(pkis: Pkis) -> None:
    claims = hospital_claims(structure_id="1330781196")
    err = refusal(verifier(pkis), signed_vihf(pkis.hospital.seal.signer(), claims))
    assert err.reason is VihfRefusal.STRUCTURE_MISMATCH


def test_indirect_mode_signed_by_a_person_card(pkis: Pkis) -> None:
    claims = alice_claims(auth_mode=AuthMode.INDIRECT)
    err = refusal(verifier(pkis), signed_vihf(pkis.alice.signature.signer(), claims))
    assert err.reason is VihfRefusal.STRUCTURE_MISMATCH


def test_tls_peer_of_another_holder(pkis: Pkis) -> None:
    vihf = signed_vihf(pkis.alice.signature.signer())
    err = refusal(verifier(pkis), vihf, tls_peer=pkis.bob.authentication.certificate)
    assert err.reason is VihfRefusal.TLS_PEER_MISMATCH
    vihf = signed_vihf(pkis.hospital.seal.signer(), hospital_claims())
    err = refusal(verifier(pkis), vihf, tls_peer=pkis.alice.authentication.certificate)
    assert err.reason is VihfRefusal.TLS_PEER_MISMATCH


def test_tls_peer_must_be_an_authentication_certificate(pkis: Pkis) -> None:
    vihf = signed_vihf(pkis.alice.signature.signer())
    err = refusal(verifier(pkis), vihf, tls_peer=pkis.alice.signature.certificate)
    assert err.reason is VihfRefusal.TLS_PEER_INVALID
    vihf = signed_vihf(pkis.alice.signature.signer())
    err = refusal(verifier(pkis), vihf, tls_peer=pkis.foreign_alice.authentication.certificate)
    assert err.reason is VihfRefusal.TLS_PEER_INVALID


# --- refused: validity window and replay -------------------------------------------------------------------------


def test_assertion_from_the_future(pkis: Pkis) -> None:
    vihf = signed_vihf(pkis.alice.signature.signer(), issue_instant=NOW + timedelta(seconds=61))
    assert refusal(verifier(pkis), vihf).reason is VihfRefusal.ASSERTION_NOT_YET_VALID


def test_not_before_in_the_future(pkis: Pkis) -> None:
    def edit(a: etree._Element) -> None:
        a.find(s("Conditions")).set("NotBefore", "2026-03-02T09:20:00.000Z")  # type: ignore[union-attr]
    err = refusal(verifier(pkis), signed_vihf(pkis.alice.signature.signer(), edit=edit))
    assert err.reason is VihfRefusal.ASSERTION_NOT_YET_VALID


def test_expired_by_not_on_or_after(pkis: Pkis) -> None:
    vihf = signed_vihf(pkis.alice.signature.signer(), lifetime=timedelta(seconds=10))
    err = refusal(verifier(pkis, at=NOW + timedelta(seconds=71)), vihf)
    assert err.reason is VihfRefusal.ASSERTION_EXPIRED
    assert err.reason.dmp_subcode == "DMPVIHFExpired"


def test_expired_by_maximum_age(pkis: Pkis) -> None:
    vihf = signed_vihf(pkis.alice.signature.signer(), lifetime=timedelta(hours=8))
    err = refusal(verifier(pkis, at=NOW + timedelta(seconds=361)), vihf)
    assert err.reason is VihfRefusal.ASSERTION_EXPIRED


def test_replay_is_refused_within_the_window(pkis: Pkis) -> None:
    v = verifier(pkis)
    vihf = signed_vihf(pkis.alice.signature.signer())
    v.verify(reparse(vihf))
    err = refusal(v, vihf)
    assert err.reason is VihfRefusal.REPLAY
    assert err.reason.dmp_subcode == "DMPVIHFReplay"


def test_replay_check_comes_after_every_other_check(pkis: Pkis) -> None:
    """A refused assertion does not use up its ID: only accepted ones are remembered."""
    v = verifier(pkis)
    vihf = signed_vihf(pkis.alice.signature.signer())
    assert refusal(v, vihf, tls_peer=pkis.bob.authentication.certificate).reason is VihfRefusal.TLS_PEER_MISMATCH
    assert v.verify(reparse(vihf)).professional_id == ALICE.idnat_ps


def test_malformed_issue_instant(pkis: Pkis) -> None:
    vihf = signed_vihf(pkis.alice.signature.signer(), edit=lambda a: a.set("IssueInstant", "2026-03-02 09:15:00"))
    assert refusal(verifier(pkis), vihf).reason is VihfRefusal.MALFORMED_ASSERTION


def test_issue_instant_must_be_utc(pkis: Pkis) -> None:
    vihf = signed_vihf(pkis.alice.signature.signer(),
                       edit=lambda a: a.set("IssueInstant", "2026-03-02T10:15:00.000+01:00"))
    assert refusal(verifier(pkis), vihf).reason is VihfRefusal.MALFORMED_ASSERTION


def test_saml_version(pkis: Pkis) -> None:
    vihf = signed_vihf(pkis.alice.signature.signer(), edit=lambda a: a.set("Version", "1.1"))
    assert refusal(verifier(pkis), vihf).reason is VihfRefusal.MALFORMED_ASSERTION


def test_audience_restriction_is_not_accepted(pkis: Pkis) -> None:
    def edit(a: etree._Element) -> None:
        etree.SubElement(etree.SubElement(a.find(s("Conditions")), s("AudienceRestriction")), s("Audience")).text = "x"  # type: ignore[arg-type]
    err = refusal(verifier(pkis), signed_vihf(pkis.alice.signature.signer(), edit=edit))
    assert err.reason is VihfRefusal.MALFORMED_ASSERTION



