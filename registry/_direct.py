"""Statements that every request runs, executed on the DB-API cursor of a SQLAlchemy connection without
SQLAlchemy's per-execution work (issue 13: compile-cache look-up, execution context, parameter construction and
result set-up cost ~1.3 ms of CPU per ITI-41, more than the database's own work on SQLite).

A :class:`DirectStatement` is built once from a SQLAlchemy Core statement. For each dialect (and, for an
INSERT/UPDATE, each set of parameter names) it is compiled once by SQLAlchemy itself, and what that compilation
says is kept: the SQL text, the parameters in the driver's order, the bind processor of each parameter's type and
the result processor of each selected column's type (so the compact-key types of ``registry._schema`` and the
stored-form XML are encoded and decoded exactly as through ``Connection.execute``), and the values the statement
binds itself (e.g. a literal ``IN`` list). An execution builds the driver's parameters from those and runs the
text on a cursor of the connection's own DB-API connection, inside the connection's transaction (savepoints,
group commit and rollback are unchanged), through SQLAlchemy's thin cursor path (``Connection._cursor_execute``:
engine events, echo, and the wrapping of driver errors into ``sqlalchemy.exc`` with disconnect detection and
invalidation, as for any statement).

Handled: positional (``qmark``, ``format``) and named (``pyformat``, ``named``) paramstyles; "expanding" (``IN``)
parameters, given or literal, rendered per list length (an empty list runs through ``Connection.execute``, which
renders SQLAlchemy's empty-set expression); executemany. Not handled: statements whose compilation needs
anything else (RETURNING through insertmanyvalues, server-side defaults to fetch); use ``Connection.execute``.
"""

from __future__ import annotations

import threading
import weakref
from collections import namedtuple
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Dialect, Executable, exc
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.dml import UpdateBase

Processor = Callable[[Any], Any] | None
_row_class: Any = namedtuple   # a class per statement, made at run time

_PLACEHOLDERS: dict[str, Callable[[str], str]] = {
    "qmark": lambda _name: "?",
    "format": lambda _name: "%s",
    "pyformat": lambda name: f"%({name})s",
    "named": lambda name: f":{name}",
}


@dataclass
class _Form:
    """One statement compiled for one dialect (and, for DML, one set of parameter names)."""

    sql: str
    positional: bool
    names: tuple[str, ...]                       # the driver's parameters: in order, or all of them (named)
    bind: dict[str, Processor]                   # each parameter's type's bind processor
    own: dict[str, Any]                          # values the statement binds itself (literals)
    expanding: frozenset[str]
    placeholder: Callable[[str], str]
    row: Any = None                              # the namedtuple class of the result rows, or None (no columns)
    columns: tuple[Any, ...] = ()                # the selected columns' types
    results: list[Processor] | None = None       # their result processors, once a cursor has described them
    expanded: dict[tuple[int, ...], tuple[str, tuple[str, ...]]] = field(default_factory=dict)


@contextmanager
def prepared_statement(driver_connection: Any) -> Iterator[None]:
    """The statements executed inside are prepared on a psycopg connection (at their first execution, or used
    as prepared already), whatever its ``prepare_threshold``; nothing changes on other drivers. For statements
    whose plan does not depend on their values, on connections that prepare nothing otherwise
    (``Store.keyed_engine``'s: see ``registry._store``)."""
    before = getattr(driver_connection, "prepare_threshold", _ABSENT)
    if before is _ABSENT:
        yield
        return
    driver_connection.prepare_threshold = 0
    try:
        yield
    finally:
        driver_connection.prepare_threshold = before


_ABSENT = object()


class DirectStatement:
    """A SQLAlchemy Core statement executed without SQLAlchemy's per-execution overhead (see the module's
    docstring). Results are namedtuples whose fields are the selected columns' keys (``row.closed_at``).
    ``prepared``: always run as a prepared statement (:func:`prepared_statement`)."""

    def __init__(self, statement: Executable, *, prepared: bool = False) -> None:
        if not isinstance(statement, ClauseElement):
            raise TypeError("a SQLAlchemy Core statement is needed")
        self.statement = statement
        self._prepared = prepared
        self._dml = isinstance(statement, UpdateBase)
        self._forms: weakref.WeakKeyDictionary[Dialect, dict[tuple[str, ...], _Form]] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    # --- executing --------------------------------------------------------------------------------

    def rows(self, conn: Connection, params: Mapping[str, Any] | None = None) -> list[Any]:
        """Every row of the statement's result, each value through its column type's result processor."""
        found = self._run(conn, params or {}, fetch=True)
        assert isinstance(found, list)
        return found

    def first(self, conn: Connection, params: Mapping[str, Any] | None = None) -> Any:
        """The first row, or None."""
        found = self.rows(conn, params)
        return found[0] if found else None

    def run(self, conn: Connection, params: Mapping[str, Any] | None = None) -> int:
        """Execute a statement that returns no rows; returns the driver's rowcount."""
        count = self._run(conn, params or {}, fetch=False)
        assert isinstance(count, int)
        return count

    def run_many(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Execute once per parameter set with the driver's ``executemany`` (every set has the keys of the first)."""
        if not rows:
            return
        form = self._form(conn.dialect, rows[0], many=True)
        if form.expanding:
            raise ValueError("executemany with an expanding parameter: use Connection.execute")
        driver_params = [self._params(form, form.names, r) for r in rows]
        cursor = _cursor(conn)
        try:
            _execute_many(conn, cursor, form.sql, driver_params)
        finally:
            cursor.close()

    def _run(self, conn: Connection, params: Mapping[str, Any], *, fetch: bool) -> list[Any] | int:
        form = self._form(conn.dialect, params, many=False)
        sql, names = form.sql, form.names
        if form.expanding:
            lengths = tuple(len(_value(form, name, params)) for name in sorted(form.expanding))
            if 0 in lengths:
                # SQLAlchemy renders an empty IN as an expression that selects nothing; leave it to it.
                result = conn.execute(self.statement, dict(params))
                return list(result) if fetch else int(result.rowcount)
            sql, names = self._expanded(form, lengths)
        cursor = _cursor(conn)
        try:
            with prepared_statement(cursor.connection) if self._prepared else nullcontext():
                conn._cursor_execute(cursor, sql, self._params(form, names, params, expanded=bool(form.expanding)))
            if not fetch:
                return int(cursor.rowcount)
            raw = cursor.fetchall()
            if form.results is None:
                form.results = [t._cached_result_processor(conn.dialect, d[1])
                                for t, d in zip(form.columns, cursor.description, strict=True)]
            processors = form.results
            make = form.row._make if form.row is not None else tuple
            if not any(processors):
                return [make(r) for r in raw]
            return [make([v if p is None else p(v) for p, v in zip(processors, r, strict=True)]) for r in raw]
        finally:
            cursor.close()

    # --- parameters -------------------------------------------------------------------------------

    @staticmethod
    def _params(form: _Form, names: tuple[str, ...], params: Mapping[str, Any], *, expanded: bool = False) -> Any:
        """The driver's parameters: a tuple (positional) or a dict, each value through its bind processor. With
        ``expanded``, ``names`` are those of :meth:`_expanded` (an expanding parameter's items: ``name__N``)."""
        bind = form.bind
        values: list[Any] = []
        for name in names:
            if expanded and name not in bind:
                base, _, index = name.rpartition("__")
                processor, value = bind[base], _value(form, base, params)[int(index) - 1]
            else:
                processor = bind[name]
                value = params[name] if name in params else _own(form, name)
            values.append(value if processor is None else processor(value))
        return tuple(values) if form.positional else dict(zip(names, values, strict=True))

    def _expanded(self, form: _Form, lengths: tuple[int, ...]) -> tuple[str, tuple[str, ...]]:
        """The SQL text and parameter names with each expanding parameter rendered as that many items."""
        if (done := form.expanded.get(lengths)) is not None:
            return done
        sql = form.sql
        by_name = dict(zip(sorted(form.expanding), lengths, strict=True))
        names: list[str] = []
        for name in form.names:
            if name in form.expanding:
                items = [f"{name}__{i}" for i in range(1, by_name[name] + 1)]
                names += items
                sql = sql.replace(f"__[POSTCOMPILE_{name}]", ", ".join(form.placeholder(i) for i in items))
            else:
                names.append(name)
        form.expanded[lengths] = done = (sql, tuple(names))
        return done

    # --- compiling --------------------------------------------------------------------------------

    def _form(self, dialect: Dialect, params: Mapping[str, Any], *, many: bool) -> _Form:
        key = tuple(sorted(params)) if self._dml else ()
        forms = self._forms.get(dialect)
        if forms is not None and (form := forms.get(key)) is not None:
            return form
        with self._lock:
            form = self._compile(dialect, key, many)
            self._forms.setdefault(dialect, {})[key] = form
        return form

    def _compile(self, dialect: Dialect, keys: tuple[str, ...], many: bool) -> _Form:
        if dialect.paramstyle not in _PLACEHOLDERS:
            raise NotImplementedError(f"paramstyle {dialect.paramstyle}")
        kw: dict[str, Any] = {"column_keys": list(keys), "for_executemany": many} if self._dml else {}
        compiled = self.statement.compile(dialect=dialect, **kw)
        assert isinstance(compiled, SQLCompiler)
        if getattr(compiled, "_insertmanyvalues", None) is not None and many and compiled.implicit_returning:
            raise NotImplementedError("insertmanyvalues with RETURNING")
        by_name = {name: bp for bp, name in compiled.bind_names.items()}
        positional = bool(compiled.positional)
        names = tuple(compiled.positiontup or ()) if positional else tuple(by_name)
        bind: dict[str, Processor] = {name: bp.type._cached_bind_processor(dialect) for name, bp in by_name.items()}
        own = {name: bp.effective_value for name, bp in by_name.items()
               if not bp.required and bp.callable is None and name not in keys}
        expanding = frozenset(name for name, bp in by_name.items() if bp.expanding)
        selected = getattr(self.statement, "selected_columns", None)
        if self._dml and not getattr(self.statement, "_returning", ()):
            selected = None
        row: Any = None
        columns: tuple[Any, ...] = ()
        if selected is not None:
            columns = tuple(c.type for c in selected)
            row = _row_class("Row", [str(k) for k in selected.keys()], rename=True)  # noqa: SIM118
        return _Form(sql=compiled.string, positional=positional, names=names, bind=bind, own=own,
                     expanding=expanding, placeholder=_PLACEHOLDERS[dialect.paramstyle], row=row,
                     columns=columns)


def _own(form: _Form, name: str) -> Any:
    if name not in form.own:
        raise exc.ArgumentError(f"no value for the bound parameter {name!r}")
    return form.own[name]


def _value(form: _Form, name: str, params: Mapping[str, Any]) -> Sequence[Any]:
    value = params[name] if name in params else _own(form, name)
    return list(value)


def _cursor(conn: Connection) -> Any:
    """A cursor of the connection's DB-API connection (``Connection.connection`` revalidates an invalidated
    connection, or raises as ``Connection.execute`` would when its transaction must be rolled back first)."""
    if not conn.in_transaction():
        conn.begin()   # what Connection.execute's autobegin does
    return conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]


def _execute_many(conn: Connection, cursor: Any, sql: str, params: list[Any]) -> None:
    """``Connection._cursor_execute`` for executemany: the same events, echo and error handling."""
    try:
        if conn._has_events or conn.engine._has_events:
            for fn in conn.dispatch.before_cursor_execute:
                sql, params = fn(conn, cursor, sql, params, None, True)
        if conn._echo:
            conn._log_info(sql)
        conn.dialect.do_executemany(cursor, sql, params, None)
        if conn._has_events or conn.engine._has_events:
            conn.dispatch.after_cursor_execute(conn, cursor, sql, params, None, True)
    except BaseException as failed:
        conn._handle_dbapi_exception(failed, sql, params, cursor, None)
