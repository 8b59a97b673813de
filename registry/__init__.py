"""The Document Registry: the XDS metadata model (ebRIM <-> typed; the typed model and its ebRIM writers are
public, so clients build submissions from it), validation with XDS error codes,
the SQL store, and the registry transactions (ITI-42 now; ITI-18 and ITI-57 build on the same store)."""

from registry._bulk import BulkReport, SubmissionOutcome
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
from registry._registry import PatientError, Registry, StoredDocument, now_dtm
from registry._response import parse_registry_response, registry_response
from registry._rim import Kind, RimObject, RimSubmission, Slot, read_registry_object_list
from registry._rim_write import submit_objects_request
from registry._store import Store
from registry._vocabulary import DE_ON_DEMAND, DE_STABLE, IdScheme, Status

__all__ = [
    "CX",
    "DE_ON_DEMAND",
    "DE_STABLE",
    "Association",
    "Author",
    "BulkReport",
    "Code",
    "DocumentEntry",
    "ErrorCode",
    "IdScheme",
    "Kind",
    "PatientError",
    "Registry",
    "RegistryError",
    "RegistryResponse",
    "ResponseStatus",
    "RimObject",
    "RimSubmission",
    "Severity",
    "Slot",
    "Status",
    "Store",
    "StoredDocument",
    "SubmissionOutcome",
    "SubmissionRefused",
    "SubmissionSet",
    "Text",
    "association_to_rim",
    "check_nir",
    "document_entry_from_rim",
    "document_entry_to_rim",
    "now_dtm",
    "parse_registry_response",
    "patient_key",
    "read_registry_object_list",
    "registry_response",
    "submission_set_to_rim",
    "submit_objects_request",
]
