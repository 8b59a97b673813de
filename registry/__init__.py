"""The Document Registry: the XDS metadata model (ebRIM <-> typed; the typed model and its ebRIM writers are
public, so clients build submissions from it), validation with XDS error codes,
the SQL store, and the registry transactions (ITI-42 now; ITI-18 and ITI-57 build on the same store)."""

from registry._autocommit import AutocommitConnections
from registry._bulk import BulkReport, SubmissionOutcome
from registry._catalogue import Problem
from registry._direct import DirectStatement, prepared_statement
from registry._errors import (
    ErrorCode,
    RegistryError,
    RegistryResponse,
    ResponseStatus,
    Severity,
    SubmissionRefused,
)
from registry._hl7 import CX, check_nir, patient_key
from registry._model import (
    Association,
    Author,
    Code,
    DocumentEntry,
    SubmissionSet,
    Text,
    association_to_rim,
    document_entry_to_rim,
    submission_set_to_rim,
)
from registry._model import document_entry as document_entry_from_rim
from registry._profile import MetadataProfile
from registry._query import PatientMismatch, adhoc_query_response
from registry._registry import PatientError, Recorder, Registry, StoredDocument, now_dtm
from registry._response import parse_registry_response, registry_response
from registry._rim import Kind, RimObject, RimSubmission, Slot, read_registry_object_list
from registry._rim_write import submit_objects_request
from registry._store import Store, failure_summary
from registry._visibility import (
    DocumentFacts,
    DocumentFilter,
    NewVersion,
    Origin,
    StatusChange,
    content_changed,
    describe_update,
    submission_patient,
    submitted_documents,
)
from registry._vocabulary import DE_ON_DEMAND, DE_STABLE, REPLACEMENTS, IdScheme, Status

__all__ = [
    "CX",
    "DE_ON_DEMAND",
    "DE_STABLE",
    "REPLACEMENTS",
    "Association",
    "Author",
    "AutocommitConnections",
    "BulkReport",
    "Code",
    "DirectStatement",
    "DocumentEntry",
    "DocumentFacts",
    "DocumentFilter",
    "ErrorCode",
    "IdScheme",
    "Kind",
    "MetadataProfile",
    "NewVersion",
    "Origin",
    "PatientError",
    "PatientMismatch",
    "Problem",
    "Recorder",
    "Registry",
    "RegistryError",
    "RegistryResponse",
    "ResponseStatus",
    "RimObject",
    "RimSubmission",
    "Severity",
    "Slot",
    "Status",
    "StatusChange",
    "Store",
    "StoredDocument",
    "SubmissionOutcome",
    "SubmissionRefused",
    "SubmissionSet",
    "Text",
    "adhoc_query_response",
    "association_to_rim",
    "check_nir",
    "content_changed",
    "describe_update",
    "document_entry_from_rim",
    "document_entry_to_rim",
    "failure_summary",
    "now_dtm",
    "parse_registry_response",
    "patient_key",
    "prepared_statement",
    "read_registry_object_list",
    "registry_response",
    "submission_patient",
    "submission_set_to_rim",
    "submit_objects_request",
    "submitted_documents",
]
