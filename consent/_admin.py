"""Dossier administration: what the patient (or a legal representative) decides about their DMP, through the
patients' space or through the operator acting on their behalf (`dmp patient ...`).

Every operation is a :func:`decide` for the acting :class:`PatientCaller`, and is recorded in the patient's
history in the transaction that applies it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection

from consent import _dossiers, _history
from consent._dossiers import Contact
from consent._guard import Guard, Trace, refusal, unknown_patient, utc_now
from consent._history import Recorded
from consent._model import Action, AuthorizationState, Decision, Notice, PatientCaller, Reason
from consent._notice_text import Contacts
from consent._outbox import _contacts as _outbox_contacts
from consent._rules import decide
from registry import PatientError, Registry, patient_key

RETENTION_YEARS = 10   # R13, R29: a closed DMP is kept 10 years, then destroyed


@dataclass(frozen=True)
class Created:
    patient_key: str
    creation_code: str   # shown once, to hand to the patient (activation of the online space); never stored


@dataclass(frozen=True)
class DossierView:
    """What `dmp patient show` prints (and the portal shows)."""

    patient_key: str
    created_at: str
    consent_by: str
    consent_channel: str
    minor: bool
    treating_doctor: str | None
    allow_break_glass: bool
    allow_centre_15: bool
    masked_visible_in_emergency: bool
    feeding_opposed: bool
    closed_at: str | None
    purge_after: str | None
    authorizations: list[tuple[str, str, str, str]]   # (professional, state, declared by, at)
    history_entries: int


class DossierAdmin:
    """The administration operations of a dossier. ``caller`` of each operation defaults to the operator acting
    for the patient."""

    def __init__(self, registry: Registry, guard: Guard, *, clock: Callable[[], str] = utc_now) -> None:
        self.registry = registry
        self.guard = guard
        self.clock = clock

    # --- creation (R1, R3) ----------------------------------------------------------------------------

    def create(self, ins: str, *, minor: bool = False, email: str | None = None, mobile: str | None = None,
               consent_by: str = "patient", channel: str = "operator") -> Created:
        """Open a DMP with the consent of the patient (or, for a minor, of a legal representative)."""
        code = _dossiers.new_creation_code()
        now = self.clock()

        def also(conn: Connection, key: str) -> None:
            _dossiers.create(conn, key, now=now, consent_by=consent_by, consent_channel=channel, minor=minor,
                             contact=Contact(email, mobile), creation_code=code)
            created = Decision(True, Reason.ALLOWED, notify=frozenset({Notice.DOSSIER_CREATED}))
            trace = Trace(self.guard, PatientCaller(key, representative=minor, channel=channel), Action.CREATE,
                          key, _dossiers.load(conn, key), created, f"{channel} create",
                          detail=f"consent by {consent_by}")
            self.guard.write_trace(conn, trace)

        key = self.registry.create_patient(ins, also=also)
        return Created(key, code)

    # --- changes ----------------------------------------------------------------------------------

    def authorize(self, ins: str, professional: str, caller: PatientCaller | None = None) -> None:
        """R7, R19: the patient authorises a professional (an authorisation also lifts a block)."""
        self._apply(ins, Action.AUTHORIZE, caller, professional, lambda c, k, now, who: _dossiers.set_authorization(
            c, k, professional, AuthorizationState.VALID, declared_by=who, now=now))

    def revoke(self, ins: str, professional: str, caller: PatientCaller | None = None) -> None:
        """R13: the patient ends a professional's authorisation."""
        self._apply(ins, Action.REVOKE, caller, professional, lambda c, k, now, who: _dossiers.set_authorization(
            c, k, professional, None, declared_by=who, now=now))

    def block(self, ins: str, professional: str, caller: PatientCaller | None = None) -> None:
        """R17: a blocked professional has no access whatever else applies (not the médecin traitant, R33)."""
        self._apply(ins, Action.BLOCK, caller, professional, lambda c, k, now, who: _dossiers.set_authorization(
            c, k, professional, AuthorizationState.BLOCKED, declared_by=who, now=now))

    def unblock(self, ins: str, professional: str, caller: PatientCaller | None = None) -> None:
        def work(c: Connection, k: str, now: str, who: str) -> None:
            dossier = _dossiers.load(c, k)
            if dossier is not None and dossier.authorization(professional) is AuthorizationState.BLOCKED:
                _dossiers.set_authorization(c, k, professional, None, declared_by=who, now=now)
        self._apply(ins, Action.UNBLOCK, caller, professional, work)

    def set_treating_doctor(self, ins: str, professional: str | None, caller: PatientCaller | None = None) -> None:
        """Name (or, with None, remove) the médecin traitant; naming one lifts a block on them (R33)."""
        def work(c: Connection, k: str, now: str, who: str) -> None:
            if professional is not None:
                dossier = _dossiers.load(c, k)
                if dossier is not None and dossier.authorization(professional) is AuthorizationState.BLOCKED:
                    _dossiers.set_authorization(c, k, professional, None, declared_by=who, now=now)
            _dossiers.update_dossier(c, k, treating_doctor=professional)
        self._apply(ins, Action.SET_TREATING_DOCTOR, caller, professional, work)

    def set_emergency_access(self, ins: str, *, break_glass: bool | None = None, centre_15: bool | None = None,
                             masked_visible: bool | None = None, caller: PatientCaller | None = None) -> None:
        """R11: allow or oppose each emergency mode; whether masked documents are shown in an emergency."""
        values = {k: v for k, v in (("allow_break_glass", break_glass), ("allow_centre_15", centre_15),
                                    ("masked_visible_in_emergency", masked_visible)) if v is not None}
        detail = ", ".join(f"{k}={'yes' if v else 'no'}" for k, v in values.items()) or "no change"
        self._apply(ins, Action.SET_EMERGENCY_ACCESS, caller, None,
                    lambda c, k, now, who: _dossiers.update_dossier(c, k, **values) if values else None, detail)

    def close(self, ins: str, caller: PatientCaller | None = None) -> None:
        """R13, R29: the DMP becomes read-only for the patient, closed to professionals, kept 10 years."""
        def work(c: Connection, k: str, now: str, who: str) -> None:
            closed = datetime.now(UTC)
            purge = closed.replace(year=closed.year + RETENTION_YEARS)
            _dossiers.update_dossier(c, k, closed_at=now, purge_after=purge.strftime("%Y-%m-%dT%H:%M:%S.000Z"))
            self.registry.set_patient_closed(c, k, closed.strftime("%Y%m%d%H%M%S"))
        self._apply(ins, Action.CLOSE, caller, None, work)

    def reopen(self, ins: str, caller: PatientCaller | None = None) -> None:
        def work(c: Connection, k: str, now: str, who: str) -> None:
            _dossiers.update_dossier(c, k, closed_at=None, purge_after=None)
            self.registry.set_patient_closed(c, k, None)
        self._apply(ins, Action.REOPEN, caller, None, work)

    def set_contacts(self, ins: str, *, email: str | None, mobile: str | None,
                     caller: PatientCaller | None = None) -> None:
        """Where notifications and the portal's one-time codes go (R28, R32; docs/portal.md)."""
        self._apply(ins, Action.SET_CONTACTS, caller, None, lambda c, k, now, who: _dossiers.update_dossier(
            c, k, email=email, mobile=mobile), "contact details")

    def set_notifications(self, ins: str, *, new_document: bool, notify_trusted: bool, trusted_email: str | None,
                          caller: PatientCaller | None = None) -> None:
        """R6: e-mail at each new document; copies of the notices to the trusted person (docs/notifications.md)."""
        detail = f"new_document={'yes' if new_document else 'no'}, trusted={'yes' if notify_trusted else 'no'}"
        self._apply(ins, Action.SET_PREFERENCES, caller, None, lambda c, k, now, who: _dossiers.update_dossier(
            c, k, notify_new_document=new_document, notify_trusted=notify_trusted, trusted_email=trusted_email),
            detail)

    def act(self, ins: str, action: Action, caller: PatientCaller, work: Callable[[Connection, str, str], object],
            detail: str | None = None) -> None:
        """Another administration ``action`` of the patients' space (docs/portal.md): decided, then
        ``work(conn, key, now)`` and its history entry in one transaction; :class:`AccessRefused` when refused."""
        self._apply(ins, action, caller, None, lambda c, k, now, who: work(c, k, now), detail)

    def record(self, key: str, action: Action, caller: PatientCaller, detail: str | None = None, *,
               refused: Reason | None = None) -> None:
        """Record an event of the patients' space that changes nothing in the dossier (a login, a failed one,
        a logout) in the patient's history."""
        with self.guard.store.write() as conn:
            dossier = _dossiers.load(conn, key)
            decision = Decision.deny(refused) if refused is not None else Decision(True, Reason.ALLOWED)
            self.guard.write_trace(conn, Trace(self.guard, caller, action, key, dossier, decision,
                                               f"{caller.channel} {action.value}", detail=detail))

    # --- reading ------------------------------------------------------------------------------------

    def show(self, ins: str) -> DossierView:
        key = self._key(ins)
        with self.guard.store.read() as conn:
            row = _dossiers.row(conn, key)
            if row is None:
                raise unknown_patient(key)
            return DossierView(
                key, row.created_at, row.consent_by, row.consent_channel, bool(row.minor), row.treating_doctor,
                bool(row.allow_break_glass), bool(row.allow_centre_15), bool(row.masked_visible_in_emergency),
                bool(row.feeding_opposed), row.closed_at, row.purge_after,
                [(p, s.value, by, at) for p, s, by, at in _dossiers.authorizations(conn, key)],
                int(row.history_seq))

    def contacts(self, key: str) -> Contacts | None:
        """The dossier's contact details and notification choices (None: no dossier)."""
        with self.guard.store.read() as conn:
            return _outbox_contacts(conn, key)

    def creation_code_matches(self, key: str, code: str) -> bool:
        """The code handed over when the dossier was opened (R38), checked against its hash."""
        with self.guard.store.read() as conn:
            row = _dossiers.row(conn, key)
        return row is not None and row.creation_code_hash is not None and \
            _dossiers.code_matches(code, row.creation_code_hash)

    def history(self, ins: str, *, limit: int | None = None) -> list[Recorded]:
        """The patient's access history, newest first (R14)."""
        key = self._key(ins)
        with self.guard.store.read() as conn:
            if _dossiers.row(conn, key) is None:
                raise unknown_patient(key)
            return _history.entries(conn, key, limit=limit)

    # --- the common path ------------------------------------------------------------------------------

    def _key(self, ins: str) -> str:
        key = patient_key(ins.strip())
        if not key:
            raise PatientError(f"'{ins}' is not a CX identifier of the form NIR^^^&OID&ISO")
        return key

    def _apply(self, ins: str, action: Action, caller: PatientCaller | None, professional: str | None,
               work: Callable[[Connection, str, str, str], object], detail: str | None = None) -> None:
        key = self._key(ins)
        with self.guard.store.write() as conn:
            dossier = _dossiers.load(conn, key)
            # The operator acts for the patient, or for a minor's legal representatives (R27).
            who = caller or PatientCaller(key, representative=bool(dossier and dossier.minor), channel="operator")
            decision = decide(who, action, dossier, professional=professional)
            now = self.clock()
            trace = Trace(self.guard, who, action, key, dossier, decision, f"{who.channel} {action.value}",
                          detail=detail or professional)
            if decision.allowed:
                work(conn, key, now, "representative" if who.representative else who.channel)
                self.guard.write_trace(conn, trace)
                return
        if dossier is None:
            raise refusal(decision)
        self.guard.refuse(trace)


