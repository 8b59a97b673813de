"""Reading and writing the consent state of one dossier (SQL at the edge; the rules never see a row)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Connection, bindparam, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from consent._history import GENESIS
from consent._model import AuthorizationState, Dossier
from consent._reads import OneStatementReads
from consent._schema import dossier, professional_access, ps_authorization
from registry import DirectStatement

d, a, pa = dossier.c, ps_authorization.c, professional_access.c
_CODE_ALPHABET: Final = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"     # no 0/O, 1/I: read aloud or typed from paper
_SCRYPT: Final = {"n": 2**14, "r": 8, "p": 1}


# Built once (every request runs them): SQLAlchemy then neither rebuilds the statement nor recomputes its cache key.
_DECIDING = (d.closed_at, d.minor, d.treating_doctor, d.allow_break_glass, d.allow_centre_15,
             d.masked_visible_in_emergency, d.feeding_opposed)
# With the professional's authorisation and whether they have accessed the dossier before (then a request of theirs
# skips the first-access insert: ``Guard.write_trace``).
_WITH_ONE_AUTHORIZATION = DirectStatement(
    select(*_DECIDING, a.state.label("only_state"), pa.first_at.label("only_first_at"))
    .select_from(dossier.outerjoin(ps_authorization, (a.patient_key == d.patient_key)
                                   & (a.professional_id == bindparam("only")))
                 .outerjoin(professional_access, (pa.patient_key == d.patient_key)
                            & (pa.professional_id == bindparam("only"))))
    .where(d.patient_key == bindparam("patient_key")))
_DOSSIER = select(*_DECIDING).where(d.patient_key == bindparam("patient_key"))
_FIRST_ACCESS = {name: DirectStatement(dialect.insert(professional_access).on_conflict_do_nothing())
                 for name, dialect in (("postgresql", postgresql), ("sqlite", sqlite))}


def load(conn: Connection, patient_key: str, *, only: str | None = None) -> Dossier | None:
    """The dossier; with ``only``, its authorisations are that professional's alone and ``accessed_by`` says
    whether they have accessed it before (one statement: what a request needs), else all its authorisations."""
    if only is not None:
        return _one(patient_key, only, _WITH_ONE_AUTHORIZATION.first(conn, {"patient_key": patient_key, "only": only}))
    row = conn.execute(_DOSSIER, {"patient_key": patient_key}).first()
    if row is None:
        return None
    auths = {r.professional_id: AuthorizationState(r.state)
             for r in conn.execute(select(a.professional_id, a.state).where(a.patient_key == patient_key))}
    return _dossier(patient_key, row, auths, frozenset())


class OneReader:
    """:func:`load` for one professional through :class:`~consent._reads.OneStatementReads` (PostgreSQL: one
    round trip, no transaction; the same statement, compiled once for the reader's driver)."""

    def __init__(self, reads: OneStatementReads) -> None:
        self._reads = reads
        self._sql, self._row = reads.compile(_WITH_ONE_AUTHORIZATION.statement)

    def load(self, patient_key: str, only: str) -> Dossier | None:
        return _one(patient_key, only, self._reads.first(self._sql, self._row, {"patient_key": patient_key,
                                                                                 "only": only}))


def _one(patient_key: str, only: str, row: Any) -> Dossier | None:
    if row is None:
        return None
    auths = {only: AuthorizationState(row.only_state)} if row.only_state else {}
    return _dossier(patient_key, row, auths, frozenset((only,)) if row.only_first_at is not None else frozenset())


def _dossier(patient_key: str, row: Any, auths: dict[str, AuthorizationState], accessed_by: frozenset[str]
             ) -> Dossier:
    return Dossier(patient_key=patient_key, closed=row.closed_at is not None, minor=bool(row.minor),
                   treating_doctor=row.treating_doctor, authorizations=auths,
                   allow_break_glass=bool(row.allow_break_glass), allow_centre_15=bool(row.allow_centre_15),
                   masked_visible_in_emergency=bool(row.masked_visible_in_emergency),
                   feeding_opposed=bool(row.feeding_opposed), accessed_by=accessed_by)


@dataclass(frozen=True)
class Contact:
    email: str | None
    mobile: str | None


def new_creation_code() -> str:
    """The code handed to the patient when the dossier is opened, to activate the online space (R38): 12
    characters, ~60 bits, grouped by four for reading."""
    raw = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(12))
    return "-".join(raw[i:i + 4] for i in range(0, 12, 4))


def hash_code(code: str, salt: bytes | None = None) -> str:
    """scrypt of a secret code (never stored in clear): ``salt-hex$hash-hex``."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.scrypt(code.replace("-", "").upper().encode(), salt=salt, dklen=32, **_SCRYPT)
    return f"{salt.hex()}${digest.hex()}"


def code_matches(code: str, stored: str) -> bool:
    salt_hex, _, _ = stored.partition("$")
    return secrets.compare_digest(hash_code(code, bytes.fromhex(salt_hex)), stored)


def create(conn: Connection, patient_key: str, *, now: str, consent_by: str, consent_channel: str,
           minor: bool, contact: Contact, creation_code: str) -> None:
    """The dossier row of a new patient (R1: the consent that opened it is recorded)."""
    conn.execute(insert(dossier).values(
        patient_key=patient_key, created_at=now, consent_by=consent_by, consent_channel=consent_channel,
        creation_code_hash=hash_code(creation_code), minor=minor, treating_doctor=None, allow_break_glass=True,
        allow_centre_15=True, masked_visible_in_emergency=False, feeding_opposed=False, email=contact.email,
        mobile=contact.mobile, trusted_email=None, notify_trusted=False, notify_new_document=True, closed_at=None,
        purge_after=None, history_seq=0, history_head=GENESIS))


def set_authorization(conn: Connection, patient_key: str, professional_id: str, state: AuthorizationState | None,
                      *, declared_by: str, now: str) -> None:
    """Record ``state`` for the pair (None removes it: back to NON_EXISTE)."""
    conn.execute(delete(ps_authorization).where(a.patient_key == patient_key, a.professional_id == professional_id))
    if state is not None and state is not AuthorizationState.NONE:
        conn.execute(insert(ps_authorization).values(patient_key=patient_key, professional_id=professional_id,
                                                     state=state.value, declared_by=declared_by, at=now))


def authorizations(conn: Connection, patient_key: str) -> list[tuple[str, AuthorizationState, str, str]]:
    """(professional, state, declared_by, at) of the dossier, by professional."""
    return [(r.professional_id, AuthorizationState(r.state), r.declared_by, r.at) for r in conn.execute(
        select(a.professional_id, a.state, a.declared_by, a.at).where(a.patient_key == patient_key)
        .order_by(a.professional_id))]


def dossiers_of(conn: Connection, professional_id: str) -> list[str]:
    """Patients on whose dossier ``professional_id`` is authorised or médecin traitant (TD0.4)."""
    authorised = set(conn.execute(select(a.patient_key).where(
        a.professional_id == professional_id, a.state == AuthorizationState.VALID.value)).scalars())
    treating = set(conn.execute(select(d.patient_key).where(d.treating_doctor == professional_id)).scalars())
    return sorted(authorised | treating)


def update_dossier(conn: Connection, patient_key: str, **values: Any) -> None:
    conn.execute(update(dossier).where(d.patient_key == patient_key).values(**values))


def row(conn: Connection, patient_key: str) -> Any:
    return conn.execute(select(dossier).where(d.patient_key == patient_key)).first()


def first_access(conn: Connection, patient_key: str, professional_id: str, now: str) -> bool:
    """Record that ``professional_id`` accessed the dossier; True the first time (the patient is told, R36).
    One statement: an insert that does nothing when the pair is already there."""
    values = {"patient_key": patient_key, "professional_id": professional_id, "first_at": now}
    return _FIRST_ACCESS[conn.dialect.name].run(conn, values) == 1
