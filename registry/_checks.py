"""The registration rules that need the registry's content (ITI TF-3 4.1, 4.2; docs/conformance.md §3
rules 3-8), as pure functions.

A submission's :class:`Claims` (its patient, the ids and uniqueIds it takes, what its associations point at)
are checked against :class:`Known`: what the registry holds about exactly those objects, loaded with a
constant number of set-based queries for one submission or for a whole batch of them, and kept up to date
as the submissions of a batch are accepted one after the other. So checking N submissions in one
transaction gives what N single registrations in a row would give."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Integer,
    any_,
    bindparam,
    cast,
    literal_column,
    null,
    select,
    union_all,
)
from sqlalchemy.dialects.postgresql import ARRAY

from registry import _hl7
from registry._catalogue import Problem
from registry._direct import DirectStatement
from registry._errors import RegistryError
from registry._query_run import CHUNK, chunks
from registry._schema import document_entry, patient, registry_object
from registry._validate import Classified, Validator
from registry._vocabulary import REPLACEMENTS, AssociationType, IdScheme, Status

Row = dict[str, Any]
_RELATIONSHIPS = frozenset(t.value for t in AssociationType if t.is_relationship)
_REPLACEMENTS = frozenset(t.value for t in REPLACEMENTS)


class _Errors(list[RegistryError]):
    def add(self, problem: Problem, location: str | None, **values: object) -> None:
        self.append(problem(location, **values))


@dataclass(frozen=True)
class Existing:
    """What registration needs to know about an object already in the registry."""

    id: str
    kind: str
    status: str
    patient_key: str | None
    unique_id: str | None


@dataclass(frozen=True)
class Link:
    """An association of the submission, as sent."""

    id: str
    type: str | None
    source: str | None
    target: str | None
    submission_set_status: str | None


@dataclass(frozen=True)
class Claims:
    """What a submission asks of the registry's content, with ids as the sender wrote them (the locations of
    the errors): its patient, the ids and uniqueIds it takes, the objects its associations point at."""

    ss_id: str
    patient_id: str | None
    patient_key: str | None
    patient_is_cx: bool  # otherwise structural validation has already refused the patientId
    object_ids: tuple[str, ...]
    package_unique_ids: tuple[tuple[str, str], ...]  # (uniqueId, id) of the SubmissionSet and new Folders
    document_unique_ids: tuple[tuple[str, str, str | None, str | None], ...]  # (uniqueId, id, hash, size)
    links: tuple[Link, ...]

    def outside_refs(self) -> set[str]:
        in_message = set(self.object_ids)
        return {ref for a in self.links for ref in (a.source, a.target) if ref and ref not in in_message}


def claims_of(c: Classified, new_versions: frozenset[str] = frozenset()) -> Claims:
    """``new_versions``: ids of new versions of existing objects (ITI-57), which keep their uniqueId."""
    ss = c.submission_set
    ss_pid = ss.external_id(IdScheme.SS_PATIENT_ID.uuid)
    key = _hl7.patient_key(ss_pid) if ss_pid else None
    packages = [(o, IdScheme.SS_UNIQUE_ID) for o in c.submission_sets] + [
        (o, IdScheme.FOLDER_UNIQUE_ID) for o in c.folders if o.id not in new_versions
    ]
    uids = {o.external_id(s.uuid): o.id for o, s in packages if o.external_id(s.uuid)}
    docs = {d.external_id(IdScheme.DE_UNIQUE_ID.uuid): (d.id, d.slot_value("hash"), d.slot_value("size"))
            for d in c.documents if d.id not in new_versions}
    return Claims(
        ss_id=ss.id, patient_id=ss_pid, patient_key=key,
        patient_is_cx=key is not None and _hl7.CX.parse(ss_pid or "") is not None,
        object_ids=tuple(o.id for o in c.all()),
        package_unique_ids=tuple((u, i) for u, i in uids.items() if u),
        document_unique_ids=tuple((u, *d) for u, d in docs.items() if u),
        links=tuple(Link(a.id, a.association_type, a.source, a.target, a.slot_value("SubmissionSetStatus"))
                    for a in c.associations),
    )


@dataclass
class Known:
    """What the registry holds about the objects some claims name: loaded in a few set-based queries, then kept
    up to date with what is registered in the same transaction (:meth:`add`, :meth:`deprecate`)."""

    patients: dict[str, str | None] = field(default_factory=dict)  # patient key -> closed_at
    objects: dict[str, Existing] = field(default_factory=dict)
    package_unique_ids: dict[str, int] = field(default_factory=dict)  # uniqueId -> SubmissionSets/Folders
    document_unique_ids: dict[str, list[tuple[str | None, int | None]]] = field(default_factory=dict)

    @classmethod
    def load(cls, conn: Connection, claims: Iterable[Claims], *, one_statement: bool = True) -> Known:
        """What the registry holds about what ``claims`` name. On PostgreSQL (unless ``one_statement`` is False:
        benchmarks/pg_write_path.py compares both) one statement when each set of values fits in one chunk."""
        claims = list(claims)
        k = cls()
        keys = {c.patient_key for c in claims if c.patient_is_cx and c.patient_key}
        ids = {i for c in claims for i in c.object_ids if i.startswith("urn:uuid:")}
        ids = ids.union(*(c.outside_refs() for c in claims))
        # The SubmissionSets' and Folders' uniqueIds and the DocumentEntries' in one look-up (issue 13: one
        # statement fewer per registration); each row counts only for the kind of uniqueId it was asked for.
        packages = {u for c in claims for u, _ in c.package_unique_ids}
        documents = {d[0] for c in claims for d in c.document_unique_ids}
        together = conn.dialect.name == "postgresql" and one_statement
        if together and max(len(keys), len(ids), len(packages | documents)) <= CHUNK:
            k._load_together(conn, keys, ids, packages, documents)
        else:
            k._load_apart(conn, keys, ids, packages, documents)
        return k

    def _load_together(self, conn: Connection, keys: set[str], ids: set[str], packages: set[str],
                       documents: set[str]) -> None:
        """The three look-ups of :meth:`_load_apart` in one statement, one round trip (PostgreSQL; issue 13):
        the rows of each are those its own statement returns. Only the look-ups with values to look up are in
        the statement (one text per combination, and per count of values when prepared: see :func:`_together`):
        an empty one still costs PostgreSQL its planning, on every partition of a partitioned registry."""
        unique_ids = packages | documents
        if not (keys or ids or unique_ids):
            return
        prepared = max(len(keys), len(ids), len(unique_ids)) <= PREPARED_AT_MOST
        together = _together(bool(ids), bool(keys), bool(unique_ids), prepared=prepared)
        registered_documents: dict[str, str] = {}   # id -> uniqueId of the DocumentEntries found
        for r in together.rows(conn, {"keys": sorted(keys), "ids": sorted(ids), "unique_ids": sorted(unique_ids)}):
            if r.what == _PATIENT:
                self.patients[r.patient_key] = r.closed_at
            elif r.what == _OBJECT:
                self.objects[r.id] = Existing(r.id, r.kind, r.status, r.patient_key, r.unique_id)
            elif r.kind == "DE":
                if r.unique_id in documents:
                    registered_documents[r.id] = r.unique_id
            elif r.kind in ("SS", "FD") and r.unique_id in packages:
                self._count_package(r.unique_id)
        if registered_documents:   # a DocumentEntry uniqueId sent again: rare, its hash and size looked up apart
            entries = {d.id: d for d in _document_hashes().rows(conn, {"ids": sorted(registered_documents)})}
            for entry_id, uid in registered_documents.items():
                d = entries.get(entry_id)
                self._count_document(uid, d.hash if d else None, d.size if d else None)

    def _load_apart(self, conn: Connection, keys: set[str], ids: set[str], packages: set[str],
                    documents: set[str]) -> None:
        statements = _statements(conn.dialect.name == "postgresql")
        for chunk in _ordered_chunks(keys):
            rows = statements.patients.rows(conn, {"values": chunk})
            self.patients.update({r.patient_key: r.closed_at for r in rows})
        for chunk in _ordered_chunks(ids):
            self.objects.update(_existing(conn, chunk))
        for chunk in _ordered_chunks(packages | documents):
            for r in statements.unique_ids.rows(conn, {"values": chunk}):
                self._count_unique_id(r, packages, documents)

    def _count_unique_id(self, r: Any, packages: set[str], documents: set[str]) -> None:
        if r.kind == "DE":
            if r.unique_id in documents:
                self._count_document(r.unique_id, r.hash, r.size)
        elif r.unique_id in packages:
            self._count_package(r.unique_id)

    def _count_package(self, unique_id: str) -> None:
        """One more SubmissionSet or Folder holds ``unique_id``."""
        self.package_unique_ids[unique_id] = self.package_unique_ids.get(unique_id, 0) + 1

    def _count_document(self, unique_id: str, sha1: str | None, size: int | None) -> None:
        """One more DocumentEntry holds ``unique_id``, with that hash and size."""
        self.document_unique_ids.setdefault(unique_id, []).append((sha1, size))

    def add(self, objects: Iterable[Row], documents: Iterable[Row]) -> None:
        """The ``registry_object`` and ``document_entry`` rows of a submission registered in this transaction:
        later submissions see its objects as registered."""
        by_id = {d["id"]: d for d in documents}
        for o in objects:
            self.objects[o["id"]] = Existing(o["id"], o["kind"], o["status"], o["patient_key"], o["unique_id"])
            uid = o["unique_id"]
            if uid and o["kind"] in ("SS", "FD"):
                self._count_package(uid)
            elif uid and o["kind"] == "DE":
                d = by_id[o["id"]]
                self._count_document(uid, d["hash"], d["size"])

    def deprecate(self, ids: Iterable[str]) -> None:
        for i in ids:
            if (ex := self.objects.get(i)) is not None:
                self.objects[i] = Existing(ex.id, ex.kind, Status.DEPRECATED.value, ex.patient_key, ex.unique_id)


def _existing(conn: Connection, ids: Iterable[str]) -> dict[str, Existing]:
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    rows = _statements(conn.dialect.name == "postgresql").existing.rows(conn, {"values": wanted})
    return {r.id: Existing(r.id, r.kind, r.status, r.patient_key, r.unique_id) for r in rows}


@dataclass(frozen=True)
class _Statements:
    """The look-ups of :meth:`Known.load`, built once per dialect and executed directly (``registry._direct``:
    every registration runs them, and SQLAlchemy's execution costs more CPU than SQLite's). Each takes the
    parameter ``values``."""

    patients: DirectStatement
    existing: DirectStatement
    unique_ids: DirectStatement   # SubmissionSets, Folders (hash, size NULL) and DocumentEntries holding them


_OBJECT, _PATIENT, _UNIQUE_ID = 0, 1, 2


def _among(column: ColumnElement[Any], name: str, postgresql: bool) -> ColumnElement[bool]:
    """``column`` is one of the values of parameter ``name``. On PostgreSQL one array parameter (``= ANY``):
    building and sending a 500-item IN list cost ~0.1 ms of this process's CPU per DocumentEntry in the bulk
    path. Elsewhere an IN list expanded when executed."""
    if postgresql:
        return column == any_(bindparam(name, type_=ARRAY(column.type)))
    return column.in_(bindparam(name, expanding=True))


@functools.cache
def _statements(postgresql: bool) -> _Statements:
    def among(column: ColumnElement[Any]) -> ColumnElement[bool]:
        return _among(column, "values", postgresql)

    ro, de, pt = registry_object.c, document_entry.c, patient.c
    patients = select(pt.patient_key, pt.closed_at)
    existing = select(ro.id, ro.kind, ro.status, ro.patient_key, ro.unique_id)
    unique_ids = (select(ro.unique_id, ro.kind, de.hash, de.size).outerjoin(document_entry, de.id == ro.id)
                  .where(ro.kind.in_(("SS", "FD", "DE"))))
    return _Statements(
        patients=DirectStatement(patients.where(among(pt.patient_key))),
        existing=DirectStatement(existing.where(among(ro.id))),
        unique_ids=DirectStatement(unique_ids.where(among(ro.unique_id))))


PREPARED_AT_MOST = 8
"""A registration's look-up (PostgreSQL) with at most this many values of each kind (a submission of a few
documents) is a prepared statement with one ``IN`` item per value; with more, one unprepared statement with an
array per kind (the bulk path's batches: a text per count would fill psycopg's cache of prepared statements)."""


@functools.cache
def _together(ids: bool, keys: bool, unique_ids: bool, *, prepared: bool = False) -> DirectStatement:
    """The look-ups of :class:`_Statements` asked for in one statement (PostgreSQL): registered objects by id
    (parameter ``ids``), patients (``keys``), uniqueIds (``unique_ids``), each row saying which one it answers
    (``what``). Every branch selects the same typed columns (NULL where it has none), so the results decode as
    the separate look-ups' do (``ObjectId``, ``StatusCode``). The uniqueIds' branch gives each holder's id and
    kind, not a DocumentEntry's hash and size (:func:`_document_hashes`, when one is found).

    ``prepared``: the values as ``IN`` lists, one text per count of each (``DirectStatement`` expands them), each
    prepared on the write connection. PostgreSQL then keeps a generic plan whose estimates are the custom plans'
    (an array parameter is estimated at 10 values, so PostgreSQL would keep planning it with the values: 0.07 ms
    of planning and the parsing of the text at every registration, issue 13). A generic plan made while the
    registry is empty is not a sequential scan kept as the tables grow: the keyed engine's sessions run with
    ``enable_seqscan`` off (``registry._store``)."""
    ro, pt = registry_object.c, patient.c

    def among(column: ColumnElement[Any], name: str) -> ColumnElement[bool]:
        if prepared:
            return column.in_(bindparam(name, expanding=True))
        return _among(column, name, postgresql=True)

    def columns(what: int, **given: Any) -> list[Any]:
        wanted = {"id": ro.id, "kind": ro.kind, "status": ro.status, "patient_key": ro.patient_key,
                  "unique_id": ro.unique_id, "closed_at": pt.closed_at}
        return [literal_column(str(what), Integer).label("what"),
                *(given[n].label(n) if n in given else cast(null(), c.type).label(n) for n, c in wanted.items())]

    branches = []
    if ids:
        branches.append(select(*columns(_OBJECT, id=ro.id, kind=ro.kind, status=ro.status,
                                        patient_key=ro.patient_key, unique_id=ro.unique_id))
                        .where(among(ro.id, "ids")))
    if keys:
        branches.append(select(*columns(_PATIENT, patient_key=pt.patient_key, closed_at=pt.closed_at))
                        .where(among(pt.patient_key, "keys")))
    if unique_ids:
        # Without document_entry's hash and size (a join) and without a condition on the kind: planning the
        # statement at each execution (it is not prepared: see Store's keyed engine) cost PostgreSQL 0.135 ms
        # with them, 0.074 without (benchmarks/README.md, issue 13). Only SubmissionSets, Folders and
        # DocumentEntries have uniqueIds; Known._load_together reads the kind of each row.
        branches.append(select(*columns(_UNIQUE_ID, id=ro.id, kind=ro.kind, unique_id=ro.unique_id))
                        .where(among(ro.unique_id, "unique_ids")))
    return DirectStatement(union_all(*branches) if len(branches) > 1 else branches[0], prepared=prepared)


@functools.cache
def _document_hashes() -> DirectStatement:
    """The hash and size of DocumentEntries by id (parameter ``ids``; PostgreSQL)."""
    de = document_entry.c
    return DirectStatement(select(de.id, de.hash, de.size).where(_among(de.id, "ids", postgresql=True)))


def _ordered_chunks(values: Iterable[str]) -> Iterable[list[str]]:
    return (list(c) for c in chunks(sorted(values)))


def _check_against_registry(conn: Connection, c: Classified, v: Validator, *,
                            new_versions: frozenset[str] = frozenset()) -> None:
    claims = claims_of(c, new_versions)
    v.errors += check(claims, Known.load(conn, [claims]))


def check(cl: Claims, known: Known) -> list[RegistryError]:
    """Every error of the rules that need the registry's content: patient known and open, ids and uniqueIds not
    taken (a DocumentEntry uniqueId only again for the very same document), references resolved and
    acceptable (ITI TF-3 4.1, 4.2; docs/conformance.md §3 rules 3-8)."""
    errors = _Errors()
    error = errors.add
    if cl.patient_is_cx and cl.patient_key is not None:
        found = cl.patient_key in known.patients
        if not found or known.patients[cl.patient_key] is not None:
            error(Problem.PATIENT_CLOSED if found else Problem.PATIENT_UNKNOWN, cl.ss_id, patient_id=cl.patient_id)
    for taken in dict.fromkeys(i for i in cl.object_ids if i.startswith("urn:uuid:") and i in known.objects):
        error(Problem.ID_TAKEN, taken, id=taken)
    for uid, owner in cl.package_unique_ids:
        if known.package_unique_ids.get(uid, 0):
            error(Problem.UNIQUE_ID_REGISTERED, owner, unique_id=uid)
    for uid, owner, sent_hash, sent_size in cl.document_unique_ids:
        # A DocumentEntry uniqueId may be registered again only for the very same document (ITI TF-3
        # Table 4.2.4.1-2): one error per attribute that differs, however many entries hold the uniqueId.
        registered = known.document_unique_ids.get(uid, ())
        hashes = {h for h, _ in registered}
        sizes = {s for _, s in registered}
        if registered and (sent_hash is None or any(h is None or h.lower() != sent_hash.lower() for h in hashes)):
            error(Problem.REGISTERED_WITH_OTHER_HASH, owner, unique_id=uid,
                  registered=", ".join(sorted(str(h) for h in hashes)), sent=sent_hash)
        if registered and (sent_size is None or any(s is None or str(s) != sent_size for s in sizes)):
            error(Problem.REGISTERED_WITH_OTHER_SIZE, owner, unique_id=uid,
                  registered=", ".join(sorted(str(s) for s in sizes)), sent=sent_size)
    _check_references(cl, known, errors)
    return list(errors)


def _check_references(cl: Claims, known: Known, errors: _Errors) -> None:
    error = errors.add
    in_message = set(cl.object_ids)
    for a in cl.links:
        atype = a.type
        for end, ref in (("sourceObject", a.source), ("targetObject", a.target)):
            if not ref or ref in in_message:
                continue
            ex = known.objects.get(ref)
            if ex is None:
                error(Problem.REFERENCE_UNRESOLVED, a.id, end=end, reference=ref, association=a.id)
                continue
            if cl.patient_key is not None and ex.patient_key is not None and ex.patient_key != cl.patient_key:
                error(Problem.ASSOCIATION_ACROSS_PATIENTS, a.id, association=a.id, registered=ex.patient_key,
                      submitted=cl.patient_key)
            if atype in _RELATIONSHIPS and end == "targetObject":
                if ex.kind != "DE":
                    if not (atype == AssociationType.SIGNS.value and ex.kind == "SS"):
                        error(Problem.RELATIONSHIP_TARGET_NOT_A_DOCUMENT, a.id, target=ref, association=a.id)
                elif ex.status == Status.DEPRECATED.value:
                    error(Problem.RELATIONSHIP_TARGET_DEPRECATED, a.id, target=ref, association=a.id)
                elif ex.status != Status.APPROVED.value and atype in _REPLACEMENTS:
                    error(Problem.REPLACED_NOT_APPROVED, a.id, target=ref, association=a.id, status=ex.status)
            if atype == AssociationType.HAS_MEMBER.value and a.source == cl.ss_id and end == "targetObject" \
                    and ex.kind not in ("DE", "FD", "AS"):
                error(Problem.MEMBER_OF_WRONG_KIND, a.id, target=ref)
            if atype == AssociationType.HAS_MEMBER.value and end == "sourceObject" and ex.kind == "FD" \
                    and ex.status != Status.APPROVED.value:
                error(Problem.FOLDER_NOT_APPROVED, a.id, folder=ref, status=ex.status)
        status = a.submission_set_status
        if a.source == cl.ss_id and status == "Original" and a.target not in in_message:
            error(Problem.ORIGINAL_NOT_IN_SUBMISSION, a.id, target=a.target)
        if a.source == cl.ss_id and status == "Reference" and a.target in in_message:
            error(Problem.REFERENCE_IN_SUBMISSION, a.id, target=a.target)
