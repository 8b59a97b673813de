"""build_vihf / sign_assertion: the assertion skeleton and signature layout of docs/vihf.md §2 and §6, and the
Signer protocol (any key holder that does RSASSA-PKCS1-v1_5 SHA-256 can sign)."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree
from vihf_support import NOW, Pkis, alice_claims, reparse, verifier

from pki import Signer, SoftwareSigner, build_vihf, sign_assertion, xs_datetime
from pki._signer import SignxmlKey

SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
DS = "http://www.w3.org/2000/09/xmldsig#"


def local(el: etree._Element) -> str:
    return etree.QName(el).localname


def test_skeleton_in_schema_order_with_the_signature_after_the_issuer(pkis: Pkis) -> None:
    signer = pkis.alice.signature.signer()
    unsigned = build_vihf(alice_claims(), signer_certificate=signer.certificate, issue_instant=NOW,
                          assertion_id="_0b7e4c1a-59d2-4e8b-9a51-3f2d6c7e8a90")
    signed = sign_assertion(unsigned, signer)
    assert [local(c) for c in unsigned] == ["Issuer", "Subject", "Conditions", "AuthnStatement", "AttributeStatement"]
    assert [local(c) for c in signed] == ["Issuer", "Signature", "Subject", "Conditions", "AuthnStatement",
                                          "AttributeStatement"]
    assert signed.get("ID") == "_0b7e4c1a-59d2-4e8b-9a51-3f2d6c7e8a90"
    assert signed.get("IssueInstant") == "2026-03-02T09:15:00.000Z"
    assert signed.get("Version") == "2.0"
    issuer = signed[0]
    assert issuer.get("Format") == "urn:oasis:names:tc:SAML:1.1:nameid-format:X509SubjectName"
    assert issuer.text == "CN=899700012349+SN=TESTEUR+GN=ALICE,title=Médecin,C=FR"
    conditions = signed.find(f"{{{SAML}}}Conditions")
    assert conditions is not None
    assert conditions.attrib == {"NotBefore": "2026-03-02T09:15:00.000Z", "NotOnOrAfter": "2026-03-02T09:20:00.000Z"}
    assert len(conditions) == 0   # AudienceRestriction must not be filled
    assert [a.get("Name") for a in signed.find(f"{{{SAML}}}AttributeStatement")] == [  # type: ignore[union-attr]
        "VIHF_Version", "Authentification_Mode", "Identifiant_Structure", "Secteur_Activite",
        "urn:oasis:names:tc:xspa:1.0:subject:subject-id", "urn:oasis:names:tc:xacml:2.0:subject:role",
        "urn:oasis:names:tc:xacml:2.0:resource:resource-id", "Ressource_URN",
        "urn:oasis:names:tc:xspa:1.0:subject:purposeofuse", "LPS_ID", "LPS_Nom", "LPS_Version",
        "LPS_ID_HOMOLOGATION_DMP"]
    assert unsigned.find(f"{{{DS}}}Signature") is None   # the caller's tree is left as it was


def test_signature_algorithms_and_key_info(pkis: Pkis) -> None:
    signer = pkis.alice.signature.signer()
    signed = sign_assertion(build_vihf(alice_claims(), signer_certificate=signer.certificate, issue_instant=NOW),
                            signer)
    sig = signed[1]
    alg = {local(e): e.get("Algorithm") for e in sig.iter() if e.get("Algorithm")}
    assert alg["CanonicalizationMethod"] == "http://www.w3.org/2001/10/xml-exc-c14n#"
    assert alg["SignatureMethod"] == "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
    assert alg["DigestMethod"] == "http://www.w3.org/2001/04/xmlenc#sha256"
    transforms = [t.get("Algorithm") for t in sig.iter(f"{{{DS}}}Transform")]
    assert transforms == ["http://www.w3.org/2000/09/xmldsig#enveloped-signature",
                          "http://www.w3.org/2001/10/xml-exc-c14n#"]
    reference = sig.find(f".//{{{DS}}}Reference")
    assert reference is not None
    assert reference.get("URI") == "#" + (signed.get("ID") or "")
    certs = list(sig.iter(f"{{{DS}}}X509Certificate"))
    assert len(certs) == 1
    der = base64.b64decode("".join((certs[0].text or "").split()))
    assert x509.load_der_x509_certificate(der) == signer.certificate
    assert sig.find(f".//{{{DS}}}KeyValue") is None


def test_xs_datetime_is_utc_with_milliseconds() -> None:
    from datetime import timezone
    paris = timezone(timedelta(hours=1))
    assert xs_datetime(NOW.astimezone(paris) + timedelta(microseconds=123456)) == "2026-03-02T09:15:00.123Z"


class CardLikeSigner:
    """Another key holder behind the protocol (as the PKCS#11 card will be): no key object is handed out."""

    def __init__(self, key: rsa.RSAPrivateKey, certificate: x509.Certificate) -> None:
        self._key, self._certificate, self.calls = key, certificate, 0

    @property
    def certificate(self) -> x509.Certificate:
        return self._certificate

    def sign(self, data: bytes) -> bytes:
        self.calls += 1
        return self._key.sign(data, padding.PKCS1v15(), hashes.SHA256())


def test_any_signer_implementation_signs_a_verifiable_vihf(pkis: Pkis) -> None:
    card = CardLikeSigner(pkis.alice.signature.private_key, pkis.alice.signature.certificate)
    assert isinstance(card, Signer)
    signed = sign_assertion(build_vihf(alice_claims(), signer_certificate=card.certificate, issue_instant=NOW), card)
    assert card.calls == 1
    assert verifier(pkis).verify(reparse(signed)).professional_id == "899700012349"


def test_software_signer_checks_its_key_and_hides_it(pkis: Pkis) -> None:
    with pytest.raises(ValueError, match="does not match"):
        SoftwareSigner(pkis.bob.signature.private_key, pkis.alice.signature.certificate)
    signer = SoftwareSigner.from_pem_files(pkis.alice.signature.certificate_path, pkis.alice.signature.key_path)
    assert "PRIVATE" not in repr(signer)
    assert "private_key" not in repr(pkis.alice.signature)
    signature = signer.sign(b"data")
    pkis.alice.signature.certificate.public_key().verify(  # type: ignore[call-arg, union-attr]
        signature, b"data", padding.PKCS1v15(), hashes.SHA256())


def test_signxml_adapter_refuses_anything_but_pkcs1v15_sha256(pkis: Pkis) -> None:
    key = SignxmlKey(pkis.alice.signature.signer())
    assert key.key_size == 2048
    assert key.public_key().public_numbers() == pkis.alice.signature.certificate.public_key().public_numbers()  # type: ignore[union-attr]
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    with pytest.raises(NotImplementedError):
        key.sign(b"x", pss, hashes.SHA256())
    with pytest.raises(NotImplementedError):
        key.sign(b"x", padding.PKCS1v15(), hashes.SHA1())


def test_sign_needs_an_issuer_and_an_id(pkis: Pkis) -> None:
    signer = pkis.alice.signature.signer()
    assertion = build_vihf(alice_claims(), signer_certificate=signer.certificate, issue_instant=NOW)
    del assertion.attrib["ID"]
    with pytest.raises(ValueError, match="ID"):
        sign_assertion(assertion, signer)


def test_der_of_certificate_is_what_we_issued(pkis: Pkis) -> None:
    assert pkis.alice.signature.certificate.public_bytes(Encoding.PEM) == \
        pkis.alice.signature.certificate_path.read_bytes()
