"""One-statement work on PostgreSQL in autocommit, on connections kept apart from the engine's pool (issue 13).

A request's replay check (``pki.DatabaseReplayStore``) and its caller's dossier read (``consent``) are one
statement each. Through the engine, each cost a pool check-out with its ping (a round trip) and, in a
transaction, BEGIN and COMMIT (two more). A single statement needs no transaction: PostgreSQL runs it on one
snapshot and commits it on its own. Here it runs in autocommit on the driver's cursor: one round trip.

The connections are made through the engine (its URL, ``connect_args`` and connect-time settings) and detached
from its pool. No ping: a connection the server closed (a restart) fails its statement, and the work is run
again, once, on a new connection, the idle connections made before the failure being dropped (as dead as the
failed one): its own and the engine pool's (the write connections are not pinged either: ``Store.write``).
The caller states why running its work twice is safe (a read changes nothing; an atomic statement cannot take
effect twice).
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout

T = TypeVar("T")


class AutocommitConnections:
    """At most ``max_open`` PostgreSQL connections of their own (work beyond waits up to ``wait_s`` for one,
    then fails with SQLAlchemy's pool ``TimeoutError``, whose first argument says so), at most ``max_idle`` of
    them kept between works. See the module's docstring."""

    def __init__(self, engine: Engine, *, max_open: int, max_idle: int = 4, wait_s: float = 30.0) -> None:
        if engine.dialect.paramstyle not in ("format", "pyformat"):
            raise ValueError(f"autocommit connections need a PostgreSQL driver (psycopg), not {engine.dialect.driver}")
        self._engine = engine
        self._idle: list[Any] = []      # list.pop and list.append are atomic: no lock around the pool
        self._max_idle = max_idle
        self._slots = threading.BoundedSemaphore(max_open)
        self._wait_s = wait_s
        self._driver_error: type[Exception] = engine.dialect.loaded_dbapi.Error
        # The idle connections are closed with the keeper (garbage-collected, or at exit) if not before.
        self._finalizer = weakref.finalize(self, _close_all, self._idle)

    @property
    def engine(self) -> Engine:
        return self._engine

    def run(self, work: Callable[[Any], T]) -> T:
        """``work(cursor)`` on a driver cursor in autocommit; run again once on a new connection if the first
        one turns out lost. A failure raises ``sqlalchemy.exc.DBAPIError`` (the driver's error wrapped, as a
        statement through the engine would; its ``orig`` is the driver's), or ``TimeoutError`` when no
        connection is free within ``wait_s``."""
        if not self._slots.acquire(timeout=self._wait_s):
            raise PoolTimeout(f"no connection free within {self._wait_s:g} s")
        try:
            return self._run(work)
        finally:
            self._slots.release()

    def _run(self, work: Callable[[Any], T]) -> T:
        for attempt in (1, 2):
            try:
                conn = self._idle.pop() if self._idle else self._connect()
            except SQLAlchemyError:
                raise
            except self._driver_error as failed:
                raise DBAPIError.instance(None, None, failed, self._driver_error) from None
            try:
                cursor = conn.cursor()
                try:
                    result = work(cursor)
                finally:
                    cursor.close()
            except self._driver_error as failed:
                lost = self._engine.dialect.is_disconnect(failed, conn, None)  # type: ignore[arg-type]
                _close(conn)
                if not lost or attempt == 2:
                    raise DBAPIError.instance(None, None, failed, self._driver_error) from None
                self.close()   # made before the server went away: as dead as this one,
                self._engine.dispose()   # and so are the engine's pooled ones, where _connect takes from
                continue
            if len(self._idle) < self._max_idle:
                self._idle.append(conn)
            else:
                _close(conn)
            return result
        raise AssertionError("unreachable")   # pragma: no cover

    def close(self) -> None:
        """Close the idle connections (work afterwards makes new ones)."""
        _close_all(self._idle)

    def _connect(self) -> Any:
        proxied = self._engine.raw_connection()
        proxied.detach()     # ours from now on: the engine's pool neither counts, pings nor resets it
        conn: Any = proxied.dbapi_connection
        conn.autocommit = True
        return conn


def _close_all(idle: list[Any]) -> None:
    while idle:
        try:
            conn = idle.pop()
        except IndexError:   # emptied by another thread meanwhile
            return
        _close(conn)


def _close(conn: Any) -> None:
    # A connection already broken may fail to close: it is gone either way.
    with contextlib.suppress(Exception):
        conn.close()
