"""An ITI-41 submission of one document, built from the registry's typed model (IHE ITI TF-3 §4.2 and the
DMP's CI-SIS profile, docs/conformance.md §7): a SubmissionSet, one DocumentEntry and their HasMember
Association, authored by the professional in their practice situation."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from lxml import etree

from cardreader._professional import Professional
from pki import PatientIns
from registry import (
    Association,
    Author,
    Code,
    DocumentEntry,
    RimSubmission,
    SubmissionSet,
    Text,
    association_to_rim,
    document_entry_to_rim,
    submission_set_to_rim,
    submit_objects_request,
)
from soap_wsdl import ns

IDNAT_PS_OID: Final = "1.2.250.1.71.4.2.1"
STRUCT_IDNAT_OID: Final = "1.2.250.1.71.4.2.2"
SECTOR_SYSTEM: Final = "1.2.250.1.71.4.2.4"
HAS_MEMBER: Final = "urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember"


@dataclass(frozen=True)
class DocumentDescription:
    """What the submitter says about the document (codes from the DMP value sets, docs/conformance.md §7)."""

    class_code: Code
    type_code: Code
    title: str
    mime_type: str = "application/pdf"
    format_code: Code = field(default_factory=lambda: Code("urn:ihe:iti:xds-sd:pdf:2008", "1.3.6.1.4.1.19376.1.2.3",
                                                           "Document à corps non structuré en Pdf/A-1"))
    confidentiality: Code = field(default_factory=lambda: Code("N", "2.16.840.1.113883.5.25", "Normal"))
    practice_setting: Code = field(default_factory=lambda: Code("AMBULATOIRE", "1.2.250.1.213.1.1.4.9",
                                                                "Ambulatoire"))
    content_type: Code = field(default_factory=lambda: Code("04", "1.2.250.1.213.2.2", "Consultation"))
    language: str = "fr-FR"


@dataclass(frozen=True)
class FileDigest:
    sha1: str
    size: int


def digest(path: Path, chunk_size: int = 1024 * 1024) -> FileDigest:
    """SHA-1 (XDS ``hash``) and size of a file, read in chunks (constant memory)."""
    h, size = hashlib.sha1(usedforsecurity=False), 0
    with path.open("rb") as f:
        while chunk := f.read(chunk_size):
            h.update(chunk)
            size += len(chunk)
    return FileDigest(h.hexdigest(), size)


def new_unique_id() -> str:
    """An OID under ``2.25`` from a random UUID (ITU-T X.667 §6.3), unique without a registration authority."""
    return f"2.25.{uuid.uuid4().int}"


def provide_and_register_request(professional: Professional, patient: PatientIns, description: DocumentDescription,
                                 file_digest: FileDigest, content_id: str, *,
                                 document_unique_id: str | None = None,
                                 now: datetime | None = None) -> tuple[etree._Element, DocumentEntry]:
    """``xdsb:ProvideAndRegisterDocumentSetRequest`` whose document is an ``xop:Include`` of ``content_id``."""
    moment = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y%m%d%H%M%S")
    author = _author(professional)
    situation = professional.situation
    entry = DocumentEntry(
        entry_uuid="Document01",
        mime_type=description.mime_type,
        title=Text(description.title, description.language),
        patient_id=patient.cx,
        unique_id=document_unique_id or new_unique_id(),
        authors=[author],
        class_code=description.class_code,
        confidentiality_codes=[description.confidentiality],
        format_code=description.format_code,
        healthcare_facility_type_code=Code(situation.sector, SECTOR_SYSTEM, situation.sector),
        practice_setting_code=description.practice_setting,
        type_code=description.type_code,
        creation_time=moment,
        language_code=description.language,
        source_patient_id=patient.cx,
        hash=file_digest.sha1,
        size=file_digest.size,
    )
    submission = SubmissionSet(
        entry_uuid="SubmissionSet01",
        title=Text(description.title, description.language),
        patient_id=patient.cx,
        unique_id=new_unique_id(),
        source_id=professional.software.installation_id or "2.25.0",
        submission_time=moment,
        authors=[author],
        content_type_code=description.content_type,
    )
    association = Association(entry_uuid="Association01", association_type=HAS_MEMBER, source="SubmissionSet01",
                              target="Document01", submission_set_status="Original")
    rim = RimSubmission(objects=[submission_set_to_rim(submission), document_entry_to_rim(entry),
                                 association_to_rim(association)])
    request = etree.Element(f"{{{ns.XDSB}}}ProvideAndRegisterDocumentSetRequest",
                            nsmap={"xdsb": ns.XDSB, "lcm": ns.LCM, "rim": ns.RIM})
    request.append(submit_objects_request(rim))
    document = etree.SubElement(request, f"{{{ns.XDSB}}}Document", id="Document01")
    include = etree.SubElement(document, f"{{{ns.XOP}}}Include", nsmap={"xop": ns.XOP})
    include.set("href", f"cid:{content_id}")
    return request, entry


def _author(professional: Professional) -> Author:
    """authorPerson (XCN) and authorInstitution (XON) per CI-SIS (docs/conformance.md §7); authorSpecialty
    ``G15_<profession>/<specialty>``."""
    h, s = professional.holder, professional.situation
    person = f"{h.idnat_ps}^{h.family_name}^{h.given_name}^^^^^^&{IDNAT_PS_OID}&ISO^D^^^IDNPS"
    institution = f"{s.structure_name or s.structure_id}^^^^^&{STRUCT_IDNAT_OID}&ISO^IDNST^^^{s.structure_id}"
    specialty = f"G15_{h.profession}/{h.specialty}" if h.specialty else f"G15_{h.profession}"
    return Author(person=person, institutions=[institution],
                  specialties=[f"{specialty}^{h.profession_label}^1.2.250.1.213.1.1.4.5"])
