"""The notification outbox (table ``notification_outbox``): messages are written in the transaction of the event
they report, so that they exist exactly when the event does, and are sent later by the
:class:`~consent._worker.NotificationWorker`, which claims due rows under a lease (docs/notifications.md).

A row is pending while ``sent_at`` is NULL; it is due when ``next_attempt_at`` has passed; it is claimed while
``lease_until`` is in the future. Timestamps are ISO 8601 UTC with milliseconds, so they compare as text.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, bindparam, func, insert, or_, select, update

from consent._model import Notice
from consent._notice_text import ChannelKind, Contacts, NoticeDetails, compose
from consent._schema import dossier, notification_outbox

_ERROR_LIMIT = 512     # the last_error column


def utc_text(moment: datetime) -> str:
    """``moment`` as the tables store it: ``2026-12-06T20:15:00.123Z``."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def enqueue_notice(conn: Connection, patient_key: str, notice: Notice, details: NoticeDetails, *,
                   now: datetime, contacts: Contacts | None = None) -> int:
    """Queues the messages ``notice`` sends about ``patient_key``'s dossier, in the caller's transaction ``conn``
    (so they are committed, or rolled back, with the event), due at once. Returns how many rows were queued:
    0 when the dossier has no contact details, the patient did not opt in (NEW_DOCUMENT), or there is no dossier.

    Nothing here touches the network: a mail server that is down cannot slow or fail the transaction.
    ``now`` is timezone-aware. Call it after the dossier row has its new state (e.g. once inserted for
    DOSSIER_CREATED): the recipients are read from it through ``conn``, unless the caller gives ``contacts``,
    read from the dossier's row in this transaction (:data:`CONTACT_COLUMNS`, :func:`contacts_of`)."""
    if now.tzinfo is None:
        raise ValueError("enqueue_notice needs a timezone-aware now")
    if contacts is None:
        contacts = _contacts(conn, patient_key)
    if contacts is None:
        return 0
    messages = compose(notice, details, contacts, now=now)
    if messages:
        stamp = utc_text(now)
        conn.execute(insert(notification_outbox), [
            {"patient_key": patient_key, "notice": notice.value, "channel": m.channel.value,
             "recipient": m.recipient, "subject": m.subject, "body": m.body, "created_at": stamp, "attempts": 0,
             "next_attempt_at": stamp}
            for m in messages])
    return len(messages)


CONTACT_COLUMNS = (dossier.c.email, dossier.c.mobile, dossier.c.trusted_email, dossier.c.notify_trusted,
                   dossier.c.notify_new_document)
"""The dossier's columns :func:`contacts_of` reads."""
_CONTACTS = select(*CONTACT_COLUMNS).where(dossier.c.patient_key == bindparam("key"))


def contacts_of(row: Any) -> Contacts:
    """The recipients in a dossier row that has :data:`CONTACT_COLUMNS`."""
    return Contacts(row.email, row.mobile, row.trusted_email, bool(row.notify_trusted),
                    bool(row.notify_new_document))


def _contacts(conn: Connection, patient_key: str) -> Contacts | None:
    row = conn.execute(_CONTACTS, {"key": patient_key}).first()
    return None if row is None else contacts_of(row)


@dataclass(frozen=True)
class OutboxMessage:
    """A claimed row: what to send, and the claim's end (no send may start that could outlive it)."""

    id: int
    notice: Notice
    channel: ChannelKind
    recipient: str
    subject: str
    body: str
    attempts: int
    lease_until: datetime


def claim_due(conn: Connection, channels: Collection[ChannelKind], *, now: datetime, lease: timedelta,
              limit: int) -> list[OutboxMessage]:
    """Claims up to ``limit`` due, unclaimed messages of ``channels`` until ``now + lease``, oldest due first.

    Each row is taken by a conditional UPDATE that only matches while it is still unclaimed: on PostgreSQL two
    claimers racing for a row serialise on its row lock, and the second's re-checked WHERE no longer matches
    (``FOR UPDATE SKIP LOCKED`` lets it take other rows instead of waiting); SQLite has one writer at a time."""
    if not channels:
        return []
    t = notification_outbox
    now_s, until = utc_text(now), now + lease
    claimable = (t.c.sent_at.is_(None), t.c.next_attempt_at <= now_s,
                 or_(t.c.lease_until.is_(None), t.c.lease_until <= now_s))
    ids = conn.execute(
        select(t.c.id).where(*claimable, t.c.channel.in_([c.value for c in channels]))
        .order_by(t.c.next_attempt_at, t.c.id).limit(limit).with_for_update(skip_locked=True)).scalars().all()
    claimed = [i for i in ids
               if conn.execute(update(t).where(t.c.id == i, *claimable)
                               .values(lease_until=utc_text(until))).rowcount == 1]
    if not claimed:
        return []
    rows = conn.execute(select(t).where(t.c.id.in_(claimed)).order_by(t.c.next_attempt_at, t.c.id)).all()
    return [OutboxMessage(r.id, Notice(r.notice), ChannelKind(r.channel), r.recipient, r.subject, r.body,
                          r.attempts, until) for r in rows]


def mark_sent(conn: Connection, message: OutboxMessage, *, now: datetime) -> None:
    """Sent: whoever holds the claim now, it must never be sent again."""
    t = notification_outbox
    conn.execute(update(t).where(t.c.id == message.id, t.c.sent_at.is_(None))
                 .values(sent_at=utc_text(now), lease_until=None))


def mark_failed(conn: Connection, message: OutboxMessage, error: str, *, retry_at: datetime) -> None:
    """One more failed attempt, if the claim is still ours: ``error`` (no address, no content) kept, next try at
    ``retry_at``."""
    t = notification_outbox
    conn.execute(update(t).where(*_still_ours(message))
                 .values(attempts=t.c.attempts + 1, last_error=error[:_ERROR_LIMIT],
                         next_attempt_at=utc_text(retry_at), lease_until=None))


def release(conn: Connection, messages: Collection[OutboxMessage]) -> None:
    """Gives claimed messages back unsent and unchanged (the worker stops, or its lease runs short)."""
    for message in messages:
        conn.execute(update(notification_outbox).where(*_still_ours(message)).values(lease_until=None))


def _still_ours(message: OutboxMessage) -> tuple[ColumnElement[bool], ...]:
    # A claim is identified by its lease end: a later claim, made after ours expired, ends later.
    t = notification_outbox
    return t.c.id == message.id, t.c.sent_at.is_(None), t.c.lease_until == utc_text(message.lease_until)


@dataclass(frozen=True)
class OutboxStatus:
    pending: int                 # not sent yet
    retrying: int                # pending after at least one failed attempt
    oldest_pending: str | None   # created_at of the oldest pending message


def outbox_status(conn: Connection) -> OutboxStatus:
    """Counts for monitoring: nothing is ever dropped, so a growing ``pending`` means a channel is failing."""
    t = notification_outbox
    row = conn.execute(select(func.count(), func.count().filter(t.c.attempts > 0), func.min(t.c.created_at))
                       .where(t.c.sent_at.is_(None))).one()
    return OutboxStatus(int(row[0]), int(row[1]), row[2])
