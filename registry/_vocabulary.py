"""IHE XDS.b identifiers (ITI TF-3 4.2.5, Table 4.2.5-1..4): object types, classification schemes, external identifiers,
classification nodes, association types, statuses. Values are spec facts."""

from __future__ import annotations

import enum
from typing import Final

# §3.1 objectType
DE_STABLE: Final = "urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1"
DE_ON_DEMAND: Final = "urn:uuid:34268e47-fdf5-41a6-ba33-82133c465248"
OT_REGISTRY_PACKAGE: Final = "urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:RegistryPackage"
OT_ASSOCIATION: Final = "urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:Association"
OT_CLASSIFICATION: Final = "urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:Classification"
OT_EXTERNAL_IDENTIFIER: Final = "urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:ExternalIdentifier"

# §3.4 classification nodes
NODE_SUBMISSION_SET: Final = "urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd"
NODE_FOLDER: Final = "urn:uuid:d9d542f3-6cc4-48b6-8870-ea235fbc94c2"
NODE_LIMITED_METADATA: Final = frozenset(
    {
        "urn:uuid:ab9b591b-83ab-4d03-8f5d-f93b1fb92e85",
        "urn:uuid:5003a9db-8d8d-49e6-bf0c-990e34ac7707",
        "urn:uuid:2c144a76-29a9-4b7c-af54-b25409fe7d03",
    }
)


class Scheme(enum.Enum):
    """Classification schemes (§3.2); value = (UUID, attribute name used in error messages)."""

    DE_AUTHOR = ("urn:uuid:93606bcf-9494-43ec-9b4e-a7748d1a838d", "author")
    DE_CLASS_CODE = ("urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a", "classCode")
    DE_CONFIDENTIALITY_CODE = ("urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f", "confidentialityCode")
    DE_EVENT_CODE = ("urn:uuid:2c6b8cb7-8b2a-4051-b291-b1ae6a575ef4", "eventCodeList")
    DE_FORMAT_CODE = ("urn:uuid:a09d5840-386c-46f2-b5ad-9c3699a4309d", "formatCode")
    DE_HCFT_CODE = ("urn:uuid:f33fb8ac-18af-42cc-ae0e-ed0b0bdb91e1", "healthcareFacilityTypeCode")
    DE_PRACTICE_SETTING_CODE = ("urn:uuid:cccf5598-8b07-4b77-a05e-ae952c785ead", "practiceSettingCode")
    DE_TYPE_CODE = ("urn:uuid:f0306f51-975f-434e-a61c-c59651d33983", "typeCode")
    SS_AUTHOR = ("urn:uuid:a7058bb9-b4e4-4307-ba5b-e3f0ab85e12d", "author")
    SS_CONTENT_TYPE_CODE = ("urn:uuid:aa543740-bdda-424e-8c96-df4873be8500", "contentTypeCode")
    FOLDER_CODE_LIST = ("urn:uuid:1ba97051-7806-41a8-a48b-8fce7af683c5", "codeList")
    ASSOCIATION_DOCUMENTATION = ("urn:uuid:abd807a3-4432-4053-87b4-fd82c643d1f3", "associationDocumentation")

    def __init__(self, uuid: str, attribute: str) -> None:
        # Plain attributes, not properties over .value: validation reads them ~20 times per DocumentEntry and
        # an enum's .value goes through a descriptor (three times the cost).
        self.uuid = uuid
        self.attribute = attribute


SCHEME_BY_UUID: Final = {s.uuid: s for s in Scheme}


class IdScheme(enum.Enum):
    """External identifier schemes (§3.3); value = (UUID, rim:Name value)."""

    DE_PATIENT_ID = ("urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427", "XDSDocumentEntry.patientId")
    DE_UNIQUE_ID = ("urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab", "XDSDocumentEntry.uniqueId")
    SS_PATIENT_ID = ("urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446", "XDSSubmissionSet.patientId")
    SS_UNIQUE_ID = ("urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8", "XDSSubmissionSet.uniqueId")
    SS_SOURCE_ID = ("urn:uuid:554ac39e-e3fe-47fe-b233-965d2a147832", "XDSSubmissionSet.sourceId")
    FOLDER_PATIENT_ID = ("urn:uuid:f64ffdf0-4b97-4e06-b79f-a52b38ec2f8a", "XDSFolder.patientId")
    FOLDER_UNIQUE_ID = ("urn:uuid:75df8f67-9973-4fbe-a900-df66cefecc5a", "XDSFolder.uniqueId")

    def __init__(self, uuid: str, label: str) -> None:
        self.uuid = uuid  # plain attributes, as Scheme's
        self.label = label


ID_SCHEME_BY_UUID: Final = {s.uuid: s for s in IdScheme}


class AssociationType(enum.Enum):
    """§3.5."""

    HAS_MEMBER = "urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember"
    RPLC = "urn:ihe:iti:2007:AssociationType:RPLC"
    APND = "urn:ihe:iti:2007:AssociationType:APND"
    XFRM = "urn:ihe:iti:2007:AssociationType:XFRM"
    XFRM_RPLC = "urn:ihe:iti:2007:AssociationType:XFRM_RPLC"
    SIGNS = "urn:ihe:iti:2007:AssociationType:signs"
    IS_SNAPSHOT_OF = "urn:ihe:iti:2010:AssociationType:IsSnapshotOf"
    UPDATE_AVAILABILITY_STATUS = "urn:ihe:iti:2010:AssociationType:UpdateAvailabilityStatus"
    SUBMIT_ASSOCIATION = "urn:ihe:iti:2010:AssociationType:SubmitAssociation"

    @property
    def is_relationship(self) -> bool:
        return self in RELATIONSHIPS


RELATIONSHIPS: Final = frozenset(
    {
        AssociationType.RPLC,
        AssociationType.APND,
        AssociationType.XFRM,
        AssociationType.XFRM_RPLC,
        AssociationType.SIGNS,
        AssociationType.IS_SNAPSHOT_OF,
    }
)
REPLACEMENTS: Final = frozenset({AssociationType.RPLC, AssociationType.XFRM_RPLC})
ASSOCIATION_BY_URN: Final = {a.value: a for a in AssociationType}


class Status(enum.Enum):
    """availabilityStatus (§3.6) including the DMP's Archived and Deleted (CI-SIS; docs/conformance.md §8)."""

    SUBMITTED = "urn:oasis:names:tc:ebxml-regrep:StatusType:Submitted"
    APPROVED = "urn:oasis:names:tc:ebxml-regrep:StatusType:Approved"
    DEPRECATED = "urn:oasis:names:tc:ebxml-regrep:StatusType:Deprecated"
    ARCHIVED = "urn:asip:ci-sis:2010:StatusType:Archived"
    DELETED = "urn:asip:ci-sis:2010:StatusType:Deleted"


STATUS_BY_URN: Final = {s.value: s for s in Status}

SUBMISSION_SET_STATUS: Final = "SubmissionSetStatus"
DOCUMENT_AVAILABILITY_ONLINE: Final = "urn:ihe:iti:2010:DocumentAvailability:Online"
DOCUMENT_AVAILABILITY_OFFLINE: Final = "urn:ihe:iti:2010:DocumentAvailability:Offline"
