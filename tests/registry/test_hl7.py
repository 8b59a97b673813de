"""HL7 v2 value types and the NIR (ITI TF-3 Table 4.2.3.1.7-2, docs/identifiers.md)."""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from registry import _hl7


@pytest.mark.parametrize(("nir", "valid"), [
    ("284067512345688", True),
    ("284067512345687", False),
    ("185052A01234579", True),
    ("188102B17295264", True),
    ("207058575627097", True),   # key 97: N mod 97 == 0
    ("255069999999934", True),
    ("185054958815780", False),  # the NIR printed in seed S003 (key should be 25)
    ("2 84 06 75 123 456 88", False),  # a NIR is 15 characters as sent: no space is removed
    ("2840675123456 88", False),
    ("185052a01234579", False),  # Corsica is 2A/2B in upper case
    ("28406751234568", False),
    ("2840675123456AB", False),
])
def test_nir_key(nir, valid):
    assert (_hl7.check_nir(nir) is None) is valid


def test_nir_message_names_expected_key():
    assert _hl7.check_nir("185054958815780") == "NIR '185054958815780' has a wrong key: 80, expected 25"


@pytest.mark.parametrize("value", ["2024", "202403", "20240312", "2024031209", "202403120930", "20240312093000",
                                   "20240229"])
def test_dtm_accepted(value):
    assert _hl7.check_dtm(value) is None


@pytest.mark.parametrize("value", ["", "24", "20240", "2024-03-12", "20240312093000.5", "20240312093000+0100",
                                   "20231301", "20230229", "20240332", "20240312250000", "2024031209306"])
def test_dtm_refused(value):
    assert _hl7.check_dtm(value) is not None


@given(st.datetimes(min_value=datetime(1000, 1, 1)).map(lambda d: d.strftime("%Y%m%d%H%M%S")),
       st.sampled_from([4, 6, 8, 10, 12, 14]))
def test_dtm_padding_brackets_the_instant(full, precision):
    """A truncated DTM denotes an interval that contains every instant it was truncated from."""
    short = full[:precision]
    assert _hl7.dtm_floor(short) <= full <= _hl7.dtm_ceiling(short)
    assert len(_hl7.dtm_floor(short)) == len(_hl7.dtm_ceiling(short)) == 14


def test_cx_identity_ignores_cx5():
    a = _hl7.CX.parse("284067512345688^^^&1.2.250.1.213.1.4.10&ISO^NH")
    b = _hl7.CX.parse("284067512345688^^^&1.2.250.1.213.1.4.10&ISO")
    assert a is not None
    assert b is not None
    assert a.key == b.key == "284067512345688^^^&1.2.250.1.213.1.4.10&ISO"
    assert str(a).endswith("^NH")


@pytest.mark.parametrize("value", ["284067512345688", "^^^&1.2.3&ISO", "1^^^1.2.3", "1^^^&1.2.3&DNS",
                                   "1^x^^&1.2.3&ISO", "1^^^&notanoid&ISO", "1^^^a&1.2.3&ISO"])
def test_cx_refused(value):
    assert _hl7.check_cx(value) is not None


@pytest.mark.parametrize(("value", "ok"), [
    ("1.2.250.1.213.1.4.10", True), ("2.16.840.1.113883.5.25", True), ("1.2.03", False), ("01.2", False),
    ("1", False), ("1." + "1." * 40 + "1", False), ("1.2.a", False),
    ("7.1", False), ("1.40", False), ("0.39", True), ("2.999.1", True),  # X.660: first arc 0-2, then <= 39
])
def test_oid(value, ok):
    assert (_hl7.check_oid(value) is None) is ok


@pytest.mark.parametrize(("value", "ok"), [
    ("1.2.250.1.999.1.1", True), ("1.2.250.1.999^ABC-12", True), ("1.2.250.1.999^", False),
    ("abc^def", False), ("1.2.3 4", False), ("1.2." + "1" * 130, False),
])
def test_document_unique_id(value, ok):
    assert (_hl7.check_document_unique_id(value) is None) is ok


@pytest.mark.parametrize(("value", "ok"), [
    ("801234567897^MARTIN^Claire^^^^^^&1.2.250.1.71.4.2.1&ISO", True),
    ("899700012349^TESTEUR^ALICE^^^^^^&1.2.250.1.71.4.2.1&ISO^D^^^IDNPS", True),
    ("^MARTIN", True),
    ("^^Claire", False),
    ("^MARTIN^^^^^^^&1.2.3&ISO", False),
])
def test_xcn(value, ok):
    assert (_hl7.check_xcn(value) is None) is ok


@pytest.mark.parametrize(("value", "ok"), [
    ("CH FICTIF^^^^^&1.2.250.1.71.4.2.2&ISO^^^^1750000000", True),
    ("CABINET DR TESTEUR^^^^^&1.2.250.1.71.4.2.2&ISO^IDNST^^^499700012349012", True),
    ("^^^^^&1.2.3&ISO^^^^1", False),
])
def test_xon(value, ok):
    assert (_hl7.check_xon(value) is None) is ok


@pytest.mark.parametrize(("value", "ok"), [
    ("^NET^Internet^claire.martin@example.fr", True),
    ("^PRN^PH^^^^^^^^^+33123456789", True),
    ("^NET^Internet^nobody", False),
    ("^PRN^PH", False),
    ("", False),
])
def test_xtn(value, ok):
    assert (_hl7.check_xtn(value) is None) is ok


def test_uuid_urn():
    assert _hl7.is_uuid_urn("urn:uuid:d831e2f9-aade-4783-b37d-fbe69811e11d")
    assert not _hl7.is_uuid_urn("d831e2f9-aade-4783-b37d-fbe69811e11d")
    assert not _hl7.is_uuid_urn("urn:uuid:d831e2f9-aade-4783-b37d-fbe69811e11")
    assert not _hl7.is_uuid_urn("urn:uuid:d831e2f9aade4783b37dfbe69811e11d----")  # 32 hex digits, hyphens misplaced
    assert not _hl7.is_uuid_urn("urn:uuid:d831e2f9aade4783b37dfbe69811e11d")


def _dtm_valid_by_calendar(value: str) -> bool:
    """A 4-14 digit DTM of even length (after the year) that datetime accepts, padded with the earliest instant."""
    if not (value.isdigit() and value.isascii() and 4 <= len(value) <= 14 and len(value) % 2 == 0):
        return False
    padded = _hl7.dtm_floor(value)
    try:
        datetime.strptime(padded, "%Y%m%d%H%M%S")
    except ValueError:
        return False
    return True


@given(st.integers(1, 9999), st.integers(0, 13), st.integers(0, 32), st.integers(0, 24), st.integers(0, 60),
       st.integers(0, 60), st.integers(2, 7))
def test_dtm_day_of_month_follows_the_calendar(year, month, day, hour, minute, second, length):
    """Every month's length, February of leap years included (issue 13: a table instead of calendar.monthrange)."""
    value = f"{year:04d}{month:02d}{day:02d}{hour:02d}{minute:02d}{second:02d}"[: 2 * length]
    assert (_hl7.check_dtm(value) is None) is _dtm_valid_by_calendar(value)


@given(st.lists(st.sampled_from(["284067512345688", "^", "&", "1.2.250.1.213.1.4.10", "ISO", "NH", "01", "x" * 60]),
                max_size=12).map("".join))
def test_cx_parse_remembered_or_not_is_the_same_reading(value):
    # CX.parse remembers its last values (registry._hl7): asked twice, short or long, it reads what a fresh
    # reading does.
    assert _hl7.CX.parse(value) == _hl7._read_cx(value)
    assert _hl7.CX.parse(value) == _hl7._read_cx(value)
