"""The sender: a background thread that sends what the outbox holds, with retries and exponential back-off
(docs/notifications.md).

Guarantees:
- Never lost: a message stays in the outbox until a channel accepted it. After ``alert_after`` failed attempts it
  keeps being retried every ``retry.max_s`` and each failure is logged as an error, so an operator sees it.
- Not sent twice while a claim is live: several workers (processes, nodes) on one database each claim rows
  under a lease (``consent._outbox.claim_due``), and a send is only started while the lease has more than
  ``lease_margin`` left. A crash between the server accepting a message and the row being marked sent can
  still repeat it once the lease ends: delivery is at least once.
- Never raises out of its loop: a database that is down is retried every ``poll_interval``; outcomes that could
  not be recorded are kept in memory and recorded first when it is back.
- ``stop()`` returns after at most the send in progress (bounded by the channel's timeout), giving back what it
  had claimed and not sent.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from sqlalchemy import Connection

from consent._channels import DeliveryError, NotificationChannel
from consent._notice_text import ChannelKind
from consent._outbox import OutboxMessage, claim_due, mark_failed, mark_sent, release

log = logging.getLogger("dmp.notify")
Clock = Callable[[], datetime]


class Transactions(Protocol):
    """Where the outbox lives: ``registry.Store`` (one write transaction per ``write()`` block)."""

    def write(self) -> AbstractContextManager[Connection]: ...


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class RetryPolicy:
    """Delay before attempt n+1 after n failures: ``initial_s`` doubling up to ``max_s`` (5 s ... 10 min)."""

    initial_s: float = 5.0
    max_s: float = 600.0

    def delay(self, failures: int) -> timedelta:
        return timedelta(seconds=min(self.max_s, self.initial_s * 2.0 ** min(max(failures - 1, 0), 62)))


@dataclass
class _Outcome:
    message: OutboxMessage
    error: str | None            # None: sent
    at: datetime


class NotificationWorker:
    """Sends due outbox messages of ``channels`` from ``store``; rows of another channel wait in the outbox."""

    def __init__(self, store: Transactions, channels: Mapping[ChannelKind, NotificationChannel], *,
                 clock: Clock = utc_now, poll_interval: float = 5.0, retry: RetryPolicy | None = None,
                 alert_after: int = 20, batch: int = 20, lease: timedelta = timedelta(minutes=5),
                 lease_margin: timedelta = timedelta(minutes=2)) -> None:
        if lease <= lease_margin:
            raise ValueError("the lease must be longer than its margin")
        self._store, self._channels, self._clock = store, dict(channels), clock
        self._poll, self._retry = poll_interval, retry or RetryPolicy()
        self._alert_after, self._batch = alert_after, batch
        self._lease, self._margin = lease, lease_margin
        self._unrecorded: list[_Outcome] = []
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("the notification worker is already started")
        self._thread = threading.Thread(target=self._run, name="dmp-notifications", daemon=True)
        self._thread.start()

    def request_stop(self) -> None:
        """Asks the loop to end after the send in progress, without waiting (safe from any thread)."""
        self._stopping.set()

    def stop(self, timeout: float = 60.0) -> None:
        """Ends the loop and waits for the thread (the send in progress, if any, finishes first)."""
        self._stopping.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.error("the notification worker did not stop within %.0f s", timeout)

    def __enter__(self) -> NotificationWorker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def run_once(self) -> int:
        """One pass: record pending outcomes, claim a batch, send it. Returns how many messages were claimed."""
        self._record_pending()
        with self._store.write() as conn:
            claimed = claim_due(conn, self._channels.keys(), now=self._clock(), lease=self._lease, limit=self._batch)
        for index, message in enumerate(claimed):
            if self._stopping.is_set() or self._clock() + self._margin >= message.lease_until:
                self._give_back(claimed[index:])
                break
            self._unrecorded.append(self._attempt(message))
            self._record_pending()
        return len(claimed)

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                busy = self.run_once() >= self._batch
            except Exception as exc:  # the database is unavailable, or anything else: the loop goes on
                log.warning("notification outbox unavailable (%s); retrying in %.1f s", type(exc).__name__,
                            self._poll)
                busy = False
            if not busy:
                self._stopping.wait(self._poll)
        try:
            self._record_pending()
        except Exception as exc:
            log.warning("stopping with %d notification outcome(s) not recorded (%s): they may be sent again",
                        len(self._unrecorded), type(exc).__name__)

    def _attempt(self, message: OutboxMessage) -> _Outcome:
        try:
            self._channels[message.channel].send(message.recipient, message.subject, message.body)
        except DeliveryError as exc:
            return _Outcome(message, str(exc), self._clock())
        except Exception as exc:   # a defect in a channel must not stop the others
            return _Outcome(message, f"{message.channel.value}: unexpected {type(exc).__name__}", self._clock())
        return _Outcome(message, None, self._clock())

    def _record_pending(self) -> None:
        while self._unrecorded:
            outcome = self._unrecorded[0]
            with self._store.write() as conn:
                if outcome.error is None:
                    mark_sent(conn, outcome.message, now=outcome.at)
                else:
                    mark_failed(conn, outcome.message, outcome.error,
                                retry_at=outcome.at + self._retry.delay(outcome.message.attempts + 1))
            self._unrecorded.pop(0)
            self._report(outcome)

    def _report(self, outcome: _Outcome) -> None:
        m = outcome.message
        if outcome.error is None:
            log.info("notification %d (%s, %s) sent at attempt %d", m.id, m.notice.value, m.channel.value,
                     m.attempts + 1)
            return
        failures = m.attempts + 1
        level = logging.ERROR if failures >= self._alert_after else logging.WARNING
        log.log(level, "notification %d (%s, %s) failed %d time(s): %s; next attempt in %.0f s", m.id,
                m.notice.value, m.channel.value, failures, outcome.error,
                self._retry.delay(failures).total_seconds())

    def _give_back(self, messages: list[OutboxMessage]) -> None:
        with self._store.write() as conn:
            release(conn, messages)
