"""What an allowed access writes (consent.Guard on a real database, SQLite file and PostgreSQL), kept exact while
its per-request work was cut (issue 13): the first-access notice exactly once per professional (R36) whether or not
the dossier read already knew them, the history entry's canonical JSON (what its hash covers), and the notice's
instant read back from the consent timestamp."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from notify_servers import (  # noqa: F401 - the `outbox_store` fixture
    add_dossier,
    outbox_rows,
    outbox_store_fixture,
)
from test_decide import ALICE, BOB, ps

from consent import Action, Guard, Notice
from consent._dossiers import load
from consent._history import HistoryEntry, entries
from consent._notices import _moment
from registry import Store

KEY = "P1"


def _access(guard: Guard, store: Store, professional: str, *, read_dossier: bool = True) -> None:
    """An allowed FEED by ``professional`` (the médecin traitant may feed), traced in a write transaction; the
    dossier as the request read it, or (``read_dossier=False``) without it, as when none was read."""
    caller = ps(professional)
    trace = guard.admit(caller, Action.FEED, KEY, transaction="ITI-41")
    if not read_dossier:
        trace.dossier = None
    with store.write() as conn:
        trace(conn)


@pytest.mark.parametrize("read_dossier", [True, False])
def test_first_access_is_announced_once_per_professional(outbox_store, read_dossier):
    add_dossier(outbox_store, KEY, email="patient@example.org")
    with outbox_store.write() as conn:
        conn.exec_driver_sql(f"UPDATE dossier SET treating_doctor = '{ALICE}'")
    guard = Guard(outbox_store)
    assert ALICE not in guard.dossier(KEY, ps(ALICE)).accessed_by
    _access(guard, outbox_store, ALICE, read_dossier=read_dossier)
    assert guard.dossier(KEY, ps(ALICE)).accessed_by == {ALICE}   # known from now on
    assert guard.dossier(KEY, ps(BOB)).accessed_by == frozenset()   # loaded for the caller only
    _access(guard, outbox_store, ALICE, read_dossier=read_dossier)
    _access(guard, outbox_store, ALICE, read_dossier=read_dossier)
    firsts = [r for r in outbox_rows(outbox_store) if r.notice == Notice.FIRST_ACCESS.value]
    assert len(firsts) == 1
    with outbox_store.read() as conn:
        assert len(entries(conn, KEY)) == 3                           # every access is in the history
        assert load(conn, KEY).accessed_by == frozenset()              # whole dossier: not loaded


_TEXT = st.text(max_size=12)
_ENTRIES = st.builds(
    HistoryEntry, action=_TEXT, transaction=_TEXT, allowed=st.booleans(), reason=_TEXT, actor_id=_TEXT,
    actor_name=_TEXT, actor_kind=_TEXT, profession=st.none() | _TEXT, structure=st.none() | _TEXT,
    auth_mode=st.none() | _TEXT, purpose=st.none() | _TEXT, emergency=st.booleans(),
    documents=st.lists(_TEXT, max_size=3).map(tuple), detail=st.none() | _TEXT)


@given(_ENTRIES)
def test_history_entry_json_is_the_canonical_json_of_its_fields(entry):
    reference = asdict(entry) | {"documents": list(entry.documents)}
    text = entry.to_json()
    assert text == json.dumps(reference, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert HistoryEntry.from_json(text) == entry


def test_history_entry_json_text_is_pinned():
    # Stored histories are hashed over this text: its form never changes.
    entry = HistoryEntry(action="FEED", transaction="ITI-41", allowed=True, reason="OK", actor_id="899700012349",
                         actor_name="Dr É", actor_kind="PS", profession="10", documents=("1.2.3",))
    assert entry.to_json() == (
        '{"action":"FEED","actor_id":"899700012349","actor_kind":"PS","actor_name":"Dr É","allowed":true,'
        '"auth_mode":null,"detail":null,"documents":["1.2.3"],"emergency":false,"profession":"10","purpose":null,"reason":"OK",'
        '"structure":null,"transaction":"ITI-41"}')


@given(st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(9998, 12, 31)))
def test_notice_instant_is_the_timestamp_read_back(moment):
    text = moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    assert _moment(text) == datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    assert _moment(text).tzinfo is UTC


@pytest.mark.parametrize("text", ["2026-12-06T20:15:00.12xZ", "2026-12-06 20:15:00.123", "2026-13-06T20:15:00.123Z"])
def test_a_malformed_notice_instant_is_refused(text):
    with pytest.raises(ValueError):
        _moment(text)
