"""Certificate contents as IGC-Santé issues them (docs/vihf.md §9): who a certificate names, what it may be used
for, and the private extensions that carry the profession and specialty.

Writing (the test PKI's profiles) and reading (what the verifier learns from a signer certificate) live
together so the two cannot drift apart.
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

from identifiers import (
    adeli_problem,
    finess_problem,
    idnat_ps_from_adeli,
    idnat_ps_from_rpps,
    rpps_problem,
    siret_problem,
)
from pki import _der

#: Private extensions (docs/vihf.md §9).
PROFESSION_EXTENSION: Final = ObjectIdentifier("1.2.250.1.71.1.2.7")   # INTEGER, TRE_G15 code
SPECIALTY_EXTENSION: Final = ObjectIdentifier("1.2.250.1.71.4.2.5")    # SEQUENCE OF UTF8String, TRE_R01 codes
#: Certificate policy of IGC-Santé TEST certificates.
TEST_POLICY: Final = ObjectIdentifier("1.2.250.1.213.1.7.2.1.1.1.1")
SMARTCARD_LOGON: Final = ObjectIdentifier("1.3.6.1.4.1.311.20.2.2")

#: TRE_G15 profession codes and the labels printed in the certificate's ``title`` (docs/vihf.md §3).
PROFESSIONS: Final = {
    "10": "Médecin",
    "21": "Pharmacien",
    "40": "Chirurgien-dentiste",
    "50": "Sage-femme",
    "60": "Infirmier",
    "70": "Masseur-kinésithérapeute",
    "80": "Pédicure-podologue",
    "91": "Orthophoniste",
    "92": "Orthoptiste",
    "94": "Ergothérapeute",
    "95": "Diététicien",
    "96": "Psychomotricien",
    "98": "Manipulateur ERM",
}


class Profile(enum.Enum):
    """End-entity certificate kinds (docs/vihf.md §4, §9)."""

    PS_SIGNATURE = "ps-signature"                # CPS_PRIV_SIG: keyUsage nonRepudiation (signs the VIHF)
    PS_AUTHENTICATION = "ps-authentication"      # CPS_PRIV_AUT: TLS client
    STRUCTURE_SEAL = "structure-seal"            # "cachet" of a structure: signs VIHFs in indirect mode
    STRUCTURE_AUTHENTICATION = "structure-authentication"
    SERVER = "server"                            # TLS server


_KEY_USAGE = {
    Profile.PS_SIGNATURE: {"content_commitment"},
    Profile.PS_AUTHENTICATION: {"digital_signature", "key_encipherment"},
    Profile.STRUCTURE_SEAL: {"digital_signature", "content_commitment"},
    Profile.STRUCTURE_AUTHENTICATION: {"digital_signature", "key_encipherment"},
    Profile.SERVER: {"digital_signature", "key_encipherment"},
}
_EXTENDED_KEY_USAGE: dict[Profile, list[ObjectIdentifier]] = {
    Profile.PS_SIGNATURE: [ExtendedKeyUsageOID.EMAIL_PROTECTION],
    Profile.PS_AUTHENTICATION: [ExtendedKeyUsageOID.CLIENT_AUTH, SMARTCARD_LOGON],
    Profile.STRUCTURE_SEAL: [],
    Profile.STRUCTURE_AUTHENTICATION: [ExtendedKeyUsageOID.CLIENT_AUTH],
    Profile.SERVER: [ExtendedKeyUsageOID.SERVER_AUTH],
}


@dataclass(frozen=True)
class PsIdentity:
    """A health professional as a CPS card names them."""

    idnat_ps: str                 # national PS id: "8" + RPPS or "0" + ADELI (docs/identifiers.md)
    family_name: str
    given_name: str
    profession: str = "10"        # TRE_G15 code
    specialty: str | None = None  # TRE_R01 code, e.g. "SM26"

    @classmethod
    def from_rpps(cls, rpps: str, family_name: str, given_name: str, profession: str = "10",
                  specialty: str | None = None) -> PsIdentity:
        if problem := rpps_problem(rpps):
            raise ValueError(problem)
        return cls(idnat_ps_from_rpps(rpps), family_name, given_name, profession, specialty)

    @classmethod
    def from_adeli(cls, adeli: str, family_name: str, given_name: str, profession: str = "60",
                   specialty: str | None = None) -> PsIdentity:
        if problem := adeli_problem(adeli):
            raise ValueError(problem)
        return cls(idnat_ps_from_adeli(adeli), family_name, given_name, profession, specialty)

    @property
    def profession_label(self) -> str:
        return PROFESSIONS.get(self.profession, f"Profession {self.profession}")

    def subject(self) -> x509.Name:
        """``C=FR, title=<profession>, CN=<IdNat_PS>+SN=<nom>+GN=<prénom>`` (DER order)."""
        return x509.Name([
            x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.COUNTRY_NAME, "FR")]),
            x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.TITLE, self.profession_label)]),
            x509.RelativeDistinguishedName([
                x509.NameAttribute(NameOID.COMMON_NAME, self.idnat_ps),
                x509.NameAttribute(NameOID.SURNAME, self.family_name),
                x509.NameAttribute(NameOID.GIVEN_NAME, self.given_name),
            ]),
        ])


@dataclass(frozen=True)
class StructureIdentity:
    """A health structure as its organisation certificates name it."""

    struct_idnat: str          # "1" + FINESS or "3" + SIRET (docs/identifiers.md)
    name: str                  # raison sociale (O)
    service: str = "SERVICE DMP"   # CN
    department: str = "Paris (75)"  # ST

    @classmethod
    def from_finess(cls, finess: str, name: str, service: str = "SERVICE DMP",
                    department: str = "Paris (75)") -> StructureIdentity:
        if problem := finess_problem(finess):
            raise ValueError(problem)
        return cls("1" + finess, name, service, department)

    @classmethod
    def from_siret(cls, siret: str, name: str, service: str = "SERVICE DMP",
                   department: str = "Paris (75)") -> StructureIdentity:
        if problem := siret_problem(siret):
            raise ValueError(problem)
        return cls("3" + siret, name, service, department)

    def subject(self) -> x509.Name:
        """``C=FR, ST=<département>, O=<raison sociale>, OU=<Struct_IdNat>, CN=<service>``."""
        return x509.Name([
            x509.NameAttribute(NameOID.COUNTRY_NAME, "FR"),
            x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, self.department),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, self.name),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, self.struct_idnat),
            x509.NameAttribute(NameOID.COMMON_NAME, self.service),
        ])


@dataclass(frozen=True)
class CertificateIdentity:
    """What a certificate says about its holder (read, never trusted before the chain is validated)."""

    common_name: str | None
    family_name: str | None
    given_name: str | None
    title: str | None
    organisation: str | None
    organisational_units: tuple[str, ...]
    profession: str | None          # private extension, TRE_G15 code
    specialties: tuple[str, ...]    # private extension, TRE_R01 codes

    @classmethod
    def of(cls, cert: x509.Certificate) -> CertificateIdentity:
        def first(oid: ObjectIdentifier) -> str | None:
            values = _strings(cert.subject, oid)
            return values[0] if values else None

        profession: str | None = None
        specialties: tuple[str, ...] = ()
        for ext in cert.extensions:
            if not isinstance(ext.value, x509.UnrecognizedExtension):
                continue
            try:
                if ext.oid == PROFESSION_EXTENSION:
                    profession = str(_der.decode_integer(ext.value.value))
                elif ext.oid == SPECIALTY_EXTENSION:
                    specialties = _der.decode_string_sequence(ext.value.value)
            except ValueError:
                continue   # an unreadable private extension says nothing
        return cls(
            common_name=first(NameOID.COMMON_NAME),
            family_name=first(NameOID.SURNAME),
            given_name=first(NameOID.GIVEN_NAME),
            title=first(NameOID.TITLE),
            organisation=first(NameOID.ORGANIZATION_NAME),
            organisational_units=_strings(cert.subject, NameOID.ORGANIZATIONAL_UNIT_NAME),
            profession=profession,
            specialties=specialties,
        )


def _strings(name: x509.Name, oid: ObjectIdentifier) -> tuple[str, ...]:
    return tuple(a.value for a in name.get_attributes_for_oid(oid) if isinstance(a.value, str))


def ca_certificate(
    subject: x509.Name,
    public_key: rsa.RSAPublicKey,
    issuer: tuple[x509.Certificate, rsa.RSAPrivateKey] | None,
    signing_key: rsa.RSAPrivateKey,
    not_before: datetime,
    not_after: datetime,
    path_length: int | None,
) -> x509.Certificate:
    """A root (``issuer`` None, self-signed with ``signing_key``) or intermediate CA certificate."""
    issuer_name = issuer[0].subject if issuer else subject
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(_key_usage({"key_cert_sign", "crl_sign"}), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(x509.CertificatePolicies([x509.PolicyInformation(TEST_POLICY, None)]), critical=False)
    )
    aki_key = issuer[0].public_key() if issuer else public_key
    assert isinstance(aki_key, rsa.RSAPublicKey)
    builder = builder.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(aki_key), critical=False)
    return builder.sign(signing_key, hashes.SHA256())


def end_entity_certificate(
    profile: Profile,
    subject: x509.Name,
    public_key: rsa.RSAPublicKey,
    issuer: tuple[x509.Certificate, rsa.RSAPrivateKey],
    not_before: datetime,
    not_after: datetime,
    *,
    ps: PsIdentity | None = None,
    hosts: Sequence[str] = (),
) -> x509.Certificate:
    """An end-entity certificate of ``profile``; ``ps`` adds the profession/specialty extensions, ``hosts``
    the subjectAltName of a server certificate (DNS names or IP addresses)."""
    issuer_cert, issuer_key = issuer
    issuer_public = issuer_cert.public_key()
    assert isinstance(issuer_public, rsa.RSAPublicKey)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(_KEY_USAGE[profile]), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_public), critical=False)
        .add_extension(x509.CertificatePolicies([x509.PolicyInformation(TEST_POLICY, None)]), critical=False)
    )
    if _EXTENDED_KEY_USAGE[profile]:
        builder = builder.add_extension(x509.ExtendedKeyUsage(_EXTENDED_KEY_USAGE[profile]), critical=False)
    if ps is not None and ps.profession.isascii() and ps.profession.isdigit():
        builder = builder.add_extension(
            x509.UnrecognizedExtension(PROFESSION_EXTENSION, _der.encode_integer(int(ps.profession))),
            critical=False)
    if ps is not None and ps.specialty:
        builder = builder.add_extension(
            x509.UnrecognizedExtension(SPECIALTY_EXTENSION, _der.encode_utf8_sequence([ps.specialty])),
            critical=False)
    if hosts:
        builder = builder.add_extension(x509.SubjectAlternativeName([_general_name(h) for h in hosts]),
                                        critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _key_usage(bits: set[str]) -> x509.KeyUsage:
    names = ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
             "key_agreement", "key_cert_sign", "crl_sign")
    return x509.KeyUsage(**{n: n in bits for n in names}, encipher_only=False, decipher_only=False)
