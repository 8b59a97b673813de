"""PostgreSQL's plans of the registry's statements (``registry._store``): the write transactions run on
connections where PostgreSQL may keep a generic plan of a prepared statement ("auto") and only the statements
whose plan does not depend on their values are prepared (``registry.prepared_statement``): a registration's
rows are planned once per connection, its checks' look-up at every execution with its values; the reads'
connections plan every execution with its values ("force_custom_plan": skewed selectivities, see the store's
module)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import xds_factory as f
from nodes import database_url

from registry import AutocommitConnections, Registry, Store

PATIENT = f.PATIENT


@pytest.fixture(scope="module", params=["postgresql", "postgresql-partitioned"])
def store(request: pytest.FixtureRequest) -> Iterator[Store]:
    s = Store(database_url("postgresql", request) or "")
    s.migrate(partitions=4 if request.param == "postgresql-partitioned" else 0)
    Registry(s).create_patients([PATIENT])
    yield s
    s.dispose()


def _register(registry: Registry, n: int) -> None:
    doc = f.Doc(b"plan %d" % n, f"Document{n}", patient_id=PATIENT)
    response = registry.register_request(f.submit_objects_request([doc], ss=f.submission_set(PATIENT),
                                                                   repository_attributes=True))
    assert not response.errors, response


def test_a_registrations_rows_are_planned_once_per_connection_and_its_look_up_at_each_execution(store: Store
                                                                                                 ) -> None:
    registry = Registry(store)
    for n in range(12):   # one after the other: one write connection; the rows' statement prepared at the first
        _register(registry, n)
    with store.keyed_engine.connect() as conn:
        mode = conn.exec_driver_sql("SHOW plan_cache_mode").scalar()
        prepared = conn.exec_driver_sql(
            "SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements").all()
    assert mode == "auto"
    rows = [(generic, custom) for statement, generic, custom in prepared if "INSERT INTO registry_object" in statement]
    assert len(rows) == 1, prepared
    generic, custom = rows[0]
    # PostgreSQL plans the first five executions with their values, then compares and keeps the generic plan
    assert generic >= 6, rows
    assert custom <= 5, rows
    # nothing else is prepared, the checks' look-up by arrays of ids (registry._checks) among them: a generic
    # plan made on small tables would be kept as they grow
    assert [s for s, _, _ in prepared] == [s for s, _, _ in prepared if "INSERT INTO registry_object" in s]


def test_reads_plan_every_execution_and_keyed_autocommit_work_may_not(store: Store) -> None:
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("SHOW plan_cache_mode").scalar() == "force_custom_plan"

    def mode(cursor: object) -> str:
        cursor.execute("SHOW plan_cache_mode")  # type: ignore[attr-defined]
        return str(cursor.fetchone()[0])  # type: ignore[attr-defined]

    # the consent checker's dossier read is made on these (consent._guard)
    connections = AutocommitConnections(store.keyed_engine, max_open=1)
    try:
        assert connections.run(mode) == "auto"
    finally:
        connections.close()
