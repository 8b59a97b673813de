"""The VIHF vocabulary (docs/vihf.md §3–§3.4): namespaces, attribute names, code systems, and the typed values
a VIHF carries. Shared by the builder, the verifier and :class:`~pki.Principal`."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Final

from pki._certs import PROFESSIONS

SAML: Final = "urn:oasis:names:tc:SAML:2.0:assertion"
DS: Final = "http://www.w3.org/2000/09/xmldsig#"
HL7: Final = "urn:hl7-org:v3"
XSI: Final = "http://www.w3.org/2001/XMLSchema-instance"
XS: Final = "http://www.w3.org/2001/XMLSchema"

X509_SUBJECT_NAME: Final = "urn:oasis:names:tc:SAML:1.1:nameid-format:X509SubjectName"
SMARTCARD_PKI: Final = "urn:oasis:names:tc:SAML:2.0:ac:classes:SmartcardPKI"


class Attr:
    """``saml2:Attribute/@Name`` values."""

    VERSION: Final = "VIHF_Version"
    MODE: Final = "Authentification_Mode"
    MODE_GIE_SPELLING: Final = "Authentification_mode"     # GIE samples; accepted (docs/vihf.md §3)
    STRUCTURE: Final = "Identifiant_Structure"
    SECTOR: Final = "Secteur_Activite"
    SUBJECT_ID: Final = "urn:oasis:names:tc:xspa:1.0:subject:subject-id"
    ROLE: Final = "urn:oasis:names:tc:xacml:2.0:subject:role"
    RESOURCE_ID: Final = "urn:oasis:names:tc:xacml:2.0:resource:resource-id"
    RESOURCE_URN: Final = "Ressource_URN"
    PURPOSE_OF_USE: Final = "urn:oasis:names:tc:xspa:1.0:subject:purposeofuse"
    CONFIDENTIALITY: Final = "urn:oasis:names:tc:xspa:1.0:resource:patient:hl7:confidentiality-code"
    LPS_ID: Final = "LPS_ID"
    LPS_NAME: Final = "LPS_Nom"
    LPS_VERSION: Final = "LPS_Version"
    LPS_HOMOLOGATION: Final = "LPS_ID_HOMOLOGATION_DMP"


VIHF_VERSIONS: Final = frozenset({"3.0", "4.0"})
RESOURCE_URN_DMP: Final = "urn:dmp"
SECTOR_SYSTEM: Final = "1.2.250.1.71.4.2.4"                 # TRE_R02
PROFESSION_SYSTEM: Final = "1.2.250.1.71.1.2.7"             # TRE_G15
SPECIALTY_SYSTEM: Final = "1.2.250.1.71.4.2.5"              # TRE_R01
AUTOMATON_SYSTEM: Final = "1.2.250.1.213.1.1.4.6"           # non-PS producers, e.g. AUTOMATE
PURPOSE_SYSTEM: Final = "1.2.250.1.213.1.1.4.248"           # emitted; .336 (TRE_R248's registry OID) accepted
PURPOSE_SYSTEMS: Final = frozenset({PURPOSE_SYSTEM, "1.2.250.1.213.1.1.4.336"})
CONFIDENTIALITY_SYSTEM: Final = "1.2.250.1.213.1.1.4.13"
SECRET_CONNECTION: Final = "INVISIBLE_REPRESENTANTS_LEGAUX"  # noqa: S105 (a confidentiality code)

SECTOR_PATTERN: Final = re.compile(r"(SA[0-9]{2})\^" + re.escape(SECTOR_SYSTEM))


class AuthMode(enum.Enum):
    """``Authentification_Mode`` (docs/vihf.md §4)."""

    DIRECT = "DIRECTE"                       # CPS/CPF/CPE/e-CPS: signed with the card's signature key
    INDIRECT = "INDIRECTE"                   # structure: signed with its organisation ("cachet") certificate
    INDIRECT_REINFORCED = "INDIRECTE_RENFORCEE"  # AIR: structure certificate, 30 s single use


class PurposeOfUse(enum.Enum):
    """``purposeofuse`` codes of TRE_R248 "ModeAcces" (docs/vihf.md §3, §5)."""

    NORMAL = "normal"
    BREAK_GLASS = "bris_de_glace"
    CENTRE_15 = "centre_15"

    @property
    def display_name(self) -> str:
        return {
            PurposeOfUse.NORMAL: "Accès normal",
            PurposeOfUse.BREAK_GLASS: "Accès en bris de glace",
            PurposeOfUse.CENTRE_15: "Accès par un centre de régulation médicale",
        }[self]


@dataclass(frozen=True)
class CodedValue:
    """An HL7 CE value (``hl7:Role``, ``hl7:PurposeOfUse``)."""

    code: str
    code_system: str
    code_system_name: str | None = None
    display_name: str | None = None

    @classmethod
    def profession(cls, code: str) -> CodedValue:
        """A TRE_G15 profession (1st role value)."""
        return cls(code, PROFESSION_SYSTEM, "G15", PROFESSIONS.get(code))

    @classmethod
    def specialty(cls, code: str, display_name: str | None = None) -> CodedValue:
        """A TRE_R01 savoir-faire (2nd role value; mandatory for médecins)."""
        return cls(code, SPECIALTY_SYSTEM, "R01", display_name)


@dataclass(frozen=True)
class PatientIns:
    """The patient's INS: NIR under an INS-NIR authority (docs/identifiers.md)."""

    nir: str
    oid: str

    @property
    def cx(self) -> str:
        """The XDS patientId form, ``NIR^^^&OID&ISO`` (compare with the payload's patientId)."""
        return f"{self.nir}^^^&{self.oid}&ISO"

    @property
    def resource_id(self) -> str:
        """The VIHF ``resource-id`` form, ``NIR^^^&OID&ISO^NH``."""
        return self.cx + "^NH"


@dataclass(frozen=True)
class Software:
    """The calling software (LPS) as the VIHF names it."""

    name: str                          # LPS_Nom
    homologation_id: str               # LPS_ID_HOMOLOGATION_DMP
    version: str | None = None         # LPS_Version
    installation_id: str | None = None  # LPS_ID
