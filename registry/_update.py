"""ITI-57 Update Document Set (XDS Metadata Update; ITI TF-2b §3.57, ITI TF-3 4.1.10), with the DMP's Archived and
Deleted statuses (CI-SIS Volet Partage de Documents de Santé; docs/conformance.md §8).

One request = one new SubmissionSet plus operations, recognised by their pattern:
- new version of a DocumentEntry or Folder: an object whose ``lid`` names an existing logical object, with
  a SubmissionSet HasMember carrying ``PreviousVersion``;
- status change: an ``UpdateAvailabilityStatus`` association from the SubmissionSet with ``OriginalStatus``
  and ``NewStatus`` (a DocumentEntry, Folder or Association as target);
- new association: a ``SubmitAssociation`` from the SubmissionSet to an Association of the request.
All operations are checked first and applied in the same transaction, or none is.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, select, update

from registry import _hl7
from registry._catalogue import Problem
from registry._checks import _check_against_registry, _existing
from registry._errors import RegistryError, Severity, SubmissionRefused
from registry._profile import MetadataProfile
from registry._rim import Kind, RimObject, RimSubmission, Slot, read_object
from registry._schema import association, document_entry, registry_object, with_lid
from registry._submission import _store, insert_association, lock_new_ids, write_origin
from registry._validate import Classified, Validator
from registry._visibility import Origin
from registry._vocabulary import AssociationType, IdScheme, Status
from soap_wsdl import parse_xml

ro, de, asc = registry_object.c, document_entry.c, association.c
S = Status
# Status changes the registry accepts: IHE's Approved <-> Deprecated, and the DMP's archive, un-archive and
# logical delete ("dépublication") [docs/conformance.md §8].
ALLOWED_TRANSITIONS = frozenset({
    (S.APPROVED, S.DEPRECATED), (S.DEPRECATED, S.APPROVED),
    (S.APPROVED, S.ARCHIVED), (S.ARCHIVED, S.APPROVED),
    (S.APPROVED, S.DELETED), (S.ARCHIVED, S.DELETED),
})


@dataclass(frozen=True)
class Latest:
    id: str
    lid: str
    version: int
    kind: str
    status: str
    patient_key: str | None
    unique_id: str | None


def update_document_set(conn: Connection, sub: RimSubmission, now: str,
                        profile: MetadataProfile = MetadataProfile.DMP, origin: Origin | None = None
                        ) -> list[RegistryError]:
    """Check and apply an ITI-57 request; returns warnings, raises SubmissionRefused with every error."""
    v = Validator(require_repository_attributes=False, update=True, profile=profile)
    c = v.validate(sub)
    versions: dict[int, tuple[str, int]] = {}
    replaced: list[str] = []
    status_changes: list[tuple[str, str]] = []
    if len(c.submission_sets) == 1:
        lock_new_ids(conn, [o.id for o in c.all() if o.id.startswith("urn:uuid:")])  # before the checks look
        replaced = _check_versions(conn, c, v, versions)
        status_changes = _check_status_updates(conn, c, v)
        _check_submitted_associations(conn, c, v)
        # Every DocumentEntry/Folder of an update is a new version (or already refused as not one): their
        # uniqueIds are the existing ones, checked by _check_versions, not new registrations.
        new_versions = frozenset(o.id for o in (*c.documents, *c.folders))
        _check_against_registry(conn, c, v, new_versions=new_versions)
    if any(e.severity is Severity.ERROR for e in v.errors):
        raise SubmissionRefused(v.errors)
    write_origin(conn, _store(conn, c, now, versions), origin)
    _apply(conn, c, replaced, status_changes)
    return v.errors


def _latest(conn: Connection, lids: list[str]) -> dict[str, Latest]:
    rows = conn.execute(select(ro.id, ro.lid, ro.version, ro.kind, ro.status, ro.patient_key, ro.unique_id)
                        .where(with_lid(sorted(set(lids))))).all()
    out: dict[str, Latest] = {}
    for r in rows:
        if r.lid not in out or r.version > out[r.lid].version:
            out[r.lid] = Latest(r.id, r.lid, r.version, r.kind, r.status, r.patient_key, r.unique_id)
    return out


def _check_versions(conn: Connection, c: Classified, v: Validator, versions: dict[int, tuple[str, int]]
                    ) -> list[str]:
    """New versions of DocumentEntries and Folders. Returns the ids of the versions they replace."""
    candidates = [o for o in (*c.documents, *c.folders)]
    lids = [o.lid for o in candidates if o.lid]
    latest = _latest(conn, lids) if lids else {}
    ss = c.submission_set
    member = {a.target: a for a in c.associations
              if a.association_type == AssociationType.HAS_MEMBER.value and a.source == ss.id}
    replaced = []
    for o in candidates:
        kind = "DE" if o.kind is Kind.EXTRINSIC_OBJECT else "FD"
        if not o.lid or o.lid == o.id:
            v.error(Problem.UPDATE_NOT_A_NEW_VERSION, o.id, object=o.id)
            continue
        if not _hl7.is_uuid_urn(o.lid):
            v.error(Problem.UPDATE_LID_NOT_A_UUID, o.id, object=o.id, lid=o.lid)
            continue
        prev = latest.get(o.lid)
        if prev is None or prev.kind != kind:
            v.error(Problem.UPDATE_LOGICAL_OBJECT_UNKNOWN, o.id, object=o.id, lid=o.lid,
                    kind="DocumentEntry" if kind == "DE" else "Folder")
            continue
        if prev.status != Status.APPROVED.value:
            v.error(Problem.UPDATE_LATEST_NOT_APPROVED, o.id, object=o.id, version=prev.version, lid=o.lid,
                    status=prev.status)
        hm = member.get(o.id)
        previous = hm.slot_value("PreviousVersion") if hm is not None else None
        if previous != str(prev.version):
            v.error(Problem.UPDATE_PREVIOUS_VERSION, o.id, object=o.id, previous=repr(previous), lid=o.lid,
                    version=prev.version)
        scheme = IdScheme.DE_UNIQUE_ID if kind == "DE" else IdScheme.FOLDER_UNIQUE_ID
        if o.external_id(scheme.uuid) != prev.unique_id:
            v.error(Problem.UPDATE_UNIQUE_ID_CHANGED, o.id, object=o.id, unique_id=prev.unique_id)
        pid_scheme = IdScheme.DE_PATIENT_ID if kind == "DE" else IdScheme.FOLDER_PATIENT_ID
        if _hl7.patient_key(o.external_id(pid_scheme.uuid) or "") != prev.patient_key:
            v.error(Problem.UPDATE_PATIENT_CHANGED, o.id, object=o.id, patient=prev.patient_key)
        if kind == "DE":
            _carry_repository_attributes(conn, o, prev, v)
        versions[id(o)] = (o.lid, prev.version + 1)
        replaced.append(prev.id)
    return replaced


def _carry_repository_attributes(conn: Connection, o: RimObject, prev: Latest, v: Validator) -> None:
    """hash, size, repositoryUniqueId and objectType describe the stored bytes: an update keeps them."""
    row = conn.execute(select(de.object_type, de.hash, de.size, de.repository_unique_id)
                       .where(de.id == prev.id)).one()
    if o.object_type != row.object_type:
        v.error(Problem.UPDATE_OBJECT_TYPE_CHANGED, o.id, object=o.id, object_type=row.object_type)
    for name, stored in (("hash", row.hash), ("size", None if row.size is None else str(row.size)),
                         ("repositoryUniqueId", row.repository_unique_id)):
        sent = o.slot_value(name)
        if stored is None:
            continue
        if sent is None:
            o.slots.append(Slot(name, [stored]))
        elif sent.lower() != stored.lower():
            v.error(Problem.UPDATE_REPOSITORY_ATTRIBUTE_CHANGED, o.id, object=o.id, slot=name, stored=stored,
                    sent=sent)


def _check_status_updates(conn: Connection, c: Classified, v: Validator) -> list[tuple[str, str]]:
    ops = [a for a in c.associations
           if a.association_type == AssociationType.UPDATE_AVAILABILITY_STATUS.value and a.target]
    if not ops:
        return []
    targets = _existing(conn, [a.target for a in ops if a.target])
    latest = _latest(conn, [t.id for t in targets.values()] + [
        r.lid for r in conn.execute(select(ro.lid).where(ro.id.in_(list(targets)))).all()])
    changes = []
    for a in ops:
        t = targets.get(a.target or "")
        if t is None:
            v.error(Problem.STATUS_TARGET_UNKNOWN, a.id, association=a.id, target=a.target)
            continue
        original, new = a.slot_value("OriginalStatus"), a.slot_value("NewStatus")
        if t.kind in ("DE", "FD"):
            lid = conn.execute(select(ro.lid).where(ro.id == t.id)).scalar_one()
            if latest[lid].id != t.id:
                v.error(Problem.STATUS_TARGET_NOT_LATEST, a.id, association=a.id, target=t.id, lid=lid)
        elif t.kind == "AS":
            src = conn.execute(select(asc.source, asc.association_type).where(asc.id == t.id)).one()
            if src.association_type == AssociationType.HAS_MEMBER.value and \
                    _existing(conn, [src.source]).get(src.source, t).kind == "SS":
                v.error(Problem.STATUS_OF_SUBMISSION_SET_MEMBERSHIP, a.id, association=a.id)
        else:
            v.error(Problem.STATUS_OF_SUBMISSION_SET, a.id, association=a.id)
        if original != t.status:
            v.error(Problem.ORIGINAL_STATUS_MISMATCH, a.id, association=a.id, original=original, status=t.status,
                    target=t.id)
        elif original in {s.value for s in Status} and new in {s.value for s in Status} and \
                (Status(original), Status(new)) not in ALLOWED_TRANSITIONS:
            v.error(Problem.STATUS_CHANGE_NOT_ALLOWED, a.id, association=a.id, original=original, new=new)
        if new:
            changes.append((t.id, new))
    return changes


def _check_submitted_associations(conn: Connection, c: Classified, v: Validator) -> None:
    submitted = {a.target for a in c.associations
                 if a.association_type == AssociationType.SUBMIT_ASSOCIATION.value}
    in_message = {o.id for o in c.all()}
    for a in c.associations:
        if a.id not in submitted:
            continue
        ends = _existing(conn, [e for e in (a.source, a.target) if e and e not in in_message])
        for e in ends.values():
            if e.kind == "SS":
                v.error(Problem.SUBMITTED_ASSOCIATION_TO_SUBMISSION_SET, a.id, association=a.id)
            elif e.status == Status.DEPRECATED.value:
                v.error(Problem.SUBMITTED_ASSOCIATION_TO_DEPRECATED, a.id, association=a.id, target=e.id)


def _apply(conn: Connection, c: Classified, replaced: list[str], changes: list[tuple[str, str]]) -> None:
    if replaced:
        conn.execute(update(registry_object).where(ro.id.in_(replaced)).values(status=Status.DEPRECATED.value))
        _propagate(conn, c, replaced)
    for target, new in changes:
        conn.execute(update(registry_object).where(ro.id == target).values(status=new))


def _propagate(conn: Connection, c: Classified, replaced: list[str]) -> None:
    """Associations of a replaced version follow the new version (folder membership, relationships), unless
    the SubmissionSet's HasMember says ``AssociationPropagation=no`` (ITI TF-3 §4.1.7.2)."""
    new_by_old: dict[str, str] = {}
    latest_lids = conn.execute(select(ro.id, ro.lid).where(ro.id.in_(replaced))).all()
    by_lid = {r.lid: r.id for r in latest_lids}
    ss = c.submission_set.id
    no_propagation = {a.target for a in c.associations
                      if a.source == ss and (a.slot_value("AssociationPropagation") or "yes").lower() == "no"}
    for o in (*c.documents, *c.folders):
        if o.lid in by_lid and o.id not in no_propagation:
            new_by_old[by_lid[o.lid]] = o.id
    if not new_by_old:
        return
    olds = list(new_by_old)
    rows = conn.execute(select(asc.id, asc.association_type, asc.source, asc.target, ro.xml)
                        .join(registry_object, ro.id == asc.id)
                        .where((asc.source.in_(olds)) | (asc.target.in_(olds)),
                               ro.status == Status.APPROVED.value)).all()
    kinds = {e.id: e.kind for e in _existing(conn, [x for r in rows for x in (r.source, r.target)]).values()}
    for r in rows:
        if kinds.get(r.source) == "SS":
            continue  # a SubmissionSet's membership stays with the version it submitted
        insert_association(conn, r.association_type, new_by_old.get(r.source, r.source),
                           new_by_old.get(r.target, r.target), c.submission_set.id,
                           template=read_object(parse_xml(r.xml.encode())))
