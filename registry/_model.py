"""Typed XDS metadata (ITI TF-3 §4.2.3): DocumentEntry, SubmissionSet, Folder, Association, and the
transform between these and ebRIM objects (``_rim``), both ways. Values stay strings in their wire format
(DTM, CX, XCN...): ``_hl7`` checks them; the model is what the store indexes and what consumers read."""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass, field

from registry import _rim
from registry._vocabulary import (
    DE_STABLE,
    NODE_FOLDER,
    NODE_SUBMISSION_SET,
    OT_REGISTRY_PACKAGE,
    IdScheme,
    Scheme,
)

_CODING_SCHEME = "codingScheme"
_AUTHOR_SLOTS = {
    "authorPerson": "person",
    "authorInstitution": "institutions",
    "authorRole": "roles",
    "authorSpecialty": "specialties",
    "authorTelecommunication": "telecoms",
}


@dataclass(frozen=True)
class Code:
    """A coded value: ``nodeRepresentation`` + ``codingScheme`` slot + display name."""

    code: str
    scheme: str
    display: str | None = None


@dataclass
class Author:
    person: str | None = None
    institutions: list[str] = field(default_factory=list)
    roles: list[str] = field(default_factory=list)
    specialties: list[str] = field(default_factory=list)
    telecoms: list[str] = field(default_factory=list)


@dataclass
class Text:
    """rim:Name / rim:Description (one LocalizedString is what XDS uses)."""

    value: str
    lang: str | None = None
    charset: str | None = None


@dataclass
class Entry:
    """What every registry object of XDS has."""

    entry_uuid: str
    logical_id: str | None = None
    version: str | None = None
    status: str | None = None
    home: str | None = None
    extra_slots: list[_rim.Slot] = field(default_factory=list)


@dataclass
class DocumentEntry(Entry):
    object_type: str = DE_STABLE
    mime_type: str = ""
    title: Text | None = None
    comments: Text | None = None
    patient_id: str = ""
    unique_id: str = ""
    authors: list[Author] = field(default_factory=list)
    class_code: Code | None = None
    confidentiality_codes: list[Code] = field(default_factory=list)
    event_codes: list[Code] = field(default_factory=list)
    format_code: Code | None = None
    healthcare_facility_type_code: Code | None = None
    practice_setting_code: Code | None = None
    type_code: Code | None = None
    creation_time: str | None = None
    hash: str | None = None
    size: int | None = None
    language_code: str | None = None
    legal_authenticator: str | None = None
    repository_unique_id: str | None = None
    service_start_time: str | None = None
    service_stop_time: str | None = None
    source_patient_id: str | None = None
    source_patient_info: list[str] = field(default_factory=list)
    reference_ids: list[str] = field(default_factory=list)
    uri: str | None = None
    document_availability: str | None = None


@dataclass
class SubmissionSet(Entry):
    title: Text | None = None
    comments: Text | None = None
    patient_id: str = ""
    unique_id: str = ""
    source_id: str = ""
    submission_time: str | None = None
    authors: list[Author] = field(default_factory=list)
    content_type_code: Code | None = None
    intended_recipients: list[str] = field(default_factory=list)


@dataclass
class Folder(Entry):
    title: Text | None = None
    comments: Text | None = None
    patient_id: str = ""
    unique_id: str = ""
    codes: list[Code] = field(default_factory=list)
    last_update_time: str | None = None


@dataclass
class Association(Entry):
    association_type: str = ""
    source: str = ""
    target: str = ""
    submission_set_status: str | None = None
    previous_version: str | None = None
    original_status: str | None = None
    new_status: str | None = None


# Slots that map onto typed attributes (single-valued ones first); everything else is extra_slots.
_DE_SINGLE = {
    "creationTime": "creation_time",
    "hash": "hash",
    "languageCode": "language_code",
    "legalAuthenticator": "legal_authenticator",
    "repositoryUniqueId": "repository_unique_id",
    "serviceStartTime": "service_start_time",
    "serviceStopTime": "service_stop_time",
    "sourcePatientId": "source_patient_id",
    "URI": "uri",
    "documentAvailability": "document_availability",
}
_DE_MULTI = {"sourcePatientInfo": "source_patient_info", "urn:ihe:iti:xds:2013:referenceIdList": "reference_ids"}
_ASSOC_SINGLE = {
    "SubmissionSetStatus": "submission_set_status",
    "PreviousVersion": "previous_version",
    "OriginalStatus": "original_status",
    "NewStatus": "new_status",
}
DE_SLOT_NAMES = frozenset({*_DE_SINGLE, "size", *_DE_MULTI})
SS_SLOT_NAMES = frozenset({"submissionTime", "intendedRecipient"})
FOLDER_SLOT_NAMES = frozenset({"lastUpdateTime"})
ASSOCIATION_SLOT_NAMES = frozenset(_ASSOC_SINGLE)


# --- ebRIM -> model ---------------------------------------------------------------------------------


def _text(strings: list[_rim.LocalizedString]) -> Text | None:
    return Text(strings[0].value, strings[0].lang, strings[0].charset) if strings else None


def code_of(c: _rim.Classification) -> Code:
    scheme = c.slot(_CODING_SCHEME)
    return Code(
        code=c.node_representation or "",
        scheme=scheme.values[0] if scheme and scheme.values else "",
        display=c.name[0].value if c.name else None,
    )


def _codes(obj: _rim.RimObject, scheme: Scheme) -> list[Code]:
    return [code_of(c) for c in obj.classified(scheme.uuid)]


def _code(obj: _rim.RimObject, scheme: Scheme) -> Code | None:
    codes = _codes(obj, scheme)
    return codes[0] if codes else None


def author_of(c: _rim.Classification) -> Author:
    a = Author()
    for s in c.slots:
        attr = _AUTHOR_SLOTS.get(s.name)
        if attr == "person":
            a.person = s.values[0] if s.values else None
        elif attr is not None:
            getattr(a, attr).extend(s.values)
    return a


def _entry_fields(obj: _rim.RimObject, known: frozenset[str]) -> dict[str, object]:
    return {
        "entry_uuid": obj.id,
        "logical_id": obj.lid,
        "version": obj.version_name,
        "status": obj.status,
        "home": obj.home,
        "extra_slots": [s for s in obj.slots if s.name not in known],
    }


def document_entry(obj: _rim.RimObject) -> DocumentEntry:
    de = DocumentEntry(**_entry_fields(obj, DE_SLOT_NAMES))  # type: ignore[arg-type]
    de.object_type = obj.object_type or DE_STABLE
    de.mime_type = obj.mime_type or ""
    de.title, de.comments = _text(obj.name), _text(obj.description)
    de.patient_id = obj.external_id(IdScheme.DE_PATIENT_ID.uuid) or ""
    de.unique_id = obj.external_id(IdScheme.DE_UNIQUE_ID.uuid) or ""
    de.authors = [author_of(c) for c in obj.classified(Scheme.DE_AUTHOR.uuid)]
    de.class_code = _code(obj, Scheme.DE_CLASS_CODE)
    de.confidentiality_codes = _codes(obj, Scheme.DE_CONFIDENTIALITY_CODE)
    de.event_codes = _codes(obj, Scheme.DE_EVENT_CODE)
    de.format_code = _code(obj, Scheme.DE_FORMAT_CODE)
    de.healthcare_facility_type_code = _code(obj, Scheme.DE_HCFT_CODE)
    de.practice_setting_code = _code(obj, Scheme.DE_PRACTICE_SETTING_CODE)
    de.type_code = _code(obj, Scheme.DE_TYPE_CODE)
    for slot, attr in _DE_SINGLE.items():
        setattr(de, attr, obj.slot_value(slot))
    size = obj.slot_value("size")
    de.size = int(size) if size is not None and size.isdigit() else None
    for slot, attr in _DE_MULTI.items():
        s = obj.slot(slot)
        setattr(de, attr, list(s.values) if s else [])
    return de


def submission_set(obj: _rim.RimObject) -> SubmissionSet:
    ss = SubmissionSet(**_entry_fields(obj, SS_SLOT_NAMES))  # type: ignore[arg-type]
    ss.title, ss.comments = _text(obj.name), _text(obj.description)
    ss.patient_id = obj.external_id(IdScheme.SS_PATIENT_ID.uuid) or ""
    ss.unique_id = obj.external_id(IdScheme.SS_UNIQUE_ID.uuid) or ""
    ss.source_id = obj.external_id(IdScheme.SS_SOURCE_ID.uuid) or ""
    ss.submission_time = obj.slot_value("submissionTime")
    ss.authors = [author_of(c) for c in obj.classified(Scheme.SS_AUTHOR.uuid)]
    ss.content_type_code = _code(obj, Scheme.SS_CONTENT_TYPE_CODE)
    recipients = obj.slot("intendedRecipient")
    ss.intended_recipients = list(recipients.values) if recipients else []
    return ss


def folder(obj: _rim.RimObject) -> Folder:
    fd = Folder(**_entry_fields(obj, FOLDER_SLOT_NAMES))  # type: ignore[arg-type]
    fd.title, fd.comments = _text(obj.name), _text(obj.description)
    fd.patient_id = obj.external_id(IdScheme.FOLDER_PATIENT_ID.uuid) or ""
    fd.unique_id = obj.external_id(IdScheme.FOLDER_UNIQUE_ID.uuid) or ""
    fd.codes = _codes(obj, Scheme.FOLDER_CODE_LIST)
    fd.last_update_time = obj.slot_value("lastUpdateTime")
    return fd


def association(obj: _rim.RimObject) -> Association:
    a = Association(**_entry_fields(obj, ASSOCIATION_SLOT_NAMES))  # type: ignore[arg-type]
    a.association_type = obj.association_type or ""
    a.source, a.target = obj.source or "", obj.target or ""
    for slot, attr in _ASSOC_SINGLE.items():
        setattr(a, attr, obj.slot_value(slot))
    return a


# --- model -> ebRIM ---------------------------------------------------------------------------------


class _Ids:
    """Deterministic ids for nested classifications/external identifiers of one object: ``owner.n`` for a
    symbolic owner; for a ``urn:uuid:`` owner a name-based UUID, since an id that starts with ``urn:uuid:``
    must be a valid UUID (docs/conformance.md §3 rule 2) and ``urn:uuid:X.1`` is not."""

    def __init__(self, owner: str) -> None:
        self._owner, self._n = owner, 0
        self._namespace: uuid.UUID | None = None
        if owner.startswith("urn:uuid:"):
            with contextlib.suppress(ValueError):
                self._namespace = uuid.UUID(owner.removeprefix("urn:uuid:"))

    def __call__(self) -> str:
        self._n += 1
        if self._namespace is not None:
            return f"urn:uuid:{uuid.uuid5(self._namespace, str(self._n))}"
        return f"{self._owner}.{self._n}"


def _strings(t: Text | None) -> list[_rim.LocalizedString]:
    return [_rim.LocalizedString(t.value, t.lang, t.charset)] if t else []


def _slot(name: str, value: str | None) -> list[_rim.Slot]:
    return [_rim.Slot(name, [value])] if value is not None else []


def _coded(ids: _Ids, owner: str, scheme: Scheme, code: Code | None) -> list[_rim.Classification]:
    if code is None:
        return []
    return [
        _rim.Classification(
            id=ids(),
            classified_object=owner,
            scheme=scheme.uuid,
            node_representation=code.code,
            slots=[_rim.Slot(_CODING_SCHEME, [code.scheme])],
            name=[_rim.LocalizedString(code.display)] if code.display is not None else [],
        )
    ]


def _authors(ids: _Ids, owner: str, scheme: Scheme, authors: list[Author]) -> list[_rim.Classification]:
    out = []
    for a in authors:
        slots = _slot("authorPerson", a.person)
        for name, attr in list(_AUTHOR_SLOTS.items())[1:]:
            values = getattr(a, attr)
            if values:
                slots.append(_rim.Slot(name, list(values)))
        out.append(
            _rim.Classification(
                id=ids(), classified_object=owner, scheme=scheme.uuid, node_representation="", slots=slots
            )
        )
    return out


def _ext(ids: _Ids, owner: str, scheme: IdScheme, value: str) -> _rim.ExternalIdentifier:
    return _rim.ExternalIdentifier(id=ids(), registry_object=owner, scheme=scheme.uuid, value=value,
                                   name=scheme.label)


def _base(kind: _rim.Kind, e: Entry) -> _rim.RimObject:
    return _rim.RimObject(kind=kind, id=e.entry_uuid, lid=e.logical_id, status=e.status, home=e.home,
                          version_name=e.version)


def document_entry_to_rim(de: DocumentEntry) -> _rim.RimObject:
    ids, oid = _Ids(de.entry_uuid), de.entry_uuid
    obj = _base(_rim.Kind.EXTRINSIC_OBJECT, de)
    obj.object_type, obj.mime_type = de.object_type, de.mime_type
    for slot, attr in _DE_SINGLE.items():
        obj.slots += _slot(slot, getattr(de, attr))
    obj.slots += _slot("size", str(de.size) if de.size is not None else None)
    for slot, attr in _DE_MULTI.items():
        if getattr(de, attr):
            obj.slots.append(_rim.Slot(slot, list(getattr(de, attr))))
    obj.slots += de.extra_slots
    obj.slots.sort(key=lambda s: s.name)
    obj.name, obj.description = _strings(de.title), _strings(de.comments)
    obj.classifications = [
        *_authors(ids, oid, Scheme.DE_AUTHOR, de.authors),
        *_coded(ids, oid, Scheme.DE_CLASS_CODE, de.class_code),
        *[c for code in de.confidentiality_codes for c in _coded(ids, oid, Scheme.DE_CONFIDENTIALITY_CODE, code)],
        *[c for code in de.event_codes for c in _coded(ids, oid, Scheme.DE_EVENT_CODE, code)],
        *_coded(ids, oid, Scheme.DE_FORMAT_CODE, de.format_code),
        *_coded(ids, oid, Scheme.DE_HCFT_CODE, de.healthcare_facility_type_code),
        *_coded(ids, oid, Scheme.DE_PRACTICE_SETTING_CODE, de.practice_setting_code),
        *_coded(ids, oid, Scheme.DE_TYPE_CODE, de.type_code),
    ]
    obj.external_ids = [
        _ext(ids, oid, IdScheme.DE_PATIENT_ID, de.patient_id),
        _ext(ids, oid, IdScheme.DE_UNIQUE_ID, de.unique_id),
    ]
    return obj


def submission_set_to_rim(ss: SubmissionSet) -> _rim.RimObject:
    ids, oid = _Ids(ss.entry_uuid), ss.entry_uuid
    obj = _base(_rim.Kind.REGISTRY_PACKAGE, ss)
    obj.object_type = OT_REGISTRY_PACKAGE
    obj.slots = [*_slot("submissionTime", ss.submission_time)]
    if ss.intended_recipients:
        obj.slots.append(_rim.Slot("intendedRecipient", list(ss.intended_recipients)))
    obj.slots += ss.extra_slots
    obj.name, obj.description = _strings(ss.title), _strings(ss.comments)
    obj.classifications = [
        *_authors(ids, oid, Scheme.SS_AUTHOR, ss.authors),
        *_coded(ids, oid, Scheme.SS_CONTENT_TYPE_CODE, ss.content_type_code),
        _rim.Classification(id=ids(), classified_object=oid, node=NODE_SUBMISSION_SET),
    ]
    obj.external_ids = [
        _ext(ids, oid, IdScheme.SS_UNIQUE_ID, ss.unique_id),
        _ext(ids, oid, IdScheme.SS_SOURCE_ID, ss.source_id),
        _ext(ids, oid, IdScheme.SS_PATIENT_ID, ss.patient_id),
    ]
    return obj


def folder_to_rim(fd: Folder) -> _rim.RimObject:
    ids, oid = _Ids(fd.entry_uuid), fd.entry_uuid
    obj = _base(_rim.Kind.REGISTRY_PACKAGE, fd)
    obj.object_type = OT_REGISTRY_PACKAGE
    obj.slots = [*_slot("lastUpdateTime", fd.last_update_time), *fd.extra_slots]
    obj.name, obj.description = _strings(fd.title), _strings(fd.comments)
    obj.classifications = [
        *[c for code in fd.codes for c in _coded(ids, oid, Scheme.FOLDER_CODE_LIST, code)],
        _rim.Classification(id=ids(), classified_object=oid, node=NODE_FOLDER),
    ]
    obj.external_ids = [
        _ext(ids, oid, IdScheme.FOLDER_PATIENT_ID, fd.patient_id),
        _ext(ids, oid, IdScheme.FOLDER_UNIQUE_ID, fd.unique_id),
    ]
    return obj


def association_to_rim(a: Association) -> _rim.RimObject:
    obj = _base(_rim.Kind.ASSOCIATION, a)
    obj.association_type, obj.source, obj.target = a.association_type, a.source, a.target
    for slot, attr in _ASSOC_SINGLE.items():
        obj.slots += _slot(slot, getattr(a, attr))
    obj.slots += a.extra_slots
    return obj
