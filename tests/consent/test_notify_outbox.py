"""The outbox on a real database (SQLite file and PostgreSQL): written in the caller's transaction, claimed under
a lease that no second claimer can take while it is live, failures scheduled with back-off."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from nodes import database_url
from notify_servers import (  # noqa: F401 - the `outbox_store` fixture
    add_dossier,
    outbox_rows,
    outbox_store_fixture,
    wait_for,
)
from sqlalchemy import text

from consent import ChannelKind, Notice, NoticeDetails, RetryPolicy, enqueue_notice, outbox_status, utc_text
from consent._outbox import claim_due, mark_failed, mark_sent, release
from registry import Store

NOW = datetime(2026, 12, 6, 20, 15, 0, 123456, tzinfo=UTC)
LEASE = timedelta(minutes=5)
LATER = NOW + timedelta(minutes=1)
BOTH = (ChannelKind.EMAIL, ChannelKind.SMS)
DR = NoticeDetails(professional="Dr Jeanne Martin", structure="Cabinet du Parc")


def test_timestamps_sort_as_text():
    assert utc_text(NOW) == "2026-12-06T20:15:00.123Z"
    assert utc_text(datetime(2026, 12, 6, 21, 15, tzinfo=UTC).astimezone(UTC)) == "2026-12-06T21:15:00.000Z"


def test_enqueue_writes_one_row_per_recipient_and_channel(outbox_store):
    add_dossier(outbox_store, "P1", email="p@example.fr", mobile="+33612345678", trusted_email="t@example.fr",
                notify_trusted=True)
    with outbox_store.write() as conn:
        assert enqueue_notice(conn, "P1", Notice.FIRST_ACCESS, DR, now=NOW) == 3
    rows = outbox_rows(outbox_store)
    assert [(r.channel, r.recipient) for r in rows] == [("email", "p@example.fr"), ("sms", "+33612345678"),
                                                         ("email", "t@example.fr")]
    for r in rows:
        assert (r.patient_key, r.notice, r.attempts, r.sent_at, r.lease_until) == ("P1", "first-access", 0, None,
                                                                                   None)
        assert r.created_at == r.next_attempt_at == "2026-12-06T20:15:00.123Z"
        assert "Dr Jeanne Martin (Cabinet du Parc)" in r.body


def test_rolled_back_event_leaves_no_message(outbox_store):
    add_dossier(outbox_store, "P1", email="p@example.fr")
    queued = []

    def event_that_fails() -> None:
        with outbox_store.write() as conn:
            queued.append(enqueue_notice(conn, "P1", Notice.EMERGENCY_ACCESS, DR, now=NOW))
            raise RuntimeError("the transaction fails after the notice")

    with pytest.raises(RuntimeError, match="the transaction fails"):
        event_that_fails()
    assert queued == [1]
    assert outbox_rows(outbox_store) == []


def test_dossier_without_contact_queues_nothing(outbox_store):
    add_dossier(outbox_store, "P1", notify_trusted=True, notify_new_document=True)
    with outbox_store.write() as conn:
        for notice in Notice:
            assert enqueue_notice(conn, "P1", notice, DR, now=NOW) == 0
        assert enqueue_notice(conn, "no-such-dossier", Notice.FIRST_ACCESS, DR, now=NOW) == 0
    assert outbox_rows(outbox_store) == []


def test_choices_are_read_from_the_dossier(outbox_store):
    add_dossier(outbox_store, "P1", email="p@example.fr", trusted_email="t@example.fr", notify_trusted=False,
                notify_new_document=False)
    add_dossier(outbox_store, "P2", email="q@example.fr", trusted_email="u@example.fr", notify_trusted=True,
                notify_new_document=True)
    with outbox_store.write() as conn:
        assert enqueue_notice(conn, "P1", Notice.NEW_DOCUMENT, DR, now=NOW) == 0
        assert enqueue_notice(conn, "P1", Notice.DOCUMENT_VISIBLE, DR, now=NOW) == 1
        assert enqueue_notice(conn, "P2", Notice.NEW_DOCUMENT, DR, now=NOW) == 2
    assert [(r.patient_key, r.notice, r.recipient) for r in outbox_rows(outbox_store)] == [
        ("P1", "document-visible", "p@example.fr"),
        ("P2", "new-document", "q@example.fr"), ("P2", "new-document", "u@example.fr")]


def _queue(store, count=3):
    add_dossier(store, "P1", email="p@example.fr", mobile="+33612345678")
    with store.write() as conn:
        for i in range(count):
            enqueue_notice(conn, "P1", Notice.FIRST_ACCESS, DR, now=NOW + timedelta(seconds=i))


def test_a_live_claim_is_never_claimed_twice(outbox_store):
    _queue(outbox_store)
    with outbox_store.write() as conn:
        first = claim_due(conn, BOTH, now=NOW + timedelta(seconds=10), lease=LEASE, limit=4)
    with outbox_store.write() as conn:
        second = claim_due(conn, BOTH, now=NOW + timedelta(seconds=11), lease=LEASE, limit=10)
    with outbox_store.write() as conn:
        before_end = claim_due(conn, BOTH, now=NOW + timedelta(seconds=10) + LEASE - timedelta(milliseconds=1),
                               lease=LEASE, limit=10)
    assert len(first) == 4
    assert {m.id for m in first}.isdisjoint({m.id for m in second})
    assert len(second) == 2
    assert before_end == []
    # the first claimer died: its messages come back when its lease has ended, and only then
    with outbox_store.write() as conn:
        after_end = claim_due(conn, BOTH, now=NOW + timedelta(seconds=10) + LEASE, lease=LEASE, limit=10)
    assert sorted(m.id for m in after_end) == sorted(m.id for m in first)


def test_claims_are_due_only_and_per_configured_channel(outbox_store):
    _queue(outbox_store, count=1)
    with outbox_store.write() as conn:
        assert claim_due(conn, BOTH, now=NOW - timedelta(seconds=1), lease=LEASE, limit=10) == []
        (email,) = claim_due(conn, [ChannelKind.EMAIL], now=NOW, lease=LEASE, limit=10)
        assert claim_due(conn, [], now=NOW, lease=LEASE, limit=10) == []
    assert (email.channel, email.recipient, email.attempts) == (ChannelKind.EMAIL, "p@example.fr", 0)
    assert email.lease_until == NOW + LEASE


def test_failure_schedules_the_next_attempt_and_sent_is_final(outbox_store):
    _queue(outbox_store, count=1)
    retry = RetryPolicy(initial_s=5, max_s=600)
    with outbox_store.write() as conn:
        (message, _) = claim_due(conn, BOTH, now=NOW, lease=LEASE, limit=10)
        mark_failed(conn, message, "smtp: 127.0.0.1:25 unavailable (ConnectionRefusedError)",
                    retry_at=NOW + retry.delay(1))
    row = outbox_rows(outbox_store)[0]
    assert (row.attempts, row.lease_until, row.sent_at) == (1, None, None)
    assert row.next_attempt_at == "2026-12-06T20:15:05.123Z"
    assert row.last_error == "smtp: 127.0.0.1:25 unavailable (ConnectionRefusedError)"
    with outbox_store.write() as conn:
        assert claim_due(conn, [ChannelKind.EMAIL], now=NOW + timedelta(seconds=4), lease=LEASE, limit=10) == []
        (again,) = claim_due(conn, [ChannelKind.EMAIL], now=NOW + timedelta(seconds=5), lease=LEASE, limit=10)
        assert again.attempts == 1
        mark_sent(conn, again, now=NOW + timedelta(seconds=6))
    with outbox_store.write() as conn:
        assert claim_due(conn, [ChannelKind.EMAIL], now=NOW + timedelta(days=1), lease=LEASE, limit=10) == []
        status = outbox_status(conn)
    assert outbox_rows(outbox_store)[0].sent_at == "2026-12-06T20:15:06.123Z"
    assert (status.pending, status.retrying, status.oldest_pending) == (1, 0, "2026-12-06T20:15:00.123Z")


def test_an_expired_claim_cannot_be_released_or_failed_by_its_old_holder(outbox_store):
    _queue(outbox_store, count=1)
    with outbox_store.write() as conn:
        (old, _) = claim_due(conn, BOTH, now=NOW, lease=LEASE, limit=10)
    with outbox_store.write() as conn:
        (new, _) = claim_due(conn, BOTH, now=NOW + LEASE, lease=LEASE, limit=10)
        release(conn, [old])
        mark_failed(conn, old, "late", retry_at=NOW)
    row = outbox_rows(outbox_store)[0]
    assert (row.lease_until, row.attempts, row.last_error) == (utc_text(new.lease_until), 0, None)
    with outbox_store.write() as conn:
        release(conn, [new])
    assert outbox_rows(outbox_store)[0].lease_until is None


@pytest.mark.parametrize(("failures", "seconds"), [(1, 5), (2, 10), (3, 20), (7, 320), (8, 600), (10_000, 600)])
def test_back_off_doubles_up_to_the_cap(failures, seconds):
    assert RetryPolicy(initial_s=5, max_s=600).delay(failures) == timedelta(seconds=seconds)


def test_racing_claimers_on_postgresql_never_share_a_row(request):
    """B claims while A's claim is not committed yet: B must not wait and then take A's rows (the conditional
    UPDATE, re-checked by PostgreSQL after the row lock), nor see them at all (SKIP LOCKED)."""
    store, other = Store(database_url("postgresql", request)), None
    try:
        store.migrate()
        other = Store(store.url)
        _queue(store, count=2)
        taken: list[list[int]] = []
        with store.write() as conn:
            mine = claim_due(conn, BOTH, now=LATER, lease=LEASE, limit=10)
            racer = threading.Thread(target=lambda: taken.append(_claim_ids(other)))
            racer.start()
            wait_for(lambda: not racer.is_alive() or _someone_waits_on_a_lock(store), "the racer to claim or wait")
        racer.join()
        assert len(mine) == 4
        assert taken == [[]]
    finally:
        store.dispose()
        if other is not None:
            other.dispose()


def _claim_ids(store: Store) -> list[int]:
    with store.write() as conn:
        return [m.id for m in claim_due(conn, BOTH, now=LATER, lease=LEASE, limit=10)]


def _someone_waits_on_a_lock(store: Store) -> bool:
    with store.engine.connect() as conn:
        return bool(conn.execute(text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                      "AND datname = current_database()")).scalar())
