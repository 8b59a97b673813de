"""Alembic environment: the caller passes the connection (see registry._store.Store.migrate)."""

from alembic import context

from registry._schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only reached when alembic is run by hand
    raise RuntimeError("run migrations through `dmp init` / Store.migrate(), which provide the connection")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
