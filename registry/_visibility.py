"""What the registry knows of a document for access decisions, and which documents a caller may see.

The consent checker decides; the registry applies. :class:`DocumentFilter` says which DocumentEntries a
caller may see at all; :meth:`DocumentFilter.predicate` is that rule as SQL (stored queries apply it inside
the query, before counting and limits, so that counts, ObjectRef lists and ``XDSTooManyResults`` never reveal a
hidden document) and :meth:`DocumentFilter.admits` the same rule over :class:`DocumentFacts` (ITI-43, ITI-57).
A property test holds the two to the same answers.

Who filed a submission is the registry's record too (``submission_origin``, written in the registration's
transaction): ebRIM has no submitter, and the DMP's "own documents" rules (PDT-INF-526 notes 8 and 9) need it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, exists, false, not_, or_, select, true

from registry import _hl7, _model
from registry._rim import Kind, RimSubmission, read_object
from registry._schema import document_entry, object_value, registry_object, submission_origin, with_lid
from registry._vocabulary import AssociationType, IdScheme, Scheme, Status
from soap_wsdl import parse_xml

ro, ov, so = registry_object.c, object_value.c, submission_origin.c
_FIRST = registry_object.alias()   # Core, not sqlalchemy.orm's aliased(): the ORM is ~5 MB a process


@dataclass(frozen=True)
class Origin:
    """Who files a submission: the professional (VIHF NameID) and structure, or the patient."""

    submitter: str
    structure: str | None = None
    by_patient: bool = False


@dataclass(frozen=True)
class DocumentFacts:
    """One DocumentEntry (its latest version) as access rules see it."""

    entry_id: str
    lid: str
    unique_id: str | None
    patient_key: str
    status: str = Status.APPROVED.value
    confidentiality: frozenset[str] = frozenset()       # confidentialityCode values (TRE_A07 and HL7)
    class_code: str | None = None
    type_code: str | None = None
    authors: frozenset[str] = frozenset()               # XCN.1 (IdNat_PS) of each authorPerson
    submitter: str | None = None                        # Origin of the first version
    submitter_structure: str | None = None
    filed_by_patient: bool = False

    def authored_by(self, professional_id: str) -> bool:
        return professional_id in self.authors or professional_id == self.submitter


@dataclass(frozen=True)
class DocumentFilter:
    """DocumentEntries a caller may see. Hidden: those carrying one of ``hidden_codes``; those carrying one of
    ``hidden_unless_own`` unless ``own`` authored or filed them; those in ``hidden_statuses``; and, when
    ``structure`` is set, every document not filed by that structure."""

    hidden_codes: frozenset[str] = frozenset()
    hidden_unless_own: frozenset[str] = frozenset()
    own: str | None = None
    hidden_statuses: frozenset[str] = frozenset()
    structure: str | None = None

    @property
    def hides_nothing(self) -> bool:
        return not (self.hidden_codes or self.hidden_unless_own or self.hidden_statuses or self.structure)

    def admits(self, doc: DocumentFacts) -> bool:
        if doc.confidentiality & self.hidden_codes or doc.status in self.hidden_statuses:
            return False
        if doc.confidentiality & self.hidden_unless_own and not (self.own and doc.authored_by(self.own)):
            return False
        return self.structure is None or doc.submitter_structure == self.structure

    def predicate(self) -> ColumnElement[bool]:
        """The same rule over ``registry_object`` rows of DocumentEntries (SQL)."""
        clauses: list[ColumnElement[bool]] = []
        if self.hidden_codes:
            clauses.append(not_(_has_code(self.hidden_codes)))
        if self.hidden_unless_own:
            own = or_(_authored_by(self.own), _filed_by(so.submitter == self.own)) if self.own else false()
            clauses.append(or_(not_(_has_code(self.hidden_unless_own)), own))
        if self.hidden_statuses:
            clauses.append(ro.status.not_in(sorted(self.hidden_statuses)))
        if self.structure is not None:
            clauses.append(_filed_by(so.structure_id == self.structure))
        return and_(true(), *clauses)


def _has_code(codes: Iterable[str]) -> ColumnElement[bool]:
    return exists(select(ov.object_id).where(ov.object_id == ro.id, ov.attribute == "confidentialityCode",
                                             ov.value.in_(sorted(codes))))


def _authored_by(professional_id: str) -> ColumnElement[bool]:
    # authorPerson is an XCN whose first component is the IdNat_PS (docs/identifiers.md); a bare id matches too.
    return exists(select(ov.object_id).where(
        ov.object_id == ro.id, ov.attribute == "authorPerson",
        or_(ov.value == professional_id, ov.value.startswith(professional_id + "^", autoescape=True))))


def _filed_by(condition: ColumnElement[bool]) -> ColumnElement[bool]:
    """The first version of the entry's logical document came in a submission whose origin meets ``condition``."""
    return exists(select(so.submission_set_id).select_from(_FIRST).join(
        submission_origin, so.submission_set_id == _FIRST.c.submission_set_id).where(
        _FIRST.c.id == ro.lid, condition))


def document_facts(conn: Connection, *, unique_ids: Sequence[str] = (), ids: Sequence[str] = ()
                   ) -> list[DocumentFacts]:
    """The latest version of every DocumentEntry named by uniqueId or by entryUUID (any version: its logical
    document's latest version is returned)."""
    wanted: list[ColumnElement[bool]] = []
    if unique_ids:
        wanted.append(ro.unique_id.in_(sorted(set(unique_ids))))
    if ids:
        lids = conn.execute(select(ro.lid).where(ro.id.in_(sorted(set(ids))), ro.kind == "DE")).scalars().all()
        if lids:
            wanted.append(with_lid(sorted(set(lids))))
    if not wanted:
        return []
    de = document_entry.c
    chosen = _newest(conn.execute(
        select(ro.id, ro.lid, ro.version, ro.unique_id, ro.patient_key, ro.status, de.class_code, de.type_code)
        .outerjoin(document_entry, de.id == ro.id).where(ro.kind == "DE", or_(*wanted))))
    entry_ids = [r.id for r in chosen]
    values: dict[str, list[tuple[str, str]]] = {}
    for v in conn.execute(select(ov.object_id, ov.attribute, ov.value).where(
            ov.object_id.in_(entry_ids), ov.attribute.in_(("confidentialityCode", "authorPerson")))):
        values.setdefault(v.object_id, []).append((v.attribute, v.value))
    origins: dict[str, Any] = {o.id: o for o in conn.execute(
        select(_FIRST.c.id, so.submitter, so.structure_id, so.by_patient).join(
            submission_origin, so.submission_set_id == _FIRST.c.submission_set_id)
        .where(_FIRST.c.id.in_(sorted({c.lid for c in chosen}))))}
    out = []
    for r in chosen:
        vals = values.get(r.id, [])
        origin = origins.get(r.lid)
        out.append(DocumentFacts(
            entry_id=r.id, lid=r.lid, unique_id=r.unique_id, patient_key=r.patient_key or "",
            status=r.status,
            confidentiality=frozenset(v for a, v in vals if a == "confidentialityCode"),
            class_code=r.class_code, type_code=r.type_code,
            authors=frozenset(v.split("^", 1)[0] for a, v in vals if a == "authorPerson" and v.split("^", 1)[0]),
            submitter=origin.submitter if origin else None,
            submitter_structure=origin.structure_id if origin else None,
            filed_by_patient=bool(origin.by_patient) if origin else False))
    return out


def submitted_documents(sub: RimSubmission, patient_key: str, origin: Origin | None) -> list[DocumentFacts]:
    """The DocumentEntries of a submission as access rules see them (before registration): the facts the typed
    model (``_model.document_entry``) gives, read from the ebRIM object without building the whole model (every
    ITI-41 asks: issue 13)."""
    out = []
    for o in sub.objects:
        if o.kind is not Kind.EXTRINSIC_OBJECT:
            continue
        classes, types = o.classified(_CLASS), o.classified(_TYPE)
        out.append(DocumentFacts(
            entry_id=o.id, lid=o.lid or o.id, unique_id=o.external_id(_UNIQUE_ID) or "", patient_key=patient_key,
            confidentiality=frozenset(c.node_representation or "" for c in o.classified(_CONFIDENTIALITY)),
            class_code=(classes[0].node_representation or "") if classes else None,
            type_code=(types[0].node_representation or "") if types else None,
            authors=frozenset(person.split("^", 1)[0] for c in o.classified(_AUTHOR)
                              if (person := _model.author_of(c).person)),
            submitter=origin.submitter if origin else None,
            submitter_structure=origin.structure if origin else None,
            filed_by_patient=origin.by_patient if origin else False))
    return out


_CLASS, _TYPE = Scheme.DE_CLASS_CODE.uuid, Scheme.DE_TYPE_CODE.uuid
_CONFIDENTIALITY, _AUTHOR = Scheme.DE_CONFIDENTIALITY_CODE.uuid, Scheme.DE_AUTHOR.uuid
_UNIQUE_ID = IdScheme.DE_UNIQUE_ID.uuid


def submission_patient(sub: RimSubmission) -> str | None:
    """The patient key a submission is about: its SubmissionSet's patientId (validation then holds every
    object to it), else its first DocumentEntry's or Folder's."""
    schemes = (IdScheme.SS_PATIENT_ID, IdScheme.DE_PATIENT_ID, IdScheme.FOLDER_PATIENT_ID)
    for scheme in schemes:
        for o in sub.objects:
            value = o.external_id(scheme.uuid)
            if value:
                return _hl7.patient_key(value)
    return None


@dataclass(frozen=True)
class StatusChange:
    """An ITI-57 ``UpdateAvailabilityStatus`` operation (ITI TF-2b §3.57; docs/conformance.md §8)."""

    target: str
    original: str | None
    new: str | None


@dataclass(frozen=True)
class NewVersion:
    """An ITI-57 new version of a DocumentEntry: its logical id, the confidentialityCodes it carries, and the
    whole entry (to tell a masking from a change of the document's other metadata)."""

    lid: str
    confidentiality: frozenset[str]
    entry: _model.DocumentEntry


# What a new version may not change without being an amendment of the document: everything but its identity
# as a version (ITI TF-3 4.1.5: a new entryUUID, the same lid), its confidentialityCodes (masking and visibility,
# decided apart), and the attributes the registry carries over from the stored bytes (hash, size, repository).
_NOT_CONTENT = frozenset({"entry_uuid", "logical_id", "version", "status", "home", "confidentiality_codes", "hash",
                          "size", "repository_unique_id"})


def content_changed(previous: _model.DocumentEntry, new: _model.DocumentEntry) -> bool:
    """True when ``new`` changes anything of ``previous`` besides its confidentialityCodes (and version)."""
    def content(de: _model.DocumentEntry) -> dict[str, object]:
        out = {f.name: getattr(de, f.name) for f in fields(de) if f.name not in _NOT_CONTENT}
        out["extra_slots"] = sorted((s.name, tuple(s.values)) for s in de.extra_slots)
        return out
    return content(previous) != content(new)


def latest_entries(conn: Connection, lids: Sequence[str]) -> dict[str, _model.DocumentEntry]:
    """The latest registered version of each logical DocumentEntry ``lids``, as typed entries (read from their
    stored XML)."""
    if not lids:
        return {}
    rows = conn.execute(select(ro.lid, ro.version, ro.xml).where(ro.kind == "DE", with_lid(sorted(set(lids)))))
    return {r.lid: _model.document_entry(read_object(parse_xml(r.xml.encode()))) for r in _newest(rows)}


def _newest(rows: Iterable[Any]) -> list[Any]:
    """Of rows with ``lid`` and ``version``, the one of the highest version of each logical object."""
    newest: dict[str, Any] = {}
    for r in rows:
        if r.lid not in newest or r.version > newest[r.lid].version:
            newest[r.lid] = r
    return list(newest.values())


def describe_update(sub: RimSubmission) -> tuple[list[StatusChange], list[NewVersion]]:
    """What an ITI-57 request changes, read from the request alone (the registry checks it afterwards)."""
    changes = [StatusChange(o.target, o.slot_value("OriginalStatus"), o.slot_value("NewStatus"))
               for o in sub.objects
               if o.kind is Kind.ASSOCIATION and o.target
               and o.association_type == AssociationType.UPDATE_AVAILABILITY_STATUS.value]
    versions = []
    for o in sub.objects:
        if o.kind is Kind.EXTRINSIC_OBJECT and o.lid and o.lid != o.id:
            entry = _model.document_entry(o)
            versions.append(NewVersion(o.lid, frozenset(c.code for c in entry.confidentiality_codes), entry))
    return changes, versions
