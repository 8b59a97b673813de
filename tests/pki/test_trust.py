"""TrustStore: path to a configured anchor, validity dates, CA constraints, critical extensions, CRL revocation
(fail-closed), key usage per use. Real certificates from the session's test PKI, and a few made here with
`cryptography` for the cases the test PKI never issues."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID, ObjectIdentifier
from vihf_support import ALICE, NOW, Pkis

from pki import CertificateError, CertificateRefusal, TestPki, TrustStore, Usage


def refused(store: TrustStore, cert: x509.Certificate, usage: Usage = Usage.SIGNATURE, at=NOW,
            **kwargs: object) -> CertificateRefusal:
    with pytest.raises(CertificateError) as info:
        store.validate(cert, usage, at, **kwargs)  # type: ignore[arg-type]
    return info.value.reason


def ca_key(pki: TestPki, name: str) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key((pki.directory / f"{name}.key.pem").read_bytes(), None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


def issue(issuer: x509.Certificate, issuer_key: rsa.RSAPrivateKey, *, ca: bool = False, path_length: int | None = None,
          extra: list[tuple[x509.ExtensionType, bool]] | None = None, cn: str = "X"
          ) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
               .issuer_name(issuer.subject).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(NOW - timedelta(days=1)).not_valid_after(NOW + timedelta(days=30))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=not ca, content_commitment=not ca,
                                            key_encipherment=False, data_encipherment=False, key_agreement=False,
                                            key_cert_sign=ca, crl_sign=ca, encipher_only=False, decipher_only=False),
                              critical=True))
    for ext, critical in extra or []:
        builder = builder.add_extension(ext, critical=critical)
    return builder.sign(issuer_key, hashes.SHA256()), key


def test_valid_signature_certificate_gives_its_path(pkis: Pkis) -> None:
    path = pkis.trust.validate(pkis.alice.signature.certificate, Usage.SIGNATURE, NOW)
    assert path == (pkis.alice.signature.certificate, pkis.pki.persons_ca, pkis.pki.root)


def test_each_credential_for_its_own_use(pkis: Pkis) -> None:
    t = pkis.trust
    assert t.validate(pkis.alice.authentication.certificate, Usage.AUTHENTICATION, NOW)
    assert t.validate(pkis.hospital.seal.certificate, Usage.SIGNATURE, NOW)
    assert t.validate(pkis.hospital.authentication.certificate, Usage.AUTHENTICATION, NOW)
    server = pkis.pki.issue_server(("dmp.test.local",), now=NOW - timedelta(days=1)).certificate
    assert t.validate(server, Usage.SERVER, NOW)[-1] == pkis.pki.root


@pytest.mark.parametrize(("which", "usage"), [
    ("alice.authentication", Usage.SIGNATURE),      # CPS authentication key signing a VIHF
    ("alice.signature", Usage.AUTHENTICATION),      # signature certificate used for TLS
    ("hospital.seal", Usage.AUTHENTICATION),
    ("alice.authentication", Usage.SERVER),
])
def test_wrong_usage(pkis: Pkis, which: str, usage: Usage) -> None:
    holder, role = which.split(".")
    cert = getattr(getattr(pkis, holder), role).certificate
    assert refused(pkis.trust, cert, usage) is CertificateRefusal.WRONG_USAGE


def test_ca_certificate_is_not_an_end_entity(pkis: Pkis) -> None:
    assert refused(pkis.trust, pkis.pki.persons_ca) is CertificateRefusal.WRONG_USAGE


def test_other_hierarchy_with_the_same_names_is_untrusted(pkis: Pkis) -> None:
    cert = pkis.foreign_alice.signature.certificate
    assert cert.issuer == pkis.alice.signature.certificate.issuer   # same name, other key
    assert refused(pkis.trust, cert) is CertificateRefusal.UNTRUSTED


def test_missing_intermediate_is_untrusted_unless_supplied(pkis: Pkis) -> None:
    store = TrustStore([pkis.pki.root], [], require_crl=False)
    cert = pkis.alice.signature.certificate
    assert refused(store, cert) is CertificateRefusal.UNTRUSTED
    assert store.validate(cert, Usage.SIGNATURE, NOW, untrusted_intermediates=[pkis.pki.persons_ca])


def test_expired_and_not_yet_valid(pkis: Pkis) -> None:
    assert refused(pkis.trust, pkis.expired.signature.certificate) is CertificateRefusal.EXPIRED
    assert refused(pkis.trust, pkis.not_yet_valid.signature.certificate) is CertificateRefusal.NOT_YET_VALID
    cert = pkis.alice.signature.certificate
    assert refused(pkis.trust, cert, at=cert.not_valid_after_utc + timedelta(seconds=1)) \
        is CertificateRefusal.EXPIRED


def test_revoked(pkis: Pkis) -> None:
    assert refused(pkis.trust, pkis.revoked.signature.certificate) is CertificateRefusal.REVOKED
    # Only the revoked certificate: the same card's authentication certificate is still good.
    assert pkis.trust.validate(pkis.revoked.authentication.certificate, Usage.AUTHENTICATION, NOW)


def test_revocation_unknown_without_crl_or_with_a_stale_one(pkis: Pkis) -> None:
    no_crl = TrustStore([pkis.pki.root], [pkis.pki.persons_ca])
    assert refused(no_crl, pkis.alice.signature.certificate) is CertificateRefusal.REVOCATION_UNKNOWN
    after_next_update = NOW + timedelta(days=31)
    assert refused(pkis.trust, pkis.alice.signature.certificate, at=after_next_update) \
        is CertificateRefusal.REVOCATION_UNKNOWN


def test_crl_check_can_be_switched_off(pkis: Pkis) -> None:
    lax = TrustStore([pkis.pki.root], [pkis.pki.persons_ca], require_crl=False)
    assert lax.validate(pkis.alice.signature.certificate, Usage.SIGNATURE, NOW)


def test_intermediate_revoked_by_the_root(pkis: Pkis, tmp_path: Path) -> None:
    pki = TestPki.create(tmp_path / "p", now=NOW - timedelta(days=1))
    card = pki.issue_ps(ALICE, now=NOW - timedelta(days=1))
    pki.revoke(pki.persons_ca, now=NOW - timedelta(hours=1))
    assert refused(pki.trust_store(), card.signature.certificate) is CertificateRefusal.REVOKED


def test_crl_from_an_unknown_ca_is_refused_at_configuration(pkis: Pkis) -> None:
    with pytest.raises(ValueError, match="not signed by a configured CA"):
        TrustStore([pkis.pki.root], [pkis.pki.persons_ca], pkis.foreign.crls())


def test_anchor_must_be_a_ca(pkis: Pkis) -> None:
    with pytest.raises(ValueError, match="not a CA"):
        TrustStore([pkis.alice.signature.certificate])
    with pytest.raises(ValueError, match="at least one"):
        TrustStore([])


def test_naive_validation_time_is_refused(pkis: Pkis) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        pkis.trust.validate(pkis.alice.signature.certificate, Usage.SIGNATURE, NOW.replace(tzinfo=None))


def test_path_length_constraint(pkis: Pkis) -> None:
    """The persons CA has pathLenConstraint 0: a sub-CA below it may not issue."""
    sub_ca, sub_key = issue(pkis.pki.persons_ca, ca_key(pkis.pki, "ca-personnes"), ca=True, cn="SUB CA")
    leaf, _ = issue(sub_ca, sub_key)
    store = TrustStore([pkis.pki.root], [pkis.pki.persons_ca, sub_ca], require_crl=False)
    assert refused(store, leaf) is CertificateRefusal.UNTRUSTED


def test_end_entity_cannot_issue(pkis: Pkis) -> None:
    leaf, leaf_key = issue(pkis.pki.persons_ca, ca_key(pkis.pki, "ca-personnes"), cn="LEAF")
    below, _ = issue(leaf, leaf_key, cn="BELOW")
    store = TrustStore([pkis.pki.root], [pkis.pki.persons_ca, leaf], require_crl=False)
    assert refused(store, below) is CertificateRefusal.UNTRUSTED


def test_unknown_critical_extension(pkis: Pkis) -> None:
    weird = x509.UnrecognizedExtension(ObjectIdentifier("1.2.250.1.999.77"), b"\x05\x00")
    leaf, _ = issue(pkis.pki.persons_ca, ca_key(pkis.pki, "ca-personnes"), extra=[(weird, True)])
    store = TrustStore([pkis.pki.root], [pkis.pki.persons_ca], require_crl=False)
    assert refused(store, leaf) is CertificateRefusal.UNTRUSTED
    harmless, _ = issue(pkis.pki.persons_ca, ca_key(pkis.pki, "ca-personnes"), extra=[(weird, False)])
    assert store.validate(harmless, Usage.SIGNATURE, NOW)


def test_private_key_usage_period(pkis: Pkis) -> None:
    period = x509.PrivateKeyUsagePeriod(not_before=None, not_after=(NOW - timedelta(hours=1)).replace(tzinfo=None))
    leaf, _ = issue(pkis.pki.persons_ca, ca_key(pkis.pki, "ca-personnes"), extra=[(period, False)])
    store = TrustStore([pkis.pki.root], [pkis.pki.persons_ca], require_crl=False)
    assert refused(store, leaf) is CertificateRefusal.EXPIRED


def test_from_pem_files(pkis: Pkis) -> None:
    d = pkis.pki.directory
    store = TrustStore.from_pem_files([d / "trust-anchors.pem"], [d / "intermediates.pem"],
                                      [d / "root.crl.pem", d / "ca-personnes.crl.pem", d / "ca-organisations.crl.pem"])
    assert store.anchors == (pkis.pki.root,)
    assert store.validate(pkis.hospital.seal.certificate, Usage.SIGNATURE, NOW)
    assert refused(store, pkis.revoked.signature.certificate) is CertificateRefusal.REVOKED



# --- what a store remembers -------------------------------------------------------------------------------------
# A store remembers a successful validation for as long as no date that a check compares with falls between the
# validation instant and now; these tests validate first (so the answer is remembered), then ask again later.


def crl(pki: TestPki, *, this_update: datetime, next_update: datetime,
        revoked: tuple[x509.Certificate, ...] = ()) -> x509.CertificateRevocationList:
    """A CRL of the persons CA with the given dates."""
    builder = (x509.CertificateRevocationListBuilder().issuer_name(pki.persons_ca.subject)
               .last_update(this_update).next_update(next_update))
    for cert in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(cert.serial_number).revocation_date(this_update).build())
    return builder.sign(ca_key(pki, "ca-personnes"), hashes.SHA256())


def persons_store(pki: TestPki, *crls: x509.CertificateRevocationList) -> TrustStore:
    root_crl = next(c for c in pki.crls() if c.issuer == pki.root.subject)
    return TrustStore([pki.root], [pki.persons_ca], [root_crl, *crls])


def test_a_validation_is_remembered_by_certificate_content(pkis: Pkis) -> None:
    store = persons_store(pkis.pki, crl(pkis.pki, this_update=NOW - timedelta(days=1),
                                        next_update=NOW + timedelta(days=7)))
    cert = pkis.alice.signature.certificate
    first = store.validate(cert, Usage.SIGNATURE, NOW)
    assert store.validate(cert, Usage.SIGNATURE, NOW + timedelta(hours=1)) is first
    # The same certificate decoded again (as from the next request's KeyInfo) is the same certificate.
    again = x509.load_der_x509_certificate(cert.public_bytes(serialization.Encoding.DER))
    assert store.validate(again, Usage.SIGNATURE, NOW + timedelta(hours=2)) is first
    # Remembered per use: the signature certificate is still no TLS certificate.
    assert refused(store, cert, Usage.AUTHENTICATION) is CertificateRefusal.WRONG_USAGE


def test_a_remembered_validation_ends_at_the_certificates_not_after(pkis: Pkis) -> None:
    leaf, _ = issue(pkis.pki.persons_ca, ca_key(pkis.pki, "ca-personnes"))   # valid until NOW + 30 days
    store = TrustStore([pkis.pki.root], [pkis.pki.persons_ca], require_crl=False)   # no CRL date in the way
    assert store.validate(leaf, Usage.SIGNATURE, NOW)
    assert store.validate(leaf, Usage.SIGNATURE, leaf.not_valid_after_utc)   # the last valid instant
    assert refused(store, leaf, at=leaf.not_valid_after_utc + timedelta(microseconds=1)) \
        is CertificateRefusal.EXPIRED
    assert refused(store, leaf, at=leaf.not_valid_before_utc - timedelta(microseconds=1)) \
        is CertificateRefusal.NOT_YET_VALID   # nor before it began (a clock set back)


def test_a_remembered_validation_ends_at_the_crls_next_update(pkis: Pkis) -> None:
    next_update = NOW + timedelta(days=2)
    store = persons_store(pkis.pki, crl(pkis.pki, this_update=NOW - timedelta(days=1), next_update=next_update))
    cert = pkis.alice.signature.certificate
    assert store.validate(cert, Usage.SIGNATURE, NOW)
    assert store.validate(cert, Usage.SIGNATURE, next_update)
    assert refused(store, cert, at=next_update + timedelta(microseconds=1)) is CertificateRefusal.REVOCATION_UNKNOWN


def test_a_remembered_validation_ends_when_a_newer_crl_becomes_current(pkis: Pkis) -> None:
    """The store holds the CA's next CRL already (published ahead, thisUpdate tomorrow), which revokes the card."""
    cert = pkis.alice.signature.certificate
    tomorrow = NOW + timedelta(days=1)
    store = persons_store(pkis.pki,
                          crl(pkis.pki, this_update=NOW - timedelta(days=1), next_update=NOW + timedelta(days=7)),
                          crl(pkis.pki, this_update=tomorrow, next_update=NOW + timedelta(days=8), revoked=(cert,)))
    assert store.validate(cert, Usage.SIGNATURE, NOW)
    assert store.validate(cert, Usage.SIGNATURE, tomorrow - timedelta(microseconds=1))
    assert refused(store, cert, at=tomorrow) is CertificateRefusal.REVOKED


def test_a_reloaded_store_does_not_inherit_what_the_previous_one_remembered(tmp_path: Path) -> None:
    pki = TestPki.create(tmp_path / "p", now=NOW - timedelta(days=1))
    card = pki.issue_ps(ALICE, now=NOW - timedelta(days=1))
    before = pki.trust_store()
    assert before.validate(card.signature.certificate, Usage.SIGNATURE, NOW)
    pki.revoke(card.signature.certificate, now=NOW - timedelta(hours=1))
    after = pki.trust_store()   # what the server builds when the CRL files change
    assert refused(after, card.signature.certificate) is CertificateRefusal.REVOKED
    assert after.validate(pki.issue_ps(ALICE, now=NOW - timedelta(days=1)).signature.certificate,
                          Usage.SIGNATURE, NOW)
