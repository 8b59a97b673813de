"""The access-history append on a real database (SQLite file and PostgreSQL, where it is one statement whose link
the server computes): each entry is linked to the previous one with exactly the bytes of ``consent._history.link``,
the head moves with it, and appends to one history from many connections at once are serialised into one
unbroken chain (``verify_history`` finds nothing wrong)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from notify_servers import add_dossier, outbox_store_fixture  # noqa: F401 - the `outbox_store` fixture
from sqlalchemy import select

from consent import verify_history
from consent._history import GENESIS, HistoryEntry, append, entries, link
from consent._outbox import CONTACT_COLUMNS
from consent._schema import access_history, dossier
from registry import Store


def _entry(n: int) -> HistoryEntry:
    # non-ASCII text (canonical JSON keeps it as is): the link covers its UTF-8 bytes on every database
    return HistoryEntry(action="feed", transaction="ITI-41", allowed=True, reason="OK", actor_id=f"899700{n:05d}",
                        actor_name="Dr Hélène Lefèvre 🩺", actor_kind="authorised", profession="10",
                        documents=(f"1.2.250.1.{n}", "1.2.250.1.x"), detail=None)


def test_entries_link_with_the_bytes_of_link_and_the_head_follows(outbox_store: Store):
    add_dossier(outbox_store, "P1", email="p@example.fr", notify_new_document=True)
    expected_prev = GENESIS
    for n, at in enumerate(("2026-12-07T10:00:00.000Z", "2026-12-07T10:00:00.001Z", "2026-12-07T10:00:01.000Z"),
                           start=1):
        with outbox_store.write() as conn:
            head = append(conn, "P1", _entry(n), at, also=CONTACT_COLUMNS)
        assert (head.history_seq, head.history_head) == (n - 1, expected_prev)   # the head as read, before
        assert (head.email, head.mobile, bool(head.notify_new_document)) == ("p@example.fr", None, True)
        with outbox_store.read() as conn:
            row = conn.execute(select(access_history).where(access_history.c.seq == n)).one()
            moved = conn.execute(select(dossier.c.history_seq, dossier.c.history_head)).one()
        assert (row.patient_key, row.at, row.entry, row.prev_hash) == ("P1", at, _entry(n).to_json(), expected_prev)
        assert row.hash == link(expected_prev, "P1", n, at, _entry(n).to_json())
        assert tuple(moved) == (n, row.hash)
        expected_prev = row.hash
    assert list(verify_history(outbox_store)) == []


def test_no_dossier_no_entry(outbox_store: Store):
    with outbox_store.write() as conn:
        assert append(conn, "NOBODY", _entry(1), "2026-12-07T10:00:00.000Z") is None
        assert conn.execute(select(access_history)).all() == []


def test_concurrent_appends_to_one_history_make_one_unbroken_chain(outbox_store: Store):
    add_dossier(outbox_store, "P1")
    add_dossier(outbox_store, "P2")

    def append_some(worker: int) -> None:
        for i in range(15):
            with outbox_store.write() as conn:
                append(conn, "P1" if i % 4 else "P2", _entry(worker * 100 + i),
                       f"2026-12-07T10:{worker:02d}:{i:02d}.000Z")

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(append_some, range(8)))
    with outbox_store.read() as conn:
        p1 = entries(conn, "P1", newest_first=False)
        p2 = entries(conn, "P2", newest_first=False)
    assert [r.seq for r in p1] == list(range(1, 8 * 11 + 1))
    assert [r.seq for r in p2] == list(range(1, 8 * 4 + 1))
    assert list(verify_history(outbox_store)) == []


@pytest.mark.parametrize("outbox_store", ["postgresql"], indirect=True)
def test_an_edited_entry_written_by_postgresql_is_detected(outbox_store: Store):
    """The server-computed link is checked by the node's verification like any other (not trusted blindly)."""
    add_dossier(outbox_store, "P1")
    for n in (1, 2):
        with outbox_store.write() as conn:
            append(conn, "P1", _entry(n), f"2026-12-07T10:00:0{n}.000Z")
    with outbox_store.write() as conn:
        conn.execute(access_history.update().where(access_history.c.seq == 1)
                     .values(entry=_entry(3).to_json()))
    assert [p.what for p in verify_history(outbox_store)] == ["content does not match its hash (edited)"]
