"""The Document Registry: the XDS metadata model (ebRIM <-> typed), validation with XDS error codes,
the SQL store, and the registry transactions (ITI-42 now; ITI-18 and ITI-57 build on the same store)."""

from registry._bulk import BulkReport, SubmissionOutcome
from registry._catalogue import Problem
from registry._errors import (
    ErrorCode,
    RegistryError,
    RegistryResponse,
    ResponseStatus,
    Severity,
    SubmissionRefused,
)
from registry._hl7 import CX, check_nir, patient_key
from registry._profile import MetadataProfile
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
    "BulkReport",
    "ErrorCode",
    "IdScheme",
    "Kind",
    "MetadataProfile",
    "PatientError",
    "Problem",
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
    "check_nir",
    "now_dtm",
    "parse_registry_response",
    "patient_key",
    "read_registry_object_list",
    "registry_response",
    "submit_objects_request",
]
