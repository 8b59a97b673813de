"""Callers of a consent-checked node for the end-to-end tests: professionals with their own cards, fresh
patients with a DMP, the `dmp patient`/`dmp history` commands, and the few transactions the tests send
(docs/consent.md)."""

from __future__ import annotations

import itertools
import json
import secrets
from functools import cache

from click.testing import CliRunner
from vihf_client import ALICE, BOB, claims_for, fresh_vihf, identities, patient_ins
from xds_client import ITI18, ITI41, ITI43, Reply, adhoc_query, post, retrieve_request
from xds_factory import REPOSITORY_ID, Doc, content_id, provide_and_register

from pki import PsIdentity, PurposeOfUse, Signer
from registry import _model
from server.cli import main
from soap_wsdl import OutgoingAttachment, ns

CAROL = PsIdentity.from_rpps("99900063480", "CAROLE", "TEST", "10", "SM26")      # never authorised
DOCTOR = PsIdentity.from_rpps("99900038839", "TRAITANT", "MARC", "10", "SM26")   # médecin traitant
FIND = "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d"
GET_DOCS = "urn:uuid:5c4f972b-d56b-40ac-a5fc-c8ca9b40b9d4"
APPROVED = "urn:oasis:names:tc:ebxml-regrep:StatusType:Approved"
ARCHIVED = "urn:asip:ci-sis:2010:StatusType:Archived"
DELETED = "urn:asip:ci-sis:2010:StatusType:Deleted"
MASQUE_PS = _model.Code("MASQUE_PS", "1.2.250.1.213.1.1.4.13", "Masqué aux professionnels de santé")
NORMAL = _model.Code("N", "2.16.840.1.113883.5.25", "Normal")
_serial = itertools.count(1)


@cache
def signer(ps: PsIdentity) -> Signer:
    if ps == ALICE:
        return identities().alice.signature.signer()
    return identities().pki.issue_ps(ps).signature.signer()


def vihf(ps: PsIdentity, patient: str, purpose: PurposeOfUse = PurposeOfUse.NORMAL):
    return fresh_vihf(signer(ps), claims_for(ps, patient=patient_ins(patient), purpose_of_use=purpose))


def new_patient(node, *extra: str) -> str:
    """A fresh test INS (valid NIR key) with its DMP, ALICE and BOB authorised by the patient."""
    body = f"1{80 + next(_serial) % 20:02d}0175{secrets.randbelow(10**6):06d}"
    nir = body + f"{97 - int(body) % 97:02d}"
    ins = f"{nir}^^^&1.2.250.1.213.1.4.10&ISO"
    cli(node, "patient", "create", "--ins", ins, *extra)
    for ps in (ALICE, BOB):
        cli(node, "patient", "authorize", "--ins", ins, "--ps", ps.idnat_ps)
    return ins


def cli(node, *args: str, code: int = 0) -> str:
    result = CliRunner().invoke(main, [*args[:2], "--data", str(node.config.data_dir), *args[2:]]
                                if args[0] in ("patient", "history") else list(args))
    assert result.exit_code == code, result.output
    return result.output


def feed(node, ps: PsIdentity, patient: str, doc: Doc, *, as_patient: str | None = None) -> Reply:
    return post(node.repository, ITI41, provide_and_register([doc]), vihf=vihf(ps, as_patient or patient),
                attachments=[OutgoingAttachment(content_id(doc), doc.mime_type, doc.content)])


def find(node, ps: PsIdentity, patient: str, *, purpose: PurposeOfUse = PurposeOfUse.NORMAL,
         return_type: str = "LeafClass") -> Reply:
    return post(node.registry, ITI18, adhoc_query(FIND, [("$XDSDocumentEntryPatientId", [f"'{patient}'"]),
                                                         ("$XDSDocumentEntryStatus", [f"('{APPROVED}')"])],
                                                  return_type), mtom=False, vihf=vihf(ps, patient, purpose))


def unique_ids(reply: Reply) -> set[str]:
    assert reply.status == "Success", (reply.errors, reply.fault_reason if reply.http_status != 200 else "")
    return {ext.get("value") for ext in reply.body.iter(f"{{{ns.RIM}}}ExternalIdentifier")
            if ext.get("identificationScheme") == "urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab"}


def retrieve(node, ps: PsIdentity, patient: str, uid: str, purpose: PurposeOfUse = PurposeOfUse.NORMAL) -> Reply:
    return post(node.repository, ITI43, retrieve_request(REPOSITORY_ID, [uid]), vihf=vihf(ps, patient, purpose))


def refused(reply: Reply, reason: str, subcode: str = "DMPAccessDeniedByRightsService") -> None:
    assert reply.http_status == 400, reply.errors
    assert reply.fault_code == "env:Sender"
    assert reply.fault_subcode.endswith(subcode)
    assert f"[{reason}, " in reply.fault_reason


def history(node, patient: str) -> list[dict[str, object]]:
    return json.loads(cli(node, "history", "show", "--ins", patient, "--json"))


def doc(content: bytes, patient: str, **meta: object) -> Doc:
    return Doc(content, "Document01", patient_id=patient, meta=dict(meta))
