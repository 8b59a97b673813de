"""Writing the rows of registrations on PostgreSQL: one statement for all the tables, or one COPY per table.

:func:`insert_in_one_statement` sends every row of a registration (``registry_object``, ``document_entry``,
``submission_set``, ``folder``, ``association``, ``object_value`` and ``submission_origin``) in one round trip:
one fixed statement text made of data-modifying CTEs, each ``INSERT INTO t (columns) SELECT ... FROM
unnest(arrays)``, each column's array a slice of one array parameter per kind of value (an empty slice
inserts nothing). The text never changes,
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

from registry._direct import prepared_statement
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
    values: dict[str, list[Any]] = {kind: [] for kind in _KINDS}
    bounds: list[int] = []
    for columns, table_rows in zip(plan.columns, rows, strict=True):
        for name, process, kind, as_text in columns:
            column = [row[name] for row in table_rows]
            if process is not None:
                column = [None if v is None else process(v) for v in column]
            if as_text:
                column = [None if v is None else str(v) for v in column]
            into = values[kind]
            bounds += (len(into) + 1, len(into) + len(column))
            into += column
    dbapi: Any = conn.connection.dbapi_connection
    cursor = dbapi.cursor()
    try:
        # SQLAlchemy's thin cursor path (as registry._direct): events, echo, driver errors wrapped as
        # sqlalchemy.exc (IntegrityError, DataError...) with disconnect detection. Prepared: its plan does not
        # depend on the values. The bounds as an array literal: one str parameter, parsed by PostgreSQL, costs
        # psycopg less than a list of ints (dumped one by one in Python).
        with prepared_statement(dbapi):
            conn._cursor_execute(cursor, plan.sql, (*values.values(), "{" + ",".join(map(str, bounds)) + "}"))
    finally:
        cursor.close()


_KINDS = {"t": "text", "b": "bytea", "o": "boolean"}
"""The statement's arrays of values, one per kind (its PostgreSQL type); ``i`` holds the slices' bounds."""


class _Plan:
    """The statement's text and, per table, its columns with their bind processors, the array that carries
    them (``t``: everything but bytes and booleans, converted by PostgreSQL's input functions as COPY's text
    is) and whether they are sent as text.

    Every value of a kind goes in that kind's one array, table after table and, within a table, column after
    column; each column's values are a slice of it, between two bounds of the array ``i`` (1-based; an empty
    slice when there are no rows). Four array parameters instead of one per column: psycopg converts each list
    parameter in Python, and 48 of them cost the node several times the CPU of four (issue 13). The text
    stays under psycopg's limit for caching its parsed form (``MAX_CACHED_STATEMENT_LENGTH``: a test checks)."""

    def __init__(self, dialect: Dialect) -> None:
        self.columns: list[list[tuple[str, Any, str, bool]]] = []   # per table: (name, processor, kind, as text)
        inserts: list[str] = []
        bound = 0
        for table in TABLES:
            columns: list[tuple[str, Any, str, bool]] = []
            slices: list[str] = []
            selected: list[str] = []
            for column in table.columns:
                sql_type = column.type
                impl = getattr(sql_type, "impl_instance", sql_type)
                cast = None
                if isinstance(impl, LargeBinary):
                    kind = "b"
                elif isinstance(impl, Boolean):
                    kind = "o"
                else:
                    kind = "t"
                    # Integers through their input function (int4in, int8in: COPY's conversion and message);
                    # text columns by the INSERT's assignment cast, which checks varchar(n)'s length.
                    cast = ("bigint" if isinstance(impl, BigInteger) else "integer" if isinstance(impl, Integer)
                            else None)
                slices.append(f"p.{kind}[p.i[{bound + 1}]:p.i[{bound + 2}]]")
                bound += 2
                selected.append(f"CAST({column.name} AS {cast})" if cast else column.name)
                columns.append((column.name, sql_type.bind_processor(dialect), kind, cast is not None))
            names = ", ".join(c.name for c in table.columns)
            # Names from the schema only; every value is a parameter.
            inserts.append(f"INSERT INTO {table.name} ({names}) SELECT {', '.join(selected)} "  # noqa: S608
                           f"FROM p, unnest({', '.join(slices)}) AS r({names})")
            self.columns.append(columns)
        # PostgreSQL runs the primary statement, then the CTEs from the last one written to the first
        # (ExecPostprocessPlan: its list of secondary ModifyTable nodes is built with lcons): the CTEs come in
        # reverse, so that the tables are written in COPY's order.
        first, *others = inserts
        ctes = [f"w{i} AS ({sql})" for i, sql in reversed(list(enumerate(others, 1)))]
        arrays = ", ".join(f"%b::{sql_type}[] AS {kind}" for kind, sql_type in _KINDS.items())
        self.sql = f"WITH p AS (SELECT {arrays}, %s::int4[] AS i), {', '.join(ctes)} {first}"


_PLANS: weakref.WeakKeyDictionary[Dialect, _Plan] = weakref.WeakKeyDictionary()


def _plan(dialect: Dialect) -> _Plan:
    if (plan := _PLANS.get(dialect)) is None:
        plan = _PLANS[dialect] = _Plan(dialect)
    return plan
