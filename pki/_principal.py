"""Who is calling, as established from a verified VIHF: the input of the consent checker."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pki._vihf_model import AuthMode, CodedValue, PatientIns, PurposeOfUse, Software


@dataclass(frozen=True)
class Principal:
    """Every field comes from the signed assertion or from the validated signer certificate."""

    assertion_id: str
    professional_id: str             # NameID: IdNat_PS in direct mode (= signer CN), user id otherwise
    name: str                        # subject-id ("Prénom Nom", or the automaton's description)
    profession: CodedValue           # 1st role value (TRE_G15 for professionals)
    specialty: CodedValue | None     # 2nd role value (TRE_R01 for médecins)
    roles: tuple[CodedValue, ...]    # every role value, in order
    structure_id: str                # Identifiant_Structure (Struct_IdNat)
    sector: str                      # Secteur_Activite code (TRE_R02), e.g. "SA07"
    auth_mode: AuthMode
    purpose_of_use: PurposeOfUse
    patient: PatientIns | None       # resource-id; None when the request targets no single patient
    software: Software
    vihf_version: str
    authn_context: str | None
    secret_connection: bool          # confidentiality-code INVISIBLE_REPRESENTANTS_LEGAUX (minor's secret access)
    signer_subject: str              # RFC 4514 DN of the signer certificate
    issued_at: datetime              # IssueInstant
    valid_until: datetime            # end of the accepted validity window (replay protection lasts until then)
