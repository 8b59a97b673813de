"""The consent checker at work: load the dossier, :func:`decide`, trace, notify.

The node calls a :class:`Guard` for every XDS and DMP transaction once the caller is known (the verified
VIHF). A refusal is traced in the patient's history (in its own transaction, since nothing else is written)
and raised as :class:`AccessRefused`; an allowed access is traced by the :class:`Trace` the caller runs inside
the transaction of what it records (a registration, an update) or, for reads, right after the read and before
the answer leaves: no data goes out whose access was not recorded.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import NoReturn

from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError

from consent import _dossiers, _history
from consent._history import HistoryEntry
from consent._model import Action, Caller, Decision, Dossier, Notice, PatientCaller, Reason, kind_of
from consent._notice_text import Contacts
from consent._notices import queue_notice
from consent._outbox import CONTACT_COLUMNS, contacts_of
from consent._reads import OneStatementReads
from consent._rules import column, decide, visibility
from pki import Principal
from registry import DocumentFacts, DocumentFilter, Store

log = logging.getLogger("dmp.consent")

NoticeSink = Callable[[Connection, str, Notice, Caller, Sequence[DocumentFacts], str, Contacts | None], None]
"""Queues a notice to the patient inside the caller's transaction: (conn, patient key, notice, caller,
documents concerned, time, the dossier's contacts when already read in the transaction, else None)."""


def utc_now() -> str:
    """The one timestamp format of the consent state: ISO 8601 UTC with milliseconds (sorts as text)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class AccessRefused(Exception):
    """The consent checker said no. ``reason`` carries the DMP fault subcode; ``detail`` is safe to return."""

    def __init__(self, reason: Reason, detail: str, *, patient: str | None = None) -> None:
        super().__init__(f"{reason.code}: {detail}")
        self.reason = reason
        self.detail = detail
        self.patient = patient      # the patient key, for UNKNOWN_PATIENT (named back to the requester only)


_DETAILS = {
    Reason.UNKNOWN_PATIENT: "the patient has no DMP on this node",
    Reason.PATIENT_MISMATCH: "the request concerns another patient than the VIHF's resource-id",
    Reason.FORBIDDEN_PROFESSION: "this profession or sector never has access to the DMP",
    Reason.BLOCKED: "the patient has blocked this professional",
    Reason.DOSSIER_CLOSED: "the DMP is closed",
    Reason.EMERGENCY_OPPOSED: "the patient has opposed this emergency access mode",
    Reason.EMERGENCY_NOT_ALLOWED: "this kind of credential cannot use an emergency access mode",
    Reason.NOT_AUTHORIZED: "the professional is not authorised on this DMP: collect the patient's consent and "
                           "declare it (TD0.3)",
    Reason.NOT_PERMITTED: "this action is not permitted to this kind of user in this access mode",
    Reason.NOT_OWN_DOCUMENT: "only the author (or the médecin traitant) may do this on the document",
    Reason.PATIENT_DOCUMENT: "only the patient or the médecin traitant may do this on a patient's document",
    Reason.DOCUMENT_HIDDEN: "the document is not visible to this user",
    Reason.FEEDING_OPPOSED: "the patient has opposed the feeding of the DMP",
    Reason.PATIENT_CLASS_ONLY: "a patient files documents of class 90 (documents filed by the patient) only",
    Reason.SECRET_CONNECTION: "in a minor's secret connection only documents invisible to the legal "
                              "representatives may be filed",
    Reason.TREATING_DOCTOR_CANNOT_BE_BLOCKED: "the médecin traitant cannot be blocked: name another one first",
    Reason.UNAVAILABLE: "the DMP's consent state (database) is unavailable: nothing was read or stored",
}


@contextmanager
def database() -> Iterator[None]:
    """Database failures while checking or tracing an access: the access cannot be decided or recorded, so it
    does not happen (fail closed) and the caller hears the service is unavailable."""
    try:
        yield
    except SQLAlchemyError as exc:
        log.error("consent state database error: %s", _safe(exc))
        raise AccessRefused(Reason.UNAVAILABLE, _DETAILS[Reason.UNAVAILABLE]) from None


def _safe(exc: SQLAlchemyError) -> str:
    """What to log of a database error: its kind, never its statement or parameters (patient keys, IdNat)."""
    orig = getattr(exc, "orig", None)
    state = getattr(orig, "sqlstate", None) or getattr(orig, "sqlite_errorname", None)
    return f"{type(exc).__name__}" + (f" ({type(orig).__name__} {state})" if orig is not None else "")


def unknown_patient(patient_key: str) -> AccessRefused:
    """The refusal for a patient without a DMP on this node (answered as XDSUnknownPatientId, naming it)."""
    return AccessRefused(Reason.UNKNOWN_PATIENT, f"patient {patient_key} has no DMP on this node",
                         patient=patient_key)


def refusal(decision: Decision) -> AccessRefused:
    return AccessRefused(decision.reason, _DETAILS.get(decision.reason, decision.reason.code))


@dataclass
class Trace:
    """An allowed access, to record in the transaction of what it records (:meth:`__call__`)."""

    guard: Guard
    caller: Caller
    action: Action
    patient_key: str
    dossier: Dossier | None
    decision: Decision
    transaction: str
    documents: list[DocumentFacts] = field(default_factory=list)
    detail: str | None = None

    def __call__(self, conn: Connection) -> None:
        self.guard.write_trace(conn, self)

    @property
    def lock_order(self) -> str:
        """Writing the entry locks the patient's dossier row (its history head): a group commit orders the
        works by patient (``Store.grouped_write``)."""
        return self.patient_key

    def record(self) -> None:
        """Record in a write transaction of its own, or shared with other requests' (reads; the entry is
        committed when this returns: ``Store.grouped_write``)."""
        with database():
            self.guard.store.grouped_write(self, order=self.lock_order)


class Guard:
    """The consent checker bound to one database."""

    def __init__(self, store: Store, *, clock: Callable[[], str] = utc_now, notices: NoticeSink = queue_notice
                 ) -> None:
        """``notices`` queues the patient's notices (default: the notification outbox, ``consent._notices``)."""
        self.store = store
        self.clock = clock
        self.notices = notices
        # PostgreSQL: a caller's dossier (one statement by key) is read in autocommit on connections of the
        # guard's own, made through the store's keyed_engine (generic plans allowed).
        self._reader = None if store.is_sqlite else _dossiers.OneReader(OneStatementReads(store.keyed_engine))

    def dossier(self, patient_key: str, caller: Caller | None = None) -> Dossier | None:
        """The dossier as the rules need it for ``caller`` (its own authorisation only), or whole.

        For a caller it is one statement, which PostgreSQL runs on one snapshot whether or not a transaction
        surrounds it: there it is one round trip, in autocommit on the guard's own connections (no pool ping, no
        BEGIN and COMMIT: ``consent._reads``, issue 13); the whole dossier (two statements) is read in one
        transaction."""
        only = caller.professional_id if isinstance(caller, Principal) else None
        if only is not None and self._reader is not None:
            with database():
                return self._reader.load(patient_key, only)
        with database(), self.store.read() as conn:
            return _dossiers.load(conn, patient_key, only=only)

    def admit(self, caller: Caller, action: Action, patient_key: str, documents: Sequence[DocumentFacts] = (), *,
              transaction: str, dossier: Dossier | None = None, professional: str | None = None) -> Trace:
        """Decide ``action`` (and, for each of ``documents``, the action on it); raise :class:`AccessRefused`
        (traced) or return the :class:`Trace` of the allowed access."""
        dossier = dossier if dossier is not None else self.dossier(patient_key, caller)
        decision = decide(caller, action, dossier, professional=professional)
        for doc in documents:
            if not decision.allowed:
                break
            decision = decision.joined(decide(caller, action, dossier, doc, professional=professional))
        trace = Trace(self, caller, action, patient_key, dossier, decision, transaction, list(documents),
                      detail=professional)
        if not decision.allowed:
            self.refuse(trace)
        return trace

    def refuse(self, trace: Trace) -> NoReturn:
        """Trace a refusal (when the patient has a dossier) and raise it."""
        assert not trace.decision.allowed
        try:
            with self.store.write() as conn:
                self.write_trace(conn, trace)
        except SQLAlchemyError as exc:
            # The refusal stands; only its trace is missing (the database is down): say so without identifiers.
            log.error("a refusal could not be recorded in the access history: %s", _safe(exc))
        log.info("access refused: %s (%s)", trace.decision.reason.code, trace.transaction)
        raise refusal(trace.decision)

    def refuse_mismatch(self, caller: Caller, action: Action, patient_key: str, *, transaction: str) -> NoReturn:
        """The request concerns another patient than the VIHF's (docs/vihf.md §7 step 9): traced in the history
        of the VIHF's patient, refused."""
        self.refuse(Trace(self, caller, action, patient_key, self.dossier(patient_key, caller),
                          Decision.deny(Reason.PATIENT_MISMATCH), transaction))

    def visibility(self, caller: Caller, dossier: Dossier) -> DocumentFilter:
        return visibility(caller, dossier)

    def write_trace(self, conn: Connection, trace: Trace) -> None:
        at = self.clock()
        caller, decision = trace.caller, trace.decision
        ids = tuple(doc.unique_id or doc.entry_id for doc in trace.documents)
        entry = _entry(caller, trace, ids)
        # The recipients of the notices come with the history head: one read of the dossier's row, not two.
        row = _history.append(conn, trace.patient_key, entry, at, also=CONTACT_COLUMNS)
        if row is None:
            return          # no dossier: an unknown patient has no history to write to
        if not decision.allowed:
            return
        notices = set(decision.notify)
        # A professional the dossier read in this request found in professional_access is not at a first access
        # (its rows are never removed): no insert to try.
        if isinstance(caller, Principal) and not (
                trace.dossier is not None and caller.professional_id in trace.dossier.accessed_by) \
                and _dossiers.first_access(conn, trace.patient_key, caller.professional_id, at):
            notices.add(Notice.FIRST_ACCESS)
        contacts = contacts_of(row)
        for notice in sorted(notices, key=lambda n: n.value):
            self.notices(conn, trace.patient_key, notice, caller, trace.documents, at, contacts)


def _entry(caller: Caller, trace: Trace, ids: tuple[str, ...]) -> HistoryEntry:
    decision = trace.decision
    col = column(caller, trace.dossier) if trace.dossier is not None else kind_of(caller)
    column_name = col if isinstance(col, str) else col.value
    if isinstance(caller, PatientCaller):
        return HistoryEntry(action=trace.action.value, transaction=trace.transaction, allowed=decision.allowed,
                            reason=decision.reason.code, actor_id=caller.channel, actor_name=caller.name,
                            actor_kind=column_name, documents=ids, detail=trace.detail)
    return HistoryEntry(
        action=trace.action.value, transaction=trace.transaction, allowed=decision.allowed,
        reason=decision.reason.code, actor_id=caller.professional_id, actor_name=caller.name,
        actor_kind=column_name, profession=caller.profession.code, structure=caller.structure_id,
        auth_mode=caller.auth_mode.value, purpose=caller.purpose_of_use.value, emergency=decision.emergency,
        documents=ids, detail=trace.detail)
