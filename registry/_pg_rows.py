"""Writing the rows of registrations on PostgreSQL: one statement for all the tables, or one COPY per table.

:func:`insert_in_one_statement` sends every row of a registration (``registry_object``, ``document_entry``,
``submission_set``, ``folder``, ``association``, ``object_value`` and ``submission_origin``) in one round trip:
one fixed statement text made of data-modifying CTEs, each ``INSERT INTO t (columns) SELECT ... FROM
unnest(arrays)``, with one array parameter per column (an empty array inserts nothing). The text never changes,
so psycopg prepares it once per connection and PostgreSQL parses it once (issue 13: five COPYs and an INSERT
cost 11 round trips and ~1.5 ms of the node's CPU per document in a profile; benchmarks/pg_write_path.py).
:func:`copy_rows` (one COPY per table: fewer bytes for thousands of rows) stays for the bulk path's large batches.

Both write exactly the same rows, and a row the database refuses is refused with the same error:

- each value goes through its column type's bind processor (the compact form of ids, statuses and attribute
  names; ``StoredXml`` leaves the stored-form bytes ``rows_of`` made as they are), as ``Connection.execute``
  would apply it;
- every value that is not bytes is sent as text and converted by PostgreSQL's input function of the column's
  type, as COPY converts its text: a ``size`` too big for ``bigint`` or a text too long for its ``varchar(n)``
  gives COPY's message, and the cast to varchar is the assignment's (which checks the length), never an
  explicit one (which would truncate);
- PostgreSQL runs the statement's primary INSERT first, then the CTEs' in the reverse order of their place in
  the text: the statement is spelled so that the tables are written in COPY's order (``registry_object``
  first), so the first refused row is the one COPY would have refused first (a test checks it);
- a refusal is raised as SQLAlchemy raises a failed statement (IntegrityError, DataError, ...).

One difference remains, within one table: COPY converts a batch of rows before inserting any of them, the
statement converts and inserts row by row. Rows of which an earlier one takes a key already taken and a later
one holds a value too wide for its column are refused by COPY for the width (DataError), by the statement for
the key (IntegrityError). For a registration that needs a concurrent registration of the same id between its
checks and its insert: it is refused either way, as REGISTERED_CONCURRENTLY instead of VALUE_DOES_NOT_FIT_STORAGE.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Any

from sqlalchemy import BigInteger, Boolean, Connection, Dialect, Integer, LargeBinary, Table, exc

from registry._schema import (
    association,
    document_entry,
    folder,
    object_value,
    registry_object,
    submission_origin,
    submission_set,
)

Row = dict[str, Any]

TABLES: tuple[Table, ...] = (registry_object, document_entry, submission_set, folder, association, object_value,
                             submission_origin)
"""The tables of a registration, in the order both ways write them."""


def copy_rows(conn: Connection, table: Table, rows: list[Row]) -> None:
    """``rows`` (every row with the keys of the first) into ``table`` with one COPY."""
    columns = list(rows[0])
    sql = f"COPY {table.name} ({', '.join(columns)}) FROM STDIN"
    dbapi: Any = conn.connection.dbapi_connection  # psycopg 3, inside the connection's transaction
    # COPY bypasses SQLAlchemy's binding: each value goes through its column type's own bind processing here.
    stored = [(c, table.c[c].type.bind_processor(conn.dialect)) for c in columns]
    try:
        with dbapi.cursor() as cur, cur.copy(sql) as copy:
            for row in rows:
                copy.write_row(tuple(row[c] if form is None or row[c] is None else form(row[c]) for c, form in stored))
    except conn.dialect.loaded_dbapi.Error as failed:
        # As SQLAlchemy reports a failed statement (IntegrityError, DataError, OperationalError, ...).
        raise exc.DBAPIError.instance(sql, None, failed, conn.dialect.loaded_dbapi.Error) from failed


def insert_in_one_statement(conn: Connection, rows: Sequence[list[Row]]) -> None:
    """``rows[i]``: the rows for ``TABLES[i]`` (each row with every column of its table; a list may be empty),
    inserted with one statement (see the module's docstring)."""
    plan = _plan(conn.dialect)
    arrays: list[list[list[Any]]] = []
    for columns, table_rows in zip(plan.columns, rows, strict=True):
        table_arrays = []
        for name, process, as_text in columns:
            values = [row[name] for row in table_rows]
            if process is not None:
                values = [None if v is None else process(v) for v in values]
            if as_text:
                values = [None if v is None else str(v) for v in values]
            table_arrays.append(values)
        arrays.append(table_arrays)
    params = tuple(a for t in plan.text_order for a in arrays[t])
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        # SQLAlchemy's thin cursor path (as registry._direct): events, echo, driver errors wrapped as
        # sqlalchemy.exc (IntegrityError, DataError...) with disconnect detection.
        conn._cursor_execute(cursor, plan.sql, params)
    finally:
        cursor.close()


class _Plan:
    """The statement's text and, per table, its columns with their bind processors and whether they are sent
    as text (everything but bytes: converted by PostgreSQL's input functions, as COPY's text is)."""

    def __init__(self, dialect: Dialect) -> None:
        self.columns: list[list[tuple[str, Any, bool]]] = []   # per table: (name, bind processor, as text)
        inserts: list[str] = []
        for table in TABLES:
            columns: list[tuple[str, Any, bool]] = []
            arrays: list[str] = []
            selected: list[str] = []
            for column in table.columns:
                sql_type = column.type
                impl = getattr(sql_type, "impl_instance", sql_type)
                if isinstance(impl, LargeBinary):
                    arrays.append("%b::bytea[]")
                    selected.append(column.name)
                    as_text = False
                elif isinstance(impl, Boolean):
                    arrays.append("%b::boolean[]")
                    selected.append(column.name)
                    as_text = False
                else:
                    arrays.append("%b::text[]")
                    # Integers through their input function (int4in, int8in: COPY's conversion and message);
                    # text columns by the INSERT's assignment cast, which checks varchar(n)'s length.
                    cast = ("bigint" if isinstance(impl, BigInteger) else "integer" if isinstance(impl, Integer)
                            else None)
                    selected.append(f"CAST({column.name} AS {cast})" if cast else column.name)
                    as_text = cast is not None
                columns.append((column.name, sql_type.bind_processor(dialect), as_text))
            names = ", ".join(c.name for c in table.columns)
            # Names from the schema only; every value is a parameter.
            inserts.append(f"INSERT INTO {table.name} ({names}) SELECT {', '.join(selected)} "  # noqa: S608
                           f"FROM unnest({', '.join(arrays)}) AS r({names})")
            self.columns.append(columns)
        # PostgreSQL runs the primary statement, then the CTEs from the last one written to the first
        # (ExecPostprocessPlan: its list of secondary ModifyTable nodes is built with lcons). The parameters
        # are numbered in the text's order, so the CTEs come in reverse and their arrays with them.
        first, *others = inserts
        ctes = [f"w{i} AS ({sql})" for i, sql in reversed(list(enumerate(others, 1)))]
        self.sql = f"WITH {', '.join(ctes)} {first}"
        self.text_order = [*reversed(range(1, len(inserts))), 0]   # the tables' arrays in the text's order


_PLANS: weakref.WeakKeyDictionary[Dialect, _Plan] = weakref.WeakKeyDictionary()


def _plan(dialect: Dialect) -> _Plan:
    if (plan := _PLANS.get(dialect)) is None:
        plan = _PLANS[dialect] = _Plan(dialect)
    return plan
