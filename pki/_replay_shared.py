"""Replay protection shared by the processes of one node (``dmp serve --workers N``): the seen assertion IDs
live in a SQLite file of the node's data directory, so a replay is refused whichever worker receives it; and
by several nodes on one PostgreSQL (:class:`DatabaseReplayStore`, a table of the shared database).

A file of its own rather than a table of the registry's database: every XDS request writes to it, and the
registry's SQLite allows one writer at a time (a bulk registration would stall every request's check), and a
repository-only node has no registry database. Several nodes behind one load balancer need a store they all
reach: the SQLite file covers one host, :class:`DatabaseReplayStore` all the nodes of one PostgreSQL.

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

import hashlib
import sqlite3
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, TypeVar

from sqlalchemy import BigInteger, Column, Engine, Index, MetaData, String, Table, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from pki._replay import ReplayCacheFull

T = TypeVar("T")

_SCHEMA = ("CREATE TABLE IF NOT EXISTS seen_assertion (assertion_id TEXT PRIMARY KEY, expires_us INTEGER NOT NULL)"
           " WITHOUT ROWID",
           "CREATE INDEX IF NOT EXISTS ix_seen_assertion_expiry ON seen_assertion (expires_us)")
# New ID: inserted. Known ID whose entry has expired: taken over. Known and live: left alone (no change).
_USE = ("INSERT INTO seen_assertion VALUES (:id, :expires) ON CONFLICT (assertion_id) DO UPDATE"
        " SET expires_us = excluded.expires_us WHERE seen_assertion.expires_us <= :now")


class SharedReplayStore:
    """A :class:`~pki.ReplayStore` in the SQLite file ``path``, safe across threads and processes."""

    def __init__(self, path: Path, *, busy_timeout_s: float = 10.0) -> None:
        self.path = path
        self._timeout = busy_timeout_s
        self._local = threading.local()
        self._purges = PurgeSchedule(timedelta(seconds=1))
        conn = self._connection()
        for statement in _SCHEMA:
            conn.execute(statement)

    def remember(self, assertion_id: str, expires_at: datetime, now: datetime) -> bool:
        conn = self._connection()
        try:
            if self._purges.due(now):
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


class PurgeSchedule:
    """When a store deletes its expired entries: at the first check, then at the first check at least ``every``
    after the last purge, on the clock of the checks (``now``, the verifier's clock, so tests drive it). A clock
    that goes back (``now`` before the last purge) counts as due: the purge only deletes what has expired at
    ``now``, so purging early is harmless, never purging is not."""

    def __init__(self, every: timedelta) -> None:
        self._every = every
        self._last: datetime | None = None
        self._lock = threading.Lock()

    def due(self, now: datetime) -> bool:
        with self._lock:
            last = self._last
            if last is not None and last <= now < last + self._every:
                return False
            self._last = now
            return True


def _micros(t: datetime) -> int:
    """Microseconds since the epoch (UTC): integers compare exactly, whatever the datetime's zone."""
    delta = t.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


class DatabaseReplayStore:
    """A :class:`~pki.ReplayStore` in the ``seen_assertion`` table of the database several nodes share
    (PostgreSQL, migration 0007_replay): a replay is refused whichever node receives it.

    One statement decides: insert the ID, or take over its row only if that row has expired
    (``INSERT ... ON CONFLICT DO UPDATE ... WHERE expired``). The primary key makes it atomic across nodes: of
    two nodes presented the same assertion at the same instant, exactly one gets a row back. Expired rows are
    purged at most once per ``purge_every_s`` per process (the expiry index keeps it cheap), on the same
    :class:`PurgeSchedule` as the SQLite store.

    Like the SQLite store's, its commits do not wait for the disk (``synchronous_commit`` off for that one
    transaction, PostgreSQL's asynchronous commit): a crash of PostgreSQL or of its host may forget the IDs
    seen in the last moments (at most three times ``wal_writer_delay``, 0.6 s by default), whose assertions
    expire minutes later; a clean shutdown forgets nothing.

    A check is one round trip (issue 13): the statement runs in autocommit (it is its own transaction: no BEGIN,
    no COMMIT) on ``connections``, PostgreSQL connections kept apart from any pool, without a ping
    (``registry.AutocommitConnections``, which the server passes in; here any :class:`OneStatementRunner`). A
    connection the server closed (a restart) fails the statement, and the check is run again, once, on a new
    connection. The retry never accepts a replay: the statement is atomic, so of the two attempts and any other
    node at most one gets a row back. A failed attempt that had committed before the connection was lost (the
    server gone between its commit and its answer) makes the retry find the ID live: that one request is
    refused as a replay, never accepted twice (fail closed); a connection the server has already closed runs
    nothing, the usual case after a restart. When the retry fails too, no connection can be made, or none is
    free in time, the check raises :class:`~pki.ReplayCacheFull` naming the shared replay table."""

    def __init__(self, connections: OneStatementRunner, *, purge_every_s: float = 60.0) -> None:
        self._connections = connections
        self._purges = PurgeSchedule(timedelta(seconds=purge_every_s))

    def remember(self, assertion_id: str, expires_at: datetime, now: datetime) -> bool:
        params = (_key(assertion_id), _micros(expires_at), _micros(now))
        purge = self._purges.due(now)

        def check(cursor: Any) -> bool:
            if purge:
                cursor.execute(_PURGE_SQL, params[2:])
            cursor.execute(_REMEMBER_SQL, params)
            return cursor.fetchone() is not None

        try:
            return self._connections.run(check)
        except PoolTimeout as failed:
            raise ReplayCacheFull(f"the shared replay table cannot record the assertion ({failed.args[0]})") from None
        except SQLAlchemyError as failed:
            # The driver's error class only: its message may quote the statement's parameters (the assertion ID).
            raise ReplayCacheFull(f"the shared replay table cannot record the assertion "
                                  f"({type(getattr(failed, 'orig', None) or failed).__name__})") from None

    def __len__(self) -> int:
        with self._connections.engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM seen_assertion")).scalar_one())

    def close(self) -> None:
        """Close the idle connections (a check afterwards makes a new one)."""
        self._connections.close()


class OneStatementRunner(Protocol):
    """Runs one-statement work in autocommit on a driver cursor (``registry.AutocommitConnections``)."""

    @property
    def engine(self) -> Engine: ...

    def run(self, work: Callable[[Any], T]) -> T:
        """``work(cursor)``; raises ``sqlalchemy.exc.SQLAlchemyError`` (``TimeoutError`` when no connection is
        free in time)."""
        ...

    def close(self) -> None: ...


replay_metadata = MetaData()
seen_assertion = Table(
    "seen_assertion", replay_metadata,   # created by the registry's migration 0007_replay
    Column("assertion_id", String(256), primary_key=True),
    Column("expires_us", BigInteger, nullable=False),   # microseconds since the epoch, UTC
    Index("ix_seen_assertion_expiry", "expires_us"),
)
# The insert's own (autocommit) transaction commits without waiting for the WAL flush: the set_config(...,
# is_local => true) is the statement's SET LOCAL, in force until that transaction ends, i.e. for its commit and
# nothing after (the purge, and any later use of the connection, keep the server's setting). PostgreSQL
# "Asynchronous Commit" (manual, section 30.4): a crash of PostgreSQL or of its host may lose the last such
# commits, never corrupt the table; the same trade as the SQLite store's synchronous=NORMAL (module docstring).
_REMEMBER_SQL = ("INSERT INTO seen_assertion (assertion_id, expires_us) "
                 "SELECT CAST(%s AS VARCHAR), CAST(%s AS BIGINT) "
                 "FROM (SELECT set_config('synchronous_commit', 'off', true)) AS asynchronous_commit "
                 "ON CONFLICT (assertion_id) DO UPDATE SET expires_us = excluded.expires_us "
                 "WHERE seen_assertion.expires_us <= %s RETURNING 1")
_PURGE_SQL = "DELETE FROM seen_assertion WHERE expires_us <= %s"
_MAX_KEY = 256


def _key(assertion_id: str) -> str:
    """The ID itself, or a digest of an ID too long for the column (an xs:ID has no length limit)."""
    if len(assertion_id) <= _MAX_KEY:
        return assertion_id
    return "sha256:" + hashlib.sha256(assertion_id.encode()).hexdigest()
