"""Registration of a validated submission (ITI TF-3 §4.1, XDS.md §7.2 rules 2-8, 11).

Runs inside one write transaction: the checks that need the registry's content, then UUID assignment for
symbolic ids, then the inserts. Any error refuses the whole submission (the caller rolls back)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Connection, insert, select, update

from registry import _hl7, _model
from registry._errors import ErrorCode, RegistryError, SubmissionRefused
from registry._rim import Classification, Kind, RimObject, RimSubmission, Slot, write_object
from registry._schema import association, document_entry, folder, object_value, patient, registry_object, submission_set
from registry._validate import Classified, Validator
from registry._vocabulary import (
    NODE_FOLDER,
    NODE_SUBMISSION_SET,
    REPLACEMENTS,
    AssociationType,
    IdScheme,
    Status,
)
from soap_wsdl import serialize


@dataclass(frozen=True)
class Existing:
    """What registration needs to know about an object already in the registry."""

    id: str
    kind: str
    status: str
    patient_key: str | None
    unique_id: str | None


def register(conn: Connection, sub: RimSubmission, *, require_repository_attributes: bool, now: str
             ) -> list[RegistryError]:
    """Validate and store ``sub``. Returns the warnings; raises :class:`SubmissionRefused` with every error."""
    v = Validator(require_repository_attributes=require_repository_attributes)
    c = v.validate(sub)
    if len(c.submission_sets) == 1:
        _check_against_registry(conn, c, v)
    errors = [e for e in v.errors if e.severity.name == "ERROR"]
    if errors:
        raise SubmissionRefused(v.errors)
    _store(conn, c, now)
    return v.errors


# --- checks that read the registry -------------------------------------------------------------------


def _existing(conn: Connection, ids: Iterable[str]) -> dict[str, Existing]:
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    ro = registry_object.c
    rows = conn.execute(
        select(ro.id, ro.kind, ro.status, ro.patient_key, ro.unique_id).where(ro.id.in_(wanted))
    ).all()
    return {r.id: Existing(r.id, r.kind, r.status, r.patient_key, r.unique_id) for r in rows}


def _check_against_registry(conn: Connection, c: Classified, v: Validator, *,
                            new_versions: frozenset[str] = frozenset()) -> None:
    ss = c.submission_set
    ss_pid = ss.external_id(IdScheme.SS_PATIENT_ID.uuid)
    key = _hl7.patient_key(ss_pid) if ss_pid else None
    if key is not None and _hl7.CX.parse(ss_pid or "") is not None:
        row = conn.execute(select(patient.c.closed_at).where(patient.c.patient_key == key)).first()
        if row is None or row.closed_at is not None:
            v.error(f"patientId '{ss_pid}' is not known to this registry"
                    + (" (dossier closed)" if row is not None else ""), ss.id, ErrorCode.UNKNOWN_PATIENT_ID)

    submitted = {o.id for o in c.all()}
    uuid_ids = [i for i in submitted if i.startswith("urn:uuid:")]
    for taken in _existing(conn, uuid_ids):
        v.error(f"id '{taken}' is already used by an object in the registry", taken)

    _check_unique_ids(conn, c, v, new_versions)
    _check_references(conn, c, v, key)


def _check_unique_ids(conn: Connection, c: Classified, v: Validator, new_versions: frozenset[str]) -> None:
    # A new version of a Folder (ITI-57) keeps its uniqueId; it is not a duplicate.
    packages = [(o, IdScheme.SS_UNIQUE_ID) for o in c.submission_sets] + [
        (o, IdScheme.FOLDER_UNIQUE_ID) for o in c.folders if o.id not in new_versions
    ]
    uids = {o.external_id(s.uuid): o for o, s in packages if o.external_id(s.uuid)}
    if uids:
        ro = registry_object.c
        rows = conn.execute(
            select(ro.unique_id).where(ro.unique_id.in_(sorted(k for k in uids if k)), ro.kind.in_(("SS", "FD")))
        ).all()
        for r in rows:
            v.error(f"uniqueId '{r.unique_id}' is already registered", uids[r.unique_id].id,
                    ErrorCode.DUPLICATE_UNIQUE_ID_IN_REGISTRY)
    docs = {d.external_id(IdScheme.DE_UNIQUE_ID.uuid): d for d in c.documents if d.id not in new_versions}
    docs.pop(None, None)
    if not docs:
        return
    ro, de = registry_object.c, document_entry.c
    rows = conn.execute(
        select(ro.unique_id, de.hash, de.size)
        .join(document_entry, de.id == ro.id)
        .where(ro.unique_id.in_(sorted(k for k in docs if k)), ro.kind == "DE")
    ).all()
    for r in rows:
        d = docs[r.unique_id]
        sent_hash, sent_size = d.slot_value("hash"), d.slot_value("size")
        # A DocumentEntry uniqueId may be registered again only for the very same document (XDS.md §7.2 r4).
        if sent_hash is None or r.hash is None or sent_hash.lower() != r.hash.lower():
            v.error(f"document uniqueId '{r.unique_id}' is already registered with hash {r.hash}, "
                    f"this submission has {sent_hash}", d.id, ErrorCode.NON_IDENTICAL_HASH)
        if sent_size is None or r.size is None or sent_size != str(r.size):
            v.error(f"document uniqueId '{r.unique_id}' is already registered with size {r.size}, "
                    f"this submission has {sent_size}", d.id, ErrorCode.NON_IDENTICAL_SIZE)


def _check_references(conn: Connection, c: Classified, v: Validator, key: str | None) -> None:
    in_message = {o.id: o for o in c.all()}
    outside = {ref for a in c.associations for ref in (a.source, a.target) if ref and ref not in in_message}
    found = _existing(conn, outside)
    ss_id = c.submission_set.id
    for a in c.associations:
        atype = a.association_type
        for end, ref in (("sourceObject", a.source), ("targetObject", a.target)):
            if not ref or ref in in_message:
                continue
            ex = found.get(ref)
            if ex is None:
                v.error(f"{end} '{ref}' of association {a.id} is neither in this submission nor in the registry",
                        a.id, ErrorCode.UNRESOLVED_REFERENCE)
                continue
            if key is not None and ex.patient_key is not None and ex.patient_key != key:
                v.error(f"association {a.id} links objects of different patients ('{ex.patient_key}' in the "
                        f"registry, '{key}' in this submission)", a.id, ErrorCode.PATIENT_ID_DOES_NOT_MATCH)
            if atype in {t.value for t in AssociationType if t.is_relationship} and end == "targetObject":
                if ex.kind != "DE":
                    if not (atype == AssociationType.SIGNS.value and ex.kind == "SS"):
                        v.error(f"target '{ref}' of {a.id} is not a DocumentEntry", a.id)
                elif ex.status == Status.DEPRECATED.value:
                    v.error(f"target '{ref}' of {a.id} is Deprecated and cannot be replaced, appended or "
                            "transformed", a.id, ErrorCode.REGISTRY_DEPRECATED_DOCUMENT_ERROR)
                elif ex.status != Status.APPROVED.value and atype in {t.value for t in REPLACEMENTS}:
                    v.error(f"target '{ref}' of {a.id} has status {ex.status}; only Approved documents can be "
                            "replaced", a.id)
            if atype == AssociationType.HAS_MEMBER.value and a.source == ss_id and end == "targetObject" \
                    and ex.kind not in ("DE", "FD", "AS"):
                v.error(f"SubmissionSet member '{ref}' is not a DocumentEntry, Folder or Association", a.id)
            if atype == AssociationType.HAS_MEMBER.value and end == "sourceObject" and ex.kind == "FD" \
                    and ex.status != Status.APPROVED.value:
                v.error(f"Folder '{ref}' has status {ex.status}; documents can only be added to Approved "
                        "Folders", a.id)
        status = a.slot_value("SubmissionSetStatus")
        if a.source == ss_id and status == "Original" and a.target not in in_message:
            v.error(f"SubmissionSetStatus Original but '{a.target}' is not in this submission", a.id)
        if a.source == ss_id and status == "Reference" and a.target in in_message:
            v.error(f"SubmissionSetStatus Reference but '{a.target}' is in this submission", a.id)


# --- storing ----------------------------------------------------------------------------------------


def _assign_ids(c: Classified) -> None:
    """Replace symbolic ids (anything not a urn:uuid:, XDS.md §7.2 rule 2, trap 12) everywhere."""
    mapping: dict[str, str] = {}

    def new(ident: str) -> str:
        if ident.startswith("urn:uuid:"):
            return ident
        return mapping.setdefault(ident, f"urn:uuid:{uuid.uuid4()}")

    objs = c.all()
    for o in objs:
        o.id = new(o.id)
    for o in objs:
        for cl in o.classifications:
            cl.id = new(cl.id)
            cl.classified_object = o.id
        for e in o.external_ids:
            e.id = new(e.id)
            e.registry_object = o.id
        if o.source is not None:
            o.source = mapping.get(o.source, o.source)
        if o.target is not None:
            o.target = mapping.get(o.target, o.target)


def _kind(o: RimObject, c: Classified) -> str:
    if o in c.documents:
        return "DE"
    if o in c.folders:
        return "FD"
    return "SS" if o in c.submission_sets else "AS"


def _store(conn: Connection, c: Classified, now: str, versions: dict[int, tuple[str, int]] | None = None) -> None:
    """Insert every object. ``versions`` (keyed by ``id(obj)``) gives (logicalID, version) of new versions of
    existing objects (ITI-57); everything else is a first version whose lid is its id."""
    versions = versions or {}
    _assign_ids(c)
    ss = c.submission_set
    key = _hl7.patient_key(ss.external_id(IdScheme.SS_PATIENT_ID.uuid) or "")
    objects, des, sss, fds, assocs, values = [], [], [], [], [], []
    for o in c.all():
        kind = _kind(o, c)
        lid, version = versions.get(id(o), (o.id, 1))
        o.lid, o.version_name, o.home = lid, str(version), None
        o.status = None  # status lives in its column and is written out at query time
        if kind in ("SS", "FD") and not any(cl.node for cl in o.classifications):
            # Sent at top level (NIST samples do): keep it with the package so stored XML is self-contained.
            o.classifications.append(Classification(id=f"urn:uuid:{uuid.uuid4()}", classified_object=o.id,
                                                    node=NODE_SUBMISSION_SET if kind == "SS" else NODE_FOLDER))
        if kind == "FD":
            o.slots = [s for s in o.slots if s.name != "lastUpdateTime"]
            o.slots.insert(0, Slot("lastUpdateTime", [now]))
        unique = {
            "DE": IdScheme.DE_UNIQUE_ID, "SS": IdScheme.SS_UNIQUE_ID, "FD": IdScheme.FOLDER_UNIQUE_ID,
        }.get(kind)
        objects.append({
            "id": o.id, "lid": lid, "version": version, "kind": kind, "status": Status.APPROVED.value,
            "patient_key": key if kind != "AS" else None,
            "unique_id": o.external_id(unique.uuid) if unique else None,
            "submission_set_id": ss.id, "xml": serialize(write_object(o)).decode(),
        })
        if kind == "DE":
            de = _model.document_entry(o)
            des.append(_document_row(de))
            values += _document_values(de)
        elif kind == "SS":
            s = _model.submission_set(o)
            sss.append({"id": s.entry_uuid, "source_id": s.source_id, "submission_time": _padded(s.submission_time),
                        "content_type_code": s.content_type_code.code if s.content_type_code else None,
                        "content_type_scheme": s.content_type_code.scheme if s.content_type_code else None})
            values += [_value(s.entry_uuid, "authorPerson", a.person) for a in s.authors if a.person]
        elif kind == "FD":
            f = _model.folder(o)
            fds.append({"id": f.entry_uuid, "last_update_time": now})
            values += [_value(f.entry_uuid, "codeList", cd.code, cd.scheme) for cd in f.codes]
        else:
            a = _model.association(o)
            assocs.append({"id": a.entry_uuid, "association_type": a.association_type, "source": a.source,
                           "target": a.target, "submission_set_status": a.submission_set_status})
    for table, rows in ((registry_object, objects), (document_entry, des), (submission_set, sss),
                        (folder, fds), (association, assocs), (object_value, values)):
        if rows:
            conn.execute(table.insert(), rows)
    _apply_lifecycle(conn, c, now)


def _apply_lifecycle(conn: Connection, c: Classified, now: str) -> None:
    """Effects of a registration on what is already registered (ITI TF-3 §4.1.6-4.1.8; XDS.md §7.2 r7-8):
    RPLC / XFRM_RPLC deprecate their target, and the APND / XFRM documents that depend on it (recursively);
    every Folder that held a replaced document receives its replacement; adding a document to an existing
    Folder bumps the Folder's lastUpdateTime."""
    ro, asc = registry_object.c, association.c
    replacements = [(a.source, a.target) for a in c.associations
                    if a.association_type in {t.value for t in REPLACEMENTS} and a.source and a.target]
    replaced = [t for _, t in replacements]
    if replaced:
        conn.execute(update(registry_object).where(ro.id.in_(replaced)).values(status=Status.DEPRECATED.value))
        dependent = [AssociationType.APND.value, AssociationType.XFRM.value]
        frontier = replaced
        while frontier:
            frontier = list(conn.execute(
                select(asc.source).join(registry_object, ro.id == asc.source)
                .where(asc.target.in_(frontier), asc.association_type.in_(dependent),
                       ro.status == Status.APPROVED.value)).scalars())
            if frontier:
                conn.execute(update(registry_object).where(ro.id.in_(frontier))
                             .values(status=Status.DEPRECATED.value))
    touched: set[str] = set()
    for new, old in replacements:
        holders = conn.execute(
            select(asc.source).join(registry_object, ro.id == asc.source)
            .where(asc.target == old, asc.association_type == AssociationType.HAS_MEMBER.value,
                   ro.kind == "FD", ro.status == Status.APPROVED.value)).scalars().all()
        for fd in holders:
            insert_association(conn, AssociationType.HAS_MEMBER.value, fd, new, c.submission_set.id)
            touched.add(fd)
    in_message = {o.id for o in c.all()}
    touched |= {a.source for a in c.associations
                if a.association_type == AssociationType.HAS_MEMBER.value and a.source and a.source not in in_message}
    if touched:
        conn.execute(update(folder).where(folder.c.id.in_(sorted(touched))).values(last_update_time=now))


def insert_association(conn: Connection, association_type: str, source: str, target: str, submission_set_id: str,
                       template: RimObject | None = None) -> str:
    """Register an association the registry itself creates (folder membership of a replacement, propagation
    to a new version). ``template`` keeps the slots/classifications of the association it derives from."""
    new_id = f"urn:uuid:{uuid.uuid4()}"
    obj = template or RimObject(Kind.ASSOCIATION, new_id)
    obj.id = obj.lid = new_id
    obj.version_name, obj.status, obj.home = "1", None, None
    obj.association_type, obj.source, obj.target = association_type, source, target
    for cl in obj.classifications:
        cl.id, cl.classified_object = f"urn:uuid:{uuid.uuid4()}", new_id
    conn.execute(insert(registry_object).values(
        id=new_id, lid=new_id, version=1, kind="AS", status=Status.APPROVED.value, patient_key=None, unique_id=None,
        submission_set_id=submission_set_id, xml=serialize(write_object(obj)).decode()))
    conn.execute(insert(association).values(id=new_id, association_type=association_type, source=source,
                                            target=target, submission_set_status=obj.slot_value("SubmissionSetStatus")))
    return new_id


def _padded(dtm: str | None) -> str | None:
    """Times are indexed as 14 digits (the earliest instant they denote) so that ranges compare as strings;
    the submitted precision stays in the stored XML (XDS.md §5.1 time ranges)."""
    return _hl7.dtm_floor(dtm) if dtm else None


def _value(object_id: str, attribute: str, value: str, scheme: str | None = None) -> dict[str, str | None]:
    return {"object_id": object_id, "attribute": attribute, "value": value[:256], "scheme": scheme}


def _document_row(de: _model.DocumentEntry) -> dict[str, object]:
    def code(c: _model.Code | None) -> tuple[str | None, str | None]:
        return (c.code, c.scheme) if c else (None, None)

    row: dict[str, object] = {
        "id": de.entry_uuid, "object_type": de.object_type, "mime_type": de.mime_type,
        "hash": de.hash.lower() if de.hash else None, "size": de.size,
        "repository_unique_id": de.repository_unique_id, "creation_time": _padded(de.creation_time),
        "service_start_time": _padded(de.service_start_time), "service_stop_time": _padded(de.service_stop_time),
    }
    for name, c in (("class", de.class_code), ("type", de.type_code), ("format", de.format_code),
                    ("hcft", de.healthcare_facility_type_code), ("practice", de.practice_setting_code)):
        row[f"{name}_code"], row[f"{name}_scheme"] = code(c)
    return row


def _document_values(de: _model.DocumentEntry) -> list[dict[str, str | None]]:
    i = de.entry_uuid
    return [
        *(_value(i, "confidentialityCode", c.code, c.scheme) for c in de.confidentiality_codes),
        *(_value(i, "eventCodeList", c.code, c.scheme) for c in de.event_codes),
        *(_value(i, "authorPerson", a.person) for a in de.authors if a.person),
        *(_value(i, "referenceIdList", r) for r in de.reference_ids),
    ]
