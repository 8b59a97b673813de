"""PostgreSQL's plans of the registry's statements (``registry._store``): the write transactions run on
connections where PostgreSQL may keep a generic plan of a prepared statement ("auto") and only the statements
whose plan does not depend on their values are prepared (``registry.prepared_statement``): a registration's
rows and its checks' look-up are planned once per connection (sequential scans off, so that a plan made on an
empty registry reads by index); the reads' connections plan every execution with its values
("force_custom_plan": skewed selectivities, see the store's module)."""

from __future__ import annotations

import re
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


def _prepared(store: Store) -> list[tuple[str, int, int]]:
    with store.keyed_engine.connect() as conn:
        assert conn.exec_driver_sql("SHOW plan_cache_mode").scalar() == "auto"
        assert conn.exec_driver_sql("SHOW enable_seqscan").scalar() == "off"
        return [tuple(r) for r in conn.exec_driver_sql(
            "SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements").all()]


def test_a_registrations_rows_and_look_up_are_planned_once_per_connection(store: Store) -> None:
    registry = Registry(store)
    for n in range(12):   # one after the other: one write connection; the statements prepared at the first
        _register(registry, n)
    prepared = _prepared(store)
    rows = [(generic, custom) for statement, generic, custom in prepared if "INSERT INTO registry_object" in statement]
    look_ups = [(generic, custom) for statement, generic, custom in prepared if "UNION ALL" in statement]
    assert len(rows) == 1, prepared
    assert len(look_ups) == 1, prepared   # every registration here looks up as many values of each kind
    for generic, custom in rows + look_ups:
        # PostgreSQL plans the first five executions with their values, then compares and keeps the generic plan
        assert generic >= 6, prepared
        assert custom <= 5, prepared
    # nothing else is prepared
    assert len(prepared) == 2, prepared


def test_the_look_ups_generic_plan_made_on_a_young_registry_reads_by_index(store: Store) -> None:
    """The generic plan PostgreSQL keeps for the look-up may be made while the registry is still small (one page,
    analyzed); on the write connections (sequential scans off) it reads by index all the same, so it stays right as
    the tables grow until autovacuum analyzes them again."""
    from registry._checks import _together

    statement = _together(True, True, True, prepared=True).statement
    with store.keyed_engine.connect() as conn:
        sql = str(statement.compile(conn).string)
        driver = conn.connection.driver_connection
        assert driver is not None
        with driver.cursor() as cur:
            cur.execute("BEGIN")   # the keyed connections are in autocommit (Store.write sends BEGIN)
            # a young registry, as autovacuum analyzes it: a few rows, one page
            for table in ("registry_object", "patient"):
                cur.execute(f"CREATE TEMPORARY TABLE {table} (LIKE public.{table} INCLUDING INDEXES)")
                cur.execute(f"INSERT INTO pg_temp.{table} SELECT * FROM public.{table} LIMIT 20")
                cur.execute(f"ANALYZE pg_temp.{table}")
            cur.execute("SET LOCAL plan_cache_mode = force_generic_plan")
            numbered, parameters = _numbered(sql)
            cur.execute("PREPARE look_up AS " + numbered)
            cur.execute("EXPLAIN EXECUTE look_up(" + ", ".join(["NULL"] * parameters) + ")")
            plan = "\n".join(r[0] for r in cur.fetchall())
            cur.execute("DEALLOCATE look_up")   # not undone by the rollback: the module's store is shared
        driver.rollback()   # the temporary tables would otherwise hide the registry's on this pooled connection
    assert "Index" in plan, plan
    assert "Seq Scan" not in plan, plan


def _numbered(sql: str) -> tuple[str, int]:
    """The statement with each IN list of two parameters, numbered $1, $2, ...; and how many there are."""
    count = 0

    def two(_match: re.Match[str]) -> str:
        nonlocal count
        count += 2
        return f"${count - 1}, ${count}"

    return re.sub(r"__\[POSTCOMPILE_\w+\]", two, sql), count


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
