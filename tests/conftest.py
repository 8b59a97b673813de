"""Shared fixtures: a real node (SQLite file or PostgreSQL database + filesystem blobs) served by a real
`dmp serve` process on 127.0.0.1, started per test module and ended by PID (helpers in support/nodes.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from nodes import RunningNode, database_url, make_node, start_node
from pg import PostgresServer
from vihf_client import TestIdentities, identities


@pytest.fixture(scope="session")
def test_identities() -> TestIdentities:
    """The session-wide test PKI every node made by make_node trusts, and the default professional."""
    return identities()


@pytest.fixture(scope="session")
def shared_postgres() -> Iterator[PostgresServer]:
    """One throwaway PostgreSQL server for the session; each node gets its own database in it."""
    server = PostgresServer()
    try:
        server.start()
        yield server
    finally:
        server.remove()


@pytest.fixture(scope="module", params=["sqlite", "postgresql", "postgresql-partitioned"])
def node(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNode]:
    """A running node; every module that uses it runs on SQLite, on PostgreSQL, and on PostgreSQL with the
    registry's objects hash-partitioned by patient (4 partitions; docs/registry-storage.md)."""
    cfg = make_node(tmp_path_factory.mktemp("node"), database_url=database_url(request.param, request),
                    partitions=4 if request.param == "postgresql-partitioned" else 0)
    running = start_node(cfg)
    yield running
    running.stop()
