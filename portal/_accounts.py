"""Accounts, one-time codes and sessions of the patients' space, in the registry's database (docs/portal.md).

Secrets are never stored in clear: passwords as argon2id hashes (argon2-cffi), one-time codes and the creation
code as scrypt hashes, session cookies as their SHA-256. Every answer that could tell whether an account, a
login id or a NIR exists is the same whatever the cause (no user enumeration): callers get None or False.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, delete, insert, select, update

from identifiers import INS_NIR_OIDS
from portal import _rules
from portal._schema import portal_account, portal_otp, portal_session, portal_wishes
from registry import Store, check_nir

acc, otp, ses, wis = portal_account.c, portal_otp.c, portal_session.c, portal_wishes.c
_HASHER = PasswordHasher()                    # argon2id, the library's defaults (RFC 9106 second recommendation)
_TIME = "%Y-%m-%dT%H:%M:%S.%fZ"


@cache
def _dummy_hash() -> str:
    """Verified against when there is no account (or it is locked): the answer takes the same time. Made on
    first use, not at import: each worker process starts without paying for a hash."""
    return _HASHER.hash(secrets.token_hex(16))


def now_utc() -> datetime:
    return datetime.now(UTC)


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(_TIME)[:-4] + "Z"


def parse_stamp(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def _scrypt(code: str, salt: bytes) -> str:
    return salt.hex() + "$" + hashlib.scrypt(code.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32).hex()


def _scrypt_matches(code: str, stored: str) -> bool:
    salt_hex, _, _ = stored.partition("$")
    return secrets.compare_digest(_scrypt(code, bytes.fromhex(salt_hex)), stored)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def patient_keys_for_nir(nir: str) -> list[str]:
    """The patient keys a NIR typed by the patient may stand for (one per INS-NIR authority); [] when the
    NIR is not one (its key does not check)."""
    value = "".join(nir.split()).upper()
    if check_nir(value) is not None:
        return []
    return [f"{value}^^^&{oid}&ISO" for oid in sorted(INS_NIR_OIDS)]


@dataclass(frozen=True)
class Account:
    patient_key: str
    login_id: str
    must_change_password: bool
    locked_until: datetime | None


@dataclass(frozen=True)
class Session:
    patient_key: str
    stage: str               # "otp": password checked, code awaited; "reset": forgotten password; "in": logged in
    csrf: str
    token_hash: str


class Accounts:
    """The account store of one node."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # --- activation -----------------------------------------------------------------------------------

    def activate(self, conn: Connection, patient_key: str, vitale_serial: str, now: datetime
                 ) -> tuple[str, str]:
        """Create the account of ``patient_key`` in the caller's transaction: (login id, initial password)."""
        password = _rules.new_initial_password()
        while True:
            login_id = _rules.new_login_id()
            if conn.execute(select(acc.login_id).where(acc.login_id == login_id)).first() is None:
                break
        conn.execute(insert(portal_account).values(
            patient_key=patient_key, login_id=login_id, password_hash=_HASHER.hash(password),
            must_change_password=True, vitale_serial=vitale_serial, failed_logins=0, locked_until=None,
            created_at=stamp(now)))
        return login_id, password

    def has_account(self, conn: Connection, patient_key: str) -> bool:
        return conn.execute(select(acc.patient_key).where(acc.patient_key == patient_key)).first() is not None

    # --- password --------------------------------------------------------------------------------------

    def check_password(self, login_id: str, password: str, now: datetime) -> tuple[Account | None, bool]:
        """(the account, whether the password was right). A locked account is never let in, even with the
        right password; a wrong one counts towards the lock (:func:`portal._rules.lock_after_failure`)."""
        with self.store.write() as conn:
            row = conn.execute(select(portal_account).where(acc.login_id == login_id)).first()
            if row is None:
                _verify(_dummy_hash(), password)
                return None, False
            locked = parse_stamp(row.locked_until) if row.locked_until else None
            if _rules.is_locked(locked, now):
                _verify(_dummy_hash(), password)
                return _account(row), False
            if _verify(row.password_hash, password):
                conn.execute(update(portal_account).where(acc.patient_key == row.patient_key)
                             .values(failed_logins=0, locked_until=None))
                return _account(row), True
            failures = int(row.failed_logins) + 1
            until = _rules.lock_after_failure(failures, now)
            conn.execute(update(portal_account).where(acc.patient_key == row.patient_key).values(
                failed_logins=0 if until else failures, locked_until=stamp(until) if until else None))
            return _account(row), False

    def set_password(self, conn: Connection, patient_key: str, password: str) -> None:
        conn.execute(update(portal_account).where(acc.patient_key == patient_key).values(
            password_hash=_HASHER.hash(password), must_change_password=False, failed_logins=0, locked_until=None))

    def account(self, patient_key: str) -> Account | None:
        with self.store.read() as conn:
            row = conn.execute(select(portal_account).where(acc.patient_key == patient_key)).first()
            return _account(row) if row is not None else None

    def account_by_login(self, login_id: str) -> Account | None:
        with self.store.read() as conn:
            row = conn.execute(select(portal_account).where(acc.login_id == login_id)).first()
            return _account(row) if row is not None else None

    # --- one-time codes --------------------------------------------------------------------------------

    def issue_otp(self, patient_key: str, purpose: str, now: datetime) -> str:
        """A new code for ``purpose``; any earlier one of the same purpose stops working."""
        code = _rules.new_otp()
        with self.store.write() as conn:
            conn.execute(update(portal_otp).where(otp.patient_key == patient_key, otp.purpose == purpose,
                                                  otp.used_at.is_(None)).values(used_at=stamp(now)))
            conn.execute(insert(portal_otp).values(
                patient_key=patient_key, purpose=purpose, code_hash=_scrypt(code, secrets.token_bytes(16)),
                expires_at=stamp(now + _rules.OTP_VALIDITY), used_at=None, attempts=0))
        return code

    def use_otp(self, patient_key: str, purpose: str, code: str, now: datetime) -> bool:
        """True once for the right code within its validity; a wrong code counts an attempt."""
        with self.store.write() as conn:
            row = conn.execute(select(portal_otp).where(otp.patient_key == patient_key, otp.purpose == purpose)
                               .order_by(otp.id.desc()).limit(1).with_for_update()).first()
            if row is None:
                return False
            state = _rules.OtpState(parse_stamp(row.expires_at), row.used_at is not None, int(row.attempts))
            if not _rules.otp_usable(state, now):
                return False
            if _scrypt_matches(code, row.code_hash):
                conn.execute(update(portal_otp).where(otp.id == row.id).values(used_at=stamp(now)))
                return True
            conn.execute(update(portal_otp).where(otp.id == row.id).values(attempts=int(row.attempts) + 1))
            return False

    # --- sessions --------------------------------------------------------------------------------------

    def open_session(self, patient_key: str, stage: str, now: datetime) -> tuple[str, Session]:
        """A new session (the cookie's value, and the session): a fresh id at every stage change, so a
        session id seen before login is worthless after it."""
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        with self.store.write() as conn:
            conn.execute(insert(portal_session).values(token_hash=token_hash(token), patient_key=patient_key,
                                                       stage=stage, csrf=csrf, created_at=stamp(now),
                                                       last_seen_at=stamp(now)))
        return token, Session(patient_key, stage, csrf, token_hash(token))

    def session(self, token: str, now: datetime) -> Session | None:
        """The live session of ``token``, its idle time renewed; None (and forgotten) once expired."""
        digest = token_hash(token)
        with self.store.write() as conn:
            row = conn.execute(select(portal_session).where(ses.token_hash == digest)).first()
            if row is None:
                return None
            idle = _rules.SESSION_IDLE if row.stage == "in" else _rules.SESSION_PENDING
            if now - parse_stamp(row.last_seen_at) > idle:
                conn.execute(delete(portal_session).where(ses.token_hash == digest))
                return None
            conn.execute(update(portal_session).where(ses.token_hash == digest).values(last_seen_at=stamp(now)))
            return Session(row.patient_key, row.stage, row.csrf, digest)

    def close_session(self, session: Session) -> None:
        with self.store.write() as conn:
            conn.execute(delete(portal_session).where(ses.token_hash == session.token_hash))

    def close_sessions_of(self, conn: Connection, patient_key: str) -> None:
        conn.execute(delete(portal_session).where(ses.patient_key == patient_key))

    # --- wishes (R34) ----------------------------------------------------------------------------------

    def wishes(self, patient_key: str) -> dict[str, str | None]:
        with self.store.read() as conn:
            row = conn.execute(select(portal_wishes).where(wis.patient_key == patient_key)).first()
        names = ("trusted_person", "emergency_contact", "advance_directives", "organ_donation")
        return {n: (getattr(row, n) if row is not None else None) for n in names}

    @staticmethod
    def set_wishes(conn: Connection, patient_key: str, values: dict[str, str | None], now: str) -> None:
        conn.execute(delete(portal_wishes).where(wis.patient_key == patient_key))
        conn.execute(insert(portal_wishes).values(patient_key=patient_key, updated_at=now, **values))


def _verify(stored: str, password: str) -> bool:
    try:
        return _HASHER.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def _account(row: object) -> Account:
    locked = getattr(row, "locked_until", None)
    return Account(getattr(row, "patient_key"), getattr(row, "login_id"),      # noqa: B009
                   bool(getattr(row, "must_change_password")),                   # noqa: B009
                   parse_stamp(locked) if locked else None)
