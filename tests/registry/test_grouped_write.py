"""Group commit (``Store.grouped_write``): works submitted while a commit is under way share the next
transaction, each in its own savepoint; each caller gets its own result or exception only after the commit;
a work that fails leaves the others of its group stored. SQLite and PostgreSQL (real databases)."""

from __future__ import annotations

import contextlib
import functools
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from pg import PostgresServer
from sqlalchemy import Column, Connection, Integer, MetaData, String, Table, event, insert, select

from registry import Store

metadata = MetaData()
item = Table("gc_item", metadata, Column("id", Integer, primary_key=True), Column("label", String(20)))


class Refused(Exception):
    pass


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'gc.db'}"
    else:
        import psycopg

        server: PostgresServer = request.getfixturevalue("shared_postgres")
        name = f"gc_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(f"host={server.root} user=app dbname=postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = f"postgresql+psycopg://app@/{name}?host={server.root}"
    s = Store(url)
    metadata.create_all(s.engine)
    yield s
    s.dispose()


def _commits(store: Store) -> list[int]:
    commits: list[int] = []
    event.listen(store.keyed_engine, "commit", lambda _conn: commits.append(1))
    return commits


def _stored(store: Store) -> dict[int, str]:
    with store.read() as conn:
        return {r.id: r.label for r in conn.execute(select(item.c.id, item.c.label))}


def test_works_queued_during_a_commit_share_one_transaction_and_each_gets_its_own_outcome(store):
    commits = _commits(store)
    first_running, release = threading.Event(), threading.Event()

    def first(conn: Connection) -> str:
        conn.execute(insert(item).values(id=1, label="first"))
        first_running.set()
        assert release.wait(30)      # holds the commit under way while the others queue
        return "first"

    def good(n: int):
        def work(conn: Connection) -> str:
            conn.execute(insert(item).values(id=n, label=f"good {n}"))
            return f"result {n}"
        return work

    def refused_after_writing(conn: Connection) -> str:
        conn.execute(insert(item).values(id=50, label="refused"))
        raise Refused("refused by a rule")

    def duplicate_key(conn: Connection) -> str:
        conn.execute(insert(item).values(id=60, label="ok part"))
        conn.execute(insert(item).values(id=2, label="duplicate of good 2"))   # IntegrityError
        return "never"

    others = [good(2), refused_after_writing, good(3), duplicate_key, good(4)]
    with ThreadPoolExecutor(len(others) + 1) as pool:
        lead = pool.submit(store.grouped_write, first)
        assert first_running.wait(30)
        futures = [pool.submit(store.grouped_write, w) for w in others]
        while len(store._group._queue) < len(others):   # every one is queued behind the commit under way
            threading.Event().wait(0.01)
        assert not any(f.done() for f in futures)
        release.set()
        assert lead.result(30) == "first"
        outcomes = []
        for f in futures:
            try:
                outcomes.append(f.result(30))
            except Exception as failed:
                outcomes.append(type(failed).__name__)
    assert outcomes == ["result 2", "Refused", "result 3", "IntegrityError", "result 4"]
    assert len(commits) == 2     # the first alone, then the five queued behind it in one transaction
    # the refused works' writes are undone (their savepoints), the others' kept
    assert _stored(store) == {1: "first", 2: "good 2", 3: "good 3", 4: "good 4"}


def test_a_lone_work_that_fails_leaves_nothing(store):
    def fails(conn: Connection) -> None:
        conn.execute(insert(item).values(id=7, label="half"))
        raise Refused("no")

    with pytest.raises(Refused):
        store.grouped_write(fails)
    assert _stored(store) == {}
    def whole(conn: Connection) -> str:
        conn.execute(insert(item).values(id=7, label="whole"))
        return "stored"

    assert store.grouped_write(whole) == "stored"
    assert _stored(store) == {7: "whole"}


def test_a_failed_commit_fails_every_work_of_the_group(store):
    first_running, release = threading.Event(), threading.Event()
    fail_commit = threading.Event()

    @event.listens_for(store.keyed_engine, "commit")
    def _refuse(_conn: object) -> None:
        if fail_commit.is_set():
            raise RuntimeError("disk gone")

    def first(conn: Connection) -> int:
        conn.execute(insert(item).values(id=1, label="first"))
        first_running.set()
        assert release.wait(30)
        fail_commit.set()         # the commit of the group that follows fails
        return 1

    def queued(n: int):
        def work(conn: Connection) -> int:
            conn.execute(insert(item).values(id=n, label="queued"))
            return n
        return work

    with ThreadPoolExecutor(4) as pool:
        lead = pool.submit(store.grouped_write, first)
        assert first_running.wait(30)
        futures = [pool.submit(store.grouped_write, queued(n)) for n in (2, 3, 4)]
        while len(store._group._queue) < 3:
            threading.Event().wait(0.01)
        release.set()
        with pytest.raises(RuntimeError):
            lead.result(30)
        for f in futures:
            with pytest.raises(RuntimeError):
                f.result(30)
    fail_commit.clear()
    assert _stored(store) == {}


def _send(store: Store, n: int) -> int:
    """Item ``n`` stored through a group commit; ``n`` once committed."""
    def work(conn: Connection) -> int:
        conn.execute(insert(item).values(id=n, label=str(n)))
        return n
    return store.grouped_write(work)


def test_many_threads_every_work_stored_once(store):
    commits = _commits(store)
    send = functools.partial(_send, store)

    with ThreadPoolExecutor(16) as pool:
        assert list(pool.map(send, range(1, 401))) == list(range(1, 401))
    assert 1 <= len(commits) <= 400
    assert _stored(store) == {n: str(n) for n in range(1, 401)}


def test_sqlite_writers_of_other_processes_wait_on_the_writer_lock(tmp_path):
    """The processes of `dmp serve --workers N` queue on an exclusive flock of DATABASE-writer.lock while one of
    them writes (not in SQLite's busy handler): another process cannot take it during a write transaction."""
    store = Store(f"sqlite:///{tmp_path / 'gc.db'}")
    metadata.create_all(store.engine)
    probe = ("import fcntl, os, sys\n"
             "fd = os.open(sys.argv[1], os.O_RDWR)\n"
             "try:\n    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)\nexcept BlockingIOError:\n    print('held')\n"
             "else:\n    print('free')\n")
    lock = str(tmp_path / "gc.db-writer.lock")

    def try_lock() -> str:
        return subprocess.run([sys.executable, "-c", probe, lock], capture_output=True, text=True,
                              check=True).stdout.strip()

    with store.write() as conn:
        conn.execute(insert(item).values(id=1, label="x"))
        assert try_lock() == "held"
    assert try_lock() == "free"
    store.dispose()


def test_works_queued_while_the_leader_waits_for_another_process_join_its_group(tmp_path):
    """A leader that waits for the writer lock (another process of `dmp serve --workers N` writing) takes the
    works queued meanwhile into its transaction: one commit for the three works, not one for the leader alone
    and one for the others."""
    store = Store(f"sqlite:///{tmp_path / 'gc.db'}")
    metadata.create_all(store.engine)
    commits = _commits(store)
    with subprocess.Popen(   # the other process: holds the writer lock until its stdin closes
            [sys.executable, "-c", "import fcntl, os, sys\nfd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)\n"
             "fcntl.flock(fd, fcntl.LOCK_EX)\nprint('held', flush=True)\nsys.stdin.read()\n",
             str(tmp_path / "gc.db-writer.lock")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as holder:
        try:
            assert holder.stdin is not None
            assert holder.stdout is not None
            assert holder.stdout.readline().strip() == "held"
            with ThreadPoolExecutor(3) as pool:
                leader = pool.submit(_send, store, 1)
                _wait_until(lambda: store._group._committing)     # leading, waiting for the lock
                followers = [pool.submit(_send, store, n) for n in (2, 3)]
                _wait_until(lambda: len(store._group._queue) == 3)
                holder.stdin.close()                              # the other process's write ends
                assert [leader.result(30), *(f.result(30) for f in followers)] == [1, 2, 3]
        finally:
            holder.kill()
    assert len(commits) == 1
    assert _stored(store) == {1: "1", 2: "2", 3: "3"}
    store.dispose()


def _queued(store: Store, n: int) -> bool:
    return len(store._group._queue) == n


def _wait_until(condition: Callable[[], bool], seconds: float = 5) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)


def test_groups_of_two_processes_lock_keys_in_one_order_and_do_not_deadlock(shared_postgres):
    """Two processes' groups each run a work per key that locks that key's row (as the consent checker's
    access-history head of a patient); queued in opposite orders, [b, a] and [a, b]. Run in arrival order, each
    group would lock its first key, then wait for the other's: a deadlock, and PostgreSQL refuses one group
    whole. Run in ``order`` (the key), both lock a then b: both groups committed, every work done."""
    import psycopg

    name = f"gc_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(f"host={shared_postgres.root} user=app dbname=postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql+psycopg://app@/{name}?host={shared_postgres.root}"
    first, second = Store(url), Store(url)    # two processes of `dmp serve --workers 2`: a pool and a group each
    metadata.create_all(first.engine)
    with first.write() as conn:
        conn.execute(insert(item), [{"id": 1, "label": "a"}, {"id": 2, "label": "b"}])
    both_hold_a_lock = threading.Barrier(2)

    def lock(key: str) -> Callable[[Connection], str]:
        def work(conn: Connection) -> str:
            conn.execute(select(item.c.id).where(item.c.label == key).with_for_update())
            if not getattr(conn, "first_lock_taken", False):
                conn.first_lock_taken = True  # type: ignore[attr-defined]
                with contextlib.suppress(threading.BrokenBarrierError):
                    both_hold_a_lock.wait(timeout=3)   # arrival order: both hold their first key here
            return key
        return work

    def group(store: Store, keys: list[str]) -> list[str]:
        hold, release = threading.Event(), threading.Event()

        def holder(_conn: Connection) -> str:    # a commit under way, while the group's works queue
            hold.set()
            assert release.wait(30)
            return "held"

        with ThreadPoolExecutor(3) as pool:
            held = pool.submit(store.grouped_write, holder)
            assert hold.wait(30)
            works = []
            for key in keys:        # queued in this order
                works.append(pool.submit(store.grouped_write, lock(key), order=key))
                _wait_until(functools.partial(_queued, store, len(works)))
            release.set()
            assert held.result(30) == "held"
            return [w.result(60) for w in works]

    try:
        with ThreadPoolExecutor(2) as processes:
            one = processes.submit(group, first, ["b", "a"])
            other = processes.submit(group, second, ["a", "b"])
            assert one.result(90) == ["b", "a"]
            assert other.result(90) == ["a", "b"]
    finally:
        first.dispose()
        second.dispose()
