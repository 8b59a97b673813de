"""What the PostgreSQL server of a benchmark did per document: its statements (``pg_stat_statements``: calls,
mean planning + execution time), its commits (``pg_stat_database.xact_commit``) and its WAL records, bytes and
flushes to disk (``pg_stat_wal.wal_sync``, the fsyncs/fdatasyncs of WAL by every process, PostgreSQL 14+).

The server must run with :data:`SETTINGS` (``shared_preload_libraries=pg_stat_statements``). Backends report
their counters to the statistics system when idle, at most once a second and within 10 s (PostgreSQL 15
``PGSTAT_IDLE_INTERVAL``): :meth:`PgStats.snapshot` waits for that first.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import psycopg

SETTINGS = ("shared_preload_libraries=pg_stat_statements", "pg_stat_statements.track=all",
            "pg_stat_statements.track_planning=on")
_FLUSH_WAIT_S = 11.0


@dataclass
class Snapshot:
    commits: int = 0
    rollbacks: int = 0
    wal_records: int = 0
    wal_bytes: int = 0
    wal_syncs: int = 0
    statements: dict[str, tuple[int, float, float]] = field(default_factory=dict)  # query: (calls, plan ms, exec ms)


class PgStats:
    """Counters of the server at ``sqlalchemy_url`` (a ``postgresql+psycopg://`` URL), read over a connection
    of its own (its own statements are left out of the per-statement figures, not of the commits: a snapshot
    costs one transaction, subtracted)."""

    def __init__(self, sqlalchemy_url: str) -> None:
        self.conninfo = sqlalchemy_url.replace("postgresql+psycopg://", "postgresql://", 1)
        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")

    def snapshot(self, wait: bool = True) -> Snapshot:
        if wait:
            time.sleep(_FLUSH_WAIT_S)
        with psycopg.connect(self.conninfo) as conn:  # one transaction: one commit per snapshot
            commits, rollbacks = conn.execute(
                "SELECT xact_commit, xact_rollback FROM pg_stat_database WHERE datname = current_database()"
            ).fetchone() or (0, 0)
            records, wal_bytes, syncs = conn.execute(
                "SELECT wal_records, wal_bytes, wal_sync FROM pg_stat_wal").fetchone() or (0, 0, 0)
            rows = conn.execute(
                "SELECT query, sum(calls)::bigint, sum(total_plan_time), sum(total_exec_time) FROM pg_stat_statements"
                " WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
                " AND query NOT LIKE '%pg_stat_%' GROUP BY query").fetchall()
        return Snapshot(int(commits), int(rollbacks), int(records), int(wal_bytes), int(syncs),
                        {q: (int(c), float(p), float(e)) for q, c, p, e in rows})


def print_per_document(before: Snapshot, after: Snapshot, documents: int, top: int = 25) -> None:
    """The difference ``after - before`` divided by ``documents``: commits, WAL, and each statement."""
    d = max(1, documents)
    calls = {}
    for q, (c, p, e) in after.statements.items():
        c0, p0, e0 = before.statements.get(q, (0, 0.0, 0.0))
        if c > c0:
            calls[q] = (c - c0, p - p0, e - e0)
    total = sum(c for c, _, _ in calls.values())
    # the before snapshot's own transaction is counted in between (the after one's is reported after its read)
    commits = after.commits - before.commits - 1
    print(f"PostgreSQL per document ({documents} documents): statements {total / d:.2f}, commits {commits / d:.2f}, "
          f"rollbacks {(after.rollbacks - before.rollbacks) / d:.2f}, WAL flushes (wal_sync) "
          f"{(after.wal_syncs - before.wal_syncs) / d:.2f}, "
          f"WAL records {(after.wal_records - before.wal_records) / d:.1f}, "
          f"WAL bytes {(after.wal_bytes - before.wal_bytes) / d:.0f}")
    print(f"  {'calls/doc':>9} {'plan ms':>8} {'exec ms':>8}  statement (pg_stat_statements, means per call)")
    for q, (c, p, e) in sorted(calls.items(), key=lambda item: -item[1][0])[:top]:
        print(f"  {c / d:>9.2f} {p / c:>8.3f} {e / c:>8.3f}  {' '.join(q.split())[:150]}")
