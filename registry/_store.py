"""The database: engine set-up (SQLite by default, PostgreSQL for scale), migrations, transactions.

SQLite runs in WAL mode with ``synchronous=FULL`` (a committed registration survives power loss, like
the blob it points to) and write transactions start with ``BEGIN IMMEDIATE`` so two writers never
deadlock upgrading a read lock. SQLite has one writer at a time: the threads of a process queue on a lock,
and the processes of ``dmp serve --workers N`` on an exclusive ``flock`` of ``DATABASE-writer.lock``, instead of
in SQLite's busy handler (its sleeps of up to 100 ms would turn contention into long tail latencies).

Group commit (:meth:`Store.grouped_write`): the requests' write transactions of a process that arrive while
one commits are run together, each in a savepoint, with one commit (one WAL fsync) for the group; each caller
gets its own result or exception only once the group is committed (acknowledged = durable), and a work that
fails is rolled back to its savepoint without touching the others (docs/architecture.md, "Group commit").

PostgreSQL: the reads' connections are pinged when they come out of the pool (``pool_pre_ping``): a server
restarted between two requests is noticed there and the connection replaced, so the first request after a
restart is served, not refused. A write transaction's connection is not pinged: its BEGIN, sent by the store
(the driver is in autocommit), is the ping. A connection the server closed fails its BEGIN, before any work
ran, and the transaction starts again on a new connection (:meth:`Store.write`): one round trip per
transaction instead of two (issue 13).
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import DBAPIError

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

T = TypeVar("T")
MAX_GROUP = 32
"""At most this many works share one transaction: a bound on how long one commit holds the write lock."""




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
        # Its writes are mostly the group commit's (one transaction at a time per process): 4 kept, 4 more in bursts.
        self.keyed_engine: Engine = (self.engine if self.is_sqlite else create_engine(
            url, **{**kwargs, "pool_size": 4, "max_overflow": 4, "pool_pre_ping": False}))
        """PostgreSQL: the connections of the write transactions and of other statements by key (a caller's
        dossier), a pool of their own where the statements that ask to be prepared keep a generic plan;
        ``engine``'s plan every execution with its values (see ``_postgresql_setup``). Their driver is in
        autocommit and not pinged: :meth:`write` begins the transaction. SQLite: ``engine``."""
        self._write_lock: AbstractContextManager[object] = threading.Lock() if self.is_sqlite else nullcontext()
        database = self.engine.url.database if self.is_sqlite else None
        self._process_lock = (_ProcessLock(Path(database + "-writer.lock"))
                              if database and database != ":memory:" and not database.startswith("file:") else None)
        self._group = _GroupCommit(self)
        self._driver_error: type[Exception] = self.engine.dialect.loaded_dbapi.Error
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

    def _begin_sqlite(self, conn: Connection, sql: str) -> None:
        """Start SQLite's transaction (the driver's own BEGIN is off): straight to the driver, from the context
        managers below, not from an engine "begin" event. exec_driver_sql would run SQLAlchemy's whole execution
        path for a statement with no parameters and no rows, and any engine event makes every connection join
        the engine's dispatcher and every statement look for listeners (issue 13: ~0.1 ms per request)."""
        if self.is_sqlite:
            conn.connection.driver_connection.execute(sql)  # type: ignore[union-attr]

    def _postgresql_setup(self) -> None:
        @event.listens_for(self.engine, "connect")
        def _connect(dbapi_conn: Any, _record: Any) -> None:
            # Reads. psycopg prepares a statement run 5 times on a connection, and after 5 more executions
            # PostgreSQL may switch it to a generic plan, made without the parameter values. The registry's
            # selectivities are skewed (one patient: 100 rows; one eventCode: 5% of the registry), so a generic
            # plan can start from the wrong index: FindDocuments with an eventCodeList went from 6 to 24 ms at
            # 30,000 entries and 72 ms at 100,000, growing with the registry. Plan every execution with its values.
            _set_session(dbapi_conn, plan_cache_mode="force_custom_plan")

        @event.listens_for(self.keyed_engine, "connect")
        def _connect_keyed(dbapi_conn: Any, _record: Any) -> None:
            # Writes and reads by key: PostgreSQL's own choice ("auto") for the few statements that ask to be
            # prepared (registry.prepared_statement: a registration's rows and its checks' look-up of a few
            # values, the access history's append, the caller's dossier read), whose plans do not depend on the
            # values; PostgreSQL keeps their generic plan, made once per connection instead of a plan at every
            # execution (~0.45 ms of PostgreSQL's CPU per ITI-41; benchmarks/README.md, issue 13). Every other
            # statement is not prepared, so planned with its values at each execution. Sequential scans off:
            # every statement here is by key, where an index scan is right whatever the tables' size, and a
            # generic plan made on a young registry would otherwise scan sequentially and be kept as the tables
            # grow, until autovacuum analyzes them (seen with the look-up: 1-1.3 ms instead of 0.03 per
            # execution, benchmarks/pg_write_path.py; a table with no usable index is still scanned).
            _set_session(dbapi_conn, plan_cache_mode="auto", enable_seqscan="off")
            dbapi_conn.prepare_threshold = None
            dbapi_conn.autocommit = True   # the store sends BEGIN itself, and it is the ping (write())

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One write transaction: committed when the block ends, rolled back on any exception.

        SQLite has one writer at a time; threads of this process queue on a lock, processes on a file lock
        (see the module's docstring)."""
        with (self._write_lock, self._process_lock or nullcontext(), self._begun() as conn, conn.begin()):
            self._begin_sqlite(conn, "BEGIN IMMEDIATE")
            yield conn

    def _begun(self) -> Connection:
        """A keyed connection; on PostgreSQL its transaction begun. The BEGIN is the connection's ping (the
        keyed pool has none): a connection the server closed (a restart) fails it before any work ran, the
        pool's other connections are dropped (made before the server went away, as dead) and the transaction
        begins on a new one, once. SQLAlchemy's ``begin()`` sends nothing on PostgreSQL: psycopg's COMMIT and
        ROLLBACK follow the server's transaction state, which this BEGIN opened."""
        if self.is_sqlite:
            return self.keyed_engine.connect()
        for attempt in (1, 2):
            conn = self.keyed_engine.connect()
            driver = conn.connection.driver_connection
            assert driver is not None
            try:
                driver.execute("BEGIN")
                return conn
            except self._driver_error as failed:
                lost = self.keyed_engine.dialect.is_disconnect(failed, driver, None)  # type: ignore[arg-type]
                conn.invalidate()
                conn.close()
                if not lost or attempt == 2:
                    raise DBAPIError.instance(None, None, failed, self._driver_error) from None
                self.keyed_engine.dispose()
            except BaseException:   # interrupted: the connection goes back to the pool, where it is reset
                conn.close()
                raise
        raise AssertionError("unreachable")   # pragma: no cover

    def grouped_write(self, work: Callable[[Connection], T], *, order: str = "") -> T:
        """``work(conn)`` in a write transaction that may be shared with the works other threads of this process
        submit meanwhile (group commit). Returns its result, or raises its exception, once the transaction
        is committed (or rolled back: then the commit's exception). A work that raises has its writes undone
        (its savepoint) and the others' kept. Like :meth:`write`, the work must not open another write.

        The works of a group run sorted by ``order`` (in arrival order among equals). A work that locks rows of
        one key (the consent checker's access-history head of a patient: ``SELECT ... FOR UPDATE``) gives that
        key, so that every group takes such locks in the same order: two groups of two processes on PostgreSQL
        that lock two patients' rows crosswise would deadlock, and PostgreSQL, after a second, refuse one of them
        whole (valid requests answered "database unavailable")."""
        return self._group.run(work, order)

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn, conn.begin():
            self._begin_sqlite(conn, "BEGIN")
            yield conn

    # --- schema ---------------------------------------------------------------------------------

    # Alembic is imported here, not at module level: a serving process never migrates, and importing it
    # costs each process about 7 MB of memory.
    def _alembic_config(self) -> AlembicConfig:
        from alembic.config import Config as AlembicConfig

        cfg = AlembicConfig()
        cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
        return cfg

    def migrate(self, *, partitions: int = 0) -> None:
        """Bring the schema to the latest Alembic revision.

        ``partitions`` > 0 (PostgreSQL only) hash-partitions ``registry_object`` by patient into that many
        partitions when migration 0008_scale runs (docs/registry-storage.md). That revision runs once: asking
        for partitions on a registry past it that has a different number raises ValueError, nothing changed."""
        if partitions < 0:
            raise ValueError("partitions must be 0 (none) or more")
        if partitions and self.is_sqlite:
            raise ValueError("registry partitioning needs PostgreSQL (SQLite has no partitioned tables)")
        from alembic import command

        cfg = self._alembic_config()
        cfg.attributes[PARTITIONS_ATTRIBUTE] = partitions
        with self.engine.begin() as conn:
            self._begin_sqlite(conn, "BEGIN IMMEDIATE")   # the whole upgrade in one transaction, as before
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
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        head = ScriptDirectory.from_config(self._alembic_config()).get_current_head()
        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision() == head

    def dispose(self) -> None:
        self.engine.dispose()
        self.keyed_engine.dispose()


PARTITIONS_ATTRIBUTE = "registry_partitions"  # read by migration 0008_scale


def _set_session(dbapi_conn: Any, **settings: str) -> None:
    """Planner settings of a new PostgreSQL connection's session (committed: not undone with the first
    transaction that rolls back)."""
    with dbapi_conn.cursor() as cur:
        for name, value in settings.items():
            cur.execute(f"SET {name} = {value}")
    dbapi_conn.commit()


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


class _ProcessLock:
    """An exclusive ``flock`` on a file beside the SQLite database, held by one writer of all the processes that
    serve it. The kernel queues the waiters (no polling), and releases the lock if its holder dies. Opened per
    process (a descriptor inherited through fork would share its lock with the parent)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._pid = 0

    def __enter__(self) -> None:
        if self._fd is None or self._pid != os.getpid():
            self._fd, self._pid = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600), os.getpid()
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def __exit__(self, *_exc: object) -> None:
        assert self._fd is not None
        fcntl.flock(self._fd, fcntl.LOCK_UN)


@dataclass(eq=False)
class _Pending(Generic[T]):
    work: Callable[[Connection], T]
    order: str = ""
    done: threading.Event = field(default_factory=threading.Event)
    lead: bool = False             # woken to commit the next group (rather than with its outcome)
    finished: bool = False
    result: T | None = None
    error: BaseException | None = None


def _by_order(p: _Pending[Any]) -> str:
    return p.order


class _GroupCommit:
    """Leader/follower group commit: the first caller to find no commit under way becomes the leader and commits
    the queued works (its own among them, sorted by their order); works queued meanwhile wait, and when the
    leader's group is committed the oldest of them leads the next group. No thread of its own: a caller's work
    runs in some caller's thread."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._mutex = threading.Lock()
        self._queue: list[_Pending[Any]] = []
        self._committing = False

    def run(self, work: Callable[[Connection], T], order: str = "") -> T:
        mine: _Pending[T] = _Pending(work, order)
        with self._mutex:
            self._queue.append(mine)
            mine.lead = not self._committing
            self._committing = True
        while True:
            if mine.lead:
                self._commit_next()
            if mine.finished:
                break
            mine.done.wait()
            mine.done.clear()
        if mine.error is not None:
            raise mine.error
        return mine.result  # type: ignore[return-value]

    def _commit_next(self) -> None:
        group: list[_Pending[Any]] = []

        def take() -> list[_Pending[Any]]:
            nonlocal group
            with self._mutex:
                group, self._queue = self._queue[:MAX_GROUP], self._queue[MAX_GROUP:]
            return group

        try:
            self._commit(take)
        finally:
            with self._mutex:
                successor = self._queue[0] if self._queue else None
                self._committing = successor is not None
            for p in group:
                p.lead, p.finished = False, True
                p.done.set()
            if successor is not None:
                successor.lead = True
                successor.done.set()

    def _commit(self, take: Callable[[], list[_Pending[Any]]]) -> None:
        """The works queued once the write transaction has started (``take``), in it. Taken only then: while
        the leader waited for the write lock (another process of ``--workers N`` committing), the works queued
        meanwhile join its group instead of waiting for the next commit."""
        group: list[_Pending[Any]] = []
        try:
            with self._store.write() as conn:
                group = take()
                group.sort(key=_by_order)
                if len(group) == 1:
                    group[0].result = group[0].work(conn)   # its exception rolls the transaction back
                    return
                # Savepoints sent straight to the driver, like BEGIN (``_sqlite_setup``): SQLAlchemy's
                # begin_nested compiles and executes SAVEPOINT and RELEASE through its whole execution path,
                # ~60 us of CPU per request of a group (issue 13). A failed work is rolled back to its savepoint
                # here, as begin_nested did; SQLAlchemy's own savepoints inside a work nest within it. None is
                # released (a round trip each on PostgreSQL): a savepoint of the same name nests in the previous
                # one, ROLLBACK TO undoes only the newest (PostgreSQL, SQLite), and the commit keeps them all;
                # at most MAX_GROUP deep, within PostgreSQL's cache of a transaction's 64 subtransactions.
                driver = conn.connection.driver_connection
                assert driver is not None
                for p in group:
                    driver.execute("SAVEPOINT grouped_work")
                    try:
                        p.result = p.work(conn)
                    except Exception as failed:
                        p.result, p.error = None, failed
                        driver.execute("ROLLBACK TO SAVEPOINT grouped_work")
        except BaseException as failed:   # no transaction, or the commit (or the only work) failed: nothing stored
            for p in group or take():     # not taken yet if the transaction could not start: they hear why
                if p.error is None:
                    p.result, p.error = None, failed
