"""The database: engine set-up (SQLite by default, PostgreSQL for scale), migrations, transactions.

SQLite runs in WAL mode with ``synchronous=FULL`` (a committed registration survives power loss, like
the blob it points to) and write transactions start with ``BEGIN IMMEDIATE`` so two writers never
deadlock upgrading a read lock.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event


class Store:
    def __init__(self, url: str, *, sqlite_synchronous: str = "FULL") -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {}
        if self.is_sqlite:
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        else:
            kwargs.update(pool_size=10, max_overflow=10, pool_pre_ping=True)
        self.engine: Engine = create_engine(url, **kwargs)
        self._write_lock: AbstractContextManager[object] = threading.Lock() if self.is_sqlite else nullcontext()
        if self.is_sqlite:
            self._sqlite_setup(sqlite_synchronous)
        else:
            self._postgresql_setup()

    def _sqlite_setup(self, synchronous: str) -> None:
        @event.listens_for(self.engine, "connect")
        def _connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (pysqlite's own is deferred)
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA synchronous={synchronous}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(self.engine, "begin")
        def _begin(conn: Connection) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("write") else "BEGIN")

    def _postgresql_setup(self) -> None:
        @event.listens_for(self.engine, "connect")
        def _connect(dbapi_conn: Any, _record: Any) -> None:
            # psycopg prepares a statement run 5 times on a connection, and after 5 more executions PostgreSQL
            # may switch it to a generic plan, made without the parameter values. The registry's selectivities
            # are skewed (one patient: 100 rows; one eventCode: 5% of the registry), so a generic plan can
            # start from the wrong index: FindDocuments with an eventCodeList went from 6 to 24 ms at 30,000
            # entries and 72 ms at 100,000, growing with the registry. Plan every execution with its values.
            with dbapi_conn.cursor() as cur:
                cur.execute("SET plan_cache_mode = force_custom_plan")
            dbapi_conn.commit()

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One write transaction: committed when the block ends, rolled back on any exception.

        SQLite has one writer at a time; threads of this process queue on a lock instead of in SQLite's busy
        handler, whose sleeps (up to 100 ms each) would turn contention into long tail latencies."""
        with self._write_lock, self.engine.connect().execution_options(write=True) as conn, conn.begin():
            yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn, conn.begin():
            yield conn

    # --- schema ---------------------------------------------------------------------------------

    def _alembic_config(self) -> Config:
        cfg = Config()
        cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
        return cfg

    def migrate(self, *, partitions: int = 0) -> None:
        """Bring the schema to the latest Alembic revision.

        ``partitions`` > 0 (PostgreSQL only) hash-partitions ``registry_object`` by patient into that many
        partitions when migration 0006_scale runs (docs/registry-storage.md). That revision runs once: asking
        for partitions on a registry past it that has a different number raises ValueError, nothing changed."""
        if partitions < 0:
            raise ValueError("partitions must be 0 (none) or more")
        if partitions and self.is_sqlite:
            raise ValueError("registry partitioning needs PostgreSQL (SQLite has no partitioned tables)")
        cfg = self._alembic_config()
        cfg.attributes[PARTITIONS_ATTRIBUTE] = partitions
        with self.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
            if partitions and (found := _partitions(conn)) != partitions:
                raise ValueError(f"the registry's schema was created with {found} partitions, not {partitions}: "
                                 "partitioning is chosen when the database is created (docs/registry-storage.md)")

    def partitions(self) -> int:
        """Number of partitions of ``registry_object`` (0: not partitioned)."""
        if self.is_sqlite:
            return 0
        with self.engine.connect() as conn:
            return _partitions(conn)

    def schema_is_current(self) -> bool:
        head = ScriptDirectory.from_config(self._alembic_config()).get_current_head()
        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision() == head

    def dispose(self) -> None:
        self.engine.dispose()


PARTITIONS_ATTRIBUTE = "registry_partitions"  # read by migration 0006_scale


def _partitions(conn: Connection) -> int:
    return int(conn.exec_driver_sql(
        "SELECT count(*) FROM pg_inherits WHERE inhparent = 'registry_object'::regclass").scalar() or 0)


def failure_summary(failed: BaseException) -> str:
    """What the log may say about a database failure: the driver's exception class and the first line of
    its message, never SQLAlchemy's appended statement and bound parameters (they hold patient ids and can
    run to hundreds of KB) nor PostgreSQL's DETAIL line (it quotes key values)."""
    orig = getattr(failed, "orig", None) or failed
    first = (str(orig).strip().splitlines() or [""])[0]
    return f"{type(orig).__name__}: {first[:300]}"
