"""Stored query execution (ITI TF-2a §3.18.4.1.2.3.7; docs/conformance.md §6): parameters -> SQL -> object ids.

Every DocumentEntry selection goes through :func:`_documents`, where the caller's ``document_filter`` (a SQL
predicate over ``registry_object``/``document_entry``) is applied inside the query, so what a principal may
not see is never read, counted or paged. Results are ids by kind; ``render`` turns them into ebRIM."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Connection, LargeBinary, Select, String, and_, exists, select, type_coerce

from registry._catalogue import Problem
from registry._query_args import Args
from registry._query_params import QueryError
from registry._schema import (
    association,
    document_entry,
    folder,
    object_value,
    registry_object,
    submission_set,
    with_lid,
    with_version,
)
from registry._sql_bool import all_of, any_of
from registry._vocabulary import DE_STABLE, AssociationType

Q = Select[Any]  # a one-column SELECT of object ids
ro, de, ov, asc = registry_object.c, document_entry.c, object_value.c, association.c
HAS_MEMBER = AssociationType.HAS_MEMBER.value
CHUNK = 500  # ids per IN (...) list: well under SQLite's parameter limit
_DE_CODES = {"ClassCode": "class", "TypeCode": "type", "PracticeSettingCode": "practice",
             "HealthcareFacilityTypeCode": "hcft", "FormatCode": "format"}
_P = "$XDSDocumentEntry"
# The status code and stored form of an object as stored, without the column types' decoding: a LeafClass
# answer splices the stored form's bytes and needs the status only as an attribute (registry._leaf).
STORED_AS_IS = (type_coerce(ro.status, String), type_coerce(ro.xml, LargeBinary))


@dataclass
class Result:
    """Object ids found, by kind, in the order they will be returned."""

    submission_sets: list[str] = field(default_factory=list)
    folders: list[str] = field(default_factory=list)
    documents: list[str] = field(default_factory=list)
    associations: list[str] = field(default_factory=list)

    def ids(self) -> list[str]:
        return _unique([*self.submission_sets, *self.folders, *self.documents, *self.associations])

    def __len__(self) -> int:
        return len(self.ids())


def _unique(ids: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(ids))


def chunks(ids: Sequence[str]) -> Iterable[Sequence[str]]:
    for i in range(0, len(ids), CHUNK):
        yield ids[i : i + CHUNK]


class Runner:
    """Runs one stored query. With ``leaf_class``, the statements that select objects also read their status
    and stored XML as stored (``stored``: status code, stored form), so that the answer needs no second look-up
    of the same rows (on PostgreSQL that second round trip was a third of a FindDocuments answer)."""

    def __init__(self, conn: Connection, args: Args, document_filter: ColumnElement[bool] | None,
                 limit: int, *, leaf_class: bool = False) -> None:
        self.conn, self.args, self.filter, self.limit = conn, args, document_filter, limit
        self.leaf_class = leaf_class
        self.stored: dict[str, tuple[str, bytes]] = {}  # id -> (status code, stored form of the XML)
        # id -> patient key of the objects an id-based query selected, read with them: the single-patient
        # check (and the caller's patient binding) needs no second look-up by id of the same rows, which on a
        # partitioned registry probes every partition (docs/registry-storage.md).
        self.patients: dict[str, str | None] = {}

    def run(self) -> Result:
        name = self.args.query.name
        handler = getattr(self, "_" + name.replace("ForMultiplePatients", "").lower())
        result: Result = handler()
        return result

    # --- helpers ----------------------------------------------------------------------------------

    def _ids(self, stmt: Q, *, with_patients: bool = False) -> list[str]:
        """The ids ``stmt`` selects (at most the limit); with ``with_patients`` their patient keys too
        (:attr:`patients`)."""
        if with_patients:
            stmt = stmt.add_columns(ro.patient_key)
        if self.leaf_class:
            stmt = stmt.add_columns(*STORED_AS_IS)
        found: Sequence[Any] = self.conn.execute(stmt.limit(self.limit + 1)).all()  # rows of 1 to 4 columns
        if self.leaf_class:
            self.stored.update((r[0], (r[-2], r[-1])) for r in found)
        if with_patients:
            self.patients.update((r[0], r[1]) for r in found)
        rows = [str(r[0]) for r in found]
        if len(rows) > self.limit:
            raise QueryError([Problem.TOO_MANY_ROWS(None, limit=self.limit)])
        return rows

    def _documents(self, stmt: Q, *, with_patients: bool = False) -> list[str]:
        if self.filter is not None:
            stmt = stmt.where(self.filter)
        return self._ids(stmt.order_by(de.creation_time, ro.id), with_patients=with_patients)

    def _base_documents(self) -> Q:
        return select(ro.id).join(document_entry, de.id == ro.id).where(ro.kind == "DE")

    def _content_filters(self, stmt: Q) -> Q:
        """Filters shared by FindDocuments, GetAll and the *AndContents queries."""
        a = self.args
        for param, col in _DE_CODES.items():
            if a.has(_P + param):
                stmt = stmt.where(_codes_match(de[f"{col}_code"], de[f"{col}_scheme"], a.values[_P + param]))
        for param, attribute in (("EventCodeList", "eventCodeList"), ("ConfidentialityCode", "confidentialityCode")):
            if a.has(_P + param):
                stmt = stmt.where(_all_groups(attribute, a.groups[_P + param], coded=True))
        types = a.values.get(_P + "Type", [DE_STABLE])
        return stmt.where(de.object_type.in_(types))

    def _by_id_or_unique_id(self, kind: str, uuid_param: str, uid_param: str, lid_param: str | None = None
                            ) -> list[str]:
        a = self.args
        by_id = a.has(uuid_param)
        if by_id:
            stmt = select(ro.id).where(ro.kind == kind, ro.id.in_(a.values[uuid_param]))
        elif lid_param and a.has(lid_param):
            stmt = select(ro.id).where(ro.kind == kind, with_lid(a.values[lid_param]))
        else:
            # A uniqueId names the latest version of each logical document holding it: versions share it
            # after ITI-57 updates, and the same document may be registered twice as two entries (ITI TF-3
            # 4.2.4.1: same uniqueId, hash and size), each a logical document of its own, both returned.
            latest = (select(ro.lid, ro.version, ro.patient_key)
                      .where(ro.kind == kind, ro.unique_id.in_(a.values[uid_param])))
            top: dict[str, int] = {}
            patients: set[str | None] = set()
            with self._planned_once():
                found = self.conn.execute(latest).all()
            for r in found:
                top[r.lid] = max(r.version, top.get(r.lid, r.version))
                patients.add(r.patient_key)
            stmt = select(ro.id).where(ro.kind == kind, any_of([with_version(lid, v) for lid, v in top.items()]))
            if top and None not in patients:
                # The latest versions are among the rows just read, so their patients are among these: naming
                # them lets a partitioned registry read only their partitions (same rows either way).
                stmt = stmt.where(ro.patient_key.in_(sorted(patients)))
        with self._planned_once() if by_id else nullcontext():
            if kind == "DE":
                return self._documents(stmt.join(document_entry, de.id == ro.id), with_patients=True)
            return self._ids(stmt, with_patients=True)

    @contextmanager
    def _planned_once(self) -> Iterator[None]:
        """The statements run inside use PostgreSQL's generic plan of their prepared statement (psycopg prepares
        a statement run 5 times on a connection) instead of a plan made for each execution (the session's
        ``force_custom_plan``, ``registry._store``). Only for look-ups by a unique key (entryUUID, uniqueId),
        whose plan does not depend on the values: on a partitioned registry, where no patient prunes them,
        planning such a look-up over every partition cost more than running it (10 entryUUIDs, 16
        partitions: 0.47 ms of planning, 0.29 ms of execution; docs/registry-storage.md). SET LOCAL: a
        rolled-back transaction undoes it too."""
        if self.conn.dialect.name != "postgresql":
            yield
            return
        driver = self.conn.connection.driver_connection
        assert driver is not None
        driver.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        try:
            yield
        except QueryError:  # an answer, not a failed transaction: later statements plan as usual again
            driver.execute("SET LOCAL plan_cache_mode = force_custom_plan")
            raise
        driver.execute("SET LOCAL plan_cache_mode = force_custom_plan")

    def _associations(self, *, sources: Sequence[str] = (), targets: Sequence[str] = (),
                      types: Sequence[str] | None = None) -> list[tuple[str, str, str, str]]:
        """(id, type, source, target) of associations touching the given ends."""
        out: dict[str, tuple[str, str, str, str]] = {}
        for col, ids in ((asc.source, sources), (asc.target, targets)):
            for chunk in chunks(list(ids)):
                stmt = select(asc.id, asc.association_type, asc.source, asc.target).where(col.in_(chunk))
                if types is not None:
                    stmt = stmt.where(asc.association_type.in_(types))
                for r in self.conn.execute(stmt):
                    out[r.id] = (r.id, r.association_type, r.source, r.target)
        return list(out.values())

    def _kinds(self, ids: Iterable[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        for chunk in chunks(list(ids)):
            found.update({r.id: r.kind for r in self.conn.execute(select(ro.id, ro.kind).where(ro.id.in_(chunk)))})
        return found

    def patients_of(self, ids: Iterable[str]) -> set[str | None]:
        """The patient keys of the registry objects ``ids`` (None for an Association; ids of no object add
        nothing): from :attr:`patients` for the objects this query read, from the database for the others."""
        keys: set[str | None] = set()
        unknown: list[str] = []
        for i in _unique(ids):
            if i in self.patients:
                keys.add(self.patients[i])
            else:
                unknown.append(i)
        for chunk in chunks(unknown):
            keys |= set(self.conn.execute(select(ro.patient_key).where(ro.id.in_(chunk)).distinct()).scalars())
        return keys

    def _single_patient(self, result: Result) -> Result:
        """Id-based queries must not mix patients (XDSResultNotSinglePatient, ITI TF-2a 3.18.4.1.2.3.7)."""
        keys = self.patients_of([*result.submission_sets, *result.folders, *result.documents])
        if len(keys - {None}) > 1:
            raise QueryError([Problem.RESULT_NOT_SINGLE_PATIENT(None)])
        return result

    # --- Find* ------------------------------------------------------------------------------------

    def _finddocuments(self) -> Result:
        a = self.args
        stmt = self._base_documents().where(ro.status.in_(a.values[_P + "Status"]))
        if a.has(_P + "PatientId"):
            stmt = stmt.where(ro.patient_key.in_(a.values[_P + "PatientId"]))
        stmt = self._content_filters(stmt)
        if a.has(_P + "AuthorPerson"):
            stmt = stmt.where(_has_like("authorPerson", a.values[_P + "AuthorPerson"]))
        for param, col in (("CreationTime", de.creation_time), ("ServiceStartTime", de.service_start_time),
                           ("ServiceStopTime", de.service_stop_time)):
            stmt = _time_range(stmt, col, a.one(f"{_P}{param}From"), a.one(f"{_P}{param}To"))
        if a.has(_P + "ReferenceIdList"):
            stmt = stmt.where(_all_groups("referenceIdList", a.groups[_P + "ReferenceIdList"], coded=False))
        return Result(documents=self._documents(stmt))

    _finddocumentsbyreferenceid = _finddocuments

    def _findsubmissionsets(self) -> Result:
        a, s = self.args, submission_set.c
        stmt = (select(ro.id).join(submission_set, s.id == ro.id)
                .where(ro.kind == "SS", ro.patient_key == a.one("$XDSSubmissionSetPatientId"),
                       ro.status.in_(a.values["$XDSSubmissionSetStatus"])))
        if a.has("$XDSSubmissionSetSourceId"):
            stmt = stmt.where(s.source_id.in_(a.values["$XDSSubmissionSetSourceId"]))
        stmt = _time_range(stmt, s.submission_time, a.one("$XDSSubmissionSetSubmissionTimeFrom"),
                           a.one("$XDSSubmissionSetSubmissionTimeTo"))
        if a.has("$XDSSubmissionSetAuthorPerson"):
            stmt = stmt.where(_has_like("authorPerson", a.values["$XDSSubmissionSetAuthorPerson"]))
        if a.has("$XDSSubmissionSetContentType"):
            stmt = stmt.where(_codes_match(s.content_type_code, s.content_type_scheme,
                                           a.values["$XDSSubmissionSetContentType"]))
        return Result(submission_sets=self._ids(stmt.order_by(s.submission_time, ro.id)))

    def _findfolders(self) -> Result:
        a, f = self.args, folder.c
        stmt = (select(ro.id).join(folder, f.id == ro.id)
                .where(ro.kind == "FD", ro.status.in_(a.values["$XDSFolderStatus"])))
        if a.has("$XDSFolderPatientId"):
            stmt = stmt.where(ro.patient_key.in_(a.values["$XDSFolderPatientId"]))
        stmt = _time_range(stmt, f.last_update_time, a.one("$XDSFolderLastUpdateTimeFrom"),
                           a.one("$XDSFolderLastUpdateTimeTo"))
        if a.has("$XDSFolderCodeList"):
            stmt = stmt.where(_all_groups("codeList", a.groups["$XDSFolderCodeList"], coded=True))
        return Result(folders=self._ids(stmt.order_by(f.last_update_time, ro.id)))

    # --- Get* -------------------------------------------------------------------------------------

    def _getall(self) -> Result:
        a = self.args
        patient = a.one("$patientId")
        docs = self._documents(self._content_filters(
            self._base_documents().where(ro.patient_key == patient, ro.status.in_(a.values[_P + "Status"]))))
        sss = self._ids(select(ro.id).where(ro.kind == "SS", ro.patient_key == patient,
                                            ro.status.in_(a.values["$XDSSubmissionSetStatus"])))
        fds = self._ids(select(ro.id).where(ro.kind == "FD", ro.patient_key == patient,
                                            ro.status.in_(a.values["$XDSFolderStatus"])))
        ends = {*docs, *sss, *fds}
        assocs = [x for x in self._associations(sources=sorted(ends)) if x[3] in ends]
        # SubmissionSet HasMember of a Folder->DocumentEntry association whose ends are both returned.
        member_assocs = {x[0] for x in assocs}
        assocs += [x for x in self._associations(targets=sorted(member_assocs)) if x[2] in ends]
        return Result(sss, fds, docs, _unique(x[0] for x in assocs))

    def _getdocuments(self) -> Result:
        docs = self._by_id_or_unique_id("DE", _P + "EntryUUID", _P + "UniqueId", _P + "LogicalID")
        return self._single_patient(Result(documents=docs))

    def _getfolders(self) -> Result:
        fds = self._by_id_or_unique_id("FD", "$XDSFolderEntryUUID", "$XDSFolderUniqueId", "$XDSFolderLogicalID")
        return self._single_patient(Result(folders=fds))

    def _getassociations(self) -> Result:
        uuids = self.args.values["$uuid"]
        # The associations of objects of two patients would be a result spanning patients (the objects named
        # are what has a patient; associations never link two patients' objects).
        self._single_patient(Result(documents=list(uuids)))
        return Result(associations=self._visible_assocs(self._associations(sources=uuids, targets=uuids)))

    def _visible_assocs(self, assocs: list[tuple[str, str, str, str]]) -> list[str]:
        """Drop associations that point at documents the caller's filter hides."""
        if self.filter is None:
            return _unique(x[0] for x in assocs)
        ends = self._kinds({e for x in assocs for e in x[2:]})
        docs = [i for i, k in ends.items() if k == "DE"]
        visible = {d for chunk in chunks(docs)
                   for d in self.conn.execute(self._base_documents().where(ro.id.in_(chunk), self.filter)).scalars()}
        hidden = set(docs) - visible
        return _unique(x[0] for x in assocs if x[2] not in hidden and x[3] not in hidden)

    def _getdocumentsandassociations(self) -> Result:
        docs = self._by_id_or_unique_id("DE", _P + "EntryUUID", _P + "UniqueId")
        assocs = self._associations(sources=docs, targets=docs)
        return self._single_patient(Result(documents=docs, associations=self._visible_assocs(assocs)))

    def _getsubmissionsets(self) -> Result:
        members = self._associations(targets=self.args.values["$uuid"], types=[HAS_MEMBER])
        kinds = self._kinds(x[2] for x in members)
        members = [x for x in members if kinds.get(x[2]) == "SS"]
        return self._single_patient(Result(submission_sets=_unique(x[2] for x in members),
                                           associations=_unique(x[0] for x in members)))

    def _getsubmissionsetandcontents(self) -> Result:
        sss = self._by_id_or_unique_id("SS", "$XDSSubmissionSetEntryUUID", "$XDSSubmissionSetUniqueId")
        if not sss:
            return Result()
        members = self._associations(sources=sss, types=[HAS_MEMBER])
        kinds = self._kinds(x[3] for x in members)
        docs = self._filtered_members([x[3] for x in members if kinds.get(x[3]) == "DE"])
        fds = [x[3] for x in members if kinds.get(x[3]) == "FD"]
        # Folder membership associations submitted with this SubmissionSet, kept when their document is kept.
        inner = {x[0]: x for x in self._associations(sources=fds, types=[HAS_MEMBER])}
        kept_inner = {x[3] for x in members if x[3] in inner and inner[x[3]][3] in docs}
        assocs = [x[0] for x in members if x[3] in docs or x[3] in fds or x[3] in kept_inner]
        return Result(sss, fds, docs, _unique([*assocs, *kept_inner]))

    def _filtered_members(self, candidates: list[str]) -> list[str]:
        found: list[str] = []
        for chunk in chunks(candidates):
            found += self._documents(self._content_filters(self._base_documents().where(ro.id.in_(chunk))))
        return found

    def _getfolderandcontents(self) -> Result:
        fds = self._by_id_or_unique_id("FD", "$XDSFolderEntryUUID", "$XDSFolderUniqueId")
        if not fds:
            return Result()
        members = self._associations(sources=fds, types=[HAS_MEMBER])
        docs = self._filtered_members([x[3] for x in members])
        return Result(folders=fds, documents=docs, associations=[x[0] for x in members if x[3] in docs])

    def _getfoldersfordocument(self) -> Result:
        docs = self._by_id_or_unique_id("DE", _P + "EntryUUID", _P + "UniqueId")
        members = self._associations(targets=docs, types=[HAS_MEMBER])
        kinds = self._kinds(x[2] for x in members)
        return self._single_patient(Result(folders=_unique(x[2] for x in members if kinds.get(x[2]) == "FD")))

    def _getrelateddocuments(self) -> Result:
        docs = self._by_id_or_unique_id("DE", _P + "EntryUUID", _P + "UniqueId")
        if not docs:
            return Result()
        assocs = self._associations(sources=docs, targets=docs, types=self.args.values["$AssociationTypes"])
        others = [e for x in assocs for e in x[2:] if e not in docs]
        types = self.args.values.get(_P + "Type", [DE_STABLE, "urn:uuid:34268e47-fdf5-41a6-ba33-82133c465248"])
        related: list[str] = []
        for chunk in chunks(_unique(others)):
            related += self._documents(self._base_documents().where(ro.id.in_(chunk), de.object_type.in_(types)))
        if not related:
            return Result()  # no related document: nothing to return (ITI TF-2a 3.18.4.1.2.3.7.10, empty case)
        kept = [x[0] for x in assocs if x[2] in related or x[3] in related]
        return Result(documents=_unique([*docs, *related]), associations=kept)


def _codes_match(code_col: ColumnElement[str | None], scheme_col: ColumnElement[str | None], values: list[str]
                 ) -> ColumnElement[bool]:
    pairs = [v.split("^^", 1) for v in values]
    return any_of([and_(code_col == c, scheme_col == s) for c, s in pairs])


def _all_groups(attribute: str, groups: list[list[str]], *, coded: bool) -> ColumnElement[bool]:
    """AND of OR-groups (ITI TF-2a 3.18.4.1.2.3, AND/OR semantics); identical groups are one condition."""
    unique = {tuple(sorted(set(g))): g for g in groups}
    return all_of([_has_value(attribute, g, coded=coded) for g in unique.values()])


def _has_value(attribute: str, values: list[str], *, coded: bool) -> ColumnElement[bool]:
    if coded:
        pairs = [v.split("^^", 1) for v in values]
        match = any_of([and_(ov.value == c, ov.scheme == s) for c, s in pairs])
    else:
        match = ov.value.in_(values)
    return exists(select(ov.object_id).where(ov.object_id == ro.id, ov.attribute == attribute, match))


def _has_like(attribute: str, patterns: list[str]) -> ColumnElement[bool]:
    """authorPerson with SQL LIKE wildcards % and _, OR over the values (ITI TF-2a 3.18.4.1.2.3.7.1).
    Case-insensitive, with backslash as the escape character, so that SQLite and PostgreSQL answer alike."""
    return exists(select(ov.object_id).where(ov.object_id == ro.id, ov.attribute == attribute,
                                             any_of([ov.value.ilike(p, escape="\\") for p in patterns])))


def _time_range(stmt: Q, col: ColumnElement[str | None], start: str | None, end: str | None
                ) -> Q:
    """``From <= value < To`` on 14-digit padded values; objects without the attribute never match a bound."""
    if start is not None:
        stmt = stmt.where(col >= start)
    if end is not None:
        stmt = stmt.where(col < end)
    return stmt
