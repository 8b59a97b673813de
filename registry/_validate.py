"""Structural validation of a submission (ITI-42 / registry half of ITI-41), ITI TF-3 §4.2 and docs/conformance.md §3.

Pure: takes the ebRIM objects as received and returns every problem found, each a RegistryError with the
exact code, a codeContext that names the attribute and the value, and a location naming the object (its id
as the sender wrote it). Nothing stops at the first error (NIST toolkit habit: report all at once).
Checks that need the registry's content (patient known, uniqueId already registered, references to
existing objects) live in ``_submission``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from registry import _hl7
from registry._errors import ErrorCode, RegistryError, Severity
from registry._model import ASSOCIATION_SLOT_NAMES, DE_SLOT_NAMES, FOLDER_SLOT_NAMES, SS_SLOT_NAMES
from registry._profile import DE_PROFILE_SCHEMES, SS_PROFILE_SCHEMES, MetadataProfile, dmp_problems
from registry._rim import Classification, Kind, RimObject, RimSubmission
from registry._vocabulary import (
    ASSOCIATION_BY_URN,
    DE_ON_DEMAND,
    DE_STABLE,
    NODE_FOLDER,
    NODE_LIMITED_METADATA,
    NODE_SUBMISSION_SET,
    STATUS_BY_URN,
    AssociationType,
    IdScheme,
    Scheme,
)

META = ErrorCode.REGISTRY_METADATA_ERROR
_PROHIBITED_PID = {"PID-2", "PID-4", "PID-12", "PID-19"}
_AUTHOR_SLOT_CHECKS: dict[str, Callable[[str], str | None] | None] = {
    "authorPerson": _hl7.check_xcn,
    "authorInstitution": _hl7.check_xon,
    "authorRole": None,
    "authorSpecialty": None,
    "authorTelecommunication": _hl7.check_xtn,
}
# IHE-defined slots of objects of each kind; an unknown ``urn:ihe:`` slot is an error (docs/conformance.md §3 rule 9).
_KNOWN_SLOTS = {
    "DE": DE_SLOT_NAMES,
    "SS": SS_SLOT_NAMES,
    "FD": FOLDER_SLOT_NAMES,
    "AS": ASSOCIATION_SLOT_NAMES | {"AssociationPropagation"},
}


@dataclass
class Classified:
    """The submission sorted by role, with the SubmissionSet and Folders identified by their node."""

    submission_sets: list[RimObject] = field(default_factory=list)
    folders: list[RimObject] = field(default_factory=list)
    documents: list[RimObject] = field(default_factory=list)
    associations: list[RimObject] = field(default_factory=list)

    @property
    def submission_set(self) -> RimObject:
        return self.submission_sets[0]

    def all(self) -> list[RimObject]:
        return [*self.submission_sets, *self.folders, *self.documents, *self.associations]


class Validator:
    def __init__(self, *, require_repository_attributes: bool, update: bool = False,
                 profile: MetadataProfile = MetadataProfile.DMP) -> None:
        # ITI-42 (and ITI-41 after the repository filled them in) requires hash/size/repositoryUniqueId.
        self._require_repo = require_repository_attributes
        self._update = update  # ITI-57: UpdateAvailabilityStatus and SubmitAssociation are allowed
        self._profile = profile
        self.errors: list[RegistryError] = []

    def error(self, context: str, location: str | None, code: ErrorCode = META) -> None:
        self.errors.append(RegistryError(code, context, location))

    def warning(self, code: ErrorCode, context: str, location: str | None) -> None:
        self.errors.append(RegistryError(code, context, location, Severity.WARNING))

    # --- entry point ------------------------------------------------------------------------------

    def validate(self, sub: RimSubmission) -> Classified:
        for name in sub.unknown:
            self.error(f"element rim:{name} is not allowed in a submission's RegistryObjectList", None)
        c = self._classify(sub)
        if len(c.submission_sets) != 1:
            self.error(
                f"a submission must contain exactly one SubmissionSet, found {len(c.submission_sets)}", None
            )
        self._check_ids(sub)
        for ss in c.submission_sets:
            self._submission_set(ss)
        for fd in c.folders:
            self._folder(fd)
        for de in c.documents:
            self._document(de)
        for a in c.associations:
            self._association(a, c)
        self._check_membership(c)
        if len(c.submission_sets) == 1:
            self._check_patients(c)
        self._check_unique_ids(c)
        return c

    # --- classification of the packages ----------------------------------------------------------

    def _classify(self, sub: RimSubmission) -> Classified:
        c = Classified()
        nodes: dict[str, set[str]] = {}
        for obj in sub.objects:
            for cl in obj.classifications:
                if cl.node:
                    nodes.setdefault(obj.id, set()).add(cl.node)
        for cl in sub.classifications:
            if cl.node:
                nodes.setdefault(cl.classified_object, set()).add(cl.node)
            else:
                self.error("a top-level Classification must carry a classificationNode", cl.id)
        ids = {o.id for o in sub.objects if o.kind is Kind.REGISTRY_PACKAGE}
        for cl in sub.classifications:
            if cl.node and cl.classified_object not in ids:
                self.error(
                    f"Classification {cl.id} classifies '{cl.classified_object}', which is no RegistryPackage"
                    " of this submission",
                    cl.id,
                    ErrorCode.UNRESOLVED_REFERENCE,
                )
        for obj in sub.objects:
            obj_nodes = nodes.get(obj.id, set())
            if obj_nodes & NODE_LIMITED_METADATA:
                self.error("limited metadata (XDR/XDM) is not accepted by an XDS registry", obj.id)
            if obj.kind is Kind.EXTRINSIC_OBJECT:
                c.documents.append(obj)
            elif obj.kind is Kind.ASSOCIATION:
                c.associations.append(obj)
            elif NODE_SUBMISSION_SET in obj_nodes and NODE_FOLDER in obj_nodes:
                self.error("a RegistryPackage cannot be both a SubmissionSet and a Folder", obj.id)
            elif NODE_SUBMISSION_SET in obj_nodes:
                c.submission_sets.append(obj)
            elif NODE_FOLDER in obj_nodes:
                c.folders.append(obj)
            else:
                self.error(
                    "RegistryPackage is classified neither as SubmissionSet "
                    f"({NODE_SUBMISSION_SET}) nor as Folder ({NODE_FOLDER})",
                    obj.id,
                )
        return c

    # --- ids ---------------------------------------------------------------------------------------

    def _check_ids(self, sub: RimSubmission) -> None:
        ids: list[tuple[str, str]] = []
        for obj in sub.objects:
            ids.append((obj.id, obj.id))
            ids += [(cl.id, obj.id) for cl in obj.classifications]
            ids += [(e.id, obj.id) for e in obj.external_ids]
            for cl in obj.classifications:
                if cl.classified_object != obj.id:
                    self.error(f"Classification {cl.id} nested in {obj.id} classifies "
                               f"'{cl.classified_object}'", obj.id)
            for e in obj.external_ids:
                if e.registry_object != obj.id:
                    self.error(f"ExternalIdentifier {e.id} nested in {obj.id} refers to "
                               f"'{e.registry_object}'", obj.id)
        ids += [(cl.id, cl.id) for cl in sub.classifications]
        for ident, where in ids:
            if not ident:
                self.error("an object has no id attribute", where or None)
            elif ident.startswith("urn:uuid:") and not _hl7.is_uuid_urn(ident):
                self.error(f"id '{ident}' starts with urn:uuid: but is not a valid UUID", where)
        for ident, n in Counter(i for i, _ in ids if i).items():
            if n > 1:
                self.error(f"id '{ident}' is used by {n} objects in this submission", ident)

    # --- per object ---------------------------------------------------------------------------------

    def _slots(self, obj: RimObject, kind: str) -> None:
        for name, n in Counter(s.name for s in obj.slots).items():
            if n > 1:
                self.error(f"slot '{name}' appears {n} times", obj.id)
        for s in obj.slots:
            if not s.name:
                self.error("a Slot has no name", obj.id)
            elif s.name.startswith("urn:ihe:") and s.name not in _KNOWN_SLOTS[kind]:
                self.error(f"slot '{s.name}' uses the reserved urn:ihe: prefix but is not defined by IHE",
                           obj.id, ErrorCode.REGISTRY_ERROR)
            for v in s.values:
                if len(v) > 256:
                    self.error(f"slot '{s.name}' has a value longer than 256 characters", obj.id)

    def _single(self, obj: RimObject, name: str, *, required: bool,
                check: Callable[[str], str | None] | None = None) -> str | None:
        s = obj.slot(name)
        if s is None or not s.values:
            if required:
                self.error(f"required slot '{name}' is missing", obj.id)
            return None
        if len(s.values) > 1:
            self.error(f"slot '{name}' must have exactly one value, found {len(s.values)}", obj.id)
        value = s.values[0]
        if check is not None and (reason := check(value)) is not None:
            self.error(f"{name}: {reason}", obj.id)
        return value

    def _ext_id(self, obj: RimObject, scheme: IdScheme, check: Callable[[str], str | None]) -> str | None:
        values = [e.value for e in obj.external_ids if e.scheme == scheme.uuid]
        if not values:
            self.error(f"required ExternalIdentifier {scheme.label} ({scheme.uuid}) is missing", obj.id)
            return None
        if len(values) > 1:
            self.error(f"ExternalIdentifier {scheme.label} appears {len(values)} times", obj.id)
        if len(values[0]) > 256:
            self.error(f"{scheme.label}: value longer than 256 characters", obj.id)
        elif (reason := check(values[0])) is not None:
            self.error(f"{scheme.label}: {reason}", obj.id)
        return values[0]

    def _codes(self, obj: RimObject, scheme: Scheme, *, low: int, high: int | None) -> None:
        found = obj.classified(scheme.uuid)
        if len(found) < low or (high is not None and len(found) > high):
            want = f"exactly {low}" if low == high else f"at least {low}" if high is None else f"{low}..{high}"
            self.error(f"{scheme.attribute} ({scheme.uuid}): {want} expected, found {len(found)}", obj.id)
        for cl in found:
            self._coded(obj, scheme, cl)

    def _coded(self, obj: RimObject, scheme: Scheme, cl: Classification) -> None:
        if not cl.node_representation:
            self.error(f"{scheme.attribute}: Classification {cl.id} has an empty nodeRepresentation (the code)",
                       obj.id)
        elif len(cl.node_representation) > 256:
            self.error(f"{scheme.attribute}: code longer than 256 characters", obj.id)
        coding = cl.slot("codingScheme")
        if coding is None or len(coding.values) != 1 or not coding.values[0]:
            self.error(f"{scheme.attribute}: Classification {cl.id} needs exactly one codingScheme value",
                       obj.id)

    def _authors(self, obj: RimObject, scheme: Scheme) -> None:
        for cl in obj.classified(scheme.uuid):
            if cl.node_representation != "":
                self.error(f"author Classification {cl.id} must have nodeRepresentation=\"\"", obj.id)
            names = {s.name for s in cl.slots}
            if not names & {"authorPerson", "authorInstitution", "authorTelecommunication"}:
                self.error(f"author Classification {cl.id} needs authorPerson, authorInstitution or "
                           "authorTelecommunication", obj.id)
            for s in cl.slots:
                if s.name not in _AUTHOR_SLOT_CHECKS:
                    continue
                if s.name == "authorPerson" and len(s.values) != 1:
                    self.error(f"authorPerson must have exactly one value, found {len(s.values)}", obj.id)
                check = _AUTHOR_SLOT_CHECKS[s.name]
                for v in s.values if check else ():
                    if (reason := check(v)) is not None:  # type: ignore[misc]
                        self.error(f"{s.name}: {reason}", obj.id)

    def _known_classifications(self, obj: RimObject, allowed: set[Scheme]) -> None:
        for cl in obj.classifications:
            if cl.node:
                continue
            if cl.scheme is None:
                self.error(f"Classification {cl.id} has neither classificationScheme nor classificationNode",
                           obj.id)
            elif (scheme := _SCHEME_BY_UUID.get(cl.scheme)) is not None and scheme not in allowed:
                self.error(f"Classification {cl.id}: scheme {scheme.attribute} ({cl.scheme}) does not apply "
                           f"to this object", obj.id)

    def _title(self, obj: RimObject, *, required: bool) -> None:
        if not obj.name:
            if required:
                self.error("title (rim:Name) is required", obj.id)
            return
        if len(obj.name) > 1:
            self.error("title (rim:Name) must have one LocalizedString", obj.id)
        if len(obj.name[0].value) > 128:
            self.error(f"title longer than 128 characters ({len(obj.name[0].value)})", obj.id)

    def _document(self, de: RimObject) -> None:
        self._slots(de, "DE")
        if not de.object_type:
            self.error("objectType is required on a DocumentEntry", de.id)
        elif de.object_type not in (DE_STABLE, DE_ON_DEMAND):
            self.error(f"objectType '{de.object_type}' is neither the stable ({DE_STABLE}) nor the on-demand "
                       f"({DE_ON_DEMAND}) DocumentEntry type", de.id)
        if not de.mime_type:
            self.error("mimeType is required on a DocumentEntry", de.id)
        elif len(de.mime_type) > 256:
            self.error("mimeType longer than 256 characters", de.id)
        elif (reason := _hl7.check_mime_type(de.mime_type)) is not None:
            self.error(reason, de.id)
        self._title(de, required=False)
        self._ext_id(de, IdScheme.DE_PATIENT_ID, _hl7.check_cx)
        self._ext_id(de, IdScheme.DE_UNIQUE_ID, _hl7.check_document_unique_id)
        self._known_classifications(de, _DE_SCHEMES)
        self._authors(de, Scheme.DE_AUTHOR)
        for scheme in (Scheme.DE_CLASS_CODE, Scheme.DE_FORMAT_CODE, Scheme.DE_HCFT_CODE,
                       Scheme.DE_PRACTICE_SETTING_CODE, Scheme.DE_TYPE_CODE):
            self._codes(de, scheme, low=1, high=1)
        self._codes(de, Scheme.DE_CONFIDENTIALITY_CODE, low=1, high=None)
        self._codes(de, Scheme.DE_EVENT_CODE, low=0, high=None)
        if self._profile is MetadataProfile.DMP:
            for problem in dmp_problems(de, DE_PROFILE_SCHEMES):
                self.error(problem, de.id)
        stable = de.object_type != DE_ON_DEMAND
        self._single(de, "creationTime", required=stable, check=_hl7.check_dtm)
        self._single(de, "languageCode", required=True)
        self._single(de, "sourcePatientId", required=True, check=_hl7.check_cx)
        self._single(de, "hash", required=self._require_repo and stable, check=_hl7.check_hash)
        self._single(de, "size", required=self._require_repo and stable, check=_hl7.check_size)
        self._single(de, "repositoryUniqueId", required=self._require_repo, check=_hl7.check_oid)
        self._single(de, "legalAuthenticator", required=False, check=_hl7.check_xcn)
        self._single(de, "URI", required=False)
        self._single(de, "documentAvailability", required=False)
        start = self._single(de, "serviceStartTime", required=False, check=_hl7.check_dtm)
        stop = self._single(de, "serviceStopTime", required=False, check=_hl7.check_dtm)
        if start and stop and not _hl7.check_dtm(start) and not _hl7.check_dtm(stop) \
                and _hl7.dtm_floor(start) > _hl7.dtm_ceiling(stop):
            self.error(f"serviceStartTime {start} is after serviceStopTime {stop}", de.id)
        info = de.slot("sourcePatientInfo")
        for v in info.values if info else ():
            field_name, sep, _ = v.partition("|")
            if not sep or not field_name.startswith("PID-"):
                self.error(f"sourcePatientInfo value '{v}' is not of the form PID-n|value", de.id)
            elif field_name in _PROHIBITED_PID:
                self.error(f"sourcePatientInfo must not carry {field_name}", de.id)

    def _submission_set(self, ss: RimObject) -> None:
        self._slots(ss, "SS")
        self._title(ss, required=False)
        self._single(ss, "submissionTime", required=True, check=_hl7.check_dtm)
        self._known_classifications(ss, {Scheme.SS_AUTHOR, Scheme.SS_CONTENT_TYPE_CODE})
        self._authors(ss, Scheme.SS_AUTHOR)
        self._codes(ss, Scheme.SS_CONTENT_TYPE_CODE, low=1, high=1)
        if self._profile is MetadataProfile.DMP:
            for problem in dmp_problems(ss, SS_PROFILE_SCHEMES):
                self.error(problem, ss.id)
        self._ext_id(ss, IdScheme.SS_PATIENT_ID, _hl7.check_cx)
        self._ext_id(ss, IdScheme.SS_UNIQUE_ID, _hl7.check_oid)
        self._ext_id(ss, IdScheme.SS_SOURCE_ID, _hl7.check_oid)
        recipients = ss.slot("intendedRecipient")
        for v in recipients.values if recipients else ():
            if not v.replace("|", "").replace("^", "").strip():
                self.error(f"intendedRecipient '{v}' is empty", ss.id)

    def _folder(self, fd: RimObject) -> None:
        self._slots(fd, "FD")
        self._title(fd, required=True)
        self._known_classifications(fd, {Scheme.FOLDER_CODE_LIST})
        self._codes(fd, Scheme.FOLDER_CODE_LIST, low=1, high=None)
        self._ext_id(fd, IdScheme.FOLDER_PATIENT_ID, _hl7.check_cx)
        self._ext_id(fd, IdScheme.FOLDER_UNIQUE_ID, _hl7.check_oid)
        # lastUpdateTime is the registry's to set: a submitted value is overwritten, not refused (trap 5).

    # --- associations ---------------------------------------------------------------------------------

    def _association(self, a: RimObject, c: Classified) -> None:
        self._slots(a, "AS")
        atype = ASSOCIATION_BY_URN.get(a.association_type or "")
        if not a.source:
            self.error("Association has no sourceObject", a.id)
        if not a.target:
            self.error("Association has no targetObject", a.id)
        if atype is None:
            self.error(f"associationType '{a.association_type}' is not an XDS association type", a.id)
            return
        ss_id = c.submission_sets[0].id if c.submission_sets else None
        if atype in (AssociationType.UPDATE_AVAILABILITY_STATUS, AssociationType.SUBMIT_ASSOCIATION):
            if not self._update:
                self.error(f"{atype.name} associations belong to ITI-57 Update Document Set, not to a "
                           "registration", a.id)
            else:
                self._update_association(a, atype, ss_id, c)
            return
        docs = {d.id for d in c.documents}
        if atype is AssociationType.HAS_MEMBER:
            sets = {s.id for s in c.submission_sets}
            if a.source in sets and a.target in sets:
                # A SubmissionSet's members are DocumentEntries, Folders and Associations (ITI TF-3 4.1.4).
                self.error(f"HasMember association {a.id} links SubmissionSet '{a.source}' to SubmissionSet "
                           f"'{a.target}': a SubmissionSet cannot be a member of a SubmissionSet", a.id)
            if any(cl.scheme == Scheme.ASSOCIATION_DOCUMENTATION.uuid for cl in a.classifications):
                self.error("a HasMember association must not carry an associationDocumentation", a.id)
            if a.source == ss_id and a.target in docs:
                status = a.slot("SubmissionSetStatus")
                if status is None or len(status.values) != 1:
                    self.error("SubmissionSet HasMember of a DocumentEntry needs exactly one "
                               "SubmissionSetStatus value", a.id)
                elif status.values[0] not in ("Original", "Reference"):
                    self.error(f"SubmissionSetStatus '{status.values[0]}' is neither Original nor Reference",
                               a.id)
        elif a.source not in docs:
            self.error(f"the source of a {atype.name} association must be a DocumentEntry of this submission, "
                       f"'{a.source}' is not", a.id)

    def _update_association(self, a: RimObject, atype: AssociationType, ss_id: str | None, c: Classified) -> None:
        code = ErrorCode.METADATA_UPDATE_ERROR
        if a.source != ss_id:
            self.error(f"the source of a {atype.name} association must be the SubmissionSet", a.id, code)
        if atype is AssociationType.SUBMIT_ASSOCIATION:
            if a.target not in {x.id for x in c.associations}:
                self.error(f"SubmitAssociation {a.id} must target an Association of this request", a.id, code)
            return
        for name in ("OriginalStatus", "NewStatus"):
            slot = a.slot(name)
            if slot is None or len(slot.values) != 1:
                self.error(f"UpdateAvailabilityStatus needs exactly one {name} value", a.id, code)
            elif slot.values[0] not in STATUS_BY_URN:
                self.error(f"{name} '{slot.values[0]}' is not an availability status", a.id, code)

    def _check_membership(self, c: Classified) -> None:
        if len(c.submission_sets) != 1:
            return
        ss = c.submission_set.id
        members = {a.target for a in c.associations
                   if a.association_type == AssociationType.HAS_MEMBER.value and a.source == ss}
        for obj in (*c.documents, *c.folders):
            if obj.id not in members:
                self.error(f"{'DocumentEntry' if obj.kind is Kind.EXTRINSIC_OBJECT else 'Folder'} {obj.id} "
                           "is not a member of the SubmissionSet (HasMember association missing)", obj.id)
        folders = {f.id for f in c.folders}
        submitted = {a.target for a in c.associations
                     if a.association_type == AssociationType.SUBMIT_ASSOCIATION.value}
        for a in c.associations:
            if a.id in submitted:
                continue  # ITI-57 SubmitAssociation: the SubmissionSet submits it, no HasMember needed
            # A Folder->DocumentEntry HasMember must itself be a member of the SubmissionSet (ITI TF-3 4.1.8).
            if (a.association_type == AssociationType.HAS_MEMBER.value and a.source != ss
                    and (a.source in folders or (a.source or "").startswith("urn:uuid:")) and a.id not in members):
                self.error(f"Folder membership {a.id} is not a member of the SubmissionSet "
                           "(SubmissionSet HasMember of the association missing)", a.id)

    # --- cross-object ------------------------------------------------------------------------------

    def _check_patients(self, c: Classified) -> None:
        ss_pid = c.submission_set.external_id(IdScheme.SS_PATIENT_ID.uuid)
        if ss_pid is None:
            return
        key = _hl7.patient_key(ss_pid)
        for obj, scheme in [*((d, IdScheme.DE_PATIENT_ID) for d in c.documents),
                            *((f, IdScheme.FOLDER_PATIENT_ID) for f in c.folders)]:
            pid = obj.external_id(scheme.uuid)
            if pid is not None and _hl7.patient_key(pid) != key:
                self.error(f"{scheme.label} '{pid}' differs from the SubmissionSet's patientId '{ss_pid}'",
                           obj.id, ErrorCode.PATIENT_ID_DOES_NOT_MATCH)

    def _check_unique_ids(self, c: Classified) -> None:
        seen: dict[str, str] = {}
        for obj, scheme in [*((d, IdScheme.DE_UNIQUE_ID) for d in c.documents),
                            *((f, IdScheme.FOLDER_UNIQUE_ID) for f in c.folders),
                            *((s, IdScheme.SS_UNIQUE_ID) for s in c.submission_sets)]:
            uid = obj.external_id(scheme.uuid)
            if uid is None:
                continue
            if uid in seen:
                self.error(f"uniqueId '{uid}' is used by both {seen[uid]} and {obj.id}", obj.id,
                           ErrorCode.REGISTRY_DUPLICATE_UNIQUE_ID_IN_MESSAGE)
            else:
                seen[uid] = obj.id


_SCHEME_BY_UUID = {s.uuid: s for s in Scheme}
_DE_SCHEMES = {
    Scheme.DE_AUTHOR, Scheme.DE_CLASS_CODE, Scheme.DE_CONFIDENTIALITY_CODE, Scheme.DE_EVENT_CODE,
    Scheme.DE_FORMAT_CODE, Scheme.DE_HCFT_CODE, Scheme.DE_PRACTICE_SETTING_CODE, Scheme.DE_TYPE_CODE,
}
