"""Boolean combinations of many SQL conditions that any database can parse.

SQLAlchemy renders ``or_(c1, ..., cn)`` as the flat text ``c1 OR ... OR cn``, which SQLite parses into a tree
n levels deep: past 1,000 levels it refuses the statement ("Expression tree is too large"), so a stored query
with ~1,000 values in one parameter failed as if the database were down. :func:`any_of` and :func:`all_of`
emit explicitly parenthesised groups of at most ``_FANOUT`` terms, so the depth grows with the logarithm of the
number of terms (about 70 levels for 10,000 terms)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Boolean, ColumnElement, and_, false, or_, true
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.visitors import InternalTraversal

_FANOUT = 32


class _Parenthesized(ColumnElement[bool]):
    """``( condition )``, kept as such: a plain grouping inside ``or_``/``and_`` is flattened away."""

    type = Boolean()
    inherit_cache = True
    _traverse_internals = [("condition", InternalTraversal.dp_clauseelement)]  # noqa: RUF012 (SQLAlchemy's)

    def __init__(self, condition: ColumnElement[bool]) -> None:
        self.condition = condition


@compiles(_Parenthesized)
def _render(element: _Parenthesized, compiler: Any, **kw: Any) -> str:
    return "(" + str(compiler.process(element.condition, **kw)) + ")"


def any_of(conditions: Sequence[ColumnElement[bool]]) -> ColumnElement[bool]:
    """OR of ``conditions`` (false when there are none)."""
    return _balanced(or_, list(conditions))


def all_of(conditions: Sequence[ColumnElement[bool]]) -> ColumnElement[bool]:
    """AND of ``conditions`` (true when there are none)."""
    return _balanced(and_, list(conditions))


def _balanced(op: Any, terms: list[ColumnElement[bool]]) -> ColumnElement[bool]:
    if not terms:
        return false() if op is or_ else true()
    while len(terms) > _FANOUT:
        terms = [_Parenthesized(op(*terms[i : i + _FANOUT])) for i in range(0, len(terms), _FANOUT)]
    return op(*terms)  # type: ignore[no-any-return]
