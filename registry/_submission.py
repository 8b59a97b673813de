"""Registration of a validated submission (ITI TF-3 §4.1; docs/conformance.md §3 rules 2-10).

Three steps, shared by :func:`register` (one submission, one transaction) and the bulk path (``_bulk``: many
submissions per transaction):

1. :func:`prepare` — pure: structural validation (``_validate``), the claims the submission makes on the
   registry's content (``_checks.Claims``) and, when structurally valid, the :class:`Rows` it would add,
   symbolic ids replaced by UUIDs.
2. ``_checks.check`` — pure: the rules that need the registry's content, against ``_checks.Known`` (what the
   registry holds about the objects the claims name, loaded with a few set-based queries).
3. :func:`insert_rows` then :func:`apply_lifecycle` — the writes.

Any error refuses the whole submission (the caller rolls back or leaves its rows out)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, exc, insert, select, text, update

from registry import _hl7, _model, _pg_rows, _uuids
from registry._catalogue import Problem
from registry._checks import Claims, Known, check, claims_of
from registry._direct import DirectStatement
from registry._errors import RegistryError, Severity, SubmissionRefused
from registry._profile import MetadataProfile
from registry._rim import Classification, Kind, RimObject, RimSubmission, Slot
from registry._rim_write import object_xml
from registry._schema import (
    association,
    folder,
    registry_object,
    submission_origin,
)
from registry._stored_form import encode
from registry._validate import Classified, Validator
from registry._visibility import Origin
from registry._vocabulary import NODE_FOLDER, NODE_SUBMISSION_SET, REPLACEMENTS, AssociationType, IdScheme, Status

Row = dict[str, Any]
_REPLACEMENTS = frozenset(t.value for t in REPLACEMENTS)


def register(conn: Connection, sub: RimSubmission, *, require_repository_attributes: bool, now: str,
             profile: MetadataProfile = MetadataProfile.DMP, origin: Origin | None = None) -> list[RegistryError]:
    """Validate and store ``sub`` (and who filed it, when known). Returns the warnings; raises
    :class:`SubmissionRefused` with every error."""
    p = prepare(sub, require_repository_attributes=require_repository_attributes, now=now, profile=profile)
    return register_prepared(conn, p, now=now, origin=origin)


def register_prepared(conn: Connection, p: Prepared, *, now: str, origin: Origin | None = None
                      ) -> list[RegistryError]:
    """:func:`register` of a submission made ready by :func:`prepare` (with the same ``now``)."""
    if p.rows is not None:
        lock_new_ids(conn, [o["id"] for o in p.rows.objects])
    findings = p.findings + (check(p.claims, Known.load(conn, [p.claims])) if p.claims else [])
    if refuses(findings) or p.rows is None:
        raise SubmissionRefused(findings)
    insert_rows(conn, [p.rows], origin)
    apply_lifecycle(conn, p.rows, now)
    return findings


def lock_new_ids(conn: Connection, ids: Iterable[str]) -> None:
    """On a partitioned registry (PostgreSQL), lock the ids a transaction is about to register, before its checks
    look them up: a concurrent registration of one of them waits for this transaction to end, then its checks
    see the id taken (ID_TAKEN, ITI TF-3 4.2.4) instead of both committing. Without partitions the primary key
    of ``registry_object`` makes ids unique; partitioned, it is ``(id, patient_key)`` (migration 0008_scale,
    docs/registry-storage.md). Transaction-level advisory locks, taken in one statement in key order (two
    transactions never wait on each other's locks crosswise); an id's key is a 64-bit hash of its text."""
    if conn.dialect.name != "postgresql" or not _partitioned(conn):
        return
    keys = sorted({int.from_bytes(hashlib.blake2b(i.encode(), digest_size=8, person=b"dmp-registry-id").digest(),
                                  "big", signed=True) for i in ids})
    if keys:
        _LOCK_IDS.run(conn, {"keys": keys})


_LOCK_IDS = DirectStatement(text("SELECT count(pg_advisory_xact_lock(k)) FROM "
                                 "(SELECT unnest(CAST(:keys AS bigint[])) AS k ORDER BY k) AS ids"))


def _partitioned(conn: Connection) -> bool:
    """Whether ``registry_object`` is partitioned (asked once per database connection: fixed by migration)."""
    info = conn.connection.info
    if (found := info.get("registry_partitioned")) is None:
        found = info["registry_partitioned"] = bool(conn.exec_driver_sql(
            "SELECT EXISTS (SELECT 1 FROM pg_partitioned_table WHERE partrelid = 'registry_object'::regclass)"
        ).scalar())
    return bool(found)


def write_origin(conn: Connection, submission_set_id: str, origin: Origin | None) -> None:
    if origin is not None:
        _INSERT_ORIGIN.run(conn, _origin_row(submission_set_id, origin))


def _origin_row(submission_set_id: str, origin: Origin) -> Row:
    return {"submission_set_id": submission_set_id, "submitter": origin.submitter[:64],
            "structure_id": origin.structure[:64] if origin.structure else None, "by_patient": origin.by_patient}


_INSERT_ORIGIN = DirectStatement(insert(submission_origin))


def refuses(findings: Iterable[RegistryError]) -> bool:
    return any(e.severity is Severity.ERROR for e in findings)


def database_refusal(refused: exc.IntegrityError | exc.DataError) -> RegistryError:
    """The answer to a submission whose rows the database refused after the checks passed."""
    if isinstance(refused, exc.IntegrityError):
        # A concurrent submission registered the same ids/uniqueIds between our checks and our inserts.
        return Problem.REGISTERED_CONCURRENTLY(None)
    # PostgreSQL refuses a value wider than its column (SQLite stores it): the sender's metadata is at fault,
    # not the database, so say so rather than "unavailable" (which invites endless retries).
    reason = str(refused.orig).splitlines()[0] if refused.orig else "invalid value"
    return Problem.VALUE_DOES_NOT_FIT_STORAGE(None, reason=reason)


@dataclass
class Prepared:
    """A submission after everything that needs no database: its structural findings (errors and warnings),
    its claims on the registry (None without exactly one SubmissionSet) and, when structurally valid, its
    rows. Plain data, so it can be made in another process."""

    findings: list[RegistryError]
    claims: Claims | None
    rows: Rows | None


def prepare(sub: RimSubmission, *, require_repository_attributes: bool, now: str,
            profile: MetadataProfile = MetadataProfile.DMP) -> Prepared:
    v = Validator(require_repository_attributes=require_repository_attributes, profile=profile)
    c = v.validate(sub)
    claims = claims_of(c) if len(c.submission_sets) == 1 else None
    rows = None if refuses(v.errors) else rows_of(c, now)  # after claims_of: rows_of replaces symbolic ids
    return Prepared(v.errors, claims, rows)


# --- storing ----------------------------------------------------------------------------------------


@dataclass
class Rows:
    """What one submission adds, table by table, and the registered objects its registration affects:
    documents it replaces (RPLC, XFRM_RPLC: (new, old)) and existing Folders it adds members to."""

    submission_set_id: str
    objects: list[Row] = field(default_factory=list)
    documents: list[Row] = field(default_factory=list)
    submission_sets: list[Row] = field(default_factory=list)
    folders: list[Row] = field(default_factory=list)
    associations: list[Row] = field(default_factory=list)
    values: list[Row] = field(default_factory=list)
    replacements: list[tuple[str, str]] = field(default_factory=list)
    folders_given_members: list[str] = field(default_factory=list)

    @property
    def affects_registered(self) -> bool:
        return bool(self.replacements or self.folders_given_members)


def _assign_ids(c: Classified) -> None:
    """Replace symbolic ids (anything not a urn:uuid:, docs/conformance.md §3 rule 2) everywhere."""
    mapping: dict[str, str] = {}

    def new(ident: str) -> str:
        if ident.startswith("urn:uuid:"):
            return ident
        return mapping.setdefault(ident, _uuids.urn_uuid())

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


def rows_of(c: Classified, now: str, versions: dict[int, tuple[str, int]] | None = None) -> Rows:
    """The rows of every object of ``c``, symbolic ids replaced by UUIDs (in ``c`` too). ``versions`` (keyed by
    ``id(obj)``) gives (logicalID, version) of new versions of existing objects (ITI-57); everything else is a
    first version whose lid is its id."""
    versions = versions or {}
    _assign_ids(c)
    ss = c.submission_set
    key = _hl7.patient_key(ss.external_id(IdScheme.SS_PATIENT_ID.uuid) or "")
    out = Rows(ss.id)
    for o in c.all():
        kind = _kind(o, c)
        lid, version = versions.get(id(o), (o.id, 1))
        o.lid, o.version_name, o.home = lid, str(version), None
        o.status = None  # status lives in its column and is written out at query time
        if kind in ("SS", "FD") and not any(cl.node for cl in o.classifications):
            # Sent at top level (NIST samples do): keep it with the package so stored XML is self-contained.
            o.classifications.append(Classification(id=_uuids.urn_uuid(), classified_object=o.id,
                                                    node=NODE_SUBMISSION_SET if kind == "SS" else NODE_FOLDER))
        if kind == "FD":
            o.slots = [s for s in o.slots if s.name != "lastUpdateTime"]
            o.slots.insert(0, Slot("lastUpdateTime", [now]))
        unique = {
            "DE": IdScheme.DE_UNIQUE_ID, "SS": IdScheme.SS_UNIQUE_ID, "FD": IdScheme.FOLDER_UNIQUE_ID,
        }.get(kind)
        out.objects.append({
            "id": o.id, "lid": lid, "version": version, "kind": kind, "status": Status.APPROVED.value,
            "patient_key": key if kind != "AS" else None,
            "unique_id": o.external_id(unique.uuid) if unique else None,
            "submission_set_id": ss.id, "xml": encode(object_xml(o)),
        })
        if kind == "DE":
            de = _model.document_entry(o)
            out.documents.append(_document_row(de))
            out.values += _document_values(de)
        elif kind == "SS":
            s = _model.submission_set(o)
            out.submission_sets.append({
                "id": s.entry_uuid, "source_id": s.source_id, "submission_time": _padded(s.submission_time),
                "content_type_code": s.content_type_code.code if s.content_type_code else None,
                "content_type_scheme": s.content_type_code.scheme if s.content_type_code else None})
            out.values += [_value(s.entry_uuid, "authorPerson", a.person) for a in s.authors if a.person]
        elif kind == "FD":
            f = _model.folder(o)
            out.folders.append({"id": f.entry_uuid, "last_update_time": now})
            out.values += [_value(f.entry_uuid, "codeList", cd.code, cd.scheme) for cd in f.codes]
        else:
            a = _model.association(o)
            out.associations.append({"id": a.entry_uuid, "association_type": a.association_type, "source": a.source,
                                     "target": a.target, "submission_set_status": a.submission_set_status})
    out.replacements = [(a.source, a.target) for a in c.associations
                        if a.association_type in _REPLACEMENTS and a.source and a.target]
    in_message = {o.id for o in c.all()}
    out.folders_given_members = list(dict.fromkeys(
        a.source for a in c.associations
        if a.association_type == AssociationType.HAS_MEMBER.value and a.source and a.source not in in_message))
    return out


_ROWS_OF = {"registry_object": "objects", "document_entry": "documents", "submission_set": "submission_sets",
            "folder": "folders", "association": "associations", "object_value": "values"}
# The tables of a registration with the ``Rows`` attribute that holds each one's rows, in the one order both
# PostgreSQL ways write them (``_pg_rows.TABLES``); submission_origin's row comes from the origin instead.
_TABLES = tuple((table, _ROWS_OF[table.name]) for table in _pg_rows.TABLES if table is not submission_origin)


_INSERTS = {table.name: DirectStatement(table.insert()) for table, _ in _TABLES}   # compiled once per dialect

ONE_STATEMENT_ROWS = 2000
"""On PostgreSQL, registrations of at most this many rows in all are written with one statement
(``_pg_rows.insert_in_one_statement``: one round trip); more (the bulk path's batches) with one COPY per table."""


def insert_rows(conn: Connection, rows: Sequence[Rows], origin: Origin | None = None, *,
                one_statement: bool | None = None) -> None:
    """Insert the rows of one or more submissions, and ``origin`` (who filed the submission: only with one).

    On PostgreSQL, one statement for every table (``ONE_STATEMENT_ROWS`` at most, or ``one_statement``) or one
    COPY per table (a few times cheaper than INSERTs on both ends for many rows); elsewhere executemany per
    table, then the origin."""
    if origin is not None and len(rows) != 1:
        raise ValueError("an origin is written with the rows of one submission")
    if conn.dialect.name != "postgresql":
        for table, attr in _TABLES:
            if batch := [row for r in rows for row in getattr(r, attr)]:
                _INSERTS[table.name].run_many(conn, batch)
        if origin is not None:
            write_origin(conn, rows[0].submission_set_id, origin)
        return
    by_table = [[row for r in rows for row in getattr(r, attr)] for _, attr in _TABLES]
    origins = [] if origin is None else [_origin_row(rows[0].submission_set_id, origin)]
    if one_statement is None:
        one_statement = sum(map(len, by_table)) <= ONE_STATEMENT_ROWS
    if one_statement:
        _pg_rows.insert_in_one_statement(conn, [*by_table, origins])
        return
    for table, batch in zip(_pg_rows.TABLES, (*by_table, origins), strict=True):
        if batch:
            _pg_rows.copy_rows(conn, table, batch)


def _store(conn: Connection, c: Classified, now: str, versions: dict[int, tuple[str, int]] | None = None) -> str:
    """Insert every object of ``c`` and apply its effects on registered objects (see :func:`rows_of`). Returns
    the id of the SubmissionSet."""
    rows = rows_of(c, now, versions)
    insert_rows(conn, [rows])
    apply_lifecycle(conn, rows, now)
    return rows.submission_set_id


def apply_lifecycle(conn: Connection, rows: Rows, now: str) -> list[str]:
    """Effects of a registration on what is already registered (ITI TF-3 §4.1.6-4.1.8; docs/conformance.md §3):
    RPLC / XFRM_RPLC deprecate their target, and the APND / XFRM documents that depend on it (recursively);
    every Folder that held a replaced document receives its replacement; adding a document to an existing
    Folder bumps the Folder's lastUpdateTime. Returns the ids it deprecated."""
    ro, asc = registry_object.c, association.c
    replacements = rows.replacements
    replaced = [t for _, t in replacements]
    deprecated = list(replaced)
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
                deprecated += frontier
    touched: set[str] = set()
    for new, old in replacements:
        holders = conn.execute(
            select(asc.source).join(registry_object, ro.id == asc.source)
            .where(asc.target == old, asc.association_type == AssociationType.HAS_MEMBER.value,
                   ro.kind == "FD", ro.status == Status.APPROVED.value)).scalars().all()
        for fd in holders:
            insert_association(conn, AssociationType.HAS_MEMBER.value, fd, new, rows.submission_set_id)
            touched.add(fd)
    touched |= set(rows.folders_given_members)
    if touched:
        conn.execute(update(folder).where(folder.c.id.in_(sorted(touched))).values(last_update_time=now))
    return deprecated


def insert_association(conn: Connection, association_type: str, source: str, target: str, submission_set_id: str,
                       template: RimObject | None = None) -> str:
    """Register an association the registry itself creates (folder membership of a replacement, propagation
    to a new version). ``template`` keeps the slots/classifications of the association it derives from."""
    new_id = _uuids.urn_uuid()
    obj = template or RimObject(Kind.ASSOCIATION, new_id)
    obj.id = obj.lid = new_id
    obj.version_name, obj.status, obj.home = "1", None, None
    obj.association_type, obj.source, obj.target = association_type, source, target
    for cl in obj.classifications:
        cl.id, cl.classified_object = _uuids.urn_uuid(), new_id
    conn.execute(insert(registry_object).values(
        id=new_id, lid=new_id, version=1, kind="AS", status=Status.APPROVED.value, patient_key=None, unique_id=None,
        submission_set_id=submission_set_id, xml=object_xml(obj)))
    conn.execute(insert(association).values(id=new_id, association_type=association_type, source=source,
                                            target=target, submission_set_status=obj.slot_value("SubmissionSetStatus")))
    return new_id


def _padded(dtm: str | None) -> str | None:
    """Times are indexed as 14 digits (the earliest instant they denote) so that ranges compare as strings;
    the submitted precision stays in the stored XML (ITI TF-2a 3.18.4.1.2.3.7.1 time ranges)."""
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
