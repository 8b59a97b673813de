"""TestPki: an IGC-Santé-shaped hierarchy (docs/vihf.md §9) written as PEM files, loaded back, maintained (CRLs)."""

from __future__ import annotations

import stat
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from vihf_support import ALICE, HOSPITAL, NOW, Pkis

from pki import CertificateError, CertificateIdentity, CertificateRefusal, TestPki, Usage, dn_string


def ku(cert: x509.Certificate) -> x509.KeyUsage:
    return cert.extensions.get_extension_for_class(x509.KeyUsage).value


def eku(cert: x509.Certificate) -> list[x509.ObjectIdentifier]:
    return list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def test_hierarchy(pkis: Pkis) -> None:
    p = pkis.pki
    assert p.root.subject == p.root.issuer
    assert p.persons_ca.issuer == p.root.subject
    assert p.organisations_ca.issuer == p.root.subject
    cn = p.persons_ca.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert cn == "TEST AC IGC-SANTE ELEMENTAIRE PERSONNES (SIMULATION)"
    for ca in (p.root, p.persons_ca, p.organisations_ca):
        bc = ca.extensions.get_extension_for_class(x509.BasicConstraints)
        assert bc.critical
        assert bc.value.ca
        assert ku(ca).key_cert_sign
        assert "SIMULATION" in dn_string(ca.subject)


def test_cps_card_certificates(pkis: Pkis) -> None:
    sig, aut = pkis.alice.signature.certificate, pkis.alice.authentication.certificate
    assert dn_string(sig.subject) == "CN=899700012349+SN=TESTEUR+GN=ALICE,title=Médecin,C=FR"
    assert sig.subject == aut.subject == ALICE.subject()
    assert sig.issuer == pkis.pki.persons_ca.subject
    # Signature certificate: keyUsage critical nonRepudiation only; EKU emailProtection.
    assert sig.extensions.get_extension_for_class(x509.KeyUsage).critical
    assert ku(sig).content_commitment
    assert not ku(sig).digital_signature
    assert eku(sig) == [ExtendedKeyUsageOID.EMAIL_PROTECTION]
    # Authentication certificate: digitalSignature + keyEncipherment; clientAuth + smartcardLogon.
    assert ku(aut).digital_signature
    assert ku(aut).key_encipherment
    assert not ku(aut).content_commitment
    assert ExtendedKeyUsageOID.CLIENT_AUTH in eku(aut)
    assert x509.ObjectIdentifier("1.3.6.1.4.1.311.20.2.2") in eku(aut)
    # Private extensions: profession (INTEGER 10), specialty (SEQUENCE OF UTF8String "SM26"); test policy.
    identity = CertificateIdentity.of(sig)
    assert identity.common_name == "899700012349"
    assert (identity.family_name, identity.given_name, identity.title) == ("TESTEUR", "ALICE", "Médecin")
    assert identity.profession == "10"
    assert identity.specialties == ("SM26",)
    policies = sig.extensions.get_extension_for_class(x509.CertificatePolicies).value
    assert [p.policy_identifier.dotted_string for p in policies] == ["1.2.250.1.213.1.7.2.1.1.1.1"]
    assert sig.not_valid_after_utc - sig.not_valid_before_utc == timedelta(days=3 * 365)


def test_structure_certificates(pkis: Pkis) -> None:
    seal = pkis.hospital.seal.certificate
    assert dn_string(seal.subject) == "CN=SERVICE URGENCES,OU=1750712184,O=HOPITAL TEST,ST=Paris (75),C=FR"
    assert seal.issuer == pkis.pki.organisations_ca.subject
    assert ku(seal).content_commitment
    assert CertificateIdentity.of(seal).organisational_units == (HOSPITAL.struct_idnat,)
    aut = pkis.hospital.authentication.certificate
    assert eku(aut) == [ExtendedKeyUsageOID.CLIENT_AUTH]


def test_server_certificate(tmp_path: Path) -> None:
    pki = TestPki.create(tmp_path / "p", now=NOW, key_size=2048)
    cred = pki.issue_server(("localhost", "127.0.0.1"), now=NOW)
    san = cred.certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(a) for a in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert eku(cred.certificate) == [ExtendedKeyUsageOID.SERVER_AUTH]
    chain = x509.load_pem_x509_certificates((tmp_path / "p" / "server-localhost.chain.pem").read_bytes())
    assert chain == [cred.certificate, pki.organisations_ca]
    assert pki.trust_store().validate(cred.certificate, Usage.SERVER, NOW)
    with pytest.raises(ValueError, match="at least one host"):
        pki.issue_server((), now=NOW)


def test_files_keys_private_and_reload(tmp_path: Path) -> None:
    d = tmp_path / "p"
    pki = TestPki.create(d, now=NOW)
    card = pki.issue_ps(ALICE, now=NOW)
    names = {p.name for p in d.iterdir()}
    assert {"root.pem", "root.key.pem", "root.crl.pem", "ca-personnes.pem", "ca-organisations.crl.pem",
            "trust-anchors.pem", "intermediates.pem", "ca-bundle.pem", "README.txt", "index.json",
            "ps-899700012349-signature.pem", "ps-899700012349-signature.key.pem",
            "ps-899700012349-authentication.pem"} <= names
    assert "tests and demos only" in (d / "README.txt").read_text()
    for key in d.glob("*.key.pem"):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    again = TestPki.load(d)
    assert again.root == pki.root
    assert again.trust_store().validate(card.signature.certificate, Usage.SIGNATURE, NOW)
    with pytest.raises(FileExistsError):
        TestPki.create(d, now=NOW)


def test_reissuing_the_same_identity_keeps_both_files(tmp_path: Path) -> None:
    pki = TestPki.create(tmp_path / "p", now=NOW)
    first, second = pki.issue_ps(ALICE, now=NOW), pki.issue_ps(ALICE, now=NOW)
    assert first.signature.certificate_path.name == "ps-899700012349-signature.pem"
    assert second.signature.certificate_path.name == "ps-899700012349-signature-2.pem"
    assert x509.load_pem_x509_certificate(first.signature.certificate_path.read_bytes()) == \
        first.signature.certificate


def test_revocation_survives_reload_and_crl_refresh(tmp_path: Path) -> None:
    d = tmp_path / "p"
    pki = TestPki.create(d, now=NOW)
    card = pki.issue_ps(ALICE, now=NOW)
    pki.revoke(card.authentication.certificate, now=NOW)
    reloaded = TestPki.load(d)
    later = NOW + timedelta(days=40)
    reloaded.refresh_crls(now=later)
    crl = x509.load_pem_x509_crl((d / "ca-personnes.crl.pem").read_bytes())
    assert crl.get_revoked_certificate_by_serial_number(card.authentication.certificate.serial_number) is not None
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 3
    with pytest.raises(CertificateError) as info:
        reloaded.trust_store().validate(card.authentication.certificate, Usage.AUTHENTICATION, later)
    assert info.value.reason is CertificateRefusal.REVOKED
    assert reloaded.trust_store().validate(card.signature.certificate, Usage.SIGNATURE, later)


def test_revoke_refuses_a_foreign_certificate(pkis: Pkis) -> None:
    with pytest.raises(ValueError, match="not issued by this test PKI"):
        pkis.pki.revoke(pkis.foreign_alice.signature.certificate)   # same issuer name, another key
