"""Replay protection shared by the processes of one node (``dmp serve --workers N``): the seen assertion IDs
live in a SQLite file of the node's data directory, so a replay is refused whichever worker receives it.

A file of its own rather than a table of the registry's database: every XDS request writes to it, and the
registry's SQLite allows one writer at a time (a bulk registration would stall every request's check), and a
repository-only node has no registry database. Several nodes behind one load balancer need a store they all
reach: this one covers one host.

Entries expire with their assertion: an expired entry never counts as a use (the insert takes it over), and
expired entries are deleted at most a second after they expire (at a later check), never before. A check is
one statement, atomic on its own. Only assertions whose signature, chain and claims were verified reach the
store, so its size is bounded by what trusted signers send within a validity window. Commits do not wait for
the disk (``synchronous=NORMAL`` in WAL mode): seen IDs survive a restart or a crash of the server, but a power
loss may forget the last seen IDs, whose assertions expire minutes later anyway (waiting for the disk at every
request would cost more than the whole verification). When
the file cannot be written, the check fails closed (:class:`~pki.ReplayCacheFull`: the request is refused
as "service unavailable", never accepted unchecked)."""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pki._replay import ReplayCacheFull

_SCHEMA = ("CREATE TABLE IF NOT EXISTS seen_assertion (assertion_id TEXT PRIMARY KEY, expires_us INTEGER NOT NULL)"
           " WITHOUT ROWID",
           "CREATE INDEX IF NOT EXISTS ix_seen_assertion_expiry ON seen_assertion (expires_us)")
_PURGE_EVERY = timedelta(seconds=1)
# New ID: inserted. Known ID whose entry has expired: taken over. Known and live: left alone (no change).
_USE = ("INSERT INTO seen_assertion VALUES (:id, :expires) ON CONFLICT (assertion_id) DO UPDATE"
        " SET expires_us = excluded.expires_us WHERE seen_assertion.expires_us <= :now")


class SharedReplayStore:
    """A :class:`~pki.ReplayStore` in the SQLite file ``path``, safe across threads and processes."""

    def __init__(self, path: Path, *, busy_timeout_s: float = 10.0) -> None:
        self.path = path
        self._timeout = busy_timeout_s
        self._local = threading.local()
        self._purged_at: datetime | None = None
        conn = self._connection()
        for statement in _SCHEMA:
            conn.execute(statement)

    def remember(self, assertion_id: str, expires_at: datetime, now: datetime) -> bool:
        conn = self._connection()
        try:
            purged = self._purged_at
            if purged is None or not purged <= now < purged + _PURGE_EVERY:
                self._purged_at = now
                conn.execute("DELETE FROM seen_assertion WHERE expires_us <= ?", (_micros(now),))
            inserted = conn.execute(_USE, {"id": assertion_id, "expires": _micros(expires_at),
                                           "now": _micros(now)}).rowcount == 1
        except sqlite3.Error as failed:
            raise ReplayCacheFull(f"the replay store {self.path.name} cannot record the assertion "
                                  f"({type(failed).__name__}: {failed})") from None
        return inserted

    def __len__(self) -> int:
        return int(self._connection().execute("SELECT count(*) FROM seen_assertion").fetchone()[0])

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            # isolation_level=None: autocommit, each statement is a transaction of its own.
            conn = sqlite3.connect(self.path, timeout=self._timeout, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
        return conn


def _micros(t: datetime) -> int:
    """Microseconds since the epoch (UTC): integers compare exactly, whatever the datetime's zone."""
    delta = t.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
