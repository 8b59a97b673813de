"""The consent checker's one-statement reads on PostgreSQL, on connections of its own (issue 13).

Every XDS request reads the caller's dossier (``_dossiers.load``: one statement) before anything else. Through
the registry's engine that read cost a pool check-out with its ping (a round trip) and, in a transaction, BEGIN
and COMMIT (two more). One statement needs no transaction (PostgreSQL runs it on one snapshot), so it runs here
in autocommit, on the driver's cursor, on connections the reader keeps itself: one round trip per read.

The connections are made through the registry's engine (its URL, ``connect_args`` and connect-time settings)
and detached from its pool. No ping: a connection the server closed (a restart) fails its statement, and the
read is run again, once, on a new connection, the idle ones made before the failure being dropped. Retrying a
read is always safe (it changes nothing). A read that still fails raises the driver's error wrapped as
SQLAlchemy's (``sqlalchemy.exc.DBAPIError``), as a read through the engine would.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections import namedtuple
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Engine, Executable
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout


class OneStatementReads:
    """Runs single-statement SELECTs in autocommit on PostgreSQL connections of its own: at most ``max_open``
    (a read beyond waits up to ``wait_s`` for one, then fails as a pool time-out), at most ``max_idle`` of them
    kept between reads. See the module's docstring."""

    def __init__(self, engine: Engine, *, max_open: int = 10, max_idle: int = 4, wait_s: float = 30.0) -> None:
        self._engine = engine
        self._idle: list[Any] = []      # list.pop and list.append are atomic: no lock around the pool
        self._max_idle = max_idle
        self._slots = threading.BoundedSemaphore(max_open)
        self._wait_s = wait_s
        self._driver_error: type[Exception] = engine.dialect.loaded_dbapi.Error
        self._finalizer = weakref.finalize(self, _close_all, self._idle)

    def compile(self, statement: Executable) -> tuple[str, Any]:
        """The statement's SQL text for the driver, and the row class of its result (fields: its columns' keys)."""
        compiled = statement.compile(dialect=self._engine.dialect)  # type: ignore[attr-defined]
        keys = [str(k) for k in statement.selected_columns.keys()]  # type: ignore[attr-defined]  # noqa: SIM118
        return compiled.string, namedtuple("Row", keys, rename=True)

    def first(self, sql: str, row: Any, params: Mapping[str, Any]) -> Any:
        """The first row of ``sql`` (from :meth:`compile`) with ``params``, as ``row``; None when there is none."""
        if not self._slots.acquire(timeout=self._wait_s):
            raise PoolTimeout(f"no connection free for a consent read within {self._wait_s:g} s")
        try:
            return self._first(sql, row, params)
        finally:
            self._slots.release()

    def _first(self, sql: str, row: Any, params: Mapping[str, Any]) -> Any:
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
                    cursor.execute(sql, params)
                    found = cursor.fetchone()
                finally:
                    cursor.close()
            except self._driver_error as failed:
                lost = self._engine.dialect.is_disconnect(failed, conn, None)  # type: ignore[arg-type]
                _close(conn)
                if not lost or attempt == 2:
                    raise DBAPIError.instance(None, None, failed, self._driver_error) from None
                _close_all(self._idle)   # made before the server went away: as dead as this one
                continue
            if len(self._idle) < self._max_idle:
                self._idle.append(conn)
            else:
                _close(conn)
            return None if found is None else row._make(found)
        raise AssertionError("unreachable")   # pragma: no cover

    def close(self) -> None:
        _close_all(self._idle)

    def _connect(self) -> Any:
        proxied = self._engine.raw_connection()
        proxied.detach()     # the reader's own from now on: the engine's pool neither counts, pings nor resets it
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
