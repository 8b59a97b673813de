"""The rate limit of the sign-in forms (activation, login, one-time code, forgotten password): at most
:data:`~portal._rules.RATE_LIMIT` attempts per client address in a window of :data:`~portal._rules.RATE_WINDOW`
that starts at its first attempt (docs/portal.md "Security").

The counts are rows of ``portal_rate`` in the node's database, not memory of a process: every worker of
``dmp serve --workers N`` and every node sharing the database count the same attempts. The per-account lock
(``portal._accounts``) stays the durable limit against guessing one account's password; this one slows down
guessing across accounts."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.dialects import postgresql, sqlite

from portal import _rules
from portal._accounts import stamp
from portal._schema import portal_rate
from registry import Store

rate = portal_rate.c


class RateLimit:
    def __init__(self, store: Store, limit: int = _rules.RATE_LIMIT, window: timedelta = _rules.RATE_WINDOW) -> None:
        self.store, self.limit, self.window = store, limit, window
        self._insert = sqlite.insert if store.is_sqlite else postgresql.insert

    def allow(self, client: str, now: datetime) -> bool:
        """Count an attempt of ``client`` at ``now``; False when it is over the limit of its window.

        One write transaction: the windows that are over are deleted (every client's: the table holds only
        the windows under way), then this client's count goes up by one in a single upsert, which two
        processes cannot interleave (PostgreSQL locks the row, SQLite has one writer)."""
        count = (self._insert(portal_rate)
                 .values(client=client[:64], window_start=stamp(now), hits=1)
                 .on_conflict_do_update(index_elements=[rate.client], set_={"hits": rate.hits + 1})
                 .returning(rate.hits))
        with self.store.write() as conn:
            conn.execute(delete(portal_rate).where(rate.window_start <= stamp(now - self.window)))
            hits = int(conn.execute(count).scalar_one())
        return hits <= self.limit
