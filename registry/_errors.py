"""XDS error codes, severities and response statuses (ITI TF-3 4.2.4, ebRS 3.0) as closed enums."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from registry._catalogue import Problem


class ErrorCode(enum.Enum):
    """Every errorCode this node may emit (ITI TF-3 Table 4.2.4.1-2)."""

    REGISTRY_ERROR = "XDSRegistryError"
    REPOSITORY_ERROR = "XDSRepositoryError"
    REGISTRY_METADATA_ERROR = "XDSRegistryMetadataError"
    REPOSITORY_METADATA_ERROR = "XDSRepositoryMetadataError"
    MISSING_DOCUMENT = "XDSMissingDocument"
    MISSING_DOCUMENT_METADATA = "XDSMissingDocumentMetadata"
    UNKNOWN_PATIENT_ID = "XDSUnknownPatientId"
    PATIENT_ID_DOES_NOT_MATCH = "XDSPatientIdDoesNotMatch"
    DUPLICATE_UNIQUE_ID_IN_REGISTRY = "XDSDuplicateUniqueIdInRegistry"
    NON_IDENTICAL_HASH = "XDSNonIdenticalHash"
    NON_IDENTICAL_SIZE = "XDSNonIdenticalSize"
    REGISTRY_DUPLICATE_UNIQUE_ID_IN_MESSAGE = "XDSRegistryDuplicateUniqueIdInMessage"
    REPOSITORY_DUPLICATE_UNIQUE_ID_IN_MESSAGE = "XDSRepositoryDuplicateUniqueIdInMessage"
    REGISTRY_DEPRECATED_DOCUMENT_ERROR = "XDSRegistryDeprecatedDocumentError"
    REGISTRY_NOT_AVAILABLE = "XDSRegistryNotAvailable"
    REGISTRY_BUSY = "XDSRegistryBusy"
    REPOSITORY_BUSY = "XDSRepositoryBusy"
    REGISTRY_OUT_OF_RESOURCES = "XDSRegistryOutOfResources"
    REPOSITORY_OUT_OF_RESOURCES = "XDSRepositoryOutOfResources"
    EXTRA_METADATA_NOT_SAVED = "XDSExtraMetadataNotSaved"
    TOO_MANY_RESULTS = "XDSTooManyResults"
    STORED_QUERY_MISSING_PARAM = "XDSStoredQueryMissingParam"
    STORED_QUERY_PARAM_NUMBER = "XDSStoredQueryParamNumber"
    UNKNOWN_STORED_QUERY = "XDSUnknownStoredQuery"
    RESULT_NOT_SINGLE_PATIENT = "XDSResultNotSinglePatient"
    UNKNOWN_REPOSITORY_ID = "XDSUnknownRepositoryId"
    DOCUMENT_UNIQUE_ID_ERROR = "XDSDocumentUniqueIdError"
    METADATA_UPDATE_ERROR = "XDSMetadataUpdateError"
    METADATA_VERSION_ERROR = "XDSMetadataVersionError"
    METADATA_UPDATE_OPERATION_ERROR = "XDSMetadataUpdateOperationError"
    PATIENT_ID_RECONCILIATION_ERROR = "XDSPatientIDReconciliationError"
    UNRESOLVED_REFERENCE = "UnresolvedReferenceException"


class Severity(enum.Enum):
    ERROR = "urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Error"
    WARNING = "urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Warning"


class ResponseStatus(enum.Enum):
    SUCCESS = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success"
    FAILURE = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Failure"
    PARTIAL_SUCCESS = "urn:ihe:iti:2007:ResponseStatusType:PartialSuccess"


@dataclass(frozen=True)
class RegistryError:
    """One ``rs:RegistryError``: ``context`` is the human message (codeContext, required), ``location``
    names the object (its id as submitted, and the uniqueId when known). ``problem``: the catalogue member
    it was made from (``registry._catalogue``), None for one read from another registry's answer."""

    code: ErrorCode
    context: str
    location: str | None = None
    severity: Severity = Severity.ERROR
    problem: Problem | None = field(default=None, compare=False)


@dataclass(frozen=True)
class RegistryResponse:
    status: ResponseStatus
    errors: tuple[RegistryError, ...] = ()

    @classmethod
    def of(cls, errors: list[RegistryError] | tuple[RegistryError, ...]) -> RegistryResponse:
        """Failure if any error has Error severity, else Success (warnings kept) — ITI TF-3 4.2.4.1."""
        failed = any(e.severity is Severity.ERROR for e in errors)
        return cls(ResponseStatus.FAILURE if failed else ResponseStatus.SUCCESS, tuple(errors))

    @property
    def ok(self) -> bool:
        return self.status is ResponseStatus.SUCCESS


class SubmissionRefused(Exception):
    """Raised inside a registry transaction to roll it back; carries every error found."""

    def __init__(self, errors: list[RegistryError]) -> None:
        super().__init__("; ".join(f"{e.code.value}: {e.context}" for e in errors))
        self.errors = errors
