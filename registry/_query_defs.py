"""The stored queries and their parameters (ITI TF-2a §3.18.4.1.2.3.7, ITI TF-2b 3.51), as data.

Each parameter has a value kind (how its values are checked and decoded), whether it is required,
whether it takes several values, and whether its Slot may repeat (AND of OR-groups). ``one_of`` groups
need exactly one member present."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class V(enum.Enum):
    PATIENT = "patient id (CX)"
    STATUS = "status"
    CODE = "code^^scheme"
    DTM = "DTM"
    LIKE = "string with % and _ wildcards"
    STRING = "string"
    UUID = "urn:uuid:"


@dataclass(frozen=True)
class Param:
    name: str
    kind: V
    required: bool = False
    multi: bool = False
    and_or: bool = False


@dataclass(frozen=True)
class QueryDef:
    name: str
    uuid: str
    params: tuple[Param, ...]
    one_of: tuple[tuple[str, ...], ...] = ()
    at_least_one_of: tuple[str, ...] = ()
    multi_patient: bool = False

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)


def _de_filters(*, patient_multi: bool = False, patient_required: bool = True) -> tuple[Param, ...]:
    de = "$XDSDocumentEntry"
    return (
        Param(f"{de}PatientId", V.PATIENT, required=patient_required, multi=patient_multi),
        Param(f"{de}Status", V.STATUS, required=True, multi=True),
        *(Param(f"{de}{n}", V.CODE, multi=True) for n in
          ("ClassCode", "TypeCode", "PracticeSettingCode", "HealthcareFacilityTypeCode", "FormatCode")),
        Param(f"{de}EventCodeList", V.CODE, multi=True, and_or=True),
        Param(f"{de}ConfidentialityCode", V.CODE, multi=True, and_or=True),
        Param(f"{de}AuthorPerson", V.LIKE, multi=True),
        Param(f"{de}Type", V.STRING, multi=True),
        *(Param(f"{de}{n}", V.DTM) for n in
          ("CreationTimeFrom", "CreationTimeTo", "ServiceStartTimeFrom", "ServiceStartTimeTo",
           "ServiceStopTimeFrom", "ServiceStopTimeTo")),
    )


_CONTENT_FILTERS = (
    Param("$XDSDocumentEntryFormatCode", V.CODE, multi=True),
    Param("$XDSDocumentEntryConfidentialityCode", V.CODE, multi=True, and_or=True),
    Param("$XDSDocumentEntryType", V.STRING, multi=True),
)
_REFERENCE_IDS = Param("$XDSDocumentEntryReferenceIdList", V.STRING, required=True, multi=True, and_or=True)
_FOLDER_FILTERS = (
    Param("$XDSFolderLastUpdateTimeFrom", V.DTM),
    Param("$XDSFolderLastUpdateTimeTo", V.DTM),
    Param("$XDSFolderCodeList", V.CODE, multi=True, and_or=True),
)

QUERIES: tuple[QueryDef, ...] = (
    QueryDef("FindDocuments", "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d", _de_filters()),
    QueryDef("FindDocumentsByReferenceId", "urn:uuid:12941a89-e02e-4be5-967c-ce4bfc8fe492",
             (*_de_filters(), _REFERENCE_IDS)),
    QueryDef("FindSubmissionSets", "urn:uuid:f26abbcb-ac74-4422-8a30-edb644bbc1a9", (
        Param("$XDSSubmissionSetPatientId", V.PATIENT, required=True),
        Param("$XDSSubmissionSetStatus", V.STATUS, required=True, multi=True),
        Param("$XDSSubmissionSetSourceId", V.STRING, multi=True),
        Param("$XDSSubmissionSetSubmissionTimeFrom", V.DTM),
        Param("$XDSSubmissionSetSubmissionTimeTo", V.DTM),
        Param("$XDSSubmissionSetAuthorPerson", V.LIKE),
        Param("$XDSSubmissionSetContentType", V.CODE, multi=True),
    )),
    QueryDef("FindFolders", "urn:uuid:958f3006-baad-4929-a4de-ff1114824431", (
        Param("$XDSFolderPatientId", V.PATIENT, required=True),
        Param("$XDSFolderStatus", V.STATUS, required=True, multi=True),
        *_FOLDER_FILTERS,
    )),
    QueryDef("GetAll", "urn:uuid:10b545ea-725c-446d-9b95-8aeb444eddf3", (
        Param("$patientId", V.PATIENT, required=True),
        Param("$XDSDocumentEntryStatus", V.STATUS, required=True, multi=True),
        Param("$XDSSubmissionSetStatus", V.STATUS, required=True, multi=True),
        Param("$XDSFolderStatus", V.STATUS, required=True, multi=True),
        *_CONTENT_FILTERS,
    )),
    QueryDef("GetDocuments", "urn:uuid:5c4f972b-d56b-40ac-a5fc-c8ca9b40b9d4", (
        Param("$XDSDocumentEntryEntryUUID", V.UUID, multi=True),
        Param("$XDSDocumentEntryUniqueId", V.STRING, multi=True),
        Param("$XDSDocumentEntryLogicalID", V.UUID, multi=True),
        Param("$MetadataLevel", V.STRING),
    ), one_of=(("$XDSDocumentEntryEntryUUID", "$XDSDocumentEntryUniqueId", "$XDSDocumentEntryLogicalID"),)),
    QueryDef("GetFolders", "urn:uuid:5737b14c-8a1a-4539-b659-e03a34a5e1e4", (
        Param("$XDSFolderEntryUUID", V.UUID, multi=True),
        Param("$XDSFolderUniqueId", V.STRING, multi=True),
        Param("$XDSFolderLogicalID", V.UUID, multi=True),
    ), one_of=(("$XDSFolderEntryUUID", "$XDSFolderUniqueId", "$XDSFolderLogicalID"),)),
    QueryDef("GetAssociations", "urn:uuid:a7ae438b-4bc2-4642-93e9-be891f7bb155", (
        Param("$uuid", V.UUID, required=True, multi=True),
    )),
    QueryDef("GetDocumentsAndAssociations", "urn:uuid:bab9529a-4a10-40b3-a01f-f68a615d247a", (
        Param("$XDSDocumentEntryEntryUUID", V.UUID, multi=True),
        Param("$XDSDocumentEntryUniqueId", V.STRING, multi=True),
    ), one_of=(("$XDSDocumentEntryEntryUUID", "$XDSDocumentEntryUniqueId"),)),
    QueryDef("GetSubmissionSets", "urn:uuid:51224314-5390-4169-9b91-b1980040715a", (
        Param("$uuid", V.UUID, required=True, multi=True),
    )),
    QueryDef("GetSubmissionSetAndContents", "urn:uuid:e8e3cb2c-e39c-46b9-99e4-c12f57260b83", (
        Param("$XDSSubmissionSetEntryUUID", V.UUID),
        Param("$XDSSubmissionSetUniqueId", V.STRING),
        *_CONTENT_FILTERS,
    ), one_of=(("$XDSSubmissionSetEntryUUID", "$XDSSubmissionSetUniqueId"),)),
    QueryDef("GetFolderAndContents", "urn:uuid:b909a503-523d-4517-8acf-8e5834dfc4c7", (
        Param("$XDSFolderEntryUUID", V.UUID),
        Param("$XDSFolderUniqueId", V.STRING),
        *_CONTENT_FILTERS,
    ), one_of=(("$XDSFolderEntryUUID", "$XDSFolderUniqueId"),)),
    QueryDef("GetFoldersForDocument", "urn:uuid:10cae35a-c7f9-4cf5-b61e-fc3278ffb578", (
        Param("$XDSDocumentEntryEntryUUID", V.UUID),
        Param("$XDSDocumentEntryUniqueId", V.STRING),
    ), one_of=(("$XDSDocumentEntryEntryUUID", "$XDSDocumentEntryUniqueId"),)),
    QueryDef("GetRelatedDocuments", "urn:uuid:d90e5407-b356-4d91-a89f-873917b4b0e6", (
        Param("$XDSDocumentEntryEntryUUID", V.UUID),
        Param("$XDSDocumentEntryUniqueId", V.STRING),
        Param("$AssociationTypes", V.STRING, required=True, multi=True),
        Param("$XDSDocumentEntryType", V.STRING, multi=True),
    ), one_of=(("$XDSDocumentEntryEntryUUID", "$XDSDocumentEntryUniqueId"),)),
    QueryDef("FindDocumentsForMultiplePatients", "urn:uuid:3d1bdb10-39a2-11de-89c2-2f44d94eaa9f",
             _de_filters(patient_multi=True, patient_required=False), multi_patient=True,
             at_least_one_of=("$XDSDocumentEntryPatientId", "$XDSDocumentEntryClassCode",
                              "$XDSDocumentEntryEventCodeList", "$XDSDocumentEntryHealthcareFacilityTypeCode")),
    QueryDef("FindFoldersForMultiplePatients", "urn:uuid:50d3f5ac-39a2-11de-a1ca-b366239e58df", (
        Param("$XDSFolderPatientId", V.PATIENT, multi=True),
        Param("$XDSFolderStatus", V.STATUS, required=True, multi=True),
        *_FOLDER_FILTERS,
    ), multi_patient=True, at_least_one_of=("$XDSFolderPatientId", "$XDSFolderCodeList")),
    QueryDef("FindDocumentsByReferenceIdForMultiplePatients", "urn:uuid:1191642d-86c4-42d8-b784-f95445f9f0d5",
             (*_de_filters(patient_multi=True, patient_required=False), _REFERENCE_IDS), multi_patient=True),
)

QUERY_BY_UUID: dict[str, QueryDef] = {q.uuid: q for q in QUERIES}
