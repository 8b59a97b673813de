"""The catalogue of the registry's and the repository's refusals: each member binds one message template to
its XDS error code (ITI TF-3 Table 4.2.4.1-2), as ``pki.VihfRefusal`` does for VIHF refusals. A
``RegistryError`` made from a member keeps it (``RegistryError.problem``), so tests assert members, not
English; over the wire, :meth:`Problem.matches` recognises a member's codeContext."""

from __future__ import annotations

import enum
import re
import string
from functools import cached_property

from registry._errors import ErrorCode, RegistryError

_META = ErrorCode.REGISTRY_METADATA_ERROR
_REPO_META = ErrorCode.REPOSITORY_METADATA_ERROR
_UPDATE = ErrorCode.METADATA_UPDATE_ERROR


class Problem(enum.Enum):
    """(XDS error code, codeContext template with ``{named}`` fields)."""

    # --- structure of a submission (ITI TF-3 4.2; docs/conformance.md §3) -----------------------------------
    RIM_ELEMENT_NOT_ALLOWED = (_META, "element rim:{element} is not allowed in a submission's RegistryObjectList")
    SUBMISSION_SET_COUNT = (_META, "a submission must contain exactly one SubmissionSet, found {count}")
    TOP_CLASSIFICATION_WITHOUT_NODE = (_META, "a top-level Classification must carry a classificationNode")
    CLASSIFIED_OBJECT_NOT_A_PACKAGE = (ErrorCode.UNRESOLVED_REFERENCE, "Classification {classification} "
                                       "classifies '{target}', which is no RegistryPackage of this submission")
    LIMITED_METADATA = (_META, "limited metadata (XDR/XDM) is not accepted by an XDS registry")
    PACKAGE_BOTH_KINDS = (_META, "a RegistryPackage cannot be both a SubmissionSet and a Folder")
    PACKAGE_UNCLASSIFIED = (_META, "RegistryPackage is classified neither as SubmissionSet ({submission_set_node}) "
                                   "nor as Folder ({folder_node})")
    NESTED_CLASSIFICATION_ELSEWHERE = (_META, "Classification {classification} nested in {owner} classifies "
                                              "'{target}'")
    NESTED_IDENTIFIER_ELSEWHERE = (_META, "ExternalIdentifier {identifier} nested in {owner} refers to '{target}'")
    ID_MISSING = (_META, "an object has no id attribute")
    ID_NOT_A_UUID = (_META, "id '{id}' starts with urn:uuid: but is not a valid UUID")
    ID_REPEATED = (_META, "id '{id}' is used by {count} objects in this submission")
    # --- slots, identifiers, codes, authors, titles -----------------------------------------------------
    SLOT_REPEATED = (_META, "slot '{slot}' appears {count} times")
    SLOT_WITHOUT_NAME = (_META, "a Slot has no name")
    SLOT_RESERVED_PREFIX = (ErrorCode.REGISTRY_ERROR, "slot '{slot}' uses the reserved urn:ihe: prefix but is "
                                                      "not defined by IHE")
    SLOT_VALUE_TOO_LONG = (_META, "slot '{slot}' has a value longer than 256 characters")
    SLOT_MISSING = (_META, "required slot '{slot}' is missing")
    SLOT_VALUE_COUNT = (_META, "slot '{slot}' must have exactly one value, found {count}")
    VALUE_INVALID = (_META, "{attribute}: {reason}")
    IDENTIFIER_MISSING = (_META, "required ExternalIdentifier {label} ({scheme}) is missing")
    IDENTIFIER_REPEATED = (_META, "ExternalIdentifier {label} appears {count} times")
    IDENTIFIER_TOO_LONG = (_META, "{label}: value longer than 256 characters")
    CODE_COUNT = (_META, "{attribute} ({scheme}): {expected} expected, found {count}")
    CODE_EMPTY = (_META, "{attribute}: Classification {classification} has an empty nodeRepresentation (the code)")
    CODE_TOO_LONG = (_META, "{attribute}: code longer than 256 characters")
    CODING_SCHEME_COUNT = (_META, "{attribute}: Classification {classification} needs exactly one codingScheme "
                                  "value")
    AUTHOR_NODE_REPRESENTATION = (_META, 'author Classification {classification} must have nodeRepresentation=""')
    AUTHOR_EMPTY = (_META, "author Classification {classification} needs authorPerson, authorInstitution or "
                           "authorTelecommunication")
    AUTHOR_PERSON_COUNT = (_META, "authorPerson must have exactly one value, found {count}")
    CLASSIFICATION_WITHOUT_SCHEME = (_META, "Classification {classification} has neither classificationScheme "
                                            "nor classificationNode")
    SCHEME_NOT_APPLICABLE = (_META, "Classification {classification}: scheme {attribute} ({scheme}) does not "
                                    "apply to this object")
    TITLE_MISSING = (_META, "title (rim:Name) is required")
    TITLE_LOCALIZED_COUNT = (_META, "title (rim:Name) must have one LocalizedString")
    TITLE_TOO_LONG = (_META, "title longer than 128 characters ({length})")
    # --- DocumentEntry, SubmissionSet ---------------------------------------------------------------------
    OBJECT_TYPE_MISSING = (_META, "objectType is required on a DocumentEntry")
    OBJECT_TYPE_UNKNOWN = (_META, "objectType '{object_type}' is neither the stable ({stable}) nor the "
                                  "on-demand ({on_demand}) DocumentEntry type")
    MIME_TYPE_MISSING = (_META, "mimeType is required on a DocumentEntry")
    MIME_TYPE_TOO_LONG = (_META, "mimeType longer than 256 characters")
    MIME_TYPE_INVALID = (_META, "mimeType '{value}' is not of the form type/subtype")
    SERVICE_TIMES_REVERSED = (_META, "serviceStartTime {start} is after serviceStopTime {stop}")
    SOURCE_PATIENT_INFO_FORM = (_META, "sourcePatientInfo value '{value}' is not of the form PID-n|value")
    SOURCE_PATIENT_INFO_PROHIBITED = (_META, "sourcePatientInfo must not carry {field}")
    INTENDED_RECIPIENT_EMPTY = (_META, "intendedRecipient '{value}' is empty")
    # --- associations and membership (ITI TF-3 4.1.4-4.1.8) ---------------------------------------------
    ASSOCIATION_WITHOUT_SOURCE = (_META, "Association has no sourceObject")
    ASSOCIATION_WITHOUT_TARGET = (_META, "Association has no targetObject")
    ASSOCIATION_TYPE_UNKNOWN = (_META, "associationType '{association_type}' is not an XDS association type")
    UPDATE_ASSOCIATION_IN_REGISTRATION = (_META, "{association_type} associations belong to ITI-57 Update "
                                                 "Document Set, not to a registration")
    SUBMISSION_SET_IN_SUBMISSION_SET = (_META, "HasMember association {association} links SubmissionSet "
                                               "'{source}' to SubmissionSet '{target}': a SubmissionSet cannot "
                                               "be a member of a SubmissionSet")
    HAS_MEMBER_WITH_DOCUMENTATION = (_META, "a HasMember association must not carry an associationDocumentation")
    SUBMISSION_SET_STATUS_COUNT = (_META, "SubmissionSet HasMember of a DocumentEntry needs exactly one "
                                          "SubmissionSetStatus value")
    SUBMISSION_SET_STATUS_UNKNOWN = (_META, "SubmissionSetStatus '{status}' is neither Original nor Reference")
    RELATIONSHIP_SOURCE_NOT_IN_SUBMISSION = (_META, "the source of a {association_type} association must be a "
                                                    "DocumentEntry of this submission, '{source}' is not")
    NOT_A_MEMBER = (_META, "{kind} {object} is not a member of the SubmissionSet (HasMember association missing)")
    FOLDER_MEMBERSHIP_NOT_A_MEMBER = (_META, "Folder membership {association} is not a member of the "
                                             "SubmissionSet (SubmissionSet HasMember of the association missing)")
    PATIENT_ID_DIFFERS = (ErrorCode.PATIENT_ID_DOES_NOT_MATCH,
                          "{label} '{patient_id}' differs from the SubmissionSet's patientId "
                          "'{submission_set_patient_id}'")
    UNIQUE_ID_TWICE_IN_MESSAGE = (ErrorCode.REGISTRY_DUPLICATE_UNIQUE_ID_IN_MESSAGE,
                                  "uniqueId '{unique_id}' is used by both {first} and {second}")
    # --- against the registry's content (ITI TF-3 4.1, Table 4.2.4.1-2) ---------------------------------
    PATIENT_UNKNOWN = (ErrorCode.UNKNOWN_PATIENT_ID, "patientId '{patient_id}' is not known to this registry")
    PATIENT_CLOSED = (ErrorCode.UNKNOWN_PATIENT_ID, "patientId '{patient_id}' is not known to this registry "
                                                    "(dossier closed)")
    ID_TAKEN = (_META, "id '{id}' is already used by an object in the registry")
    UNIQUE_ID_REGISTERED = (ErrorCode.DUPLICATE_UNIQUE_ID_IN_REGISTRY, "uniqueId '{unique_id}' is already registered")
    REGISTERED_WITH_OTHER_HASH = (ErrorCode.NON_IDENTICAL_HASH, "document uniqueId '{unique_id}' is already "
                                                                "registered with hash {registered}, this submission "
                                                                "has {sent}")
    REGISTERED_WITH_OTHER_SIZE = (ErrorCode.NON_IDENTICAL_SIZE, "document uniqueId '{unique_id}' is already "
                                                                "registered with size {registered}, this submission "
                                                                "has {sent}")
    REFERENCE_UNRESOLVED = (ErrorCode.UNRESOLVED_REFERENCE, "{end} '{reference}' of association {association} is "
                                                            "neither in this submission nor in the registry")
    ASSOCIATION_ACROSS_PATIENTS = (ErrorCode.PATIENT_ID_DOES_NOT_MATCH,
                                   "association {association} links objects of different patients "
                                   "('{registered}' in the registry, '{submitted}' in this submission)")
    RELATIONSHIP_TARGET_NOT_A_DOCUMENT = (_META, "target '{target}' of {association} is not a DocumentEntry")
    RELATIONSHIP_TARGET_DEPRECATED = (ErrorCode.REGISTRY_DEPRECATED_DOCUMENT_ERROR,
                                      "target '{target}' of {association} is Deprecated and cannot be replaced, "
                                      "appended or transformed")
    REPLACED_NOT_APPROVED = (_META, "target '{target}' of {association} has status {status}; only Approved "
                                    "documents can be replaced")
    MEMBER_OF_WRONG_KIND = (_META, "SubmissionSet member '{target}' is not a DocumentEntry, Folder or Association")
    FOLDER_NOT_APPROVED = (_META, "Folder '{folder}' has status {status}; documents can only be added to Approved "
                                  "Folders")
    ORIGINAL_NOT_IN_SUBMISSION = (_META, "SubmissionSetStatus Original but '{target}' is not in this submission")
    REFERENCE_IN_SUBMISSION = (_META, "SubmissionSetStatus Reference but '{target}' is in this submission")
    REGISTERED_CONCURRENTLY = (ErrorCode.DUPLICATE_UNIQUE_ID_IN_REGISTRY, "an object of this submission was "
                                                                          "registered concurrently by another "
                                                                          "submission")
    VALUE_DOES_NOT_FIT_STORAGE = (_META, "a metadata value does not fit this registry's storage ({reason}); nothing "
                                         "was registered")
    DATABASE_UNAVAILABLE_IN_BATCH = (ErrorCode.REGISTRY_ERROR, "the registry database is unavailable ({failure}); "
                                                               "nothing of this batch was registered")
    # --- the DMP metadata profile (docs/conformance.md §7) ----------------------------------------------
    CODE_NOT_IN_VALUE_SET = (_META, "{attribute} '{code}' (codingScheme {scheme}) is not in {value_set}")
    TYPE_NOT_IN_CLASS = (_META, "typeCode '{type_code}' belongs to classCode '{expected}' ({correspondence}), "
                                "not to classCode '{class_code}'")
    HL7_CONFIDENTIALITY_COUNT = (_META, "confidentialityCode: exactly one HL7 confidentiality code (N, R or V, "
                                        "codingScheme {scheme}) expected, found {count}{codes}")
    # --- ITI-57 Update Document Set (ITI TF-3 4.1.10; docs/conformance.md §8) ---------------------------
    UPDATE_ASSOCIATION_SOURCE = (_UPDATE, "the source of a {association_type} association must be the "
                                          "SubmissionSet")
    SUBMIT_ASSOCIATION_TARGET = (_UPDATE, "SubmitAssociation {association} must target an Association of this "
                                          "request")
    STATUS_SLOT_COUNT = (_UPDATE, "UpdateAvailabilityStatus needs exactly one {slot} value")
    STATUS_UNKNOWN = (_UPDATE, "{slot} '{status}' is not an availability status")
    UPDATE_NOT_A_NEW_VERSION = (_UPDATE, "{object}: an ITI-57 request can only carry new versions of existing "
                                         "objects (its lid must name the logical object being updated)")
    UPDATE_LID_NOT_A_UUID = (_UPDATE, "{object}: lid '{lid}' is not a urn:uuid: logical id")
    UPDATE_LOGICAL_OBJECT_UNKNOWN = (ErrorCode.METADATA_VERSION_ERROR, "{object}: no {kind} with logical id {lid} "
                                                                       "in the registry")
    UPDATE_LATEST_NOT_APPROVED = (_UPDATE, "{object}: the latest version ({version}) of {lid} has status {status}; "
                                           "only an Approved version can be updated")
    UPDATE_PREVIOUS_VERSION = (ErrorCode.METADATA_VERSION_ERROR, "{object}: PreviousVersion is {previous} but the "
                                                                 "latest version of {lid} is {version}")
    UPDATE_UNIQUE_ID_CHANGED = (_UPDATE, "{object}: uniqueId cannot change in an update (was {unique_id})")
    UPDATE_PATIENT_CHANGED = (ErrorCode.PATIENT_ID_RECONCILIATION_ERROR, "{object}: patientId cannot change in an "
                                                                         "update (was {patient})")
    UPDATE_OBJECT_TYPE_CHANGED = (_UPDATE, "{object}: objectType cannot change in an update (was {object_type})")
    UPDATE_REPOSITORY_ATTRIBUTE_CHANGED = (_UPDATE, "{object}: {slot} cannot change in an update (was {stored}, "
                                                    "received {sent})")
    STATUS_TARGET_UNKNOWN = (_UPDATE, "{association}: target '{target}' is not in the registry")
    STATUS_TARGET_NOT_LATEST = (_UPDATE, "{association}: '{target}' is not the latest version of {lid}")
    STATUS_OF_SUBMISSION_SET_MEMBERSHIP = (_UPDATE, "{association}: a SubmissionSet's HasMember association "
                                                    "cannot change status")
    STATUS_OF_SUBMISSION_SET = (_UPDATE, "{association}: the status of a SubmissionSet cannot be updated")
    ORIGINAL_STATUS_MISMATCH = (_UPDATE, "{association}: OriginalStatus {original} does not match the current "
                                         "status {status} of '{target}'")
    STATUS_CHANGE_NOT_ALLOWED = (ErrorCode.METADATA_UPDATE_OPERATION_ERROR, "{association}: status change "
                                                                            "{original} -> {new} is not allowed")
    SUBMITTED_ASSOCIATION_TO_SUBMISSION_SET = (_UPDATE, "{association}: a submitted association cannot link a "
                                                        "SubmissionSet")
    SUBMITTED_ASSOCIATION_TO_DEPRECATED = (_UPDATE, "{association}: '{target}' is Deprecated")
    # --- registry requests (ITI TF-2b 3.42, 3.57) and the database -------------------------------------
    NOT_A_SUBMIT_OBJECTS_REQUEST = (_META, "expected lcm:SubmitObjectsRequest, received {element}")
    DATABASE_UNAVAILABLE = (ErrorCode.REGISTRY_ERROR, "the registry database is unavailable; nothing was registered")
    DATABASE_UNAVAILABLE_FOR_QUERY = (ErrorCode.REGISTRY_ERROR, "the registry database is unavailable")
    # --- the consent checker's refusals that are XDS errors (docs/consent.md "On the wire") ----------------
    PATIENT_WITHOUT_DMP = (ErrorCode.UNKNOWN_PATIENT_ID, "patient {patient} has no DMP on this node")
    CONSENT_UNAVAILABLE = (ErrorCode.REGISTRY_ERROR, "the DMP's consent state (database) is unavailable: nothing "
                                                     "was read or stored")
    # --- stored queries, ITI-18 and ITI-51 (ITI TF-2a 3.18.4.1.2.3; docs/conformance.md §6) -------------
    NOT_AN_ADHOC_QUERY = (ErrorCode.REGISTRY_ERROR, "expected query:AdhocQueryRequest, received {element}")
    RETURN_TYPE_UNSUPPORTED = (ErrorCode.REGISTRY_ERROR, "returnType '{return_type}' is not supported by stored "
                                                         "queries; use LeafClass or ObjectRef")
    QUERY_WITHOUT_ID = (ErrorCode.UNKNOWN_STORED_QUERY, "AdhocQueryRequest holds no rim:AdhocQuery with an id")
    QUERY_UNKNOWN = (ErrorCode.UNKNOWN_STORED_QUERY, "stored query id '{query_id}' is not supported")
    QUERY_OF_OTHER_TRANSACTION = (ErrorCode.UNKNOWN_STORED_QUERY, "stored query {query} is not served by this "
                                                                  "transaction ({transaction} carries it)")
    LIST_NOT_CLOSED = (ErrorCode.REGISTRY_ERROR, "{param}: list {text} is not closed by ')'")
    VALUE_EMPTY = (ErrorCode.REGISTRY_ERROR, "{param}: empty value")
    LIST_UNTERMINATED_QUOTE = (ErrorCode.REGISTRY_ERROR, "{param}: unterminated quote in ({inner})")
    LIST_MALFORMED = (ErrorCode.REGISTRY_ERROR, "{param}: malformed list ({inner})")
    LIST_COMMA_EXPECTED = (ErrorCode.REGISTRY_ERROR, "{param}: expected ',' in list ({inner})")
    LIST_TRAILING_COMMA = (ErrorCode.REGISTRY_ERROR, "{param}: list ({inner}) ends with ','")
    LIST_EMPTY = (ErrorCode.REGISTRY_ERROR, "{param}: empty list ()")
    VALUE_UNTERMINATED_QUOTE = (ErrorCode.REGISTRY_ERROR, "{param}: unterminated quote in {value}")
    VALUE_QUOTE_NOT_DOUBLED = (ErrorCode.REGISTRY_ERROR, "{param}: a quote inside a value must be doubled: {value}")
    VALUE_MALFORMED = (ErrorCode.REGISTRY_ERROR, "{param}: malformed value {value} (unbalanced quotes or "
                                                 "parentheses)")
    PARAM_VALUE_INVALID = (ErrorCode.REGISTRY_ERROR, "{param}: {reason}")
    PARAM_REPEATED = (ErrorCode.STORED_QUERY_PARAM_NUMBER, "parameter {param} appears more than once")
    QUERY_TOO_MANY_VALUES = (ErrorCode.STORED_QUERY_PARAM_NUMBER, "more than {limit} values in one stored query "
                             "(reached in parameter {param}); split the query")
    PARAM_TOO_MANY_AND_GROUPS = (ErrorCode.STORED_QUERY_PARAM_NUMBER, "parameter {param} is repeated with more than "
                                 "{limit} different value lists (AND of OR-groups); combine them")
    PARAM_ONE_VALUE = (ErrorCode.STORED_QUERY_PARAM_NUMBER, "parameter {param} takes one value, received {count}")
    PARAM_MISSING = (ErrorCode.STORED_QUERY_MISSING_PARAM, "required parameter {param} is missing")
    PARAM_ONE_OF_MISSING = (ErrorCode.STORED_QUERY_MISSING_PARAM, "one of {params} is required")
    PARAMS_MUTUALLY_EXCLUSIVE = (ErrorCode.STORED_QUERY_PARAM_NUMBER, "{params} are mutually exclusive")
    PARAM_AT_LEAST_ONE_OF_MISSING = (ErrorCode.STORED_QUERY_MISSING_PARAM, "at least one of {params} is required")
    TOO_MANY_RESULTS = (ErrorCode.TOO_MANY_RESULTS, "the query matches {count} objects, more than {limit}")
    TOO_MANY_ROWS = (ErrorCode.TOO_MANY_RESULTS, "the query matches more than {limit} objects; narrow it")
    RESULT_NOT_SINGLE_PATIENT = (ErrorCode.RESULT_NOT_SINGLE_PATIENT, "the requested objects belong to more than one "
                                                                      "patient")
    # --- the repository, ITI-41 and ITI-43 (ITI TF-2b 3.41, 3.43; docs/conformance.md §4, §5) ------------
    NOT_A_PROVIDE_AND_REGISTER = (_REPO_META, "expected xdsb:ProvideAndRegisterDocumentSetRequest, received "
                                              "{element}")
    NO_SUBMIT_OBJECTS_REQUEST = (_REPO_META, "ProvideAndRegisterDocumentSetRequest has no lcm:SubmitObjectsRequest")
    DOCUMENT_WITHOUT_ID = (_REPO_META, "xdsb:Document without id attribute")
    DOCUMENT_ID_TWICE = (_REPO_META, "two xdsb:Document elements have id '{document}'")
    DOCUMENT_PART_ABSENT = (ErrorCode.MISSING_DOCUMENT, "xdsb:Document '{document}' refers to {href}, which is not "
                                                        "a part of the MIME package")
    DOCUMENT_NOT_BASE64 = (_REPO_META, "xdsb:Document '{document}' is neither an xop:Include nor valid base64")
    ENTRY_WITHOUT_DOCUMENT = (ErrorCode.MISSING_DOCUMENT, "DocumentEntry '{entry}' has no xdsb:Document with that "
                                                          "id")
    DOCUMENT_WITHOUT_ENTRY = (ErrorCode.MISSING_DOCUMENT_METADATA, "xdsb:Document '{document}' has no DocumentEntry "
                                                                   "(ExtrinsicObject) with that id")
    DOCUMENT_UNIQUE_ID_TWICE = (ErrorCode.REPOSITORY_DUPLICATE_UNIQUE_ID_IN_MESSAGE,
                                "uniqueId '{unique_id}' is used by both {first} and {second}")
    DECLARED_HASH_MISMATCH = (_REPO_META, "{entry} ({unique_id}): declared hash {declared} does not match the "
                                          "document's SHA-1 {actual}")
    DECLARED_SIZE_MISMATCH = (_REPO_META, "{entry} ({unique_id}): declared size {declared} does not match the "
                                          "document's size {actual}")
    REPOSITORY_OUT_OF_SPACE = (ErrorCode.REPOSITORY_OUT_OF_RESOURCES, "the repository has no space left to store "
                                                                      "the documents; nothing was registered")
    UNIQUE_ID_BEING_STORED = (ErrorCode.REPOSITORY_BUSY, "document uniqueId '{unique_id}' is being stored by another "
                                                         "submission at this moment; nothing was registered")
    REPOSITORY_STORAGE_FAILED = (ErrorCode.REPOSITORY_ERROR, "the repository could not store the documents; nothing "
                                                             "was registered")
    REGISTRY_UNREACHABLE = (ErrorCode.REGISTRY_NOT_AVAILABLE, "the registry at {url} could not be reached or "
                                                              "answered with a fault: {failure}")
    REGISTRY_ANSWER_NOT_A_RESPONSE = (ErrorCode.REGISTRY_NOT_AVAILABLE, "the registry answered without a "
                                                                        "RegistryResponse")
    NOT_A_RETRIEVE = (ErrorCode.REPOSITORY_ERROR, "expected xdsb:RetrieveDocumentSetRequest, received {element}")
    RETRIEVE_WITHOUT_REQUEST = (ErrorCode.REPOSITORY_ERROR, "RetrieveDocumentSetRequest holds no DocumentRequest")
    RETRIEVE_WITHOUT_UNIQUE_ID = (ErrorCode.DOCUMENT_UNIQUE_ID_ERROR, "DocumentRequest {number} has no "
                                                                      "DocumentUniqueId")
    RETRIEVE_OTHER_REPOSITORY = (ErrorCode.UNKNOWN_REPOSITORY_ID, "repositoryUniqueId '{repository}' is not this "
                                                                  "repository's ({ours})")
    RETRIEVE_UNKNOWN_DOCUMENT = (ErrorCode.DOCUMENT_UNIQUE_ID_ERROR, "document '{unique_id}' is not in this "
                                                                     "repository")
    RETRIEVE_STORE_UNAVAILABLE = (ErrorCode.REPOSITORY_ERROR, "document '{unique_id}' cannot be read now: the "
                                                              "repository's document store is unavailable")

    def __init__(self, code: ErrorCode, template: str) -> None:
        self.code = code  # plain attributes, as registry._vocabulary's enums
        self.template = template

    def __call__(self, location: str | None, **values: object) -> RegistryError:
        """The RegistryError of this problem (severity Error), its codeContext the template filled with
        ``values``."""
        return RegistryError(self.code, self.template.format(**values), location, problem=self)

    @cached_property
    def _pattern(self) -> re.Pattern[str]:
        parts = []
        for literal, field, _, _ in string.Formatter().parse(self.template):
            parts.append(re.escape(literal))
            if field is not None:
                parts.append("(.*)")
        return re.compile("".join(parts), re.DOTALL)

    @cached_property
    def _literal_length(self) -> int:
        return sum(len(literal) for literal, _, _, _ in string.Formatter().parse(self.template))

    def matches(self, context: str) -> bool:
        """Whether ``context`` (a codeContext received over the wire) is one of this problem's messages."""
        return self._pattern.fullmatch(context) is not None

    @classmethod
    def recognise(cls, code: ErrorCode | str, context: str) -> Problem | None:
        """The member an error received over the wire was made from: of those with its code whose template
        matches ``context``, the most specific (most fixed text); None for a message not of this catalogue."""
        value = code.value if isinstance(code, ErrorCode) else code
        found = [p for p in cls if p.code.value == value and p.matches(context)]
        return max(found, key=lambda p: p._literal_length, default=None)
