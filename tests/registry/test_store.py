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
