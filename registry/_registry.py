"""The Document Registry actor: patient identity, registration (ITI-42), look-ups for the repository."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from lxml import etree
from sqlalchemy import Connection, exc, insert, select, update

from identifiers import INS_NIR_OIDS
from registry import _hl7
from registry._bulk import BulkReport, bulk_register
from registry._catalogue import Problem
from registry._errors import RegistryError, RegistryResponse, ResponseStatus, SubmissionRefused
from registry._model import DocumentEntry
from registry._profile import MetadataProfile
from registry._query import adhoc_query_response, stored_query
from registry._query_run import chunks
from registry._rim import RimSubmission, read_registry_object_list
from registry._schema import document_entry, patient, registry_object
from registry._store import Store, failure_summary
from registry._submission import database_refusal, prepare, register_prepared
from registry._update import update_document_set
from registry._visibility import DocumentFacts, DocumentFilter, Origin, document_facts, latest_entries
from soap_wsdl import SerializedElement, ns

log = logging.getLogger(__name__)


class Recorder(Protocol):
    """What a request records in the transaction of its registration or update (the consent checker's
    access-history entry), and the key of the rows that locks (its patient): the order its work takes in a group
    commit (``Store.grouped_write``)."""

    @property
    def lock_order(self) -> str: ...

    def __call__(self, conn: Connection) -> None: ...


class PatientError(ValueError):
    """The patient identifier given to patient administration is not acceptable."""


@dataclass(frozen=True)
class StoredDocument:
    """What the repository needs to serve a document (ITI-43)."""

    entry_uuid: str
    unique_id: str
    repository_unique_id: str | None
    mime_type: str
    hash: str | None
    size: int | None
    status: str


def now_dtm() -> str:
    """The current UTC time as an HL7 DTM to the second (``YYYYMMDDHHMMSS``). ``time.gmtime`` and
    ``time.strftime``: a third of the CPU of a timezone-aware ``datetime`` formatted the same way."""
    return time.strftime("%Y%m%d%H%M%S", time.gmtime())


class Registry:
    def __init__(self, store: Store, *, clock: Callable[[], str] = now_dtm, max_query_results: int = 1000,
                 metadata_profile: MetadataProfile = MetadataProfile.DMP) -> None:
        self.store = store
        self.metadata_profile = metadata_profile  # which codes registration accepts (docs/conformance.md)
        self._clock = clock
        self.max_query_results = max_query_results

    # --- patient identity -------------------------------------------------------------------------

    def create_patient(self, ins: str, *, also: Callable[[Connection, str], None] | None = None) -> str:
        """Open a dossier for an INS given as CX (``NIR^^^&1.2.250.1.213.1.4.10&ISO``). Returns its key.
        ``also(conn, key)`` runs in the same transaction (the consent state of the new dossier).

        The NIR key is checked for INS-NIR authorities (docs/identifiers.md)."""
        cx = _hl7.CX.parse(ins.strip())
        if cx is None:
            raise PatientError(f"'{ins}' is not a CX identifier of the form NIR^^^&OID&ISO")
        if cx.authority in INS_NIR_OIDS and (reason := _hl7.check_nir(cx.id)) is not None:
            raise PatientError(reason)
        try:
            with self.store.write() as conn:
                conn.execute(insert(patient).values(patient_key=cx.key, created_at=self._clock()))
                if also is not None:
                    also(conn, cx.key)
        except exc.IntegrityError:
            raise PatientError(f"patient {cx.key} already exists") from None
        return cx.key

    @staticmethod
    def set_patient_closed(conn: Connection, key: str, closed_at: str | None) -> None:
        """Close (DTM ``closed_at``) or reopen a patient's dossier, in the caller's transaction: a closed
        dossier's registrations are refused (DMP R13, R29)."""
        conn.execute(update(patient).where(patient.c.patient_key == key).values(closed_at=closed_at))

    def create_patients(self, ins_list: Iterable[str]) -> list[str]:
        """Open many dossiers in one transaction (an import); every identifier is checked as by
        :meth:`create_patient` and none is created if any is refused or already exists. Returns their keys."""
        keys: list[str] = []
        problems: list[str] = []
        for ins in ins_list:
            cx = _hl7.CX.parse(ins.strip())
            if cx is None:
                problems.append(f"'{ins}' is not a CX identifier of the form NIR^^^&OID&ISO")
            elif cx.authority in INS_NIR_OIDS and (reason := _hl7.check_nir(cx.id)) is not None:
                problems.append(f"'{ins}': {reason}")
            else:
                keys.append(cx.key)
        problems += [f"patient {k} appears {n} times" for k, n in Counter(keys).items() if n > 1]
        if problems:
            raise PatientError("; ".join(problems))
        now = self._clock()
        try:
            with self.store.write() as conn:
                taken = [k for chunk in chunks(keys) for k in conn.execute(
                    select(patient.c.patient_key).where(patient.c.patient_key.in_(chunk))).scalars()]
                if taken:
                    raise PatientError("; ".join(f"patient {k} already exists" for k in sorted(taken)))
                if keys:
                    conn.execute(insert(patient), [{"patient_key": k, "created_at": now} for k in keys])
        except exc.IntegrityError:
            raise PatientError("some of these patients were created concurrently; none was created") from None
        return keys

    def patient_exists(self, ins: str) -> bool:
        with self.store.read() as conn:
            key = _hl7.patient_key(ins)
            return conn.execute(select(patient.c.patient_key).where(patient.c.patient_key == key)).first() is not None

    # --- ITI-42 -----------------------------------------------------------------------------------

    @staticmethod
    def read_request(request: etree._Element) -> RimSubmission | RegistryResponse:
        """The submission an ``lcm:SubmitObjectsRequest`` (ITI-42, ITI-57) carries, or the answer refusing it."""
        if request.tag != f"{{{ns.LCM}}}SubmitObjectsRequest":
            return RegistryResponse.of([Problem.NOT_A_SUBMIT_OBJECTS_REQUEST(
                None, element=etree.QName(request).localname)])
        return read_registry_object_list(request.find(f"{{{ns.RIM}}}RegistryObjectList"))

    def register_request(self, request: etree._Element) -> RegistryResponse:
        """ITI-42 Register Document Set-b: ``request`` is an ``lcm:SubmitObjectsRequest``."""
        sub = self.read_request(request)
        return sub if isinstance(sub, RegistryResponse) else self.register_submission(sub)

    def register_submission(self, sub: RimSubmission, *, origin: Origin | None = None, record: Recorder | None = None
                            ) -> RegistryResponse:
        """Validate and register ``sub`` as a whole in one transaction (ITI TF-3 §4.1), with who filed it
        (``origin``) and ``record(conn)`` (the access history) in that transaction."""
        now = self._clock()
        # Validation and rows need no database: made before the transaction, so that the write lock (one writer
        # for all the processes on SQLite) is held only for the checks against the registry and the inserts.
        prepared = prepare(sub, require_repository_attributes=True, now=now, profile=self.metadata_profile)
        return self._transaction(lambda conn: register_prepared(conn, prepared, now=now, origin=origin), record)

    def bulk_register(self, submissions: Iterable[RimSubmission], *, batch: int = 500, workers: int = 0
                      ) -> BulkReport:
        """Register many ITI-42 submissions, ``batch`` per transaction: each gets the outcome
        :meth:`register_submission` would give it if they were sent one after the other (a refused one is left
        out and reported by its position); ``workers`` processes validate and build rows in parallel. See
        ``registry._bulk`` for the contract."""
        return bulk_register(self.store, submissions, clock=self._clock, batch=batch, workers=workers,
                             profile=self.metadata_profile)

    def _transaction(self, work: Callable[[Connection], list[RegistryError]], record: Recorder | None = None
                     ) -> RegistryResponse:
        """Run ``record``, then ``work``, in one write transaction (possibly shared with other requests':
        ``Store.grouped_write``) and map every outcome to a RegistryResponse; a refused ``work`` undoes both.

        ``record`` first: the row it locks (the patient's dossier, for the access-history entry) is then the first
        lock of every work about that patient. After ``work``, an ITI-57 update would lock the document's rows
        first and the dossier second, while a read's entry locks the dossier alone: two groups of two processes
        holding [update, read] and [read, update] of one patient could deadlock on PostgreSQL."""
        def both(conn: Connection) -> list[RegistryError]:
            if record is not None:
                record(conn)
            return work(conn)

        try:
            warnings = self.store.grouped_write(both, order=record.lock_order if record is not None else "")
        except SubmissionRefused as refused:
            return RegistryResponse.of(refused.errors)
        except (exc.IntegrityError, exc.DataError) as refused:
            log.warning("registration refused by the database: %s", failure_summary(refused))
            return RegistryResponse.of([database_refusal(refused)])
        except exc.SQLAlchemyError as failed:
            log.error("registry database error: %s", failure_summary(failed))
            return RegistryResponse(ResponseStatus.FAILURE, (Problem.DATABASE_UNAVAILABLE(None),))
        return RegistryResponse.of(warnings)

    # --- ITI-57 -----------------------------------------------------------------------------------

    def update_request(self, request: etree._Element) -> RegistryResponse:
        """ITI-57 Update Document Set: ``request`` is an ``lcm:SubmitObjectsRequest``."""
        sub = self.read_request(request)
        return sub if isinstance(sub, RegistryResponse) else self.update_submission(sub)

    def update_submission(self, sub: RimSubmission, *, origin: Origin | None = None, record: Recorder | None = None
                          ) -> RegistryResponse:
        """ITI-57 on a read request, with ``origin`` and ``record`` as for :meth:`register_submission`."""
        return self._transaction(
            lambda conn: update_document_set(conn, sub, self._clock(), self.metadata_profile, origin), record)

    # --- ITI-18 / ITI-51 ----------------------------------------------------------------------------

    def stored_query(self, request: etree._Element, *, multi_patient: bool = False,
                     document_filter: DocumentFilter | None = None, patient_key: str | None = None
                     ) -> SerializedElement:
        """Answer an ``query:AdhocQueryRequest`` with an ``query:AdhocQueryResponse`` (serialized: the server
        sends it as is; ``.element()`` parses it).

        ``document_filter`` says which DocumentEntries the caller may see at all (the consent checker's
        visibility rules); it is applied inside every query, before counting and limits. With ``patient_key``
        the query must be about that patient only: every patient parameter names it and every object found
        by id belongs to it, else :class:`PatientMismatch` is raised and nothing is returned."""
        predicate = None if document_filter is None or document_filter.hides_nothing else document_filter.predicate()
        try:
            with self.store.read() as conn:
                return stored_query(conn, request, document_filter=predicate, max_results=self.max_query_results,
                                    multi_patient=multi_patient, patient_key=patient_key)
        except exc.SQLAlchemyError as failed:
            log.error("registry database error during a stored query: %s", failure_summary(failed))
            return adhoc_query_response(ResponseStatus.FAILURE, [Problem.DATABASE_UNAVAILABLE_FOR_QUERY(None)])

    # --- look-ups ---------------------------------------------------------------------------------

    def latest_entries(self, lids: Sequence[str]) -> dict[str, DocumentEntry]:
        """The latest registered version of each logical DocumentEntry, typed (ITI-57: what an update changes)."""
        with self.store.read() as conn:
            return latest_entries(conn, lids)

    def document_facts(self, *, unique_ids: Sequence[str] = (), ids: Sequence[str] = ()) -> list[DocumentFacts]:
        """The latest version of each DocumentEntry named by uniqueId or entryUUID, as access rules see it."""
        with self.store.read() as conn:
            return document_facts(conn, unique_ids=unique_ids, ids=ids)

    def is_registered(self, unique_id: str) -> bool:
        with self.store.read() as conn:
            ro = registry_object.c
            return conn.execute(select(ro.id).where(ro.unique_id == unique_id, ro.kind == "DE").limit(1)
                                ).first() is not None

    def documents_by_unique_id(self, unique_ids: list[str]) -> dict[str, StoredDocument]:
        """The latest Approved-or-other version of each document uniqueId (several entries may share a
        uniqueId only when they describe the same bytes)."""
        if not unique_ids:
            return {}
        ro, de = registry_object.c, document_entry.c
        with self.store.read() as conn:
            rows = conn.execute(
                select(ro.id, ro.unique_id, ro.status, ro.version, de.repository_unique_id, de.mime_type,
                       de.hash, de.size)
                .join(document_entry, de.id == ro.id)
                .where(ro.kind == "DE", ro.unique_id.in_(sorted(set(unique_ids))))
                .order_by(ro.version)
            ).all()
        return {r.unique_id: StoredDocument(r.id, r.unique_id, r.repository_unique_id, r.mime_type, r.hash,
                                            r.size, r.status) for r in rows}
