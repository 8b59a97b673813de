"""DatabaseReplayStore: the replay rule in the ``seen_assertion`` table of a real PostgreSQL (migration
0007_replay), which several nodes share: one decision per assertion ID across all of them."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from pg import PostgresServer, migrated_postgres
from sqlalchemy import Engine, create_engine

from pki import DatabaseReplayStore, ReplayCacheFull
from registry import AutocommitConnections

T0 = datetime(2026, 3, 2, 9, 15, tzinfo=UTC)


def _store(engine: Engine, **options: float) -> DatabaseReplayStore:
    """The store as the server makes it: on autocommit connections of its own, at most 12 open."""
    return DatabaseReplayStore(AutocommitConnections(engine, max_open=12), **options)


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    """A migrated PostgreSQL of this module's own, removed at the end."""
    with migrated_postgres() as server:
        yield server.url


@pytest.fixture(scope="module")
def engine(url: str) -> Iterator[Engine]:
    engine = create_engine(url, pool_size=8)
    yield engine
    engine.dispose()


def test_a_second_use_is_refused_through_another_engine_until_the_window_ends(engine):
    second_engine = create_engine(engine.url)
    first, other_node = _store(engine), _store(second_engine)
    try:
        _second_use(first, other_node)
    finally:
        second_engine.dispose()


def _second_use(first: DatabaseReplayStore, other_node: DatabaseReplayStore) -> None:
    assert first.remember("_a1", T0 + timedelta(minutes=5), T0)
    assert not other_node.remember("_a1", T0 + timedelta(minutes=5), T0 + timedelta(minutes=4))
    assert not first.remember("_a1", T0 + timedelta(minutes=5), T0 + timedelta(minutes=4, seconds=59))
    # expired (not yet purged): the row is taken over by the new use, which is then remembered in turn
    assert other_node.remember("_a1", T0 + timedelta(minutes=15), T0 + timedelta(minutes=5))
    assert not first.remember("_a1", T0 + timedelta(minutes=15), T0 + timedelta(minutes=6))


def test_concurrent_uses_of_one_id_are_accepted_exactly_once(engine):
    stores = [_store(engine) for _ in range(8)]
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda s: s.remember("_same", T0 + timedelta(minutes=5), T0), stores))
    assert results.count(True) == 1


def test_expired_rows_are_purged_and_long_ids_fit(engine):
    store = _store(engine, purge_every_s=0)
    long_id = "_" + "x" * 5000   # an xs:ID has no length limit
    assert store.remember(long_id, T0 + timedelta(minutes=5), T0)
    assert not store.remember(long_id, T0 + timedelta(minutes=5), T0 + timedelta(minutes=1))
    before = len(store)
    assert store.remember("_later", T0 + timedelta(days=1), T0 + timedelta(hours=1))
    assert len(store) < before + 1   # what expired before T0 + 1 h is gone


def test_an_unreachable_database_refuses(engine):
    nowhere = create_engine("postgresql+psycopg://app@/none?host=/nonexistent")
    try:
        with pytest.raises(ReplayCacheFull, match="shared replay table"):
            _store(nowhere).remember("_b", T0 + timedelta(minutes=5), T0)
    finally:
        nowhere.dispose()


def test_a_check_commits_without_waiting_for_the_disk_and_leaves_the_connection_as_it_was(url):
    """The check's own transaction runs with synchronous_commit off (seen by a trigger at the insert, in that
    transaction), and the pooled connection, on which the registry then writes, still has the server's
    setting (on here, the durable default) afterwards. The trigger is dropped at the end: the module's other
    tests share the table."""
    engine = create_engine(url, pool_size=1, max_overflow=0, connect_args={"options": "-c synchronous_commit=on"})
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE commit_mode (assertion_id text, synchronous_commit text)")
            conn.exec_driver_sql(
                "CREATE FUNCTION note_commit_mode() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                "INSERT INTO commit_mode VALUES (NEW.assertion_id, current_setting('synchronous_commit')); "
                "RETURN NEW; END $$")
            conn.exec_driver_sql("CREATE TRIGGER note_commit_mode AFTER INSERT ON seen_assertion "
                                 "FOR EACH ROW EXECUTE FUNCTION note_commit_mode()")
        replay = _store(engine)
        assert replay.remember("_async", T0 + timedelta(minutes=5), T0)
        assert not replay.remember("_async", T0 + timedelta(minutes=5), T0 + timedelta(minutes=1))
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SHOW synchronous_commit").scalar_one() == "on"
            assert conn.exec_driver_sql("SELECT assertion_id, synchronous_commit FROM commit_mode").all() \
                == [("_async", "off")]
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP TRIGGER IF EXISTS note_commit_mode ON seen_assertion")
            conn.exec_driver_sql("DROP FUNCTION IF EXISTS note_commit_mode()")
            conn.exec_driver_sql("DROP TABLE IF EXISTS commit_mode")
        engine.dispose()


@pytest.fixture
def own_server() -> Iterator[PostgresServer]:
    """A migrated PostgreSQL for one test that stops and restarts it (the module's stays up for the others)."""
    with migrated_postgres() as server:
        yield server


def _fill_pool(store: DatabaseReplayStore, prefix: str) -> None:
    """Checks from 8 threads at once, so that the store keeps several idle connections."""
    with ThreadPoolExecutor(8) as pool:
        assert all(pool.map(lambda i: store.remember(f"{prefix}{i}", T0 + timedelta(minutes=5), T0), range(64)))


def test_a_check_after_a_restart_of_postgresql_succeeds_on_a_new_connection(own_server):
    """No ping before the statement: the connections made before the restart fail their statement, the check
    is run again once on a new connection and the dead idle ones are dropped, so every check after the
    restart is answered. What was seen before a clean shutdown is still refused."""
    engine = create_engine(own_server.url)
    store = _store(engine)
    try:
        _fill_pool(store, "_before")
        own_server.stop("fast")
        own_server.start()
        for i in range(8):
            assert store.remember(f"_after{i}", T0 + timedelta(minutes=5), T0)
        assert not store.remember("_before0", T0 + timedelta(minutes=5), T0 + timedelta(minutes=1))
        own_server.stop("immediate")   # a crash: the connections are cut without a goodbye
        own_server.start()
        assert store.remember("_after_crash", T0 + timedelta(minutes=5), T0)
    finally:
        store.close()
        engine.dispose()


def test_a_check_while_postgresql_is_down_is_refused_clearly_then_served_again(own_server):
    engine = create_engine(own_server.url)
    store = _store(engine)
    try:
        _fill_pool(store, "_up")
        own_server.stop("fast")
        for _ in range(2):   # with idle connections made before, then with none left
            with pytest.raises(ReplayCacheFull, match=r"^the shared replay table cannot record the assertion "
                                                      r"\(OperationalError\)$"):
                store.remember("_down", T0 + timedelta(minutes=5), T0)
        own_server.start()
        assert store.remember("_down", T0 + timedelta(minutes=5), T0)   # the refused check recorded nothing
    finally:
        store.close()
        engine.dispose()


def test_a_database_error_other_than_a_lost_connection_is_not_retried(engine):
    """A statement the server refuses (here: the table is locked and the statement times out) is a refusal at
    once, not a retry; the connection it used is not kept."""
    store = _store(create_engine(engine.url, connect_args={"options": "-c statement_timeout=200"}))
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("LOCK TABLE seen_assertion IN ACCESS EXCLUSIVE MODE")
            with pytest.raises(ReplayCacheFull, match=r"\(QueryCanceled\)$"):
                store.remember("_locked", T0 + timedelta(minutes=5), T0)
        assert store.remember("_locked", T0 + timedelta(minutes=5), T0)
    finally:
        store.close()


def test_connections_are_bounded_and_a_check_that_finds_none_free_is_refused(engine):
    """At most ``max_open`` connections: while the one allowed waits (its statement blocked on a lock), another
    check waits ``wait_s`` for it and is then refused clearly; once the first is answered both can run."""
    store = DatabaseReplayStore(AutocommitConnections(engine, max_open=1, wait_s=0.3))
    try:
        with ThreadPoolExecutor(1) as pool:
            with engine.begin() as conn:
                conn.exec_driver_sql("LOCK TABLE seen_assertion IN ACCESS EXCLUSIVE MODE")
                blocked = pool.submit(store.remember, "_held", T0 + timedelta(minutes=5), T0)
                _wait_for_lock_waiter(engine)
                with pytest.raises(ReplayCacheFull, match=r"\(no connection free within 0\.3 s\)$"):
                    store.remember("_waiting", T0 + timedelta(minutes=5), T0)
            assert blocked.result(timeout=30)
        assert store.remember("_waiting", T0 + timedelta(minutes=5), T0)
    finally:
        store.close()


def _wait_for_lock_waiter(engine: Engine) -> None:
    import time

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            if conn.exec_driver_sql("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                                    ).scalar_one():
                return
        time.sleep(0.02)
    raise AssertionError("the first check never waited on the lock")
