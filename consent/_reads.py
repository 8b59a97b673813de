"""The consent checker's one-statement reads on PostgreSQL (issue 13).

Every XDS request reads the caller's dossier (``_dossiers.load``: one statement) before anything else. It runs
in autocommit on connections of the reader's own (``registry.AutocommitConnections``: one round trip, no pool
ping, no BEGIN and COMMIT); a read lost to a restart is run again on a new connection, which is always safe
(a read changes nothing). A read that still fails raises the driver's error wrapped as SQLAlchemy's
(``sqlalchemy.exc.DBAPIError``), as a read through the engine would.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Engine, Executable

from registry import AutocommitConnections, prepared_statement


class OneStatementReads:
    """Single-statement SELECTs in autocommit: at most ``max_open`` connections (a read beyond waits up to
    ``wait_s`` for one, then fails as a pool time-out), at most ``max_idle`` of them kept between reads."""

    def __init__(self, engine: Engine, *, max_open: int = 10, max_idle: int = 4, wait_s: float = 30.0) -> None:
        self._connections = AutocommitConnections(engine, max_open=max_open, max_idle=max_idle, wait_s=wait_s)

    def compile(self, statement: Executable) -> tuple[str, Any]:
        """The statement's SQL text for the driver, and the row class of its result (fields: its columns' keys)."""
        compiled = statement.compile(dialect=self._connections.engine.dialect)  # type: ignore[attr-defined]
        keys = [str(k) for k in statement.selected_columns.keys()]  # type: ignore[attr-defined]  # noqa: SIM118
        return compiled.string, namedtuple("Row", keys, rename=True)

    def first(self, sql: str, row: Any, params: Mapping[str, Any]) -> Any:
        """The first row of ``sql`` (from :meth:`compile`) with ``params``, as ``row``; None when there is none."""
        def read(cursor: Any) -> Any:
            with prepared_statement(cursor.connection):   # by key: its plan does not depend on the values
                cursor.execute(sql, params)
            found = cursor.fetchone()
            return None if found is None else row._make(found)

        return self._connections.run(read)

    def close(self) -> None:
        self._connections.close()
