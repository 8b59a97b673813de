"""The professional as the node sees them: a signer and the claims of a VIHF (docs/vihf.md §3–§5). Built from
the logged-in card (direct mode: holder from the certificates, structure and sector from one practice
situation of the card) or, for demos and integrators without a card, from a software credential of the test
PKI (test only)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

from lxml import etree

from cardreader._errors import CardError, CardProblem
from cardreader._holder import CardHolder, PracticeSituation, card_holder
from cardreader._signer import CardSigner
from cardreader._token import CpsCard
from pki import (
    AuthMode,
    PatientIns,
    PurposeOfUse,
    Signer,
    Software,
    SoftwareSigner,
    VihfClaims,
    build_vihf,
    sign_assertion,
)

SOFTWARE_CREDENTIAL_WARNING: Final = (
    "WARNING: signing with a SOFTWARE credential of the demo PKI - for tests and demos only, never with "
    "real patients; a professional signs with the CPS card")


@dataclass(frozen=True)
class Professional:
    """Signs fresh VIHFs for one professional acting in one practice situation."""

    signer: Signer
    holder: CardHolder
    situation: PracticeSituation
    software: Software
    auth_mode: AuthMode = AuthMode.DIRECT
    card: CpsCard | None = None   # the card that signs, if any (its authentication key carries TLS)

    @classmethod
    def from_card(cls, card: CpsCard, software: Software, situation: int | None = None) -> Professional:
        """The logged-in ``card``'s holder in practice situation number ``situation`` (default: the first)."""
        situations = card.practice_situations()
        if not situations:
            raise CardError(CardProblem.CARD_CONTENT, "the card holds no practice situation (CPS_ACTIVITY_xx_PS)")
        if situation is None:
            chosen = situations[0]
        else:
            found = [s for s in situations if s.number == situation]
            if not found:
                numbers = ", ".join(str(s.number) for s in situations)
                raise CardError(CardProblem.CARD_CONTENT,
                                f"the card has no practice situation {situation} (it has {numbers})")
            chosen = found[0]
        return cls(CardSigner(card), card.holder, chosen, software, card=card)

    @classmethod
    def from_software_credential(cls, certificate: Path, private_key: Path, software: Software, *,
                                 structure_id: str, sector: str) -> Professional:
        """TEST ONLY: a signature certificate and its unencrypted key from the demo PKI (``dmp pki issue``)
        stand in for the card; the practice situation is given."""
        signer = SoftwareSigner.from_pem_files(certificate, private_key)
        holder = card_holder(signer.certificate, None, None)
        return cls(signer, holder, PracticeSituation(0, structure_id, "", sector), software)

    def claims(self, patient: PatientIns | None, purpose: PurposeOfUse = PurposeOfUse.NORMAL) -> VihfClaims:
        return VihfClaims(
            name_id=self.holder.idnat_ps,
            subject_name=self.holder.display_name,
            auth_mode=self.auth_mode,
            structure_id=self.situation.structure_id,
            sector=self.situation.sector,
            profession=self.holder.profession_code(),
            specialty=self.holder.specialty_code(),
            software=self.software,
            purpose_of_use=purpose,
            patient=patient,
        )

    def vihf(self, patient: PatientIns | None, purpose: PurposeOfUse = PurposeOfUse.NORMAL, *,
             now: datetime | None = None, lifetime: timedelta = timedelta(minutes=5)) -> etree._Element:
        """A signed ``saml2:Assertion`` with a new ID, issued now, for ``patient`` and ``purpose``."""
        assertion = build_vihf(self.claims(patient, purpose), signer_certificate=self.signer.certificate,
                               issue_instant=now or datetime.now(UTC), lifetime=lifetime)
        return sign_assertion(assertion, self.signer)


def patient_ins(cx: str) -> PatientIns:
    """``NIR^^^&OID&ISO`` (optionally ``^NH``) as the VIHF's patient."""
    nir, sep, rest = cx.partition("^^^&")
    oid = rest.split("&")[0]
    if not sep or not nir or not oid:
        raise ValueError(f"{cx!r} is not an INS in CX form NIR^^^&OID&ISO")
    return PatientIns(nir, oid)
