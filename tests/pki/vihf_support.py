"""Helpers of the pki tests: a real test PKI (RSA keys, X.509 certificates, CRLs made with `cryptography`) with
every kind of credential the VIHF tests need, claims of the test identities, and real signed VIHFs.

Time never comes from the wall clock: the PKI is made at ``NOW - 1 day`` and the verifiers read ``NOW``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

# The test identities and the default claims are tests/support's, shared with the end-to-end tests.
from vihf_client import ALICE as ALICE
from vihf_client import ALICE_STRUCTURE as ALICE_STRUCTURE
from vihf_client import BOB as BOB
from vihf_client import SOFTWARE, patient_ins
from vihf_client import alice_claims as alice_claims

from pki import (
    AuthMode,
    CardCredentials,
    CodedValue,
    ReplayCache,
    Signer,
    StructureCredentials,
    StructureIdentity,
    TestPki,
    TrustStore,
    VihfClaims,
    VihfError,
    VihfPolicy,
    VihfVerifier,
    build_vihf,
    sign_assertion,
)
from soap_wsdl import parse_xml

NOW = datetime(2026, 3, 2, 9, 15, tzinfo=UTC)
HOSPITAL = StructureIdentity.from_finess("750712184", "HOPITAL TEST", "SERVICE URGENCES")  # Struct_IdNat 1750712184
PATIENT = patient_ins()


@dataclass(frozen=True)
class Pkis:
    pki: TestPki
    trust: TrustStore
    alice: CardCredentials
    bob: CardCredentials
    hospital: StructureCredentials
    expired: CardCredentials        # ALICE-like card, expired before NOW
    not_yet_valid: CardCredentials  # ALICE-like card, valid only after NOW
    revoked: CardCredentials        # ALICE-like card whose signature certificate is revoked
    foreign: TestPki                # another hierarchy with the same names, not trusted
    foreign_alice: CardCredentials


def make_pkis(directory: Path) -> Pkis:
    made = NOW - timedelta(days=1)
    pki = TestPki.create(directory / "pki", now=made)
    alice = pki.issue_ps(ALICE, now=made)
    bob = pki.issue_ps(BOB, now=made)
    hospital = pki.issue_structure(HOSPITAL, now=made)
    expired = pki.issue_ps(ALICE, now=made, not_before=NOW - timedelta(days=400), days=365)
    not_yet_valid = pki.issue_ps(ALICE, now=made, not_before=NOW + timedelta(days=10))
    revoked = pki.issue_ps(ALICE, now=made)
    pki.revoke(revoked.signature.certificate, now=made)
    foreign = TestPki.create(directory / "foreign", now=made)
    return Pkis(pki, pki.trust_store(), alice, bob, hospital, expired, not_yet_valid, revoked, foreign,
                foreign.issue_ps(ALICE, now=made))


def hospital_claims(**changes: Any) -> VihfClaims:
    base = VihfClaims(
        name_id="1750712184/INT0042",
        subject_name="SERVICE URGENCES - DR INTERNE",
        auth_mode=AuthMode.INDIRECT,
        structure_id=HOSPITAL.struct_idnat,
        sector="SA01",
        profession=CodedValue.profession("60"),
        software=SOFTWARE,
        patient=PATIENT,
        authn_context="urn:oasis:names:tc:SAML:2.0:ac:classes:Password",
    )
    return replace(base, **changes)


Edit = Callable[[etree._Element], None]


def signed_vihf(signer: Signer, claims: VihfClaims | None = None, *, issue_instant: datetime = NOW,
                lifetime: timedelta | None = timedelta(minutes=5), edit: Edit | None = None) -> etree._Element:
    """A real signed VIHF; ``edit`` changes the unsigned assertion before it is signed (so the result is
    validly signed whatever it says)."""
    assertion = build_vihf(claims or alice_claims(), signer_certificate=signer.certificate,
                           issue_instant=issue_instant, lifetime=lifetime)
    if edit is not None:
        edit(assertion)
    return sign_assertion(assertion, signer)


def reparse(element: etree._Element) -> etree._Element:
    """What a server sees: the bytes on the wire parsed again by the hardened parser."""
    return parse_xml(etree.tostring(element))


def verifier(pkis: Pkis, *, at: datetime = NOW, policy: VihfPolicy | None = None,
             trust: TrustStore | None = None) -> VihfVerifier:
    return VihfVerifier(trust or pkis.trust, lambda: at, ReplayCache(), policy=policy)


def refusal(v: VihfVerifier, assertion: etree._Element, **kwargs: Any) -> VihfError:
    with pytest.raises(VihfError) as info:
        v.verify(reparse(assertion), **kwargs)
    return info.value


def attribute(assertion: etree._Element, name: str) -> etree._Element:
    found = [a for a in assertion.iter("{urn:oasis:names:tc:SAML:2.0:assertion}Attribute") if a.get("Name") == name]
    assert len(found) == 1, name
    return found[0]


def first_value(assertion: etree._Element, name: str) -> etree._Element:
    return attribute(assertion, name)[0]



def envelope(*assertions: etree._Element, security_blocks: int = 1) -> etree._Element:
    """A SOAP 1.2 request envelope whose (first) wsse:Security holds ``assertions``."""
    env = etree.Element("{http://www.w3.org/2003/05/soap-envelope}Envelope")
    header = etree.SubElement(env, "{http://www.w3.org/2003/05/soap-envelope}Header")
    for i in range(security_blocks):
        security = etree.SubElement(header, f"{{{WSSE}}}Security")
        if i == 0:
            for a in assertions:
                security.append(a)
    etree.SubElement(etree.SubElement(env, "{http://www.w3.org/2003/05/soap-envelope}Body"), "{urn:x}Query")
    return env


WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
