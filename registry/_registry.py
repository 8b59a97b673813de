"""The Document Registry actor: patient identity, registration (ITI-42), look-ups for the repository."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from lxml import etree
from sqlalchemy import ColumnElement, Connection, exc, insert, select

from registry import _hl7
from registry._bulk import BulkReport, bulk_register
from registry._errors import ErrorCode, RegistryError, RegistryResponse, ResponseStatus, SubmissionRefused
from registry._query import adhoc_query_response, stored_query
from registry._query_run import chunks
from registry._rim import RimSubmission, read_registry_object_list
from registry._schema import document_entry, patient, registry_object
from registry._store import Store, failure_summary
from registry._submission import database_refusal, register
from registry._update import update_document_set
from soap_wsdl import SerializedElement, ns

log = logging.getLogger(__name__)


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
    return datetime.now(UTC).strftime("%Y%m%d%H%M%S")


class Registry:
    def __init__(self, store: Store, *, clock: Callable[[], str] = now_dtm, max_query_results: int = 1000) -> None:
        self.store = store
        self._clock = clock
        self.max_query_results = max_query_results

    # --- patient identity -------------------------------------------------------------------------

    def create_patient(self, ins: str) -> str:
        """Open a dossier for an INS given as CX (``NIR^^^&1.2.250.1.213.1.4.10&ISO``). Returns its key.

        The NIR key is checked for INS-NIR authorities (DMP.md §4.2)."""
        cx = _hl7.CX.parse(ins.strip())
        if cx is None:
            raise PatientError(f"'{ins}' is not a CX identifier of the form NIR^^^&OID&ISO")
        if cx.authority in _hl7.INS_NIR_OIDS and (reason := _hl7.check_nir(cx.id)) is not None:
            raise PatientError(reason)
        try:
            with self.store.write() as conn:
                conn.execute(insert(patient).values(patient_key=cx.key, created_at=self._clock()))
        except exc.IntegrityError:
            raise PatientError(f"patient {cx.key} already exists") from None
        return cx.key

    def create_patients(self, ins_list: Iterable[str]) -> list[str]:
        """Open many dossiers in one transaction (an import); every identifier is checked as by
        :meth:`create_patient` and none is created if any is refused or already exists. Returns their keys."""
        keys: list[str] = []
        problems: list[str] = []
        for ins in ins_list:
            cx = _hl7.CX.parse(ins.strip())
            if cx is None:
                problems.append(f"'{ins}' is not a CX identifier of the form NIR^^^&OID&ISO")
            elif cx.authority in _hl7.INS_NIR_OIDS and (reason := _hl7.check_nir(cx.id)) is not None:
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

    def register_request(self, request: etree._Element) -> RegistryResponse:
        """ITI-42 Register Document Set-b: ``request`` is an ``lcm:SubmitObjectsRequest``."""
        if request.tag != f"{{{ns.LCM}}}SubmitObjectsRequest":
            return RegistryResponse.of([RegistryError(
                ErrorCode.REGISTRY_METADATA_ERROR,
                f"expected lcm:SubmitObjectsRequest, received {etree.QName(request).localname}", None)])
        return self.register_submission(read_registry_object_list(request.find(f"{{{ns.RIM}}}RegistryObjectList")))

    def register_submission(self, sub: RimSubmission) -> RegistryResponse:
        """Validate and register ``sub`` as a whole in one transaction (ITI TF-3 §4.1)."""
        return self._transaction(
            lambda conn: register(conn, sub, require_repository_attributes=True, now=self._clock()))

    def bulk_register(self, submissions: Iterable[RimSubmission], *, batch: int = 500, workers: int = 0
                      ) -> BulkReport:
        """Register many ITI-42 submissions, ``batch`` per transaction: each gets the outcome
        :meth:`register_submission` would give it if they were sent one after the other (a refused one is left
        out and reported by its position); ``workers`` processes validate and build rows in parallel. See
        ``registry._bulk`` for the contract."""
        return bulk_register(self.store, submissions, clock=self._clock, batch=batch, workers=workers)

    def _transaction(self, work: Callable[[Connection], list[RegistryError]]) -> RegistryResponse:
        """Run ``work`` in one write transaction and map every outcome to a RegistryResponse."""
        try:
            with self.store.write() as conn:
                warnings = work(conn)
        except SubmissionRefused as refused:
            return RegistryResponse.of(refused.errors)
        except (exc.IntegrityError, exc.DataError) as refused:
            log.warning("registration refused by the database: %s", failure_summary(refused))
            return RegistryResponse.of([database_refusal(refused)])
        except exc.SQLAlchemyError as failed:
            log.error("registry database error: %s", failure_summary(failed))
            return RegistryResponse(ResponseStatus.FAILURE, (RegistryError(
                ErrorCode.REGISTRY_ERROR, "the registry database is unavailable; nothing was registered",
                None),))
        return RegistryResponse.of(warnings)

    # --- ITI-57 -----------------------------------------------------------------------------------

    def update_request(self, request: etree._Element) -> RegistryResponse:
        """ITI-57 Update Document Set: ``request`` is an ``lcm:SubmitObjectsRequest``."""
        if request.tag != f"{{{ns.LCM}}}SubmitObjectsRequest":
            return RegistryResponse.of([RegistryError(
                ErrorCode.REGISTRY_METADATA_ERROR,
                f"expected lcm:SubmitObjectsRequest, received {etree.QName(request).localname}", None)])
        sub = read_registry_object_list(request.find(f"{{{ns.RIM}}}RegistryObjectList"))
        return self._transaction(lambda conn: update_document_set(conn, sub, self._clock()))

    # --- ITI-18 / ITI-51 ----------------------------------------------------------------------------

    def stored_query(self, request: etree._Element, *, multi_patient: bool = False,
                     document_filter: ColumnElement[bool] | None = None) -> SerializedElement:
        """Answer an ``query:AdhocQueryRequest`` with an ``query:AdhocQueryResponse`` (serialized: the server
        sends it as is; ``.element()`` parses it).

        ``document_filter`` is a SQL predicate over ``registry_object``/``document_entry`` columns that a
        DocumentEntry must satisfy to be seen at all (the consent checker's visibility rules); it is applied
        inside every query, before counting and limits."""
        try:
            with self.store.read() as conn:
                return stored_query(conn, request, document_filter=document_filter,
                                    max_results=self.max_query_results, multi_patient=multi_patient)
        except exc.SQLAlchemyError as failed:
            log.error("registry database error during a stored query: %s", failure_summary(failed))
            return adhoc_query_response(ResponseStatus.FAILURE, [RegistryError(
                ErrorCode.REGISTRY_ERROR, "the registry database is unavailable", None)])

    # --- look-ups ---------------------------------------------------------------------------------

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
