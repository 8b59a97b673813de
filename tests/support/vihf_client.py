"""The tests' identities: one test PKI per test process (the session-wide PKI conftest configures as every
test node's trust), a default professional (Dr ALICE TESTEUR, a CPS-like card), and fresh signed VIHFs.

The PKI lives in a temporary directory made on first use and removed when the process exits; benchmarks use
it the same way.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from lxml import etree
from xds_factory import PATIENT

from pki import (
    AuthMode,
    CardCredentials,
    CodedValue,
    Credential,
    PatientIns,
    PsIdentity,
    Signer,
    Software,
    TestPki,
    VihfClaims,
    build_vihf,
    sign_assertion,
)
from soap_wsdl import ns

ALICE = PsIdentity.from_rpps("99700012349", "TESTEUR", "ALICE", "10", "SM26")   # IdNat_PS 899700012349
BOB = PsIdentity.from_adeli("751234567", "INFIRMIER", "BOB", "60")              # IdNat_PS 0751234567
ALICE_STRUCTURE = "499700012349012"
SOFTWARE = Software("LPS-TEST", "HOMOLOG-TEST-0001", "0.1.0", "1.2.250.1.999.42.1")


def patient_ins(cx: str = PATIENT) -> PatientIns:
    """The VIHF resource-id of an XDS patient id ``NIR^^^&OID&ISO``."""
    nir, _, rest = cx.partition("^^^&")
    return PatientIns(nir, rest.split("&")[0])


@dataclass(frozen=True)
class TestIdentities:
    __test__ = False

    pki: TestPki
    alice: CardCredentials
    server: Credential   # TLS server certificate for localhost/127.0.0.1

    @property
    def server_chain(self) -> Path:
        path = self.server.certificate_path
        return path.with_name(path.name.removesuffix(".pem") + ".chain.pem")

    @property
    def directory(self) -> Path:
        return self.pki.directory

    @property
    def trust_anchors(self) -> list[str]:
        return [str(self.directory / "trust-anchors.pem"), str(self.directory / "intermediates.pem")]

    @property
    def crls(self) -> list[str]:
        return [str(self.directory / f"{n}.crl.pem") for n in ("root", "ca-personnes", "ca-organisations")]

    @property
    def ca_bundle(self) -> Path:
        return self.directory / "ca-bundle.pem"


@lru_cache(maxsize=1)
def identities() -> TestIdentities:
    """The process-wide test PKI and the default professional's card (made once)."""
    directory = Path(tempfile.mkdtemp(prefix="dmp-test-pki-"))
    atexit.register(shutil.rmtree, directory, True)
    pki = TestPki.create(directory / "pki")
    server = pki.issue_server(("localhost", "127.0.0.1"))
    return TestIdentities(pki, pki.issue_ps(ALICE), server)


def alice_claims(**changes: Any) -> VihfClaims:
    base = VihfClaims(
        name_id=ALICE.idnat_ps,
        subject_name="ALICE TESTEUR",
        auth_mode=AuthMode.DIRECT,
        structure_id=ALICE_STRUCTURE,
        sector="SA07",
        profession=CodedValue.profession("10"),
        specialty=CodedValue.specialty("SM26", "Qualifié en Médecine Générale (SM)"),
        software=SOFTWARE,
        patient=patient_ins(),
    )
    return replace(base, **changes)


def claims_for(ps: PsIdentity, **changes: Any) -> VihfClaims:
    """Direct-mode claims of another professional (same structure and software as ALICE)."""
    specialty = CodedValue.specialty(ps.specialty) if ps.specialty else None
    return alice_claims(name_id=ps.idnat_ps, subject_name=f"{ps.given_name} {ps.family_name}",
                        profession=CodedValue.profession(ps.profession), specialty=specialty, **changes)


def fresh_vihf(signer: Signer | None = None, claims: VihfClaims | None = None, *,
               issue_instant: datetime | None = None, assertion_id: str | None = None) -> etree._Element:
    """A signed VIHF with a new assertion ID, issued now (default: ALICE's signature key, patient PATIENT)."""
    signer = signer or identities().alice.signature.signer()
    assertion = build_vihf(claims or alice_claims(), signer_certificate=signer.certificate,
                           issue_instant=issue_instant or datetime.now(UTC), lifetime=timedelta(minutes=5),
                           assertion_id=assertion_id)
    return sign_assertion(assertion, signer)


def security_header(assertion: etree._Element) -> etree._Element:
    """``wsse:Security`` holding the assertion (docs/vihf.md §1: nothing else, no mustUnderstand)."""
    security = etree.Element(f"{{{ns.WSSE}}}Security", nsmap={"wsse": ns.WSSE})
    security.append(assertion)
    return security
