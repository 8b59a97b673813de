"""The patient's documents through the portal: the same registry, repository and consent rules as the XDS
transactions (docs/portal.md "Documents"). A listing is an ITI-18 FindDocuments run with the patient's
visibility filter; opening is the ITI-43 decision; hiding and showing are the DMP's masking, an ITI-57 new
version carrying (or no longer carrying) ``MASQUE_PS``; adding is an ITI-41 of a class-90 document. Each is
decided by the consent checker for the :class:`consent.PatientCaller` and recorded in the history in the
transaction that applies it, so it holds for the very next professional's request."""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from lxml import etree

from consent import AccessRefused, Action, Guard, PatientCaller, Reason
from registry import (
    Association,
    Author,
    Code,
    DocumentEntry,
    DocumentFacts,
    Origin,
    Registry,
    RimSubmission,
    SubmissionSet,
    Text,
    association_to_rim,
    document_entry_from_rim,
    document_entry_to_rim,
    read_registry_object_list,
    submission_set_to_rim,
    submit_objects_request,
    submitted_documents,
)
from repository import BlobInfo, Repository
from soap_wsdl import ns

FIND_DOCUMENTS = "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d"          # ITI TF-2a 3.18.4.1.2.3.7.1
APPROVED = "urn:oasis:names:tc:ebxml-regrep:StatusType:Approved"
ARCHIVED = "urn:asip:ci-sis:2010:StatusType:Archived"
HAS_MEMBER = "urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember"
MASKED = Code("MASQUE_PS", "1.2.250.1.213.1.1.4.13", "Masqué aux professionnels de santé")
_PATIENT_ORIGIN_ID = "patient"
_TRE_A05 = "1.2.250.1.213.1.1.4.12"
_EXP_PATIENT = Code("EXP_PATIENT", "1.2.250.1.213.1.1.4.6", "Expression personnelle du patient")
# What a patient may file (R4): the TRE_A05 types that ASS_X16 (registry/valuesets) maps to class 90 — the
# DOCPATxx types map to professional classes there, so a patient cannot file them.
PATIENT_TYPES: dict[str, str] = {
    "EXPPAT_2": "Autre document du patient",
    "EXPPAT_1": "Volontés et droits du patient",
    "EXPPAT_3": "Directives anticipées",
}
PATIENT_FORMATS: dict[str, Code] = {
    "application/pdf": Code("urn:ihe:iti:xds-sd:pdf:2008", "1.3.6.1.4.1.19376.1.2.3", "PDF"),
    "text/plain": Code("urn:ihe:iti:xds-sd:text:2008", "1.3.6.1.4.1.19376.1.2.3", "Texte brut"),
    "image/jpeg": Code("urn:ihe:iti-fr:xds-sd:jpeg:2010", "1.3.6.1.4.1.19376.1.2.3", "JPEG"),
}
MAX_UPLOAD_BYTES = 10 * 1024 * 1024


@dataclass(frozen=True)
class DocumentView:
    """One document as the portal lists it."""

    entry_uuid: str
    unique_id: str
    title: str
    kind: str                  # the typeCode's display name (or code)
    created: str               # creation time, DTM as given
    mime_type: str
    size: int | None
    masked: bool
    filed_by_patient: bool
    status: str

    @property
    def created_display(self) -> str:
        t = self.created
        return f"{t[6:8]}/{t[4:6]}/{t[0:4]}" if len(t) >= 8 else "—"


class DocumentsError(Exception):
    """A document request the portal refuses (the message is French, for the patient)."""


class PatientDocuments:
    def __init__(self, registry: Registry, repository: Repository, guard: Guard) -> None:
        self.registry, self.repository, self.guard = registry, repository, guard

    def _dossier(self, caller: PatientCaller):  # type: ignore[no-untyped-def]
        dossier = self.guard.dossier(caller.patient_key)
        if dossier is None:
            raise AccessRefused(Reason.UNKNOWN_PATIENT, "no dossier")
        return dossier

    def list(self, caller: PatientCaller, *, record: bool = True) -> list[DocumentView]:
        """The documents the caller may see, newest first (an ITI-18 FindDocuments, Approved and Archived)."""
        key = caller.patient_key
        dossier = self._dossier(caller)
        trace = self.guard.admit(caller, Action.SEARCH, key, transaction="portal documents", dossier=dossier)
        answer = self.registry.stored_query(_find_documents(key), document_filter=self.guard.visibility(
            caller, dossier), patient_key=key).element()
        if answer.get("status", "").endswith("Failure"):
            raise DocumentsError("La liste des documents n'a pas pu être lue. Réessayez plus tard.")
        entries = [document_entry_from_rim(o) for o in
                   read_registry_object_list(answer.find(f"{{{ns.RIM}}}RegistryObjectList")).objects
                   if o.kind.name == "EXTRINSIC_OBJECT"]
        facts = {f.unique_id: f for f in self.registry.document_facts(unique_ids=[e.unique_id for e in entries])}
        if record:
            trace.record()
        views = [_view(e, facts.get(e.unique_id)) for e in entries]
        return sorted(views, key=lambda v: v.created, reverse=True)

    def facts(self, caller: PatientCaller, unique_id: str) -> DocumentFacts:
        """The document ``unique_id`` of this patient (anything else is answered as unknown)."""
        found = [f for f in self.registry.document_facts(unique_ids=[unique_id])
                 if f.patient_key == caller.patient_key]
        if not found:
            raise DocumentsError("Ce document n'existe pas ou ne vous est pas accessible.")
        return found[0]

    def entry(self, caller: PatientCaller, unique_id: str) -> DocumentView:
        facts = self.facts(caller, unique_id)
        dossier = self._dossier(caller)
        if not self.guard.visibility(caller, dossier).admits(facts):
            raise DocumentsError("Ce document n'existe pas ou ne vous est pas accessible.")
        entry = self.registry.latest_entries([facts.lid])[facts.lid]
        return _view(entry, facts)

    def open(self, caller: PatientCaller, unique_id: str) -> tuple[DocumentView, BlobInfo]:
        """The document's bytes, after the ITI-43 decision; the reading is recorded before they leave."""
        facts = self.facts(caller, unique_id)
        dossier = self._dossier(caller)
        try:
            trace = self.guard.admit(caller, Action.READ, caller.patient_key, [facts], transaction="portal read",
                                     dossier=dossier)
        except AccessRefused:
            raise DocumentsError("Ce document n'existe pas ou ne vous est pas accessible.") from None
        blob = self.repository.blobs.get(unique_id)
        if blob is None:
            raise DocumentsError("Ce document n'existe pas ou ne vous est pas accessible.")
        trace.record()
        entry = self.registry.latest_entries([facts.lid])[facts.lid]
        return _view(entry, facts), blob

    def set_masked(self, caller: PatientCaller, unique_id: str, masked: bool, *, source_id: str) -> None:
        """Hide the document from professionals (R5) or show it again: an ITI-57 new version of its metadata
        with ``MASQUE_PS`` added or removed, decided (MASK/UNMASK) and recorded in its transaction."""
        facts = self.facts(caller, unique_id)
        if (MASKED.code in facts.confidentiality) == masked:
            return
        latest = self.registry.latest_entries([facts.lid])[facts.lid]
        codes = [c for c in latest.confidentiality_codes if c.code != MASKED.code] + ([MASKED] if masked else [])
        version = replace(latest, entry_uuid="NewVersion", logical_id=facts.lid, version=None, status=None,
                          home=None, confidentiality_codes=codes)
        action = Action.MASK if masked else Action.UNMASK
        trace = self.guard.admit(caller, action, caller.patient_key, [facts], transaction=f"portal {action.value}")
        ss = _submission_set(caller.patient_key, source_id)
        member = Association(entry_uuid="NewVersionMember", association_type=HAS_MEMBER, source=ss.entry_uuid,
                             target=version.entry_uuid, submission_set_status="Original",
                             previous_version=latest.version)
        sub = RimSubmission(objects=[submission_set_to_rim(ss), document_entry_to_rim(version),
                                     association_to_rim(member)])
        response = self.registry.update_submission(sub, origin=Origin(_PATIENT_ORIGIN_ID, by_patient=True),
                                                   record=trace)
        if response.status.name == "FAILURE":
            raise DocumentsError("La modification n'a pas pu être enregistrée. Réessayez plus tard.")

    def add(self, caller: PatientCaller, *, title: str, type_code: str, mime_type: str, content: bytes,
            source_id: str) -> str:
        """File a document of the patient (R4: class 90, a TRE_A05 patient type) through the repository's
        ITI-41 path; returns its uniqueId."""
        if type_code not in PATIENT_TYPES:
            raise DocumentsError("Choisissez le type du document dans la liste.")
        fmt = PATIENT_FORMATS.get(mime_type)
        if fmt is None:
            raise DocumentsError("Seuls les fichiers PDF, JPEG et texte peuvent être ajoutés.")
        if not content or len(content) > MAX_UPLOAD_BYTES:
            raise DocumentsError("Le fichier doit être non vide et faire au plus 10 Mo.")
        key = caller.patient_key
        now = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
        unique_id = f"2.25.{uuid.uuid4().int}"
        author = Author(person=_patient_xcn(key))
        entry = DocumentEntry(
            entry_uuid="PatientDocument", mime_type=mime_type, title=Text(title.strip()[:128], "fr-FR"),
            patient_id=key, unique_id=unique_id, authors=[author],
            class_code=Code("90", "1.2.250.1.213.1.1.4.1", "Autres documents déposés par le patient"),
            confidentiality_codes=[Code("N", "2.16.840.1.113883.5.25", "Normal")], format_code=fmt,
            healthcare_facility_type_code=_EXP_PATIENT, practice_setting_code=_EXP_PATIENT,
            type_code=Code(type_code, _TRE_A05, PATIENT_TYPES[type_code]), creation_time=now, language_code="fr-FR",
            source_patient_id=key)
        ss = _submission_set(key, source_id, author=author)
        member = Association(entry_uuid="PatientDocumentMember", association_type=HAS_MEMBER,
                             source=ss.entry_uuid, target=entry.entry_uuid, submission_set_status="Original")
        sub = RimSubmission(objects=[submission_set_to_rim(ss), document_entry_to_rim(entry),
                                     association_to_rim(member)])
        body = etree.Element(f"{{{ns.XDSB}}}ProvideAndRegisterDocumentSetRequest", nsmap={"xdsb": ns.XDSB})
        body.append(submit_objects_request(sub))
        doc = etree.SubElement(body, f"{{{ns.XDSB}}}Document", id=entry.entry_uuid)
        doc.text = base64.b64encode(content).decode()
        origin = Origin(_PATIENT_ORIGIN_ID, by_patient=True)

        def admit(received: RimSubmission) -> tuple[Origin, object]:
            trace = self.guard.admit(caller, Action.FEED, key, submitted_documents(received, key, origin),
                                     transaction="portal add document")
            return origin, trace

        response = self.repository.provide_and_register(body, None, admit=admit)  # type: ignore[arg-type]
        if response.status.name == "FAILURE":
            raise DocumentsError("Le document n'a pas pu être ajouté : " +
                                 "; ".join(e.context for e in response.errors)[:300])
        return unique_id


def _find_documents(patient_key: str) -> etree._Element:
    q, r = ns.QUERY, ns.RIM
    req = etree.Element(f"{{{q}}}AdhocQueryRequest", nsmap={"query": q, "rim": r})
    etree.SubElement(req, f"{{{q}}}ResponseOption", returnType="LeafClass", returnComposedObjects="true")
    query = etree.SubElement(req, f"{{{r}}}AdhocQuery", id=FIND_DOCUMENTS)
    for name, value in (("$XDSDocumentEntryPatientId", f"'{patient_key}'"),
                        ("$XDSDocumentEntryStatus", f"('{APPROVED}','{ARCHIVED}')")):
        slot = etree.SubElement(query, f"{{{r}}}Slot", name=name)
        etree.SubElement(etree.SubElement(slot, f"{{{r}}}ValueList"), f"{{{r}}}Value").text = value
    return req


def _submission_set(patient_key: str, source_id: str, author: Author | None = None) -> SubmissionSet:
    return SubmissionSet(
        entry_uuid="PortalSubmission", title=Text("Espace patient", "fr-FR"), patient_id=patient_key,
        unique_id=f"2.25.{uuid.uuid4().int}", source_id=source_id,
        submission_time=datetime.now(UTC).strftime("%Y%m%d%H%M%S"),
        authors=[author or Author(person=_patient_xcn(patient_key))], content_type_code=_EXP_PATIENT)


def _patient_xcn(patient_key: str) -> str:
    """The patient as author (XCN: the INS and its authority, DMP.md R4)."""
    nir, _, authority = patient_key.partition("^^^")
    return f"{nir}^^^^^^^^{authority}"


def _view(entry: DocumentEntry, facts: DocumentFacts | None) -> DocumentView:
    codes = {c.code for c in entry.confidentiality_codes}
    kind = (entry.type_code.display or entry.type_code.code) if entry.type_code else "Document"
    return DocumentView(entry.entry_uuid, entry.unique_id, entry.title.value if entry.title else "(sans titre)",
                        kind, entry.creation_time or "", entry.mime_type, entry.size, MASKED.code in codes,
                        bool(facts and facts.filed_by_patient), entry.status or APPROVED)
