"""Who holds the card, read from its public objects and certificates, and where they practise, read from the
private ``CPS_ACTIVITY_xx_PS`` objects (docs/cps-card.md §2, §4). Pure functions over bytes and certificates."""

from __future__ import annotations

import re
from dataclasses import dataclass

from cryptography import x509

from cardreader._errors import CardError, CardProblem
from pki import CertificateIdentity, CodedValue

_ACTIVITY_CONTAINER = 0xEE
_TAG_NAME, _TAG_STRUCTURE, _TAG_SECTOR = 0x84, 0x85, 0x86
ACTIVITY_LABEL = re.compile(r"^CPS_ACTIVITY_(\d{2})_PS$")


@dataclass(frozen=True)
class CardHolder:
    """The professional named by the card (readable without the PIN)."""

    idnat_ps: str            # CN of the certificates (docs/identifiers.md)
    family_name: str
    given_name: str
    profession: str          # TRE_G15 code, e.g. "10"
    profession_label: str    # the certificate's title, e.g. "Médecin"
    specialty: str | None    # TRE_R01 code, e.g. "SM26"
    test_card: bool          # certificate policy of IGC-Santé TEST (docs/cps-card.md §4)

    @property
    def display_name(self) -> str:
        return f"{self.given_name} {self.family_name}".strip()

    def profession_code(self) -> CodedValue:
        return CodedValue.profession(self.profession)

    def specialty_code(self) -> CodedValue | None:
        return CodedValue.specialty(self.specialty) if self.specialty else None


@dataclass(frozen=True)
class PracticeSituation:
    """One ``CPS_ACTIVITY_xx_PS``: the structure (Struct_IdNat, raison sociale) and its TRE_R02 sector."""

    number: int              # xx of the label, 1..16
    structure_id: str
    structure_name: str
    sector: str              # e.g. "SA07"


_TEST_POLICY = x509.ObjectIdentifier("1.2.250.1.213.1.7.2.1.1.1.1")


def card_holder(signature_certificate: x509.Certificate, info_ps: bytes | None,
                name_ps: bytes | None) -> CardHolder:
    """The holder: IdNat_PS, names, profession from the signature certificate (IGC-Santé subject form and
    private extensions); the specialty is the last 4 characters of ``CPS_INFO_PS`` as the ANS sample code reads
    it, else the certificate's specialty extension; ``CPS_NAME_PS`` fills a name the certificate lacks (CPE)."""
    ident = CertificateIdentity.of(signature_certificate)
    if not ident.common_name:
        raise CardError(CardProblem.CARD_CONTENT, "the signature certificate has no CN (IdNat_PS)")
    specialty = _specialty_of_info(info_ps) or (ident.specialties[0] if ident.specialties else None)
    family, given = ident.family_name, ident.given_name
    if not family and name_ps:
        family = name_ps.decode("utf-8", "replace").strip()
    return CardHolder(
        idnat_ps=ident.common_name,
        family_name=family or ident.organisation or "",
        given_name=given or "",
        profession=ident.profession or "",
        profession_label=ident.title or "",
        specialty=specialty,
        test_card=_is_test(signature_certificate),
    )


def _specialty_of_info(info_ps: bytes | None) -> str | None:
    if not info_ps:
        return None
    text = info_ps.decode("latin-1").strip()
    tail = text[-4:]
    return tail if len(tail) == 4 and tail.isalnum() else None


def _is_test(cert: x509.Certificate) -> bool:
    try:
        policies = cert.extensions.get_extension_for_class(x509.CertificatePolicies).value
    except x509.ExtensionNotFound:
        return False
    return any(p.policy_identifier == _TEST_POLICY for p in policies)


def practice_situation(number: int, value: bytes) -> PracticeSituation:
    """Decode one ``CPS_ACTIVITY_xx_PS`` value: BER-TLV, a 0xEE container holding 0x84 raison sociale,
    0x85 Struct_IdNat, 0x86 sector (docs/cps-card.md §2)."""
    try:
        outer = dict(_tlv(value))
        if _ACTIVITY_CONTAINER not in outer:
            raise ValueError("no 0xEE container")
        fields = dict(_tlv(outer[_ACTIVITY_CONTAINER]))
        structure = fields[_TAG_STRUCTURE].decode("ascii").strip()
        sector = fields[_TAG_SECTOR].decode("ascii").strip()
        name = fields.get(_TAG_NAME, b"").decode("utf-8", "replace").strip()
    except (ValueError, KeyError, UnicodeDecodeError) as exc:
        raise CardError(CardProblem.CARD_CONTENT,
                        f"CPS_ACTIVITY_{number:02d}_PS is not a practice situation: {exc}") from None
    return PracticeSituation(number, structure, name, sector)


def encode_practice_situation(structure_id: str, structure_name: str, sector: str) -> bytes:
    """The inverse of :func:`practice_situation` (for provisioning test tokens)."""
    inner = (_encode(_TAG_NAME, structure_name.encode()) + _encode(_TAG_STRUCTURE, structure_id.encode())
             + _encode(_TAG_SECTOR, sector.encode()))
    return _encode(_ACTIVITY_CONTAINER, inner)


def _tlv(data: bytes) -> list[tuple[int, bytes]]:
    """Single-byte tags, BER definite lengths (short form, 0x81, 0x82)."""
    out, i = [], 0
    while i < len(data):
        if data[i] in (0x00, 0xFF):      # padding between objects
            i += 1
            continue
        if i + 2 > len(data):
            raise ValueError("truncated TLV")
        tag, length, i = data[i], data[i + 1], i + 2
        if length & 0x80:
            n = length & 0x7F
            if n not in (1, 2) or i + n > len(data):
                raise ValueError("bad TLV length")
            length, i = int.from_bytes(data[i:i + n], "big"), i + n
        if i + length > len(data):
            raise ValueError("truncated TLV")
        out.append((tag, data[i:i + length]))
        i += length
    return out


def _encode(tag: int, value: bytes) -> bytes:
    n = len(value)
    if n < 0x80:
        length = bytes([n])
    elif n < 0x100:
        length = bytes([0x81, n])
    else:
        length = bytes([0x82]) + n.to_bytes(2, "big")
    return bytes([tag]) + length + value
