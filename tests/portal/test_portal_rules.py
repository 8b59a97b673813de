"""The pure rules of the patients' space (docs/portal.md): login ids, passwords, one-time codes, lockout,
rate limiting."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from portal import _rules

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_login_ids_are_four_digits_then_four_letters_and_accepted_in_either_order():
    for _ in range(200):
        login_id = _rules.new_login_id()
        assert re.fullmatch(r"[0-9]{4}[a-z]{4}", login_id)
        assert _rules.normal_login_id(login_id) == login_id
    assert _rules.normal_login_id(" 7511 HEUP ") == "7511heup"
    assert _rules.normal_login_id("heup7511") == "heup7511"          # S003's example (DMP.md §7.4)
    for bad in ("", "7511heu", "7511heupx", "75h1eup1", "7511hé up", "1234567a"):
        assert _rules.normal_login_id(bad) is None


@given(st.text(max_size=20))
def test_a_normal_login_id_is_always_one_of_the_two_forms(text):
    value = _rules.normal_login_id(text)
    assert value is None or re.fullmatch(r"[0-9]{4}[a-z]{4}|[a-z]{4}[0-9]{4}", value)


def test_initial_passwords_mix_four_classes_of_characters():
    for _ in range(200):
        p = _rules.new_initial_password()
        assert len(p) == 8
        assert any(c.islower() for c in p)
        assert any(c.isupper() for c in p)
        assert any(c.isdigit() for c in p)
        assert any(c in "#%+=!?" for c in p)


def test_password_rules():
    assert _rules.password_problem("abcdefgh", "abcdefgh") is None
    assert "identiques" in (_rules.password_problem("abcdefgh", "abcdefgx") or "")
    assert "au moins 8" in (_rules.password_problem("abcdefg", "abcdefg") or "")
    assert "identifiant" in (_rules.password_problem("x7511heupx", "x7511heupx", login_id="7511heup") or "")
    assert "au plus" in (_rules.password_problem("a" * 129, "a" * 129) or "")


def test_one_time_codes_have_six_digits_and_live_ten_minutes_once():
    codes = {_rules.new_otp() for _ in range(200)}
    assert all(re.fullmatch(r"[0-9]{6}", c) for c in codes)
    assert len(codes) > 150
    assert _rules.normal_otp(" 421 731 ") == "421731"
    assert _rules.normal_otp("42173") is None
    assert _rules.normal_otp("42173a") is None
    fresh = _rules.OtpState(NOW + _rules.OTP_VALIDITY, used=False, attempts=0)
    assert timedelta(minutes=10) == _rules.OTP_VALIDITY
    assert _rules.otp_usable(fresh, NOW + timedelta(minutes=9, seconds=59))
    assert not _rules.otp_usable(fresh, NOW + timedelta(minutes=10))                       # expired
    assert not _rules.otp_usable(_rules.OtpState(fresh.expires_at, used=True, attempts=0), NOW)   # used once
    assert not _rules.otp_usable(_rules.OtpState(fresh.expires_at, used=False,
                                                 attempts=_rules.OTP_MAX_ATTEMPTS), NOW)  # too many wrong tries


def test_lockout_after_five_failures_for_fifteen_minutes():
    for failures in range(1, _rules.MAX_FAILED_LOGINS):
        assert _rules.lock_after_failure(failures, NOW) is None
    until = _rules.lock_after_failure(_rules.MAX_FAILED_LOGINS, NOW)
    assert until == NOW + timedelta(minutes=15)
    assert _rules.is_locked(until, NOW + timedelta(minutes=14))
    assert not _rules.is_locked(until, NOW + timedelta(minutes=15))
    assert not _rules.is_locked(None, NOW)


def test_contacts_are_masked_where_the_code_went():
    assert _rules.mask_email("patiente@example.fr") == "p***@example.fr"
    assert _rules.mask_mobile("06 12 34 56 78") == "** ** ** 56 78"
