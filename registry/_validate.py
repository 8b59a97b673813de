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
from registry._catalogue import Problem
from registry._errors import RegistryError
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

    def error(self, problem: Problem, location: str | None, **values: object) -> None:
        """Report ``problem`` (its codeContext filled with ``values``) about the object at ``location``."""
        self.errors.append(problem(location, **values))

    # --- entry point ------------------------------------------------------------------------------

    def validate(self, sub: RimSubmission) -> Classified:
        for name in sub.unknown:
            self.error(Problem.RIM_ELEMENT_NOT_ALLOWED, None, element=name)
        c = self._classify(sub)
        if len(c.submission_sets) != 1:
            self.error(Problem.SUBMISSION_SET_COUNT, None, count=len(c.submission_sets))
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
                self.error(Problem.TOP_CLASSIFICATION_WITHOUT_NODE, cl.id)
        ids = {o.id for o in sub.objects if o.kind is Kind.REGISTRY_PACKAGE}
        for cl in sub.classifications:
            if cl.node and cl.classified_object not in ids:
                self.error(Problem.CLASSIFIED_OBJECT_NOT_A_PACKAGE, cl.id, classification=cl.id,
                           target=cl.classified_object)
        for obj in sub.objects:
            obj_nodes = nodes.get(obj.id, set())
            if obj_nodes & NODE_LIMITED_METADATA:
                self.error(Problem.LIMITED_METADATA, obj.id)
            if obj.kind is Kind.EXTRINSIC_OBJECT:
                c.documents.append(obj)
            elif obj.kind is Kind.ASSOCIATION:
                c.associations.append(obj)
            elif NODE_SUBMISSION_SET in obj_nodes and NODE_FOLDER in obj_nodes:
                self.error(Problem.PACKAGE_BOTH_KINDS, obj.id)
            elif NODE_SUBMISSION_SET in obj_nodes:
                c.submission_sets.append(obj)
            elif NODE_FOLDER in obj_nodes:
                c.folders.append(obj)
            else:
                self.error(Problem.PACKAGE_UNCLASSIFIED, obj.id, submission_set_node=NODE_SUBMISSION_SET,
                           folder_node=NODE_FOLDER)
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
                    self.error(Problem.NESTED_CLASSIFICATION_ELSEWHERE, obj.id, classification=cl.id, owner=obj.id,
                               target=cl.classified_object)
            for e in obj.external_ids:
                if e.registry_object != obj.id:
                    self.error(Problem.NESTED_IDENTIFIER_ELSEWHERE, obj.id, identifier=e.id, owner=obj.id,
                               target=e.registry_object)
        ids += [(cl.id, cl.id) for cl in sub.classifications]
        for ident, where in ids:
            if not ident:
                self.error(Problem.ID_MISSING, where or None)
            elif ident.startswith("urn:uuid:") and not _hl7.is_uuid_urn(ident):
                self.error(Problem.ID_NOT_A_UUID, where, id=ident)
        for ident, n in Counter(i for i, _ in ids if i).items():
            if n > 1:
                self.error(Problem.ID_REPEATED, ident, id=ident, count=n)

    # --- per object ---------------------------------------------------------------------------------

    def _slots(self, obj: RimObject, kind: str) -> None:
        for name, n in Counter(s.name for s in obj.slots).items():
            if n > 1:
                self.error(Problem.SLOT_REPEATED, obj.id, slot=name, count=n)
        for s in obj.slots:
            if not s.name:
                self.error(Problem.SLOT_WITHOUT_NAME, obj.id)
            elif s.name.startswith("urn:ihe:") and s.name not in _KNOWN_SLOTS[kind]:
                self.error(Problem.SLOT_RESERVED_PREFIX, obj.id, slot=s.name)
            for v in s.values:
                if len(v) > 256:
                    self.error(Problem.SLOT_VALUE_TOO_LONG, obj.id, slot=s.name)

    def _single(self, obj: RimObject, name: str, *, required: bool,
                check: Callable[[str], str | None] | None = None) -> str | None:
        s = obj.slot(name)
        if s is None or not s.values:
            if required:
                self.error(Problem.SLOT_MISSING, obj.id, slot=name)
            return None
        if len(s.values) > 1:
            self.error(Problem.SLOT_VALUE_COUNT, obj.id, slot=name, count=len(s.values))
        value = s.values[0]
        if check is not None and (reason := check(value)) is not None:
            self.error(Problem.VALUE_INVALID, obj.id, attribute=name, reason=reason)
        return value

    def _ext_id(self, obj: RimObject, scheme: IdScheme, check: Callable[[str], str | None]) -> str | None:
        values = [e.value for e in obj.external_ids if e.scheme == scheme.uuid]
        if not values:
            self.error(Problem.IDENTIFIER_MISSING, obj.id, label=scheme.label, scheme=scheme.uuid)
            return None
        if len(values) > 1:
            self.error(Problem.IDENTIFIER_REPEATED, obj.id, label=scheme.label, count=len(values))
        if len(values[0]) > 256:
            self.error(Problem.IDENTIFIER_TOO_LONG, obj.id, label=scheme.label)
        elif (reason := check(values[0])) is not None:
            self.error(Problem.VALUE_INVALID, obj.id, attribute=scheme.label, reason=reason)
        return values[0]

    def _codes(self, obj: RimObject, scheme: Scheme, *, low: int, high: int | None) -> None:
        found = obj.classified(scheme.uuid)
        if len(found) < low or (high is not None and len(found) > high):
            want = f"exactly {low}" if low == high else f"at least {low}" if high is None else f"{low}..{high}"
            self.error(Problem.CODE_COUNT, obj.id, attribute=scheme.attribute, scheme=scheme.uuid, expected=want,
                       count=len(found))
        for cl in found:
            self._coded(obj, scheme, cl)

    def _coded(self, obj: RimObject, scheme: Scheme, cl: Classification) -> None:
        if not cl.node_representation:
            self.error(Problem.CODE_EMPTY, obj.id, attribute=scheme.attribute, classification=cl.id)
        elif len(cl.node_representation) > 256:
            self.error(Problem.CODE_TOO_LONG, obj.id, attribute=scheme.attribute)
        coding = cl.slot("codingScheme")
        if coding is None or len(coding.values) != 1 or not coding.values[0]:
            self.error(Problem.CODING_SCHEME_COUNT, obj.id, attribute=scheme.attribute, classification=cl.id)

    def _authors(self, obj: RimObject, scheme: Scheme) -> None:
        for cl in obj.classified(scheme.uuid):
            if cl.node_representation != "":
                self.error(Problem.AUTHOR_NODE_REPRESENTATION, obj.id, classification=cl.id)
            names = {s.name for s in cl.slots}
            if not names & {"authorPerson", "authorInstitution", "authorTelecommunication"}:
                self.error(Problem.AUTHOR_EMPTY, obj.id, classification=cl.id)
            for s in cl.slots:
                if s.name not in _AUTHOR_SLOT_CHECKS:
                    continue
                if s.name == "authorPerson" and len(s.values) != 1:
                    self.error(Problem.AUTHOR_PERSON_COUNT, obj.id, count=len(s.values))
                check = _AUTHOR_SLOT_CHECKS[s.name]
                for v in s.values if check else ():
                    if (reason := check(v)) is not None:  # type: ignore[misc]
                        self.error(Problem.VALUE_INVALID, obj.id, attribute=s.name, reason=reason)

    def _known_classifications(self, obj: RimObject, allowed: set[Scheme]) -> None:
        for cl in obj.classifications:
            if cl.node:
                continue
            if cl.scheme is None:
                self.error(Problem.CLASSIFICATION_WITHOUT_SCHEME, obj.id, classification=cl.id)
            elif (scheme := _SCHEME_BY_UUID.get(cl.scheme)) is not None and scheme not in allowed:
                self.error(Problem.SCHEME_NOT_APPLICABLE, obj.id, classification=cl.id, attribute=scheme.attribute,
                           scheme=cl.scheme)

    def _title(self, obj: RimObject, *, required: bool) -> None:
        if not obj.name:
            if required:
                self.error(Problem.TITLE_MISSING, obj.id)
            return
        if len(obj.name) > 1:
            self.error(Problem.TITLE_LOCALIZED_COUNT, obj.id)
        if len(obj.name[0].value) > 128:
            self.error(Problem.TITLE_TOO_LONG, obj.id, length=len(obj.name[0].value))

    def _document(self, de: RimObject) -> None:
        self._slots(de, "DE")
        if not de.object_type:
            self.error(Problem.OBJECT_TYPE_MISSING, de.id)
        elif de.object_type not in (DE_STABLE, DE_ON_DEMAND):
            self.error(Problem.OBJECT_TYPE_UNKNOWN, de.id, object_type=de.object_type, stable=DE_STABLE,
                       on_demand=DE_ON_DEMAND)
        if not de.mime_type:
            self.error(Problem.MIME_TYPE_MISSING, de.id)
        elif len(de.mime_type) > 256:
            self.error(Problem.MIME_TYPE_TOO_LONG, de.id)
        elif _hl7.check_mime_type(de.mime_type) is not None:
            self.error(Problem.MIME_TYPE_INVALID, de.id, value=de.mime_type)
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
            self.errors += dmp_problems(de, DE_PROFILE_SCHEMES)
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
            self.error(Problem.SERVICE_TIMES_REVERSED, de.id, start=start, stop=stop)
        info = de.slot("sourcePatientInfo")
        for v in info.values if info else ():
            field_name, sep, _ = v.partition("|")
            if not sep or not field_name.startswith("PID-"):
                self.error(Problem.SOURCE_PATIENT_INFO_FORM, de.id, value=v)
            elif field_name in _PROHIBITED_PID:
                self.error(Problem.SOURCE_PATIENT_INFO_PROHIBITED, de.id, field=field_name)

    def _submission_set(self, ss: RimObject) -> None:
        self._slots(ss, "SS")
        self._title(ss, required=False)
        self._single(ss, "submissionTime", required=True, check=_hl7.check_dtm)
        self._known_classifications(ss, {Scheme.SS_AUTHOR, Scheme.SS_CONTENT_TYPE_CODE})
        self._authors(ss, Scheme.SS_AUTHOR)
        self._codes(ss, Scheme.SS_CONTENT_TYPE_CODE, low=1, high=1)
        if self._profile is MetadataProfile.DMP:
            self.errors += dmp_problems(ss, SS_PROFILE_SCHEMES)
        self._ext_id(ss, IdScheme.SS_PATIENT_ID, _hl7.check_cx)
        self._ext_id(ss, IdScheme.SS_UNIQUE_ID, _hl7.check_oid)
        self._ext_id(ss, IdScheme.SS_SOURCE_ID, _hl7.check_oid)
        recipients = ss.slot("intendedRecipient")
        for v in recipients.values if recipients else ():
            if not v.replace("|", "").replace("^", "").strip():
                self.error(Problem.INTENDED_RECIPIENT_EMPTY, ss.id, value=v)

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
            self.error(Problem.ASSOCIATION_WITHOUT_SOURCE, a.id)
        if not a.target:
            self.error(Problem.ASSOCIATION_WITHOUT_TARGET, a.id)
        if atype is None:
            self.error(Problem.ASSOCIATION_TYPE_UNKNOWN, a.id, association_type=a.association_type)
            return
        ss_id = c.submission_sets[0].id if c.submission_sets else None
        if atype in (AssociationType.UPDATE_AVAILABILITY_STATUS, AssociationType.SUBMIT_ASSOCIATION):
            if not self._update:
                self.error(Problem.UPDATE_ASSOCIATION_IN_REGISTRATION, a.id, association_type=atype.name)
            else:
                self._update_association(a, atype, ss_id, c)
            return
        docs = {d.id for d in c.documents}
        if atype is AssociationType.HAS_MEMBER:
            sets = {s.id for s in c.submission_sets}
            if a.source in sets and a.target in sets:
                # A SubmissionSet's members are DocumentEntries, Folders and Associations (ITI TF-3 4.1.4).
                self.error(Problem.SUBMISSION_SET_IN_SUBMISSION_SET, a.id, association=a.id, source=a.source,
                           target=a.target)
            if any(cl.scheme == Scheme.ASSOCIATION_DOCUMENTATION.uuid for cl in a.classifications):
                self.error(Problem.HAS_MEMBER_WITH_DOCUMENTATION, a.id)
            if a.source == ss_id and a.target in docs:
                status = a.slot("SubmissionSetStatus")
                if status is None or len(status.values) != 1:
                    self.error(Problem.SUBMISSION_SET_STATUS_COUNT, a.id)
                elif status.values[0] not in ("Original", "Reference"):
                    self.error(Problem.SUBMISSION_SET_STATUS_UNKNOWN, a.id, status=status.values[0])
        elif a.source not in docs:
            self.error(Problem.RELATIONSHIP_SOURCE_NOT_IN_SUBMISSION, a.id, association_type=atype.name,
                       source=a.source)

    def _update_association(self, a: RimObject, atype: AssociationType, ss_id: str | None, c: Classified) -> None:
        if a.source != ss_id:
            self.error(Problem.UPDATE_ASSOCIATION_SOURCE, a.id, association_type=atype.name)
        if atype is AssociationType.SUBMIT_ASSOCIATION:
            if a.target not in {x.id for x in c.associations}:
                self.error(Problem.SUBMIT_ASSOCIATION_TARGET, a.id, association=a.id)
            return
        for name in ("OriginalStatus", "NewStatus"):
            slot = a.slot(name)
            if slot is None or len(slot.values) != 1:
                self.error(Problem.STATUS_SLOT_COUNT, a.id, slot=name)
            elif slot.values[0] not in STATUS_BY_URN:
                self.error(Problem.STATUS_UNKNOWN, a.id, slot=name, status=slot.values[0])

    def _check_membership(self, c: Classified) -> None:
        if len(c.submission_sets) != 1:
            return
        ss = c.submission_set.id
        members = {a.target for a in c.associations
                   if a.association_type == AssociationType.HAS_MEMBER.value and a.source == ss}
        for obj in (*c.documents, *c.folders):
            if obj.id not in members:
                self.error(Problem.NOT_A_MEMBER, obj.id, object=obj.id,
                           kind="DocumentEntry" if obj.kind is Kind.EXTRINSIC_OBJECT else "Folder")
        folders = {f.id for f in c.folders}
        submitted = {a.target for a in c.associations
                     if a.association_type == AssociationType.SUBMIT_ASSOCIATION.value}
        for a in c.associations:
            if a.id in submitted:
                continue  # ITI-57 SubmitAssociation: the SubmissionSet submits it, no HasMember needed
            # A Folder->DocumentEntry HasMember must itself be a member of the SubmissionSet (ITI TF-3 4.1.8).
            if (a.association_type == AssociationType.HAS_MEMBER.value and a.source != ss
                    and (a.source in folders or (a.source or "").startswith("urn:uuid:")) and a.id not in members):
                self.error(Problem.FOLDER_MEMBERSHIP_NOT_A_MEMBER, a.id, association=a.id)

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
                self.error(Problem.PATIENT_ID_DIFFERS, obj.id, label=scheme.label, patient_id=pid,
                           submission_set_patient_id=ss_pid)

    def _check_unique_ids(self, c: Classified) -> None:
        seen: dict[str, str] = {}
        for obj, scheme in [*((d, IdScheme.DE_UNIQUE_ID) for d in c.documents),
                            *((f, IdScheme.FOLDER_UNIQUE_ID) for f in c.folders),
                            *((s, IdScheme.SS_UNIQUE_ID) for s in c.submission_sets)]:
            uid = obj.external_id(scheme.uuid)
            if uid is None:
                continue
            if uid in seen:
                self.error(Problem.UNIQUE_ID_TWICE_IN_MESSAGE, obj.id, unique_id=uid, first=seen[uid], second=obj.id)
            else:
                seen[uid] = obj.id


_SCHEME_BY_UUID = {s.uuid: s for s in Scheme}
_DE_SCHEMES = {
    Scheme.DE_AUTHOR, Scheme.DE_CLASS_CODE, Scheme.DE_CONFIDENTIALITY_CODE, Scheme.DE_EVENT_CODE,
    Scheme.DE_FORMAT_CODE, Scheme.DE_HCFT_CODE, Scheme.DE_PRACTICE_SETTING_CODE, Scheme.DE_TYPE_CODE,
}
