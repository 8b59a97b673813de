"""Accounts, one-time codes and sessions in a real database (SQLite file; docs/portal.md "Security"): a code
works once and only within its 10 minutes, wrong tries spend it, a new code voids the old one; the lock after 5
wrong passwords; sessions end after 15 idle minutes; passwords are stored as argon2id hashes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from portal._accounts import Accounts
from portal._schema import portal_account
from registry import Store

KEY = "284067512345688^^^&1.2.250.1.213.1.4.10&ISO"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def accounts(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'r.db'}")
    store.migrate()
    yield Accounts(store)
    store.dispose()


def activated(accounts: Accounts) -> tuple[str, str]:
    with accounts.store.write() as conn:
        return accounts.activate(conn, KEY, "12345678", T0)


def test_one_time_code_once_within_ten_minutes(accounts):
    code = accounts.issue_otp(KEY, "login", T0)
    assert not accounts.use_otp(KEY, "login", code, T0 + timedelta(minutes=10))       # expired
    code = accounts.issue_otp(KEY, "login", T0)
    assert not accounts.use_otp(KEY, "reset", code, T0)                               # another purpose
    assert accounts.use_otp(KEY, "login", code, T0 + timedelta(minutes=9))
    assert not accounts.use_otp(KEY, "login", code, T0 + timedelta(minutes=9))        # used once


def test_wrong_tries_spend_the_code_and_a_new_code_voids_the_old_one(accounts):
    code = accounts.issue_otp(KEY, "login", T0)
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    for _ in range(3):
        assert not accounts.use_otp(KEY, "login", wrong, T0)
    assert not accounts.use_otp(KEY, "login", code, T0)
    old = accounts.issue_otp(KEY, "login", T0)
    new = accounts.issue_otp(KEY, "login", T0)
    if old != new:
        assert not accounts.use_otp(KEY, "login", old, T0)
    assert accounts.use_otp(KEY, "login", new, T0)


def test_lock_after_five_wrong_passwords_then_open_again(accounts):
    login_id, password = activated(accounts)
    with accounts.store.read() as conn:
        stored = conn.execute(select(portal_account.c.password_hash)).scalar_one()
    assert stored.startswith("$argon2id$")
    assert password not in stored
    for _ in range(5):
        account, ok = accounts.check_password(login_id, "wrong password", T0)
        assert account is not None
        assert not ok
    assert accounts.check_password(login_id, password, T0 + timedelta(minutes=14))[1] is False
    assert accounts.check_password(login_id, password, T0 + timedelta(minutes=15))[1] is True
    assert accounts.check_password("0000zzzz", password, T0) == (None, False)


def test_sessions_end_after_fifteen_idle_minutes(accounts):
    token, session = accounts.open_session(KEY, "in", T0)
    assert accounts.session(token, T0 + timedelta(minutes=14)) == session
    assert accounts.session(token, T0 + timedelta(minutes=28)) is not None     # renewed at minute 14
    assert accounts.session(token, T0 + timedelta(minutes=44)) is None         # 16 idle minutes
    assert accounts.session(token, T0 + timedelta(minutes=44, seconds=1)) is None
    pending, _ = accounts.open_session(KEY, "otp", T0)
    assert accounts.session(pending, T0 + timedelta(minutes=11)) is None       # the code's 10 minutes
