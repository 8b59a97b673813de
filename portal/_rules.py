"""The pure rules of the patients' space (docs/portal.md; DMP account rules R30-R32): login ids, passwords,
one-time codes, lockout, and the rate limit's figures (``portal._rate`` keeps its counts). No I/O: times are
given, randomness comes from ``secrets``."""

from __future__ import annotations

import re
import secrets
import string
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

LOGIN_ID_DIGITS: Final = 4
LOGIN_ID_LETTERS: Final = 4
_LETTERS: Final = "abcdefghjkmnpqrstuvwxyz"             # no i, l, o: read from paper without doubt
_ID_DIGITS_FIRST: Final = re.compile(r"[0-9]{4}[a-z]{4}")
_ID_LETTERS_FIRST: Final = re.compile(r"[a-z]{4}[0-9]{4}")  # S003's example "heup7511" (DMP.md §7.4)
MIN_PASSWORD_LENGTH: Final = 8                           # R31: the personalised password has 8 characters
MAX_PASSWORD_LENGTH: Final = 128
OTP_DIGITS: Final = 6                                    # §9 point 9: 6 digits (S004, and S003's own example)
OTP_VALIDITY: Final = timedelta(minutes=10)
OTP_MAX_ATTEMPTS: Final = 3                              # wrong codes before the code is spent
MAX_FAILED_LOGINS: Final = 5
LOCK_DURATION: Final = timedelta(minutes=15)
SESSION_IDLE: Final = timedelta(minutes=15)
SESSION_PENDING: Final = timedelta(minutes=10)           # between the password and the code (the code's life)
RATE_LIMIT: Final = 30                                   # sign-in attempts per client address and window
RATE_WINDOW: Final = timedelta(minutes=5)


def new_login_id() -> str:
    """4 digits then 4 letters (R31), e.g. ``7511heup``."""
    return "".join(secrets.choice(string.digits) for _ in range(LOGIN_ID_DIGITS)) + \
        "".join(secrets.choice(_LETTERS) for _ in range(LOGIN_ID_LETTERS))


def normal_login_id(text: str) -> str | None:
    """The login id as stored, from what the patient typed (either order, any case, spaces ignored), or None
    when it cannot be one."""
    value = "".join(text.split()).lower()
    if _ID_DIGITS_FIRST.fullmatch(value) or _ID_LETTERS_FIRST.fullmatch(value):
        return value
    return None


def new_initial_password() -> str:
    """8 characters mixing lower and upper case, digits and a symbol (S003's ``jt#v3mGg``)."""
    classes = [string.ascii_lowercase, string.ascii_uppercase, string.digits, "#%+=!?"]
    chars = [secrets.choice(c) for c in classes] + [secrets.choice("".join(classes)) for _ in range(4)]
    secrets.SystemRandom().shuffle(chars)
    return "".join(chars)


def password_problem(password: str, confirmation: str, *, login_id: str | None = None) -> str | None:
    """Why ``password`` cannot be the new password (French, shown to the patient), or None."""
    if password != confirmation:
        return "Les deux saisies du mot de passe ne sont pas identiques."
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"Le mot de passe doit comporter au moins {MIN_PASSWORD_LENGTH} caractères."
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"Le mot de passe doit comporter au plus {MAX_PASSWORD_LENGTH} caractères."
    if login_id and login_id.lower() in password.lower():
        return "Le mot de passe ne doit pas contenir votre identifiant."
    return None


def new_otp() -> str:
    return f"{secrets.randbelow(10**OTP_DIGITS):0{OTP_DIGITS}d}"


def normal_otp(text: str) -> str | None:
    value = "".join(text.split())
    return value if len(value) == OTP_DIGITS and value.isdigit() else None


@dataclass(frozen=True)
class OtpState:
    """A stored one-time code as the rule sees it."""

    expires_at: datetime
    used: bool
    attempts: int


def otp_usable(state: OtpState, now: datetime) -> bool:
    """A code is accepted once, within its 10 minutes, before too many wrong tries."""
    return not state.used and now < state.expires_at and state.attempts < OTP_MAX_ATTEMPTS


def lock_after_failure(failures: int, now: datetime) -> datetime | None:
    """After the ``failures``-th wrong password in a row: locked until when, or None (not yet)."""
    return now + LOCK_DURATION if failures >= MAX_FAILED_LOGINS else None


def is_locked(locked_until: datetime | None, now: datetime) -> bool:
    return locked_until is not None and now < locked_until


def mask_email(email: str) -> str:
    """``p***@example.fr``: where the code went, without showing the address in full."""
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}" if domain else "***"


def mask_mobile(mobile: str) -> str:
    digits = "".join(c for c in mobile if c.isdigit())
    return f"** ** ** {digits[-4:-2]} {digits[-2:]}" if len(digits) >= 4 else "***"
