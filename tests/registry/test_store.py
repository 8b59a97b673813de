"""The Alembic migrations produce exactly the tables the code uses, the registry's, the consent state's, the
portal's and the shared replay store's (one database, one migration history; SQLite here; PostgreSQL in e2e)."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from consent._schema import metadata as consent_metadata
from pki import replay_metadata
from portal._schema import metadata as portal_metadata
from registry import Registry, Store
from registry._schema import metadata


def test_migrations_match_schema(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'r.db'}")
    assert not store.schema_is_current()
    store.migrate()
    assert store.schema_is_current()
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn),
                                [metadata, consent_metadata, portal_metadata, replay_metadata])
    store.dispose()
    assert diff == []


def test_migrate_is_idempotent(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'r.db'}")
    store.migrate()
    Registry(store).create_patient("284067512345688^^^&1.2.250.1.213.1.4.10&ISO")
    store.migrate()
    assert Registry(store).patient_exists("284067512345688^^^&1.2.250.1.213.1.4.10&ISO^NH")
    store.dispose()


def test_a_postgresql_connection_lost_while_idle_is_replaced_before_use(request):
    """A pooled connection the server dropped (a PostgreSQL restart between two requests) is noticed when it
    leaves the pool and replaced, so the next read succeeds instead of failing."""
    import psycopg
    from nodes import database_url

    url = database_url("postgresql", request)
    assert url is not None
    store = Store(url)
    try:
        with store.read() as conn:
            pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
        server = request.getfixturevalue("shared_postgres")
        with psycopg.connect(f"host={server.root} user=app dbname=postgres", autocommit=True) as admin:
            assert admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone() == (True,)
        with store.read() as conn:
            assert conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one() != pid
    finally:
        store.dispose()


def test_write_connections_lost_while_idle_are_replaced_at_begin(request):
    """The write transactions' connections are not pinged: the BEGIN the store sends is their ping. When the
    server has dropped every pooled one (a PostgreSQL restart), the first write fails its BEGIN, before any of
    its work ran, drops the pool's other connections (as dead) and runs in a transaction on a new connection."""
    import psycopg
    from nodes import database_url
    from psycopg.pq import TransactionStatus

    url = database_url("postgresql", request)
    assert url is not None
    store = Store(url)
    try:
        with store.write() as first, store.write() as second:   # two connections in the write pool
            pids = {c.exec_driver_sql("SELECT pg_backend_pid()").scalar_one() for c in (first, second)}
        assert len(pids) == 2
        server = request.getfixturevalue("shared_postgres")
        with psycopg.connect(f"host={server.root} user=app dbname=postgres", autocommit=True) as admin:
            for pid in pids:
                assert admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone() == (True,)
        ran = 0
        with store.write() as conn:
            ran += 1
            driver = conn.connection.driver_connection
            assert driver is not None
            assert driver.info.transaction_status == TransactionStatus.INTRANS
            assert conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one() not in pids
        assert ran == 1
    finally:
        store.dispose()
